//! The one reconciler every kind runs under, in the shape of ACK's generic reconciler over a
//! per-resource manager (aws-controllers-k8s/runtime `pkg/runtime/reconciler.go`): the driver
//! owns the finalizer, the span, the reconcile timeout, the hand-over of what a reconcile
//! concluded (however it ended), the per-object error backoff and the reconcile metrics; a
//! kind says what applying and cleaning up one object mean ([`Kind`]).

use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant as Clock;
use tracing::Instrument;

use super::backoff;
use super::controller;
use super::events::Publisher;
use super::status::ObjectStatus;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::twilio::ClientConfig;

/// What every controller's reconciles share: the API server client for calls, metrics,
/// Events, and the limits every reconcile runs within.
pub struct Shared {
    /// The client with `--kube-timeout` (watches use their own).
    pub kube: Client,
    pub metrics: Arc<Metrics>,
    pub events: Publisher,
    /// How Twilio clients are built (base URLs, timeouts, retries, budget size, the fence).
    pub twilio: ClientConfig,
    /// The longest one reconcile may run before it is dropped and retried.
    pub reconcile_timeout: Duration,
    /// The first wait after a failed reconcile; it doubles with each failure in a row.
    pub error_backoff: Duration,
    /// The least time between two reconciles of one object that a new value of
    /// `senderops.io/reconcile-requested-at` may force.
    pub reconcile_request_interval: Duration,
}

impl Shared {
    /// The services of a controller run with `settings`, publishing Events as this operator
    /// instance.
    pub fn new(kube: Client, settings: &controller::Settings, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: "senderops".into(),
            instance: settings.instance.clone(),
        };
        Self {
            events: Publisher::new(kube.clone(), reporter),
            kube,
            metrics,
            twilio: settings.twilio.clone(),
            reconcile_timeout: settings.reconcile_timeout,
            error_backoff: settings.error_backoff,
            reconcile_request_interval: settings.reconcile_request_interval,
        }
    }
}

/// How a cleanup ended.
#[derive(Debug)]
pub enum Cleanup {
    /// Nothing is left at Twilio to answer for: the finalizer goes.
    Released,
    /// The deletion is not finished (waiting for the user, or for Twilio to let go): the
    /// finalizer stays, and the object comes back as `Action` says. Not a failure.
    Kept(Action),
}

/// The object types the driver reconciles.
pub trait Object:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> Object for T where
    T: Resource<DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// What a kind implements to run under the driver: the small per-resource interface.
pub trait Kind: Send + Sync + Sized + 'static {
    /// The custom resource.
    type Object: Object;
    /// Its status, which the runtime writes conditions into ([`ObjectStatus`]).
    type Status: ObjectStatus;
    /// What one reconcile leaves for the kind's memory, whatever path it took (a timeout
    /// included): filled in by [`Kind::apply`] or [`Kind::cleanup`] as they go.
    type Conclusion: Default + Send;

    /// The kind's word in `--controllers` and in the metrics' `controller` label.
    const CONTROLLER: &'static str;
    /// Held on every object until its remote counterpart has been let go of.
    const FINALIZER: &'static str;

    fn shared(&self) -> &Shared;

    /// The API of the kind where `obj` lives: its namespace, or the cluster.
    fn api(&self, obj: &Self::Object) -> Api<Self::Object>;

    /// The APIs its objects are watched (and listed at start) through: one per namespace of
    /// `namespaces`, or one for all of them when empty ([`super::namespaces::apis`]); a
    /// cluster-scoped kind's single `Api::all`, whatever `namespaces` says.
    fn watch_apis(client: &Client, namespaces: &[String]) -> Vec<Api<Self::Object>>;

    fn status(obj: &Self::Object) -> Option<&Self::Status>;

    /// The reconcile's span: the object's namespace and name, and what else identifies it.
    fn span(&self, obj: &Self::Object) -> tracing::Span;

    /// When the last reconcile of this object (this uid) started, and how many failed in a
    /// row: they pace the reconciles a `senderops.io/reconcile-requested-at` may force.
    fn last_started(&self, obj: &Self::Object) -> Option<Clock>;
    fn failures(&self, obj: &Self::Object) -> u32;
    /// A reconcile of `obj` starts (it is not waiting its turn).
    fn started(&self, obj: &Self::Object);

    /// Brings the object's remote counterpart to its spec, and its status to what it found.
    fn apply(
        &self,
        obj: &Self::Object,
        api: &Api<Self::Object>,
        conclusion: &mut Self::Conclusion,
    ) -> impl Future<Output = Result<Action>> + Send;

    /// Lets go of the remote counterpart of an object being deleted.
    fn cleanup(
        &self,
        obj: &Self::Object,
        api: &Api<Self::Object>,
        conclusion: &mut Self::Conclusion,
    ) -> impl Future<Output = Result<Cleanup>> + Send;

    /// Takes what a reconcile concluded into the kind's memory (`failed`: it ended in an error,
    /// and backs off).
    fn concluded(&self, obj: &Self::Object, conclusion: Self::Conclusion, failed: bool);
}

/// The annotation whose every new value asks for an immediate reconcile, on every kind.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "senderops.io/reconcile-requested-at";

/// Why the finalizer closure did not end with `Ok`. kube's finalizer helper keeps the
/// finalizer on any error; that is how a deletion that is not finished keeps it. The driver
/// turns `Kept` back into its requeue: a blocked deletion is not a failed reconcile.
#[derive(Debug, thiserror::Error)]
enum NotDone {
    #[error("the deletion is not finished")]
    Kept(Action),
    #[error(transparent)]
    Failed(Error),
}

