//! What a controller checks before it starts: its CRD installed, its objects listable where it
//! watches them, the selector valid; every kind's, with errors a user can act on.

use kube::api::ListParams;
use kube::{Client, Resource};

use super::driver::Kind;

/// Why `run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the {0} CRD is not installed in this cluster: install it with `kubectl apply -f crds/` \
         (or `senderops crd | kubectl apply -f -`)"
    )]
    CrdMissing(String),
    #[error("the API server refused the request: {0}; check --selector")]
    BadSelector(String),
    #[error(
        "not allowed to list {kind}s{}: {message}; check the operator's RBAC",
        in_namespace(.namespace)
    )]
    Forbidden {
        kind: String,
        /// `None`: cluster-wide.
        namespace: Option<String>,
        message: String,
    },
    #[error("cannot reach the Kubernetes API: {0}")]
    Unreachable(String),
}

/// " in namespace NS", or nothing for every namespace.
fn in_namespace(namespace: &Option<String>) -> String {
    namespace
        .as_ref()
        .map(|ns| format!(" in namespace {ns}"))
        .unwrap_or_default()
}

/// Checks that the API server is reachable and the kind's CRD installed, and that its objects
/// may be listed in each of `namespaces` (all of them when empty), with errors a user can act
/// on, before any watch starts retrying in the background.
pub async fn preflight<K: Kind>(
    client: &Client,
    namespaces: &[String],
    selector: Option<&str>,
) -> Result<(), StartError> {
    let kind = K::Object::kind(&()).to_string();
    let mut params = ListParams::default().limit(1);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    for api in K::watch_apis(client, namespaces) {
        match api.list_metadata(&params).await {
            Ok(_) => {}
            // A missing resource type is a bare 404 ("page not found"), not a NotFound Status.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(StartError::CrdMissing(kind.clone()));
            }
            Err(kube::Error::Api(status)) if status.code == 400 => {
                return Err(StartError::BadSelector(status.message.clone()));
            }
            Err(kube::Error::Api(status)) if status.is_forbidden() => {
                return Err(StartError::Forbidden {
                    kind: kind.clone(),
                    namespace: api.namespace().map(str::to_string),
                    message: status.message.clone(),
                });
            }
            Err(other) => return Err(StartError::Unreachable(other.to_string())),
        }
    }
    Ok(())
}
