//! Uninstalling never deregisters a number. Deleting the WhatsAppSender CRD makes the API server
//! delete every WhatsAppSender, which would run each one's `Delete` policy: `kubectl delete -k
//! deploy/` and a GitOps prune of the CRD would deregister every number the operator manages.
//! So before any DELETE at Twilio the CRD is read live (a cache could lag the very deletion it
//! must see), and a CRD being deleted, or gone, turns the cleanup into an `Orphan`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::{Client, CustomResourceExt};

use crate::api::WhatsAppSender;
use crate::metrics::Metrics;

/// What the live read of the CRD says about deleting at Twilio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crd {
    /// Installed and not being deleted: a `Delete` policy is honoured.
    Installed,
    /// Being deleted (or already gone): an uninstall, which must leave every number registered.
    Uninstalling,
}

/// Reads the WhatsAppSender CRD from the API server. An error (unreachable, forbidden) is the
/// caller's to back off from: without an answer nothing is deleted.
pub async fn crd(client: &Client) -> Result<Crd, kube::Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get_opt(WhatsAppSender::crd_name()).await?;
    Ok(state_of(crd.as_ref()))
}

fn state_of(crd: Option<&CustomResourceDefinition>) -> Crd {
    match crd {
        Some(crd) if crd.metadata.deletion_timestamp.is_none() => Crd::Installed,
        _ => Crd::Uninstalling,
    }
}

/// How often a running operator reads its CRD for readiness. A single `get` by name: cheap, and
/// all the RBAC it needs is the `get` the deletions already use.
const CRD_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps `/readyz` false while the CRD is being deleted or gone, so that an uninstall shows as an
/// unready operator that waits (its watches retry until the CRD is back), not a crash loop.
/// A read that fails leaves readiness as it was: an unreachable API server is not an uninstall.
pub async fn watch_crd(client: Client, metrics: Arc<Metrics>) {
    let mut last = None;
    loop {
        match crd(&client).await {
            Ok(now) if last != Some(now) => {
                metrics.set_ready(now == Crd::Installed);
                match now {
                    Crd::Installed if last.is_some() => {
                        tracing::info!("the WhatsAppSender CRD is installed again; ready")
                    }
                    Crd::Installed => {}
                    Crd::Uninstalling => tracing::warn!(
                        "the WhatsAppSender CRD is being deleted or gone: not ready, and no \
                         number is deregistered while it is; waiting for it to be installed again"
                    ),
                }
                last = Some(now);
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "could not read the WhatsAppSender CRD"),
        }
        tokio::time::sleep(CRD_CHECK_INTERVAL).await;
    }
}

/// The Event message of a sender let go by an uninstall.
pub fn orphaned_message(sid: Option<&str>) -> String {
    let sender = sid.map_or_else(
        || "its Twilio sender (SID not recorded)".to_string(),
        |sid| format!("Twilio sender {sid}"),
    );
    format!(
        "left {sender} registered: the WhatsAppSender CRD is being deleted, and uninstalling the \
         operator never deregisters a number (delete it at Twilio yourself if it is no longer \
         wanted)"
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    #[test]
    fn only_an_installed_crd_not_being_deleted_allows_a_deletion_at_twilio() {
        let mut crd = WhatsAppSender::crd();
        assert_eq!(state_of(Some(&crd)), Crd::Installed);
        crd.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert_eq!(state_of(Some(&crd)), Crd::Uninstalling);
        assert_eq!(state_of(None), Crd::Uninstalling);
    }
}
