//! Which controllers a process runs (`--controllers`). Every kind shares the process's one
//! Lease, account registry and endpoints; a kind not named, or whose CRD is not installed when
//! none is named, is not run.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use senderops::controllers::whatsapp_sender;
use senderops::health::Liveness;
use senderops::metrics::Metrics;
use senderops::runtime::controller::KubeClients;
use senderops::runtime::driver::Kind as _;
use senderops::runtime::preflight::{StartError, preflight};

use super::Settings;

/// The kinds of resource SenderOps reconciles, by the name `--controllers` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `WhatsAppSender` (messaging.senderops.io).
    #[value(name = "whatsappsender")]
    WhatsAppSender,
}

impl Kind {
    pub const ALL: [Kind; 1] = [Kind::WhatsAppSender];

    pub fn name(self) -> &'static str {
        match self {
            Kind::WhatsAppSender => whatsapp_sender::Context::CONTROLLER,
        }
    }

    /// The kind's controller, until `shutdown`.
    pub fn run(
        self,
        clients: KubeClients,
        settings: &Settings,
        metrics: Arc<Metrics>,
        liveness: Arc<Liveness>,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> BoxFuture<'static, ()> {
        let shared = settings.shared.clone();
        match self {
            Kind::WhatsAppSender => whatsapp_sender::run(
                clients,
                shared,
                settings.senders.clone(),
                metrics,
                liveness,
                shutdown,
            )
            .boxed(),
        }
    }

    /// Whether the kind can run: its CRD installed, and listable where it is watched.
    async fn check(
        self,
        clients: &KubeClients,
        namespaces: &[String],
        selector: Option<&str>,
    ) -> Result<(), StartError> {
        match self {
            Kind::WhatsAppSender => {
                preflight::<whatsapp_sender::Context>(&clients.calls, namespaces, selector).await
            }
        }
    }
}

/// The kinds to run: those `named` (each must be able to run), or, with none named, every kind
/// whose CRD is installed (the others are named in a log line). `Err` says why none can run.
pub async fn to_run(
    named: &[Kind],
    clients: &KubeClients,
    namespaces: &[String],
    selector: Option<&str>,
) -> Result<Vec<Kind>, StartError> {
    if !named.is_empty() {
        for kind in named {
            kind.check(clients, namespaces, selector).await?;
        }
        let mut kinds = named.to_vec();
        kinds.dedup();
        return Ok(kinds);
    }
    let mut running = Vec::new();
    let mut first_refusal = None;
    for kind in Kind::ALL {
        match kind.check(clients, namespaces, selector).await {
            Ok(()) => running.push(kind),
            Err(missing @ StartError::CrdMissing(_)) => {
                first_refusal.get_or_insert(missing);
            }
            Err(other) => return Err(other),
        }
    }
    let skipped: Vec<&str> = Kind::ALL
        .iter()
        .filter(|kind| !running.contains(kind))
        .map(|kind| kind.name())
        .collect();
    // With none running, every kind was refused, so a refusal was kept.
    if let Some(refusal) = first_refusal.filter(|_| running.is_empty()) {
        return Err(refusal);
    }
    if !skipped.is_empty() {
        tracing::info!(
            not_running = %skipped.join(","),
            "not running the controllers whose CRD is not installed (--controllers names the \
             kinds to run)"
        );
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    /// `--controllers` takes the word each kind's metrics carry in their `controller` label.
    #[test]
    fn each_kind_is_named_as_its_controller_label() {
        for kind in Kind::ALL {
            let value = kind.to_possible_value().expect("no kind is skipped");
            assert_eq!(value.get_name(), kind.name());
        }
    }
}
