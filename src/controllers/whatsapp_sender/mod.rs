//! The `WhatsAppSender` controller: what is about senders, run by the runtime
//! ([`crate::runtime`]). Here: its settings, its context (which is its [`Kind`], in `kind.rs`),
//! what its cache keeps of a sender and which changes reconcile, the Secrets it reads, and
//! `run()`, which hands all that to the runtime's controller.
//!
//! - [`reconcile`]: one sender's phases (the only module that talks to both sides).
//! - [`state`]: the one owner of what the controller remembers, per sender, Secret and
//!   account.
//! - [`diff`], [`otp`], [`conditions`] (its verdicts), [`pacing`]: pure helpers the phases
//!   share; [`events`]: its Event reasons.
//! - [`lists`]: an account's latest list pass.
//!
//! [`Kind`]: crate::runtime::driver::Kind

pub mod conditions;
pub mod diff;
pub mod events;
mod kind;
mod lists;
mod otp;
pub mod pacing;
mod reconcile;
pub mod resends;
#[cfg(test)]
mod sim_world;
mod state;
mod uninstall;
#[cfg(test)]
mod watch_tests;

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector;
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;

pub use otp::RESEND_CODE_ANNOTATION;
pub use reconcile::{FIELD_MANAGER, FINALIZER, RECONCILE_REQUESTED_ANNOTATION};
pub use uninstall::watch_crd;

use crate::api::{EXPORTED_FROM_ANNOTATION, WhatsAppSender};
use crate::error::Error;
use crate::health::Liveness;
use crate::metrics::Metrics;
use crate::runtime::controller::{self, KubeClients, Parts, Watched};
use crate::runtime::credentials::{self, CredentialsProblem};
use crate::runtime::driver::Shared;
use crate::twilio::TwilioClient;
use pacing::Pacing;
use state::{SecretKey, SenderKey, State, StateConfig};

/// Twilio: "Allow several minutes between Senders API requests. Too many requests in a short
/// period might result in errors." Several is more than two: three minutes is the least that
/// reads as several.
pub const DEFAULT_REGISTRATION_INTERVAL: Duration = Duration::from_secs(180);

/// The sender controller's own settings.
#[derive(Clone, Debug)]
pub struct SenderSettings {
    pub pacing: Pacing,
    /// One registration per account at a time.
    pub serial_onboarding: bool,
    /// A sender stuck mid-registration (a code nobody provides) yields its account's turn
    /// after this long.
    pub onboarding_max_hold: Duration,
    /// Refresh settled senders of an account with one list instead of a GET each.
    pub batched_refresh: bool,
    /// How old a list may be to answer "is this number registered?" before a create.
    pub lookup_reuse: Duration,
    /// Of the unregistered senders of an account that share a display name no ONLINE sender
    /// of it has, one registers first and the others wait for Meta's verdict on the name.
    pub display_name_check: bool,
    /// The least time between two registrations in one account.
    pub registration_interval: Duration,
    /// How often one sender may ask for a new one-time code.
    pub code_resends: resends::ResendLimits,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            pacing: Pacing::default(),
            serial_onboarding: true,
            onboarding_max_hold: Duration::from_secs(15 * 60),
            batched_refresh: true,
            lookup_reuse: Duration::from_secs(30),
            display_name_check: true,
            registration_interval: DEFAULT_REGISTRATION_INTERVAL,
            code_resends: resends::ResendLimits::default(),
        }
    }
}

/// The annotations a reconcile reads; the cache keeps no others.
const ANNOTATIONS_READ: [&str; 3] = [
    RECONCILE_REQUESTED_ANNOTATION,
    RESEND_CODE_ANNOTATION,
    EXPORTED_FROM_ANNOTATION,
];

/// Drops what the operator never reads from a cached sender: managed fields, labels (selectors
/// are applied by the API server), and annotations other than its own, such as the copy of the
/// whole manifest that `kubectl apply` keeps. Together they can double an object's size, and
/// the cache holds every sender.
fn forget_what_is_not_read(sender: &mut WhatsAppSender) {
    let metadata = &mut sender.metadata;
    metadata.managed_fields = None;
    metadata.labels = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.retain(|key, _| ANNOTATIONS_READ.contains(&key.as_str()));
    }
    // An empty map still holds a node.
    if metadata.annotations.as_ref().is_some_and(|a| a.is_empty()) {
        metadata.annotations = None;
    }
}

/// Everything the sender's reconciles share: the runtime's services, the sender settings, the
/// sender state, and the channel that wakes a sender. It is the controller's
/// [`Kind`](crate::runtime::driver::Kind) (`kind.rs`).
pub struct Context {
    shared: Shared,
    settings: SenderSettings,
    state: State,
    wake: mpsc::UnboundedSender<SenderKey>,
}

