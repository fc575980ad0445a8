//! Every condition reason the operator can set is reached by at least one phase decision (or,
//! for transient failures and first visits, by the error and condition helpers the driver
//! uses), without any server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;
use tokio::time::Instant;

use super::cleanup::{self, Deleted};
use super::converge;
use super::identity::{self, Created};
use super::run::Outcome;
use super::shared;
use super::verify::{self, Waiting};
use crate::api::{WhatsAppSenderSpec, WhatsAppSenderStatus, reason};
use crate::controllers::whatsapp_sender::conditions::SenderAssessment;
use crate::controllers::whatsapp_sender::otp::CodeProblem;
use crate::controllers::whatsapp_sender::state::{Busy, SenderFacts, SenderKey};
use crate::error::Error;
use crate::runtime::conditions::{self, Assessment};
use crate::runtime::credentials::CredentialsProblem;
use crate::twilio::{Sender, TwilioError};

/// A spec of the fields every sender has, with `extra`'s top-level fields set (shared with the
/// phases' own unit tests).
pub(super) fn spec(extra: serde_json::Value) -> WhatsAppSenderSpec {
    let mut spec = json!({
        "phoneNumber": "+15017122661",
        "credentialsRef": {"name": "twilio"},
        "profile": {"name": "Acme"},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(spec).unwrap()
}

fn sender(status: &str, extra: serde_json::Value) -> Sender {
    let mut value = json!({
        "sid": "XE0123456789abcdef0123456789abcdef",
        "status": status,
        "sender_id": "whatsapp:+15017122661",
        "profile": {"name": "Acme"},
    });
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

fn api_error(http_status: u16, code: u32) -> TwilioError {
    TwilioError::Api {
        http_status,
        code: Some(code),
        message: "m".into(),
        more_info: None,
        retry_after: None,
    }
}

fn add(seen: &mut Vec<Assessment>, outcome: &Outcome) {
    seen.push(outcome.assessment.clone());
}

fn reasons_of(assessment: &Assessment, into: &mut BTreeSet<&'static str>) {
    for verdict in [&assessment.ready, &assessment.synced, &assessment.stalled]
        .into_iter()
        .flatten()
    {
        into.insert(verdict.reason);
    }
}

#[test]
fn every_condition_reason_is_reached_by_a_decision() {
    let mut seen: Vec<Assessment> = Vec::new();
    let facts = SenderFacts::new(Instant::now());

    // identity
    add(
        &mut seen,
        &identity::credentials_problem(&CredentialsProblem::SecretNotFound("t".into())),
    );
    add(
        &mut seen,
        &identity::credentials_problem(&CredentialsProblem::Unusable {
            secret: "t".into(),
            reason: "r".into(),
        }),
    );
    add(
        &mut seen,
        &identity::other_account(Some("AC1"), None, "t", "AC2").unwrap(),
    );
    let busy = Busy {
        holder: SenderKey::new("a").within("ns"),
        ahead: 0,
    };
    add(&mut seen, &identity::queued("AC1", &busy));
    add(&mut seen, &identity::waiting_for_name("Acme", &busy.holder));
    add(
        &mut seen,
        &identity::name_rejected("Acme", &busy.holder, "refused"),
    );
    add(
        &mut seen,
        &shared::spaced("AC1", Duration::from_secs(60), Duration::from_secs(180)),
    );
    for code in [
        20003, 63020, 63100, 63104, 63111, 63113, 63114, 63116, 63110,
    ] {
        add(
            &mut seen,
            &shared::stalled("create the sender", &api_error(400, code)),
        );
        if let Created::Stalled { outcome, .. } = identity::created(Err(api_error(400, code))) {
            add(&mut seen, &outcome);
        }
    }
    add(
        &mut seen,
        &shared::stalled("update the sender", &api_error(409, 12345)),
    );

    // converge
    let base = spec(json!({}));
    for status in [
        "ONLINE",
        "CREATING",
        "VERIFYING",
        "ONLINE:UPDATING",
        "TWILIO_REVIEW",
        "OFFLINE",
        "DRAFT",
        "STUBBED",
        "SOMETHING_NEW",
    ] {
        if let converge::Step::Conclude(o) | converge::Step::Converged(o) =
            converge::decide(&base, &sender(status, json!({})), &facts, 1)
        {
            add(&mut seen, &o);
        }
    }
    let waba = converge::decide(
        &spec(json!({"wabaId": "1"})),
        &sender("ONLINE", json!({"configuration": {"waba_id": "2"}})),
        &facts,
        1,
    );
    let renamed = converge::decide(
        &base,
        &sender("ONLINE", json!({"profile": {"name": "Other"}})),
        &facts,
        1,
    );
    for step in [waba, renamed] {
        if let converge::Step::Conclude(o) | converge::Step::Converged(o) = step {
            add(&mut seen, &o);
        }
    }

    // verify
    let who = Waiting {
        phone: "+15017122661",
        method: "sms",
        namespace: "ns",
    };
    let coded = spec(json!({"verification": {"codeSecretRef": {"name": "otp"}}}));
    let none = BTreeMap::new();
    let answered = crate::api::VerificationStatus {
        submitted_code: Some(crate::api::SubmittedCode {
            secret_name: "otp".into(),
            key: "code".into(),
            resource_version: "1".into(),
            submitted_at: Time(Default::default()),
            rejected: false,
            uncertain: false,
        }),
        resend_code_request: None,
        ..Default::default()
    };
    let resend = BTreeMap::from([(
        crate::controllers::whatsapp_sender::otp::RESEND_CODE_ANNOTATION.to_string(),
        "1".to_string(),
    )]);
    for step in [
        verify::decide(&base, who, &none, None, None, None),
        verify::decide(&coded, who, &none, Some(&answered), Some("1"), None),
        verify::decide(
            &coded,
            who,
            &resend,
            None,
            Some("1"),
            Some(verify::NotNow::Locked(Duration::from_secs(60))),
        ),
    ] {
        if let verify::Step::Conclude(o) | verify::Step::Refused(o) = step {
            add(&mut seen, &o);
        }
    }
    add(
        &mut seen,
        &verify::unusable_code(&CodeProblem::Malformed {
            secret: "otp".into(),
            key: "code".into(),
        }),
    );

    // ownership
    add(
        &mut seen,
        &identity::duplicate(
            "ns",
            "+15017122661",
            "AC1",
            &SenderKey::new("prod").within("ns"),
        ),
    );

    // cleanup
    let registered = WhatsAppSenderStatus {
        sid: Some("XE1".into()),
        account_sid: Some("AC1".into()),
        ..Default::default()
    };
    if let cleanup::Step::Blocked(o) = cleanup::decide(&spec(json!({"suspend": true})), &registered)
    {
        add(&mut seen, &o);
    }
    if let Deleted::Blocked(o) = cleanup::deleted(Err(api_error(403, 20003))) {
        add(&mut seen, &o);
    }

    add(
        &mut seen,
        &verify::requested("asked Twilio for a new code".into()),
    );
    add(&mut seen, &verify::accepted(Duration::from_secs(5)));

    // The driver's own: suspension, transient failures, a first visit.
    seen.push(Assessment::suspended());
    for err in [
        Error::twilio("read the sender")(TwilioError::Timeout),
        Error::Kube(kube::Error::LinesCodecMaxLineLengthExceeded),
    ] {
        let (reason, message) = err.condition();
        seen.push(Assessment::failed(reason, message));
    }
    let mut reached = BTreeSet::new();
    for assessment in &seen {
        reasons_of(assessment, &mut reached);
    }
    // The condition of credentials whose account Twilio did not confirm.
    let unverified = identity::unverified_condition("twilio", "AC1", "HTTP 403");
    if let Some(known) = reason::ALL.iter().find(|r| **r == unverified.reason) {
        reached.insert(known);
    }
    let first_visit = conditions::merge(
        &[],
        &Assessment::unchanged(),
        None,
        &Time(Default::default()),
    );
    for condition in &first_visit {
        if let Some(known) = reason::ALL.iter().find(|r| **r == condition.reason) {
            reached.insert(known);
        }
    }
    let missing: Vec<&&str> = reason::ALL
        .iter()
        .filter(|r| !reached.contains(**r))
        .collect();
    assert!(missing.is_empty(), "no decision reaches {missing:?}");
}
