//! A test node with twilio-sim reachable from its pods, and what the cluster tests ask of it:
//! installing, waiting for a Deployment, the operator's pods and Lease, senders and their codes,
//! what Twilio holds, logs, metrics through the Service and the pods' memory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use senderops::api::WhatsAppSender;
use serde_json::{Value, json};

use super::node::{IMAGE, Node};
use super::relay;
use crate::support::controlplane::repo_root;
use crate::support::deploy::{documented_command, kustomize_cli};
use crate::support::kubectl::KubectlOutput;
use crate::support::operator::condition;
use crate::support::relay::Relay;
use crate::support::sim::{ACCOUNT_A, Sim, TOKEN_A};

/// Where the manifests install the operator.
pub const OPERATOR_NAMESPACE: &str = "senderops";
/// Where the tests' senders and their credentials live.
pub const SENDERS_NAMESPACE: &str = "acme";
/// The operator's default: a leader that stops renewing is replaced after this.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// Senders to Ready: the operator polls from 5 s (doubling) and onboards one number per account
/// at a time, so ten senders of one account take a minute or two.
pub const SENDER_READY_TIMEOUT: Duration = Duration::from_secs(240);
pub const AVAILABLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The install overlay a user writes as the README says, for the test node: in an empty directory
/// (target/node/install/NAME…, removed when dropped), `kustomize create --resources BASE` (`deploy` or
/// `deploy/overlays/sharding`) and the README's `kustomize edit set image` line with the image
/// built here for REGISTRY/senderops:TAG, plus the one thing only the test node adds, the
/// component hack/node/install/local-image (pull policy Never, twilio-sim's URL, no registration
/// spacing). Returns the directory, for `kubectl apply -k`.
pub fn install_overlay(name: &str, base: &str) -> tempfile::TempDir {
    let parent = repo_root().join("target/node/install");
    std::fs::create_dir_all(&parent).expect("create target/node/install");
    let overlay = tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir_in(&parent)
        .expect("create the install overlay's directory");
    let dir = overlay.path();
    // kustomize takes only relative paths: from target/node/install/NAME to the repository.
    let up = "../../../..";
    let mut create = documented_command("kustomize create --resources", IMAGE);
    assert_eq!(
        create.len(),
        4,
        "the README's `kustomize create --resources PATH`: {create:?}"
    );
    create[3] = format!("{up}/{base}");
    kustomize_cli(dir, &create[1..]);
    kustomize_cli(
        dir,
        &[
            "edit".into(),
            "add".into(),
            "component".into(),
            format!("{up}/hack/node/install/local-image"),
        ],
    );
    let set_image = documented_command("kustomize edit set image", IMAGE);
    assert_eq!(set_image[0], "kustomize", "{set_image:?}");
    kustomize_cli(dir, &set_image[1..]);
    overlay
}

pub struct Cluster {
    pub node: Node,
    pub sim: Sim,
    pub client: kube::Client,
    _relay: Relay,
}

impl Cluster {
    /// A fresh node, twilio-sim on its address and namespace `acme` with account A's
    /// credentials. Call from a multi-threaded runtime: the node's start blocks this thread.
    pub async fn start(test: &str) -> Cluster {
        let node = tokio::task::block_in_place(|| Node::start(test));
        let sim = Sim::start().await;
        let target = sim.base_url().trim_start_matches("http://").to_string();
        let relay = relay::to_sim(&target).await;
        let client = node.client().await;
        let cluster = Cluster {
            node,
            sim,
            client,
            _relay: relay,
        };
        cluster.namespace(SENDERS_NAMESPACE).await;
        cluster
            .secret(
                SENDERS_NAMESPACE,
                "twilio",
                &[("accountSid", ACCOUNT_A), ("authToken", TOKEN_A)],
            )
            .await;
        cluster
    }

    /// kubectl against the node, off the async threads.
    pub fn kubectl(&self, args: &[&str]) -> KubectlOutput {
        tokio::task::block_in_place(|| self.node.kubectl().args(args).run())
    }

    pub async fn namespace(&self, name: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    }

