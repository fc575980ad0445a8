//! Leader election with a Lease (kube-lease-manager): of several replicas, only the holder of
//! the Lease reconciles; the others wait, ready to take over when it stops or its Lease runs
//! out. A leader that loses its Lease stops reconciling at once.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which Lease, held by whom, for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Unique per replica (the pod name).
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
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(config.duration.as_secs().max(2))
        .with_grace(config.grace())
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    tracing::info!(
        lease = %config.name,
        namespace = %config.namespace,
        identity = %config.identity,
        "waiting for leadership"
    );
    while !*state.borrow_and_update() {
        if state.changed().await.is_err() {
            // The manager stopped on its own: its result says why.
            return Err(match task.await {
                Ok(Err(err)) => err,
                _ => LeaseManagerError::InconsistentState("the Lease manager stopped".into()),
            });
        }
    }
    tracing::info!(identity = %config.identity, "this replica is the leader");
    Ok(Leadership { state, task })
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