/// Entry point for kube's controller: one reconcile of `obj`. Waits out a forced request that came too soon, runs the kind's
/// apply or cleanup under the finalizer and the timeout, hands over its conclusion, counts it.
pub async fn reconcile<K: Kind>(obj: Arc<K::Object>, kind: Arc<K>) -> Result<Action> {
    let api = kind.api(&obj);
    let span = kind.span(&obj);
    if let Some(wait) = forced_too_soon(kind.as_ref(), &obj) {
        tracing::info!(
            parent: &span,
            wait_ms = wait.as_millis() as u64,
            "a reconcile request came sooner than --reconcile-request-interval after the last \
             reconcile; it runs then"
        );
        return Ok(Action::requeue(wait));
    }
    kind.started(&obj);
    let started = Instant::now();
    let concluded = Mutex::new(K::Conclusion::default());
    let result = finalizer(&api, K::FINALIZER, obj.clone(), |event| async {
        let mut conclusion = K::Conclusion::default();
        let limit = kind.shared().reconcile_timeout;
        // Dropped where it stands past the limit; what it concluded so far is kept.
        let work = async {
            match event {
                finalizer::Event::Apply(obj) => kind
                    .apply(&obj, &api, &mut conclusion)
                    .await
                    .map_err(NotDone::Failed),
                finalizer::Event::Cleanup(obj) => {
                    match kind.cleanup(&obj, &api, &mut conclusion).await {
                        Ok(Cleanup::Released) => Ok(Action::await_change()),
                        Ok(Cleanup::Kept(action)) => Err(NotDone::Kept(action)),
                        Err(err) => Err(NotDone::Failed(err)),
                    }
                }
            }
        };
        let result = tokio::time::timeout(limit, work)
            .await
            .unwrap_or(Err(NotDone::Failed(Error::ReconcileTimeout(limit))));
        *concluded.lock().unwrap_or_else(|p| p.into_inner()) = conclusion;
        result
    })
    .instrument(span)
    .await
    .or_else(finalizer_result);
    let conclusion = concluded.into_inner().unwrap_or_else(|p| p.into_inner());
    kind.concluded(&obj, conclusion, result.is_err());
    kind.shared().metrics.reconciled(
        K::CONTROLLER,
        started.elapsed(),
        result.as_ref().err().map(Error::metric_label),
    );
    result
}

/// What the finalizer helper's error means: a deletion kept waiting is a requeue, not a
/// failure; the rest are failures to back off from.
fn finalizer_result(err: finalizer::Error<NotDone>) -> Result<Action> {
    match err {
        finalizer::Error::CleanupFailed(NotDone::Kept(action)) => Ok(action),
        finalizer::Error::ApplyFailed(NotDone::Failed(err))
        | finalizer::Error::CleanupFailed(NotDone::Failed(err)) => Err(err),
        finalizer::Error::ApplyFailed(NotDone::Kept(_)) => {
            Err(Error::Finalizer("apply reported a deletion".into()))
        }
        finalizer::Error::AddFinalizer(err) | finalizer::Error::RemoveFinalizer(err) => {
            Err(Error::Kube(err))
        }
        other => Err(Error::Finalizer(other.to_string())),
    }
}

/// How long a reconcile forced by a new `senderops.io/reconcile-requested-at` value must wait:
/// each new value would otherwise reconcile at once, past any backoff, so a tenant annotating
/// in a loop could keep the operator (and Twilio) busy. Not for a spec change or a deletion.
fn forced_too_soon<K: Kind>(kind: &K, obj: &K::Object) -> Option<Duration> {
    let requested = obj.annotations().get(RECONCILE_REQUESTED_ANNOTATION)?;
    let status = K::status(obj);
    let handled = status.and_then(|s| s.last_handled_request()) == Some(requested.as_str());
    let spec_changed = obj.meta().generation != status.and_then(|s| s.observed_generation());
    if handled || spec_changed || obj.meta().deletion_timestamp.is_some() {
        return None;
    }
    let last = kind.last_started(obj)?;
    let failures = kind.failures(obj);
    let shared = kind.shared();
    let wait = if failures > 0 {
        backoff::after_error(shared.error_backoff, failures, None)
    } else {
        Duration::ZERO
    };
    let gap = shared.reconcile_request_interval.max(wait);
    gap.checked_sub(last.elapsed())
        .filter(|wait| !wait.is_zero())
}

/// Backoff per object: doubles with each consecutive failure, resets on success, and waits at
/// least as long as Twilio's `Retry-After`. The driver counted the failure already.
pub fn error_policy<K: Kind>(obj: Arc<K::Object>, error: &Error, kind: Arc<K>) -> Action {
    let failures = kind.failures(&obj).max(1);
    let delay = backoff::after_error(kind.shared().error_backoff, failures, error.retry_after());
    tracing::warn!(
        controller = K::CONTROLLER,
        namespace = obj.namespace().unwrap_or_default(),
        object = obj.name_any(),
        error = %error,
        error_kind = error.metric_label(),
        failures,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_deletion_kept_waiting_is_a_requeue_and_the_rest_are_failures() {
        let wait = Action::requeue(Duration::from_secs(7));
        let kept = finalizer_result(finalizer::Error::CleanupFailed(NotDone::Kept(wait.clone())));
        assert_eq!(kept.unwrap(), wait);
        let timeout = finalizer::Error::ApplyFailed(NotDone::Failed(Error::ReconcileTimeout(
            Duration::from_secs(1),
        )));
        assert_eq!(
            finalizer_result(timeout).unwrap_err().metric_label(),
            "reconcile_timeout"
        );
        let confused = finalizer::Error::ApplyFailed(NotDone::Kept(wait));
        assert_eq!(
            finalizer_result(confused).unwrap_err().metric_label(),
            "finalizer"
        );
    }
}
