//! Running one kind's controller: its objects' watch (one watcher per watched namespace,
//! merged, cached trimmed), the other things that ask for a reconcile (a Secret the object
//! reads, a wake-up from another object's reconcile, the liveness probe), kube's `Controller`
//! with the runtime's driver, and a graceful shutdown. Every kind's controller runs here; a
//! kind hands over only what is about it ([`Watched`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{ObjectMeta, PartialObjectMeta};
use kube::core::PartialObjectMetaExt;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;

use super::accounts::AccountRegistry;
use super::driver::{self, Kind};
use super::{liveness, namespaces};
use crate::health::{self, Liveness};
use crate::twilio::ClientConfig;

/// How every controller of one `senderops run` behaves; a kind's own settings sit beside these.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch these namespaces (each once), or all of them when empty.
    pub namespaces: Vec<String>,
    /// Only objects with these labels (a label selector), so that several operators can each
    /// own a shard.
    pub selector: Option<String>,
    /// Twilio client settings (base URLs, timeouts, retries, per-account request budget).
    pub twilio: ClientConfig,
    /// Reconciles running at once (different objects; one object is never reconciled twice at
    /// the same time).
    pub concurrency: u16,
    /// The first wait after a failed reconcile; it doubles with each failure in a row.
    pub error_backoff: Duration,
    /// The least time between two reconciles of one object that a new value of
    /// `senderops.io/reconcile-requested-at` may force.
    pub reconcile_request_interval: Duration,
    /// The longest one reconcile may run before it is dropped and retried.
    pub reconcile_timeout: Duration,
    /// Each Twilio account's request budget and Error Log, shared by every controller.
    pub accounts: Arc<AccountRegistry>,
    /// Names this operator instance in Events.
    pub instance: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            selector: None,
            twilio: ClientConfig::default(),
            concurrency: 10,
            error_backoff: Duration::from_secs(1),
            reconcile_request_interval: Duration::from_secs(10),
            reconcile_timeout: Duration::from_secs(120),
            accounts: Arc::new(AccountRegistry::default()),
            instance: None,
        }
    }
}

/// The operator's two API server clients. A watch streams for as long as it lasts, so only
/// the watches' client goes without a read timeout; every other call has one.
#[derive(Clone)]
pub struct KubeClients {
    pub watches: Client,
    pub calls: Client,
}

/// The longest a shutdown waits for the first list of objects to complete.
const CACHE_READY_ON_SHUTDOWN: Duration = Duration::from_secs(10);

/// Retries of a failed watch (and the controller's pause on its triggers' errors): from 250 ms,
/// doubling to at most this (plus jitter), and back to the start once events flow. kube's
/// default (client-go's, up to 30 s, at both levels) left the operator blind for about a
/// minute after an API server restart: the reconnects fail while it is down, then the old
/// resourceVersion is refused (410 Expired: its watch cache is new), and each failure doubles
/// the wait before the relist. Two watches retrying every few seconds cost an API server
/// nothing.
const WATCH_RETRY_MAX: Duration = Duration::from_secs(3);

pub fn watch_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(WATCH_RETRY_MAX)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

/// An object's key in the controller's queue.
pub type Key<K> = ObjectRef<<K as Kind>::Object>;

/// The kind's own index of its objects, fed every watch event.
pub type Observer<K> = Box<dyn FnMut(&watcher::Event<<K as Kind>::Object>) + Send>;

/// What a kind says about watching its objects.
pub struct Watched<K: Kind> {
    /// Names the objects in logs ("senders").
    pub what: &'static str,
    /// Watch these namespaces (each once), or all of them when empty.
    pub namespaces: Vec<String>,
    /// Only objects with these labels (a label selector).
    pub selector: Option<String>,
    /// Drops from a cached object what the kind never reads: the cache holds every object.
    pub trim: fn(&mut K::Object),
    /// Only changes for which this gives a new value reconcile: status writes (the operator's
    /// own) must not, or every write would wake the object again.
    pub worth_reconciling: fn(&K::Object) -> Option<u64>,
    /// Sees every watch event after the cache has: the kind's own index of its objects.
    pub observe: Observer<K>,
}

/// One kind's controller, ready to run.
pub struct Parts<K: Kind> {
    pub kind: Arc<K>,
    pub watched: Watched<K>,
    /// The objects' cache (the kind's metrics may read it too) and its writer.
    pub cache: (Store<K::Object>, reflector::store::Writer<K::Object>),
    /// Other streams of objects to reconcile (a Secret an object reads changed).
    pub triggers: Vec<BoxStream<'static, Key<K>>>,
    /// Wake-ups the kind's reconciles send ([`wake_channel`]); the liveness probe goes
    /// through the same channel.
    pub wake: (
        mpsc::UnboundedSender<Key<K>>,
        mpsc::UnboundedReceiver<Key<K>>,
    ),
    /// Reconciles running at once (never two of one object).
    pub concurrency: u16,
}

/// The channel through which a kind's reconciles ask for a reconcile of an object now.
pub fn wake_channel<K: Kind>() -> (
    mpsc::UnboundedSender<Key<K>>,
    mpsc::UnboundedReceiver<Key<K>>,
) {
    mpsc::unbounded_channel()
}

