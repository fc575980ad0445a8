//! Number behaviours: what Meta and Twilio do with a phone number once a sender is created for
//! it, as one table of outcomes, and the words Twilio uses for each WhatsApp sender error.

use axum::http::StatusCode;
use serde::Serialize;

use crate::errors::ApiError;
use crate::wire_enum::{WireEnum, unknown_word};

/// What Meta/Twilio do with a phone number once a sender is created for it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(into = "&'static str")]
#[strum(parse_err_ty = String, parse_err_fn = unknown_word::<Self>)]
pub enum Behavior {
    /// A Twilio SMS number: Twilio reads the OTP itself.
    #[strum(serialize = "auto_verify")]
    AutoVerify,
    /// An OTP is sent and must be posted back.
    #[default]
    #[strum(serialize = "needs_code")]
    NeedsCode,
    /// The number is already on WhatsApp elsewhere: goes OFFLINE with 63110.
    #[strum(serialize = "already_registered")]
    AlreadyRegistered,
    /// Stays PENDING_VERIFICATION and no OTP ever arrives.
    #[strum(serialize = "code_never_arrives")]
    CodeNeverArrives,
    /// Verifies by itself, then reads OFFLINE for a while before ONLINE, as Twilio warns a
    /// freshly registered sender may.
    #[strum(serialize = "offline_after_registration")]
    OfflineAfterRegistration,
    /// Create refused with 63104: the WABA has no room for another number.
    #[strum(serialize = "waba_full")]
    WabaFull,
    /// Create refused with 63111: Meta knows neither the number nor the WABA.
    #[strum(serialize = "number_not_found")]
    NumberNotFound,
    /// Create refused with 63113: the number cannot be verified.
    #[strum(serialize = "cannot_verify")]
    CannotVerify,
    /// Create refused with 63116: automatic registration got no OTP.
    #[strum(serialize = "code_not_received")]
    CodeNotReceived,
    /// 63104 after a successful create: OFFLINE with the offline reason, and an alert.
    #[strum(serialize = "waba_full_async")]
    WabaFullAsync,
    /// 63111 after a successful create: OFFLINE with the offline reason, and an alert.
    #[strum(serialize = "number_not_found_async")]
    NumberNotFoundAsync,
    /// 63113 after a successful create: OFFLINE with the offline reason, and an alert.
    #[strum(serialize = "cannot_verify_async")]
    CannotVerifyAsync,
    /// 63116 after a successful create: OFFLINE with the offline reason, and an alert.
    #[strum(serialize = "code_not_received_async")]
    CodeNotReceivedAsync,
    /// 63104 after a successful create: OFFLINE without offline reasons; only the alert
    /// says why.
    #[strum(serialize = "waba_full_alert_only")]
    WabaFullAlertOnly,
    /// 63111, OFFLINE without offline reasons; only the alert says why.
    #[strum(serialize = "number_not_found_alert_only")]
    NumberNotFoundAlertOnly,
    /// 63113, OFFLINE without offline reasons; only the alert says why.
    #[strum(serialize = "cannot_verify_alert_only")]
    CannotVerifyAlertOnly,
    /// 63116, OFFLINE without offline reasons; only the alert says why.
    #[strum(serialize = "code_not_received_alert_only")]
    CodeNotReceivedAlertOnly,
    /// 63104, and the sender reads CREATING for good; only the alert says why.
    #[strum(serialize = "waba_full_stays_creating")]
    WabaFullStaysCreating,
    /// 63111, and the sender reads CREATING for good; only the alert says why.
    #[strum(serialize = "number_not_found_stays_creating")]
    NumberNotFoundStaysCreating,
    /// 63113, and the sender reads CREATING for good; only the alert says why.
    #[strum(serialize = "cannot_verify_stays_creating")]
    CannotVerifyStaysCreating,
    /// 63116, and the sender reads CREATING for good; only the alert says why.
    #[strum(serialize = "code_not_received_stays_creating")]
    CodeNotReceivedStaysCreating,
    /// Meta rejects the display name: OFFLINE with offline reason 63100, and an alert.
    #[strum(serialize = "display_name_rejected")]
    DisplayNameRejected,
    /// The business has not accepted Twilio's invitation in Meta Business Manager: OFFLINE
    /// with offline reason 63020, and an alert.
    #[strum(serialize = "invitation_not_accepted")]
    InvitationNotAccepted,
}

impl WireEnum for Behavior {
    const WHAT: &'static str = "behavior";
}

/// What happens to a new sender for a number, one step after its create (or at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Never created: the create itself is answered with this error code.
    Refused(u32),
    /// Registered without a code: ONLINE.
    Online,
    /// PENDING_VERIFICATION, with a code sent.
    SendsCode,
    /// Registered without a code, but OFFLINE (no reasons) for `offline_steps` before ONLINE.
    OfflineThenOnline,
    /// The registration fails after the create was accepted.
    Fails(AsyncFailure),
}

/// A registration failing after a successful create: Meta's verdict, logged as an alert in
/// the Error Log with the sender as its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncFailure {
    pub code: u32,
    pub shows: Shows,
}

/// What the sender itself says about an [`AsyncFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shows {
    /// OFFLINE, with the code in `offline_reasons`.
    OfflineWithReason,
    /// OFFLINE with `offline_reasons: null`.
    OfflineWithoutReason,
    /// Still CREATING, and it never moves on by itself.
    StaysCreating,
}

