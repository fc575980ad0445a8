//! Every path of the sender lifecycle, driven over HTTP.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn control_sender(sim: &TestSim, sid: &str) -> Value {
    let reply = sim
        .control(Method::GET, &format!("/_sim/senders/{sid}"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn auto_verify_number_goes_online_without_a_code() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    let sid = sim.create("+15005550001").await;
    let online = sim.wait_for(&sid, "ONLINE").await;
    assert_eq!(
        online["properties"],
        json!({"quality_rating": "HIGH", "messaging_limit": "1K Customers/24hr"})
    );
    assert_eq!(online["offline_reasons"], Value::Null);
    assert_eq!(
        sim.otp(&sid).await,
        None,
        "no code is sent for a Twilio number"
    );
    assert_eq!(control_sender(&sim, &sid).await["codes_sent"], 0);
}

#[tokio::test]
async fn unconfigured_number_needs_the_code() {
    let sim = TestSim::start().await;
    let (sid, code) = sim.pending_with_code("+15005550001").await;
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    let pending = sim.fetch(&sid).await;
    assert_eq!(
        pending["properties"],
        json!({"quality_rating": null, "messaging_limit": null})
    );

    let reply = sim
        .update(&sid, json!({"configuration": {"verification_code": code}}))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["status"], "VERIFYING");
    assert_eq!(
        reply.body["configuration"]["verification_code"],
        Value::Null,
        "never echoed"
    );
    let online = sim.wait_for(&sid, "ONLINE").await;
    assert_eq!(online["properties"]["quality_rating"], "HIGH");
    assert_eq!(online["configuration"]["verification_code"], Value::Null);
}

#[tokio::test]
async fn wrong_code_leaves_the_sender_pending() {
    let sim = TestSim::start().await;
    let (sid, code) = sim.pending_with_code("+15005550001").await;
    let reply = sim
        .update(
            &sid,
            json!({"configuration": {"verification_code": wrong_code(&code)}}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["status"], "PENDING_VERIFICATION");
    tokio::time::sleep(STEP * 3).await;
    assert_eq!(sim.fetch(&sid).await["status"], "PENDING_VERIFICATION");
    assert_eq!(control_sender(&sim, &sid).await["wrong_codes"], 1);

    // The right code still works afterwards.
    let reply = sim
        .update(&sid, json!({"configuration": {"verification_code": code}}))
        .await;
    assert_eq!(reply.body["status"], "VERIFYING");
    sim.wait_for(&sid, "ONLINE").await;
}

#[tokio::test]
async fn second_create_while_pending_sends_a_new_code() {
    let sim = TestSim::start().await;
    let (sid, first) = sim.pending_with_code("+15005550001").await;

    let again = sim.create_as(A, "+15005550001", "Acme").await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["sid"], sid.as_str(), "same sender");
    assert_eq!(again.body["status"], "PENDING_VERIFICATION");
    let second = sim.otp(&sid).await.expect("a new code was sent");
    assert_eq!(control_sender(&sim, &sid).await["codes_sent"], 2);

    // One in a million the new code equals the old one; then there is nothing to tell apart.
    if second != first {
        let stale = sim
            .update(&sid, json!({"configuration": {"verification_code": first}}))
            .await;
        assert_eq!(
            stale.body["status"], "PENDING_VERIFICATION",
            "the old code stopped working"
        );
    }
    let fresh = sim
        .update(
            &sid,
            json!({"configuration": {"verification_code": second}}),
        )
        .await;
    assert_eq!(fresh.body["status"], "VERIFYING");
    sim.wait_for(&sid, "ONLINE").await;
    let listed = sim
        .api(
            A,
            Method::GET,
            "/v2/Channels/Senders?Channel=whatsapp",
            None,
        )
        .await;
    assert_eq!(
        listed.body["senders"].as_array().unwrap().len(),
        1,
        "no duplicate sender"
    );
}

#[tokio::test]
async fn already_registered_number_goes_offline_with_63110() {
    let sim = TestSim::start().await;
    sim.set_behavior("whatsapp:+15005550001", "already_registered")
        .await;
    let sid = sim.create("+15005550001").await;
    let offline = sim.wait_for(&sid, "OFFLINE").await;
    let reasons = offline["offline_reasons"]
        .as_array()
        .expect("offline_reasons set");
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0]["code"], "63110");
    assert!(
        reasons[0]["message"]
            .as_str()
            .unwrap()
            .contains("already registered")
    );
    assert_eq!(
        reasons[0]["more_info"],
        "https://www.twilio.com/docs/errors/63110"
    );
    assert_eq!(
        offline["properties"],
        json!({"quality_rating": null, "messaging_limit": null})
    );
}