/// Runs the controller until `shutdown` resolves; in-flight reconciles finish first.
/// `watches` is the API server client without a read timeout.
pub async fn run<K: Kind>(
    parts: Parts<K>,
    watches: Client,
    liveness: Arc<Liveness>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Parts {
        kind,
        watched,
        cache: (store, writer),
        triggers,
        wake: (wake_tx, wake_rx),
        concurrency,
    } = parts;
    let probes = tokio::spawn(liveness::probe(
        wake_tx,
        health::probe_interval(liveness.deadline()),
    ));
    let objects = watch_objects(watches, watched, writer);
    let woken = futures::stream::unfold(wake_rx, |mut rx| async move {
        rx.recv().await.map(|key| (key, rx))
    });
    // kube's controller stops feeding its cache once a graceful shutdown starts, and its runner
    // waits for that cache to be ready: a shutdown before the first list completes would
    // never finish. So the shutdown is held until the cache is ready (or briefly, if it never
    // gets there).
    let ready = store.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = tokio::time::timeout(CACHE_READY_ON_SHUTDOWN, ready.wait_until_ready()).await;
    };
    let mut controller = Controller::for_stream(objects, store)
        // The controller backs off on its triggers' errors too, by default up to 30 s.
        .trigger_backoff(watch_backoff())
        .reconcile_on(woken);
    for trigger in triggers {
        controller = controller.reconcile_on(trigger);
    }
    controller
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(driver::reconcile, driver::error_policy, kind)
        .for_each(|result| {
            let liveness = liveness.clone();
            async move { progressed::<K>(&liveness, result) }
        })
        .await;
    probes.abort();
}

type Reconciled<K> = Result<
    (Key<K>, kube::runtime::controller::Action),
    controller::Error<crate::error::Error, watcher::Error>,
>;

/// What a finished reconcile tells `/healthz`: the workers are at work.
fn progressed<K: Kind>(liveness: &Liveness, result: Reconciled<K>) {
    match result {
        Ok(_) => liveness.progressed(),
        // Logged by the error policy; a failed reconcile is still the workers at work.
        Err(controller::Error::ReconcilerFailed(..)) => liveness.progressed(),
        Err(controller::Error::ObjectNotFound(obj)) if liveness::is_probe(&obj) => {
            liveness.progressed()
        }
        Err(controller::Error::ObjectNotFound(obj)) => {
            tracing::debug!(%obj, controller = K::CONTROLLER, "object gone before its reconcile")
        }
        Err(err) => tracing::warn!(error = %err, controller = K::CONTROLLER, "controller error"),
    }
}

/// The objects' watch: cached (trimmed), seen by the kind, and passed on when a change needs
/// a reconcile. One watcher per namespace when several are listed, merged so that the cache and
/// the kind see one watcher's events ([`namespaces::merged`]).
fn watch_objects<K: Kind>(
    client: Client,
    watched: Watched<K>,
    writer: reflector::store::Writer<K::Object>,
) -> impl Stream<Item = Result<K::Object, watcher::Error>> + Send + use<K> {
    let mut config = watcher::Config::default();
    if let Some(selector) = &watched.selector {
        config = config.labels(selector);
    }
    let trim = watched.trim;
    let apis = K::watch_apis(&client, &watched.namespaces);
    // The namespaces as the watchers have them: none for a watcher of all namespaces, or of a
    // cluster-scoped kind, whatever namespaces were listed.
    let namespaces: Vec<String> = apis
        .iter()
        .filter_map(|api| api.namespace().map(str::to_string))
        .collect();
    let watchers = apis
        .into_iter()
        .map(|api| {
            watcher(api, config.clone())
                .backoff(watch_backoff())
                .modify(trim)
        })
        .collect();
    // An object a relist no longer shows is deleted as the cache last held it (nothing
    // downstream holds one the cache does not).
    let cache = writer.as_reader();
    let last_cached = move |namespace: &str, name: &str| {
        let key = ObjectRef::new(name).within(namespace);
        cache.get(&key).map(|obj| (*obj).clone())
    };
    let mut observe = watched.observe;
    namespaces::merged(watched.what, &namespaces, watchers, last_cached)
        .reflect(writer)
        .inspect_ok(move |event| observe(event))
        .applied_objects()
        .predicate_filter(watched.worth_reconciling, Default::default())
}

/// The objects to reconcile because a Secret they read changed: `readers` maps each Secret
/// event to them. Metadata only, and nothing of a Secret is kept here. One watcher per listed
/// namespace, merged as the objects' are.
pub fn secret_changes<K: Kind>(
    client: Client,
    namespaces: &[String],
    mut readers: impl FnMut(&watcher::Event<PartialObjectMeta<Secret>>) -> Vec<Key<K>> + Send + 'static,
) -> BoxStream<'static, Key<K>> {
    let watchers = namespaces::apis::<PartialObjectMeta<Secret>>(&client, namespaces)
        .into_iter()
        .map(|api| watcher(api, watcher::Config::default()).backoff(watch_backoff()))
        .collect();
    // Readers look at a Secret's namespace and name only.
    let by_name = |namespace: &str, name: &str| {
        Some(
            ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            }
            .into_response_partial::<Secret>(),
        )
    };
    namespaces::merged("Secrets", namespaces, watchers, by_name)
        .flat_map(move |event| {
            let objects = match event {
                Ok(event) => readers(&event),
                Err(err) => {
                    tracing::warn!(error = %err, "watching Secrets failed; retrying");
                    Vec::new()
                }
            };
            futures::stream::iter(objects)
        })
        .boxed()
}