impl Context {
    /// Asks for a reconcile of `sender` now (its onboarding turn came, a fresh list is ready).
    fn wake(&self, sender: SenderKey) {
        // Only fails once the controller has stopped, when nobody needs waking.
        let _ = self.wake.send(sender);
    }

    /// Reads one Secret, data included, from the API server. Secret data is never kept; its
    /// version is.
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, Error> {
        let api: Api<Secret> = Api::namespaced(self.shared.kube.clone(), namespace);
        let secret = api.get_opt(name).await?;
        if let Some(version) = secret.as_ref().and_then(|s| s.resource_version()) {
            self.state
                .secret_read(&(namespace.to_string(), name.to_string()), &version);
        }
        Ok(secret)
    }

    /// The Twilio client for the credentials in Secret `name`, built once per Secret version.
    async fn twilio_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Result<TwilioClient, CredentialsProblem>, Error> {
        let key: SecretKey = (namespace.to_string(), name.to_string());
        if let Some(client) = self.state.current_client(&key) {
            return Ok(Ok(client));
        }
        let Some(secret) = self.secret(namespace, name).await? else {
            return Ok(Err(CredentialsProblem::SecretNotFound(name.to_string())));
        };
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        if let Some(client) = self.state.client_at(&key, &version) {
            return Ok(Ok(client));
        }
        let client = match credentials::verified_client(
            namespace,
            name,
            secret.data.unwrap_or_default(),
            &self.shared.twilio,
            self.state.accounts(),
        )
        .await?
        {
            Ok(client) => client,
            Err(problem) => return Ok(Err(problem)),
        };
        self.state.client_built(&key, &version, client.clone());
        Ok(Ok(client))
    }
}

/// Only these changes need a reconcile. Status writes (the operator's own) do not, or every
/// write would wake the sender and read Twilio again. Deletion and finalizers are included so
/// that a deletion is never missed.
fn worth_reconciling(sender: &WhatsAppSender) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    sender.metadata.generation.hash(&mut hasher);
    sender
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    sender.finalizers().hash(&mut hasher);
    for annotation in ANNOTATIONS_READ {
        sender.annotations().get(annotation).hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// Runs the controller until `shutdown` resolves; in-flight reconciles finish first.
pub async fn run(
    clients: KubeClients,
    shared: controller::Settings,
    senders: SenderSettings,
    metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (wake_tx, wake_rx) = controller::wake_channel::<Context>();
    let (store, writer) = reflector::store();
    metrics.watch_senders(store.clone());
    let ctx = Arc::new(context(
        clients.calls,
        &shared,
        senders,
        metrics,
        wake_tx.clone(),
    ));
    let indexer = ctx.clone();
    let watched = Watched {
        what: "senders",
        namespaces: shared.namespaces.clone(),
        selector: shared.selector.clone(),
        trim: forget_what_is_not_read,
        worth_reconciling,
        observe: Box::new(move |event| {
            for sender in indexer.state.sender_event(event) {
                indexer.wake(sender);
            }
        }),
    };
    let readers = ctx.clone();
    let secret_changes = controller::secret_changes::<Context>(
        clients.watches.clone(),
        &shared.namespaces,
        move |event| readers.state.secret_event(event),
    );
    let parts = Parts {
        concurrency: shared.concurrency,
        kind: ctx,
        watched,
        cache: (store, writer),
        triggers: vec![secret_changes],
        wake: (wake_tx, wake_rx),
    };
    controller::run(parts, clients.watches, liveness, shutdown).await;
}

fn context(
    client: Client,
    shared: &controller::Settings,
    settings: SenderSettings,
    metrics: Arc<Metrics>,
    wake: mpsc::UnboundedSender<SenderKey>,
) -> Context {
    let state = State::sharing(
        StateConfig {
            serial_onboarding: settings.serial_onboarding,
            onboarding_max_hold: settings.onboarding_max_hold,
            lookup_reuse: settings.lookup_reuse,
            resync_interval: settings.pacing.resync_interval,
            display_name_check: settings.display_name_check,
            registration_interval: settings.registration_interval,
            // Half the workers: one account waiting on its request budget leaves the other
            // half to every other account.
            workers_per_account: usize::from(shared.concurrency / 2).max(1),
        },
        shared.accounts.clone(),
        metrics.state_lock(),
    );
    Context {
        shared: Shared::new(client, shared, metrics),
        state,
        wake,
        settings,
    }
}
