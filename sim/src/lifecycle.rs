//! One sender's state machine. Time is passed in rather than read, and asynchronous steps are
//! applied lazily when the sender is next looked at: no background tasks, and a test that waits
//! `step_delay` always sees the same outcome.

use std::time::{Duration, Instant, SystemTime};

use rand::Rng;

pub use crate::behavior::Behavior;
use crate::behavior::{AsyncFailure, Outcome, Shows, failure_message};
use crate::errors::{ApiError, more_info};
use crate::model::{
    Configuration, OfflineReason, Profile, Properties, Sections, SenderResource, Status,
    UpdateAnswer, Webhook,
};

/// Code sends allowed before a lockout: the request after them gets 63114 and locks the sender.
pub const MAX_CODE_REQUESTS: u32 = 5;
pub const DEFAULT_QUALITY_RATING: &str = "HIGH";
pub const DEFAULT_MESSAGING_LIMIT: &str = "1K Customers/24hr";
/// Longest wait the lifecycle schedules: `Instant` overflows far sooner than `Duration`, and no
/// simulated wait needs more than a century.
const LONGEST_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `by` after `at`, capped at [`LONGEST_WAIT`].
fn later(at: Instant, by: Duration) -> Instant {
    at + by.min(LONGEST_WAIT)
}

/// How long the asynchronous parts of the lifecycle take; the same for every sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// One asynchronous step (CREATING, VERIFYING, ONLINE:UPDATING).
    pub step: Duration,
    /// Steps an `offline_after_registration` sender reads OFFLINE.
    pub offline_steps: u32,
    /// How long a 63114 lockout lasts.
    pub code_lockout: Duration,
}

/// The asynchronous step a sender is in; when it ends the sender moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Creating,
    /// A code was submitted; Meta accepts it (ONLINE) or not (back to PENDING_VERIFICATION).
    Verifying {
        right: bool,
    },
    Updating,
    /// Registered, but reading OFFLINE until this step ends.
    SettlingOffline,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    due: Instant,
    step: Step,
}

/// A sender as the simulator keeps it: the Twilio resource plus what only Meta would know.
#[derive(Debug, Clone)]
pub struct Sender {
    pub sid: String,
    pub account_sid: String,
    pub phone_number: String,
    pub behavior: Behavior,
    pub status: Status,
    pub configuration: Configuration,
    pub webhook: Webhook,
    pub profile: Profile,
    pub properties: Properties,
    /// Shown only while OFFLINE.
    pub offline_reasons: Option<Vec<OfflineReason>>,
    /// The last code "sent" to the phone, if one ever arrived.
    pub otp: Option<String>,
    /// Create requests accepted: the first one plus every re-create that asked for a code.
    pub create_requests: u32,
    /// Codes sent to the phone, in all (a code that never arrives counts too).
    pub codes_sent: u32,
    /// Wrong codes submitted, in all.
    pub wrong_codes: u32,
    /// Wall-clock time the latest code submission arrived (in any status), so that a test can
    /// time the way from a code's arrival at the user to its arrival here.
    pub last_code_received: Option<SystemTime>,
    /// When the first create arrived: the start of the registration.
    pub created_at: Instant,
    /// When the sender first left CREATING, PENDING_VERIFICATION and VERIFYING (ONLINE, or
    /// OFFLINE when registration failed): the end of its registration, after which Twilio's
    /// advice to register one number per account at a time lets the next one start. `None`
    /// while it registers.
    pub left_onboarding_at: Option<Instant>,
    /// Code sends counted toward [`MAX_CODE_REQUESTS`] since the count last started.
    code_requests: u32,
    /// Until then every code request gets 63114.
    locked_until: Option<Instant>,
    pending: Option<Pending>,
    timing: Timing,
    /// Failures not yet handed to the Error Log (see [`Sender::take_failures`]).
    failures: Vec<Failure>,
}

/// An error Twilio logs about this sender: its code and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub code: u32,
    pub at: Instant,
}

