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

    /// An API key of one of those accounts that may not read the REST API v2010, like a Twilio
    /// restricted key without that permission, as ACCOUNT_SID:SK…:SECRET (repeatable): it works
    /// for the Senders and Alerts APIs, and gets 403 (20403) on /2010-04-01/ routes.
    #[arg(
        long = "restricted-api-key",
        value_name = "ACCOUNT_SID:KEY_SID:SECRET",
        value_parser = ApiKey::parse_owned,
        env = "TWILIO_SIM_RESTRICTED_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    restricted_api_keys: Vec<(String, ApiKey)>,

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
    let mut restricted_api_keys = Vec::new();
    let keys = cli.api_keys.into_iter().map(|key| ("--api-key", key));
    let restricted = cli
        .restricted_api_keys
        .into_iter()
        .map(|key| ("--restricted-api-key", key));
    for (flag, (owner, key)) in keys.chain(restricted) {
        let account = accounts
            .iter_mut()
            .find(|a| a.account_sid == owner)
            .ok_or_else(|| {
                format!(
                    "{flag} {}: account {owner} is not given with --account",
                    key.sid
                )
            })?;
        if flag == "--restricted-api-key" {
            restricted_api_keys.push(key.sid.clone());
        }
        account.api_keys.push(key);
    }
    Ok(SimConfig {
        accounts,
        step_delay: Duration::from_millis(cli.step_delay_ms),
        offline_steps: cli.offline_steps,
        code_lockout: Duration::from_millis(cli.code_lockout_ms),
        restricted_api_keys,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SimConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("twilio-sim").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        config(cli)
    }

    #[test]
    fn a_restricted_key_joins_its_account_and_is_listed_as_restricted() {
        let config = parse(&[
            "--account",
            "AC1:token",
            "--account",
            "AC2:token2",
            "--api-key",
            "AC1:SK1:secret1",
            "--restricted-api-key",
            "AC2:SK2:sec:ret2",
        ])
        .unwrap();
        let keys = |account: usize| -> Vec<(String, String)> {
            config.accounts[account]
                .api_keys
                .iter()
                .map(|k| (k.sid.clone(), k.secret.clone()))
                .collect()
        };
        assert_eq!(keys(0), [("SK1".to_string(), "secret1".to_string())]);
        assert_eq!(keys(1), [("SK2".to_string(), "sec:ret2".to_string())]);
        assert_eq!(config.restricted_api_keys, ["SK2"]);
        assert_eq!(config.check(), Ok(()));

        let unrestricted = parse(&["--account", "AC1:token", "--api-key", "AC1:SK1:s"]).unwrap();
        assert!(unrestricted.restricted_api_keys.is_empty());
    }

    #[test]
    fn a_restricted_key_needs_a_known_account_and_all_three_parts() {
        let err = parse(&[
            "--account",
            "AC1:token",
            "--restricted-api-key",
            "AC2:SK2:secret",
        ])
        .unwrap_err();
        assert!(
            err.contains("--restricted-api-key SK2") && err.contains("AC2"),
            "{err}"
        );
        let err =
            parse(&["--account", "AC1:token", "--restricted-api-key", "AC1:SK2"]).unwrap_err();
        assert!(err.contains("ACCOUNT_SID:API_KEY_SID:SECRET"), "{err}");
    }
}
