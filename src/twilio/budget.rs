//! Account-wide request budget: one token bucket per Twilio account, shared by every client and
//! every reconcile of that account, so the operator as a whole stays under Twilio's limits
//! (which are per account) however many `WhatsAppSender`s it manages.
//!
//! The bucket is governor's GCRA limiter driven by tokio's clock, so waiting is a tokio sleep
//! and tests can run it on paused time.

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Size of each account's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests that may go out at once after a quiet period.
    pub burst: NonZeroU32,
}

impl Default for BudgetConfig {
    /// 5 requests/s with a burst of 5. Twilio's limits are per account and shared with
    /// whatever else the customer runs on that account (sending messages, other tools), and
    /// it answers bursts with 429/20429; the Senders API itself is slow-moving (registrations
    /// take minutes), so 5/s is plenty for reconciling hundreds of senders while leaving most
    /// of the account's capacity to its real traffic. A burst of 5 lets one reconcile (a list
    /// page or two plus a few fetches/updates) go out without queueing, while no one-second
    /// window ever carries more than 10 requests (burst plus one second of refill): a burst
    /// of 10 measured 429s against an account limited to 10/s.
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(5).expect("non-zero"),
            burst: NonZeroU32::new(5).expect("non-zero"),
        }
    }
}

/// governor clock on tokio's timeline (`Nanos` since the bucket was made), so that paused
/// tokio time in tests also pauses the bucket.
#[derive(Clone, Debug)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(tokio::time::Instant::now().saturating_duration_since(self.start))
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// One account's bucket. Cloning shares it.
#[derive(Clone)]
pub struct RequestBudget {
    limiter: Arc<Limiter>,
    clock: TokioClock,
    config: BudgetConfig,
}

impl RequestBudget {
    /// Whether a clone of this budget exists besides this one (a client holds it).
    #[cfg(test)]
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.limiter) > 1
    }

    /// A handle that does not keep the bucket: it lives as long as some client holds it.
    pub fn downgrade(&self) -> WeakBudget {
        WeakBudget {
            limiter: Arc::downgrade(&self.limiter),
            clock: self.clock.clone(),
            config: self.config,
        }
    }
}

/// A [`RequestBudget`] that does not keep its bucket alive.
#[derive(Clone, Debug)]
pub struct WeakBudget {
    limiter: Weak<Limiter>,
    clock: TokioClock,
    config: BudgetConfig,
}

impl WeakBudget {
    /// The bucket, while some client still holds it.
    pub fn upgrade(&self) -> Option<RequestBudget> {
        Some(RequestBudget {
            limiter: self.limiter.upgrade()?,
            clock: self.clock.clone(),
            config: self.config,
        })
    }

    pub fn is_alive(&self) -> bool {
        self.limiter.strong_count() > 0
    }
}

impl std::fmt::Debug for RequestBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBudget")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RequestBudget {
    pub fn new(config: BudgetConfig) -> Self {
        let clock = TokioClock {
            start: tokio::time::Instant::now(),
        };
        let quota = Quota::per_second(config.per_second).allow_burst(config.burst);
        Self {
            limiter: Arc::new(RateLimiter::direct_with_clock(quota, clock.clone())),
            clock,
            config,
        }
    }

    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    /// Waits until a request may go out, then takes its token. Waiters are not queued fairly;
    /// each retries at the earliest moment the bucket allows, which is fine for a handful of
    /// concurrent reconciles.
    pub async fn acquire(&self) {
        loop {
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Takes a token if one is free right now.
    pub fn try_acquire(&self) -> bool {
        self.limiter.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    fn config(per_second: u32, burst: u32) -> BudgetConfig {
        BudgetConfig {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_passes_then_requests_wait_for_refill() {
        let budget = RequestBudget::new(config(5, 10));
        let start = Instant::now();
        for _ in 0..10 {
            budget.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the burst goes out at once"
        );
        assert!(!budget.try_acquire(), "bucket is empty after the burst");

        // Five more at 5/s: the last leaves about one second after the burst.
        for _ in 0..5 {
            budget.acquire().await;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(990) && waited <= Duration::from_millis(1100),
            "waited {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_bucket() {
        let a1 = RequestBudget::new(config(1, 2));
        let a2 = a1.clone();
        assert!(a1.try_acquire());
        assert!(a2.try_acquire());
        assert!(
            !a1.try_acquire(),
            "the two tokens are spent by either handle"
        );

        let start = Instant::now();
        a2.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(990));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_spread_out() {
        let budget = RequestBudget::new(config(10, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let budget = budget.clone();
                tokio::spawn(async move {
                    budget.acquire().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        // One immediately, then one every 100 ms.
        assert_eq!(times[0], Duration::ZERO);
        assert!(times[4] >= Duration::from_millis(390), "{times:?}");
    }

    #[test]
    fn defaults() {
        let d = BudgetConfig::default();
        assert_eq!((d.per_second.get(), d.burst.get()), (5, 5));
    }
}
