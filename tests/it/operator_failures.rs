//! What goes wrong, and what the operator does about it: credentials missing or refused, the
//! account swapped, every Twilio error only the user can fix, answers lost, and a crash in
//! the middle of a create. Each ends with a condition that says what to do, and never with a
//! second sender.

use std::time::Duration;

use senderops::twilio::{
    Configuration, CreateSenderRequest, Credentials, FieldUpdate, Profile, UpdateSenderRequest,
    sender_id_for,
};
use serde_json::json;

use crate::support::operator::{
    Fixture, condition, register_by_hand, sid_of, spec, spec_with_code,
};
use crate::support::sim::{ACCOUNT_A, ACCOUNT_B, TOKEN_A, TOKEN_B, requests_in};
use crate::support::wait::Wait;

const PHONE: &str = "+15005550001";

#[tokio::test]
async fn missing_and_wrong_credentials_are_reported_and_fixing_the_secret_resumes() {
    let f = Fixture::new("creds").await;
    f.sim.number(PHONE, "auto_verify").await;
    f.apply(
        "acme",
        spec(PHONE, json!({"credentialsRef": {"name": "elsewhere"}})),
    )
    .await;
    let missing = f
        .wait_condition("acme", "Ready", "False", "CredentialsNotFound")
        .await;
    let message = condition(&missing, "Ready").unwrap().message;
    assert!(message.contains("Secret elsewhere"), "{message}");
    assert_eq!(condition(&missing, "Synced").unwrap().status, "False");
    f.wait_event("acme", "CredentialsNotFound").await;

    f.secret("elsewhere", &[("accountSid", ACCOUNT_A)]).await;
    let incomplete = f
        .wait_for("acme", "a message naming authToken", |s| {
            condition(s, "Ready").is_some_and(|c| c.message.contains("has no key authToken"))
        })
        .await;
    assert_eq!(
        condition(&incomplete, "Ready").unwrap().reason,
        "CredentialsNotFound"
    );

    f.secret(
        "elsewhere",
        &[("accountSid", ACCOUNT_A), ("authToken", "not-the-token")],
    )
    .await;
    let refused = f
        .wait_condition("acme", "Stalled", "True", "InvalidCredentials")
        .await;
    let message = condition(&refused, "Stalled").unwrap().message;
    assert!(message.contains("20003"), "{message}");
    assert!(
        message.contains("check accountSid/authToken (or apiKeySid/apiKeySecret)"),
        "the advice says what to fix: {message}"
    );
    assert!(!message.contains("not-the-token"), "{message}");

    // The Secret watch brings the sender on as soon as the token is right.
    f.secret(
        "elsewhere",
        &[("accountSid", ACCOUNT_A), ("authToken", TOKEN_A)],
    )
    .await;
    let ready = f.wait_ready("acme").await;
    assert_eq!(condition(&ready, "Stalled").unwrap().status, "False");
    assert_eq!(f.sim_sender(PHONE).await["create_requests"], 1);
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "one create attempt, ever: none with credentials Twilio refused"
    );
}

#[tokio::test]
async fn a_sender_is_never_registered_in_another_account() {
    let f = Fixture::new("account").await;
    f.sim.number(PHONE, "auto_verify").await;
    f.apply("acme", spec(PHONE, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);

    f.secret(
        "twilio",
        &[("accountSid", ACCOUNT_B), ("authToken", TOKEN_B)],
    )
    .await;
    let stalled = f
        .wait_condition("acme", "Stalled", "True", "AccountChanged")
        .await;
    let message = condition(&stalled, "Stalled").unwrap().message;
    assert!(
        message.contains(ACCOUNT_A) && message.contains(ACCOUNT_B) && message.contains(&sid),
        "{message}"
    );
    let all = f.sim_senders_for(PHONE).await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["account_sid"], ACCOUNT_A);

    f.secret(
        "twilio",
        &[("accountSid", ACCOUNT_A), ("authToken", TOKEN_A)],
    )
    .await;
    let ready = f.wait_ready("acme").await;
    assert_eq!(sid_of(&ready), sid);
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "no create attempt in account B"
    );
}

