//! The /_sim control API: number behaviours, Meta-side changes, counters, faults, reset.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::wait::Wait;
use crate::support::*;

const LIST: &str = "/v2/Channels/Senders?Channel=whatsapp";

#[tokio::test]
async fn numbers_endpoint_validates_and_lists() {
    let sim = TestSim::start().await;
    let bad = sim
        .control(
            Method::POST,
            "/_sim/numbers",
            Some(json!({"phone_number": "+15005550001", "behavior": "teleport"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let message = bad.body["message"].as_str().unwrap();
    assert!(
        message.contains("teleport") && message.contains("auto_verify"),
        "{message}"
    );
    let bad = sim
        .control(
            Method::POST,
            "/_sim/numbers",
            Some(json!({"phone_number": "555", "behavior": "auto_verify"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let bad = sim
        .control(
            Method::POST,
            "/_sim/numbers",
            Some(json!({"behavior": "auto_verify"})),
        )
        .await;
    assert_eq!(bad.status, 400);

    let set = sim
        .control(
            Method::POST,
            "/_sim/numbers",
            Some(json!({"phone_number": "whatsapp:+15005550001", "behavior": "auto_verify"})),
        )
        .await;
    assert_eq!(set.status, 200);
    assert_eq!(
        set.body,
        json!({"phone_number": "+15005550001", "behavior": "auto_verify"})
    );
    let listed = sim.control(Method::GET, "/_sim/numbers", None).await;
    assert_eq!(
        listed.body,
        json!([{"phone_number": "+15005550001", "behavior": "auto_verify"}])
    );
}

#[tokio::test]
async fn patch_plays_metas_side() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    let sid = sim.create("+15005550001").await;
    sim.wait_for(&sid, "ONLINE").await;
    let path = format!("/_sim/senders/{sid}");

    let patched = sim
        .control(
            Method::PATCH,
            &path,
            Some(json!({"quality_rating": "LOW", "messaging_limit": "10K Customers/24hr"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let sender = sim.fetch(&sid).await;
    assert_eq!(sender["status"], "ONLINE");
    assert_eq!(
        sender["properties"],
        json!({"quality_rating": "LOW", "messaging_limit": "10K Customers/24hr"})
    );

    let patched = sim
        .control(
            Method::PATCH,
            &path,
            Some(json!({"status": "OFFLINE", "offline_reasons": [{"code": 63116, "message": "OTP not received"}]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let sender = sim.fetch(&sid).await;
    assert_eq!(sender["status"], "OFFLINE");
    assert_eq!(
        sender["offline_reasons"],
        json!([{"code": "63116", "message": "OTP not received", "more_info": "https://www.twilio.com/docs/errors/63116"}])
    );
    assert_eq!(
        sender["properties"]["quality_rating"], "LOW",
        "kept while offline"
    );

    let refused = sim
        .control(Method::PATCH, &path, Some(json!({"status": "ASLEEP"})))
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("ONLINE:UPDATING")
    );
    let refused = sim
        .control(Method::PATCH, &path, Some(json!({"qualty_rating": "LOW"})))
        .await;
    assert_eq!(refused.status, 400, "unknown fields are refused");
    assert_eq!(sim.fetch(&sid).await["status"], "OFFLINE");

    let back = sim
        .control(Method::PATCH, &path, Some(json!({"status": "ONLINE"})))
        .await;
    assert_eq!(back.status, 200);
    assert_eq!(sim.fetch(&sid).await["offline_reasons"], Value::Null);

    let missing = sim
        .control(
            Method::PATCH,
            "/_sim/senders/XE00000000000000000000000000000000",
            Some(json!({"status": "ONLINE"})),
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn patched_status_cancels_the_pending_step() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    let sid = sim.create("+15005550001").await;
    let patched = sim
        .control(
            Method::PATCH,
            &format!("/_sim/senders/{sid}"),
            Some(json!({"status": "TWILIO_REVIEW"})),
        )
        .await;
    assert_eq!(patched.status, 200);
    tokio::time::sleep(STEP * 4).await;
    assert_eq!(sim.fetch(&sid).await["status"], "TWILIO_REVIEW");
}

#[tokio::test]
async fn sim_senders_lists_every_account_without_codes() {
    let sim = TestSim::start().await;
    let a = sim.create("+15005550001").await;
    let b = sim.create_as(B, "+15005550002", "Other").await;
    assert_eq!(b.status, 202);
    sim.wait_for(&a, "PENDING_VERIFICATION").await;
    let code = sim.otp(&a).await.unwrap();

    let all = sim.control(Method::GET, "/_sim/senders", None).await;
    assert_eq!(all.status, 200);
    let all = all.body.as_array().unwrap().clone();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (
            all[0]["sid"].as_str().unwrap(),
            all[0]["account_sid"].as_str().unwrap()
        ),
        (a.as_str(), ACCOUNT_A)
    );
    assert_eq!(all[1]["account_sid"], ACCOUNT_B);
    assert_eq!(all[1]["sid"], b.body["sid"]);
    assert_eq!(all[0]["status"], "PENDING_VERIFICATION");
    let counters: Vec<&Value> = [
        "behavior",
        "create_requests",
        "codes_sent",
        "wrong_codes",
        "lockout_remaining_ms",
    ]
    .iter()
    .map(|key| &all[0][*key])
    .collect();
    assert_eq!(
        counters,
        [
            &json!("needs_code"),
            &json!(1),
            &json!(1),
            &json!(0),
            &Value::Null
        ],
        "{}",
        all[0]
    );
    assert!(
        !Value::Array(all).to_string().contains(&code),
        "the OTP is only at /otp"
    );
    let unknown = sim
        .control(
            Method::GET,
            "/_sim/senders/XE00000000000000000000000000000000/otp",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn the_arrival_of_a_code_submission_is_timestamped() {
    let sim = TestSim::start().await;
    let (sid, code) = sim.pending_with_code("+15005550001").await;
    let read = |body: &Value| body["last_code_received_ms"].clone();
    let path = format!("/_sim/senders/{sid}");
    assert_eq!(
        read(&sim.control(Method::GET, &path, None).await.body),
        Value::Null
    );

    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let before = unix_ms();
    let submitted = sim
        .update(&sid, json!({"configuration": {"verification_code": code}}))
        .await;
    assert_eq!(submitted.status, 202, "{}", submitted.body);
    let after = unix_ms();
    let at = read(&sim.control(Method::GET, &path, None).await.body);
    let at = at
        .as_u64()
        .unwrap_or_else(|| panic!("a Unix time in ms: {at}"));
    assert!(
        (before..=after).contains(&at),
        "{before} <= {at} <= {after}"
    );
}

/// A registration's start (the create's arrival) and end (the sender leaving CREATING,
/// PENDING_VERIFICATION and VERIFYING) are in Unix ms, so that a test can tell whether two
/// registrations overlapped.
#[tokio::test]
async fn a_registration_is_timestamped_from_its_create_to_its_end() {
    let sim = TestSim::start().await;
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    sim.set_behavior("+15005550001", "auto_verify").await;
    let before = unix_ms();
    let sid = sim.create("+15005550001").await;
    let after = unix_ms();
    let path = format!("/_sim/senders/{sid}");
    let creating = sim.control(Method::GET, &path, None).await.body;
    let created = creating["created_ms"].as_u64().expect("created_ms");
    // The two clocks are read apart, so allow a millisecond of rounding either side.
    assert!(
        (before.saturating_sub(1)..=after + 1).contains(&created),
        "{before} <= {created} <= {after}"
    );
    assert_eq!(creating["status"], "CREATING");
    assert_eq!(creating["left_onboarding_ms"], Value::Null, "{creating}");

    sim.wait_for(&sid, "ONLINE").await;
    let online = sim.control(Method::GET, &path, None).await.body;
    let left = online["left_onboarding_ms"]
        .as_u64()
        .expect("left_onboarding_ms");
    let step = STEP.as_millis() as u64;
    // ONLINE one step after the create, however much later it was read.
    assert!(
        (created + step - 1..=created + step + 1).contains(&left),
        "created {created}, left onboarding {left}: one step ({step} ms) apart"
    );
    assert_eq!(online["created_ms"], creating["created_ms"]);
}

#[tokio::test]
async fn stats_count_v2_requests_by_route_template_and_account() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    sim.create("+15005550002").await;
    sim.fetch(&sid).await;
    sim.fetch(&sid).await;
    sim.api(
        A,
        Method::GET,
        "/v2/Channels/Senders/XE00000000000000000000000000000000",
        None,
    )
    .await;
    sim.api(A, Method::GET, LIST, None).await;
    sim.api(B, Method::GET, LIST, None).await;
    sim.api(Creds(ACCOUNT_A, "nope"), Method::GET, LIST, None)
        .await;
    sim.control(Method::GET, "/_sim/senders", None).await;

    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats.status, 200);
    let rows = request_rows(&stats.body, "/");
    let expected = [
        ("GET", "/v2/Channels/Senders", 200, Some(ACCOUNT_A), 1),
        ("GET", "/v2/Channels/Senders", 200, Some(ACCOUNT_B), 1),
        ("GET", "/v2/Channels/Senders", 401, None, 1),
        ("GET", "/v2/Channels/Senders/{Sid}", 200, Some(ACCOUNT_A), 2),
        ("GET", "/v2/Channels/Senders/{Sid}", 404, Some(ACCOUNT_A), 1),
        ("POST", "/v2/Channels/Senders", 202, Some(ACCOUNT_A), 2),
    ]
    .map(|(m, r, s, a, c)| (m.to_string(), r.to_string(), s, a.map(str::to_string), c));
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn error_rate_one_fails_every_v2_request() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"error_rate": 1.0})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let reply = sim
            .api(A, Method::GET, &format!("/v2/Channels/Senders/{sid}"), None)
            .await;
        assert!(
            matches!((reply.status, reply.code()), (500, 20500) | (503, 20503)),
            "{} {}",
            reply.status,
            reply.body
        );
        seen.insert(reply.status);
    }
    assert_eq!(seen.len(), 2, "both 500 and 503 occur: {seen:?}");
    // Auth comes first, and the control API is never faulted.
    sim.api(Creds(ACCOUNT_A, "nope"), Method::GET, LIST, None)
        .await
        .assert_error(401, 20003);
    assert_eq!(
        sim.control(Method::GET, "/_sim/senders", None).await.status,
        200
    );

    assert_eq!(
        sim.control(Method::PUT, "/_sim/faults", Some(json!({})))
            .await
            .status,
        200
    );
    assert_eq!(sim.fetch(&sid).await["sid"], sid.as_str());
}

#[tokio::test]
async fn rate_limit_answers_429_per_account() {
    let sim = TestSim::start().await;
    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"rate_limit_per_second": 3})),
        )
        .await;
    assert_eq!(set.status, 200);
    let started = Instant::now();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let reply = sim.api(A, Method::GET, LIST, None).await;
        if reply.status == 429 {
            assert_eq!(reply.code(), 20429);
            retry_after = reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
        statuses.push(reply.status);
    }
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    } else {
        assert!(statuses.contains(&429), "{statuses:?}");
    }
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Another account has its own budget.
    assert_eq!(sim.api(B, Method::GET, LIST, None).await.status, 200);
    // And the window passes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(sim.api(A, Method::GET, LIST, None).await.status, 200);
}

#[tokio::test]
async fn latency_is_added_to_v2_requests() {
    let sim = TestSim::start().await;
    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"latency_ms": 300})),
        )
        .await;
    assert_eq!(set.status, 200);
    let started = Instant::now();
    assert_eq!(sim.api(A, Method::GET, LIST, None).await.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let current = sim.control(Method::GET, "/_sim/faults", None).await;
    assert_eq!(current.body["latency_ms"], 300);
}

#[tokio::test]
async fn faults_are_validated() {
    let sim = TestSim::start().await;
    for body in [
        json!({"error_rate": 1.5}),
        json!({"lost_answer_rate": 1.5}),
        json!({"lost_answer_rate": -0.5}),
        json!({"answer_delay_ms": -1}),
        json!({"rate_limit_per_second": 0}),
        json!({"error_rte": 0.5}),
        json!({"latency_ms": "slow"}),
        json!({"only": "POST"}),
        json!({"only": "GET /_sim/senders"}),
        json!({"echo_code": "loudly"}),
    ] {
        let reply = sim
            .control(Method::PUT, "/_sim/faults", Some(body.clone()))
            .await;
        assert_eq!(reply.status, 400, "{body} → {}", reply.body);
    }
    let current = sim.control(Method::GET, "/_sim/faults", None).await;
    assert_eq!(
        current.body,
        json!({
            "error_rate": null, "latency_ms": null, "rate_limit_per_second": null,
            "lost_answer_rate": null, "answer_delay_ms": null, "echo_code": null, "only": null
        })
    );
}

#[tokio::test]
async fn every_fault_can_be_set_at_once() {
    let sim = TestSim::start().await;
    let all = json!({
        "error_rate": 0.0, "latency_ms": 1, "rate_limit_per_second": 100,
        "lost_answer_rate": 0.0, "answer_delay_ms": 1, "echo_code": "text",
        "only": "GET /v2/Channels/Senders"
    });
    let set = sim
        .control(Method::PUT, "/_sim/faults", Some(all.clone()))
        .await;
    assert_eq!((set.status, &set.body), (200, &all));
    assert_eq!(
        sim.control(Method::GET, "/_sim/faults", None).await.body,
        all
    );
    assert_eq!(sim.api(A, Method::GET, LIST, None).await.status, 200);
}

#[tokio::test]
async fn reset_forgets_all_but_accounts() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    let sid = sim.create("+15005550001").await;
    sim.control(Method::PUT, "/_sim/faults", Some(json!({"latency_ms": 5})))
        .await;

    let reset = sim.control(Method::POST, "/_sim/reset", None).await;
    assert_eq!(reset.status, 204);
    assert_eq!(
        sim.control(Method::GET, "/_sim/senders", None).await.body,
        json!([])
    );
    assert_eq!(
        sim.control(Method::GET, "/_sim/numbers", None).await.body,
        json!([])
    );
    assert_eq!(
        sim.control(Method::GET, "/_sim/stats", None).await.body,
        json!({
            "requests": [],
            "lost_answers": 0,
            "lost_answers_by_route": [],
            "create_attempts": {},
        })
    );
    assert_eq!(
        sim.control(Method::GET, "/_sim/faults", None).await.body["latency_ms"],
        Value::Null
    );
    sim.api(A, Method::GET, &format!("/v2/Channels/Senders/{sid}"), None)
        .await
        .assert_error(404, 20404);

    // Accounts still work, and the number's behaviour is back to the default.
    let again = sim.create("+15005550001").await;
    sim.wait_for(&again, "PENDING_VERIFICATION").await;
}

#[tokio::test]
async fn forced_reverification_sends_a_fresh_code() {
    let sim = TestSim::start().await;
    let (sid, first) = sim.pending_with_code("+15005550001").await;
    let verified = sim
        .update(&sid, json!({"configuration": {"verification_code": first}}))
        .await;
    assert_eq!(verified.body["status"], "VERIFYING");
    sim.wait_for(&sid, "ONLINE").await;

    let patched = sim
        .control(
            Method::PATCH,
            &format!("/_sim/senders/{sid}"),
            Some(json!({"status": "PENDING_VERIFICATION"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["codes_sent"], 2,
        "one more code: {}",
        patched.body
    );
    assert_eq!(patched.body["create_requests"], 1, "{}", patched.body);
    let code = sim.otp(&sid).await.expect("a code was sent");
    let reply = sim
        .update(&sid, json!({"configuration": {"verification_code": code}}))
        .await;
    assert_eq!(reply.body["status"], "VERIFYING");
    sim.wait_for(&sid, "ONLINE").await;
}

/// The create body `TestSim::create` sends.
fn create_body(number: &str) -> Value {
    json!({"sender_id": format!("whatsapp:{number}"), "profile": {"name": "Acme"}})
}

/// Sends a request with plain reqwest and asserts its answer never arrives whole: either no
/// response at all, or (should the head slip through) a body that cannot be read.
async fn assert_answer_lost(request: reqwest::RequestBuilder) {
    match request.send().await {
        Err(_) => {}
        Ok(response) => {
            let status = response.status();
            let body = response.bytes().await;
            assert!(body.is_err(), "the {status} answer arrived whole: {body:?}");
        }
    }
}

async fn lost_answers(sim: &TestSim) -> u64 {
    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    stats.body["lost_answers"]
        .as_u64()
        .unwrap_or_else(|| panic!("lost_answers is a number: {}", stats.body))
}

#[tokio::test]
async fn a_lost_answer_applies_the_request_but_the_client_gets_an_error() {
    let sim = TestSim::start().await;
    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"lost_answer_rate": 1.0})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);

    let create = sim
        .http
        .post(format!("{}/v2/Channels/Senders", sim.base))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A))
        .json(&create_body("+15005550001"));
    assert_answer_lost(create).await;
    // The control API is never faulted, and it shows the create went through, once.
    let all = sim.control(Method::GET, "/_sim/senders", None).await;
    let all = all.body.as_array().expect("an array").clone();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["sender_id"], "whatsapp:+15005550001");
    assert_eq!(all[0]["create_requests"], 1);
    let sid = all[0]["sid"].as_str().unwrap().to_string();

    // A body-less 204 is lost as well, and the delete happened.
    let delete = sim
        .http
        .delete(format!("{}/v2/Channels/Senders/{sid}", sim.base))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A));
    assert_answer_lost(delete).await;
    assert_eq!(
        sim.control(Method::GET, "/_sim/senders", None).await.body,
        json!([])
    );

    // Counted apart, and by the status that was lost.
    assert_eq!(lost_answers(&sim).await, 2);
    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    let rows = stats.body["requests"].as_array().unwrap();
    for (method, route, status) in [
        ("POST", "/v2/Channels/Senders", 202),
        ("DELETE", "/v2/Channels/Senders/{Sid}", 204),
    ] {
        assert!(
            rows.iter().any(|r| r["method"] == method
                && r["route"] == route
                && r["status"] == status
                && r["count"] == 1),
            "{method} {route} {status} missing in {rows:?}"
        );
    }

    // Answers arrive again once the fault is off.
    sim.control(Method::PUT, "/_sim/faults", Some(json!({})))
        .await;
    sim.create("+15005550002").await;
    assert_eq!(lost_answers(&sim).await, 2);
}

