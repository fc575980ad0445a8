//! The sharding overlay on the node (deploy/overlays/sharding in an overlay written with the
//! README's commands, `kustomize edit set image` naming the image built here: [`install_overlay`]):
//! two Deployments, each leading through its own Lease and reconciling only the senders labelled
//! with its shard; a sender in no shard is left alone.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;

use super::fixture::{Cluster, SENDERS_NAMESPACE, install_overlay, sender_spec};

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
    // Long enough for any operator to have picked it up (the others were Ready meanwhile).
    tokio::time::sleep(Duration::from_secs(3)).await;
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
