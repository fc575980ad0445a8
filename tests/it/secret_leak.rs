//! No credential and no one-time code leaves the operator, even at `RUST_LOG=trace` for every
//! crate (kube, hyper, reqwest, h2, rustls…): an API key sender registered by a first operator
//! at the default level, then at trace an auth token sender's whole life, a wrong code then
//! the right one, a spec update and deletion of both, after which the operators' logs, the
//! namespace's Events, both senders' `.status` (during VERIFYING too), `/metrics` and every
//! condition message are searched for each secret, the Basic credentials, and both in every
//! Base64 alphabet (standard and URL-safe, padded and not).

use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::support::operator::{Fixture, condition, sid_of, spec, spec_with_code};
use crate::support::sim::{ACCOUNT_A, KEY_A, KEY_SECRET_A, TOKEN_A};
use crate::support::wait::Wait;

const TOKEN_SENDER: &str = "with-token";
const TOKEN_PHONE: &str = "+15017122671";
const KEY_SENDER: &str = "with-key";
const KEY_PHONE: &str = "+15017122672";
const CODE_SECRET: &str = "otp";
/// 8 digits, so that it cannot be the simulator's 6-digit code.
const WRONG_CODE: &str = "90817263";

/// `bytes` in every Base64 alphabet a leak could use: standard with padding (as Kubernetes
/// encodes Secret data and HTTP Basic encodes credentials), unpadded, and URL-safe with and
/// without padding (as JWTs and URLs carry it). Named by variant, duplicates dropped.
fn base64s(bytes: &[u8]) -> Vec<(&'static str, String)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut encodings: Vec<(&'static str, String)> = Vec::new();
    for (variant, encoded) in [
        ("Base64", STANDARD.encode(bytes)),
        ("unpadded Base64", STANDARD_NO_PAD.encode(bytes)),
        ("URL-safe Base64", URL_SAFE.encode(bytes)),
        ("unpadded URL-safe Base64", URL_SAFE_NO_PAD.encode(bytes)),
    ] {
        if !encodings.iter().any(|(_, seen)| *seen == encoded) {
            encodings.push((variant, encoded));
        }
    }
    encodings
}

/// Where `secret` occurs in `text` as a token of its own: digits (a code) only count when no
/// digit touches them, or every timestamp and counter would match a 6-digit code by chance.
fn occurrences(text: &str, secret: &str) -> usize {
    let digits = secret.bytes().all(|b| b.is_ascii_digit());
    text.match_indices(secret)
        .filter(|(at, _)| {
            !digits || {
                let before = text[..*at].bytes().next_back();
                let after = text[at + secret.len()..].bytes().next();
                !before.is_some_and(|b| b.is_ascii_digit())
                    && !after.is_some_and(|b| b.is_ascii_digit())
            }
        })
        .count()
}

