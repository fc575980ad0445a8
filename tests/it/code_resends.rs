//! `senderops.io/resend-code` asks Twilio for a new one-time code, which is a create at Twilio
//! and an SMS or a call to the number. A tenant changing the annotation in a loop must not
//! make the operator ring a number again and again: requests are spaced
//! (`--code-resend-interval`) and capped per day (`--code-resends-per-day`), both kept in the
//! sender's status so a restart does not reset them, and a held request says when it goes out.

use serde_json::json;

use crate::support::operator::{Fixture, condition, sid_of, spec_with_code};

const PHONE: &str = "+15550700001";

async fn ask_for_code(f: &Fixture, value: &str) {
    f.patch(
        "acme",
        json!({"metadata": {"annotations": {"senderops.io/resend-code": value}}}),
    )
    .await;
}

/// Waits until the request `value` is acted on (a new code asked for).
async fn wait_handled(f: &Fixture, value: &str) {
    f.wait_for("acme", &format!("resend {value} handled"), |s| {
        s.status
            .as_ref()
            .and_then(|st| st.verification.as_ref())
            .and_then(|v| v.resend_code_request.as_deref())
            == Some(value)
    })
    .await;
}

/// Waits until the request `value` is held, and returns what the sender says about it.
async fn wait_held(f: &Fixture, value: &str) -> String {
    let held = f
        .wait_for("acme", &format!("resend {value} held"), |s| {
            condition(s, "Ready").is_some_and(|c| {
                c.reason == "Queued" && c.message.contains(&format!("resend-code={value:?}"))
            })
        })
        .await;
    condition(&held, "Ready").unwrap().message
}

fn requests_in_status(sender: &senderops::api::WhatsAppSender) -> usize {
    sender
        .status
        .as_ref()
        .and_then(|s| s.verification.as_ref())
        .map_or(0, |v| v.code_requests.len())
}

#[tokio::test]
async fn five_new_values_in_a_row_ask_for_one_code_and_a_restart_keeps_the_spacing() {
    let mut f = Fixture::with_args("resend-spaced", &["--code-resend-interval", "10m"]).await;
    f.sim.number(PHONE, "needs_code").await;
    f.apply("acme", spec_with_code(PHONE, "otp")).await;
    sid_of(
        &f.wait_condition("acme", "Ready", "False", "WaitingForCode")
            .await,
    );
    assert_eq!(f.sim.create_attempts(PHONE).await, 1, "the registration");

    ask_for_code(&f, "r1").await;
    wait_handled(&f, "r1").await;
    for value in ["r2", "r3", "r4", "r5"] {
        ask_for_code(&f, value).await;
        let said = wait_held(&f, value).await;
        assert!(
            said.contains("asked for in") && said.contains("--code-resend-interval"),
            "{said}"
        );
    }
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1 + 1,
        "one new code for five requests"
    );
    let sender = f.get("acme").await.unwrap();
    assert_eq!(requests_in_status(&sender), 1, "kept in status");

    // A restart (or a failover) reads the spacing back from status.
    f.operator.restart();
    ask_for_code(&f, "r6").await;
    wait_held(&f, "r6").await;
    assert_eq!(f.sim.create_attempts(PHONE).await, 1 + 1);
}

#[tokio::test]
async fn a_day_holds_at_most_the_cap_of_new_codes() {
    let f = Fixture::with_args(
        "resend-capped",
        &[
            "--code-resend-interval",
            "0s",
            "--code-resends-per-day",
            "2",
        ],
    )
    .await;
    f.sim.number(PHONE, "needs_code").await;
    f.apply("acme", spec_with_code(PHONE, "otp")).await;
    f.wait_condition("acme", "Ready", "False", "WaitingForCode")
        .await;
    for value in ["r1", "r2"] {
        ask_for_code(&f, value).await;
        wait_handled(&f, value).await;
    }
    ask_for_code(&f, "r3").await;
    let said = wait_held(&f, "r3").await;
    assert!(said.contains("at most 2 new codes a day"), "{said}");
    assert_eq!(f.sim.create_attempts(PHONE).await, 1 + 2);
}