    pub async fn secret(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let string_data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": string_data}))
                .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("create Secret {ns}/{name}: {e}"));
    }

    /// Waits until Deployment `name` has `replicas` updated, available replicas and nothing
    /// else; returns how long that took.
    pub async fn wait_available(&self, name: &str, replicas: i32) -> Duration {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), OPERATOR_NAMESPACE);
        let began = Instant::now();
        loop {
            if let Some(deployment) = deployments
                .get_opt(name)
                .await
                .expect("read the Deployment")
                && let Some(status) = &deployment.status
                && status.observed_generation == deployment.metadata.generation
                && status.replicas == Some(replicas)
                && status.updated_replicas == Some(replicas)
                && status.available_replicas == Some(replicas)
                && status.ready_replicas == Some(replicas)
            {
                return began.elapsed();
            }
            if began.elapsed() > AVAILABLE_TIMEOUT {
                panic!(
                    "Deployment {OPERATOR_NAMESPACE}/{name} was not Available with {replicas} replicas \
                     within {AVAILABLE_TIMEOUT:?}:\n{}\n{}\nnode log:\n{}",
                    self.kubectl(&[
                        "-n",
                        OPERATOR_NAMESPACE,
                        "get",
                        "deploy,rs,pods",
                        "-o",
                        "wide"
                    ])
                    .stdout,
                    self.kubectl(&["-n", OPERATOR_NAMESPACE, "get", "events"])
                        .stdout,
                    self.node.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The operator's pods matching `selector` that are not being deleted.
    pub async fn pods(&self, selector: &str) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), OPERATOR_NAMESPACE);
        pods.list(&ListParams::default().labels(selector))
            .await
            .expect("list the operator's pods")
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    /// The holder of Lease `name` in the operator's namespace.
    pub async fn lease_holder(&self, name: &str) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), OPERATOR_NAMESPACE);
        leases
            .get_opt(name)
            .await
            .expect("read the Lease")?
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    }

    /// The pod whose process holds Lease `name` (holders are `POD_NAME_SUFFIX`), waiting for one.
    pub async fn leader_pod(&self, lease: &str) -> String {
        let began = Instant::now();
        loop {
            if let Some(holder) = self.lease_holder(lease).await {
                return pod_of_holder(&holder).to_string();
            }
            assert!(
                began.elapsed() < AVAILABLE_TIMEOUT,
                "nobody took Lease {lease} within {AVAILABLE_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn senders(&self) -> Api<WhatsAppSender> {
        Api::namespaced(self.client.clone(), SENDERS_NAMESPACE)
    }

    /// Server-side applies sender `name` in namespace `acme` with `spec` and `labels`.
    pub async fn apply_sender(&self, name: &str, spec: Value, labels: Value) {
        let manifest = json!({
            "apiVersion": "messaging.senderops.io/v1alpha1",
            "kind": "WhatsAppSender",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        });
        self.senders()
            .patch(
                name,
                &PatchParams::apply("senderops-cluster-tests").force(),
                &Patch::Apply(&manifest),
            )
            .await
            .unwrap_or_else(|e| panic!("apply WhatsAppSender {name}: {e}"));
    }

    /// Plays the user once: every sender waiting for a code whose Secret does not exist yet
    /// gets it, read from the simulator. Returns how many codes it wrote.
    pub async fn provide_codes(&self) -> usize {
        self.provide_codes_except(&[]).await
    }

    /// [`Cluster::provide_codes`], except to the senders named in `withheld`, whose user has not
    /// read the code yet.
    pub async fn provide_codes_except(&self, withheld: &[&str]) -> usize {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), SENDERS_NAMESPACE);
        let mut written = 0;
        for sender in self
            .senders()
            .list(&ListParams::default())
            .await
            .expect("list senders")
        {
            if withheld.contains(&sender.metadata.name.as_deref().unwrap_or_default()) {
                continue;
            }
            let status = sender.status.as_ref();
            let (Some(sid), Some(twilio)) = (
                status.and_then(|s| s.sid.clone()),
                status.and_then(|s| s.twilio_status.clone()),
            ) else {
                continue;
            };
            let Some(secret) = sender
                .spec
                .verification
                .as_ref()
                .and_then(|v| v.code_secret_ref.as_ref())
                .map(|r| r.name.clone())
            else {
                continue;
            };
            if twilio != "PENDING_VERIFICATION"
                || secrets
                    .get_opt(&secret)
                    .await
                    .expect("read a code Secret")
                    .is_some()
            {
                continue;
            }
            if let Some(code) = self.sim.otp(&sid).await {
                self.secret(SENDERS_NAMESPACE, &secret, &[("code", &code)])
                    .await;
                written += 1;
            }
        }
        written
    }

    /// Waits (playing the user who receives codes) until every sender in `names` is Ready.
    pub async fn wait_ready(&self, names: &[String]) {
        let began = Instant::now();
        loop {
            self.provide_codes().await;
            let mut waiting = Vec::new();
            for name in names {
                let sender = self.senders().get_opt(name).await.expect("read a sender");
                let ready = sender
                    .as_ref()
                    .and_then(|s| condition(s, "Ready"))
                    .is_some_and(|c| c.status == "True");
                if !ready {
                    waiting.push((name.clone(), sender.and_then(|s| s.status)));
                }
            }
            if waiting.is_empty() {
                return;
            }
            if began.elapsed() > SENDER_READY_TIMEOUT {
                panic!(
                    "senders not Ready within {SENDER_READY_TIMEOUT:?}: {waiting:#?}\noperator pods:\n{}",
                    self.kubectl(&["-n", OPERATOR_NAMESPACE, "get", "pods", "-o", "wide"])
                        .stdout
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Numbers whose create requests at Twilio (the simulator) were not exactly one, with their
    /// count: every create attempt, whatever its answer, of every number Twilio holds or was
    /// asked to register. (The simulator never stores two senders for one number, so counting
    /// what it holds could not show a second create.)
    pub async fn numbers_not_created_once(&self) -> BTreeMap<String, u64> {
        let stats = self.sim.stats().await;
        let mut numbers: BTreeMap<String, u64> = stats["create_attempts"]
            .as_object()
            .expect("the simulator's stats count create attempts")
            .iter()
            .map(|(phone, count)| (phone.clone(), count.as_u64().unwrap_or(0)))
            .collect();
        for sender in self.sim.all_senders().await {
            let phone = sender["sender_id"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("whatsapp:")
                .to_string();
            numbers.entry(phone).or_insert(0);
        }
        numbers.retain(|_, count| *count != 1);
        numbers
    }

    /// Registrations at Twilio (the simulator), all accounts.
    pub async fn registrations(&self) -> usize {
        self.sim.all_senders().await.len()
    }

    /// `kubectl logs` of a pod's operator container.
    pub fn logs(&self, pod: &str) -> String {
        self.kubectl(&["-n", OPERATOR_NAMESPACE, "logs", pod, "-c", "senderops"])
            .expect_success(&format!("read the logs of {pod}"))
            .stdout
    }

    /// `/metrics` of the operator, through Service `senderops-metrics` from the node.
    pub async fn scrape_through_service(&self) -> String {
        let services: Api<Service> = Api::namespaced(self.client.clone(), OPERATOR_NAMESPACE);
        let service = services
            .get("senderops-metrics")
            .await
            .expect("read the metrics Service");
        let ip = service
            .spec
            .and_then(|s| s.cluster_ip)
            .expect("the Service has a cluster IP");
        let url = format!("http://{ip}:8080/metrics");
        let response = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_or_else(|e| panic!("scrape {url} (Service senderops-metrics): {e}"));
        assert_eq!(response.status(), 200, "{url}");
        response.text().await.expect("a metrics page")
    }
}

/// The operator's `/metrics` straight from a pod (its IP, from the node).
pub async fn scrape_pod(pod: &Pod) -> String {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("the pod has an IP");
    reqwest::get(format!("http://{ip}:8080/metrics"))
        .await
        .unwrap_or_else(|e| panic!("scrape {}: {e}", name_of(pod)))
        .text()
        .await
        .expect("a metrics page")
}

/// The pod name in a Lease holder identity (`POD_NAME_SUFFIX`).
pub fn pod_of_holder(holder: &str) -> &str {
    holder.rsplit_once('_').map_or(holder, |(pod, _)| pod)
}

/// A sender spec for `phone` (credentials Secret `twilio`), with a code Secret if `code_secret`.
pub fn sender_spec(phone: &str, code_secret: Option<&str>) -> Value {
    match code_secret {
        Some(secret) => crate::support::operator::spec_with_code(phone, secret),
        None => crate::support::operator::spec(phone, json!({})),
    }
}

/// The operator container's ID (`containerd://…`) in a pod's status.
pub fn container_id(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "senderops"))
        .and_then(|c| c.container_id.clone())
        .unwrap_or_else(|| panic!("{:?} has no running operator container", pod.metadata.name))
}

pub fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}
