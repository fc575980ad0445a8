//! When to look at a sender again. Pure: Twilio's status and a few counters in, a delay out.
//!
//! Twilio's registration steps take seconds to minutes and nothing notifies us, so senders in
//! motion are polled, starting quickly and backing off. Settled senders are read once per
//! resync. Errors back off per object and reset on success.

use std::time::Duration;

use crate::runtime::backoff::doubled;
use crate::twilio::SenderStatus;

/// The longest a sender in motion waits between two polls.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// 63114 (too many codes) lifts after hours; asking sooner only extends the lockout.
pub const TOO_MANY_CODES_RETRY: Duration = Duration::from_secs(3600);

/// How often a sender queued behind another one's onboarding checks its turn, in case the
/// wake-up from the one ahead is lost (e.g. it was deleted while the operator was down).
pub const QUEUED_RECHECK: Duration = Duration::from_secs(30);

/// Operator-wide timing settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// First poll of a sender in motion; doubles per poll in the same status.
    pub poll_interval: Duration,
    /// Reading settled senders.
    pub resync_interval: Duration,
}

impl Default for Pacing {
    /// Twilio moves a sender through CREATING and VERIFYING in seconds to minutes: a 5 s first
    /// poll sees most steps soon after they happen without spending the account's request
    /// budget. 5 minutes between reads of an ONLINE sender notices quality-rating drops and
    /// out-of-band edits well within an hour, at 12 reads per hour per account (batched).
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(300),
        }
    }
}

/// Twilio is working on the sender and will move it on by itself.
pub fn in_motion(status: &SenderStatus) -> bool {
    matches!(
        status,
        SenderStatus::Creating
            | SenderStatus::Verifying
            | SenderStatus::OnlineUpdating
            | SenderStatus::TwilioReview
    )
}

/// Still being registered: Twilio advises onboarding one such number per account at a time.
pub fn onboarding(status: &SenderStatus) -> bool {
    matches!(
        status,
        SenderStatus::Creating | SenderStatus::PendingVerification | SenderStatus::Verifying
    )
}

impl Pacing {
    /// The poll after `polls_in_status` earlier polls found the sender in the same moving
    /// state. OFFLINE right after registration is usual for a few minutes, so an OFFLINE sender
    /// without a reason for the user is polled like one in motion.
    pub fn next_poll(&self, status: &SenderStatus, polls_in_status: u32) -> Duration {
        let moving = in_motion(status) || *status == SenderStatus::Offline;
        if moving {
            doubled(self.poll_interval, polls_in_status, MAX_POLL_INTERVAL)
                .min(self.resync_interval)
        } else {
            self.resync_interval
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> Pacing {
        Pacing {
            poll_interval: Duration::from_secs(2),
            resync_interval: Duration::from_secs(300),
        }
    }

    #[test]
    fn moving_senders_are_polled_with_backoff() {
        let p = pacing();
        let waits: Vec<u64> = (0..8)
            .map(|n| p.next_poll(&SenderStatus::Creating, n).as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(
            p.next_poll(&SenderStatus::Offline, 0),
            Duration::from_secs(2)
        );
        for status in [
            SenderStatus::Verifying,
            SenderStatus::OnlineUpdating,
            SenderStatus::TwilioReview,
        ] {
            assert_eq!(p.next_poll(&status, 0), Duration::from_secs(2), "{status}");
        }
    }

    #[test]
    fn settled_senders_wait_for_the_resync() {
        let p = pacing();
        for status in [
            SenderStatus::Online,
            SenderStatus::PendingVerification,
            SenderStatus::Draft,
            SenderStatus::Unknown("NEW".into()),
        ] {
            assert_eq!(p.next_poll(&status, 0), p.resync_interval, "{status}");
        }
        let short_resync = Pacing {
            resync_interval: Duration::from_secs(10),
            ..p
        };
        assert_eq!(
            short_resync.next_poll(&SenderStatus::Creating, 9),
            Duration::from_secs(10),
            "a poll never waits longer than the resync"
        );
    }

    #[test]
    fn onboarding_states() {
        assert!(onboarding(&SenderStatus::PendingVerification));
        assert!(!in_motion(&SenderStatus::PendingVerification));
        assert!(!onboarding(&SenderStatus::Online));
        assert!(!onboarding(&SenderStatus::OnlineUpdating));
    }
}
