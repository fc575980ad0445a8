//! Running the operator as production does: two replicas with leader election (one active,
//! the standby taking over), shards selected by label, and the metrics and health endpoints.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

use crate::support;
use crate::support::lease;
use crate::support::operator::{Fixture, Operator, condition, sid_of, spec};
use crate::support::wait::Wait;

/// Short, so that a takeover after a crash is quick to test.
const LEASE_SECONDS: u64 = 3;

fn replica_args(ns: &str) -> Vec<String> {
    [
        "--leader-election",
        "--lease-namespace",
        ns,
        "--lease-duration",
        &format!("{LEASE_SECONDS}s"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The Lease's holder identity (`host-PID` outside a pod).
async fn holder(f: &Fixture) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &f.ns);
    let lease = leases.get_opt("senderops").await.expect("read the Lease")?;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// The pid in the Lease holder's identity.
async fn holder_pid(f: &Fixture) -> Option<u32> {
    holder(f).await?.rsplit('-').next()?.parse().ok()
}

/// Polls the Lease until a replica other than `old` holds it (started before `old` goes, so
/// that a release is seen).
fn watch_handover(f: &Fixture, old: String) -> tokio::task::JoinHandle<lease::Handover> {
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &f.ns);
    tokio::spawn(async move {
        lease::next_holder(
            &leases,
            "senderops",
            &old,
            Duration::from_secs(30),
            String::new,
        )
        .await
    })
}

async fn wait_for_holder(f: &Fixture, candidates: &[Option<u32>]) -> u32 {
    Wait::until(format!(
        "one of the replicas {candidates:?} to take the Lease"
    ))
    .within(Duration::from_secs(30))
    .poll_ok(async || match holder_pid(f).await {
        Some(pid) if candidates.contains(&Some(pid)) => Ok(pid),
        other => Err(format!("holder {other:?}")),
    })
    .await
}

// Two workers: the Lease is watched while this thread kills the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_create_each_sender_once_and_the_standby_takes_over() {
    let sim = support::sim::Sim::start().await;
    let plane = support::controlplane::shared();
    let ns = plane.namespace("ha").await;
    let args = replica_args(&ns);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let f = Fixture::with_sim_in(&ns, sim, &args).await;
    let mut second = Operator::start(&ns, &f.sim.base_url(), &args);

    for i in 0..6 {
        let phone = format!("+150055500{i:02}");
        f.sim.number(&phone, "auto_verify").await;
        f.apply(&format!("s{i}"), spec(&phone, json!({}))).await;
    }
    for i in 0..6 {
        f.wait_ready(&format!("s{i}")).await;
    }
    for sender in f.sim.all_senders().await {
        assert_eq!(sender["create_requests"], 1, "created once: {sender}");
    }
    for i in 0..6 {
        let phone = format!("+150055500{i:02}");
        assert_eq!(
            f.sim.create_attempts(&phone).await,
            1,
            "{phone}: one create attempt, by one replica"
        );
    }
    let replicas = [f.operator.pid(), second.pid()];
    let leader = wait_for_holder(&f, &replicas).await;
    let standby_log = if Some(leader) == f.operator.pid() {
        second.log()
    } else {
        f.operator.log()
    };
    assert!(
        !standby_log.contains("senderops started"),
        "the standby reconciled too:\n{standby_log}"
    );

    // The leader crashes: the standby takes over once the Lease has gone unrenewed for its
    // duration (README), not sooner, and not much later.
    let handover = watch_handover(&f, holder(&f).await.expect("a leader"));
    let crashed = Instant::now();
    let mut f = f;
    if Some(leader) == f.operator.pid() {
        f.operator.kill();
    } else {
        second.kill();
    }
    let handover = handover.await.expect("the Lease watch");
    let survivor = [f.operator.pid(), second.pid()];
    wait_for_holder(&f, &survivor).await;
    let unrenewed = handover.unrenewed_before_taken();
    eprintln!(
        "the standby led {:?} after the crash, the Lease unrenewed for {unrenewed:?}",
        handover.taken_at - crashed
    );
    let lease = Duration::from_secs(LEASE_SECONDS);
    assert!(
        !handover.freed_before_expiry(lease),
        "a crashed leader releases nothing: the Lease was free before it ran out"
    );
    assert!(
        unrenewed >= lease,
        "the standby took the Lease {unrenewed:?} after its last renewal, before its {lease:?} ran out"
    );
    // Not much later: a standby that started shortly before the crash, as this one did, trusts
    // no renewal it has not watched for a whole duration from its own start, then retries its
    // take every third of a duration (src/leader/view.rs): 3.4–6.1 s measured for a 3 s Lease.
    assert!(
        unrenewed < 3 * lease,
        "the standby took the Lease {unrenewed:?} after its last renewal ({lease:?} Lease)"
    );
    f.sim.number("+15005550099", "auto_verify").await;
    f.apply("after", spec("+15005550099", json!({}))).await;
    let after = f.wait_ready("after").await;
    assert_eq!(f.sim.sender(&sid_of(&after)).await["create_requests"], 1);
    assert_eq!(f.sim.create_attempts("+15005550099").await, 1);
}

