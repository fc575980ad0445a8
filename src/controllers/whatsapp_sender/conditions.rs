//! The sender's own verdicts: the reasons it stalls with for what Twilio says is wrong, and the
//! assessments only a sender makes (online, suspended, a deletion that waits). The conditions
//! themselves, and how a verdict is merged into them, are the runtime's
//! ([`crate::runtime::conditions`]).

use crate::api::reason;
use crate::error::twilio_message;
use crate::runtime::conditions::{Assessment, Status, Verdict, not_stalled};
use crate::twilio::codes::Problem;
use crate::twilio::{ErrorClass, TwilioError};

/// The reason a sender stalls with for what Twilio says is wrong.
pub fn stall_reason(problem: Problem) -> &'static str {
    match problem {
        Problem::InvalidRequest => reason::INVALID_SPEC,
        Problem::InvalidCredentials => reason::INVALID_CREDENTIALS,
        Problem::InvitationNotAccepted => reason::INVITATION_NOT_ACCEPTED,
        Problem::WabaFull => reason::WABA_FULL,
        Problem::AlreadyRegistered => reason::ALREADY_REGISTERED,
        Problem::NumberNotFound => reason::NUMBER_NOT_FOUND,
        Problem::CannotVerify => reason::CANNOT_VERIFY,
        Problem::TooManyCodes => reason::TOO_MANY_CODES,
        Problem::CodeNotReceived => reason::CODE_NOT_RECEIVED,
        Problem::RateLimited => reason::TWILIO_UNAVAILABLE,
        Problem::NotFound | Problem::Rejected => reason::TWILIO_REJECTED,
    }
}

/// What a failed attempt to `action` at Twilio concludes: stalled when only the user can fix
/// it, otherwise failed (retried with backoff, `Ready` left as it was). The message says what
/// failed and what to do.
pub fn twilio_failure(action: &str, err: &TwilioError) -> Assessment {
    let message = twilio_message(action, err);
    match err.class() {
        ErrorClass::NeedsUser => Assessment::stalled(stall_reason(err.problem()), message),
        ErrorClass::Retryable | ErrorClass::NotFound => {
            Assessment::failed(reason::TWILIO_UNAVAILABLE, message)
        }
    }
}

/// The assessments only a sender makes, on the runtime's [`Assessment`].
pub trait SenderAssessment {
    /// ONLINE and matching the spec.
    fn online(message: impl Into<String>) -> Self;
    /// `suspend: true`: nothing is read or changed, so `Ready` keeps its last known value.
    fn suspended() -> Self;
    /// The sender is being deleted and cannot be yet.
    fn deletion_blocked(message: impl Into<String>) -> Self;
}

impl SenderAssessment for Assessment {
    fn online(message: impl Into<String>) -> Self {
        Assessment::ready(reason::ONLINE, message)
    }

    fn suspended() -> Self {
        Assessment {
            ready: None,
            synced: Some(Verdict::new(
                Status::False,
                reason::SUSPENDED,
                "spec.suspend is true: the operator makes no Twilio calls for this sender; set \
                 it to false to resume",
            )),
            stalled: Some(not_stalled()),
        }
    }

    fn deletion_blocked(message: impl Into<String>) -> Self {
        Assessment {
            ready: Some(Verdict::new(
                Status::False,
                reason::DELETING,
                "the WhatsAppSender is being deleted",
            )),
            synced: Some(Verdict::new(
                Status::False,
                reason::DELETION_BLOCKED,
                message.into(),
            )),
            stalled: None,
        }
    }
}

#[cfg(test)]
mod hostile_errors {
    //! Any Twilio error, with any code, status and text, becomes a bounded, one-line
    //! condition that says what failed.

    use std::time::Duration;

    use proptest::prelude::*;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::error::Error;
    use crate::runtime::conditions::{MAX_MESSAGE_BYTES, merge};

    /// Text a hostile or broken endpoint might send: anything, control characters and
    /// bidi overrides, or one character repeated up to 100 000 times.
    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z \n\r\t\u{0}\u{202E}\u{2066}é🚀]{0,64}",
            (any::<char>(), 0..100_000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
        ]
    }

    fn any_code() -> impl Strategy<Value = Option<u32>> {
        prop_oneof![
            Just(None),
            any::<u32>().prop_map(Some),
            prop::sample::select(vec![
                20001, 20003, 20404, 20429, 63100, 63104, 63110, 63111, 63113, 63114, 63116,
            ])
            .prop_map(Some),
        ]
    }

    fn any_twilio_error() -> impl Strategy<Value = TwilioError> {
        prop_oneof![
            (
                any::<u16>(),
                any_code(),
                hostile_text(),
                prop::option::of(hostile_text()),
                prop::option::of(any::<u32>()),
            )
                .prop_map(|(http_status, code, message, more_info, retry)| {
                    TwilioError::Api {
                        http_status,
                        code,
                        message,
                        more_info,
                        retry_after: retry.map(|s| Duration::from_secs(s.into())),
                    }
                }),
            // What the client builds from a hostile error body.
            (any::<u16>(), hostile_text())
                .prop_map(|(status, body)| TwilioError::from_response(status, &body, None)),
            Just(()).prop_map(|()| TwilioError::Timeout),
            hostile_text().prop_map(TwilioError::Connect),
            hostile_text().prop_map(TwilioError::Transport),
            hostile_text().prop_map(TwilioError::Decode),
            hostile_text().prop_map(TwilioError::InvalidConfig),
            hostile_text().prop_map(TwilioError::InvalidArgument),
            hostile_text().prop_map(TwilioError::Pagination),
            any::<usize>().prop_map(|limit| TwilioError::ResponseTooLarge { limit }),
        ]
    }

    const ACTIONS: &[&str] = &[
        "create the sender",
        "read the sender",
        "update the sender",
        "submit the code",
        "delete the sender",
    ];

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn every_twilio_error_becomes_a_bounded_condition_that_says_what_failed(
            err in any_twilio_error(),
            action in prop::sample::select(ACTIONS),
        ) {
            let assessment = twilio_failure(action, &err);
            let synced = assessment.synced.as_ref().expect("Synced is always set");
            prop_assert_eq!(synced.status, Status::False);
            let mut verdicts = vec![synced];
            if err.class() == ErrorClass::NeedsUser {
                let stalled = assessment.stalled.as_ref().expect("Stalled is set");
                prop_assert_eq!(stalled.status, Status::True);
                prop_assert_eq!(stalled.reason, stall_reason(err.problem()));
                verdicts.push(stalled);
                verdicts.extend(assessment.ready.as_ref());
            } else {
                prop_assert!(!assessment.is_stalled(), "{err:?} is retried, not stalled");
                prop_assert!(assessment.ready.is_none(), "a passing failure leaves Ready");
                // The reconciler's other path to the same condition agrees.
                let (reason, message) = Error::twilio(action)(err).condition();
                prop_assert_eq!(Assessment::failed(reason, message), assessment.clone());
            }
            for verdict in verdicts {
                let message = &verdict.message;
                prop_assert!(
                    message.starts_with(&format!("could not {action} (")),
                    "{message:?}"
                );
                prop_assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());
                prop_assert!(!message.contains(char::is_control), "{message:?}");
            }
            let conditions = merge(&[], &assessment, Some(1), &Time(Default::default()));
            for condition in &conditions {
                prop_assert!(condition.message.len() <= MAX_MESSAGE_BYTES);
                prop_assert!(!condition.reason.is_empty());
            }
        }
    }
}
