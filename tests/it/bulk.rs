//! Twilio's advice for bulk registration, and every field of its document applied or reported:
//! a new display name is registered with one sender first; registrations in one account are
//! spaced; the voice application and the account type reach Twilio; DRAFT, STUBBED and 63020
//! have reasons of their own; re-registering a deleted number says what it needs.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::operator::{Fixture, condition, register_by_hand, sid_of, spec};
use crate::support::sim::{ACCOUNT_B, TOKEN_B};
use crate::support::wait::Wait;
use senderops::twilio::Credentials;

const FIRST: &str = "+15005550501";

fn others() -> Vec<String> {
    (2..=5).map(|i| format!("+1500555050{i}")).collect()
}

/// Five senders of one account share a display name: the first is applied, and once it is
/// registered the other four follow. Serial onboarding is off, so only the name holds them.
async fn five_with_one_name(f: &Fixture, first_behavior: &str) {
    f.sim.number(FIRST, first_behavior).await;
    f.apply("first", spec(FIRST, json!({}))).await;
    f.wait_create_at_twilio(FIRST).await;
    for (i, phone) in others().iter().enumerate() {
        f.sim.number(phone, "auto_verify").await;
        f.apply(&format!("next-{i}"), spec(phone, json!({}))).await;
    }
}

#[tokio::test]
async fn five_senders_with_one_display_name_register_one_first_and_the_others_once_it_is_online() {
    let f = Fixture::with_args("name-check", &["--serial-onboarding=false"]).await;
    five_with_one_name(&f, "needs_code").await;
    for i in 0..4 {
        let waiting = f
            .wait_condition(
                &format!("next-{i}"),
                "Ready",
                "False",
                "WaitingForDisplayNameCheck",
            )
            .await;
        let message = condition(&waiting, "Ready").unwrap().message;
        assert!(
            message.contains(&format!("{}/first", f.ns)) && message.contains("\"Acme\""),
            "{message}"
        );
        assert_eq!(condition(&waiting, "Stalled").unwrap().status, "False");
    }
    for phone in others() {
        assert_eq!(f.sim.create_attempts(&phone).await, 0, "{phone} waited");
    }
    let sid = sid_of(&f.get("first").await.unwrap());
    let code = Wait::until("the first sender's code")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(20))
        .poll(async || f.sim.otp(&sid).await, |code| code.is_some())
        .await
        .unwrap();
    f.apply(
        "first",
        spec(
            FIRST,
            json!({"verification": {"codeSecretRef": {"name": "first-otp"}}}),
        ),
    )
    .await;
    f.secret("first-otp", &[("code", &code)]).await;
    f.wait_ready("first").await;
    for i in 0..4 {
        f.wait_ready(&format!("next-{i}")).await;
    }
    for phone in others().iter().chain([FIRST.to_string()].iter()) {
        assert_eq!(
            f.sim.create_attempts(phone).await,
            1,
            "{phone} registered once"
        );
    }
}

#[tokio::test]
async fn a_display_name_meta_refuses_for_the_first_stalls_the_others_unregistered() {
    let f = Fixture::with_args("name-refused", &["--serial-onboarding=false"]).await;
    five_with_one_name(&f, "display_name_rejected").await;
    f.wait_condition("first", "Stalled", "True", "InvalidSpec")
        .await;
    for i in 0..4 {
        let stalled = f
            .wait_condition(
                &format!("next-{i}"),
                "Stalled",
                "True",
                "DisplayNameRejected",
            )
            .await;
        let message = condition(&stalled, "Stalled").unwrap().message;
        assert!(
            message.contains(&format!("when {}/first was registered with it first", f.ns))
                && message.contains("was not registered"),
            "{message}"
        );
    }
    for phone in others() {
        assert_eq!(
            f.sim.create_attempts(&phone).await,
            0,
            "{phone} never registered"
        );
    }
}

#[tokio::test]
async fn a_number_already_registered_at_twilio_never_waits_for_the_name_check() {
    let f = Fixture::with_args("name-adopt", &["--serial-onboarding=false"]).await;
    f.sim.number(FIRST, "needs_code").await;
    f.apply("first", spec(FIRST, json!({}))).await;
    f.wait_create_at_twilio(FIRST).await;
    let phone = "+15005550509";
    f.sim.number(phone, "auto_verify").await;
    register_by_hand(&f.sim.client_a(), phone, "Acme").await;
    f.apply("adopted", spec(phone, json!({}))).await;
    f.wait_ready("adopted").await;
    f.wait_event("adopted", "Adopted").await;
    assert_eq!(
        f.sim.create_attempts(phone).await,
        1,
        "only the hand registration"
    );
}

/// When the simulator first shows a sender for `phone`.
async fn registered_at(f: &Fixture, phone: &str) -> Instant {
    Wait::until(format!("{phone} at Twilio"))
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(10))
        .poll(
            async || f.sim_senders_for(phone).await.len(),
            |found| *found > 0,
        )
        .await;
    Instant::now()
}

