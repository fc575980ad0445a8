//! A leader handover as a watch of the Lease sees it, for the failover tests: who held it and
//! when they last renewed it (its `renewTime`, written by the replica on this machine's clock),
//! whether it was released, and when the next holder held it. That shows whether a takeover
//! waited for the Lease to expire, and how soon a released Lease was taken.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::watcher;

pub struct Handover {
    pub new_holder: String,
    /// The old holder's last renewal the Lease showed before it changed hands.
    pub old_renewed: Option<Timestamp>,
    /// When the Lease was first seen without a holder (a release, or a replica clearing an
    /// expired Lease before taking it), by the test's clock and by the wall clock.
    pub released_at: Option<Instant>,
    pub released_wall: Option<Timestamp>,
    /// When the Lease was first seen held by another replica, by the test's clock and by the
    /// wall clock. (Not the new holder's `acquireTime`: the lease library may write it again
    /// after a takeover.)
    pub taken_at: Instant,
    pub taken_wall: Timestamp,
}

impl Handover {
    /// From the old holder's last renewal (the Lease's `renewTime`) to the Lease seen held by
    /// the new one.
    pub fn unrenewed_before_taken(&self) -> Duration {
        let renewed = self
            .old_renewed
            .expect("the old holder renewed the Lease at least once");
        let gap = self.taken_wall.duration_since(renewed);
        Duration::try_from(gap).unwrap_or(Duration::ZERO)
    }

    /// Whether the Lease was without a holder before it had gone unrenewed for `duration`:
    /// a release, which a crashed holder cannot make.
    pub fn freed_before_expiry(&self, duration: Duration) -> bool {
        match (self.released_wall, self.old_renewed) {
            (Some(freed), Some(renewed)) => {
                Duration::try_from(freed.duration_since(renewed)).unwrap_or(Duration::ZERO)
                    < duration
            }
            (freed, _) => freed.is_some(),
        }
    }

    /// From the release to the take, as the watch saw them.
    pub fn released_to_taken(&self) -> Option<Duration> {
        self.released_at.map(|released| self.taken_at - released)
    }
}

fn holder(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty())
}

/// Watches Lease `name` (every write is an event, so a release is seen however soon the next
/// holder takes the Lease) until a holder other than `old` holds it; panics after `within`,
/// with `context()` (the pods, say) in the message.
pub async fn next_holder(
    leases: &Api<Lease>,
    name: &str,
    old: &str,
    within: Duration,
    context: impl Fn() -> String,
) -> Handover {
    let mut changes = std::pin::pin!(watcher::watch_object(leases.clone(), name));
    let mut old_renewed = None;
    let mut released_at = None;
    let mut released_wall = None;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let change = tokio::time::timeout_at(deadline, changes.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "Lease {name} was still held by {old} (or nobody) {within:?} later:\n{}",
                    context()
                )
            });
        let lease = match change {
            Some(Ok(Some(lease))) => lease,
            // Not created yet, deleted, or a watch error the watcher retries.
            Some(Ok(None) | Err(_)) => continue,
            None => panic!("the watch of Lease {name} ended"),
        };
        let spec = lease.spec.clone().unwrap_or_default();
        match holder(&lease) {
            Some(h) if h == old => old_renewed = spec.renew_time.map(|t| t.0),
            Some(new_holder) => {
                return Handover {
                    new_holder,
                    old_renewed,
                    released_at,
                    released_wall,
                    taken_at: Instant::now(),
                    taken_wall: Timestamp::now(),
                };
            }
            None => {
                released_at.get_or_insert_with(Instant::now);
                released_wall.get_or_insert_with(Timestamp::now);
            }
        }
    }
}

/// The pid in the identity of Lease `name`'s holder (`host-PID`: replicas run outside a pod).
pub async fn holder_pid(leases: &Api<Lease>, name: &str) -> Option<u32> {
    let lease = leases.get_opt(name).await.expect("read the Lease")?;
    holder(&lease)?.rsplit('-').next()?.parse().ok()
}