/// A log line without its leading timestamp (`2026-01-01T00:00:00.123456Z`), whose digits are
/// not the operator's to choose.
fn without_timestamps(log: &str) -> String {
    log.lines()
        .map(|line| match line.split_once("Z ") {
            Some((stamp, rest)) if stamp.len() < 32 && stamp.starts_with("20") => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each of `needles` (what, value) found in one of `places` (where, text), with its
/// surroundings.
fn leaks_of(places: &[(&str, String)], needles: &[(String, String)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for (place, text) in places {
        for (what, needle) in needles {
            let found = occurrences(text, needle);
            if found > 0 {
                let at = text.find(needle.as_str()).unwrap();
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(120)
                    .map_or(0, |(i, _)| i);
                leaks.push(format!(
                    "{what} ({needle}) appears {found} times in {place}, e.g. …{:.300}",
                    &text[from..]
                ));
            }
        }
    }
    leaks
}

#[tokio::test]
async fn no_token_key_secret_or_code_reaches_logs_events_status_or_metrics_at_trace() {
    let mut f = Fixture::new("leak").await;
    f.secret(
        "twilio-key",
        &[
            ("accountSid", ACCOUNT_A),
            ("apiKeySid", KEY_A),
            ("apiKeySecret", KEY_SECRET_A),
        ],
    )
    .await;
    f.sim.number(TOKEN_PHONE, "needs_code").await;
    f.sim.number(KEY_PHONE, "auto_verify").await;

    // The first operator, at its default level, registers the API key sender; its log is
    // searched too.
    f.apply(
        KEY_SENDER,
        spec(KEY_PHONE, json!({"credentialsRef": {"name": "twilio-key"}})),
    )
    .await;
    let key_registered = f.wait_ready(KEY_SENDER).await;
    let first_log = f.operator.log_file().to_path_buf();
    // Every crate at trace from here on: whatever kube, hyper, h2, reqwest or rustls would log
    // is logged.
    f.operator.restart_with_env(&[("RUST_LOG", "trace")]);

    // The auth token sender's whole life is at trace; it needs a code.
    f.apply(TOKEN_SENDER, spec_with_code(TOKEN_PHONE, CODE_SECRET))
        .await;
    let waiting = f
        .wait_condition(TOKEN_SENDER, "Ready", "False", "WaitingForCode")
        .await;
    let sid = sid_of(&waiting);
    let code = f.sim.otp(&sid).await.expect("the simulator sent a code");
    assert_ne!(code, WRONG_CODE);

    // A wrong code, refused; then the right one.
    f.secret(CODE_SECRET, &[("code", WRONG_CODE)]).await;
    let rejected = f
        .wait_condition(TOKEN_SENDER, "Stalled", "True", "CodeRejected")
        .await;
    assert_eq!(f.sim.sender(&sid).await["wrong_codes"], 1);
    let wrong_received = f.sim.sender(&sid).await["last_code_received_ms"].clone();
    f.secret(CODE_SECRET, &[("code", &code)]).await;
    // The status while Twilio verifies the right code, which the operator has just read: Twilio
    // is held in VERIFYING (one 50 ms step otherwise) once the code has arrived.
    Wait::until("the right code to reach Twilio")
        .every(Duration::from_millis(5))
        .poll(
            async || f.sim.sender(&sid).await["last_code_received_ms"].clone(),
            |received| *received != wrong_received,
        )
        .await;
    f.sim
        .patch_sender(&sid, json!({"status": "VERIFYING"}))
        .await;
    f.request_reconcile(TOKEN_SENDER, "verifying").await;
    let verifying = f
        .wait_for(TOKEN_SENDER, "VERIFYING, with the code submitted", |s| {
            s.status.as_ref().is_some_and(|st| {
                st.twilio_status.as_deref() == Some("VERIFYING")
                    && st
                        .verification
                        .as_ref()
                        .and_then(|v| v.submitted_code.as_ref())
                        .is_some_and(|c| !c.rejected)
            })
        })
        .await;
    f.sim.patch_sender(&sid, json!({"status": "ONLINE"})).await;
    f.wait_ready(TOKEN_SENDER).await;
    let key_sender = f.wait_ready(KEY_SENDER).await;

    // A spec update on each, through each kind of credentials.
    for (name, phone) in [(TOKEN_SENDER, TOKEN_PHONE), (KEY_SENDER, KEY_PHONE)] {
        f.patch(
            name,
            json!({"spec": {"profile": {"about": "Updated about"}}}),
        )
        .await;
        f.wait_event(name, "Updated").await;
        let at_twilio = Wait::until(format!("{name}'s update to be ONLINE at Twilio"))
            .poll(
                async || f.sim_sender(phone).await,
                |at_twilio| {
                    at_twilio["status"] == "ONLINE"
                        && at_twilio["profile"]["about"] == "Updated about"
                },
            )
            .await;
        assert_eq!(at_twilio["profile"]["about"], "Updated about");
    }
    let token_sender = f.wait_ready(TOKEN_SENDER).await;
    let key_sender_after = f.wait_ready(KEY_SENDER).await;

    // Everything the operator made visible, while the senders exist.
    let metrics_url = f.operator.metrics_url().await;
    let metrics = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("senderops_twilio_requests_total"),
        "{metrics:.500}"
    );
    let mut statuses = String::new();
    for sender in [
        &key_registered,
        &rejected,
        &verifying,
        &key_sender,
        &token_sender,
        &key_sender_after,
    ] {
        statuses.push_str(&serde_norway::to_string(sender).unwrap());
        for type_ in ["Ready", "Synced", "Stalled"] {
            assert!(condition(sender, type_).is_some(), "{type_} is set");
        }
    }

    // Deletion of both.
    for name in [TOKEN_SENDER, KEY_SENDER] {
        f.delete(name).await;
        f.wait_gone(name).await;
        f.wait_event(name, "Deleted").await;
    }
    assert!(f.sim_senders_for(TOKEN_PHONE).await.is_empty());
    assert!(f.sim_senders_for(KEY_PHONE).await.is_empty());

    let events: Vec<Event> = Api::namespaced(f.client.clone(), &f.ns)
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items;
    assert!(
        events.len() >= 6,
        "Created, CodeRejected, CodeSubmitted, Online, Updated, Deleted…: {events:#?}"
    );
    let events = serde_norway::to_string(&events).unwrap();
    let log = f.operator.log();
    assert!(
        log.lines().filter(|l| l.contains("TRACE")).count() > 100,
        "the operator logged at trace:\n{}",
        f.operator.log_tail(20)
    );
    assert!(
        log.contains("kube") && log.contains("hyper"),
        "kube's and hyper's trace output is in the log"
    );

    let secrets = [
        ("the auth token", TOKEN_A.to_string()),
        ("the API key secret", KEY_SECRET_A.to_string()),
        ("the wrong code", WRONG_CODE.to_string()),
        ("the right code", code.clone()),
    ];
    let mut needles: Vec<(String, String)> = Vec::new();
    for (what, value) in &secrets {
        needles.push((what.to_string(), value.clone()));
        for (variant, encoded) in base64s(value.as_bytes()) {
            needles.push((format!("{what} in {variant}"), encoded));
        }
    }
    for (what, credentials) in [
        ("auth token", format!("{ACCOUNT_A}:{TOKEN_A}")),
        ("API key", format!("{KEY_A}:{KEY_SECRET_A}")),
    ] {
        for (variant, encoded) in base64s(credentials.as_bytes()) {
            needles.push((
                format!("the Basic credentials of the {what} in {variant}"),
                encoded,
            ));
        }
    }
    let first_log = std::fs::read_to_string(&first_log).expect("read the first operator's log");
    assert!(
        first_log.contains("senderops started") && first_log.contains("Twilio answered"),
        "the first operator ran and talked to Twilio:\n{first_log}"
    );
    let places = [
        (
            "the first operator's log (before the restart)",
            without_timestamps(&first_log),
        ),
        ("the operator's log", without_timestamps(&log)),
        ("the Events", events),
        ("the senders (status included)", statuses),
        ("/metrics", metrics),
    ];
    let leaks = leaks_of(&places, &needles);
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
}

#[test]
fn a_code_only_counts_when_no_digit_touches_it() {
    assert_eq!(occurrences("at 12:00:00.123456Z code=123456", "123456"), 2);
    assert_eq!(occurrences("rv 91234567 and 1234560", "123456"), 0);
    assert_eq!(occurrences("a sim-token-a b", "sim-token-a"), 1);
    assert_eq!(
        without_timestamps("2026-11-23T14:22:05.123456Z  INFO x=1\nplain"),
        " INFO x=1\nplain"
    );
}

/// Twilio, or a proxy in front of it, answers a code submission with the code quoted (the
/// simulator's `echo_code` fault): a 400 whose message quotes a wrong code, then a 200 whose
/// plain-text body quotes the right one. The operator shows Twilio's words, but neither code
/// reaches a condition, an Event or its log (at its test level, `senderops=debug`, where every
/// failed Twilio request is logged with its error).
#[tokio::test]
async fn a_code_quoted_back_in_an_answer_reaches_no_condition_event_or_log() {
    const SENDER: &str = "echoed";
    const PHONE: &str = "+15017122673";
    let f = Fixture::new("echo").await;
    f.sim.number(PHONE, "needs_code").await;
    f.apply(SENDER, spec_with_code(PHONE, CODE_SECRET)).await;
    let waiting = f
        .wait_condition(SENDER, "Ready", "False", "WaitingForCode")
        .await;
    let sid = sid_of(&waiting);
    let code = f.sim.otp(&sid).await.expect("the simulator sent a code");
    assert_ne!(code, WRONG_CODE);

    // Refused with a 400 (20001) that quotes the code: the user must act, so it stalls.
    let route = "/v2/Channels/Senders/{Sid}";
    let only = format!("POST {route}");
    f.sim
        .faults(json!({"echo_code": "rejected", "only": only}))
        .await;
    f.secret(CODE_SECRET, &[("code", WRONG_CODE)]).await;
    let refused = f
        .wait_condition(SENDER, "Stalled", "True", "InvalidSpec")
        .await;
    let stalled = condition(&refused, "Stalled")
        .expect("Stalled is set")
        .message;
    assert!(
        stalled.contains("could not submit the code (Twilio error 20001, HTTP 400)")
            && stalled.contains("verification_code`: [redacted] is not a valid code"),
        "the condition quotes Twilio's answer, without the code: {stalled}"
    );
    let event = f.wait_event(SENDER, "InvalidSpec").await;
    assert!(event.contains("[redacted]"), "{event}");
    assert_eq!(
        f.sim.sender(&sid).await["last_code_received_ms"],
        serde_json::Value::Null,
        "the refused code never reached Meta"
    );

    // Taken, and answered with a 200 whose body is text quoting the code: the answer is
    // unreadable, and the sender comes online all the same.
    f.sim
        .faults(json!({"echo_code": "text", "only": only}))
        .await;
    f.secret(CODE_SECRET, &[("code", &code)]).await;
    let ready = f.wait_ready(SENDER).await;
    assert_eq!(f.sim.count("POST", route, 200).await, 1);
    let log = f.operator.log();
    let events: Vec<Event> = Api::namespaced(f.client.clone(), &f.ns)
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items;
    let places = [
        (
            "the senders (status included)",
            [&waiting, &refused, &ready]
                .map(|s| serde_norway::to_string(s).unwrap())
                .join("\n"),
        ),
        ("the Events", serde_norway::to_string(&events).unwrap()),
        ("the operator's log", without_timestamps(&log)),
    ];
    let codes = [("the refused code", WRONG_CODE), ("the right code", &code)]
        .map(|(what, value)| (what.to_string(), value.to_string()));
    let leaks = leaks_of(&places, &codes);
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
    // The answers reached the log (so the search above means something).
    assert!(
        log.contains("invalid JSON at line 1 column 1"),
        "the operator read the text answer:\n{}",
        f.operator.log_tail(40)
    );
    assert!(
        log.contains("verification_code`: [redacted] is not a valid code"),
        "the operator logged the 400's words:\n{}",
        f.operator.log_tail(40)
    );
}
