//! The RBAC of `deploy/` is enough, and no more: applied to the test control plane for a
//! ServiceAccount of the test's namespace, its token may do exactly what the operator needs,
//! and `senderops run` authenticated by that token alone (with leader election, as in the
//! Deployment) takes a sender to Ready without a single forbidden call. A namespaced install
//! (`deploy/overlays/namespaced`, the chart's `watchNamespace`) confines it to its namespaces:
//! no Secret elsewhere, and a sender elsewhere is left alone.

use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use senderops::api::WhatsAppSender;
use serde_json::{Value, json};

use crate::support::controlplane::{self, repo_root};
use crate::support::deploy::{
    INSTALL_NAMESPACE, OperatorProcess, helm_template, kind_and_name, kubectl_as, kustomize,
    one_of, parse_yaml, token_kubeconfig,
};
use crate::support::operator::create_credentials;
use crate::support::sim::Sim;
use crate::support::wait::Wait;

/// How long the operator gets to take an auto-verified number to Ready.
const READY_DEADLINE: Duration = Duration::from_secs(60);
const TOKEN_DURATION: &str = "--duration=30m";
const PHONE: &str = "+15017122690";
const SENDER: &str = "rbac-proof";
const POD_NAME: &str = "senderops-rbac-test-0";
/// `--lease-name`'s default.
const LEASE: &str = "senderops";

/// The kinds of deploy/ that make up the operator's identity and permissions.
const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// The RBAC objects of `kubectl kustomize deploy/`, moved from namespace `senderops` to `ns`
/// and, for the cluster-scoped ones, renamed after `ns` so that tests do not share them.
fn rbac_for(ns: &str) -> Vec<Value> {
    let cluster_name = format!("senderops-{ns}");
    parse_yaml(&kustomize("deploy"))
        .into_iter()
        .filter(|o| RBAC_KINDS.contains(&o["kind"].as_str().unwrap_or("")))
        .map(|mut object| {
            let cluster_scoped = object["metadata"]["namespace"].is_null();
            if cluster_scoped {
                object["metadata"]["name"] = json!(cluster_name);
            } else {
                assert_eq!(
                    object["metadata"]["namespace"],
                    INSTALL_NAMESPACE,
                    "{}",
                    kind_and_name(&object)
                );
                object["metadata"]["namespace"] = json!(ns);
            }
            if object["kind"] == "ClusterRoleBinding" {
                object["roleRef"]["name"] = json!(cluster_name);
            }
            // get_mut, not indexing: indexing would add `subjects: null` to every object.
            if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
                for subject in subjects {
                    subject["namespace"] = json!(ns);
                }
            }
            object
        })
        .collect()
}

/// Applies deploy/'s RBAC for namespace `ns` and returns a kubeconfig (in `dir`) that
/// authenticates as its ServiceAccount with a fresh token.
fn install_rbac_and_log_in(ns: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let objects = rbac_for(ns);
    let kinds: Vec<String> = objects.iter().map(kind_and_name).collect();
    assert_eq!(objects.len(), RBAC_KINDS.len(), "{kinds:?}");
    apply_and_log_in(&objects, ns, dir)
}

/// Applies RBAC `objects` (their ServiceAccount in namespace `ns`) and returns a kubeconfig (in
/// `dir`) that authenticates as that ServiceAccount with a fresh token.
fn apply_and_log_in(objects: &[Value], ns: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let stream: String = objects
        .iter()
        .map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap()))
        .collect();
    let plane = controlplane::shared();
    plane
        .kubectl()
        .args(["apply", "--server-side", "-f", "-"])
        .stdin(stream)
        .run()
        .expect_success("apply deploy/'s RBAC");
    let account = one_of(objects, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .expect("a ServiceAccount name")
        .to_string();
    let token = plane
        .kubectl()
        .args(["-n", ns, "create", "token", &account, TOKEN_DURATION])
        .run()
        .expect_success("issue a ServiceAccount token")
        .stdout
        .trim()
        .to_string();
    token_kubeconfig(dir, &token)
}

