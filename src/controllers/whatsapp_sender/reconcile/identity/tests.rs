//! The identity phase's decisions: credentials, the number's owner, a named SID, the create's
//! answers and the outcomes of a sender held back.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::super::run::{Outcome, Requeue};
use super::super::shared::{spaced, stalled};
use super::find::{Named, named};
use super::owner::TWILIO_FIELDS;
use super::register::{already_registered, own_name_refused};
use super::*;
use crate::api::condition_type::STALLED;
use crate::api::reason;
use crate::controllers::whatsapp_sender::pacing::QUEUED_RECHECK;
use crate::controllers::whatsapp_sender::state::{Busy, SenderKey};
use crate::runtime::conditions;
use crate::runtime::credentials::CredentialsProblem;
use crate::twilio::{Sender, TwilioError};

const A: &str = "AC0123456789abcdef0123456789abcdef";
const B: &str = "ACfedcba9876543210fedcba9876543210";
const SID: &str = "XE0123456789abcdef0123456789abcdef";

fn api_error(http_status: u16, code: Option<u32>) -> TwilioError {
    TwilioError::Api {
        http_status,
        code,
        message: "m".into(),
        more_info: None,
        retry_after: None,
    }
}

fn sender(sid: &str, phone: &str) -> Sender {
    Sender {
        sid: sid.into(),
        sender_id: format!("whatsapp:{phone}"),
        ..Sender::default()
    }
}

fn reasons(outcome: &Outcome) -> (&'static str, bool) {
    let a = &outcome.assessment;
    (
        a.ready.as_ref().map_or("", |v| v.reason),
        a.get(STALLED)
            .is_some_and(|v| v.status == conditions::Status::True),
    )
}

#[test]
fn credentials_decide_between_waiting_stalling_and_going_on() {
    let missing = CredentialsProblem::SecretNotFound("twilio".into());
    assert_eq!(
        reasons(&credentials_problem(&missing)),
        (reason::CREDENTIALS_NOT_FOUND, false)
    );
    let unusable = CredentialsProblem::Unusable {
        secret: "twilio".into(),
        reason: "accountSid is not an account SID".into(),
    };
    assert_eq!(
        reasons(&credentials_problem(&unusable)),
        (reason::INVALID_CREDENTIALS, true)
    );
    assert_eq!(
        other_account(None, None, "twilio", A),
        None,
        "first registration"
    );
    assert_eq!(other_account(Some(A), Some(SID), "twilio", A), None);
    let changed = other_account(Some(A), Some(SID), "twilio", B).unwrap();
    assert_eq!(reasons(&changed), (reason::ACCOUNT_CHANGED, true));
    let message = &changed.assessment.ready.unwrap().message;
    assert!(
        message.contains(&format!("registered in Twilio account {A}"))
            && message.contains(&format!("credentials for account {B}"))
            && message.contains("restore credentials"),
        "{message}"
    );
}

#[test]
fn a_named_sid_is_ours_only_for_this_number() {
    let phone = "+15017122661";
    assert!(matches!(
        named(phone, Some(sender(SID, phone))),
        Named::Ours(_)
    ));
    let upper = Sender {
        sender_id: "WhatsApp:+15017122661".into(),
        ..sender(SID, phone)
    };
    assert!(
        matches!(named(phone, Some(upper)), Named::Ours(_)),
        "any case"
    );
    assert!(matches!(
        named(phone, Some(sender(SID, "+15017122662"))),
        Named::OtherNumber(_)
    ));
    assert_eq!(named(phone, None), Named::Missing);
}

#[test]
fn a_queued_sender_waits_without_stalling_and_says_for_whom() {
    let busy = Busy {
        holder: SenderKey::new("first").within("team-a"),
        ahead: 2,
    };
    let outcome = queued(A, &busy);
    assert_eq!(reasons(&outcome), (reason::QUEUED, false));
    assert_eq!(outcome.requeue, Requeue::After(QUEUED_RECHECK));
    let message = &outcome.assessment.ready.unwrap().message;
    assert!(
        message.contains("team-a/first") && message.contains("2 more ahead"),
        "{message}"
    );
}

