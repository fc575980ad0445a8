//! The Monitor API's Error Log (`/v1/Alerts`): what each asynchronous failure logs, the list's
//! shape, filters and paging, and the control API that logs alerts. Every Alerts answer is
//! checked against Twilio's Monitor document (`tests/openapi/twilio_monitor_v1.json`).

use std::time::{Duration, Instant};

use crate::support::openapi;
use crate::support::prism;
use crate::support::*;
use regex::Regex;
use reqwest::Method;
use serde_json::{Value, json};

const ALERTS: &str = "/v1/Alerts";

/// The route template of a `/v1/Alerts…` path.
fn alert_route(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    match path.strip_prefix(ALERTS) {
        Some("") => "/v1/Alerts",
        Some(rest) if rest.starts_with('/') && !rest[1..].contains('/') => "/v1/Alerts/{Sid}",
        _ => panic!("not an Alerts path: {path}"),
    }
}

/// What the Monitor schema writes as `format: date-time`, in the form its examples use.
fn assert_iso_second(field: &str, value: &Value, alert: &Value) {
    let pattern = Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$").unwrap();
    assert!(
        value.as_str().is_some_and(|v| pattern.is_match(v)),
        "{field} is not YYYY-MM-DDThh:mm:ssZ: {alert}"
    );
}

/// Checks the formats the JSON Schema check leaves to annotation (date-time, uri).
fn assert_alert_formats(sim: &TestSim, alert: &Value) {
    for field in ["date_created", "date_generated", "date_updated"] {
        assert_iso_second(field, &alert[field], alert);
    }
    let sid = alert["sid"].as_str().expect("sid");
    assert_eq!(
        alert["url"],
        format!("{}/v1/Alerts/{sid}", sim.base),
        "{alert}"
    );
    assert_eq!(
        alert["more_info"],
        format!(
            "https://www.twilio.com/docs/errors/{}",
            alert["error_code"]
                .as_str()
                .expect("error_code is a string")
        ),
        "{alert}"
    );
}

/// `GET` on the Monitor API; 2xx bodies are checked against the Monitor document, errors
/// against Twilio's error shape.
async fn monitor(sim: &TestSim, creds: Option<Creds>, path: &str) -> Reply {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", sim.base)
    };
    let local = url.strip_prefix(&sim.base).unwrap_or(&url).to_string();
    let mut request = sim.http.get(&url);
    if let Some(Creds(user, password)) = creds {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.expect("request reaches the simulator");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value = response.json().await.expect("a JSON body");
    assert!(
        headers.contains_key("twilio-request-id"),
        "{status} without a Twilio-Request-Id"
    );
    let route = alert_route(&local);
    if (200..300).contains(&status) {
        if let Err(violations) =
            openapi::validate_response_in(openapi::monitor_document(), route, "get", status, &body)
        {
            panic!(
                "GET {route} {status} does not match the Monitor document:\n  {}\nbody: {body:#}",
                violations.join("\n  ")
            );
        }
        match route {
            "/v1/Alerts" => {
                for alert in body["alerts"].as_array().expect("alerts") {
                    assert_alert_formats(sim, alert);
                }
            }
            _ => assert_alert_formats(sim, &body),
        }
    } else {
        assert_twilio_error(status, &body);
        assert!(
            !openapi::declares_in(openapi::monitor_document(), route, "get", status),
            "an error status the document declares would need its schema checked: {status}"
        );
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// Account A's alert list at `query`, asserting 200.
async fn alerts(sim: &TestSim, query: &str) -> Vec<Value> {
    let reply = monitor(sim, Some(A), &format!("{ALERTS}{query}")).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    reply.body["alerts"].as_array().unwrap().clone()
}

/// Account A's alerts about one sender, polled until there are `count` of them.
async fn wait_for_alerts(sim: &TestSim, sid: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let about: Vec<Value> = alerts(sim, "?PageSize=1000")
            .await
            .into_iter()
            .filter(|a| a["resource_sid"] == sid)
            .collect();
        if about.len() >= count {
            assert_eq!(about.len(), count, "more alerts than expected: {about:?}");
            return about;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{sid} never got {count} alerts; last: {about:?}"
        );
        tokio::time::sleep(STEP / 5).await;
    }
}

/// `POST /_sim/alerts`, asserting 201.
async fn log_alert(sim: &TestSim, body: Value) -> Value {
    let reply = sim
        .control(Method::POST, "/_sim/alerts", Some(body.clone()))
        .await;
    assert_eq!(reply.status, 201, "{body} → {}", reply.body);
    reply.body
}

fn sids(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a["sid"].as_str().unwrap().to_string())
        .collect()
}