#[tokio::test]
async fn the_service_account_may_do_what_the_operator_needs_and_nothing_more() {
    let plane = controlplane::shared();
    let ns = plane.namespace("rbac-can-i").await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = install_rbac_and_log_in(&ns, dir.path());

    let whoami = kubectl_as(&kubeconfig)
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .run()
        .expect_success("authenticate with the token");
    assert_eq!(
        whoami.stdout,
        format!("system:serviceaccount:{ns}:senderops")
    );

    let can_i = |verb: &str, resource: &str, namespace: &str| -> bool {
        let mut kubectl = kubectl_as(&kubeconfig).args(["auth", "can-i", verb, resource]);
        if !namespace.is_empty() {
            kubectl = kubectl.args(["-n", namespace]);
        }
        let out = kubectl.run();
        match out.stdout.trim() {
            "yes" => true,
            "no" => false,
            other => panic!(
                "kubectl auth can-i {verb} {resource}: {other} {}",
                out.stderr
            ),
        }
    };
    let elsewhere = "default";
    let allowed = [
        ("list", "whatsappsenders.messaging.senderops.io", elsewhere),
        ("watch", "whatsappsenders.messaging.senderops.io", elsewhere),
        (
            "patch",
            "whatsappsenders.messaging.senderops.io",
            ns.as_str(),
        ),
        (
            "patch",
            "whatsappsenders.messaging.senderops.io/status",
            ns.as_str(),
        ),
        ("get", "secrets", ns.as_str()),
        ("list", "secrets", elsewhere),
        ("watch", "secrets", elsewhere),
        ("create", "events.events.k8s.io", elsewhere),
        ("get", "leases.coordination.k8s.io", ns.as_str()),
        ("create", "leases.coordination.k8s.io", ns.as_str()),
        ("patch", "leases.coordination.k8s.io", ns.as_str()),
        ("list", "leases.coordination.k8s.io", ns.as_str()),
        ("watch", "leases.coordination.k8s.io", ns.as_str()),
        (
            "get",
            "customresourcedefinitions.apiextensions.k8s.io/whatsappsenders.messaging.senderops.io",
            "",
        ),
    ];
    for (verb, resource, namespace) in allowed {
        assert!(
            can_i(verb, resource, namespace),
            "the operator may {verb} {resource} in {namespace}"
        );
    }
    let refused = [
        (
            "create",
            "whatsappsenders.messaging.senderops.io",
            ns.as_str(),
        ),
        (
            "update",
            "whatsappsenders.messaging.senderops.io",
            ns.as_str(),
        ),
        (
            "delete",
            "whatsappsenders.messaging.senderops.io",
            ns.as_str(),
        ),
        ("create", "secrets", ns.as_str()),
        ("update", "secrets", ns.as_str()),
        ("patch", "secrets", ns.as_str()),
        ("delete", "secrets", ns.as_str()),
        ("get", "configmaps", ns.as_str()),
        ("create", "pods", ns.as_str()),
        ("create", "events", ns.as_str()),
        ("patch", "events.events.k8s.io", ns.as_str()),
        ("update", "events.events.k8s.io", ns.as_str()),
        ("delete", "events.events.k8s.io", ns.as_str()),
        ("delete", "leases.coordination.k8s.io", ns.as_str()),
        ("update", "leases.coordination.k8s.io", ns.as_str()),
        ("get", "whatsappsenders.messaging.senderops.io", ns.as_str()),
        ("list", "leases.coordination.k8s.io", elsewhere),
        ("get", "leases.coordination.k8s.io", elsewhere),
        ("create", "leases.coordination.k8s.io", elsewhere),
        ("get", "customresourcedefinitions.apiextensions.k8s.io", ""),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", ""),
        (
            "get",
            "customresourcedefinitions.apiextensions.k8s.io/leases.coordination.k8s.io",
            "",
        ),
        (
            "delete",
            "customresourcedefinitions.apiextensions.k8s.io/whatsappsenders.messaging.senderops.io",
            "",
        ),
    ];
    for (verb, resource, namespace) in refused {
        assert!(
            !can_i(verb, resource, namespace),
            "the operator may not {verb} {resource} in {namespace:?}"
        );
    }
}

