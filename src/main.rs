use clap::{Parser, Subcommand};

/// SenderOps: manage Twilio WhatsApp senders from Kubernetes.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the WhatsAppSender CustomResourceDefinition as YAML.
    Crd,
}

fn main() {
    match Cli::parse().command {
        Command::Crd => print!("{}", senderops::api::crd_yaml()),
    }
}