// Two workers: the Lease is watched while this thread waits for the leader to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_releases_the_lease_and_the_standby_leads() {
    let sim = support::sim::Sim::start().await;
    let plane = support::controlplane::shared();
    let ns = plane.namespace("handover").await;
    let args = replica_args(&ns);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut f = Fixture::with_sim_in(&ns, sim, &args).await;
    let leader = wait_for_holder(&f, &[f.operator.pid()]).await;
    let mut second = Operator::start(&ns, &f.sim.base_url(), &args);
    assert_eq!(Some(leader), f.operator.pid());

    // README: "A stopping leader releases it and a standby takes it within a second."
    let handover = watch_handover(&f, holder(&f).await.expect("a leader"));
    let status = f.operator.stop();
    assert!(status.success(), "{status:?}\n{}", f.operator.log_tail(20));
    assert!(
        f.operator.log().contains("released the Lease"),
        "{}",
        f.operator.log_tail(20)
    );
    let handover = handover.await.expect("the Lease watch");
    wait_for_holder(&f, &[second.pid()]).await;
    let took = handover
        .released_to_taken()
        .expect("the stopping leader released the Lease");
    eprintln!("the standby took the released Lease in {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "the standby took the released Lease {took:?} after its release"
    );
    f.sim.number("+15005550001", "auto_verify").await;
    f.apply("acme", spec("+15005550001", json!({}))).await;
    f.wait_ready("acme").await;
    assert!(second.stop().success());
}

/// README: "A leader that loses the Lease stops at once and exits, to restart as a standby."
/// Another holder is written into the Lease while the leader polls a registration that stays
/// CREATING: the leader finds it at its next renewal, exits with a failure (so its pod
/// restarts), sends Twilio nothing after it knew, and leaves the Lease to its new holder.
#[tokio::test]
async fn a_leader_whose_lease_is_taken_exits_and_sends_nothing_more() {
    // Each lifecycle step takes a minute: the sender stays CREATING, polled every 100 ms and
    // backing off, so a leader that went on would keep asking Twilio about it.
    let sim =
        support::sim::Sim::start_with(|config| config.step_delay = Duration::from_secs(60)).await;
    let plane = support::controlplane::shared();
    let ns = plane.namespace("lease-taken").await;
    let args = replica_args(&ns);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut f = Fixture::with_sim_in(&ns, sim, &args).await;
    wait_for_holder(&f, &[f.operator.pid()]).await;
    f.sim.number("+15005550001", "auto_verify").await;
    f.apply("acme", spec("+15005550001", json!({}))).await;
    f.wait_create_at_twilio("+15005550001").await;
    // The leader is polling the registration: what it would go on doing.
    let created = f.sim.requests_total().await;
    Wait::until("the leader to poll the CREATING registration")
        .within(Duration::from_secs(10))
        .poll(async || f.sim.requests_total().await, |now| *now > created)
        .await;

    // What a replica that took the Lease over writes: its identity, a fresh renewal, one
    // transition more. A minute long, so that the old leader cannot see it expire meanwhile.
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &f.ns);
    let thief = "another-replica";
    // MicroTime: the API server parses a Lease's times with exactly six fractional digits.
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    leases
        .patch(
            "senderops",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {
                "holderIdentity": thief,
                "leaseDurationSeconds": 60,
                "acquireTime": now,
                "renewTime": now,
            }})),
        )
        .await
        .expect("write another holder into the Lease");
    let taken = Instant::now();
    let lease = Duration::from_secs(LEASE_SECONDS);
    let exit = Wait::until("the leader that lost its Lease to exit")
        .within(lease)
        .every(Duration::from_millis(20))
        .poll_ok(async || f.operator.exit_status().ok_or("still running"))
        .await;
    // It renews a third of the duration before expiry (src/leader), so it learns within
    // two thirds of one.
    eprintln!(
        "the leader exited {:?} after its Lease was taken",
        taken.elapsed()
    );
    assert!(
        !exit.success(),
        "exits with a failure, to be restarted: {exit:?}"
    );
    let log = f.operator.log();
    let lost = log
        .find("lost the Lease to another replica")
        .unwrap_or_else(|| panic!("no word of the lost Lease:\n{}", f.operator.log_tail(20)));
    let after_loss = &log[lost..];
    assert!(
        !after_loss.contains("twilio_request"),
        "a Twilio request after the leader knew it lost the Lease:\n{after_loss}"
    );
    assert_eq!(
        holder(&f).await.as_deref(),
        Some(thief),
        "the exiting leader gave the Lease back to no one or took it back"
    );
}