#[tokio::test]
async fn the_operator_reaches_online_with_only_its_service_accounts_token() {
    let plane = controlplane::shared();
    let ns = plane.namespace("rbac-run").await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = install_rbac_and_log_in(&ns, dir.path());

    let sim = Sim::start().await;
    sim.number(PHONE, "auto_verify").await;
    let client = plane.client().await;
    create_credentials(&client, &ns).await;

    let logs = repo_root().join("target/testplane/logs");
    std::fs::create_dir_all(&logs).expect("create the log directory");
    let sim_url = sim.base_url();
    let operator_log = logs.join(format!("operator-{ns}.log"));
    let mut operator = OperatorProcess::start(
        &kubeconfig,
        &[("POD_NAME", POD_NAME), ("POD_NAMESPACE", ns.as_str())],
        &[
            "--leader-election",
            "--lease-namespace",
            &ns,
            "--namespace",
            &ns,
            "--twilio-api-url",
            &sim_url,
            "--poll-interval",
            "100ms",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        operator_log.clone(),
    );

    apply_sender(&client, &ns, SENDER, PHONE, "RBAC Proof").await;
    wait_ready(&mut operator, &client, &ns, &operator_log).await;

    // It led through the Lease its Role allows, under its pod's name.
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = leases
        .get_opt(LEASE)
        .await
        .expect("read the Lease")
        .unwrap_or_else(|| panic!("no Lease {ns}/{LEASE}; operator log:\n{}", operator.log()));
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert!(
        holder.starts_with(&format!("{POD_NAME}_")),
        "the Lease is held under POD_NAME and this process's suffix: {holder:?}"
    );
    // It reported through Events.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(SENDER))
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        !reasons.is_empty(),
        "the operator recorded Events about {SENDER}; operator log:\n{}",
        operator.log()
    );
    // And was refused nothing on the way.
    let log = operator.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "a call was refused: the RBAC misses something the operator does; log:\n{log}"
    );

    let status = operator.stop();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}; log:\n{}",
        operator.log()
    );
}

/// The RBAC of `deploy/overlays/namespaced` for a test: the operator's namespace `senderops`
/// moved to `install`, its watched namespaces (team-a, team-b) to `watched`, and the
/// cluster-scoped objects renamed after `install`.
fn namespaced_overlay_rbac(install: &str, watched: &[&str]) -> Vec<Value> {
    let moves = [
        (INSTALL_NAMESPACE, install),
        ("team-a", watched[0]),
        ("team-b", watched[1]),
    ];
    let moved = |namespace: &Value| -> Value {
        let from = namespace.as_str().unwrap_or_default();
        let (_, to) = moves
            .iter()
            .find(|(f, _)| *f == from)
            .unwrap_or_else(|| panic!("the overlay installs into {from}, which is not moved"));
        json!(to)
    };
    parse_yaml(&kustomize("deploy/overlays/namespaced"))
        .into_iter()
        .filter(|o| RBAC_KINDS.contains(&o["kind"].as_str().unwrap_or("")))
        .map(|mut object| {
            if object["metadata"]["namespace"].is_null() {
                let name = format!("{}-{install}", object["metadata"]["name"].as_str().unwrap());
                object["metadata"]["name"] = json!(name);
            } else {
                object["metadata"]["namespace"] = moved(&object["metadata"]["namespace"]);
            }
            if object["kind"] == "ClusterRoleBinding" {
                let name = format!("{}-{install}", object["roleRef"]["name"].as_str().unwrap());
                object["roleRef"]["name"] = json!(name);
            }
            if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
                for subject in subjects {
                    subject["namespace"] = moved(&subject["namespace"]);
                }
            }
            object
        })
        .collect()
}

/// The RBAC the chart renders as release `install` in namespace `install`, watching `watched`.
fn chart_rbac(install: &str, watched: &[&str]) -> Vec<Value> {
    let value = format!("watchNamespace={{{}}}", watched.join(","));
    parse_yaml(&helm_template(install, install, &[&value], &[]))
        .into_iter()
        .filter(|o| RBAC_KINDS.contains(&o["kind"].as_str().unwrap_or("")))
        .collect()
}

