//! `twilio-sim` command line: parse flags, start the server, stop on SIGINT/SIGTERM.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use twilio_sim::{
    Account, ApiKey, DEFAULT_CODE_LOCKOUT, DEFAULT_OFFLINE_STEPS, DEFAULT_STEP_DELAY, SimConfig,
};

/// A simulator of Twilio's WhatsApp Senders API, with a control API under /_sim/.
#[derive(Debug, Parser)]
#[command(name = "twilio-sim", version)]
struct Cli {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, default_value = "127.0.0.1:4010", env = "TWILIO_SIM_LISTEN")]
    listen: SocketAddr,

    /// An account the simulator accepts, as ACCOUNT_SID:AUTH_TOKEN (repeatable).
    #[arg(
        long = "account",
        value_name = "SID:TOKEN",
        required = true,
        value_parser = Account::parse,
        env = "TWILIO_SIM_ACCOUNTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    accounts: Vec<Account>,

    /// An API key of one of those accounts, as ACCOUNT_SID:SK…:SECRET (repeatable).
    #[arg(
        long = "api-key",
        value_name = "ACCOUNT_SID:KEY_SID:SECRET",
        value_parser = ApiKey::parse_owned,
        env = "TWILIO_SIM_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_keys: Vec<(String, ApiKey)>,

    /// Duration of each asynchronous lifecycle step (CREATING, VERIFYING, ONLINE:UPDATING).
    #[arg(long, default_value_t = DEFAULT_STEP_DELAY.as_millis() as u64, env = "TWILIO_SIM_STEP_DELAY_MS")]
    step_delay_ms: u64,

    /// Steps an offline_after_registration number reads OFFLINE before it comes ONLINE.
    #[arg(long, default_value_t = DEFAULT_OFFLINE_STEPS, env = "TWILIO_SIM_OFFLINE_STEPS")]
    offline_steps: u32,

    /// How long a sender is locked (63114) after asking for too many codes.
    #[arg(long, default_value_t = DEFAULT_CODE_LOCKOUT.as_millis() as u64, env = "TWILIO_SIM_CODE_LOCKOUT_MS")]
    code_lockout_ms: u64,
}

fn config(cli: Cli) -> Result<SimConfig, String> {
    let mut accounts = cli.accounts;
    for (owner, key) in cli.api_keys {
        let account = accounts
            .iter_mut()
            .find(|a| a.account_sid == owner)
            .ok_or_else(|| {
                format!(
                    "--api-key {}: account {owner} is not given with --account",
                    key.sid
                )
            })?;
        account.api_keys.push(key);
    }
    Ok(SimConfig {
        accounts,
        step_delay: Duration::from_millis(cli.step_delay_ms),
        offline_steps: cli.offline_steps,
        code_lockout: Duration::from_millis(cli.code_lockout_ms),
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let listen = cli.listen;
    let config = match config(cli) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("twilio-sim: {err}");
            return ExitCode::from(2);
        }
    };
    let handle = match twilio_sim::spawn(listen, config).await {
        Ok(handle) => handle,
        Err(err) => {
            eprintln!("twilio-sim: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts and tests wait for exactly this line.
    println!("twilio-sim listening on http://{}", handle.addr());

    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}
