//! `kubectl rollout restart` in the middle of onboarding ten senders (half need a code): every
//! replica is replaced while registrations are under way (one code is withheld until a new pod
//! leads), and still every sender becomes Ready with one registration each at Twilio.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use super::fixture::{
    AVAILABLE_TIMEOUT, Cluster, OPERATOR_NAMESPACE, SENDER_READY_TIMEOUT, name_of, sender_spec,
};
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

    // The restart must fall in the middle of onboarding: fleet-1's code is withheld until a
    // pod of the new ReplicaSet leads, so an old pod registers it and a new one finishes it.
    let withheld = "fleet-1";
    let began = Instant::now();
    loop {
        cluster.provide_codes_except(&[withheld]).await;
        let sender = cluster
            .senders()
            .get(withheld)
            .await
            .expect("read a sender");
        if condition(&sender, "Ready").is_some_and(|c| c.reason == "WaitingForCode") {
            break;
        }
        assert!(
            began.elapsed() < SENDER_READY_TIMEOUT,
            "{withheld} did not come to wait for its code: {:?}",
            sender.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let registered_by_old = cluster.registrations().await;
    eprintln!(
        "rollout restart with {registered_by_old} of {SENDERS} numbers registered, {withheld} \
         waiting for its code"
    );
    cluster
        .kubectl(&[
            "-n",
            OPERATOR_NAMESPACE,
            "rollout",
            "restart",
            "deployment/senderops",
        ])
        .expect_success("kubectl rollout restart");
    let began = Instant::now();
    let new_leader = loop {
        let leader = cluster.leader_pod("senderops").await;
        if !before.contains(&leader) {
            break leader;
        }
        assert!(
            began.elapsed() < AVAILABLE_TIMEOUT,
            "no new pod led within {AVAILABLE_TIMEOUT:?}; the Lease names {leader}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sender = cluster
        .senders()
        .get(withheld)
        .await
        .expect("read a sender");
    assert!(
        condition(&sender, "Ready").is_some_and(|c| c.status != "True"),
        "{withheld} is still onboarding when {new_leader} leads: {:?}",
        sender.status
    );
    eprintln!("{new_leader} leads; now the user reads {withheld}'s code");
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