/// `kubectl auth can-i VERB RESOURCE` as `kubeconfig`, in `namespace` or (`None`) in every
/// namespace.
fn can_i(
    kubeconfig: &std::path::Path,
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
) -> bool {
    let kubectl = kubectl_as(kubeconfig).args(["auth", "can-i", verb, resource]);
    let out = match namespace {
        Some(namespace) => kubectl.args(["-n", namespace]),
        None => kubectl.arg("--all-namespaces"),
    }
    .run();
    match out.stdout.trim() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl auth can-i {verb} {resource}: {other} {}",
            out.stderr
        ),
    }
}

/// Applies a sender for `phone` named `name` in `ns`, with credentials Secret `twilio` and the
/// display name `display`.
async fn apply_sender(client: &kube::Client, ns: &str, name: &str, phone: &str, display: &str) {
    let senders: Api<WhatsAppSender> = Api::namespaced(client.clone(), ns);
    let manifest = json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": {"name": name},
        "spec": {
            "phoneNumber": phone,
            "credentialsRef": {"name": "twilio"},
            "profile": {"name": display},
        },
    });
    senders
        .patch(
            name,
            &PatchParams::apply("senderops-tests").force(),
            &Patch::Apply(&manifest),
        )
        .await
        .unwrap_or_else(|e| panic!("apply WhatsAppSender {ns}/{name}: {e}"));
}

/// Waits for sender `SENDER` in `ns` to be Ready, the operator running all along.
async fn wait_ready(
    operator: &mut OperatorProcess,
    client: &kube::Client,
    ns: &str,
    operator_log: &std::path::Path,
) {
    let senders: Api<WhatsAppSender> = Api::namespaced(client.clone(), ns);
    Wait::until(format!("{ns}/{SENDER} to be Ready"))
        .within(READY_DEADLINE)
        .context(|| {
            let log = std::fs::read_to_string(operator_log).unwrap_or_default();
            format!("operator log:\n{log}")
        })
        .poll_ok(async || {
            operator.assert_running();
            let sender = senders.get(SENDER).await.expect("read the sender");
            let ready = sender.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status.clone())
            });
            if ready.as_deref() == Some("True") {
                return Ok(());
            }
            Err(format!(
                "status {}",
                serde_json::to_string_pretty(&sender.status).unwrap()
            ))
        })
        .await;
}

