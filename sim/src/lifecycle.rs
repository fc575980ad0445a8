//! One sender's state machine. Time is passed in rather than read, and asynchronous steps are
//! applied lazily when the sender is next looked at: no background tasks, and a test that waits
//! `step_delay` always sees the same outcome.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::errors::{ApiError, more_info};
use crate::model::{
    Configuration, OfflineReason, Profile, Properties, SenderResource, Status, Webhook,
};
use crate::wire_enum::wire_enum;

/// More sends than this for one sender → 63114.
pub const MAX_CODES_SENT: u32 = 5;
/// After this many wrong codes every further submission or resend → 63114.
pub const MAX_WRONG_ATTEMPTS: u32 = 5;
pub const DEFAULT_QUALITY_RATING: &str = "HIGH";
pub const DEFAULT_MESSAGING_LIMIT: &str = "1K Customers/24hr";

wire_enum! {
    /// What Meta/Twilio do with a phone number once a sender is created for it.
    #[derive(Default)]
    pub enum Behavior ("behavior") {
        /// A Twilio SMS number: Twilio reads the OTP itself.
        AutoVerify = "auto_verify",
        /// An OTP is sent and must be posted back.
        #[default]
        NeedsCode = "needs_code",
        /// The number is already on WhatsApp elsewhere: goes OFFLINE with 63110.
        AlreadyRegistered = "already_registered",
        /// Stays PENDING_VERIFICATION and no OTP ever arrives.
        CodeNeverArrives = "code_never_arrives",
    }
}

/// The asynchronous step a sender is in; when it ends the sender moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Creating,
    Verifying,
    Updating,
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
    pub codes_sent: u32,
    pub wrong_attempts: u32,
    pending: Option<Pending>,
}

impl Sender {
    /// A new sender in CREATING, finishing one step after `now`.
    pub fn new(
        sid: String,
        account_sid: String,
        phone_number: String,
        behavior: Behavior,
        now: Instant,
        step: Duration,
    ) -> Sender {
        Sender {
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
            codes_sent: 0,
            wrong_attempts: 0,
            pending: Some(Pending {
                due: now + step,
                step: Step::Creating,
            }),
        }
    }

    pub fn sender_id(&self) -> String {
        format!("whatsapp:{}", self.phone_number)
    }

    /// Applies the pending step if it is due by `now` (no step schedules another).
    pub fn advance(&mut self, now: Instant) {
        if let Some(pending) = self.pending.take_if(|p| p.due <= now) {
            match pending.step {
                Step::Creating => self.finish_creating(),
                Step::Verifying | Step::Updating => self.go_online(),
            }
        }
    }