impl Sender {
    /// A new sender in CREATING, finishing one step after `now`; or the error Meta refuses
    /// this number with, in which case nothing is created.
    pub fn new(
        sid: String,
        account_sid: String,
        phone_number: String,
        behavior: Behavior,
        now: Instant,
        timing: Timing,
    ) -> Result<Sender, ApiError> {
        if let Some(refusal) = behavior.create_refusal(&phone_number) {
            return Err(refusal);
        }
        Ok(Sender {
            sid,
            account_sid,
            phone_number,
            behavior,
            status: Status::Creating,
            configuration: Configuration::default(),
            webhook: Webhook::default(),
            profile: Profile::default(),
            properties: Properties::default(),
            offline_reasons: None,
            otp: None,
            create_requests: 1,
            codes_sent: 0,
            wrong_codes: 0,
            last_code_received: None,
            created_at: now,
            left_onboarding_at: None,
            code_requests: 0,
            locked_until: None,
            pending: Some(Pending {
                due: later(now, timing.step),
                step: Step::Creating,
            }),
            timing,
            failures: Vec::new(),
        })
    }

    pub fn sender_id(&self) -> String {
        format!("whatsapp:{}", self.phone_number)
    }

    /// Applies every step due by `now` (one step may schedule the next), and ends a lockout
    /// that is over.
    pub fn advance(&mut self, now: Instant) {
        while let Some(pending) = self.pending.take_if(|p| p.due <= now) {
            self.finish(pending.step, pending.due);
        }
        if self.locked_until.is_some_and(|until| until <= now) {
            self.locked_until = None;
            self.code_requests = 0;
        }
    }

    /// `at` is when the step was due, so that a chained step does not depend on when the
    /// sender happens to be read.
    fn finish(&mut self, step: Step, at: Instant) {
        match step {
            Step::Creating => self.finish_creating(at),
            Step::Verifying { right: true } | Step::Updating | Step::SettlingOffline => {
                self.go_online()
            }
            Step::Verifying { right: false } => self.status = Status::PendingVerification,
        }
        self.note_onboarding_left(at);
    }

    /// Records `at` as the end of the registration if the sender has just left the
    /// registration states for the first time.
    fn note_onboarding_left(&mut self, at: Instant) {
        let registering = matches!(
            self.status,
            Status::Creating | Status::PendingVerification | Status::Verifying
        );
        if !registering && self.left_onboarding_at.is_none() {
            self.left_onboarding_at = Some(at);
        }
    }

    fn finish_creating(&mut self, at: Instant) {
        match self.behavior.outcome() {
            Outcome::Online => self.go_online(),
            Outcome::OfflineThenOnline => {
                self.status = Status::Offline;
                self.pending = Some(Pending {
                    due: later(
                        at,
                        self.timing.step.saturating_mul(self.timing.offline_steps),
                    ),
                    step: Step::SettlingOffline,
                });
            }
            Outcome::SendsCode => {
                self.status = Status::PendingVerification;
                self.send_code();
            }
            Outcome::Fails(failure) => self.fail(failure, at),
            Outcome::Refused(_) => {
                unreachable!("Sender::new refuses {} numbers", self.behavior)
            }
        }
    }

    /// Meta's verdict on a registration that fails after its create was accepted: what the
    /// sender shows, and the failure for the Error Log.
    fn fail(&mut self, failure: AsyncFailure, at: Instant) {
        match failure.shows {
            Shows::OfflineWithReason => {
                self.status = Status::Offline;
                self.offline_reasons = Some(vec![OfflineReason {
                    code: failure.code.to_string(),
                    message: Some(failure_message(failure.code)),
                    more_info: Some(more_info(failure.code)),
                }]);
            }
            Shows::OfflineWithoutReason => {
                self.status = Status::Offline;
                self.offline_reasons = None;
            }
            Shows::StaysCreating => {}
        }
        self.failures.push(Failure {
            code: failure.code,
            at,
        });
    }

    /// The failures found since the last call, oldest first, for the Error Log.
    pub fn take_failures(&mut self) -> Vec<Failure> {
        std::mem::take(&mut self.failures)
    }

    fn go_online(&mut self) {
        self.status = Status::Online;
        self.properties
            .quality_rating
            .get_or_insert_with(|| DEFAULT_QUALITY_RATING.into());
        self.properties
            .messaging_limit
            .get_or_insert_with(|| DEFAULT_MESSAGING_LIMIT.into());
    }

    /// Meta sends a fresh code, which replaces the last one (unless this number never receives
    /// codes). Every send counts toward the limit.
    fn send_code(&mut self) {
        self.codes_sent += 1;
        self.code_requests += 1;
        self.otp = match self.behavior {
            Behavior::CodeNeverArrives => None,
            _ => Some(format!("{:06}", rand::rng().random_range(0..1_000_000))),
        };
    }