/// A namespaced install's RBAC (`rbac(install, watched)`), for a ServiceAccount in a namespace
/// of the test's: its token may read Secrets, and work on senders, in the two watched
/// namespaces only; `senderops run --namespace A,B` with that token alone takes a sender in each
/// to Ready and leaves one in a third namespace alone; told to watch the third too, it refuses
/// to start and names it.
async fn confined_to_its_namespaces(prefix: &str, rbac: fn(&str, &[&str]) -> Vec<Value>) {
    let plane = controlplane::shared();
    let install = plane.namespace(&format!("{prefix}-op")).await;
    let a = plane.namespace(&format!("{prefix}-a")).await;
    let b = plane.namespace(&format!("{prefix}-b")).await;
    let elsewhere = plane.namespace(&format!("{prefix}-c")).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let objects = rbac(&install, &[&a, &b]);
    let kubeconfig = apply_and_log_in(&objects, &install, dir.path());

    for namespace in [a.as_str(), b.as_str()] {
        for (verb, resource) in [
            ("get", "secrets"),
            ("list", "secrets"),
            ("watch", "secrets"),
            ("list", "whatsappsenders.messaging.senderops.io"),
            ("watch", "whatsappsenders.messaging.senderops.io"),
            ("patch", "whatsappsenders.messaging.senderops.io"),
            ("patch", "whatsappsenders.messaging.senderops.io/status"),
            ("create", "events.events.k8s.io"),
        ] {
            assert!(
                can_i(&kubeconfig, verb, resource, Some(namespace)),
                "{prefix}: the operator may {verb} {resource} in watched namespace {namespace}"
            );
        }
    }
    for (verb, resource) in [
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("list", "whatsappsenders.messaging.senderops.io"),
        ("patch", "whatsappsenders.messaging.senderops.io"),
    ] {
        assert!(
            !can_i(&kubeconfig, verb, resource, None),
            "{prefix}: the operator may not {verb} {resource} cluster-wide"
        );
        for namespace in [elsewhere.as_str(), install.as_str()] {
            assert!(
                !can_i(&kubeconfig, verb, resource, Some(namespace)),
                "{prefix}: the operator may not {verb} {resource} in {namespace}, which it does \
                 not watch"
            );
        }
    }

    // Credentials and a sender in each namespace, the third included.
    let sim = Sim::start().await;
    let client = plane.client().await;
    let phones = [
        (a.as_str(), "+15017122691"),
        (b.as_str(), "+15017122692"),
        (elsewhere.as_str(), "+15017122693"),
    ];
    for (namespace, phone) in phones {
        create_credentials(&client, namespace).await;
        sim.number(phone, "auto_verify").await;
        apply_sender(&client, namespace, SENDER, phone, "Namespaced").await;
    }

    let logs = repo_root().join("target/testplane/logs");
    std::fs::create_dir_all(&logs).expect("create the log directory");
    let sim_url = sim.base_url();

    // Told to watch a namespace it has no Role in, it refuses to start, and says which.
    let refused_log = logs.join(format!("operator-{install}-refused.log"));
    let mut refused = Command::new(env!("CARGO_BIN_EXE_senderops"))
        .args(["run", "--namespace", &format!("{a},{elsewhere}")])
        .args([
            "--twilio-api-url",
            &sim_url,
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("WATCH_NAMESPACE")
        .env_remove("TWILIO_API_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&refused_log).expect("create a log"))
        .spawn()
        .expect("start senderops run");
    let status = Wait::until("senderops run to refuse a namespace it may not watch")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(50))
        .try_poll_ok_blocking(|| refused.try_wait().expect("poll it").ok_or("still running"))
        .unwrap_or_else(|_| {
            let _ = refused.kill();
            panic!(
                "still running:\n{}",
                std::fs::read_to_string(&refused_log).unwrap_or_default()
            )
        });
    let said = std::fs::read_to_string(&refused_log).unwrap_or_default();
    assert!(
        !status.success()
            && said.contains(&format!(
                "not allowed to list WhatsAppSenders in namespace {elsewhere}"
            )),
        "{prefix}: exit {status}, log:\n{said}"
    );

    let operator_log = logs.join(format!("operator-{install}.log"));
    let watched = format!("{a},{b}");
    let mut operator = OperatorProcess::start(
        &kubeconfig,
        &[("POD_NAME", POD_NAME), ("POD_NAMESPACE", install.as_str())],
        &[
            "--leader-election",
            "--lease-namespace",
            &install,
            "--namespace",
            &watched,
            "--twilio-api-url",
            &sim_url,
            "--poll-interval",
            "100ms",
            // Two registrations in one account: no spacing between them here.
            "--registration-interval",
            "0s",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        operator_log.clone(),
    );
    for namespace in [a.as_str(), b.as_str()] {
        wait_ready(&mut operator, &client, namespace, &operator_log).await;
    }

    // The sender of the namespace it does not watch: never touched, nothing at Twilio.
    let senders: Api<WhatsAppSender> = Api::namespaced(client.clone(), &elsewhere);
    let untouched = senders.get(SENDER).await.expect("read the sender");
    assert!(
        untouched
            .metadata
            .finalizers
            .as_ref()
            .is_none_or(Vec::is_empty)
            && untouched.status.is_none(),
        "{prefix}: {elsewhere}/{SENDER} was left alone: {:?}",
        untouched.metadata
    );
    let registered: Vec<Value> = sim
        .all_senders()
        .await
        .into_iter()
        .filter(|s| s["sender_id"] == "whatsapp:+15017122693")
        .collect();
    assert!(registered.is_empty(), "{registered:#?}");

    let log = operator.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "{prefix}: a call was refused: the namespaced RBAC misses something the operator does; \
         log:\n{log}"
    );
    let status = operator.stop();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}; log:\n{}",
        operator.log()
    );
}

#[tokio::test]
async fn the_namespaced_overlay_confines_the_operator_to_its_namespaces() {
    confined_to_its_namespaces("rbac-overlay", namespaced_overlay_rbac).await;
}

#[tokio::test]
async fn the_charts_watch_namespace_confines_the_operator_to_its_namespaces() {
    confined_to_its_namespaces("rbac-chart", chart_rbac).await;
}