#[tokio::test]
async fn every_error_only_the_user_can_fix_stalls_with_advice() {
    let f = Fixture::new("stalled").await;
    // (name, number behaviour, expected reason, code, the advice the user must read)
    let cases = [
        (
            "waba-full",
            "waba_full",
            "WabaFull",
            "63104",
            "remove unused numbers from the WABA or ask Meta to raise the limit",
        ),
        (
            "not-found",
            "number_not_found",
            "NumberNotFound",
            "63111",
            "check phoneNumber and wabaId (the number must belong to this Twilio account)",
        ),
        (
            "no-verify",
            "cannot_verify",
            "CannotVerify",
            "63113",
            "Check that the number can receive SMS or voice calls, then recreate the sender",
        ),
        (
            "no-code",
            "code_not_received",
            "CodeNotReceived",
            "63116",
            "switch verification.method to voice or request a new code",
        ),
        (
            "registered",
            "already_registered",
            "AlreadyRegistered",
            "63110",
            "turn off two-step verification in WhatsApp Manager, then recreate",
        ),
    ];
    for (i, (name, behavior, ..)) in cases.iter().enumerate() {
        let phone = format!("+1500555010{i}");
        f.sim.number(&phone, behavior).await;
        f.apply(name, spec(&phone, json!({}))).await;
    }
    for (i, (name, _, reason, code, advice)) in cases.into_iter().enumerate() {
        let sender = f.wait_condition(name, "Stalled", "True", reason).await;
        let stalled = condition(&sender, "Stalled").unwrap();
        assert!(
            stalled.message.contains(code),
            "{name}: {}",
            stalled.message
        );
        assert!(
            stalled.message.contains(advice),
            "{name}: the advice {advice:?} is missing from: {}",
            stalled.message
        );
        assert_eq!(condition(&sender, "Ready").unwrap().status, "False");
        assert_eq!(condition(&sender, "Synced").unwrap().status, "False");
        let note = f.wait_event(name, reason).await;
        assert!(
            note.contains(advice),
            "{name}: the Event lacks the advice {advice:?}: {note}"
        );
        let phone = format!("+1500555010{i}");
        assert_eq!(
            f.sim.create_attempts(&phone).await,
            1,
            "{name}: a refused create is not repeated"
        );
    }
    // Serial onboarding moved past every refused number: the last one was registered.
    assert_eq!(f.sim_senders_for("+15005550104").await.len(), 1);
}

#[tokio::test]
async fn a_number_registered_in_another_account_stalls_and_is_left_alone() {
    let f = Fixture::new("elsewhere").await;
    f.sim.number(PHONE, "auto_verify").await;
    let account_b = f.sim.client(Credentials::auth_token(ACCOUNT_B, TOKEN_B));
    register_by_hand(&account_b, PHONE, "Someone Else").await;
    f.apply("acme", spec(PHONE, json!({}))).await;
    let sender = f
        .wait_condition("acme", "Stalled", "True", "AlreadyRegistered")
        .await;
    assert!(sender.status.unwrap().sid.is_none(), "nothing adopted");
    let all = f.sim_senders_for(PHONE).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["account_sid"], ACCOUNT_B);
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        2,
        "the registration by hand and the operator's one refused create, not repeated"
    );
}

#[tokio::test]
async fn a_different_display_name_at_twilio_is_reported_not_retried() {
    let f = Fixture::new("name").await;
    f.sim.number(PHONE, "auto_verify").await;
    register_by_hand(&f.sim.client_a(), PHONE, "Acme Old Name").await;
    f.apply("acme", spec(PHONE, json!({}))).await;
    let sender = f
        .wait_condition("acme", "Stalled", "True", "DisplayNameMismatch")
        .await;
    let message = condition(&sender, "Stalled").unwrap().message;
    assert!(message.contains("Acme Old Name"), "{message}");
    f.wait_event("acme", "DisplayNameMismatch").await;
    f.reconcile_and_wait("acme", "1").await;
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await
            + f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 400).await,
        0,
        "the name is never sent"
    );
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "adopted: only the registration by hand"
    );
}

