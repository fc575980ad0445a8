//! One account's load does not starve the others. The reconcile workers are shared by every
//! account, and a reconcile waits for its account's request budget while holding one: without
//! a limit, an account with many senders onboarding fills every worker and another account's
//! sender waits for all of them. An account holds at most half the workers; the test measures
//! an account-A sender's time to Ready alone, then while account B's budget is saturated.
//! Measured on 2 cores: 3.3 s alone, 4.2 s with B saturated; with every worker open to one
//! account, A's sender was not even reconciled within 30 s.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::operator::{Fixture, spec};
use crate::support::sim::{ACCOUNT_B, TOKEN_B};

/// Account B's senders: many more reconciles than the workers, each needing several requests
/// from a budget of one a second.
const B_SENDERS: usize = 32;

async fn time_to_ready(f: &Fixture, name: &str, phone: &str) -> Duration {
    f.sim.number(phone, "auto_verify").await;
    let started = Instant::now();
    f.apply(name, spec(phone, json!({}))).await;
    f.wait_ready(name).await;
    started.elapsed()
}

#[tokio::test]
async fn an_account_waiting_on_its_budget_leaves_workers_to_the_others() {
    let f = Fixture::with_args(
        "fairness",
        &[
            "--twilio-requests-per-second",
            "1",
            "--max-concurrent-reconciles",
            "4",
            // Every B sender registers at once: the most load one account can make.
            "--serial-onboarding",
            "false",
            "--display-name-check",
            "false",
        ],
    )
    .await;
    let alone = time_to_ready(&f, "a-alone", "+15550800001").await;

    f.secret(
        "twilio-b",
        &[("accountSid", ACCOUNT_B), ("authToken", TOKEN_B)],
    )
    .await;
    for i in 0..B_SENDERS {
        let phone = format!("+155508002{i:02}");
        f.sim.number(&phone, "auto_verify").await;
        f.apply(
            &format!("b-{i}"),
            spec(&phone, json!({"credentialsRef": {"name": "twilio-b"}})),
        )
        .await;
    }
    // B's reconciles now queue on its budget: the first of its creates have gone out, and
    // most of its senders are still far from Ready.
    crate::support::wait::Wait::until("account B's budget to be saturated")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(100))
        .poll(
            async || f.sim.count("POST", "/v2/Channels/Senders", 202).await,
            |creates| *creates >= 2,
        )
        .await;
    let busy = time_to_ready(&f, "a-busy", "+15550800002").await;
    let b_created = f.sim.count("POST", "/v2/Channels/Senders", 202).await - 1;
    assert!(
        b_created < B_SENDERS as u64,
        "account B was still onboarding when A's sender got Ready ({b_created} of \
         {B_SENDERS} created)"
    );
    println!("account A's sender: {alone:?} alone, {busy:?} while B is saturated");
    assert!(
        busy <= alone * 2 + Duration::from_secs(3),
        "A's sender took {busy:?} while B's budget was saturated, {alone:?} alone"
    );
}