#[tokio::test]
async fn a_shard_reconciles_only_the_senders_it_selects() {
    let f = Fixture::with_args("shard", &["--selector", "senderops.io/shard=a"]).await;
    f.sim.number("+15005550001", "auto_verify").await;
    f.sim.number("+15005550002", "auto_verify").await;
    // The other shard's sender goes first: an operator that watched it would have it in its
    // cache before the selected one, whose reconcile comes after its own watch event.
    f.apply("theirs", spec("+15005550002", json!({}))).await;
    f.senders
        .patch(
            "mine",
            &kube::api::PatchParams::apply("tests").force(),
            &kube::api::Patch::Apply(json!({
                "apiVersion": "messaging.senderops.io/v1alpha1",
                "kind": "WhatsAppSender",
                "metadata": {"name": "mine", "labels": {"senderops.io/shard": "a"}},
                "spec": spec("+15005550001", json!({})),
            })),
        )
        .await
        .unwrap();
    f.wait_ready("mine").await;
    let metrics = support::metrics::scrape(&f.operator).await;
    let known = support::metrics::sum(&metrics, "senderops_senders", &[("namespace", &f.ns)]);
    assert_eq!(
        known, 1.0,
        "the operator's cache holds only the selected sender:\n{metrics}"
    );
    let theirs = f.get("theirs").await.unwrap();
    assert!(
        theirs.status.is_none(),
        "another shard's sender was touched"
    );
    assert!(theirs.metadata.finalizers.is_none());
    assert!(f.sim_senders_for("+15005550002").await.is_empty());
    assert_eq!(f.sim.create_attempts("+15005550002").await, 0);
}

#[tokio::test]
async fn metrics_and_health_are_served() {
    let f = Fixture::new("metrics").await;
    f.sim.number("+15005550001", "auto_verify").await;
    f.apply("acme", spec("+15005550001", json!({}))).await;
    let sender = f.wait_ready("acme").await;
    assert_eq!(condition(&sender, "Ready").unwrap().status, "True");

    let base = f.operator.metrics_url().await;
    let http = reqwest::Client::new();
    for probe in ["/healthz", "/readyz"] {
        let response = http.get(format!("{base}{probe}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{probe}");
    }
    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let ns = &f.ns;
    for needle in [
        r#"senderops_reconciles_total{controller="whatsappsender",outcome="success"}"#.to_string(),
        r#"senderops_twilio_requests_total{operation="create",status_code="202"} 1"#.to_string(),
        r#"senderops_twilio_request_duration_seconds_count{operation="fetch"}"#.to_string(),
        r#"senderops_reconcile_duration_seconds_count{controller="whatsappsender"}"#.to_string(),
        format!(r#"senderops_senders{{namespace="{ns}",twilio_status="ONLINE"}} 1"#),
        format!(r#"senderops_senders_by_quality{{namespace="{ns}",quality_rating="HIGH"}} 1"#),
        format!(r#"senderops_senders_stalled{{namespace="{ns}"}} 0"#),
        "senderops_leader 1".to_string(),
    ] {
        assert!(text.contains(&needle), "{needle} missing from\n{text}");
    }
}