    /// A second create for a number waiting for its code: a request for another one. The
    /// request after [`MAX_CODE_REQUESTS`] sends locks the sender for `code_lockout`, and
    /// every request while locked gets 63114 too.
    pub fn request_code(&mut self, now: Instant) -> Result<(), ApiError> {
        if self.code_requests >= MAX_CODE_REQUESTS && self.locked_until.is_none() {
            self.locked_until = Some(later(now, self.timing.code_lockout));
        }
        if self.locked_until.is_some() {
            self.failures.push(Failure {
                code: 63114,
                at: now,
            });
            return Err(ApiError::too_many_codes());
        }
        self.create_requests += 1;
        self.send_code();
        Ok(())
    }

    /// How much longer code requests get 63114, if they do.
    pub fn lockout_remaining(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .map(|until| until.saturating_duration_since(now))
    }

    /// `configuration.verification_code`: ignored unless PENDING_VERIFICATION. Any code starts
    /// VERIFYING; Meta's verdict shows one step later (ONLINE, or back to PENDING_VERIFICATION
    /// for a wrong code). Never refused: wrong codes are not limited.
    pub fn submit_code(&mut self, code: &str, now: Instant) {
        self.last_code_received = Some(SystemTime::now());
        if self.status != Status::PendingVerification {
            return;
        }
        let right = self.otp.as_deref() == Some(code);
        if !right {
            self.wrong_codes += 1;
        }
        self.status = Status::Verifying;
        self.pending = Some(Pending {
            due: later(now, self.timing.step),
            step: Step::Verifying { right },
        });
    }

    /// A profile or webhook change reaches an ONLINE sender: one step of ONLINE:UPDATING.
    pub fn start_updating(&mut self, now: Instant) {
        if matches!(self.status, Status::Online | Status::OnlineUpdating) {
            self.status = Status::OnlineUpdating;
            self.pending = Some(Pending {
                due: later(now, self.timing.step),
                step: Step::Updating,
            });
        }
    }

    /// Sets the status as Meta would on its side at `now`, cancelling any automatic transition.
    pub fn force_status(&mut self, status: Status, now: Instant) {
        self.pending = None;
        let was = self.status;
        match status {
            Status::Online => self.go_online(),
            Status::PendingVerification if was != status => {
                // Re-verification starts afresh: its code is the first of a new count.
                self.status = status;
                self.code_requests = 0;
                self.locked_until = None;
                self.send_code();
            }
            _ => self.status = status,
        }
        self.note_onboarding_left(now);
    }

    pub fn resource(&self, base_url: &str) -> SenderResource {
        SenderResource {
            sid: self.sid.clone(),
            status: self.status,
            sender_id: self.sender_id(),
            configuration: self.shown_configuration(),
            webhook: self.webhook.clone(),
            profile: self.profile.clone(),
            properties: self.properties.clone(),
            offline_reasons: match self.status {
                Status::Offline => self.offline_reasons.clone(),
                _ => None,
            },
            compliance: None,
            url: format!("{base_url}/v2/Channels/Senders/{}", self.sid),
        }
    }

    /// What an update answers, like Twilio's examples: the sections the request sent, in full,
    /// and null for the others.
    pub fn update_answer(&self, sent: Sections) -> UpdateAnswer {
        UpdateAnswer {
            sid: self.sid.clone(),
            status: self.status,
            sender_id: self.sender_id(),
            compliance: None,
            configuration: sent.configuration.then(|| self.shown_configuration()),
            webhook: sent.webhook.then(|| self.webhook.clone()),
            profile: sent.profile.then(|| self.profile.clone()),
        }
    }

