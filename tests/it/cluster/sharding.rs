//! The sharding overlay on the node (deploy/overlays/sharding in an overlay written with the
//! README's commands, `kustomize edit set image` naming the image built here: [`install_overlay`]):
//! three Deployments, shards a and b and the default shard, each leading through its own Lease and
//! reconciling only its senders: a and b those labelled with their value, the default shard
//! every other one (a value no shard names, or no label at all).

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;

use super::fixture::{
    Cluster, SENDERS_NAMESPACE, install_overlay, name_of, scrape_pod, sender_spec,
};
use crate::support::metrics::sum;

/// The overlay's shards: its Deployments are `senderops-shard-SHARD`, its Leases too.
const SHARDS: [&str; 3] = ["a", "b", "default"];

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
    for shard in SHARDS {
        cluster
            .wait_available(&format!("senderops-shard-{shard}"), 2)
            .await;
    }

    let mut leaders = Vec::new();
    for shard in SHARDS {
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

    // (sender, its labels, the shard that reconciles it, its number)
    let senders = [
        (
            "shard-a",
            json!({"senderops.io/shard": "a"}),
            "a",
            "+15017122700",
        ),
        (
            "shard-b",
            json!({"senderops.io/shard": "b"}),
            "b",
            "+15017122701",
        ),
        // A value no shard names (a typo) and no label at all: the default shard's.
        (
            "mislabelled",
            json!({"senderops.io/shard": "c"}),
            "default",
            "+15017122708",
        ),
        ("no-shard", json!({}), "default", "+15017122709"),
    ];
    for (name, labels, _, phone) in &senders {
        cluster.sim.number(phone, "auto_verify").await;
        cluster
            .apply_sender(name, sender_spec(phone, None), labels.clone())
            .await;
    }
    let names: Vec<String> = senders.iter().map(|s| s.0.to_string()).collect();
    cluster.wait_ready(&names).await;

    for (name, _, shard, _) in &senders {
        let leader = &leaders[SHARDS.iter().position(|s| s == shard).unwrap()];
        let reported = reporters(&cluster, name).await;
        assert!(!reported.is_empty(), "sender {name} has Events");
        assert!(
            reported.iter().all(|r| r == leader),
            "{name}'s Events all come from shard {shard}'s leader {leader}: {reported:?}"
        );
    }
    // What each shard's leader holds: its cache (`senderops_senders`, every sender it watches,
    // reconciled or not) has its own senders and nothing else, so no replica ever had another
    // shard's sender to reconcile. Standbys hold no cache.
    let pods = cluster.pods("app.kubernetes.io/name=senderops").await;
    for (shard, leader) in SHARDS.iter().zip(&leaders) {
        let own = senders.iter().filter(|s| s.2 == *shard).count();
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
            own as f64,
            "shard {shard}'s leader {leader} watches only its {own} sender(s):\n{metrics}"
        );
    }
    assert_eq!(
        cluster.registrations().await,
        senders.len(),
        "every sender was registered, by its shard"
    );
    let not_once = cluster.numbers_not_created_once().await;
    assert!(
        not_once.is_empty(),
        "one create attempt per sender's number: {not_once:?}"
    );
}