    fn finish_creating(&mut self) {
        match self.behavior {
            Behavior::AutoVerify => self.go_online(),
            Behavior::NeedsCode | Behavior::CodeNeverArrives => {
                self.status = Status::PendingVerification;
                self.codes_sent += 1;
                self.deliver_code();
            }
            Behavior::AlreadyRegistered => {
                self.status = Status::Offline;
                self.offline_reasons = Some(vec![OfflineReason {
                    code: "63110".into(),
                    message: Some(
                        "The phone number is already registered on WhatsApp. Delete it from \
                         the WhatsApp account that uses it (or turn off two-step verification) \
                         and try again."
                            .into(),
                    ),
                    more_info: Some(more_info(63110)),
                }]);
            }
        }
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

    /// A fresh code replaces the last one, unless this number never receives codes.
    fn deliver_code(&mut self) {
        self.otp = match self.behavior {
            Behavior::CodeNeverArrives => None,
            _ => Some(format!("{:06}", rand::rng().random_range(0..1_000_000))),
        };
    }

    fn locked_out(&self) -> bool {
        self.codes_sent >= MAX_CODES_SENT || self.wrong_attempts >= MAX_WRONG_ATTEMPTS
    }

    /// A second create for a number waiting for its code: Meta sends another one.
    pub fn resend_code(&mut self) -> Result<(), ApiError> {
        if self.locked_out() {
            return Err(ApiError::too_many_codes());
        }
        self.codes_sent += 1;
        self.deliver_code();
        Ok(())
    }

    /// Fails (63114) if a code submitted now would be refused outright; checked before an
    /// update changes anything so that a refused update changes nothing.
    pub fn check_code_allowed(&self) -> Result<(), ApiError> {
        if self.status == Status::PendingVerification && self.wrong_attempts >= MAX_WRONG_ATTEMPTS {
            return Err(ApiError::too_many_codes());
        }
        Ok(())
    }

    /// `configuration.verification_code`: ignored unless PENDING_VERIFICATION; the right code
    /// starts VERIFYING, a wrong one only counts an attempt.
    pub fn submit_code(
        &mut self,
        code: &str,
        now: Instant,
        step: Duration,
    ) -> Result<(), ApiError> {
        if self.status != Status::PendingVerification {
            return Ok(());
        }
        self.check_code_allowed()?;
        if self.otp.as_deref() == Some(code) {
            self.status = Status::Verifying;
            self.pending = Some(Pending {
                due: now + step,
                step: Step::Verifying,
            });
        } else {
            self.wrong_attempts += 1;
        }
        Ok(())
    }

    /// A profile or webhook change reaches an ONLINE sender: one step of ONLINE:UPDATING.
    pub fn start_updating(&mut self, now: Instant, step: Duration) {
        if matches!(self.status, Status::Online | Status::OnlineUpdating) {
            self.status = Status::OnlineUpdating;
            self.pending = Some(Pending {
                due: now + step,
                step: Step::Updating,
            });
        }
    }

    /// Sets the status as Meta would on its side, cancelling any automatic transition.
    pub fn force_status(&mut self, status: Status) {
        self.pending = None;
        let was = self.status;
        match status {
            Status::Online => self.go_online(),
            Status::PendingVerification if was != status => {
                // Re-verification starts afresh: one code sent, no wrong attempts yet.
                self.status = status;
                self.codes_sent = 1;
                self.wrong_attempts = 0;
                self.deliver_code();
            }
            _ => self.status = status,
        }
    }

    pub fn resource(&self, base_url: &str) -> SenderResource {
        SenderResource {
            sid: self.sid.clone(),
            status: self.status,
            sender_id: self.sender_id(),
            configuration: Configuration {
                verification_code: None,
                ..self.configuration.clone()
            },
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_secs(1);

    fn sender(behavior: Behavior, t0: Instant) -> Sender {
        Sender::new(
            "XE1".into(),
            "AC1".into(),
            "+15005550006".into(),
            behavior,
            t0,
            STEP,
        )
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
    fn code_flow_and_wrong_codes() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::NeedsCode, t0);
        s.advance(t0 + STEP);
        assert_eq!(s.status, Status::PendingVerification);
        let code = s.otp.clone().expect("a code was sent");
        assert_eq!(code.len(), 6);

        let wrong = if code == "000000" { "111111" } else { "000000" };
        s.submit_code(wrong, t0 + STEP, STEP).unwrap();
        assert_eq!(
            (s.status, s.wrong_attempts),
            (Status::PendingVerification, 1)
        );

        let t1 = t0 + 2 * STEP;
        s.submit_code(&code, t1, STEP).unwrap();
        assert_eq!(s.status, Status::Verifying);
        s.advance(t1 + STEP);
        assert_eq!(s.status, Status::Online);
        // Ignored once no longer pending.
        s.submit_code(wrong, t1 + STEP, STEP).unwrap();
        assert_eq!((s.status, s.wrong_attempts), (Status::Online, 1));
    }

    #[test]
    fn codes_and_attempts_are_limited() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::NeedsCode, t0);
        s.advance(t0 + STEP);
        for _ in 1..MAX_CODES_SENT {
            s.resend_code().unwrap();
            assert!(s.otp.is_some());
        }
        assert_eq!(s.codes_sent, MAX_CODES_SENT);
        assert_eq!(s.resend_code().unwrap_err().code, 63114);

        let mut s = sender(Behavior::NeedsCode, t0);
        s.advance(t0 + STEP);
        let code = s.otp.clone().unwrap();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..MAX_WRONG_ATTEMPTS {
            s.submit_code(wrong, t0 + STEP, STEP).unwrap();
        }
        assert_eq!(
            s.submit_code(&code, t0 + STEP, STEP).unwrap_err().code,
            63114
        );
        assert_eq!(s.status, Status::PendingVerification);
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
            (s.status, s.otp.as_ref()),
            (Status::PendingVerification, None)
        );
    }

    #[test]
    fn forced_status_cancels_pending_step() {
        let t0 = Instant::now();
        let mut s = sender(Behavior::AutoVerify, t0);
        s.force_status(Status::Draft);
        s.advance(t0 + 5 * STEP);
        assert_eq!(s.status, Status::Draft);
        assert!(s.resource("http://x").offline_reasons.is_none());
    }
}