#[tokio::test]
async fn refused_and_unauthenticated_requests_are_answered_but_processed_ones_are_lost() {
    let sim = TestSim::start().await;
    sim.control(
        Method::PUT,
        "/_sim/faults",
        Some(json!({"lost_answer_rate": 1.0, "rate_limit_per_second": 1})),
    )
    .await;
    // Bad credentials: not processed, answered.
    sim.api(Creds(ACCOUNT_A, "nope"), Method::GET, LIST, None)
        .await
        .assert_error(401, 20003);
    // The first request is processed (and lost), the second is rate limited (and answered).
    assert_answer_lost(
        sim.http
            .get(format!("{}{LIST}", sim.base))
            .basic_auth(ACCOUNT_A, Some(TOKEN_A)),
    )
    .await;
    let started = Instant::now();
    let limited = sim.api(A, Method::GET, LIST, None).await;
    if started.elapsed() < Duration::from_millis(900) {
        limited.assert_error(429, 20429);
        assert_eq!(lost_answers(&sim).await, 1);
    }
}

#[tokio::test]
async fn answer_delay_holds_the_answer_after_the_change_is_made() {
    let sim = TestSim::start().await;
    let delay = Duration::from_millis(1500);
    sim.control(
        Method::PUT,
        "/_sim/faults",
        Some(json!({"answer_delay_ms": delay.as_millis() as u64})),
    )
    .await;
    let started = Instant::now();
    let create = tokio::spawn(
        sim.http
            .post(format!("{}/v2/Channels/Senders", sim.base))
            .basic_auth(ACCOUNT_A, Some(TOKEN_A))
            .json(&create_body("+15005550001"))
            .send(),
    );
    // The sender exists while its answer is still held back.
    Wait::until("the create to be applied")
        .within(DEADLINE)
        .every(STEP / 5)
        .poll(
            async || sim.control(Method::GET, "/_sim/senders", None).await,
            |all| all.body.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    assert!(
        !create.is_finished() || started.elapsed() >= delay,
        "answered before the delay: {:?}",
        started.elapsed()
    );
    let answer = create
        .await
        .unwrap()
        .expect("the answer arrives in the end");
    assert_eq!(answer.status().as_u16(), 202);
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}, before the delay of {delay:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn faults_limited_to_one_operation_leave_the_others_alone() {
    let sim = TestSim::start().await;
    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"error_rate": 1.0, "only": "POST /v2/Channels/Senders"})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    for _ in 0..5 {
        assert_eq!(sim.api(A, Method::GET, LIST, None).await.status, 200);
    }
    let create = sim
        .api(A, Method::POST, LIST, Some(create_body("+15005550001")))
        .await;
    assert!(
        [500, 503].contains(&create.status),
        "creates fail: {} {}",
        create.status,
        create.body
    );
    let all = sim.control(Method::GET, "/_sim/senders", None).await;
    assert_eq!(all.body, json!([]), "a faulted create changes nothing");
}

