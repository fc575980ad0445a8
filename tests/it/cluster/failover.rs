//! Leader failover as Pods: the leader's pod deleted (a graceful release: the standby takes the
//! Lease within about a second) and, on its own, the leader's container killed (no release: the
//! standby takes it once the Lease has gone unrenewed for its duration). Each time it is the
//! standby that leads, not the replacement pod or the restarted container, a sender applied
//! meanwhile becomes Ready, and Twilio holds one registration per number.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use super::fixture::{
    Cluster, LEASE_DURATION, OPERATOR_NAMESPACE, container_id, name_of, pod_of_holder, sender_spec,
};
use super::node::ctr;
use crate::support::controlplane::repo_root;

const SELECTOR: &str = "app.kubernetes.io/name=senderops";
const LEASE: &str = "senderops";
/// "At once" after a graceful release: the standby watches the Lease.
const RELEASED_HANDOVER: Duration = Duration::from_millis(1500);
/// After a kill: the Lease's duration from the last renewal the standby saw, plus the take (the
/// Lease library waits up to a second after clearing an expired Lease) and the test's polling.
const KILLED_HANDOVER: Duration = Duration::from_secs(LEASE_DURATION.as_secs() + 3);

/// Polls the Lease until its holder is not `old`; returns the new holder and when the Lease was
/// first seen released (if it was) and taken.
async fn next_holder(
    cluster: &Cluster,
    old: &str,
    within: Duration,
) -> (String, Option<Instant>, Instant) {
    let began = Instant::now();
    let mut released = None;
    loop {
        match cluster.lease_holder(LEASE).await {
            Some(holder) if holder != old => return (holder, released, Instant::now()),
            None => {
                released.get_or_insert_with(Instant::now);
            }
            Some(_) => {}
        }
        assert!(
            began.elapsed() < within,
            "the Lease was still held by {old} (or nobody) {within:?} later; pods:\n{}",
            cluster
                .kubectl(&["-n", OPERATOR_NAMESPACE, "get", "pods", "-o", "wide"])
                .stdout
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let (new_holder, released, taken) =
        next_holder(&cluster, &holder, Duration::from_secs(30)).await;
    let released = released.unwrap_or_else(|| {
        panic!(
            "the deleted leader never released the Lease (it went from {holder} to {new_holder})"
        )
    });
    let handover = taken - released;
    eprintln!("leader pod deleted: the standby took the released Lease in {handover:?}");
    assert_eq!(
        pod_of_holder(&new_holder),
        standby,
        "the standby leads, not the replacement pod"
    );
    assert!(
        handover < RELEASED_HANDOVER,
        "the standby took the released Lease {handover:?} after its release"
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
    let (new_holder, released, taken) =
        next_holder(&cluster, &holder, KILLED_HANDOVER + Duration::from_secs(5)).await;
    let handover = taken - killed;
    eprintln!("leader container killed: the standby took the Lease {handover:?} after the kill");
    assert!(
        released.is_none() || released.unwrap() - killed > Duration::from_secs(1),
        "a killed leader releases nothing"
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
        pod_of_holder(&new_holder),
        standby,
        "the standby leads, not the leader's restarted container ({new_holder})"
    );
    assert!(
        handover < KILLED_HANDOVER,
        "the standby took the Lease {handover:?} after the kill (Lease {LEASE_DURATION:?})"
    );
    cluster.wait_ready(&["during-kill".to_string()]).await;
    assert!(
        cluster.duplicates().await.is_empty(),
        "one registration per number: {:?}",
        cluster.duplicates().await
    );
    assert_eq!(
        cluster.registrations().await,
        3,
        "three senders, three registrations"
    );
}