/// What a behaviour should end in: the status, the offline reason codes, the alert's code.
struct Expected {
    behavior: &'static str,
    status: &'static str,
    reasons: &'static [&'static str],
    alert: &'static str,
}

const ASYNC_FAILURES: &[Expected] = &[
    Expected {
        behavior: "already_registered",
        status: "OFFLINE",
        reasons: &["63110"],
        alert: "63110",
    },
    Expected {
        behavior: "waba_full_async",
        status: "OFFLINE",
        reasons: &["63104"],
        alert: "63104",
    },
    Expected {
        behavior: "number_not_found_async",
        status: "OFFLINE",
        reasons: &["63111"],
        alert: "63111",
    },
    Expected {
        behavior: "cannot_verify_async",
        status: "OFFLINE",
        reasons: &["63113"],
        alert: "63113",
    },
    Expected {
        behavior: "code_not_received_async",
        status: "OFFLINE",
        reasons: &["63116"],
        alert: "63116",
    },
    Expected {
        behavior: "waba_full_alert_only",
        status: "OFFLINE",
        reasons: &[],
        alert: "63104",
    },
    Expected {
        behavior: "number_not_found_alert_only",
        status: "OFFLINE",
        reasons: &[],
        alert: "63111",
    },
    Expected {
        behavior: "cannot_verify_alert_only",
        status: "OFFLINE",
        reasons: &[],
        alert: "63113",
    },
    Expected {
        behavior: "code_not_received_alert_only",
        status: "OFFLINE",
        reasons: &[],
        alert: "63116",
    },
    Expected {
        behavior: "waba_full_stays_creating",
        status: "CREATING",
        reasons: &[],
        alert: "63104",
    },
    Expected {
        behavior: "number_not_found_stays_creating",
        status: "CREATING",
        reasons: &[],
        alert: "63111",
    },
    Expected {
        behavior: "cannot_verify_stays_creating",
        status: "CREATING",
        reasons: &[],
        alert: "63113",
    },
    Expected {
        behavior: "code_not_received_stays_creating",
        status: "CREATING",
        reasons: &[],
        alert: "63116",
    },
    Expected {
        behavior: "display_name_rejected",
        status: "OFFLINE",
        reasons: &["63100"],
        alert: "63100",
    },
    Expected {
        behavior: "invitation_not_accepted",
        status: "OFFLINE",
        reasons: &["63020"],
        alert: "63020",
    },
];

