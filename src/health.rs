//! What `/healthz` answers: whether this process still makes progress, so that a kubelet
//! restarts one that is wedged, and never one that is merely idle or standing by.
//!
//! Progress is what each role does whether or not there is work:
//! - a standby sees its Lease: the leader renews it every few seconds, so the watch delivers
//!   changes (or a read of it succeeds while the watch is down);
//! - the active replica's controller answers a probe: every few seconds a reconcile request for
//!   a name no object can have goes through the same queue and workers as every sender, and
//!   comes out as "not found". With every worker stuck, or the queue no longer served, no probe
//!   comes out. A reconcile that finishes counts too.
//! - a leader past its renew deadline is not healthy (it is stopping; see `leader::fence`).
//!
//! An API server that cannot be reached is not a failure of this process: a watch that keeps
//! failing does not by itself fail the leader's probe (its workers still answer), and the
//! leader stops at its renew deadline anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::leader::Fence;

/// The default `--progress-deadline`: well past a slow list of thousands of senders at start,
/// well short of leaving a wedged leader in place for long.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(120);

/// How often the active controller is probed: four times per deadline, at most every 10 s.
pub fn probe_interval(deadline: Duration) -> Duration {
    (deadline / 4).clamp(Duration::from_millis(100), Duration::from_secs(10))
}

/// What `/healthz` reads. Shared; the methods take `&self`.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    deadline: Duration,
    /// Milliseconds after `origin` of the last progress.
    last_progress: AtomicU64,
    /// Set while leading: a passed fence fails the probe.
    fence: Mutex<Option<Fence>>,
}

impl Liveness {
    /// Progress is due within `deadline` of start, and of every progress after.
    pub fn new(deadline: Duration) -> Liveness {
        Liveness {
            origin: Instant::now(),
            deadline,
            last_progress: AtomicU64::new(0),
            fence: Mutex::new(None),
        }
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Something that only a live process does just happened.
    pub fn progressed(&self) {
        let ms = self.origin.elapsed().as_millis();
        self.last_progress
            .fetch_max(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// From now on this replica leads: its progress is the controller's, and its fence counts.
    /// The clock restarts, so that the controller's first list has a whole deadline.
    pub fn leading(&self, fence: Fence) {
        *self.fence.lock().unwrap_or_else(PoisonError::into_inner) = Some(fence);
        self.progressed();
    }

    /// `Err` with why the process should be restarted.
    pub fn check(&self) -> Result<(), String> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Result<(), String> {
        let fenced = self
            .fence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(Fence::is_passed);
        if fenced {
            return Err(
                "the leader did not renew its Lease within its renew deadline; it is stopping"
                    .into(),
            );
        }
        let last = self.origin + Duration::from_millis(self.last_progress.load(Ordering::Relaxed));
        let quiet = now.saturating_duration_since(last);
        if quiet > self.deadline {
            return Err(format!(
                "no progress for {} (--progress-deadline {}): the controller's workers or \
                 queue, or the standby's view of the Lease, are stuck",
                humantime::format_duration(round_to_ms(quiet)),
                humantime::format_duration(self.deadline),
            ));
        }
        Ok(())
    }
}

/// `duration` to the millisecond, for messages (humantime would print every nanosecond).
pub fn round_to_ms(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(60);

    #[test]
    fn healthy_from_start_until_a_deadline_passes_without_progress() {
        let liveness = Liveness::new(DEADLINE);
        let start = liveness.origin;
        assert!(liveness.check_at(start + DEADLINE).is_ok());
        let err = liveness
            .check_at(start + DEADLINE + Duration::from_secs(1))
            .unwrap_err();
        assert!(err.contains("no progress for 1m 1s"), "{err}");
    }

    #[test]
    fn progress_restarts_the_deadline() {
        let liveness = Liveness::new(Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(80));
        assert!(liveness.check().is_err());
        liveness.progressed();
        assert!(liveness.check().is_ok());
    }

    #[test]
    fn a_leader_past_its_fence_is_unhealthy_whatever_its_progress() {
        let liveness = Liveness::new(DEADLINE);
        let fence = Fence::closed();
        fence.extend_to(Instant::now() + DEADLINE);
        liveness.leading(fence.clone());
        assert!(liveness.check().is_ok());
        fence.close();
        liveness.progressed();
        let err = liveness.check().unwrap_err();
        assert!(err.contains("renew deadline"), "{err}");
    }

    #[test]
    fn probes_come_four_times_per_deadline_within_bounds() {
        assert_eq!(
            probe_interval(Duration::from_secs(120)),
            Duration::from_secs(10)
        );
        assert_eq!(
            probe_interval(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
        assert_eq!(
            probe_interval(Duration::from_millis(10)),
            Duration::from_millis(100)
        );
    }
}
