//! `senderops export`: an account's existing senders as manifests to adopt.

use std::process::ExitCode;

use clap::Args;
use senderops::api::DeletionPolicy;
use senderops::export;
use senderops::twilio::{ClientConfig, RequestBudget, TwilioClient};

#[derive(Args)]
pub struct ExportArgs {
    /// Base URL of Twilio's Senders API (default: https://messaging.twilio.com), e.g. the
    /// simulator or a proxy.
    #[arg(long, env = "TWILIO_API_URL")]
    twilio_api_url: Option<String>,

    /// Namespace written into every manifest (default: none, so `kubectl apply -n` decides).
    #[arg(long)]
    namespace: Option<String>,

    /// The credentials Secret the manifests name in `credentialsRef`.
    #[arg(long, default_value = "twilio")]
    credentials_secret: String,

    /// What deleting an exported object does at Twilio. Orphan (default) leaves the number
    /// registered, as it was before it was adopted.
    #[arg(long, value_enum, default_value_t = ExportDeletionPolicy::Orphan)]
    deletion_policy: ExportDeletionPolicy,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportDeletionPolicy {
    Orphan,
    Delete,
}

pub async fn export(args: ExportArgs) -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let credentials = match export::credentials_from_env(|name| std::env::var(name).ok()) {
        Ok(credentials) => credentials,
        Err(problem) => {
            eprintln!("senderops export: {problem}");
            return ExitCode::FAILURE;
        }
    };
    let account = credentials.account_sid().to_string();
    let config = match &args.twilio_api_url {
        Some(url) => ClientConfig::default().all_products_at(url),
        None => ClientConfig::default(),
    };
    let client = match TwilioClient::new(credentials, &config, RequestBudget::new(config.budget)) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("senderops export: {err}");
            return ExitCode::FAILURE;
        }
    };
    let senders = match client.list_all().await {
        Ok(senders) => senders,
        Err(err) => {
            eprintln!(
                "senderops export: {}",
                senderops::twilio_message("list the account's senders", &err)
            );
            return ExitCode::FAILURE;
        }
    };
    let options = export::ExportOptions {
        namespace: args.namespace,
        credentials_secret: args.credentials_secret,
        deletion_policy: match args.deletion_policy {
            ExportDeletionPolicy::Orphan => DeletionPolicy::Orphan,
            ExportDeletionPolicy::Delete => DeletionPolicy::Delete,
        },
    };
    let rendered = export::render(&senders, &options);
    print!("{}", rendered.yaml);
    for warning in &rendered.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "exported {} of {} senders of account {account}",
        rendered.exported,
        senders.len()
    );
    ExitCode::SUCCESS
}
