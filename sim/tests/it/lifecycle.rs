//! Every path of the sender lifecycle, driven over HTTP.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use twilio_sim::SimConfig;

use crate::support::wait::Wait;
use crate::support::*;

async fn control_sender(sim: &TestSim, sid: &str) -> Value {
    let reply = sim
        .control(Method::GET, &format!("/_sim/senders/{sid}"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// Submits a code, asserting the 202 VERIFYING every code submission gets while pending.
async fn submit(sim: &TestSim, sid: &str, code: &str) {
    let reply = sim
        .update(sid, json!({"configuration": {"verification_code": code}}))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["status"], "VERIFYING", "{}", reply.body);
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
    let view = control_sender(&sim, &sid).await;
    assert_eq!(
        (&view["codes_sent"], &view["create_requests"]),
        (&json!(0), &json!(1)),
        "{view}"
    );
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
    let view = control_sender(&sim, &sid).await;
    assert_eq!(
        (
            &view["create_requests"],
            &view["codes_sent"],
            &view["wrong_codes"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "exactly one create, one code: {view}"
    );
}

#[tokio::test]
async fn a_wrong_code_reads_verifying_then_falls_back_to_pending() {
    let sim = TestSim::start().await;
    let (sid, code) = sim.pending_with_code("+15005550001").await;
    submit(&sim, &sid, &wrong_code(&code)).await;
    assert_eq!(control_sender(&sim, &sid).await["wrong_codes"], 1);
    let pending = sim.wait_for(&sid, "PENDING_VERIFICATION").await;
    assert_eq!(pending["properties"]["quality_rating"], Value::Null);

    // The right code still works afterwards.
    submit(&sim, &sid, &code).await;
    sim.wait_for(&sid, "ONLINE").await;
    assert_eq!(control_sender(&sim, &sid).await["wrong_codes"], 1);
}

#[tokio::test]
async fn wrong_codes_are_never_refused() {
    let sim = TestSim::start().await;
    let (sid, code) = sim.pending_with_code("+15005550001").await;
    let attempts = 8;
    for _ in 0..attempts {
        submit(&sim, &sid, &wrong_code(&code)).await;
        sim.wait_for(&sid, "PENDING_VERIFICATION").await;
    }
    let view = control_sender(&sim, &sid).await;
    assert_eq!(view["wrong_codes"], attempts, "{view}");
    assert_eq!(view["lockout_remaining_ms"], Value::Null, "{view}");
    // Neither the right code nor a new code request is refused after them.
    assert_eq!(sim.create_as(A, "+15005550001", "Acme").await.status, 202);
    let code = sim.otp(&sid).await.unwrap();
    submit(&sim, &sid, &code).await;
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
    let view = control_sender(&sim, &sid).await;
    assert_eq!(
        (&view["codes_sent"], &view["create_requests"]),
        (&json!(2), &json!(2)),
        "{view}"
    );

    // One in a million the new code equals the old one; then there is nothing to tell apart.
    if second != first {
        submit(&sim, &sid, &first).await;
        sim.wait_for(&sid, "PENDING_VERIFICATION").await;
        assert_eq!(
            control_sender(&sim, &sid).await["wrong_codes"],
            1,
            "the old code stopped working"
        );
    }
    submit(&sim, &sid, &second).await;
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

/// Long enough that a check right after the lockout starts sees it, on a busy machine too.
const LOCKOUT: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn the_sixth_code_request_gets_63114_until_the_lockout_lifts() {
    let sim = TestSim::start_with(SimConfig {
        code_lockout: LOCKOUT,
        ..config()
    })
    .await;
    let (sid, _) = sim.pending_with_code("+15005550001").await;
    for send in 2..=5 {
        let reply = sim.create_as(A, "+15005550001", "Acme").await;
        assert_eq!(reply.status, 202, "send {send}: {}", reply.body);
    }
    let view = control_sender(&sim, &sid).await;
    assert_eq!(
        (&view["codes_sent"], &view["create_requests"]),
        (&json!(5), &json!(5)),
        "{view}"
    );

    let locking = Instant::now();
    let refused = sim.create_as(A, "+15005550001", "Acme").await;
    refused.assert_error(400, 63114);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("Too many verification codes"),
        "{}",
        refused.body
    );
    let view = control_sender(&sim, &sid).await;
    assert_eq!(
        (&view["codes_sent"], &view["create_requests"]),
        (&json!(5), &json!(5)),
        "{view}"
    );
    assert_eq!(view["status"], "PENDING_VERIFICATION");
    let remaining = view["lockout_remaining_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("locked: {view}"));
    assert!(remaining <= LOCKOUT.as_millis() as u64, "{view}");

    // The last code sent still verifies a locked sender… but first, wait the lockout out:
    // refused requests do not extend it, and the first request after it sends a new code.
    let lifted = Wait::until("the lockout to lift")
        .within(LOCKOUT + DEADLINE)
        .every(STEP)
        .poll_ok(async || {
            let reply = sim.create_as(A, "+15005550001", "Acme").await;
            if reply.status == 202 {
                return Ok(reply);
            }
            reply.assert_error(400, 63114);
            Err(format!("{} {}", reply.status, reply.body))
        })
        .await;
    assert!(
        locking.elapsed() >= LOCKOUT,
        "lifted after {:?}, before the lockout of {LOCKOUT:?}",
        locking.elapsed()
    );
    assert_eq!(lifted.body["sid"], sid.as_str());
    let view = control_sender(&sim, &sid).await;
    assert_eq!(
        (&view["codes_sent"], &view["create_requests"]),
        (&json!(6), &json!(6)),
        "{view}"
    );
    assert_eq!(view["lockout_remaining_ms"], Value::Null, "{view}");
    // The count started again: four more sends are fine, the fifth after the lockout is not.
    for send in 2..=5 {
        let reply = sim.create_as(A, "+15005550001", "Acme").await;
        assert_eq!(
            reply.status, 202,
            "send {send} after the lockout: {}",
            reply.body
        );
    }
    sim.create_as(A, "+15005550001", "Acme")
        .await
        .assert_error(400, 63114);
}

#[tokio::test]
async fn a_locked_sender_still_verifies_with_the_last_code() {
    let sim = TestSim::start().await;
    let (sid, _) = sim.pending_with_code("+15005550001").await;
    for send in 2..=5 {
        let reply = sim.create_as(A, "+15005550001", "Acme").await;
        assert_eq!(reply.status, 202, "send {send}: {}", reply.body);
    }
    sim.create_as(A, "+15005550001", "Acme")
        .await
        .assert_error(400, 63114);
    // Code submissions are never refused with 63114.
    let code = sim.otp(&sid).await.unwrap();
    submit(&sim, &sid, &code).await;
    sim.wait_for(&sid, "ONLINE").await;
}

#[tokio::test]
async fn offline_after_registration_reads_offline_then_comes_online() {
    // Wide enough that polling sees OFFLINE on a busy machine too.
    let offline_steps = 20;
    let sim = TestSim::start_with(SimConfig {
        offline_steps,
        ..config()
    })
    .await;
    sim.set_behavior("+15005550001", "offline_after_registration")
        .await;
    let started = Instant::now();
    let sid = sim.create("+15005550001").await;
    let offline = sim.wait_for(&sid, "OFFLINE").await;
    assert_eq!(offline["offline_reasons"], Value::Null, "{offline}");
    assert_eq!(
        offline["properties"],
        json!({"quality_rating": null, "messaging_limit": null})
    );
    assert_eq!(sim.otp(&sid).await, None, "verified without a code");

    let online = sim.wait_for(&sid, "ONLINE").await;
    let registered_for = STEP * (1 + offline_steps);
    assert!(
        started.elapsed() >= registered_for,
        "ONLINE after {:?}, expected at least {registered_for:?}",
        started.elapsed()
    );
    assert_eq!(online["properties"]["quality_rating"], "HIGH");
    assert_eq!(control_sender(&sim, &sid).await["codes_sent"], 0);
}

#[tokio::test]
async fn refused_numbers_fail_the_create_and_store_nothing() {
    let sim = TestSim::start().await;
    for (number, behavior, code, words) in [
        (
            "+15005550001",
            "waba_full",
            63104,
            "Maximum number of phone numbers",
        ),
        ("+15005550002", "number_not_found", 63111, "not found"),
        ("+15005550003", "cannot_verify", 63113, "cannot be verified"),
        ("+15005550004", "code_not_received", 63116, "OTP"),
    ] {
        sim.set_behavior(number, behavior).await;
        let reply = sim.create_as(A, number, "Acme").await;
        reply.assert_error(400, code);
        let message = reply.body["message"].as_str().unwrap();
        assert!(
            message.contains(words) && message.contains(number),
            "{behavior}: {message}"
        );
    }
    let all = sim.control(Method::GET, "/_sim/senders", None).await;
    assert_eq!(all.body, json!([]), "nothing was stored");
    let listed = sim
        .api(
            A,
            Method::GET,
            "/v2/Channels/Senders?Channel=whatsapp",
            None,
        )
        .await;
    assert_eq!(listed.body["senders"], json!([]));
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

    // Null sections mean "no change" (and come back null); a null field inside one clears it.
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
    assert_eq!(
        (&reply.body["profile"], &reply.body["configuration"]),
        (&Value::Null, &Value::Null),
        "{}",
        reply.body
    );
    assert_eq!(sim.fetch(&sid).await["profile"]["about"], "We sell things");
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
