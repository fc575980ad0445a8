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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_back_off_and_honour_retry_after() {
        let base = Duration::from_secs(1);
        let waits: Vec<u64> = (1..=11)
            .map(|n| after_error(base, n, None).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(
            after_error(base, 1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            after_error(base, 9, Some(Duration::from_secs(30))),
            Duration::from_secs(256)
        );
        assert_eq!(after_error(base, u32::MAX, None), MAX_ERROR_BACKOFF);
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        let d = Duration::from_secs(300);
        for seed in [0, 1, 29_999, 30_000, u64::MAX] {
            let j = jittered(d, seed);
            assert!(j >= d && j < d + Duration::from_secs(30), "{seed}: {j:?}");
        }
        assert_eq!(
            jittered(Duration::from_millis(5), 7),
            Duration::from_millis(5)
        );
    }
}
