//! Leader election with a Lease: of several replicas, only the holder of the Lease reconciles;
//! the others stand by, watching the Lease, and take it the moment its holder releases it, or
//! once it has gone unrenewed for its duration (see [`view`]). kube-lease-manager does the
//! writes (take, renew, release, with server-side apply's conflict detection); it sleeps until a
//! Lease's expiry instead of watching it, so the standby's timing is decided here. A leader that
//! loses its Lease stops reconciling at once.

mod view;

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
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
    let mut changes = lease_changes(leases, &config.name);
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
                Some(manager) => {
                    tracing::info!(identity = %config.identity, "this replica is the leader");
                    let (state, task) = manager.watch().await;
                    return Ok(Leadership { state, task });
                }
                None => view.lost_race(Instant::now()),
            },
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
