//! How often a user may ask for a new one-time code (`senderops.io/resend-code`). Each request
//! is a create at Twilio, which sends an SMS or places a call to the number; a tenant changing
//! the annotation in a loop must not turn the operator into a dialler. The requests of the
//! last day are kept in the sender's status, so a restart or a failover does not reset them.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The requests a status keeps: a day's worth.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The rules (from `senderops run`'s flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResendLimits {
    /// The least time between two requests for one sender.
    pub interval: Duration,
    /// The most requests for one sender in 24 hours.
    pub per_day: u32,
}

impl Default for ResendLimits {
    /// Two minutes apart, five a day: more than a person waiting for an SMS needs, few enough
    /// that a loop cannot flood a number (Twilio itself refuses more codes with 63114 after a
    /// handful, for hours).
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(120),
            per_day: 5,
        }
    }
}

/// Why a request waits, and how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub left: Duration,
    pub why: String,
}

/// Whether a request may go out at `now`, given the earlier ones (`made`, any order).
pub fn may_request(made: &[Timestamp], now: Timestamp, limits: ResendLimits) -> Result<(), Held> {
    let recent: Vec<Timestamp> = recent(made, now);
    let after = |at: Timestamp, wait: Duration| {
        let until = at + SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
        let left = until.duration_since(now);
        Duration::try_from(left).unwrap_or_default()
    };
    if let Some(last) = recent.iter().max() {
        let left = after(*last, limits.interval);
        if !left.is_zero() {
            return Err(Held {
                left,
                why: format!(
                    "at most one new code per {} (--code-resend-interval)",
                    humantime::format_duration(limits.interval)
                ),
            });
        }
    }
    if recent.len() >= limits.per_day as usize {
        let mut sorted = recent.clone();
        sorted.sort();
        // The request that must leave the day's window for another to fit.
        let oldest = sorted[sorted.len() - limits.per_day as usize];
        return Err(Held {
            left: after(oldest, DAY).max(Duration::from_secs(1)),
            why: format!(
                "at most {} new codes a day (--code-resends-per-day)",
                limits.per_day
            ),
        });
    }
    Ok(())
}

/// `made` and a request at `now`, keeping only the last day's.
pub fn with_request(made: &[Timestamp], now: Timestamp) -> Vec<Timestamp> {
    let mut kept = recent(made, now);
    kept.push(now);
    kept.sort();
    kept
}

fn recent(made: &[Timestamp], now: Timestamp) -> Vec<Timestamp> {
    let day = SignedDuration::try_from(DAY).unwrap_or(SignedDuration::MAX);
    made.iter()
        .copied()
        .filter(|at| now.duration_since(*at) < day)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    const LIMITS: ResendLimits = ResendLimits {
        interval: Duration::from_secs(120),
        per_day: 3,
    };

    #[test]
    fn requests_are_spaced_by_the_interval() {
        assert_eq!(may_request(&[], at(0), LIMITS), Ok(()));
        let held = may_request(&[at(0)], at(30), LIMITS).unwrap_err();
        assert_eq!(held.left, Duration::from_secs(90));
        assert!(held.why.contains("--code-resend-interval"), "{}", held.why);
        assert_eq!(may_request(&[at(0)], at(120), LIMITS), Ok(()));
    }

    #[test]
    fn a_day_holds_at_most_the_cap_and_the_oldest_request_frees_the_next() {
        let made = [at(0), at(1000), at(2000)];
        let held = may_request(&made, at(3000), LIMITS).unwrap_err();
        assert_eq!(held.left, Duration::from_secs(24 * 3600 - 3000));
        assert!(held.why.contains("3 new codes a day"), "{}", held.why);
        assert_eq!(may_request(&made, at(24 * 3600), LIMITS), Ok(()));
    }

    #[test]
    fn only_the_last_days_requests_are_kept() {
        let kept = with_request(&[at(0), at(10)], at(24 * 3600 + 5));
        assert_eq!(kept, [at(10), at(24 * 3600 + 5)]);
    }
}
