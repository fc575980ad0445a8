//! `helm install` of the chart as the README says, the image given by the README's very line
//! (`--set image.repository=REGISTRY/senderops --set image.tag=TAG`, naming the image built here),
//! plus `--set` for its pull policy, twilio-sim's URL and the simulator's timescale (no
//! registration spacing): the same two replicas, one leading, senders Ready. `--create-namespace`
//! gives a namespace without Pod Security enforcement, which the chart's notes say and tell how to
//! fix; the fix, once applied, enforces the restricted standard that the operator's pods meet.

use serde_json::json;

use super::fixture::{Cluster, OPERATOR_NAMESPACE, sender_spec};
use super::node::{IMAGE, NODE_IP};
use super::relay::PORT;
use crate::support::deploy::{CHART, documented_command, helm};

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const LABEL_HINT: &str =
    "kubectl label namespace senderops pod-security.kubernetes.io/enforce=restricted";

fn helm_on(cluster: &Cluster, args: &[&str]) -> crate::support::deploy::HelmOutput {
    let kubeconfig = cluster
        .node
        .kubeconfig()
        .to_str()
        .expect("a UTF-8 path")
        .to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--kubeconfig", &kubeconfig]);
    tokio::task::block_in_place(|| helm(&all))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_runs_the_operator_and_its_notes_say_how_to_enforce_pod_security() {
    let cluster = Cluster::start("helm").await;
    // The README's line, word for word, with the image built here for REGISTRY/senderops:TAG.
    let documented = documented_command("--set image.repository=", IMAGE);
    assert_eq!(
        documented[..7],
        [
            "helm",
            "install",
            "senderops",
            CHART,
            "-n",
            OPERATOR_NAMESPACE,
            "--create-namespace"
        ],
        "the README's helm install with the image: {documented:?}"
    );
    let (repository, tag) = IMAGE.rsplit_once(':').unwrap();
    assert_eq!(
        documented[7..],
        [
            "--set".to_string(),
            format!("image.repository={repository}"),
            "--set".to_string(),
            format!("image.tag={tag}"),
        ],
        "the README's helm install sets the image's repository and tag: {documented:?}"
    );
    let twilio = format!("twilio.apiUrl=http://{NODE_IP}:{PORT}");
    let mut args: Vec<&str> = documented[1..].iter().map(String::as_str).collect();
    args.extend([
        "--set",
        "image.pullPolicy=Never",
        "--set",
        &twilio,
        "--set",
        "twilio.registrationInterval=0s",
    ]);
    let install = helm_on(&cluster, &args);
    assert!(
        install.success,
        "helm install:\n{}{}",
        install.stdout, install.stderr
    );
    cluster.wait_available("senderops", 2).await;
    let leader = cluster.leader_pod("senderops").await;
    assert!(
        leader.starts_with("senderops-"),
        "a replica of the release leads: {leader}"
    );

    cluster.sim.number("+15017122691", "needs_code").await;
    cluster
        .apply_sender(
            "helm-sender",
            sender_spec("+15017122691", Some("helm-sender-otp")),
            json!({}),
        )
        .await;
    cluster.wait_ready(&["helm-sender".to_string()]).await;
    let not_once = cluster.numbers_not_created_once().await;
    assert!(
        not_once.is_empty(),
        "one create attempt per number: {not_once:?}"
    );

    // --create-namespace made a namespace without Pod Security labels; the notes say so.
    let labels = |cluster: &Cluster| {
        cluster
            .kubectl(&[
                "get",
                "namespace",
                OPERATOR_NAMESPACE,
                "-o",
                &format!(
                    "jsonpath={{.metadata.labels.{}}}",
                    ENFORCE.replace('.', "\\.")
                ),
            ])
            .expect_success("read the namespace's labels")
            .stdout
    };
    assert_eq!(
        labels(&cluster),
        "",
        "helm --create-namespace sets no Pod Security label"
    );
    assert!(
        install
            .stdout
            .contains("does not enforce the restricted Pod Security Standard")
            && install.stdout.contains(LABEL_HINT),
        "the notes tell how to enforce it:\n{}",
        install.stdout
    );

    // The notes' command: then the namespace enforces restricted, and the operator meets it.
    let command: Vec<&str> = LABEL_HINT.split_whitespace().skip(1).collect();
    cluster
        .kubectl(&command)
        .expect_success("label the namespace as the notes say");
    assert_eq!(labels(&cluster), "restricted");
    let privileged = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": OPERATOR_NAMESPACE},
        "spec": {"containers": [{"name": "c", "image": IMAGE, "securityContext": {"privileged": true}}]},
    });
    let refused = tokio::task::block_in_place(|| {
        cluster
            .node
            .kubectl()
            .args(["create", "--dry-run=server", "-f", "-"])
            .stdin(privileged.to_string())
            .run()
    });
    assert!(
        !refused.success && refused.stderr.contains("PodSecurity"),
        "the restricted standard is enforced: {refused:?}"
    );
    cluster
        .kubectl(&[
            "-n",
            OPERATOR_NAMESPACE,
            "rollout",
            "restart",
            "deployment/senderops",
        ])
        .expect_success("restart the operator under the enforced standard");
    cluster
        .kubectl(&[
            "-n",
            OPERATOR_NAMESPACE,
            "rollout",
            "status",
            "deployment/senderops",
            "--timeout=120s",
        ])
        .expect_success("the operator's new pods are admitted and roll out");
    cluster.wait_available("senderops", 2).await;

    // A namespace created and labelled first (the other way the notes give) draws no warning.
    cluster
        .kubectl(&["create", "namespace", "labelled"])
        .expect_success("create a namespace");
    cluster
        .kubectl(&[
            "label",
            "namespace",
            "labelled",
            &format!("{ENFORCE}=restricted"),
        ])
        .expect_success("label it");
    let dry_run = helm_on(
        &cluster,
        &[
            "install",
            "other",
            CHART,
            "-n",
            "labelled",
            "--skip-crds",
            "--dry-run=server",
        ],
    );
    assert!(
        dry_run.success,
        "helm install --dry-run=server:\n{}",
        dry_run.stderr
    );
    assert!(
        !dry_run.stdout.contains("does not enforce"),
        "no warning for a namespace that enforces restricted:\n{}",
        dry_run.stdout
    );
}