#[tokio::test]
async fn every_asynchronous_failure_is_accepted_then_shows_on_the_sender_and_logs_one_alert() {
    let sim = TestSim::start().await;
    let mut created = Vec::new();
    for (i, expected) in ASYNC_FAILURES.iter().enumerate() {
        let number = format!("+1500555{:04}", 100 + i);
        sim.set_behavior(&number, expected.behavior).await;
        // `create` asserts the 202 CREATING.
        created.push((sim.create(&number).await, number, expected));
    }
    for (sid, number, expected) in &created {
        let behavior = expected.behavior;
        let logged = wait_for_alerts(&sim, sid, 1).await;
        let alert = &logged[0];
        assert_eq!(
            (
                &alert["error_code"],
                &alert["account_sid"],
                &alert["log_level"]
            ),
            (&json!(expected.alert), &json!(ACCOUNT_A), &json!("error")),
            "{behavior}: {alert}"
        );
        assert_eq!(
            (&alert["request_method"], &alert["request_url"]),
            (
                &json!("POST"),
                &json!(format!("{}/v2/Channels/Senders", sim.base))
            ),
            "{behavior}: {alert}"
        );
        let text = alert["alert_text"].as_str().unwrap();
        let encoded_number = number.replace('+', "%2B");
        assert!(
            text.starts_with("Msg=")
                && text.ends_with(&format!("sender_id=whatsapp%3A{encoded_number}")),
            "{behavior}: alert_text is URL-encoded pairs: {text}"
        );

        let sender = sim.fetch(sid).await;
        assert_eq!(sender["status"], expected.status, "{behavior}: {sender}");
        let reasons: Vec<&str> = sender["offline_reasons"]
            .as_array()
            .map(|r| r.iter().map(|r| r["code"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(reasons, expected.reasons, "{behavior}: {sender}");
        if expected.reasons.is_empty() {
            assert_eq!(
                sender["offline_reasons"],
                Value::Null,
                "{behavior}: {sender}"
            );
        } else {
            assert_eq!(
                sender["offline_reasons"][0]["more_info"], alert["more_info"],
                "{behavior}"
            );
        }
        assert_eq!(
            sender["properties"],
            json!({"quality_rating": null, "messaging_limit": null}),
            "{behavior}"
        );
        assert_eq!(sim.otp(sid).await, None, "{behavior}: no code is sent");
    }

    // Some time later the senders have not moved, and nothing more was logged.
    tokio::time::sleep(STEP * 4).await;
    for (sid, _, expected) in &created {
        assert_eq!(
            sim.fetch(sid).await["status"],
            expected.status,
            "{}",
            expected.behavior
        );
        wait_for_alerts(&sim, sid, 1).await;
    }
}

#[tokio::test]
async fn the_display_name_alert_and_the_invitation_reason_say_what_the_user_must_do() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "display_name_rejected")
        .await;
    sim.set_behavior("+15005550002", "invitation_not_accepted")
        .await;
    let rejected = sim.create("+15005550001").await;
    let invited = sim.create("+15005550002").await;

    let alert = &wait_for_alerts(&sim, &rejected, 1).await[0];
    let text = alert["alert_text"].as_str().unwrap();
    assert!(text.contains("display+name"), "{text}");
    let offline = sim.wait_for(&rejected, "OFFLINE").await;
    let message = offline["offline_reasons"][0]["message"].as_str().unwrap();
    assert!(message.contains("display name"), "{offline}");

    let offline = sim.wait_for(&invited, "OFFLINE").await;
    let message = offline["offline_reasons"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("invitation") && message.contains("Meta Business Manager"),
        "{offline}"
    );
    wait_for_alerts(&sim, &invited, 1).await;
}

#[tokio::test]
async fn synchronous_refusals_still_answer_400_and_log_nothing() {
    let sim = TestSim::start().await;
    for (number, behavior, code) in [
        ("+15005550001", "waba_full", 63104),
        ("+15005550002", "number_not_found", 63111),
        ("+15005550003", "cannot_verify", 63113),
        ("+15005550004", "code_not_received", 63116),
    ] {
        sim.set_behavior(number, behavior).await;
        sim.create_as(A, number, "Acme")
            .await
            .assert_error(400, code);
    }
    let online = sim.create("+15005550005").await;
    sim.wait_for(&online, "PENDING_VERIFICATION").await;
    assert_eq!(alerts(&sim, "").await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_refused_code_request_logs_63114_about_the_sender() {
    let sim = TestSim::start().await;
    let (sid, _) = sim.pending_with_code("+15005550001").await;
    // Codes are resent until Twilio refuses one more (its sixth request).
    let refused = wait::Wait::until("a code request to be refused")
        .within(DEADLINE)
        .every(Duration::ZERO)
        .poll(
            async || sim.create_as(A, "+15005550001", "Acme").await,
            |reply| reply.status != 202,
        )
        .await;
    refused.assert_error(400, 63114);
    sim.create_as(A, "+15005550001", "Acme")
        .await
        .assert_error(400, 63114);
    let logged = wait_for_alerts(&sim, &sid, 2).await;
    for alert in &logged {
        assert_eq!(alert["error_code"], "63114", "{alert}");
    }
}

#[tokio::test]
async fn the_list_is_newest_first_and_pages_through_its_meta_urls() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let other = sim.create_as(B, "+15005550002", "Other").await;
    let other = other.body["sid"].as_str().unwrap().to_string();
    let mut logged = Vec::new();
    for code in ["63100", "63104", "63110", "63111", "63113"] {
        logged.push(log_alert(&sim, json!({"resource_sid": sid, "error_code": code})).await);
        // Another account's alerts must not show up or shift pages.
        log_alert(&sim, json!({"resource_sid": other, "error_code": code})).await;
    }
    let newest_first: Vec<String> = sids(&logged).into_iter().rev().collect();

    let mut url = format!("{ALERTS}?PageSize=2");
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let reply = monitor(&sim, Some(A), &url).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let meta = &reply.body["meta"];
        assert_eq!(
            (&meta["page"], &meta["page_size"], &meta["key"]),
            (&json!(pages.len()), &json!(2), &json!("alerts")),
            "{meta}"
        );
        assert_eq!(
            meta["first_page_url"],
            format!("{}{ALERTS}?PageSize=2&Page=0", sim.base),
            "{meta}"
        );
        assert_eq!(
            meta["previous_page_url"].is_null(),
            pages.is_empty(),
            "{meta}"
        );
        let page = reply.body["alerts"].as_array().unwrap();
        seen.extend(sids(page));
        pages.push(page.len());
        match meta["next_page_url"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!(
                        "{}{ALERTS}?PageSize=2&Page={}&PageToken=",
                        sim.base,
                        pages.len()
                    )),
                    "{next}"
                );
                url = next.to_string();
            }
            None => break,
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(seen, newest_first, "every alert once, newest first");

    // The last page's previous_page_url leads back to the middle page.
    let last = monitor(&sim, Some(A), &url).await;
    assert_eq!(
        last.body["meta"]["url"],
        url.as_str(),
        "url names the page itself"
    );
    let previous = last.body["meta"]["previous_page_url"]
        .as_str()
        .expect("a previous page")
        .to_string();
    let middle = monitor(&sim, Some(A), &previous).await;
    assert_eq!(
        sids(middle.body["alerts"].as_array().unwrap()),
        newest_first[2..4],
        "{}",
        middle.body
    );
    // A new alert does not shift pages already handed out.
    log_alert(&sim, json!({"resource_sid": sid, "error_code": "63116"})).await;
    let again = monitor(&sim, Some(A), &url).await;
    assert_eq!(
        sids(again.body["alerts"].as_array().unwrap()),
        newest_first[4..]
    );

    // PageSize: 50 by default, 1 to 1000.
    let all = monitor(&sim, Some(A), ALERTS).await;
    assert_eq!(all.body["meta"]["page_size"], 50);
    assert_eq!(all.body["meta"]["next_page_url"], Value::Null);
    assert_eq!(all.body["alerts"].as_array().unwrap().len(), 6);
    assert_eq!(alerts(&sim, "?PageSize=1000").await.len(), 6);
    for bad in [
        "?PageSize=0",
        "?PageSize=1001",
        "?PageSize=x",
        "?Page=-1",
        "?PageToken=nope",
        "?PageToken=PT0000000000000000",
    ] {
        monitor(&sim, Some(A), &format!("{ALERTS}{bad}"))
            .await
            .assert_error(400, 20001);
    }
}