#[tokio::test]
async fn a_sender_registered_in_another_waba_stalls_and_is_left_alone() {
    let f = Fixture::new("waba").await;
    f.sim.number(PHONE, "auto_verify").await;
    // Registered by hand in WABA 222; the spec asks for 111.
    let existing = f
        .sim
        .client_a()
        .create(&CreateSenderRequest {
            sender_id: sender_id_for(PHONE),
            configuration: Some(Configuration {
                waba_id: Some("222".into()),
                ..Configuration::default()
            }),
            profile: Some(Profile {
                name: FieldUpdate::Set("Acme".into()),
                ..Profile::default()
            }),
            ..CreateSenderRequest::default()
        })
        .await
        .expect("register by hand");
    f.apply("acme", spec(PHONE, json!({"wabaId": "111"}))).await;
    let sender = f
        .wait_condition("acme", "Stalled", "True", "WabaMismatch")
        .await;
    let message = condition(&sender, "Stalled").unwrap().message;
    for needle in ["WABA 222", "asks for 111", "delete and recreate"] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    assert_eq!(
        sid_of(&sender),
        existing.sid,
        "adopted, not registered again"
    );
    assert_eq!(condition(&sender, "Ready").unwrap().status, "False");
    f.wait_event("acme", "WabaMismatch").await;
    f.reconcile_and_wait("acme", "again").await;
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await,
        0,
        "nothing is sent to a sender in the wrong WABA"
    );
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "only the registration by hand"
    );
    assert_eq!(
        f.sim_sender(PHONE).await["configuration"]["waba_id"],
        "222",
        "left where it is"
    );
}

#[tokio::test]
async fn a_spec_twilio_refuses_stalls_with_its_message_and_is_not_sent_again() {
    let f = Fixture::new("invalid").await;
    f.sim.number(PHONE, "auto_verify").await;
    // A display name of one space passes the schema (one character, no control character);
    // Twilio refuses it (63100).
    f.apply("acme", spec(PHONE, json!({"profile": {"name": " "}})))
        .await;
    let sender = f
        .wait_condition("acme", "Stalled", "True", "InvalidSpec")
        .await;
    let message = condition(&sender, "Stalled").unwrap().message;
    for needle in [
        "63100",
        "Twilio rejected the sender's fields",
        "profile.name must not be empty",
        "Fix the WhatsAppSender spec",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    assert!(
        sender.status.as_ref().unwrap().sid.is_none(),
        "nothing registered"
    );
    f.wait_event("acme", "InvalidSpec").await;
    f.reconcile_and_wait("acme", "again").await;
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "a refused spec is not sent again until it changes"
    );
    assert!(f.sim_senders_for(PHONE).await.is_empty());
    // Its own refusal, still: not that of a sender it waited for.
    let again = f.get("acme").await.unwrap();
    let stalled = condition(&again, "Stalled").unwrap();
    assert_eq!(
        (stalled.reason.as_str(), stalled.message),
        ("InvalidSpec", message),
        "after another reconcile"
    );
}

#[tokio::test]
async fn a_value_twilio_does_not_keep_is_sent_three_times_then_stalls() {
    const WANTED: &str = "Kept by nobody";
    const TWILIOS: &str = "What Twilio keeps";
    let f = Fixture::new("notkept").await;
    f.sim.number(PHONE, "auto_verify").await;
    f.apply("acme", spec(PHONE, json!({"profile": {"about": TWILIOS}})))
        .await;
    let sid = sid_of(&f.wait_ready("acme").await);

    // The test plays a Twilio that does not keep the value: each time the operator's update
    // lands, it is put back (well before the operator's next read, 100 ms later). Should the
    // operator read the value before it is put back, it converges; a reconcile is then asked
    // for again.
    let twilio = f.sim.client_a();
    let put_back = UpdateSenderRequest {
        profile: Some(Profile {
            about: FieldUpdate::Set(TWILIOS.into()),
            ..Profile::default()
        }),
        ..UpdateSenderRequest::default()
    };
    f.patch("acme", json!({"spec": {"profile": {"about": WANTED}}}))
        .await;
    let generation = f.get("acme").await.unwrap().metadata.generation;
    let mut put_backs = 0;
    let mut nudges = 0;
    let stalled = Wait::until("the operator to stall on a value Twilio does not keep")
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(10))
        .context(|| format!("operator log:\n{}", f.operator.log_tail(40)))
        .poll_ok(async || {
            let at_twilio = f.sim.sender(&sid).await;
            if at_twilio["profile"]["about"] == WANTED {
                twilio
                    .update(&sid, &put_back)
                    .await
                    .expect("put the value back");
                put_backs += 1;
            }
            let sender = f.get("acme").await.expect("the sender");
            if condition(&sender, "Stalled").is_some_and(|c| c.reason == "TwilioRejected") {
                return Ok(sender);
            }
            let converged = sender.status.as_ref().and_then(|s| s.observed_generation)
                == generation
                && condition(&sender, "Ready").is_some_and(|c| c.status == "True");
            if converged && at_twilio["profile"]["about"] == TWILIOS {
                nudges += 1;
                f.request_reconcile("acme", &format!("nudge-{nudges}"))
                    .await;
            }
            Err(format!("{:?}", sender.status))
        })
        .await;
    let message = condition(&stalled, "Stalled").unwrap().message;
    for needle in [
        "Twilio does not keep profile.about",
        "sent 3 times",
        "edit the spec",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    f.wait_event("acme", "TwilioRejected").await;
    let sent = f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await - put_backs;
    assert!(
        sent >= 3,
        "the operator sent the value {sent} times ({put_backs} put back, {nudges} nudges)"
    );
    // It stops being sent: a forced reconcile sends nothing.
    f.reconcile_and_wait("acme", "stalled").await;
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await - put_backs,
        sent,
        "the update was sent again after the operator stalled"
    );
}