impl Behavior {
    /// The one table of what each behaviour does.
    pub fn outcome(self) -> Outcome {
        use Shows::*;
        let fails = |code, shows| Outcome::Fails(AsyncFailure { code, shows });
        match self {
            Behavior::AutoVerify => Outcome::Online,
            Behavior::NeedsCode | Behavior::CodeNeverArrives => Outcome::SendsCode,
            Behavior::OfflineAfterRegistration => Outcome::OfflineThenOnline,
            Behavior::WabaFull => Outcome::Refused(63104),
            Behavior::NumberNotFound => Outcome::Refused(63111),
            Behavior::CannotVerify => Outcome::Refused(63113),
            Behavior::CodeNotReceived => Outcome::Refused(63116),
            Behavior::AlreadyRegistered => fails(63110, OfflineWithReason),
            Behavior::WabaFullAsync => fails(63104, OfflineWithReason),
            Behavior::NumberNotFoundAsync => fails(63111, OfflineWithReason),
            Behavior::CannotVerifyAsync => fails(63113, OfflineWithReason),
            Behavior::CodeNotReceivedAsync => fails(63116, OfflineWithReason),
            Behavior::WabaFullAlertOnly => fails(63104, OfflineWithoutReason),
            Behavior::NumberNotFoundAlertOnly => fails(63111, OfflineWithoutReason),
            Behavior::CannotVerifyAlertOnly => fails(63113, OfflineWithoutReason),
            Behavior::CodeNotReceivedAlertOnly => fails(63116, OfflineWithoutReason),
            Behavior::WabaFullStaysCreating => fails(63104, StaysCreating),
            Behavior::NumberNotFoundStaysCreating => fails(63111, StaysCreating),
            Behavior::CannotVerifyStaysCreating => fails(63113, StaysCreating),
            Behavior::CodeNotReceivedStaysCreating => fails(63116, StaysCreating),
            Behavior::DisplayNameRejected => fails(63100, OfflineWithReason),
            Behavior::InvitationNotAccepted => fails(63020, OfflineWithReason),
        }
    }

    /// The Twilio error a create for this number fails with at once, if it does.
    pub fn create_refusal(self, phone: &str) -> Option<ApiError> {
        let Outcome::Refused(code) = self.outcome() else {
            return None;
        };
        let message = match code {
            63104 => format!(
                "Maximum number of phone numbers reached for the WABA: the WhatsApp Business \
                 Account cannot register {phone}"
            ),
            63111 => format!(
                "Phone number or WABA not found: {phone} or the WhatsApp Business Account does \
                 not exist"
            ),
            63113 => format!(
                "Sender cannot be verified: {phone} cannot receive a verification code by SMS \
                 or voice call"
            ),
            63116 => {
                format!("Automatic registration failed: the OTP sent to {phone} was not received")
            }
            other => format!("{} ({phone})", failure_message(other)),
        };
        Some(ApiError::new(StatusCode::BAD_REQUEST, code, message))
    }
}

/// What Twilio says about a WhatsApp sender error, in an offline reason or an alert.
pub fn failure_message(code: u32) -> String {
    match code {
        63020 => "Twilio's invitation to the business has not been accepted: accept it in Meta \
                  Business Manager (Business Settings, Requests), then register the sender again"
            .into(),
        63100 => "Validation error: Meta rejected the display name (profile.name); choose a name \
                  that follows Meta's display name guidelines and change it in WhatsApp Manager"
            .into(),
        63104 => "Maximum number of phone numbers reached for the WABA: the WhatsApp Business \
                  Account has no room for another number"
            .into(),
        63110 => "The phone number is already registered on WhatsApp. Delete it from the \
                  WhatsApp account that uses it (or turn off two-step verification) and try again."
            .into(),
        63111 => "Phone number or WABA not found: Meta knows neither the number nor the WhatsApp \
                  Business Account"
            .into(),
        63113 => "Sender cannot be verified: the number cannot receive a verification code by \
                  SMS or voice call"
            .into(),
        63114 => ApiError::too_many_codes().message,
        63116 => "Automatic registration failed: the OTP sent to the number was not received; \
                  request a new code or use voice verification"
            .into(),
        other => format!("WhatsApp sender error {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn every_asynchronous_failure_has_its_own_words() {
        for &behavior in Behavior::VARIANTS {
            if let Outcome::Fails(failure) = behavior.outcome() {
                let message = failure_message(failure.code);
                assert!(
                    !message.starts_with("WhatsApp sender error"),
                    "{behavior} ends in {} without a message of its own",
                    failure.code
                );
                assert!(
                    behavior.create_refusal("+15005550006").is_none(),
                    "{behavior}"
                );
            }
        }
    }

    #[test]
    fn each_refused_code_also_has_an_asynchronous_form_with_and_without_reasons() {
        let refused: Vec<u32> = Behavior::VARIANTS
            .iter()
            .filter_map(|b| match b.outcome() {
                Outcome::Refused(code) => Some(code),
                _ => None,
            })
            .collect();
        assert_eq!(refused, [63104, 63111, 63113, 63116]);
        for code in refused {
            for shows in [
                Shows::OfflineWithReason,
                Shows::OfflineWithoutReason,
                Shows::StaysCreating,
            ] {
                let wanted = Outcome::Fails(AsyncFailure { code, shows });
                assert!(
                    Behavior::VARIANTS.iter().any(|b| b.outcome() == wanted),
                    "no behaviour for {code} {shows:?}"
                );
            }
        }
    }

    #[test]
    fn refusals_name_the_number() {
        for &behavior in Behavior::VARIANTS {
            if let Outcome::Refused(code) = behavior.outcome() {
                let err = behavior.create_refusal("+15005550006").expect("refused");
                assert_eq!((err.status.as_u16(), err.code), (400, code), "{behavior}");
                assert!(err.message.contains("+15005550006"), "{}", err.message);
            }
        }
    }
}