#[tokio::test]
async fn start_and_end_dates_are_inclusive_to_the_second() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let first = log_alert(&sim, json!({"resource_sid": sid, "error_code": "63110"})).await;
    // Into the next second, so that the two alerts have different times.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = log_alert(&sim, json!({"resource_sid": sid, "error_code": "63111"})).await;
    let (t1, t2) = (
        first["date_created"].as_str().unwrap(),
        second["date_created"].as_str().unwrap(),
    );
    assert!(t1 < t2, "{t1} then {t2}");
    let (a, b) = (
        first["sid"].as_str().unwrap().to_string(),
        second["sid"].as_str().unwrap().to_string(),
    );

    for (query, expected) in [
        (format!("?StartDate={t1}"), vec![b.clone(), a.clone()]),
        (format!("?StartDate={t2}"), vec![b.clone()]),
        (format!("?EndDate={t1}"), vec![a.clone()]),
        (format!("?EndDate={t2}"), vec![b.clone(), a.clone()]),
        (format!("?StartDate={t1}&EndDate={t1}"), vec![a.clone()]),
        (format!("?StartDate={t2}&EndDate={t1}"), vec![]),
        // A date alone is midnight GMT of that day.
        (
            format!("?StartDate={}", &t1[..10]),
            vec![b.clone(), a.clone()],
        ),
    ] {
        assert_eq!(sids(&alerts(&sim, &query).await), expected, "{query}");
    }

    // A reader that saw `first` asks from that second on: an alert logged in the same second
    // after its read is not missed.
    let same_second = log_alert(&sim, json!({"resource_sid": sid, "error_code": "63113"})).await;
    let from_last_pass = sids(&alerts(&sim, &format!("?StartDate={t2}")).await);
    assert!(
        from_last_pass.contains(&same_second["sid"].as_str().unwrap().to_string()),
        "{from_last_pass:?}"
    );

    // The page URLs carry the dates written out in full.
    let reply = monitor(
        &sim,
        Some(A),
        &format!("{ALERTS}?StartDate={}&PageSize=1", &t1[..10]),
    )
    .await;
    let next = reply.body["meta"]["next_page_url"].as_str().unwrap();
    assert!(
        next.contains(&format!(
            "StartDate={}T00:00:00Z&PageSize=1&Page=1&PageToken=",
            &t1[..10]
        )),
        "{next}"
    );

    for bad in [
        "StartDate=yesterday",
        "StartDate=2016-01-01T00:00:00",
        "EndDate=2016-01-01T00:00:00.000Z",
        "EndDate=2016-01-01T00:00:00%2B00:00",
        "StartDate=2016-02-30",
    ] {
        let reply = monitor(&sim, Some(A), &format!("{ALERTS}?{bad}")).await;
        reply.assert_error(400, 20001);
        let name = bad.split('=').next().unwrap();
        assert!(
            reply.body["message"].as_str().unwrap().contains(name),
            "{bad}: {}",
            reply.body
        );
    }
    // "Queries for alerts older than 30 days are not supported."
    for old in ["StartDate=2016-01-01", "EndDate=2016-01-01T00:00:00Z"] {
        let reply = monitor(&sim, Some(A), &format!("{ALERTS}?{old}")).await;
        reply.assert_error(400, 20001);
        assert!(
            reply.body["message"].as_str().unwrap().contains("30 days"),
            "{old}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn log_level_filters_the_list() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let mut by_level = Vec::new();
    for level in ["error", "warning", "notice", "debug"] {
        let alert = log_alert(
            &sim,
            json!({"resource_sid": sid, "error_code": 63100, "log_level": level}),
        )
        .await;
        assert_eq!(alert["log_level"], level, "{alert}");
        by_level.push((level, alert["sid"].as_str().unwrap().to_string()));
    }
    for (level, sid) in &by_level {
        assert_eq!(
            sids(&alerts(&sim, &format!("?LogLevel={level}")).await),
            std::slice::from_ref(sid),
            "{level}"
        );
    }
    assert_eq!(alerts(&sim, "").await.len(), 4);
    for bad in ["ERROR", "fatal", "log_level", ""] {
        monitor(&sim, Some(A), &format!("{ALERTS}?LogLevel={bad}"))
            .await
            .assert_error(400, 20001);
    }
}

#[tokio::test]
async fn one_alert_is_fetched_by_sid_and_other_accounts_get_404() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let logged = log_alert(
        &sim,
        json!({"resource_sid": sid, "error_code": "63113", "alert_text": "Msg=Custom&x=1"}),
    )
    .await;
    let alert_sid = logged["sid"].as_str().unwrap();
    assert!(
        Regex::new("^NO[0-9a-f]{32}$").unwrap().is_match(alert_sid),
        "{alert_sid}"
    );
    let fetched = monitor(&sim, Some(A), &format!("{ALERTS}/{alert_sid}")).await;
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(
        fetched.body, logged,
        "the control API answers what a fetch shows"
    );
    assert_eq!(
        fetched.body["alert_text"], "Msg=Custom&x=1",
        "given text kept as is"
    );
    for field in [
        "request_variables",
        "request_headers",
        "response_body",
        "response_headers",
        "service_sid",
    ] {
        assert_eq!(
            fetched.body[field],
            Value::Null,
            "{field}: {}",
            fetched.body
        );
    }
    // The list shows the list shape: no request or response details.
    let listed = &alerts(&sim, "").await[0];
    assert!(listed.get("request_variables").is_none(), "{listed}");
    assert_eq!(listed["sid"], alert_sid);

    // Via an API key too; another account and unknown SIDs get 404.
    assert_eq!(
        monitor(&sim, Some(A_KEY), &format!("{ALERTS}/{alert_sid}"))
            .await
            .status,
        200
    );
    monitor(&sim, Some(B), &format!("{ALERTS}/{alert_sid}"))
        .await
        .assert_error(404, 20404);
    monitor(
        &sim,
        Some(A),
        &format!("{ALERTS}/NO00000000000000000000000000000000"),
    )
    .await
    .assert_error(404, 20404);
    monitor(&sim, Some(A), &format!("{ALERTS}/nonsense"))
        .await
        .assert_error(404, 20404);
    assert_eq!(
        monitor(&sim, Some(B), ALERTS).await.body["alerts"],
        json!([])
    );
}