#[test]
fn each_create_answer_has_its_step() {
    assert!(matches!(
        created(Ok(sender(SID, "+15017122661"))),
        Created::Sender(_)
    ));
    assert!(matches!(
        created(Ok(sender("XE-broken", "+15017122661"))),
        Created::Failed {
            maybe_registered: true,
            ..
        }
    ));
    assert!(matches!(
        created(Err(api_error(400, Some(63110)))),
        Created::LookAgain(_)
    ));
    let stalls = [
        (63104, reason::WABA_FULL),
        (63111, reason::NUMBER_NOT_FOUND),
        (63113, reason::CANNOT_VERIFY),
        (63116, reason::CODE_NOT_RECEIVED),
        (63100, reason::INVALID_SPEC),
        (20003, reason::INVALID_CREDENTIALS),
    ];
    for (code, expected) in stalls {
        match created(Err(api_error(400, Some(code)))) {
            Created::Stalled {
                outcome,
                name_refused,
            } => {
                assert_eq!(name_refused, None, "{code}: not about the display name");
                assert_eq!(reasons(&outcome), (expected, true), "{code}");
                assert_eq!(outcome.requeue, Requeue::Resync, "{code}");
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    for (err, maybe) in [
        (api_error(500, Some(20500)), true),
        (TwilioError::Timeout, true),
        (api_error(503, Some(20503)), false),
        (api_error(429, Some(20429)), false),
        (TwilioError::Connect("refused".into()), false),
    ] {
        let shown = err.to_string();
        match created(Err(err)) {
            Created::Failed {
                maybe_registered, ..
            } => assert_eq!(maybe_registered, maybe, "{shown}"),
            other => panic!("{shown}: {other:?}"),
        }
    }
}

#[test]
fn a_number_this_operator_deleted_says_what_registering_it_again_needs() {
    let taken = api_error(400, Some(63110));
    let plain = already_registered(&taken, None);
    assert_eq!(reasons(&plain), (reason::ALREADY_REGISTERED, true));
    let message = &plain.assessment.ready.as_ref().unwrap().message;
    assert!(!message.contains("this operator deleted"), "{message}");
    let at: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
    let deleted = already_registered(&taken, Some((SID.into(), at)));
    for verdict in [&deleted.assessment.ready, &deleted.assessment.stalled] {
        let message = &verdict.as_ref().unwrap().message;
        assert!(
            message.contains(&format!("this operator deleted the number's sender {SID}"))
                && message.contains("two-step verification turned off in WhatsApp Manager"),
            "{message}"
        );
    }
}

#[test]
fn senders_that_share_a_display_name_wait_for_the_first_or_stall_with_its_refusal() {
    let first = SenderKey::new("first").within("team-a");
    let waiting = waiting_for_name("Acme", &first);
    assert_eq!(
        reasons(&waiting),
        (reason::WAITING_FOR_DISPLAY_NAME_CHECK, false)
    );
    assert_eq!(waiting.requeue, Requeue::After(QUEUED_RECHECK));
    let message = &waiting.assessment.ready.as_ref().unwrap().message;
    assert!(
        message.contains("team-a/first") && message.contains("\"Acme\""),
        "{message}"
    );

    let refused = name_rejected("Acme", &first, "The display name\nis not allowed");
    assert_eq!(reasons(&refused), (reason::DISPLAY_NAME_REJECTED, true));
    let message = &refused.assessment.stalled.as_ref().unwrap().message;
    assert!(
        message.contains("when team-a/first was registered with it first")
            && message.contains("The display name is not allowed")
            && message.contains("was not registered"),
        "{message}"
    );
    let name_refusal = TwilioError::Api {
        http_status: 400,
        code: Some(63100),
        message: "The display name does not follow Meta's guidelines".into(),
        more_info: Some("https://www.twilio.com/docs/errors/63100".into()),
        retry_after: None,
    };
    let said = "The display name does not follow Meta's guidelines";
    let own_answer = match created(Err(name_refusal)) {
        Created::Stalled {
            outcome,
            name_refused,
        } => {
            assert_eq!(name_refused.as_deref(), Some(said));
            outcome
        }
        other => panic!("{other:?}"),
    };
    // The refused sender itself keeps the stall its own answer gave, on every reconcile
    // after it: not the refusal "for another sender".
    let again = own_name_refused(said);
    assert_eq!(reasons(&again), (reason::INVALID_SPEC, true));
    assert_eq!(again.assessment, own_answer.assessment);
    assert_eq!(again.requeue, own_answer.requeue);
}

#[test]
fn registrations_held_back_say_when_they_go() {
    let outcome = spaced(A, Duration::from_secs(125), Duration::from_secs(180));
    assert_eq!(reasons(&outcome), (reason::QUEUED, false));
    assert_eq!(outcome.requeue, Requeue::After(Duration::from_secs(125)));
    let message = &outcome.assessment.ready.as_ref().unwrap().message;
    assert!(
        message.contains("goes out in 2m 5s") && message.contains("--registration-interval 3m"),
        "{message}"
    );
}

#[test]
fn too_many_codes_waits_an_hour_before_asking_again() {
    let outcome = stalled("request a new code", &api_error(400, Some(63114)));
    assert_eq!(reasons(&outcome), (reason::TOO_MANY_CODES, true));
    assert_eq!(outcome.requeue, Requeue::After(Duration::from_secs(3600)));
}

#[test]
fn a_duplicate_names_its_owner_only_within_its_namespace() {
    let text = |outcome: &Outcome| {
        let stalled = outcome.assessment.get(STALLED).unwrap();
        assert_eq!(stalled.reason, reason::DUPLICATE_SENDER);
        stalled.message.clone()
    };
    let same = text(&duplicate(
        "prod",
        "+15550500001",
        A,
        &SenderKey::new("main").within("prod"),
    ));
    assert!(
        same.contains("WhatsAppSender main in this namespace"),
        "{same}"
    );
    assert!(same.contains("+15550500001") && same.contains(A), "{same}");
    let other = text(&duplicate(
        "staging",
        "+15550500001",
        A,
        &SenderKey::new("main-secret-name").within("prod"),
    ));
    assert!(
        !other.contains("main-secret-name") && !other.contains("prod"),
        "{other}"
    );
    assert!(other.contains("another namespace"), "{other}");
    assert!(other.contains("never deletes at Twilio"), "{other}");
}

#[test]
fn letting_go_clears_fields_the_status_really_has() {
    let status = crate::api::WhatsAppSenderStatus {
        sid: Some(SID.into()),
        account_sid: Some(A.into()),
        sender_id: Some("whatsapp:+15550500001".into()),
        twilio_status: Some("ONLINE".into()),
        quality_rating: Some("HIGH".into()),
        messaging_limit: Some("TIER_1K".into()),
        offline_reasons: vec![Default::default()],
        alerts: vec![Default::default()],
        verification: Some(Default::default()),
        ..Default::default()
    };
    let written = serde_json::to_value(&status).unwrap();
    let mut names: Vec<&str> = written
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    let mut cleared = TWILIO_FIELDS.to_vec();
    cleared.sort();
    assert_eq!(
        names, cleared,
        "every Twilio field, by the name the API server has"
    );
}
