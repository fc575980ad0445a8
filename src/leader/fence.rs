//! The moment after which this replica may no longer act at Twilio: a leader's renew deadline.
//!
//! A leader that cannot renew its Lease (cut off from the API server, or frozen) cannot know
//! whether it still leads; a standby takes the Lease once it has gone unrenewed for its
//! duration. So every renewal moves the fence to (when the renewal was sent) + the renew
//! deadline, which comes before any standby may take over, and the Twilio client checks it:
//! no request starts past the fence, and one in flight is dropped when the fence is reached.
//! The check reads the clock itself, so a process frozen and woken after its deadline sends
//! nothing, even before the task that would notice the lapse has run.
//!
//! Without leader election the fence is open: nothing bounds the calls but their timeouts.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

/// Where the fence stands now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// No leader election: nothing to fence.
    Open,
    /// Calls may run until then.
    Until(Instant),
    /// Past it (or never renewed): no call may start.
    Passed,
}

/// Why a guarded call did not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fenced {
    /// The fence was already passed: the call never started.
    BeforeStart,
    /// The fence was reached while the call was in flight; it was dropped, and may or may not
    /// have reached the other side.
    InFlight,
}

/// Shared by the leader's renewal task (which moves it) and every Twilio client (which checks
/// it). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Fence(Option<Arc<Moving>>);

/// The same fence (one shared deadline), or both open.
impl PartialEq for Fence {
    fn eq(&self, other: &Fence) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Fence {}

#[derive(Debug)]
struct Moving {
    origin: Instant,
    /// Nanoseconds after `origin` until which calls may run; 0: closed.
    until: AtomicU64,
}

impl Fence {
    /// No deadline: the process acts whenever it is asked to.
    pub fn open() -> Fence {
        Fence(None)
    }

    /// Closed until the first [`Fence::extend_to`]: a replica that does not lead yet acts
    /// nowhere.
    pub fn closed() -> Fence {
        Fence(Some(Arc::new(Moving {
            origin: Instant::now(),
            until: AtomicU64::new(0),
        })))
    }

    /// Calls may run until `until` (never moved back: a late answer to an older renewal does
    /// not shorten a newer one).
    pub fn extend_to(&self, until: Instant) {
        if let Some(moving) = &self.0 {
            let nanos = until.saturating_duration_since(moving.origin).as_nanos();
            let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).max(1);
            moving.until.fetch_max(nanos, Ordering::AcqRel);
        }
    }

    /// No call may start from now on (the Lease is lost, lapsed or released).
    pub fn close(&self) {
        if let Some(moving) = &self.0 {
            moving.until.store(0, Ordering::Release);
        }
    }

    pub fn deadline(&self) -> Deadline {
        self.deadline_at(Instant::now())
    }

    fn deadline_at(&self, now: Instant) -> Deadline {
        let Some(moving) = &self.0 else {
            return Deadline::Open;
        };
        match moving.until.load(Ordering::Acquire) {
            0 => Deadline::Passed,
            nanos => {
                let until = moving.origin + Duration::from_nanos(nanos);
                if until > now {
                    Deadline::Until(until)
                } else {
                    Deadline::Passed
                }
            }
        }
    }

    /// Whether the fence stands passed (a leader past its renew deadline, or not leading).
    pub fn is_passed(&self) -> bool {
        self.deadline() == Deadline::Passed
    }

    /// Runs `call` within the fence as it stands now: not at all if it is passed, and dropped
    /// when it is reached. The clock is read before the call is polled each time, so a
    /// process that wakes past the fence does not let the call take one more step first (a
    /// timeout would: it polls the call before its timer).
    pub async fn guard<F: Future>(&self, call: F) -> Result<F::Output, Fenced> {
        let until = match self.deadline() {
            Deadline::Open => return Ok(call.await),
            Deadline::Passed => return Err(Fenced::BeforeStart),
            Deadline::Until(until) => until,
        };
        let mut call = pin!(call);
        let mut timer = pin!(tokio::time::sleep_until(until.into()));
        std::future::poll_fn(|cx| {
            if Instant::now() >= until {
                return Poll::Ready(Err(Fenced::InFlight));
            }
            if let Poll::Ready(output) = call.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            timer.as_mut().poll(cx).map(|()| Err(Fenced::InFlight))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_fence_never_passes_and_a_new_closed_one_is_passed() {
        assert_eq!(Fence::open().deadline(), Deadline::Open);
        assert_eq!(Fence::default().deadline(), Deadline::Open);
        assert!(Fence::closed().is_passed());
    }

    #[test]
    fn renewals_move_it_forward_only_and_it_passes_at_its_deadline() {
        let fence = Fence::closed();
        let now = Instant::now();
        fence.extend_to(now + Duration::from_secs(10));
        fence.extend_to(now + Duration::from_secs(5));
        assert_eq!(
            fence.deadline_at(now),
            Deadline::Until(now + Duration::from_secs(10)),
            "an older renewal's answer arriving late does not move it back"
        );
        assert_eq!(
            fence.deadline_at(now + Duration::from_secs(10)),
            Deadline::Passed
        );
        fence.close();
        assert_eq!(fence.deadline_at(now), Deadline::Passed);
    }

    #[tokio::test]
    async fn a_passed_fence_never_starts_the_call() {
        let fence = Fence::closed();
        let mut started = false;
        let result = fence.guard(async { started = true }).await;
        assert_eq!(result, Err(Fenced::BeforeStart));
        assert!(!started);
    }

    #[tokio::test]
    async fn a_call_in_flight_is_dropped_at_the_fence() {
        let fence = Fence::closed();
        let start = Instant::now();
        fence.extend_to(start + Duration::from_millis(50));
        let result = fence
            .guard(tokio::time::sleep(Duration::from_secs(5)))
            .await;
        assert_eq!(result, Err(Fenced::InFlight));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_call_that_ends_in_time_returns_its_output() {
        let fence = Fence::closed();
        fence.extend_to(Instant::now() + Duration::from_secs(5));
        assert_eq!(fence.guard(async { 7 }).await, Ok(7));
    }

    #[tokio::test]
    async fn a_call_woken_past_the_fence_takes_no_further_step() {
        // A frozen process: the call is ready to go on, but the fence passed meanwhile.
        let fence = Fence::closed();
        fence.extend_to(Instant::now() + Duration::from_millis(20));
        let steps = std::sync::atomic::AtomicU32::new(0);
        let call = async {
            steps.fetch_add(1, Ordering::Relaxed);
            // Blocks the thread past the fence, as SIGSTOP would, then yields once.
            std::thread::sleep(Duration::from_millis(60));
            tokio::task::yield_now().await;
            steps.fetch_add(1, Ordering::Relaxed);
        };
        assert_eq!(fence.guard(call).await, Err(Fenced::InFlight));
        assert_eq!(
            steps.load(Ordering::Relaxed),
            1,
            "the step after waking ran"
        );
    }
}
