//! `kubectl rollout restart` in the middle of onboarding ten senders (half need a code): every
//! replica is replaced while registrations are under way, and still every sender becomes Ready
//! with one registration each at Twilio.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use super::fixture::{Cluster, OPERATOR_NAMESPACE, name_of, sender_spec};
use crate::support::controlplane::repo_root;
use crate::support::operator::condition;

const SELECTOR: &str = "app.kubernetes.io/name=senderops";
const SENDERS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_restart_during_onboarding_leaves_every_sender_ready_and_registered_once() {
    let cluster = Cluster::start("rollout").await;
    let overlay = repo_root().join("hack/node/install/node");
    cluster
        .kubectl(&["apply", "-k", overlay.to_str().unwrap()])
        .expect_success("kubectl apply -k hack/node/install/node");
    cluster.wait_available("senderops", 2).await;
    let before: BTreeSet<String> = cluster.pods(SELECTOR).await.iter().map(name_of).collect();

    let mut names = Vec::new();
    for i in 0..SENDERS {
        let phone = format!("+1501712268{i}");
        let name = format!("fleet-{i}");
        let coded = i % 2 == 1;
        cluster
            .sim
            .number(&phone, if coded { "needs_code" } else { "auto_verify" })
            .await;
        let secret = format!("{name}-otp");
        let spec = sender_spec(&phone, coded.then_some(secret.as_str()));
        cluster.apply_sender(&name, spec, json!({})).await;
        names.push(name);
    }

    // Restart once onboarding is under way (the operator registers one number per account at
    // a time, so most senders are still waiting their turn).
    let began = Instant::now();
    loop {
        cluster.provide_codes().await;
        if cluster.registrations().await >= 2 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "onboarding did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut ready = 0;
    for name in &names {
        let sender = cluster.senders().get(name).await.expect("read a sender");
        ready += usize::from(condition(&sender, "Ready").is_some_and(|c| c.status == "True"));
    }
    assert!(
        ready < SENDERS,
        "the restart comes in the middle of onboarding ({ready} Ready)"
    );
    eprintln!("rollout restart with {ready} of {SENDERS} senders Ready");
    cluster
        .kubectl(&[
            "-n",
            OPERATOR_NAMESPACE,
            "rollout",
            "restart",
            "deployment/senderops",
        ])
        .expect_success("kubectl rollout restart");

    cluster.wait_ready(&names).await;
    cluster.wait_available("senderops", 2).await;
    let after: BTreeSet<String> = cluster.pods(SELECTOR).await.iter().map(name_of).collect();
    assert!(
        before.is_disjoint(&after),
        "every replica was replaced: before {before:?}, after {after:?}"
    );
    let not_once = cluster.numbers_not_created_once().await;
    assert!(
        not_once.is_empty(),
        "one create attempt per number: {not_once:?}"
    );
    assert_eq!(
        cluster.registrations().await,
        SENDERS,
        "one registration per sender"
    );
}