#[tokio::test]
async fn echo_code_answers_a_code_submission_with_the_code_quoted() {
    let sim = TestSim::start().await;
    let (sid, code) = sim.pending_with_code("+15005550001").await;
    let state = format!("/_sim/senders/{sid}");
    let set = |echo: &str| {
        sim.control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"echo_code": echo})),
        )
    };
    assert_eq!(set("rejected").await.status, 200);

    // Refused with the code in Twilio's words, and not handled: Meta never saw it.
    let wrong = wrong_code(&code);
    let rejected = sim
        .update(&sid, json!({"configuration": {"verification_code": wrong}}))
        .await;
    rejected.assert_error(400, 20001);
    let message = rejected.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(&wrong), "{message}");
    let held = sim.control(Method::GET, &state, None).await.body;
    assert_eq!(held["last_code_received_ms"], Value::Null, "{held}");
    assert_eq!(held["status"], "PENDING_VERIFICATION");
    // Requests without a code are answered as usual.
    let webhook = sim
        .update(
            &sid,
            json!({"webhook": {"callback_url": "https://hooks.example/wa"}}),
        )
        .await;
    assert_eq!(webhook.status, 202, "{}", webhook.body);

    // Handled, then answered with text that quotes the code.
    assert_eq!(set("text").await.status, 200);
    let answer = sim
        .http
        .post(format!("{}/v2/Channels/Senders/{sid}", sim.base))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A))
        .json(&json!({"configuration": {"verification_code": code}}))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.headers()["content-type"], "text/plain");
    let text = answer.text().await.unwrap();
    assert!(
        text.contains(&format!("verification_code={code}")),
        "{text}"
    );
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    sim.wait_for(&sid, "ONLINE").await;
}