#[tokio::test]
async fn malformed_codes_are_refused_locally() {
    let f = Fixture::new("badcode").await;
    f.sim.number(PHONE, "needs_code").await;
    f.secret("otp", &[("code", "12ab56")]).await;
    f.apply("acme", spec_with_code(PHONE, "otp")).await;
    let sender = f
        .wait_condition("acme", "Stalled", "True", "InvalidCode")
        .await;
    let message = condition(&sender, "Stalled").unwrap().message;
    assert!(message.contains("4 to 8 digits"), "{message}");
    assert!(!message.contains("12ab56"), "{message}");
    assert_eq!(
        f.sim.sender(&sid_of(&sender)).await["wrong_codes"],
        0,
        "nothing was submitted"
    );
}

#[tokio::test]
async fn new_codes_on_request_until_twilio_says_too_many() {
    let mut f = Fixture::new("resend").await;
    f.sim.number(PHONE, "needs_code").await;
    f.apply("acme", spec_with_code(PHONE, "otp")).await;
    let sid = sid_of(
        &f.wait_condition("acme", "Ready", "False", "WaitingForCode")
            .await,
    );
    // The first code came with the registration; Twilio sends five in all, then says 63114.
    for round in 1..=4 {
        let before = f.sim.otp(&sid).await;
        f.patch(
            "acme",
            json!({"metadata": {"annotations": {"senderops.io/resend-code": format!("r{round}")}}}),
        )
        .await;
        f.wait_for("acme", &format!("resend r{round} handled"), |s| {
            s.status
                .as_ref()
                .and_then(|st| st.verification.as_ref())
                .and_then(|v| v.resend_code_request.as_deref())
                == Some(format!("r{round}").as_str())
        })
        .await;
        let twilio = f.sim.sender(&sid).await;
        assert_eq!(twilio["codes_sent"], round + 1, "{twilio}");
        assert_ne!(f.sim.otp(&sid).await, before, "a new code replaced the old");
    }
    f.patch(
        "acme",
        json!({"metadata": {"annotations": {"senderops.io/resend-code": "r5"}}}),
    )
    .await;
    let stalled = f
        .wait_condition("acme", "Stalled", "True", "TooManyCodes")
        .await;
    let message = condition(&stalled, "Stalled").unwrap().message;
    assert!(message.contains("wait several hours"), "{message}");
    assert_eq!(f.sim.sender(&sid).await["create_requests"], 5);
    // A new code is asked for with a create: the registration, four resends, and the fifth
    // resend that Twilio refused.
    assert_eq!(f.sim.create_attempts(PHONE).await, 1 + 4 + 1);

    // Asking again during the lockout does not reach Twilio (it would only prolong it).
    let refused = f.sim.count("POST", "/v2/Channels/Senders", 400).await;
    assert_eq!(refused, 1);
    f.patch(
        "acme",
        json!({"metadata": {"annotations": {"senderops.io/resend-code": "r6"}}}),
    )
    .await;
    f.wait_for("acme", "told when it retries", |s| {
        condition(s, "Stalled").is_some_and(|c| c.message.contains("retried in"))
    })
    .await;
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders", 400).await,
        refused
    );
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1 + 4 + 1,
        "no create attempt during the lockout"
    );

    // The lockout is kept in status: a restarted (or failed-over) operator honours it too.
    f.operator.restart();
    f.patch(
        "acme",
        json!({"metadata": {"annotations": {"senderops.io/resend-code": "r7"}}}),
    )
    .await;
    // A reconcile that saw r7 ran to its end.
    f.reconcile_and_wait("acme", "after-restart").await;
    let stalled = f.get("acme").await.unwrap();
    let message = condition(&stalled, "Stalled").unwrap().message;
    assert!(message.contains("retried in"), "{message}");
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1 + 4 + 1,
        "no create attempt during the lockout after a restart either"
    );
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_looked_up_not_repeated() {
    let f = Fixture::new("lost").await;
    f.sim.number(PHONE, "auto_verify").await;
    f.sim
        .faults(json!({"lost_answer_rate": 1.0, "only": "POST /v2/Channels/Senders"}))
        .await;
    f.apply("acme", spec(PHONE, json!({}))).await;
    let ready = f.wait_ready("acme").await;
    assert_eq!(
        f.sim.lost_answers("POST", "/v2/Channels/Senders").await,
        1,
        "the create's answer was lost"
    );
    let twilio = f.sim_sender(PHONE).await;
    assert_eq!(twilio["sid"], sid_of(&ready).as_str());
    assert_eq!(twilio["create_requests"], 1, "{twilio}");
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "the create was not repeated (a second one would be refused with 63110 and adopted)"
    );
    f.wait_event("acme", "Adopted").await;
    let events = f.events("acme").await;
    assert!(
        !events.iter().any(|(_, r, _)| r == "Created"),
        "the operator never saw its create succeed: {events:?}"
    );
}