#[tokio::test]
async fn the_control_api_validates_alert_bodies() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    for body in [
        json!({"error_code": "63110"}),
        json!({"resource_sid": sid}),
        json!({"resource_sid": sid, "error_code": "abc"}),
        json!({"resource_sid": sid, "error_code": ""}),
        json!({"resource_sid": sid, "error_code": true}),
        json!({"resource_sid": sid, "error_code": "63110", "log_level": "fatal"}),
        json!({"resource_sid": sid, "error_code": "63110", "colour": "red"}),
        json!(["63110"]),
    ] {
        let reply = sim
            .control(Method::POST, "/_sim/alerts", Some(body.clone()))
            .await;
        assert_eq!(reply.status, 400, "{body} → {}", reply.body);
        assert_twilio_error(400, &reply.body);
    }
    let unknown = sim
        .control(
            Method::POST,
            "/_sim/alerts",
            Some(json!({"resource_sid": "XE00000000000000000000000000000000", "error_code": "63110"})),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(
        alerts(&sim, "").await,
        Vec::<Value>::new(),
        "nothing was logged"
    );

    // An alert about account B's sender lands in account B.
    let other = sim.create_as(B, "+15005550002", "Other").await;
    let other = other.body["sid"].as_str().unwrap();
    let logged = log_alert(&sim, json!({"resource_sid": other, "error_code": 63110})).await;
    assert_eq!(logged["account_sid"], ACCOUNT_B);
    assert_eq!(
        logged["error_code"], "63110",
        "a number is stored as a string"
    );
    assert_eq!(monitor(&sim, Some(B), ALERTS).await.body["alerts"][0], {
        let mut listed = logged.clone();
        for field in [
            "request_variables",
            "request_headers",
            "response_body",
            "response_headers",
        ] {
            listed.as_object_mut().unwrap().remove(field);
        }
        listed
    });
}

