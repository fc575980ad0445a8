//! How long an object waits after failed reconciles, and the spread that keeps objects
//! reconciled together from coming back in the same instant: every kind's.

use std::time::Duration;

/// The longest an object waits after repeated errors.
pub const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(300);

/// `base` doubled `steps` times, at most `max`.
pub fn doubled(base: Duration, steps: u32, max: Duration) -> Duration {
    base.saturating_mul(2u32.saturating_pow(steps.min(20)))
        .min(max)
}

/// The wait after the `failures`-th consecutive error (1-based) from a first wait of `base`,
/// never shorter than what Twilio asked for with `Retry-After`.
pub fn after_error(base: Duration, failures: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = doubled(base, failures.saturating_sub(1), MAX_ERROR_BACKOFF);
    retry_after.map_or(backoff, |wait| backoff.max(wait))
}

/// Spreads requeues by up to 10 % so that objects reconciled together do not all come back in
/// the same instant. `seed` is any per-object number.
pub fn jittered(delay: Duration, seed: u64) -> Duration {
    let tenth = delay.as_millis() as u64 / 10;
    if tenth == 0 {
        return delay;
    }
    delay + Duration::from_millis(seed % tenth)
}