#[tokio::test]
async fn an_operator_killed_mid_create_and_restarted_creates_nothing_twice() {
    let mut f = Fixture::new("crash").await;
    f.sim.number(PHONE, "auto_verify").await;
    // The create is applied at once, but its answer is held long enough to kill the operator
    // while it waits.
    f.sim
        .faults(json!({"answer_delay_ms": 5000, "only": "POST /v2/Channels/Senders"}))
        .await;
    f.apply("acme", spec(PHONE, json!({}))).await;
    f.wait_create_at_twilio(PHONE).await;
    f.operator.kill();
    // Killed mid-create: Twilio had the create and still held its answer (a request is
    // counted once answered).
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders", 202).await,
        0,
        "the create's answer had already come back when the operator was killed"
    );
    let before_restart = f.get("acme").await.unwrap();
    assert!(
        before_restart.status.and_then(|s| s.sid).is_none(),
        "the SID never reached the operator"
    );
    f.sim.faults(json!({})).await;
    f.operator.restart();

    let ready = f.wait_ready("acme").await;
    let twilio = f.sim_sender(PHONE).await;
    assert_eq!(twilio["sid"], sid_of(&ready).as_str());
    assert_eq!(twilio["create_requests"], 1, "{twilio}");
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "the restarted operator did not create it again"
    );
    f.wait_event("acme", "Adopted").await;
}

#[tokio::test]
async fn a_code_submission_that_fails_is_sent_again_once_twilio_answers() {
    let f = Fixture::new("codefail").await;
    f.sim.number(PHONE, "needs_code").await;
    f.apply("acme", spec_with_code(PHONE, "otp")).await;
    let sid = sid_of(
        &f.wait_condition("acme", "Ready", "False", "WaitingForCode")
            .await,
    );
    let code = f.sim.otp(&sid).await.expect("a code was sent");
    // Every code submission fails (500 or 503, applied to nothing) until the faults clear.
    f.sim
        .faults(json!({"error_rate": 1.0, "only": "POST /v2/Channels/Senders/{Sid}"}))
        .await;
    f.secret("otp", &[("code", &code)]).await;
    f.wait_condition("acme", "Synced", "False", "TwilioUnavailable")
        .await;
    // Several failed submissions in a row are still no verdict on the code.
    let failed_submissions = async || {
        let stats = f.sim.stats().await;
        requests_in(&stats, |r| {
            r["method"] == "POST"
                && r["route"] == "/v2/Channels/Senders/{Sid}"
                && r["status"].as_u64().is_some_and(|s| s >= 500)
        })
    };
    Wait::until("three failed code submissions (the code resubmitted)")
        .within(Duration::from_secs(20))
        .every(Duration::from_millis(50))
        .poll(failed_submissions, |failed| *failed >= 3)
        .await;
    assert_ne!(
        condition(&f.get("acme").await.unwrap(), "Stalled")
            .unwrap()
            .reason,
        "CodeRejected",
        "a code that never reached Twilio was not rejected"
    );
    f.sim.faults(json!({})).await;
    let ready = f.wait_ready("acme").await;
    assert_eq!(condition(&ready, "Stalled").unwrap().status, "False");
    assert_eq!(f.sim.sender(&sid).await["wrong_codes"], 0);
}
