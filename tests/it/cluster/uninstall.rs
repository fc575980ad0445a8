//! Uninstalling on the node as deploy/README says: `kubectl delete -k` of the install overlay in
//! one go (the CRD, the operator's namespace and RBAC together) deregisters no number. What it
//! leaves is what the README says, and the README's commands finish the job, still deleting
//! nothing at Twilio.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams};
use senderops::api::WhatsAppSender;
use serde_json::json;

use super::fixture::{Cluster, OPERATOR_NAMESPACE, install_overlay, sender_spec};
use crate::support::deploy::documented_command_in;
use crate::support::sim::requests_in;

const DOC: &str = "deploy/README.md";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_k_deregisters_no_number_and_the_readmes_commands_finish_it() {
    let cluster = Cluster::start("uninstall").await;
    let overlay = install_overlay("uninstall", "deploy");
    let overlay = overlay.path().to_str().unwrap().to_string();
    cluster
        .kubectl(&["apply", "-k", &overlay])
        .expect_success("kubectl apply -k of the README's overlay");
    cluster.wait_available("senderops", 2).await;
    let mut names = Vec::new();
    for (i, phone) in ["+15017122650", "+15017122651"].iter().enumerate() {
        cluster.sim.number(phone, "auto_verify").await;
        let name = format!("uninstall-{i}");
        // The default deletionPolicy, Delete: what an uninstall must not carry out.
        cluster
            .apply_sender(&name, sender_spec(phone, None), json!({}))
            .await;
        names.push(name);
    }
    cluster.wait_ready(&names).await;
    let registered = cluster.sim.all_senders().await.len();
    assert_eq!(registered, names.len());

    // deploy/README's `kubectl delete -k deploy/`, of the overlay that installed it. Not waited
    // for: it may wait for objects the operator did not get to let go, as the README says.
    let documented = documented_command_in(DOC, "kubectl delete -k");
    assert_eq!(documented, ["kubectl", "delete", "-k", "deploy/"]);
    cluster
        .kubectl(&["delete", "-k", &overlay, "--wait=false"])
        .expect_success("kubectl delete -k of the install overlay");

    // Settled: the operator's pods are gone, and so is the CRD or every object left holds the
    // finalizer nobody will remove.
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let began = Instant::now();
    let left = loop {
        let pods = cluster.pods("app.kubernetes.io/name=senderops").await;
        let crd = crds
            .get_opt(WhatsAppSender::crd_name())
            .await
            .expect("read the CRD");
        let left: Vec<String> = match &crd {
            None => Vec::new(),
            Some(_) => cluster
                .senders()
                .list(&ListParams::default())
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .map(|s| s.metadata.name.clone().unwrap())
                        .collect()
                })
                .unwrap_or_default(),
        };
        let operator_gone = pods.is_empty()
            && cluster
                .kubectl(&["get", "namespace", OPERATOR_NAMESPACE])
                .stderr
                .contains("NotFound");
        if operator_gone && (crd.is_none() || !left.is_empty()) {
            break left;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the uninstall did not settle: {} operator pods, CRD {}, objects {left:?}",
            pods.len(),
            if crd.is_some() { "present" } else { "gone" }
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "kubectl delete -k settled with {} objects left Terminating",
        left.len()
    );
    let stats = cluster.sim.stats().await;
    assert_eq!(
        requests_in(&stats, |r| r["method"] == "DELETE"),
        0,
        "no DELETE reached Twilio, whatever its answer"
    );
    assert_eq!(cluster.sim.all_senders().await.len(), registered);

    // What is left, removed as the README says: each object's finalizer, then the CRD goes.
    let listed = documented_command_in(DOC, "get whatsappsenders -A");
    assert_eq!(listed, ["kubectl", "get", "whatsappsenders", "-A"]);
    let shown = cluster
        .kubectl(&["get", "whatsappsenders", "-A"])
        .expect_success("list what is left as deploy/README says");
    for name in &left {
        assert!(shown.stdout.contains(name.as_str()), "{}", shown.stdout);
    }
    for name in &left {
        let mut patch = documented_command_in(DOC, "patch whatsappsender");
        assert_eq!(patch[0], "kubectl");
        for word in &mut patch {
            *word = word
                .replace("NAMESPACE", super::fixture::SENDERS_NAMESPACE)
                .replace("NAME", name);
        }
        let args: Vec<&str> = patch[1..].iter().map(String::as_str).collect();
        cluster
            .kubectl(&args)
            .expect_success(&format!("remove {name}'s finalizer as deploy/README says"));
    }
    let began = Instant::now();
    while crds
        .get_opt(WhatsAppSender::crd_name())
        .await
        .expect("read the CRD")
        .is_some()
    {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the CRD stayed after the README's commands"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        requests_in(&cluster.sim.stats().await, |r| r["method"] == "DELETE"),
        0,
        "nor after the finalizers were removed"
    );
    assert_eq!(cluster.sim.all_senders().await.len(), registered);
}
