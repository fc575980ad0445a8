//! The sharding overlay on the node (deploy/overlays/sharding in an overlay written with the
//! README's commands, `kustomize edit set image` naming the image built here: [`install_overlay`]):
//! two Deployments, each leading through its own Lease and reconciling only the senders labelled
//! with its shard; a sender in no shard is left alone.

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;

use super::fixture::{
    Cluster, SENDERS_NAMESPACE, install_overlay, name_of, scrape_pod, sender_spec,
};
use crate::support::metrics::sum;

/// Who reported the Events of sender `name` (the pod name: `reportingInstance`).
async fn reporters(cluster: &Cluster, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), SENDERS_NAMESPACE);
    events
        .list(&ListParams::default().fields(&format!("regarding.name={name}")))
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter_map(|e| e.reporting_instance)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_leads_through_its_own_lease_and_reconciles_only_its_senders() {
    let cluster = Cluster::start("sharding").await;
    let overlay = install_overlay("sharding", "deploy/overlays/sharding");
    cluster
        .kubectl(&["apply", "-k", overlay.path().to_str().unwrap()])
        .expect_success("kubectl apply -k of the README's overlay on deploy/overlays/sharding");
    for shard in ["a", "b"] {
        cluster
            .wait_available(&format!("senderops-shard-{shard}"), 2)
            .await;
    }

    let mut leaders = Vec::new();
    for shard in ["a", "b"] {
        let leader = cluster
            .leader_pod(&format!("senderops-shard-{shard}"))
            .await;
        assert!(
            leader.starts_with(&format!("senderops-shard-{shard}-")),
            "shard {shard}'s Lease is held by one of its own pods: {leader}"
        );
        leaders.push(leader);
    }
    assert!(
        cluster.lease_holder("senderops").await.is_none(),
        "no shard takes the unsharded Lease"
    );

    for (i, shard) in ["a", "b"].iter().enumerate() {
        let phone = format!("+1501712270{i}");
        cluster.sim.number(&phone, "auto_verify").await;
        cluster
            .apply_sender(
                &format!("shard-{shard}"),
                sender_spec(&phone, None),
                json!({"senderops.io/shard": shard}),
            )
            .await;
    }
    cluster.sim.number("+15017122709", "auto_verify").await;
    cluster
        .apply_sender("no-shard", sender_spec("+15017122709", None), json!({}))
        .await;
    cluster
        .wait_ready(&["shard-a".to_string(), "shard-b".to_string()])
        .await;

    for (shard, leader) in ["a", "b"].iter().zip(&leaders) {
        let reported = reporters(&cluster, &format!("shard-{shard}")).await;
        assert!(!reported.is_empty(), "sender shard-{shard} has Events");
        assert!(
            reported.iter().all(|r| r == leader),
            "shard-{shard}'s Events all come from its shard's leader {leader}: {reported:?}"
        );
    }
    // What each shard's leader holds: its cache (`senderops_senders`, every sender it watches,
    // reconciled or not) has its own sender and nothing else, so no replica ever had the
    // unlabelled one to reconcile. Standbys hold no cache.
    let pods = cluster.pods("app.kubernetes.io/name=senderops").await;
    for (shard, leader) in ["a", "b"].iter().zip(&leaders) {
        let pod = pods
            .iter()
            .find(|p| name_of(p) == *leader)
            .unwrap_or_else(|| panic!("shard {shard}'s leader {leader} is not among the pods"));
        let metrics = scrape_pod(pod).await;
        assert_eq!(
            sum(
                &metrics,
                "senderops_senders",
                &[("namespace", SENDERS_NAMESPACE)]
            ),
            1.0,
            "shard {shard}'s leader {leader} watches only shard-{shard}:\n{metrics}"
        );
    }
    let unsharded = cluster
        .senders()
        .get("no-shard")
        .await
        .expect("read no-shard");
    assert!(
        unsharded.status.is_none() && unsharded.metadata.finalizers.is_none(),
        "a sender in no shard is reconciled by nobody: {:?}",
        unsharded.status
    );
    assert!(reporters(&cluster, "no-shard").await.is_empty());
    assert_eq!(
        cluster.registrations().await,
        2,
        "only the shards' senders were registered"
    );
    let not_once = cluster.numbers_not_created_once().await;
    assert!(
        not_once.is_empty(),
        "one create attempt per shard's number: {not_once:?}"
    );
    assert_eq!(
        cluster.sim.create_attempts("+15017122709").await,
        0,
        "no create for the sender in no shard"
    );
}
