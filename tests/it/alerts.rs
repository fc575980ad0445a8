//! What Twilio records only in its Error Log: a registration that fails after its create was
//! accepted reaches the sender's conditions (code and advice), an Event, status and a metric;
//! alerts about other resources change nothing; senders registering together read their
//! account's log in one shared pass per poll; and no alert is read while every sender is
//! ONLINE.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::metrics::{scrape, sum};
use crate::support::operator::{Fixture, condition, register_by_hand, sid_of, spec};
use crate::support::wait::Wait;

/// The time from a failure Twilio logs only in its Error Log to the sender's Stalled condition,
/// printed for the record.
async fn stalls_by_its_alert(behavior: &str, code: &str, reason: &str, advice: &str) {
    let f = Fixture::new("alert-only").await;
    let phone = "+15005550401";
    f.sim.number(phone, behavior).await;
    f.apply("acme", spec(phone, json!({}))).await;
    f.wait_create_at_twilio(phone).await;
    // When the simulator logged the failure: its Error Log shows it.
    let client = f.sim.client_a();
    let since =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(1);
    let sid = Wait::until(format!("the simulator to log {code} for {phone}"))
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(20))
        .poll(
            async || {
                let mut logged = Vec::new();
                client
                    .alerts_since(since, |alert| logged.push(alert))
                    .await
                    .expect("read the Error Log");
                logged
                    .into_iter()
                    .find(|a| a.error_code.as_deref() == Some(code))
                    .and_then(|a| a.resource_sid)
            },
            |sid| sid.is_some(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let stalled = f.wait_condition("acme", "Stalled", "True", reason).await;
    let took = started.elapsed();
    eprintln!("{behavior}: failure to Stalled={reason} in {took:?}");
    let message = condition(&stalled, "Stalled").unwrap().message;
    assert!(
        message.contains(&format!(
            "Twilio's Error Log reports error {code} for sender {sid}"
        )) && message.contains(advice),
        "{message}"
    );
    let status = stalled.status.unwrap();
    assert_eq!(status.alerts.len(), 1, "{:?}", status.alerts);
    assert_eq!(status.alerts[0].code.as_deref(), Some(code));
    let event = f.wait_event("acme", "TwilioAlert").await;
    assert!(
        event.contains(&format!("error {code}")) && event.contains(&sid),
        "{event}"
    );
    let metrics = scrape(&f.operator).await;
    assert_eq!(
        sum(&metrics, "senderops_twilio_alerts_total", &[("code", code)]),
        1.0,
        "one alert, counted once"
    );
    assert!(f.sim.alert_reads().await >= 1);
    assert_eq!(
        f.sim.create_attempts(phone).await,
        1,
        "nothing registered twice"
    );
}

#[tokio::test]
async fn a_failure_known_only_by_its_alert_while_creating_stalls_with_its_code_and_advice() {
    stalls_by_its_alert(
        "waba_full_stays_creating",
        "63104",
        "WabaFull",
        "maximum number of phone numbers",
    )
    .await;
}

#[tokio::test]
async fn an_offline_sender_without_reasons_stalls_by_its_alert() {
    stalls_by_its_alert(
        "cannot_verify_alert_only",
        "63113",
        "CannotVerify",
        "The sender cannot be verified",
    )
    .await;
}

#[tokio::test]
async fn alerts_about_other_resources_change_nothing() {
    let f = Fixture::new("alert-other").await;
    let phone = "+15005550402";
    let other = "+15005550403";
    f.sim.number(phone, "auto_verify").await;
    f.sim.number(other, "auto_verify").await;
    let someone_else = register_by_hand(&f.sim.client_a(), other, "Someone Else").await;
    f.apply("acme", spec(phone, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);
    // The log holds another sender's failure when ours turns OFFLINE, which makes it read it.
    f.sim
        .log_alert(&someone_else.sid, "63104", "Msg=WABA full")
        .await;
    let reads = f.sim.alert_reads().await;
    f.sim.patch_sender(&sid, json!({"status": "OFFLINE"})).await;
    f.request_reconcile("acme", "offline").await;
    f.wait_condition("acme", "Ready", "False", "Offline").await;
    Wait::until("the operator to read the Error Log")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(20))
        .poll(async || f.sim.alert_reads().await, |now| *now > reads)
        .await;
    // A poll later it has read the log at least once with the other sender's alert in it.
    f.request_reconcile("acme", "again").await;
    let read_twice = reads + 2;
    Wait::until("a second read of the Error Log")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(20))
        .poll(async || f.sim.alert_reads().await, |now| *now >= read_twice)
        .await;
    let sender = f.get("acme").await.unwrap();
    assert_eq!(condition(&sender, "Stalled").unwrap().status, "False");
    assert!(sender.status.unwrap().alerts.is_empty(), "not ours");
    let reasons: Vec<String> = f.events("acme").await.into_iter().map(|e| e.1).collect();
    assert!(!reasons.iter().any(|r| r == "TwilioAlert"), "{reasons:?}");
    f.sim.patch_sender(&sid, json!({"status": "ONLINE"})).await;
    f.request_reconcile("acme", "online").await;
    f.wait_ready("acme").await;
}

