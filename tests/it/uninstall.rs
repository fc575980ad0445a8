//! Uninstalling never deregisters a number. Deleting the WhatsAppSender CRD makes the API server
//! delete every WhatsAppSender; `kubectl delete -k deploy/` and a GitOps prune of the CRD do
//! that. The operator reads its CRD live before any deletion at Twilio and, seeing it deleted,
//! lets each object go as `Orphan` would, with an Event, and sends Twilio no DELETE.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::Api;
use senderops::api::WhatsAppSender;
use serde_json::json;

use crate::support::controlplane::{self, repo_root};
use crate::support::deploy::{one_of, parse_yaml};
use crate::support::operator::{Fixture, sid_of, spec};
use crate::support::sim::{Sim, requests_in};
use crate::support::wait::Wait;

#[tokio::test]
async fn deleting_the_crd_under_a_running_operator_deregisters_no_number() {
    // Its own control plane: the test deletes the CRD every other test needs.
    let plane = controlplane::dedicated("uninstall-crd");
    let ns = plane.namespace("uninstall").await;
    let mut f = Fixture::on_plane(plane, &ns, Sim::start().await, &[]).await;
    let senders = [("acme", "+15005550001"), ("beta", "+15005550002")];
    let mut sids = Vec::new();
    for (name, phone) in senders {
        f.sim.number(phone, "auto_verify").await;
        // The default policy, Delete: what an uninstall must not carry out.
        f.apply(name, spec(phone, json!({}))).await;
    }
    for (name, _) in senders {
        sids.push(sid_of(&f.wait_ready(name).await));
    }
    // A suspended sender's deletion waits for the user (Stalled), but not an uninstall's.
    f.patch("beta", json!({"spec": {"suspend": true}})).await;
    f.wait_condition("beta", "Synced", "False", "Suspended")
        .await;

    // As deploy/README says: `kubectl delete crd …`, which returns once the CRD is gone, which
    // the API server allows only once every WhatsAppSender is (their finalizers released).
    // (A deadline, so that a finalizer never released fails the test instead of hanging it.)
    let kubectl =
        plane
            .kubectl()
            .args(["delete", "crd", WhatsAppSender::crd_name(), "--timeout=60s"]);
    let deleted = tokio::task::spawn_blocking(move || kubectl.run())
        .await
        .expect("run kubectl");
    deleted.expect_success("kubectl delete crd whatsappsenders.messaging.senderops.io");
    // The fault happened: the CRD is gone, and with it every object.
    let crds: Api<CustomResourceDefinition> = Api::all(f.client.clone());
    assert!(
        crds.get_opt(WhatsAppSender::crd_name())
            .await
            .expect("read the CRD")
            .is_none(),
        "the CRD is gone once kubectl returns"
    );

    let deletes = requests_in(&f.sim.stats().await, |r| r["method"] == "DELETE");
    assert_eq!(deletes, 0, "no DELETE reached Twilio, whatever its answer");
    for ((name, phone), sid) in senders.iter().zip(&sids) {
        let at_twilio = f.sim.sender(sid).await;
        assert_eq!(
            at_twilio["status"], "ONLINE",
            "{name}'s number {phone} is still registered: {at_twilio}"
        );
        let orphaned: Vec<_> = f
            .events(name)
            .await
            .into_iter()
            .filter(|(kind, reason, _)| kind == "Warning" && reason == "Orphaned")
            .collect();
        assert_eq!(
            orphaned.len(),
            1,
            "{name}: one Orphaned Event: {orphaned:?}"
        );
        assert!(
            orphaned[0].2.contains(sid.as_str()) && orphaned[0].2.contains("CRD is being deleted"),
            "{name}: the Event says which sender was left and why: {}",
            orphaned[0].2
        );
    }

    // Meanwhile the operator waits, unready, instead of exiting into a crash loop; with the CRD
    // back it is ready again and its watches resume.
    let readyz = format!("{}/readyz", f.operator.metrics_url().await);
    let status = async || {
        reqwest::get(&readyz)
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    Wait::until("the operator to report not ready while its CRD is gone")
        .within(Duration::from_secs(15))
        .context(|| f.operator.log_tail(20))
        .poll(status, |code| *code == 503)
        .await;
    let log = f.operator.log_tail(20);
    assert!(f.operator.is_running(), "{log}");
    tokio::task::spawn_blocking(move || plane.install_crds())
        .await
        .expect("install the CRD again");
    Wait::until("the operator to be ready again with its CRD back")
        .within(Duration::from_secs(15))
        .context(|| f.operator.log_tail(20))
        .poll(status, |code| *code == 200)
        .await;
    f.sim.number("+15005550003", "auto_verify").await;
    f.apply("after", spec("+15005550003", json!({}))).await;
    f.wait_ready("after").await;
    assert_eq!(
        f.operator.log().matches("senderops started").count(),
        1,
        "the same operator process throughout:\n{}",
        f.operator.log_tail(20)
    );
    drop(f);
    plane.stop();
}

/// deploy/README (GitOps): the CRD tells Argo CD and Flux never to prune or delete it, and the
/// chart ships it in `crds/`, which Helm never deletes.
#[test]
fn gitops_tools_never_prune_the_crd_and_helm_never_deletes_it() {
    for path in [
        "crds/whatsappsender.yaml",
        "deploy/helm/senderops/crds/whatsappsender.yaml",
    ] {
        let text = std::fs::read_to_string(repo_root().join(path))
            .unwrap_or_else(|e| panic!("read {path}: {e}"));
        let objects = parse_yaml(&text);
        let annotations = &one_of(&objects, "CustomResourceDefinition")["metadata"]["annotations"];
        assert_eq!(
            annotations["argocd.argoproj.io/sync-options"], "Prune=false,Delete=false",
            "{path}"
        );
        assert_eq!(
            annotations["kustomize.toolkit.fluxcd.io/prune"], "disabled",
            "{path}"
        );
    }
}