#[tokio::test]
async fn alerts_share_auth_stats_faults_and_reset_with_the_senders_api() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let alert = log_alert(&sim, json!({"resource_sid": sid, "error_code": "63110"})).await;
    let alert_sid = alert["sid"].as_str().unwrap();

    let anonymous = monitor(&sim, None, ALERTS).await;
    anonymous.assert_error(401, 20003);
    assert!(anonymous.headers.contains_key("www-authenticate"));
    monitor(&sim, Some(Creds(ACCOUNT_A, "wrong")), ALERTS)
        .await
        .assert_error(401, 20003);
    monitor(&sim, Some(A), ALERTS).await;
    monitor(&sim, Some(A_KEY), &format!("{ALERTS}/{alert_sid}")).await;
    monitor(&sim, Some(A), &format!("{ALERTS}?PageSize=0")).await;
    let post = sim
        .http
        .post(format!("{}{ALERTS}", sim.base))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    assert_twilio_error(405, &post.json().await.unwrap());

    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    let rows = request_rows(&stats.body, "/v1/");
    let expected = [
        ("GET", "/v1/Alerts", 200, Some(ACCOUNT_A), 1),
        ("GET", "/v1/Alerts", 400, Some(ACCOUNT_A), 1),
        ("GET", "/v1/Alerts", 401, None, 2),
        ("GET", "/v1/Alerts/{Sid}", 200, Some(ACCOUNT_A), 1),
        ("POST", "/v1/Alerts", 405, None, 1),
    ]
    .map(|(m, r, s, a, c)| (m.to_string(), r.to_string(), s, a.map(str::to_string), c));
    assert_eq!(rows, expected, "{}", stats.body);

    // Faults can be limited to the alert list, and then leave /v2 alone.
    let set = sim
        .control(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"error_rate": 1.0, "only": "GET /v1/Alerts"})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    for _ in 0..3 {
        let faulted = monitor(&sim, Some(A), ALERTS).await;
        assert!([500, 503].contains(&faulted.status), "{}", faulted.body);
    }
    assert_eq!(sim.fetch(&sid).await["sid"], sid.as_str());
    // Without `only`, the rate limit counts both APIs against the same account.
    sim.control(
        Method::PUT,
        "/_sim/faults",
        Some(json!({"rate_limit_per_second": 1})),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(monitor(&sim, Some(A), ALERTS).await.status);
        statuses.push(
            sim.api(A, Method::GET, &format!("/v2/Channels/Senders/{sid}"), None)
                .await
                .status,
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    let reset = sim.control(Method::POST, "/_sim/reset", None).await;
    assert_eq!(reset.status, 204);
    assert_eq!(
        alerts(&sim, "").await,
        Vec::<Value>::new(),
        "reset forgets alerts"
    );
    monitor(&sim, Some(A), &format!("{ALERTS}/{alert_sid}"))
        .await
        .assert_error(404, 20404);
}

#[tokio::test]
async fn draft_and_stubbed_are_reachable_through_the_status_control() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    for status in ["DRAFT", "STUBBED"] {
        let patched = sim
            .control(
                Method::PATCH,
                &format!("/_sim/senders/{sid}"),
                Some(json!({"status": status})),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        tokio::time::sleep(STEP * 2).await;
        assert_eq!(sim.fetch(&sid).await["status"], status, "it stays there");
    }
}

/// The Alerts answers, held to the Monitor document by Prism (`prism proxy --errors`).
#[tokio::test]
async fn alerts_answers_pass_prism_for_the_monitor_document() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "already_registered").await;
    let sid = sim.create("+15005550001").await;
    wait_for_alerts(&sim, &sid, 1).await;
    log_alert(
        &sim,
        json!({"resource_sid": sid, "error_code": "63100", "log_level": "warning"}),
    )
    .await;
    let recent = alerts(&sim, "").await[0]["date_created"]
        .as_str()
        .unwrap()
        .to_string();

    let upstream = sim.base.clone();
    let prism = tokio::task::spawn_blocking(move || {
        prism::Prism::start_for("twilio_monitor_v1.json", &upstream)
    })
    .await
    .expect("start Prism");
    let get = |path: String| {
        sim.http
            .get(format!("{}{path}", prism.url()))
            .basic_auth(ACCOUNT_A, Some(TOKEN_A))
            .send()
    };
    let mut fetched = 0;
    // Dates in the full form only: the document gives StartDate/EndDate `format: date-time`, so
    // Prism refuses the `YYYY-MM-DD` form (422) that the parameter's description allows.
    for query in [
        String::new(),
        "?PageSize=1".to_string(),
        format!("?StartDate={recent}&EndDate={recent}&LogLevel=error&PageSize=50&Page=0"),
        format!("?LogLevel=warning&StartDate={recent}"),
    ] {
        let reply = get(format!("{ALERTS}{query}")).await.unwrap();
        assert_eq!(reply.status().as_u16(), 200, "{query}");
        let body: Value = reply.json().await.unwrap();
        for alert in body["alerts"].as_array().unwrap() {
            let one = get(format!("{ALERTS}/{}", alert["sid"].as_str().unwrap()))
                .await
                .unwrap();
            assert_eq!(one.status().as_u16(), 200, "{alert}");
            fetched += 1;
        }
        if let Some(next) = body["meta"]["next_page_url"].as_str() {
            let local = next
                .strip_prefix(&sim.base)
                .expect("URLs point at the simulator");
            assert_eq!(get(local.to_string()).await.unwrap().status().as_u16(), 200);
        }
    }
    assert!(fetched >= 3, "alerts were fetched through Prism: {fetched}");
    let settle = tokio::task::spawn_blocking(move || {
        prism.settle();
        prism
    });
    let prism = settle.await.unwrap();
    assert_eq!(
        prism.errors(),
        Vec::<String>::new(),
        "Prism log:\n{}",
        prism.log()
    );
}
