//! The /_sim control API: number behaviours, Meta-side changes, counters, faults, reset.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

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
async fn stats_count_v2_requests_by_route_template() {
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
    sim.api(Creds(ACCOUNT_A, "nope"), Method::GET, LIST, None)
        .await;
    sim.control(Method::GET, "/_sim/senders", None).await;

    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats.status, 200);
    let mut rows: Vec<(String, String, u64, u64)> = stats.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["route"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    let expected = [
        ("GET", "/v2/Channels/Senders", 200, 1),
        ("GET", "/v2/Channels/Senders", 401, 1),
        ("GET", "/v2/Channels/Senders/{Sid}", 200, 2),
        ("GET", "/v2/Channels/Senders/{Sid}", 404, 1),
        ("POST", "/v2/Channels/Senders", 202, 2),
    ]
    .map(|(m, r, s, c)| (m.to_string(), r.to_string(), s, c));
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
        json!({"rate_limit_per_second": 0}),
        json!({"error_rte": 0.5}),
        json!({"latency_ms": "slow"}),
    ] {
        let reply = sim
            .control(Method::PUT, "/_sim/faults", Some(body.clone()))
            .await;
        assert_eq!(reply.status, 400, "{body} → {}", reply.body);
    }
    let current = sim.control(Method::GET, "/_sim/faults", None).await;
    assert_eq!(
        current.body,
        json!({"error_rate": null, "latency_ms": null, "rate_limit_per_second": null})
    );
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
        json!({"requests": []})
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
    assert_eq!(patched.body["codes_sent"], 1);
    let code = sim.otp(&sid).await.expect("a code was sent");
    let reply = sim
        .update(&sid, json!({"configuration": {"verification_code": code}}))
        .await;
    assert_eq!(reply.body["status"], "VERIFYING");
    sim.wait_for(&sid, "ONLINE").await;
}
