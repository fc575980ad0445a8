//! Leader election with a Lease: of several replicas, only the holder of the Lease reconciles;
//! the others stand by, watching the Lease, and take it the moment its holder releases it, or
//! once it has gone unrenewed for its duration (see [`view`]), with one conditional write. For
//! the rest kube-lease-manager does the writes (take a free Lease, renew, release, with
//! server-side apply's conflict detection); it sleeps until a Lease's expiry instead of watching
//! it, so the standby's timing is decided here. A leader that loses its Lease stops reconciling
//! at once.

mod view;

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use view::{LeaseView, Next, Record};

/// How long one attempt to take the Lease may last. The library sleeps out a Lease it still
/// thinks valid, and waits up to a second after clearing an expired one.
const TAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Which Lease, held by whom, for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Unique per process: a restarted container must not mistake its predecessor's Lease for
    /// its own.
    pub identity: String,
    /// A Lease not renewed for this long is free for another replica.
    pub duration: Duration,
}

impl LeaseConfig {
    /// Renewal starts this long before expiry: a third of the duration leaves the holder two
    /// attempts before it expires.
    fn grace(&self) -> u64 {
        (self.duration.as_secs() / 3).max(1)
    }

    async fn manager(&self, client: Client) -> Result<LeaseManager, LeaseManagerError> {
        LeaseManagerBuilder::new(client, &self.name)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_duration(self.duration.as_secs().max(2))
            .with_grace(self.grace())
            .build()
            .await
    }
}

/// This replica's hold on the Lease.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

/// Waits until this replica holds the Lease (creating it if needed).
pub async fn acquire(
    client: Client,
    config: &LeaseConfig,
) -> Result<Leadership, LeaseManagerError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let mut changes = lease_changes(leases.clone(), &config.name);
    let mut view = LeaseView::new(Instant::now());
    tracing::info!(
        lease = %config.name,
        namespace = %config.namespace,
        identity = %config.identity,
        "waiting for leadership"
    );
    loop {
        match view.next(&config.identity, config.duration, Instant::now()) {
            Next::Take => match take(client.clone(), config).await? {
                Some(manager) => return Ok(Leadership::hold(manager, config).await),
                None => view.lost_race(Instant::now()),
            },
            Next::TakeOver(expired) => {
                if take_over(&leases, config, &expired).await
                    && let Some(manager) = take(client.clone(), config).await?
                {
                    return Ok(Leadership::hold(manager, config).await);
                }
                view.lost_race(Instant::now());
            }
            Next::Wait(until) => {
                let deadline = async {
                    match until {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    change = changes.next() => apply(&mut view, change),
                    _ = deadline => {}
                }
            }
        }
    }
}

/// The watch of the one Lease, restarted with backoff when it fails.
fn lease_changes(
    leases: Api<Lease>,
    name: &str,
) -> impl Stream<Item = Result<watcher::Event<Lease>, watcher::Error>> + Unpin + use<> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(leases, config).default_backoff().boxed()
}

fn apply(view: &mut LeaseView, change: Option<Result<watcher::Event<Lease>, watcher::Error>>) {
    let now = Instant::now();
    match change {
        Some(Ok(watcher::Event::Init)) => view.list_started(),
        Some(Ok(watcher::Event::InitApply(lease) | watcher::Event::Apply(lease))) => {
            view.observe(Some(Record::of(&lease)), now)
        }
        Some(Ok(watcher::Event::Delete(_))) => view.observe(None, now),
        Some(Ok(watcher::Event::InitDone)) => view.list_done(now),
        Some(Err(err)) => {
            tracing::warn!(
                error = %err,
                "cannot watch the Lease (its Role needs list and watch on leases); standing by on \
                 its timestamps instead"
            );
            view.watch_failed(now);
        }
        // The backoff keeps the watch going for ever; should it end, decide by timestamps.
        None => view.watch_failed(now),
    }
}

/// Takes over a Lease that has gone unrenewed for its duration in one conditional write: only
/// while it is still the Lease seen expiring (its resourceVersion), so nobody renewed or took it
/// in between. (The library would clear it first and wait up to a second before taking it,
/// which hands a released Lease to whichever candidate watches, such as the dead leader's
/// restarted container.) True if this replica now holds it.
async fn take_over(leases: &Api<Lease>, config: &LeaseConfig, expired: &Record) -> bool {
    let lease = match leases.get_opt(&config.name).await {
        Ok(Some(lease)) if Record::of(&lease) == *expired => lease,
        Ok(_) => return false,
        Err(err) => {
            tracing::warn!(error = %err, lease = %config.name, "could not read the Lease");
            return false;
        }
    };
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let transitions = lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0) + 1;
    let patch = json!({
        "metadata": {"resourceVersion": lease.metadata.resource_version},
        "spec": {
            "holderIdentity": config.identity,
            "acquireTime": now,
            "renewTime": now,
            "leaseDurationSeconds": config.duration.as_secs().max(2),
            "leaseTransitions": transitions,
        },
    });
    // The library's field manager for this identity, so its renewals own the same fields.
    let params = PatchParams {
        field_manager: Some(format!("kube-lease-manager-{}", config.identity)),
        ..PatchParams::default()
    };
    match leases
        .patch(&config.name, &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(
                lease = %config.name,
                previous = expired.holder.as_deref().unwrap_or("-"),
                "took over a Lease its holder stopped renewing"
            );
            true
        }
        Err(kube::Error::Api(status)) if status.is_conflict() => false,
        Err(err) => {
            tracing::warn!(error = %err, lease = %config.name, "could not take over the Lease");
            false
        }
    }
}

/// One attempt to take the Lease: `Some` with the manager that now holds it.
async fn take(
    client: Client,
    config: &LeaseConfig,
) -> Result<Option<LeaseManager>, LeaseManagerError> {
    // A new manager reads the Lease afresh (one reused would trust what it read before).
    let manager = config.manager(client).await?;
    match tokio::time::timeout(TAKE_TIMEOUT, manager.changed()).await {
        Ok(Ok(true)) => Ok(Some(manager)),
        Ok(Ok(false)) | Err(_) => Ok(None),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, lease = %config.name, "could not take the Lease");
            Ok(None)
        }
    }
}

impl Leadership {
    /// Keeps the Lease `manager` holds renewed from now on.
    async fn hold(manager: LeaseManager, config: &LeaseConfig) -> Leadership {
        tracing::info!(identity = %config.identity, "this replica is the leader");
        let (state, task) = manager.watch().await;
        Leadership { state, task }
    }

    /// Resolves when the Lease is lost (another replica took it, or it could not be renewed).
    pub async fn lost(&mut self) {
        while *self.state.borrow_and_update() {
            if self.state.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the Lease up, so a standby takes over at once instead of after it expires.
    pub async fn release(self) {
        drop(self.state);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the Lease"),
            Ok(Err(err)) => tracing::warn!(error = %err, "could not release the Lease"),
            Err(err) => tracing::warn!(error = %err, "the Lease task failed"),
        }
    }
}
