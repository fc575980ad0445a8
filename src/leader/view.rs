//! What a standby knows of the Lease, and when it may take it: a released (or missing) Lease at
//! once; a held one once nobody has renewed it for its duration, timed by this replica's own
//! clock from the moment it saw the last change (client-go's rule: no other machine's clock is
//! trusted, and a replica that just started waits a whole duration, so the standby that watched
//! the leader die takes over before the leader's restarted container does).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

/// After a lost race for a free Lease, wait this long for the watch to say who won.
pub const RETRY_AFTER_LOST_RACE: Duration = Duration::from_millis(500);

/// The Lease fields that change when it is taken, renewed or released.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub holder: Option<String>,
    pub renewed: Option<MicroTime>,
    pub transitions: Option<i32>,
    pub duration: Option<Duration>,
}

impl Record {
    pub fn of(lease: &Lease) -> Record {
        let Some(spec) = lease.spec.as_ref() else {
            return Record::default();
        };
        Record {
            holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
            renewed: spec.renew_time.clone(),
            transitions: spec.lease_transitions,
            duration: spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs),
        }
    }
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Try to take the Lease now: it is free (or ours).
    Take,
    /// Take over this Lease, held by another replica that has not renewed it for its duration.
    TakeOver(Record),
    /// Without a watch: take the Lease if it is free, or expired by its own timestamps.
    TakeIfExpired,
    /// Wait for a change of the Lease, or until this moment (then decide again).
    Wait(Option<Instant>),
}

/// A standby's view of one Lease, fed by a watch.
#[derive(Debug)]
pub struct LeaseView {
    /// `None` until the first list completed; `Some(None)`: there is no Lease.
    record: Option<Option<Record>>,
    /// When `record` last changed, by this process's clock.
    changed_at: Instant,
    /// Seen in the list that is in progress (a Lease not listed has been deleted).
    listed: bool,
    /// No take before this (after a lost race).
    not_before: Option<Instant>,
    /// The watch failed: decide by the Lease's own timestamps (the Lease library does) instead.
    blind_since: Option<Instant>,
}

impl LeaseView {
    pub fn new(now: Instant) -> LeaseView {
        LeaseView {
            record: None,
            changed_at: now,
            listed: false,
            not_before: None,
            blind_since: None,
        }
    }

    /// The watch (re)started listing.
    pub fn list_started(&mut self) {
        self.listed = false;
    }

    /// The list completed: a Lease it did not return does not exist.
    pub fn list_done(&mut self, now: Instant) {
        if !self.listed {
            self.observe(None, now);
        }
    }

    /// The Lease as the watch reports it now (`None`: deleted).
    pub fn observe(&mut self, record: Option<Record>, now: Instant) {
        self.listed |= record.is_some();
        self.blind_since = None;
        if self.record.as_ref() != Some(&record) {
            self.record = Some(record);
            self.changed_at = now;
            self.not_before = None;
        }
    }

    /// The watch failed; until it recovers, try every `retry`.
    pub fn watch_failed(&mut self, now: Instant) {
        self.blind_since.get_or_insert(now);
    }

    /// A take did not get the Lease (another replica was quicker).
    pub fn lost_race(&mut self, now: Instant) {
        self.not_before = Some(now + RETRY_AFTER_LOST_RACE);
    }