    /// The configuration as answered: a submitted code is never echoed.
    fn shown_configuration(&self) -> Configuration {
        Configuration {
            verification_code: None,
            ..self.configuration.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use strum::VariantArray;

    const STEP: Duration = Duration::from_secs(1);
    const TIMING: Timing = Timing {
        step: STEP,
        offline_steps: 3,
        code_lockout: Duration::from_secs(60),
    };

    fn sender(behavior: Behavior, t0: Instant) -> Sender {
        Sender::new(
            "XE1".into(),
            "AC1".into(),
            "+15005550006".into(),
            behavior,
            t0,
            TIMING,
        )
        .expect("this behaviour creates a sender")
    }

    /// A sender waiting for its code at `t0 + STEP`, with that code.
    fn pending(t0: Instant) -> (Sender, String) {
        let mut s = sender(Behavior::NeedsCode, t0);
        s.advance(t0 + STEP);
        assert_eq!(s.status, Status::PendingVerification);
        let code = s.otp.clone().expect("a code was sent");
        (s, code)
    }

    fn wrong(code: &str) -> &'static str {
        if code == "000000" { "111111" } else { "000000" }
    }

    #[test]
    fn creating_lasts_exactly_one_step() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::AutoVerify, t0);
        s.advance(t0 + STEP - Duration::from_millis(1));
        assert_eq!(s.status, Status::Creating);
        assert_eq!(s.properties, Properties::default());
        s.advance(t0 + STEP);
        assert_eq!(s.status, Status::Online);
        assert_eq!(s.properties.quality_rating.as_deref(), Some("HIGH"));
        assert_eq!(
            s.properties.messaging_limit.as_deref(),
            Some("1K Customers/24hr")
        );
    }

    #[test]
    fn the_right_code_verifies_one_step_after_it_is_submitted() {
        let t0 = Instant::now();
        let (mut s, code) = pending(t0);
        assert_eq!((code.len(), s.codes_sent), (6, 1));
        let t1 = t0 + 2 * STEP;
        s.submit_code(&code, t1);
        assert_eq!(s.status, Status::Verifying);
        s.advance(t1 + STEP - Duration::from_millis(1));
        assert_eq!(s.status, Status::Verifying);
        s.advance(t1 + STEP);
        assert_eq!((s.status, s.wrong_codes), (Status::Online, 0));
        // Ignored once no longer pending.
        s.submit_code(wrong(&code), t1 + STEP);
        assert_eq!((s.status, s.wrong_codes), (Status::Online, 0));
    }

    #[test]
    fn a_registration_ends_when_the_sender_first_leaves_the_registration_states() {
        let t0 = Instant::now();
        let mut auto = sender(Behavior::AutoVerify, t0);
        assert_eq!((auto.created_at, auto.left_onboarding_at), (t0, None));
        // Found late, the step still ends when it was due.
        auto.advance(t0 + 5 * STEP);
        assert_eq!(auto.left_onboarding_at, Some(t0 + STEP));

        let (mut coded, code) = pending(t0);
        let t1 = t0 + 2 * STEP;
        coded.submit_code(wrong(&code), t1);
        coded.advance(t1 + STEP);
        assert_eq!(coded.left_onboarding_at, None, "back to waiting for a code");
        coded.submit_code(&code, t1 + STEP);
        coded.advance(t1 + 2 * STEP);
        assert_eq!(coded.left_onboarding_at, Some(t1 + 2 * STEP));
        // A later re-verification does not move the end of the registration.
        coded.force_status(Status::PendingVerification, t1 + 3 * STEP);
        coded.force_status(Status::Online, t1 + 4 * STEP);
        assert_eq!(coded.left_onboarding_at, Some(t1 + 2 * STEP));

        let mut forced = sender(Behavior::AutoVerify, t0);
        forced.force_status(Status::Offline, t0 + STEP / 2);
        assert_eq!(forced.left_onboarding_at, Some(t0 + STEP / 2));
    }

    #[test]
    fn a_wrong_code_reads_verifying_then_falls_back_to_pending() {
        let t0 = Instant::now();
        let (mut s, code) = pending(t0);
        let t1 = t0 + 2 * STEP;
        s.submit_code(wrong(&code), t1);
        assert_eq!((s.status, s.wrong_codes), (Status::Verifying, 1));
        // A code sent while VERIFYING is ignored, right or not.
        s.submit_code(&code, t1);
        s.advance(t1 + STEP);
        assert_eq!((s.status, s.wrong_codes), (Status::PendingVerification, 1));
        // The code that was sent still works.
        s.submit_code(&code, t1 + STEP);
        s.advance(t1 + 2 * STEP);
        assert_eq!(s.status, Status::Online);
    }

    #[test]
    fn wrong_codes_are_never_limited() {
        let t0 = Instant::now();
        let (mut s, code) = pending(t0);
        let mut now = t0 + STEP;
        for attempt in 1..=20 {
            s.submit_code(wrong(&code), now);
            assert_eq!(s.status, Status::Verifying, "attempt {attempt}");
            now += STEP;
            s.advance(now);
            assert_eq!(s.status, Status::PendingVerification, "attempt {attempt}");
        }
        assert_eq!(s.wrong_codes, 20);
        assert!(s.request_code(now).is_ok(), "wrong codes do not lock");
    }

    #[test]
    fn the_request_after_five_sends_locks_until_the_lockout_lifts() {
        let t0 = Instant::now();
        let (mut s, _) = pending(t0);
        let t1 = t0 + STEP;
        for send in 2..=MAX_CODE_REQUESTS {
            s.request_code(t1)
                .unwrap_or_else(|e| panic!("send {send}: {e:?}"));
        }
        assert_eq!((s.codes_sent, s.create_requests), (5, 5));
        assert_eq!(s.request_code(t1).unwrap_err().code, 63114);
        assert_eq!(s.lockout_remaining(t1), Some(TIMING.code_lockout));

        // Still locked just before the end, and a refused request does not extend it.
        let almost = t1 + TIMING.code_lockout - Duration::from_millis(1);
        s.advance(almost);
        assert_eq!(s.request_code(almost).unwrap_err().code, 63114);
        assert_eq!(s.status, Status::PendingVerification);
        assert_eq!((s.codes_sent, s.create_requests), (5, 5));

        // Then the count starts again from zero.
        let lifted = t1 + TIMING.code_lockout;
        s.advance(lifted);
        assert_eq!(s.lockout_remaining(lifted), None);
        for send in 1..=MAX_CODE_REQUESTS {
            s.request_code(lifted)
                .unwrap_or_else(|e| panic!("send {send} after the lockout: {e:?}"));
        }
        assert_eq!(s.request_code(lifted).unwrap_err().code, 63114);
        assert_eq!(s.codes_sent, 10);
    }

    #[test]
    fn a_locked_sender_still_accepts_the_last_code() {
        let t0 = Instant::now();
        let (mut s, _) = pending(t0);
        while s.request_code(t0 + STEP).is_ok() {}
        let code = s.otp.clone().unwrap();
        s.submit_code(&code, t0 + STEP);
        s.advance(t0 + 2 * STEP);
        assert_eq!(s.status, Status::Online);
    }

    #[test]
    fn every_asynchronous_failure_is_handed_over_once_at_the_time_it_happened() {
        for &behavior in Behavior::VARIANTS {
            let Outcome::Fails(failure) = behavior.outcome() else {
                continue;
            };
            let t0 = Instant::now();
            let mut s = sender(behavior, t0);
            s.advance(t0 + STEP - Duration::from_millis(1));
            assert_eq!(s.take_failures(), [], "{behavior}: nothing before the step");
            // Read late: the failure still carries the moment the step was due.
            s.advance(t0 + 5 * STEP);
            assert_eq!(
                s.take_failures(),
                [Failure {
                    code: failure.code,
                    at: t0 + STEP
                }],
                "{behavior}"
            );
            s.advance(t0 + 10 * STEP);
            assert_eq!(s.take_failures(), [], "{behavior}: handed over once");

            let shown = s.resource("http://x");
            let reasons: Vec<String> = shown
                .offline_reasons
                .iter()
                .flatten()
                .map(|r| r.code.clone())
                .collect();
            let expected = match failure.shows {
                Shows::OfflineWithReason => (Status::Offline, vec![failure.code.to_string()]),
                Shows::OfflineWithoutReason => (Status::Offline, vec![]),
                Shows::StaysCreating => (Status::Creating, vec![]),
            };
            assert_eq!((shown.status, reasons), expected, "{behavior}");
            assert_eq!(shown.properties, Properties::default(), "{behavior}");
            assert_eq!(s.otp, None, "{behavior}: no code is sent");
        }
    }

    #[test]
    fn every_refused_code_request_is_a_63114_failure() {
        let t0 = Instant::now();
        let (mut s, _) = pending(t0);
        let t1 = t0 + STEP;
        while s.request_code(t1).is_ok() {}
        let t2 = t1 + STEP;
        assert_eq!(s.request_code(t2).unwrap_err().code, 63114);
        assert_eq!(
            s.take_failures(),
            [
                Failure {
                    code: 63114,
                    at: t1
                },
                Failure {
                    code: 63114,
                    at: t2
                }
            ]
        );
    }

    #[test]
    fn offline_after_registration_reads_offline_for_offline_steps_then_online() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::OfflineAfterRegistration, t0);
        let registered = t0 + STEP;
        let online_at = registered + STEP * TIMING.offline_steps;
        s.advance(registered);
        assert_eq!(s.otp, None, "verified without a code");
        for now in [registered, online_at - Duration::from_millis(1)] {
            s.advance(now);
            let resource = s.resource("http://x");
            assert_eq!(resource.status, Status::Offline);
            assert_eq!(resource.offline_reasons, None);
            assert_eq!(resource.properties, Properties::default());
        }
        s.advance(online_at);
        assert_eq!(s.status, Status::Online);
        assert_eq!(s.properties.quality_rating.as_deref(), Some("HIGH"));
    }

    #[test]
    fn a_late_read_applies_every_step_that_is_due() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::OfflineAfterRegistration, t0);
        s.advance(t0 + 10 * STEP);
        assert_eq!(s.status, Status::Online);

        let mut s = Sender::new(
            "XE1".into(),
            "AC1".into(),
            "+15005550006".into(),
            Behavior::OfflineAfterRegistration,
            t0,
            Timing {
                offline_steps: 0,
                ..TIMING
            },
        )
        .unwrap();
        s.advance(t0 + STEP);
        assert_eq!(s.status, Status::Online, "no OFFLINE steps at all");
    }

    #[test]
    fn refused_numbers_create_no_sender() {
        for (behavior, code) in [
            (Behavior::WabaFull, 63104),
            (Behavior::NumberNotFound, 63111),
            (Behavior::CannotVerify, 63113),
            (Behavior::CodeNotReceived, 63116),
        ] {
            let err = Sender::new(
                "XE1".into(),
                "AC1".into(),
                "+15005550006".into(),
                behavior,
                Instant::now(),
                TIMING,
            )
            .unwrap_err();
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, code),
                "{behavior}: {err:?}"
            );
            assert!(err.message.contains("+15005550006"), "{}", err.message);
        }
    }

    #[test]
    fn failure_behaviours() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::AlreadyRegistered, t0);
        s.advance(t0 + STEP);
        let resource = s.resource("http://x");
        assert_eq!(resource.status, Status::Offline);
        assert_eq!(resource.offline_reasons.unwrap()[0].code, "63110");
        assert_eq!(resource.properties, Properties::default());

        let mut s = sender(Behavior::CodeNeverArrives, t0);
        s.advance(t0 + 10 * STEP);
        assert_eq!(
            (s.status, s.otp.as_ref(), s.codes_sent),
            (Status::PendingVerification, None, 1)
        );
    }

    #[test]
    fn forced_status_cancels_pending_step() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::AutoVerify, t0);
        s.force_status(Status::Draft, t0);
        s.advance(t0 + 5 * STEP);
        assert_eq!(s.status, Status::Draft);
        assert!(s.resource("http://x").offline_reasons.is_none());
    }

    #[test]
    fn forced_reverification_lifts_a_lockout() {
        let t0 = Instant::now();
        let (mut s, _) = pending(t0);
        while s.request_code(t0 + STEP).is_ok() {}
        s.force_status(Status::Online, t0 + STEP);
        s.force_status(Status::PendingVerification, t0 + STEP);
        assert_eq!(s.lockout_remaining(t0 + STEP), None);
        assert_eq!(s.codes_sent, 6);
        for send in 2..=MAX_CODE_REQUESTS {
            s.request_code(t0 + STEP)
                .unwrap_or_else(|e| panic!("send {send}: {e:?}"));
        }
        assert_eq!(s.request_code(t0 + STEP).unwrap_err().code, 63114);
    }

    #[test]
    fn update_answers_carry_only_the_sections_sent() {
        let t0 = Instant::now();
        let (mut s, code) = pending(t0);
        s.configuration.verification_code = Some(code);
        s.configuration.waba_id = Some("42".into());
        let answer = serde_json::to_value(s.update_answer(Sections {
            configuration: true,
            webhook: false,
            profile: false,
        }))
        .unwrap();
        assert_eq!(
            answer,
            serde_json::json!({
                "sid": "XE1",
                "status": "PENDING_VERIFICATION",
                "sender_id": "whatsapp:+15005550006",
                "compliance": null,
                "configuration": {
                    "waba_id": "42", "verification_method": null, "verification_code": null,
                    "voice_application_sid": null, "account_type": null
                },
                "webhook": null,
                "profile": null,
            })
        );
    }
}