#[tokio::test]
async fn two_registrations_in_one_account_are_no_closer_than_the_interval() {
    let interval = Duration::from_secs(2);
    // Serial onboarding off: only the spacing holds the second one back.
    let f = Fixture::with_args(
        "spacing",
        &["--registration-interval", "2s", "--serial-onboarding=false"],
    )
    .await;
    let (a, b) = ("+15005550511", "+15005550512");
    for phone in [a, b] {
        f.sim.number(phone, "auto_verify").await;
    }
    f.apply("a", spec(a, json!({"profile": {"name": "Acme A"}})))
        .await;
    let first = registered_at(&f, a).await;
    f.apply("b", spec(b, json!({"profile": {"name": "Acme B"}})))
        .await;
    let held = f.wait_condition("b", "Ready", "False", "Queued").await;
    let message = condition(&held, "Ready").unwrap().message;
    assert!(
        message.contains("goes out in") && message.contains("--registration-interval 2s"),
        "{message}"
    );
    let second = registered_at(&f, b).await;
    let gap = second - first;
    eprintln!("registrations {gap:?} apart (interval {interval:?})");
    assert!(gap >= interval - Duration::from_millis(50), "{gap:?}");
    f.wait_ready("b").await;
}

#[tokio::test]
async fn a_changed_voice_application_reaches_twilio() {
    let f = Fixture::new("voice-app").await;
    let phone = "+15005550521";
    f.sim.number(phone, "auto_verify").await;
    let with_app = |sid: &str| {
        spec(
            phone,
            json!({"verification": {"method": "voice", "voiceApplicationSid": sid}}),
        )
    };
    let (one, two) = (
        "AP0123456789abcdef0123456789abcdef",
        "APfedcba9876543210fedcba9876543210",
    );
    f.apply("acme", with_app(one)).await;
    f.wait_ready("acme").await;
    assert_eq!(
        f.sim_sender(phone).await["configuration"]["voice_application_sid"],
        one
    );
    f.apply("acme", with_app(two)).await;
    let sender = Wait::until("the new voice application at Twilio")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(20))
        .poll(
            async || f.sim_sender(phone).await,
            |s| s["configuration"]["voice_application_sid"] == two,
        )
        .await;
    assert_eq!(sender["configuration"]["voice_application_sid"], two);
    let updated = f.wait_event("acme", "Updated").await;
    assert!(
        updated.contains("configuration.voice_application_sid"),
        "{updated}"
    );
}

#[tokio::test]
async fn the_account_type_is_sent_changed_and_cleared() {
    let f = Fixture::new("account-type").await;
    let phone = "+15005550522";
    f.sim.number(phone, "auto_verify").await;
    let account_type = async |wanted: serde_json::Value| {
        Wait::until(format!("account_type {wanted} at Twilio"))
            .within(Duration::from_secs(30))
            .every(Duration::from_millis(20))
            .poll(
                async || f.sim_sender(phone).await["configuration"]["account_type"].clone(),
                |actual| *actual == wanted,
            )
            .await
    };
    f.apply("acme", spec(phone, json!({"accountType": "ISV"})))
        .await;
    f.wait_ready("acme").await;
    account_type(json!("ISV")).await;
    f.apply("acme", spec(phone, json!({"accountType": "ISVSubAccount"})))
        .await;
    account_type(json!("ISVSubAccount")).await;
    f.patch("acme", json!({"spec": {"accountType": null}}))
        .await;
    account_type(serde_json::Value::Null).await;
    f.wait_ready("acme").await;
}

#[tokio::test]
async fn draft_stubbed_and_an_unaccepted_invitation_have_reasons_of_their_own() {
    let f = Fixture::new("statuses").await;
    let phone = "+15005550531";
    f.sim.number(phone, "auto_verify").await;
    f.apply("acme", spec(phone, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);
    for (status, reason, words) in [
        ("DRAFT", "Draft", "finish it in the Twilio Console"),
        ("STUBBED", "Stubbed", "a placeholder"),
    ] {
        f.sim.patch_sender(&sid, json!({"status": status})).await;
        f.request_reconcile("acme", status).await;
        let stalled = f.wait_condition("acme", "Stalled", "True", reason).await;
        let message = condition(&stalled, "Stalled").unwrap().message;
        assert!(message.contains(words), "{status}: {message}");
    }

    let invited = "+15005550532";
    f.sim.number(invited, "invitation_not_accepted").await;
    f.apply(
        "invited",
        spec(invited, json!({"profile": {"name": "Acme Invited"}})),
    )
    .await;
    let stalled = f
        .wait_condition("invited", "Stalled", "True", "InvitationNotAccepted")
        .await;
    let message = condition(&stalled, "Stalled").unwrap().message;
    assert!(
        message.contains("63020") && message.contains("Meta Business Manager"),
        "{message}"
    );
}

#[tokio::test]
async fn registering_again_a_number_this_operator_deleted_says_it_needs_two_step_verification_off()
{
    let f = Fixture::new("re-register").await;
    let phone = "+15005550541";
    f.sim.number(phone, "auto_verify").await;
    f.apply("acme", spec(phone, json!({}))).await;
    f.wait_ready("acme").await;
    f.delete("acme").await;
    f.wait_gone("acme").await;
    let deleted = f.wait_event("acme", "Deleted").await;
    assert!(deleted.contains("two-step verification"), "{deleted}");

    // Meanwhile the number went to another account; this one's create is refused with 63110.
    let other = f.sim.client(Credentials::auth_token(ACCOUNT_B, TOKEN_B));
    register_by_hand(&other, phone, "Someone Else").await;
    f.apply("acme-again", spec(phone, json!({}))).await;
    let stalled = f
        .wait_condition("acme-again", "Stalled", "True", "AlreadyRegistered")
        .await;
    let message = condition(&stalled, "Stalled").unwrap().message;
    assert!(
        message.contains("this operator deleted the number's sender")
            && message.contains("two-step verification turned off in WhatsApp Manager"),
        "{message}"
    );
}