    /// Whether `me` may take the Lease now, or how long to wait. `default_duration` stands in
    /// for a Lease that names none.
    pub fn next(&self, me: &str, default_duration: Duration, now: Instant) -> Next {
        if let Some(not_before) = self.not_before.filter(|t| *t > now) {
            return Next::Wait(Some(not_before));
        }
        if let Some(since) = self.blind_since {
            // Every third of a duration: a Lease free or expired by its own timestamps.
            let retry = since + default_duration / 3;
            return if retry <= now {
                Next::TakeIfExpired
            } else {
                Next::Wait(Some(retry))
            };
        }
        let Some(record) = &self.record else {
            return Next::Wait(None);
        };
        let Some(record) = record.as_ref().filter(|r| r.holder.is_some()) else {
            return Next::Take;
        };
        if record.holder.as_deref() == Some(me) {
            // Ours (a take whose answer was cut short): taking it again only confirms it.
            return Next::Take;
        }
        let expires = self.changed_at + record.duration.unwrap_or(default_duration);
        if expires <= now {
            Next::TakeOver(record.clone())
        } else {
            Next::Wait(Some(expires))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "senderops-b_0001";
    const DURATION: Duration = Duration::from_secs(15);

    fn held_by(holder: &str, renewed_second: i64) -> Option<Record> {
        Some(Record {
            holder: Some(holder.into()),
            renewed: Some(MicroTime(
                k8s_openapi::jiff::Timestamp::from_second(renewed_second).unwrap(),
            )),
            transitions: Some(1),
            duration: Some(DURATION),
        })
    }

    fn released() -> Option<Record> {
        Some(Record {
            transitions: Some(1),
            ..Record::default()
        })
    }

    #[test]
    fn nothing_is_decided_before_the_first_list() {
        let now = Instant::now();
        assert_eq!(
            LeaseView::new(now).next(ME, DURATION, now),
            Next::Wait(None)
        );
    }

    #[test]
    fn a_missing_or_released_lease_is_taken_at_once() {
        let now = Instant::now();
        let mut view = LeaseView::new(now);
        view.list_started();
        view.list_done(now);
        assert_eq!(view.next(ME, DURATION, now), Next::Take, "no Lease yet");

        view.observe(held_by("senderops-a_0001", 100), now);
        view.observe(released(), now + Duration::from_secs(3));
        assert_eq!(
            view.next(ME, DURATION, now + Duration::from_secs(3)),
            Next::Take,
            "released by its holder"
        );
    }

    #[test]
    fn a_held_lease_expires_a_duration_after_its_last_renewal_was_seen() {
        let start = Instant::now();
        let mut view = LeaseView::new(start);
        view.observe(held_by("senderops-a_0001", 100), start);
        let renewed_at = start + Duration::from_secs(10);
        view.observe(held_by("senderops-a_0001", 110), renewed_at);
        assert_eq!(
            view.next(ME, DURATION, start + DURATION),
            Next::Wait(Some(renewed_at + DURATION)),
            "a renewal restarts the wait"
        );
        assert_eq!(
            view.next(ME, DURATION, renewed_at + DURATION),
            Next::TakeOver(held_by("senderops-a_0001", 110).unwrap())
        );
    }

    #[test]
    fn the_same_record_seen_again_does_not_restart_the_wait() {
        let start = Instant::now();
        let mut view = LeaseView::new(start);
        view.observe(held_by("senderops-a_0001", 100), start);
        // A relist after a watch reconnect returns the unchanged Lease.
        view.list_started();
        view.observe(
            held_by("senderops-a_0001", 100),
            start + Duration::from_secs(9),
        );
        view.list_done(start + Duration::from_secs(9));
        assert!(matches!(
            view.next(ME, DURATION, start + DURATION),
            Next::TakeOver(_)
        ));
    }

    #[test]
    fn a_replica_that_just_started_waits_a_whole_duration_whatever_the_renew_time_says() {
        // The leader's container was killed and restarted: its new process sees a Lease whose
        // renewTime is old, but has not watched it go unrenewed, so the standby goes first.
        let start = Instant::now();
        let mut view = LeaseView::new(start);
        view.list_started();
        view.observe(held_by("senderops-a_0001", 0), start);
        view.list_done(start);
        assert_eq!(
            view.next(ME, DURATION, start + Duration::from_secs(1)),
            Next::Wait(Some(start + DURATION))
        );
    }

    #[test]
    fn a_lease_held_under_this_replicas_identity_is_taken_back() {
        let now = Instant::now();
        let mut view = LeaseView::new(now);
        view.observe(held_by(ME, 100), now);
        assert_eq!(view.next(ME, DURATION, now), Next::Take);
    }

    #[test]
    fn a_lost_race_waits_briefly_for_the_winner_to_show() {
        let now = Instant::now();
        let mut view = LeaseView::new(now);
        view.observe(released(), now);
        view.lost_race(now);
        assert_eq!(
            view.next(ME, DURATION, now),
            Next::Wait(Some(now + RETRY_AFTER_LOST_RACE))
        );
        view.observe(
            held_by("senderops-c_0001", 200),
            now + Duration::from_millis(20),
        );
        assert_eq!(
            view.next(ME, DURATION, now + RETRY_AFTER_LOST_RACE),
            Next::Wait(Some(now + Duration::from_millis(20) + DURATION)),
            "the winner holds it now"
        );
    }

    #[test]
    fn without_a_watch_it_tries_every_third_of_a_duration() {
        let now = Instant::now();
        let mut view = LeaseView::new(now);
        view.watch_failed(now);
        assert_eq!(
            view.next(ME, DURATION, now),
            Next::Wait(Some(now + DURATION / 3))
        );
        assert_eq!(
            view.next(ME, DURATION, now + DURATION / 3),
            Next::TakeIfExpired
        );
    }
}