/// Registers `phones` (auto-verified, each with a display name of its own) as `s0`, `s1`, …,
/// and waits until all are Ready.
async fn onboard_auto_verified(f: &Fixture, phones: &[impl AsRef<str>]) {
    for (i, phone) in phones.iter().enumerate() {
        let phone = phone.as_ref();
        f.sim.number(phone, "auto_verify").await;
        f.apply(
            &format!("s{i}"),
            spec(phone, json!({"profile": {"name": format!("Acme {i}")}})),
        )
        .await;
    }
    for i in 0..phones.len() {
        f.wait_ready(&format!("s{i}")).await;
    }
}

#[tokio::test]
async fn no_alert_is_read_while_every_sender_is_online() {
    let f = Fixture::new("alert-none").await;
    let phones = ["+15005550404", "+15005550405", "+15005550406"];
    onboard_auto_verified(&f, &phones).await;
    let onboarding = f.sim.alert_reads().await;
    eprintln!(
        "alert reads while onboarding {} senders: {onboarding}",
        phones.len()
    );
    for round in 0..3 {
        // Proof that each asked-for reconcile ran to its end: its sender's status names it.
        for i in 0..phones.len() {
            f.reconcile_and_wait(&format!("s{i}"), &format!("r{round}"))
                .await;
        }
    }
    assert_eq!(
        f.sim.alert_reads().await,
        onboarding,
        "no alert read while every sender is ONLINE"
    );
    for i in 0..phones.len() {
        assert!(sid_of(&f.get(&format!("s{i}")).await.unwrap()).starts_with("XE"));
    }
}

/// While registrations sit at Twilio (CREATING, then VERIFYING, a few seconds each here), the
/// account's Error Log is read, but in one pass per account and poll interval, shared by all
/// its registering senders (printed for the record).
#[tokio::test]
async fn alert_reads_while_registrations_take_their_time_are_one_pass_per_account_and_poll() {
    const STEP: Duration = Duration::from_secs(3);
    const POLL: Duration = Duration::from_millis(500);
    let sim = crate::support::sim::Sim::start_with(|config| config.step_delay = STEP).await;
    let f = Fixture::with_sim(
        "alert-onboarding",
        sim,
        &[
            "--serial-onboarding",
            "false",
            "--poll-interval",
            "500ms",
            // The budget is not what this test measures: keep it out of the way.
            "--twilio-requests-per-second",
            "100",
        ],
    )
    .await;
    // Enough senders that one read per sender and poll would exceed the bound below.
    let phones: Vec<String> = (420..436).map(|n| format!("+15005550{n}")).collect();
    let started = Instant::now();
    onboard_auto_verified(&f, &phones).await;
    let onboarding = started.elapsed();
    let reads = f.sim.alert_reads().await;
    let polls = f.reconciles().await;
    eprintln!(
        "{} senders registering together in one account for {:.1} s at a {} ms poll: {reads} \
         Error Log reads over {polls} reconciles",
        phones.len(),
        onboarding.as_secs_f64(),
        POLL.as_millis()
    );
    // CREATING and VERIFYING last 3 s each, so some poll found a sender where it was.
    assert!(
        reads >= 1,
        "the Error Log was read while senders registered"
    );
    let windows = (onboarding.as_secs_f64() / POLL.as_secs_f64()).ceil() as u64 + 1;
    assert!(
        reads <= windows,
        "at most one pass per poll interval ({windows} in {onboarding:?}), shared by {} \
         senders: {reads}",
        phones.len()
    );
    // Each sender found itself unchanged at two polls at least (0.5 s and 1.5 s into a 3 s
    // step): one read per sender and poll would be twice as many reads as senders.
    assert!(
        windows < 2 * phones.len() as u64,
        "the bound shows sharing only while it is below two reads per sender ({windows})"
    );
    for i in 0..phones.len() {
        let status = f.get(&format!("s{i}")).await.unwrap().status.unwrap();
        assert!(
            status.alerts.is_empty(),
            "s{i}: nothing was logged: {status:?}"
        );
    }
}