#[tokio::test]
async fn code_that_never_arrives() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "code_never_arrives").await;
    let sid = sim.create("+15005550001").await;
    sim.wait_for(&sid, "PENDING_VERIFICATION").await;
    tokio::time::sleep(STEP * 4).await;
    assert_eq!(sim.fetch(&sid).await["status"], "PENDING_VERIFICATION");
    assert_eq!(sim.otp(&sid).await, None);
    // Asking again does not help either.
    assert_eq!(sim.create_as(A, "+15005550001", "Acme").await.status, 202);
    assert_eq!(sim.otp(&sid).await, None);
}

#[tokio::test]
async fn numbers_taken_elsewhere_are_refused_with_63110() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    sim.set_behavior("+15005550002", "already_registered").await;
    let online = sim.create("+15005550001").await;
    sim.wait_for(&online, "ONLINE").await;
    let offline = sim.create("+15005550002").await;
    sim.wait_for(&offline, "OFFLINE").await;
    let (_pending, _) = sim.pending_with_code("+15005550003").await;

    for number in ["+15005550001", "+15005550002"] {
        sim.create_as(A, number, "Acme")
            .await
            .assert_error(400, 63110);
    }
    for number in ["+15005550001", "+15005550002", "+15005550003"] {
        sim.create_as(B, number, "Other")
            .await
            .assert_error(400, 63110);
    }
    let all = sim.control(Method::GET, "/_sim/senders", None).await;
    assert_eq!(all.body.as_array().unwrap().len(), 3, "nothing was created");
}

#[tokio::test]
async fn five_wrong_codes_then_63114() {
    let sim = TestSim::start().await;
    let (sid, code) = sim.pending_with_code("+15005550001").await;
    let wrong = wrong_code(&code);
    for attempt in 1..=5 {
        let reply = sim
            .update(&sid, json!({"configuration": {"verification_code": wrong}}))
            .await;
        assert_eq!(reply.status, 202, "attempt {attempt}: {}", reply.body);
        assert_eq!(reply.body["status"], "PENDING_VERIFICATION");
    }
    let locked = sim
        .update(&sid, json!({"configuration": {"verification_code": code}}))
        .await;
    locked.assert_error(400, 63114);
    assert!(
        locked.body["message"]
            .as_str()
            .unwrap()
            .contains("Too many verification codes")
    );
    assert_eq!(sim.fetch(&sid).await["status"], "PENDING_VERIFICATION");
    // Nor can a new code be requested.
    sim.create_as(A, "+15005550001", "Acme")
        .await
        .assert_error(400, 63114);
    // A refused update changes nothing else either.
    sim.update(
        &sid,
        json!({"configuration": {"verification_code": code, "waba_id": "999"}}),
    )
    .await
    .assert_error(400, 63114);
    assert_eq!(
        sim.fetch(&sid).await["configuration"]["waba_id"],
        Value::Null
    );
}

#[tokio::test]
async fn a_sixth_code_request_gets_63114() {
    let sim = TestSim::start().await;
    let (sid, _) = sim.pending_with_code("+15005550001").await;
    for send in 2..=5 {
        let reply = sim.create_as(A, "+15005550001", "Acme").await;
        assert_eq!(reply.status, 202, "send {send}: {}", reply.body);
    }
    assert_eq!(control_sender(&sim, &sid).await["codes_sent"], 5);
    sim.create_as(A, "+15005550001", "Acme")
        .await
        .assert_error(400, 63114);
    assert_eq!(control_sender(&sim, &sid).await["codes_sent"], 5);
    // The last code that was sent still verifies.
    let code = sim.otp(&sid).await.unwrap();
    let reply = sim
        .update(&sid, json!({"configuration": {"verification_code": code}}))
        .await;
    assert_eq!(reply.body["status"], "VERIFYING");
}

#[tokio::test]
async fn code_is_ignored_unless_pending() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    let sid = sim.create("+15005550001").await;
    sim.wait_for(&sid, "ONLINE").await;
    for _ in 0..6 {
        let reply = sim
            .update(
                &sid,
                json!({"configuration": {"verification_code": "123456"}}),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.body["status"], "ONLINE");
    }
    assert_eq!(control_sender(&sim, &sid).await["wrong_codes"], 0);
}

