//! Leader failover as Pods: the leader's pod deleted (a graceful release: the standby takes the
//! Lease within a second) and, on its own, the leader's container killed (no release: the
//! standby takes it once the Lease has gone unrenewed for its duration). Each time it is the
//! standby that leads, not the replacement pod or the restarted container, a sender applied
//! meanwhile becomes Ready, and Twilio holds one registration per number.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use super::fixture::{
    Cluster, LEASE_DURATION, OPERATOR_NAMESPACE, container_id, name_of, pod_of_holder, sender_spec,
};
use super::node::ctr;
use crate::support::controlplane::repo_root;
use crate::support::lease;

const SELECTOR: &str = "app.kubernetes.io/name=senderops";
const LEASE: &str = "senderops";
/// README: "A stopping leader releases it and a standby takes it within a second."
const RELEASED_HANDOVER: Duration = Duration::from_secs(1);
/// After a kill the standby takes the Lease once it has gone unrenewed for its duration (its
/// own clock starts when it saw the last renewal), plus the conditional write: by the Lease's
/// timestamps, between the duration and this.
const KILLED_UNRENEWED_MAX: Duration = Duration::from_secs(LEASE_DURATION.as_secs() + 3);

/// Watches the Lease until its holder is not `old`.
async fn next_holder(cluster: &Cluster, old: &str, within: Duration) -> lease::Handover {
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    let pods = || {
        cluster
            .kubectl(&["-n", OPERATOR_NAMESPACE, "get", "pods", "-o", "wide"])
            .stdout
    };
    lease::next_holder(&leases, LEASE, old, within, pods).await
}

async fn pod(cluster: &Cluster, name: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    pods.get(name)
        .await
        .unwrap_or_else(|e| panic!("read pod {name}: {e}"))
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs[0].restart_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_leads_when_the_leader_pod_is_deleted_and_when_its_container_is_killed() {
    let cluster = Cluster::start("failover").await;
    let overlay = repo_root().join("hack/node/install/node");
    cluster
        .kubectl(&["apply", "-k", overlay.to_str().unwrap()])
        .expect_success("kubectl apply -k hack/node/install/node");
    cluster.wait_available("senderops", 2).await;
    cluster.sim.number("+15017122671", "auto_verify").await;
    cluster
        .apply_sender("before", sender_spec("+15017122671", None), json!({}))
        .await;
    cluster.wait_ready(&["before".to_string()]).await;

    // 1. The leader's pod deleted: it releases the Lease on SIGTERM, the standby takes it.
    let holder = cluster.lease_holder(LEASE).await.expect("a leader");
    let leader = pod_of_holder(&holder).to_string();
    let pods = cluster.pods(SELECTOR).await;
    let standby = pods
        .iter()
        .map(name_of)
        .find(|p| *p != leader)
        .expect("a standby");
    let pod_api: Api<Pod> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    pod_api
        .delete(&leader, &DeleteParams::default())
        .await
        .expect("delete the leader's pod");
    let handover = next_holder(&cluster, &holder, Duration::from_secs(30)).await;
    let handover_took = handover.released_to_taken().unwrap_or_else(|| {
        panic!(
            "the deleted leader never released the Lease (it went from {holder} to {})",
            handover.new_holder
        )
    });
    eprintln!("leader pod deleted: the standby took the released Lease in {handover_took:?}");
    assert_eq!(
        pod_of_holder(&handover.new_holder),
        standby,
        "the standby leads, not the replacement pod"
    );
    assert!(
        handover_took < RELEASED_HANDOVER,
        "the standby took the released Lease {handover_took:?} after its release"
    );
    cluster.sim.number("+15017122672", "needs_code").await;
    cluster
        .apply_sender(
            "during-release",
            sender_spec("+15017122672", Some("during-release-otp")),
            json!({}),
        )
        .await;
    cluster.wait_ready(&["during-release".to_string()]).await;
    cluster.wait_available("senderops", 2).await;

    // 2. The leader's container killed: no release; the standby takes the Lease once it has
    // gone unrenewed for its duration, before the restarted container (a new candidate) can.
    let holder = cluster.lease_holder(LEASE).await.expect("a leader");
    let leader = pod_of_holder(&holder).to_string();
    let pods = cluster.pods(SELECTOR).await;
    let standby = pods
        .iter()
        .map(name_of)
        .find(|p| *p != leader)
        .expect("a standby");
    let leader_pod = pod(&cluster, &leader).await;
    let restarts_before = restarts(&leader_pod);
    let id = container_id(&leader_pod);
    let task = id.trim_start_matches("containerd://");
    let killed = Instant::now();
    let out = ctr(&["tasks", "kill", "--signal", "SIGKILL", task]);
    assert!(
        out.status.success(),
        "SIGKILL the leader's container: {out:?}"
    );
    cluster.sim.number("+15017122673", "auto_verify").await;
    cluster
        .apply_sender("during-kill", sender_spec("+15017122673", None), json!({}))
        .await;
    // The Lease is watched from the kill on: the watch's first event is the Lease as it stands.
    let handover = next_holder(
        &cluster,
        &holder,
        KILLED_UNRENEWED_MAX + Duration::from_secs(10),
    )
    .await;
    let unrenewed = handover.unrenewed_before_taken();
    eprintln!(
        "leader container killed: the standby took the Lease {:?} after the kill, {unrenewed:?} \
         after its last renewal",
        handover.taken_at - killed
    );
    assert!(
        !handover.freed_before_expiry(LEASE_DURATION),
        "a killed leader releases nothing: the Lease was free before it ran out"
    );
    // The kill happened where its name says: the leader's container restarted in its pod.
    let began = Instant::now();
    while restarts(&pod(&cluster, &leader).await) == restarts_before {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{leader}'s container was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let terminated = pod(&cluster, &leader)
        .await
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs[0].last_state.clone())
        .and_then(|s| s.terminated);
    assert_eq!(
        terminated.map(|t| t.exit_code),
        Some(137),
        "the leader's container died of SIGKILL"
    );
    assert_eq!(
        pod_of_holder(&handover.new_holder),
        standby,
        "the standby leads, not the leader's restarted container ({})",
        handover.new_holder
    );
    assert!(
        unrenewed >= LEASE_DURATION,
        "the standby took the Lease {unrenewed:?} after its last renewal, before the \
         {LEASE_DURATION:?} Lease ran out"
    );
    assert!(
        unrenewed < KILLED_UNRENEWED_MAX,
        "the standby took the Lease {unrenewed:?} after its last renewal ({LEASE_DURATION:?} Lease)"
    );
    cluster.wait_ready(&["during-kill".to_string()]).await;
    let not_once = cluster.numbers_not_created_once().await;
    assert!(
        not_once.is_empty(),
        "one create attempt per number: {not_once:?}"
    );
    assert_eq!(
        cluster.registrations().await,
        3,
        "three senders, three registrations"
    );
}