#[tokio::test]
async fn display_name_cannot_be_changed() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let refused = sim
        .update(
            &sid,
            json!({"profile": {"name": "Acme Corp", "about": "new"}}),
        )
        .await;
    refused.assert_error(400, 63100);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("cannot be changed"),
        "{}",
        refused.body
    );
    let sender = sim.fetch(&sid).await;
    assert_eq!(sender["profile"]["name"], "Acme");
    assert_eq!(
        sender["profile"]["about"],
        Value::Null,
        "nothing of the refused update applied"
    );

    let same = sim
        .update(&sid, json!({"profile": {"name": "Acme", "about": "new"}}))
        .await;
    assert_eq!(same.status, 202, "{}", same.body);
    assert_eq!(same.body["profile"]["about"], "new");
}

#[tokio::test]
async fn updates_of_an_online_sender_pass_through_online_updating() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    let sid = sim.create("+15005550001").await;
    sim.wait_for(&sid, "ONLINE").await;

    let webhook = json!({
        "callback_url": "https://example.com/in",
        "callback_method": "POST",
        "fallback_url": "https://example.com/fallback",
        "fallback_method": "PUT",
        "status_callback_url": "https://example.com/status",
        "status_callback_method": "POST"
    });
    let reply = sim.update(&sid, json!({"webhook": webhook})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["status"], "ONLINE:UPDATING");
    assert_eq!(reply.body["webhook"], webhook);
    let online = sim.wait_for(&sid, "ONLINE").await;
    assert_eq!(online["webhook"], webhook);
    assert_eq!(
        online["properties"]["quality_rating"], "HIGH",
        "still registered"
    );

    let reply = sim
        .update(
            &sid,
            json!({"profile": {
                "about": "We sell things",
                "emails": ["help@example.com"],
                "websites": [{"website": "https://example.com", "label": "Shop"}],
                "vertical": "Shopping and Retail"
            }}),
        )
        .await;
    assert_eq!(reply.body["status"], "ONLINE:UPDATING");
    let online = sim.wait_for(&sid, "ONLINE").await;
    assert_eq!(online["profile"]["name"], "Acme", "name kept when not sent");
    assert_eq!(online["profile"]["about"], "We sell things");
    assert_eq!(
        online["profile"]["emails"],
        json!([{"email": "help@example.com", "label": "Email"}])
    );
    assert_eq!(
        online["profile"]["websites"],
        json!([{"website": "https://example.com", "label": "Shop"}])
    );
    assert_eq!(
        online["webhook"], webhook,
        "webhook untouched by a profile update"
    );

    // Configuration alone is Twilio-side: no trip through ONLINE:UPDATING.
    let reply = sim
        .update(
            &sid,
            json!({"configuration": {
                "waba_id": "4242",
                "verification_method": "voice",
                "voice_application_sid": "AP00000000000000000000000000000001"
            }}),
        )
        .await;
    assert_eq!(reply.body["status"], "ONLINE");
    assert_eq!(reply.body["configuration"]["waba_id"], "4242");
    assert_eq!(reply.body["configuration"]["verification_method"], "voice");
    assert_eq!(
        reply.body["configuration"]["voice_application_sid"],
        "AP00000000000000000000000000000001"
    );

    // Null sections mean "no change"; a null field inside one clears it.
    let reply = sim
        .update(
            &sid,
            json!({"webhook": {"fallback_url": null}, "profile": null, "configuration": null}),
        )
        .await;
    assert_eq!(reply.body["webhook"]["fallback_url"], Value::Null);
    assert_eq!(
        reply.body["webhook"]["callback_url"],
        "https://example.com/in"
    );
    assert_eq!(reply.body["profile"]["about"], "We sell things");
}

#[tokio::test]
async fn updating_a_pending_sender_keeps_it_pending() {
    let sim = TestSim::start().await;
    let (sid, _) = sim.pending_with_code("+15005550001").await;
    let reply = sim
        .update(&sid, json!({"profile": {"about": "hello"}}))
        .await;
    assert_eq!(reply.body["status"], "PENDING_VERIFICATION");
    assert_eq!(reply.body["profile"]["about"], "hello");
}
