//! The install manifests: the kustomize base (`kubectl apply -k deploy/`), the sharding overlay
//! and the Helm chart, dry-run on a real kube-apiserver and checked as data: least-privilege
//! RBAC, a locked-down pod, and Helm and kustomize installing the same operator.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support;
use crate::support::controlplane::{self, repo_root};
use crate::support::deploy::{
    INSTALL_NAMESPACE, all_of, args_of, assert_dry_run_covered, container, documented_command_in,
    flag_values, helm, helm_template, install_namespace, kind_and_name, kustomize, name_of, named,
    one_of, parse_yaml, server_dry_run,
};

const IMAGE: &str = "ghcr.io/senderops/senderops:0.1.0";
/// The distroless `nonroot` user the image runs as.
const NON_ROOT_ID: i64 = 65532;
const REPLICAS: i64 = 2;
const METRICS_PORT: i64 = 8080;
/// Long enough for in-flight reconciles (Twilio calls time out after 15 s) to finish and the
/// Lease to be released; short enough that a rollout does not hang on a stuck pod.
const GRACE_SECONDS: std::ops::RangeInclusive<i64> = 30..=120;
/// The release name that makes the chart's object names those of the kustomize base.
const RELEASE: &str = "senderops";

/// What `senderops run` calls cluster-wide (or in its watched namespace): (API group,
/// resource, verbs). Exactly these, nothing else.
const OPERATOR_RULES: &[(&str, &str, &[&str])] = &[
    (
        "messaging.senderops.io",
        "whatsappsenders",
        &["list", "watch", "patch"],
    ),
    (
        "messaging.senderops.io",
        "whatsappsenders/status",
        &["patch"],
    ),
    ("", "secrets", &["get", "list", "watch"]),
    // Create only: each Event goes through a fresh kube Recorder, which patches only a repeat
    // of an Event it published itself (src/runtime/events.rs).
    ("events.k8s.io", "events", &["create"]),
];
/// The one cluster-scoped read even a namespaced install needs: its own CRD, by name, live before
/// any deletion at Twilio (an uninstall must not deregister numbers).
const CRD_RULES: &[(&str, &str, &[&str])] = &[(
    "apiextensions.k8s.io",
    "customresourcedefinitions",
    &["get"],
)];
const CRD_NAME: &str = "whatsappsenders.messaging.senderops.io";
/// What leader election calls, in the operator's own namespace.
const LEASE_RULES: &[(&str, &str, &[&str])] = &[(
    "coordination.k8s.io",
    "leases",
    &["get", "list", "watch", "create", "patch"],
)];
const READ_ONLY_VERBS: &[&str] = &["get", "list", "watch"];

/// The kinds `kubectl apply -k deploy/` installs.
const BASE_KINDS: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "NetworkPolicy",
];

/// The private IPv4 ranges the NetworkPolicy keeps HTTPS to Twilio out of: where clusters put
/// their pods, services and nodes.
const PRIVATE_RANGES: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
/// The ports the API server listens on as a rule (the `kubernetes` Service's endpoints).
const API_SERVER_PORTS: &[i64] = &[443, 6443];

const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
];

type Grant = (String, String, String);

/// Rules as a set of (group, resource, verb), asserting they name no wildcard, no non-resource
/// URLs, and no single objects except the CRD rule, which names exactly the operator's CRD.
fn grants(role: &Value) -> BTreeSet<Grant> {
    let who = kind_and_name(role);
    let rules = role["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("{who} has no rules"));
    let mut grants = BTreeSet::new();
    for rule in rules {
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "{who} uses nonResourceURLs: {rule}"
        );
        if rule["resources"] == json!(["customresourcedefinitions"]) {
            assert_eq!(
                rule["resourceNames"],
                json!([CRD_NAME]),
                "{who}: CRDs are read by name, its own only"
            );
        } else {
            assert!(
                rule.get("resourceNames").is_none(),
                "{who} uses resourceNames: {rule}"
            );
        }
        let strings = |field: &str| -> Vec<String> {
            rule[field]
                .as_array()
                .unwrap_or_else(|| panic!("{who}: a rule without {field}: {rule}"))
                .iter()
                .map(|v| v.as_str().expect("strings").to_string())
                .collect()
        };
        let (groups, resources, verbs) =
            (strings("apiGroups"), strings("resources"), strings("verbs"));
        for value in groups.iter().chain(&resources).chain(&verbs) {
            assert!(!value.contains('*'), "{who} grants a wildcard: {rule}");
        }
        for group in &groups {
            for resource in &resources {
                for verb in &verbs {
                    grants.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    grants
}

fn expected(rules: &[(&str, &str, &[&str])]) -> BTreeSet<Grant> {
    rules
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(|verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

/// Whether `role` grants only the CRD read (a namespaced install's one ClusterRole).
fn is_crd_only(role: &Value) -> bool {
    role["rules"].as_array().is_some_and(|rules| {
        rules
            .iter()
            .all(|r| r["resources"] == json!(["customresourcedefinitions"]))
    })
}

/// The role (ClusterRole or Role) granting the operator's rules, and the one granting leases
/// (a namespaced install's CRD-only ClusterRole aside).
fn operator_and_lease_roles(objects: &[Value]) -> (&Value, &Value) {
    let roles: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
        .filter(|o| !is_crd_only(o))
        .collect();
    assert_eq!(
        roles.len(),
        2,
        "one role for the operator, one for leader election: {:?}",
        roles.iter().map(|r| kind_and_name(r)).collect::<Vec<_>>()
    );
    let is_lease = |r: &Value| r["rules"][0]["apiGroups"][0] == "coordination.k8s.io";
    let lease = *roles
        .iter()
        .find(|r| is_lease(r))
        .expect("a role for leases");
    let operator = *roles
        .iter()
        .find(|r| !is_lease(r))
        .expect("an operator role");
    (operator, lease)
}

/// Asserts the RBAC of a render: exactly the operator's verbs and the lease verbs, Secrets read
/// only, each bound to the ServiceAccount the Deployment runs as, leases in the install
/// namespace.
fn assert_least_privilege(source: &str, objects: &[Value]) {
    let (operator, lease) = operator_and_lease_roles(objects);
    let operator_grants = grants(operator);
    let cluster_wide: BTreeSet<Grant> = expected(OPERATOR_RULES)
        .union(&expected(CRD_RULES))
        .cloned()
        .collect();
    assert_eq!(
        operator_grants,
        cluster_wide,
        "{source}: {} grants exactly what `senderops run` calls",
        kind_and_name(operator)
    );
    let secret_verbs: BTreeSet<&str> = operator_grants
        .iter()
        .filter(|(group, resource, _)| group.is_empty() && resource == "secrets")
        .map(|(_, _, verb)| verb.as_str())
        .collect();
    assert!(
        secret_verbs.iter().all(|v| READ_ONLY_VERBS.contains(v)),
        "{source}: Secrets are read-only, not {secret_verbs:?}"
    );
    assert_eq!(
        grants(lease),
        expected(LEASE_RULES),
        "{source}: {} grants exactly what leader election calls",
        kind_and_name(lease)
    );
    assert_eq!(
        lease["kind"], "Role",
        "{source}: leases are granted by a Role"
    );
    assert_eq!(
        lease["metadata"]["namespace"], INSTALL_NAMESPACE,
        "{source}: the lease Role is in the operator's namespace"
    );

    let service_account = one_of(objects, "ServiceAccount");
    let deployment = one_of(objects, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        service_account["metadata"]["name"],
        "{source}: the operator runs as the ServiceAccount the RBAC is bound to"
    );
    for role in [operator, lease] {
        let binding_kind = if role["kind"] == "ClusterRole" {
            "ClusterRoleBinding"
        } else {
            "RoleBinding"
        };
        let binding = all_of(objects, binding_kind)
            .into_iter()
            .find(|b| b["roleRef"]["name"] == role["metadata"]["name"])
            .unwrap_or_else(|| panic!("{source}: nothing binds {}", kind_and_name(role)));
        assert_eq!(
            binding["roleRef"]["kind"], role["kind"],
            "{source}: {binding}"
        );
        assert_eq!(
            binding["metadata"]["namespace"],
            role["metadata"]["namespace"],
            "{source}: {} binds in its role's namespace",
            kind_and_name(binding)
        );
        assert_eq!(
            binding["subjects"],
            json!([{
                "kind": "ServiceAccount",
                "name": service_account["metadata"]["name"],
                "namespace": service_account["metadata"]["namespace"],
            }]),
            "{source}: {} binds the operator's ServiceAccount only",
            kind_and_name(binding)
        );
    }
}

/// Asserts the operator pod of a render: non-root, read-only root, no privilege, resources,
/// probes on the metrics port, the downward API, leader election and JSON logs.
fn assert_locked_down_operator(source: &str, deployment: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    let container = container(deployment);
    let args = args_of(deployment);

    assert_eq!(
        deployment["spec"]["replicas"], REPLICAS,
        "{source}: replicas"
    );
    assert_eq!(container["image"], IMAGE, "{source}: image");
    assert_eq!(
        args.first().map(String::as_str),
        Some("run"),
        "{source}: {args:?}"
    );
    assert!(
        args.iter().any(|a| a == "--leader-election"),
        "{source}: two replicas need --leader-election: {args:?}"
    );
    assert_eq!(
        flag_values(&args, "--log-format"),
        ["json"],
        "{source}: {args:?}"
    );

    let pod_security = &pod["securityContext"];
    assert_eq!(
        pod_security["runAsNonRoot"], true,
        "{source}: {pod_security}"
    );
    assert_eq!(
        pod_security["runAsUser"], NON_ROOT_ID,
        "{source}: {pod_security}"
    );
    assert_eq!(
        pod_security["seccompProfile"],
        json!({"type": "RuntimeDefault"}),
        "{source}: {pod_security}"
    );
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true, "{source}: {security}");
    assert_eq!(security["runAsUser"], NON_ROOT_ID, "{source}: {security}");
    assert_eq!(
        security["readOnlyRootFilesystem"], true,
        "{source}: {security}"
    );
    assert_eq!(
        security["allowPrivilegeEscalation"], false,
        "{source}: {security}"
    );
    assert_eq!(
        security["capabilities"],
        json!({"drop": ["ALL"]}),
        "{source}: drops every capability and adds none: {security}"
    );
    assert_ne!(security["privileged"], true, "{source}: {security}");
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert_ne!(pod[host], true, "{source}: {host}");
    }
    assert_ne!(
        pod["automountServiceAccountToken"], false,
        "{source}: the operator needs its token"
    );

    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "{source}: {bound}.{resource} is set: {}",
                container["resources"]
            );
        }
    }

    let ports = container["ports"].as_array().expect("ports");
    assert_eq!(
        ports,
        &vec![json!({"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"})],
        "{source}: one named metrics port"
    );
    assert_eq!(
        flag_values(&args, "--metrics-addr"),
        [format!("0.0.0.0:{METRICS_PORT}")],
        "{source}: the operator serves on the port the probes and Service use: {args:?}"
    );
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        assert_eq!(
            container[probe]["httpGet"],
            json!({"path": path, "port": "metrics"}),
            "{source}: {probe}"
        );
    }

    let env: Vec<(Value, Value)> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].clone(),
                e["valueFrom"]["fieldRef"]["fieldPath"].clone(),
            )
        })
        .collect();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert!(
            env.contains(&(json!(name), json!(field))),
            "{source}: {name} comes from {field}: {env:?}"
        );
    }

    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or_else(|| panic!("{source}: terminationGracePeriodSeconds is set"));
    assert!(
        GRACE_SECONDS.contains(&grace),
        "{source}: terminationGracePeriodSeconds {grace} is not within {GRACE_SECONDS:?}"
    );
}

/// The Deployment's pod selector and its pods' labels.
fn selector_and_pod_labels(deployment: &Value) -> (&Value, &Value) {
    (
        &deployment["spec"]["selector"],
        &deployment["spec"]["template"]["metadata"]["labels"],
    )
}

/// Whether a `matchLabels` selector selects pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let match_labels = selector["matchLabels"]
        .as_object()
        .unwrap_or_else(|| panic!("a selector with matchLabels, not {selector}"));
    !match_labels.is_empty() && match_labels.iter().all(|(k, v)| &labels[k] == v)
}

/// Asserts `budget` (a PodDisruptionBudget) covers exactly `deployment`'s pods, one eviction at a
/// time, and never waits for a pod that is not Ready.
fn assert_disruption_budget(source: &str, budget: &Value, deployment: &Value) {
    let who = format!("{source}: {}", kind_and_name(budget));
    let (selector, pod_labels) = selector_and_pod_labels(deployment);
    assert_eq!(budget["apiVersion"], "policy/v1", "{who}");
    assert_eq!(
        budget["metadata"]["namespace"], deployment["metadata"]["namespace"],
        "{who} is in its Deployment's namespace"
    );
    let spec = &budget["spec"];
    assert_eq!(
        spec["maxUnavailable"], 1,
        "{who}: one pod at a time: {spec}"
    );
    assert!(
        spec.get("minAvailable").is_none(),
        "{who}: minAvailable would hold a drain up with one replica: {spec}"
    );
    assert_eq!(
        spec["unhealthyPodEvictionPolicy"], "AlwaysAllow",
        "{who}: a pod that is not Ready never holds a drain up: {spec}"
    );
    assert_eq!(
        &spec["selector"],
        selector,
        "{who} selects exactly the pods of {}",
        kind_and_name(deployment)
    );
    assert!(
        selects(&spec["selector"], pod_labels),
        "{who}: its selector matches the pod template's labels {pod_labels}"
    );
}

/// The NetworkPolicy of the defaults: in, the metrics port; out, DNS, the API server (any
/// address), HTTPS outside the private ranges. `pod_selector` is its Deployment's.
fn expected_network_policy(pod_selector: &Value) -> Value {
    let tcp = |port: &i64| json!({"port": port, "protocol": "TCP"});
    json!({
        "podSelector": pod_selector,
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": [tcp(&METRICS_PORT)]}],
        "egress": [
            {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            {"ports": API_SERVER_PORTS.iter().map(tcp).collect::<Vec<_>>()},
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}],
                "ports": [tcp(&443)],
            },
        ],
    })
}

/// Asserts `policy` (a NetworkPolicy) selects exactly `deployment`'s pods, lets in only their
/// metrics port and lets out only DNS, the API server and HTTPS to Twilio.
fn assert_network_policy(source: &str, policy: &Value, deployment: &Value) {
    let who = format!("{source}: {}", kind_and_name(policy));
    let (selector, pod_labels) = selector_and_pod_labels(deployment);
    assert_eq!(policy["apiVersion"], "networking.k8s.io/v1", "{who}");
    assert_eq!(
        policy["metadata"]["namespace"], deployment["metadata"]["namespace"],
        "{who} is in its Deployment's namespace"
    );
    let spec = &policy["spec"];
    assert_eq!(
        &spec["podSelector"],
        selector,
        "{who} selects exactly the pods of {}",
        kind_and_name(deployment)
    );
    assert!(
        selects(&spec["podSelector"], pod_labels),
        "{who}: its pod selector matches the pod template's labels {pod_labels}"
    );
    // The one port it lets in is the container's metrics port, which the probes and the
    // metrics Service use.
    let metrics = container(deployment)["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == "metrics"))
        .unwrap_or_else(|| panic!("{who}: the container has a port named metrics"));
    assert_eq!(
        spec["ingress"],
        json!([{"ports": [{"port": metrics["containerPort"], "protocol": "TCP"}]}]),
        "{who} lets in the metrics port only"
    );
    assert_eq!(
        spec,
        &expected_network_policy(selector),
        "{who}: the metrics port in; DNS, the API server and HTTPS to Twilio out"
    );
}

/// Asserts each Deployment of `objects` has exactly one PodDisruptionBudget and one
/// NetworkPolicy, named after it, selecting its pods and no other Deployment's.
fn assert_one_budget_and_policy_per_deployment(source: &str, objects: &[Value]) {
    let deployments = all_of(objects, "Deployment");
    assert!(!deployments.is_empty(), "{source}: no Deployment");
    for (kind, selector_field) in [
        ("PodDisruptionBudget", "selector"),
        ("NetworkPolicy", "podSelector"),
    ] {
        let found = all_of(objects, kind);
        assert_eq!(
            found.len(),
            deployments.len(),
            "{source}: one {kind} per Deployment: {:?}",
            found.iter().map(|o| kind_and_name(o)).collect::<Vec<_>>()
        );
        for deployment in &deployments {
            let (_, pod_labels) = selector_and_pod_labels(deployment);
            let selecting: Vec<&&Value> = found
                .iter()
                .filter(|o| selects(&o["spec"][selector_field], pod_labels))
                .collect();
            assert_eq!(
                selecting.len(),
                1,
                "{source}: exactly one {kind} selects the pods of {}: {:?}",
                kind_and_name(deployment),
                selecting
                    .iter()
                    .map(|o| kind_and_name(o))
                    .collect::<Vec<_>>()
            );
            let object = selecting[0];
            assert_eq!(
                object["metadata"]["name"], deployment["metadata"]["name"],
                "{source}: {kind} named after its Deployment"
            );
            if kind == "PodDisruptionBudget" {
                assert_disruption_budget(source, object, deployment);
            } else {
                assert_network_policy(source, object, deployment);
            }
        }
    }
}

fn kustomize_base() -> Vec<Value> {
    parse_yaml(&kustomize("deploy"))
}

/// Namespace `senderops` as deploy/ declares it (Pod Security labels included), for real.
fn install_senderops_namespace() {
    install_namespace(one_of(&kustomize_base(), "Namespace"));
}

fn helm_default() -> Vec<Value> {
    parse_yaml(&helm_template(RELEASE, INSTALL_NAMESPACE, &[], &[]))
}

#[test]
fn the_crd_copies_under_deploy_match_crds() {
    let source = std::fs::read_to_string(repo_root().join("crds/whatsappsender.yaml"))
        .expect("read crds/whatsappsender.yaml");
    for copy in [
        "deploy/base/crd/whatsappsender.yaml",
        "deploy/helm/senderops/crds/whatsappsender.yaml",
    ] {
        let text = std::fs::read_to_string(repo_root().join(copy))
            .unwrap_or_else(|e| panic!("read {copy}: {e}"));
        assert!(
            text == source,
            "{copy} differs from crds/whatsappsender.yaml: run `make manifests` and commit the result"
        );
    }
}

#[test]
fn the_kustomize_base_installs_everything_in_namespace_senderops() {
    let objects = kustomize_base();
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BASE_KINDS.iter().copied().collect(),
        "kinds installed"
    );
    assert_eq!(
        one_of(&objects, "Namespace")["metadata"]["name"],
        INSTALL_NAMESPACE
    );
    for object in &objects {
        if !CLUSTER_SCOPED_KINDS.contains(&object["kind"].as_str().unwrap_or("")) {
            assert_eq!(
                object["metadata"]["namespace"],
                INSTALL_NAMESPACE,
                "{} is in the operator's namespace",
                kind_and_name(object)
            );
        }
    }
    let crd = one_of(&objects, "CustomResourceDefinition");
    assert_eq!(
        crd["metadata"]["name"],
        "whatsappsenders.messaging.senderops.io"
    );

    let service = one_of(&objects, "Service");
    let pod_labels = &one_of(&objects, "Deployment")["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().expect("a selector") {
        assert_eq!(
            &pod_labels[key], value,
            "the metrics Service selects the operator pods"
        );
    }
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}])
    );
}

#[test]
fn the_kustomize_base_is_accepted_by_the_api_server() {
    let rendered = kustomize("deploy");
    let objects = parse_yaml(&rendered);
    // The namespace for real, so the namespaced objects have somewhere to go.
    install_senderops_namespace();
    let output = server_dry_run(&rendered, "kubectl kustomize deploy/");
    assert_dry_run_covered(&output, &objects);

    // The README's command as it is: client-side apply of the directory.
    controlplane::shared()
        .kubectl()
        .args(["apply", "--dry-run=server", "-k"])
        .arg(repo_root().join("deploy"))
        .run()
        .expect_success("kubectl apply -k deploy/ --dry-run=server");
}

#[test]
fn the_rbac_grants_exactly_the_api_calls_the_operator_makes() {
    assert_least_privilege("kustomize deploy/", &kustomize_base());
    let objects = kustomize_base();
    let (operator, _) = operator_and_lease_roles(&objects);
    assert_eq!(operator["kind"], "ClusterRole", "all namespaces by default");
    assert_least_privilege("helm template (defaults)", &helm_default());
}

#[test]
fn the_operator_runs_non_root_read_only_and_without_privileges() {
    assert_locked_down_operator("kustomize deploy/", one_of(&kustomize_base(), "Deployment"));
    assert_locked_down_operator(
        "helm template (defaults)",
        one_of(&helm_default(), "Deployment"),
    );
}

#[test]
fn the_operator_pod_meets_the_restricted_pod_security_standard() {
    let objects = kustomize_base();
    let namespace = one_of(&objects, "Namespace");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted",
        "namespace senderops enforces the restricted standard: {namespace}"
    );
    install_senderops_namespace();
    // A pod of the Deployment's template, dry-run where PodSecurity admission enforces.
    let pod = |spec: &Value| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "senderops-pod-security", "namespace": INSTALL_NAMESPACE},
            "spec": spec,
        })
        .to_string()
    };
    let spec = one_of(&objects, "Deployment")["spec"]["template"]["spec"].clone();
    let dry_run = |manifest: String| {
        controlplane::shared()
            .kubectl()
            .args(["create", "--dry-run=server", "-f", "-"])
            .stdin(manifest)
            .run()
    };
    dry_run(pod(&spec)).expect_success("admit the operator pod under the restricted standard");

    // The check is live: the same pod allowed to escalate privileges is refused.
    let mut escalating = spec;
    escalating["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    let refused = dry_run(pod(&escalating)).expect_failure("a pod that may escalate privileges");
    assert!(
        refused.stderr.contains("PodSecurity"),
        "refused by PodSecurity admission: {}",
        refused.stderr
    );
}

/// The label the sharding overlay shards by.
const SHARD_LABEL: &str = "senderops.io/shard";

/// What a Deployment of the sharding overlay reconciles, read off its `--selector`.
#[derive(Debug)]
enum Shard {
    /// A named shard: the senders labelled `senderops.io/shard=VALUE`.
    Named(String),
    /// The default shard: every sender whose label is none of these values, or missing.
    Default(BTreeSet<String>),
}

fn shard_of(selector: &str) -> Shard {
    if let Some(value) = selector.strip_prefix(&format!("{SHARD_LABEL}=")) {
        return Shard::Named(value.to_string());
    }
    let values = selector
        .strip_prefix(&format!("{SHARD_LABEL} notin ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| {
            panic!("neither `{SHARD_LABEL}=VALUE` nor `{SHARD_LABEL} notin (VALUES)`: {selector:?}")
        });
    Shard::Default(values.split(',').map(|v| v.trim().to_string()).collect())
}

#[test]
fn the_sharding_overlay_runs_one_deployment_per_shard_with_its_own_selector_and_lease() {
    let rendered = kustomize("deploy/overlays/sharding");
    let objects = parse_yaml(&rendered);
    let deployments = all_of(&objects, "Deployment");

    let mut leases = BTreeSet::new();
    let mut selectors = BTreeSet::new();
    // The named shards' values and the default shard's `notin` list, as rendered: nothing here
    // names a shard, so a shard added without its value in the default's list fails below.
    let mut named = BTreeSet::new();
    let mut defaults = Vec::new();
    // (Deployment, its --selector), for the API server below.
    let mut sender_selectors = Vec::new();
    for deployment in &deployments {
        let name = kind_and_name(deployment);
        let args = args_of(deployment);
        let selector = flag_values(&args, "--selector");
        assert_eq!(selector.len(), 1, "{name} has one --selector: {args:?}");
        let shard = match shard_of(&selector[0]) {
            Shard::Named(value) => {
                assert!(
                    named.insert(value.clone()),
                    "two Deployments select {SHARD_LABEL}={value}"
                );
                value
            }
            Shard::Default(values) => {
                defaults.push((name.clone(), values));
                "default".to_string()
            }
        };
        sender_selectors.push((name_of(deployment).to_string(), selector[0].clone()));
        assert_eq!(
            name_of(deployment),
            format!("senderops-shard-{shard}"),
            "{name} is named after its shard: {args:?}"
        );
        let lease = flag_values(&args, "--lease-name");
        assert_eq!(
            lease,
            [format!("senderops-shard-{shard}")],
            "{name} names one Lease, its shard's: {args:?}"
        );
        leases.insert(lease[0].clone());
        assert_locked_down_operator(&name, deployment);

        let selector = &deployment["spec"]["selector"]["matchLabels"];
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        for (key, value) in selector.as_object().expect("matchLabels") {
            assert_eq!(&labels[key], value, "{name} selects its own pods");
        }
        selectors.insert(selector.to_string());
        // The other shards' pods do not match this selector.
        for other in deployments.iter().filter(|d| d != &deployment) {
            let other_labels = &other["spec"]["template"]["metadata"]["labels"];
            assert!(
                selector
                    .as_object()
                    .unwrap()
                    .iter()
                    .any(|(k, v)| &other_labels[k] != v),
                "{name}'s selector {selector} also selects {}'s pods",
                kind_and_name(other)
            );
        }
    }
    assert!(!named.is_empty(), "named shards: {rendered}");
    assert_eq!(
        defaults.len(),
        1,
        "one default shard takes the senders no named shard selects: {defaults:?}"
    );
    let (default, not_in) = &defaults[0];
    assert_eq!(
        not_in, &named,
        "{default}'s `notin` list is exactly the named shards' values: a value missing from it \
         is reconciled by two shards, one no shard names is reconciled by none"
    );
    assert_eq!(
        deployments.len(),
        named.len() + 1,
        "one Deployment per named shard and the default"
    );
    assert_eq!(
        leases.len(),
        deployments.len(),
        "each shard elects its own leader: {leases:?}"
    );
    assert!(
        !leases.contains("senderops"),
        "no shard shares the unsharded Lease: {leases:?}"
    );
    assert_eq!(
        selectors.len(),
        deployments.len(),
        "distinct pod selectors: {selectors:?}"
    );

    // Everything else is shared, once.
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "Service",
    ] {
        one_of(&objects, kind);
    }
    let shared: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] != "Deployment")
        .cloned()
        .chain(std::iter::once(deployments[0].clone()))
        .collect();
    assert_least_privilege("kustomize deploy/overlays/sharding", &shared);
    let service = one_of(&objects, "Service");
    for deployment in &deployments {
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        for (key, value) in service["spec"]["selector"].as_object().expect("a selector") {
            assert_eq!(
                &labels[key],
                value,
                "the metrics Service scrapes {}",
                kind_and_name(deployment)
            );
        }
    }

    install_senderops_namespace();
    let output = server_dry_run(&rendered, "kubectl kustomize deploy/overlays/sharding/");
    assert_dry_run_covered(&output, &objects);

    // The selectors as the API server reads them (the operator hands `--selector` to it): each
    // object, labelled with a named shard's value, with a value no shard names (a typo) or
    // with no shard label at all, is selected by exactly one shard, and the default shard takes
    // the last two. ConfigMaps stand in for senders: label selection is the same for any kind.
    let typo = "typo";
    assert!(!named.contains(typo), "{typo} names no shard");
    let plane = controlplane::shared();
    let ns = "sharding-overlay-selectors";
    plane
        .kubectl()
        .args(["create", "namespace", ns])
        .run()
        .expect_success(&format!("create namespace {ns}"));
    // (object, the shard that should take it)
    let mut expected: Vec<(String, String)> = Vec::new();
    let mut items = Vec::new();
    for value in named.iter().map(String::as_str).chain([typo, ""]) {
        let (object, owner) = match value {
            "" => ("no-label".to_string(), "default"),
            v if v == typo => (format!("shard-{v}"), "default"),
            v => (format!("shard-{v}"), v),
        };
        let labels = match value {
            "" => json!({}),
            v => json!({ SHARD_LABEL: v }),
        };
        items.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": object, "namespace": ns, "labels": labels},
        }));
        expected.push((object, format!("senderops-shard-{owner}")));
    }
    plane
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string())
        .run()
        .expect_success("create one labelled ConfigMap per shard value");
    let mut taken_by: Vec<(String, Vec<String>)> = expected
        .iter()
        .map(|(object, _)| (object.clone(), Vec::new()))
        .collect();
    for (deployment, selector) in &sender_selectors {
        let listed = plane
            .kubectl()
            .args(["-n", ns, "get", "configmaps", "-l", selector, "-o", "name"])
            .run()
            .expect_success(&format!("list with {deployment}'s selector {selector:?}"));
        for line in listed.stdout.lines() {
            let object = line.trim_start_matches("configmap/");
            // Objects the API server put there itself (kube-root-ca.crt) are not ours.
            if let Some((_, shards)) = taken_by.iter_mut().find(|(o, _)| o == object) {
                shards.push(deployment.clone());
            }
        }
    }
    for ((object, owner), (_, shards)) in expected.iter().zip(&taken_by) {
        assert_eq!(
            shards,
            std::slice::from_ref(owner),
            "{object} is reconciled by {owner} alone: {sender_selectors:?}"
        );
    }
}

#[test]
fn the_operator_has_a_disruption_budget_and_a_network_policy_for_its_pods() {
    for (source, objects) in [
        ("kustomize deploy/", kustomize_base()),
        ("helm template (defaults)", helm_default()),
    ] {
        let deployment = one_of(&objects, "Deployment");
        assert_disruption_budget(source, one_of(&objects, "PodDisruptionBudget"), deployment);
        assert_network_policy(source, one_of(&objects, "NetworkPolicy"), deployment);
        assert_one_budget_and_policy_per_deployment(source, &objects);
    }
}

#[test]
fn every_shard_has_its_own_disruption_budget_and_network_policy() {
    let objects = parse_yaml(&kustomize("deploy/overlays/sharding"));
    assert!(
        all_of(&objects, "Deployment").len() >= 2,
        "the sharding overlay runs several Deployments"
    );
    assert_one_budget_and_policy_per_deployment("kustomize deploy/overlays/sharding", &objects);
}

#[test]
fn helm_values_adjust_or_leave_out_the_network_policy_and_the_disruption_budget() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let values = [
        "networkPolicy.apiServerCIDRs={172.18.0.2/32}".to_string(),
        "networkPolicy.apiServerPorts={8443}".to_string(),
        "networkPolicy.clusterCIDRs={10.0.0.0/8,100.64.0.0/10}".to_string(),
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring".to_string(),
        "networkPolicy.extraEgress[0].ports[0].port=3128".to_string(),
        "metricsPort=9090".to_string(),
        format!("image.digest={digest}"),
    ];
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let rendered = helm_template("team-a", INSTALL_NAMESPACE, &values, &[]);
    let objects = parse_yaml(&rendered);
    let deployment = one_of(&objects, "Deployment");
    assert_eq!(
        container(deployment)["image"],
        format!("ghcr.io/senderops/senderops@{digest}"),
        "image.digest pins the image, without the tag"
    );
    let spec = &one_of(&objects, "NetworkPolicy")["spec"];
    assert_eq!(spec["podSelector"], deployment["spec"]["selector"]);
    assert_eq!(
        spec["ingress"],
        json!([{
            "ports": [{"port": 9090, "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}],
        }]),
        "the metrics port (metricsPort), from metricsFrom"
    );
    assert_eq!(
        spec["egress"],
        json!([
            {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            {
                "ports": [{"port": 8443, "protocol": "TCP"}],
                "to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}],
            },
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "100.64.0.0/10"]}}],
                "ports": [{"port": 443, "protocol": "TCP"}],
            },
            {"ports": [{"port": 3128}]},
        ]),
        "the API server at its CIDRs and ports, HTTPS outside clusterCIDRs, extraEgress"
    );
    assert_disruption_budget(
        "helm template team-a",
        one_of(&objects, "PodDisruptionBudget"),
        deployment,
    );
    install_senderops_namespace();
    let output = server_dry_run(&rendered, "helm template with network policy values");
    assert_dry_run_covered(&output, &objects);

    let without = parse_yaml(&helm_template(
        RELEASE,
        INSTALL_NAMESPACE,
        &[
            "networkPolicy.enabled=false",
            "podDisruptionBudget.enabled=false",
        ],
        &[],
    ));
    for kind in ["NetworkPolicy", "PodDisruptionBudget"] {
        assert!(all_of(&without, kind).is_empty(), "{kind} left out");
    }
    one_of(&without, "Deployment");
}

#[test]
fn helm_and_kustomize_install_the_same_operator() {
    let kustomized = kustomize_base();
    let helmed = helm_default();

    let (k_operator, k_lease) = operator_and_lease_roles(&kustomized);
    let (h_operator, h_lease) = operator_and_lease_roles(&helmed);
    assert_eq!(grants(k_operator), grants(h_operator), "operator rules");
    assert_eq!(grants(k_lease), grants(h_lease), "lease rules");
    for (k, h) in [(k_operator, h_operator), (k_lease, h_lease)] {
        assert_eq!(k["kind"], h["kind"]);
        assert_eq!(k["metadata"]["name"], h["metadata"]["name"]);
    }

    let k_deployment = one_of(&kustomized, "Deployment");
    let h_deployment = one_of(&helmed, "Deployment");
    assert_eq!(
        args_of(k_deployment),
        args_of(h_deployment),
        "container args"
    );
    for field in [
        "image",
        "securityContext",
        "resources",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "ports",
        "env",
    ] {
        assert_eq!(
            container(k_deployment)[field],
            container(h_deployment)[field],
            "container {field}"
        );
    }
    let (k_pod, h_pod) = (
        &k_deployment["spec"]["template"]["spec"],
        &h_deployment["spec"]["template"]["spec"],
    );
    for field in [
        "securityContext",
        "serviceAccountName",
        "terminationGracePeriodSeconds",
        "topologySpreadConstraints",
    ] {
        assert_eq!(k_pod[field], h_pod[field], "pod {field}");
    }
    assert_eq!(
        k_deployment["spec"]["replicas"],
        h_deployment["spec"]["replicas"]
    );
    assert_eq!(
        one_of(&kustomized, "Service")["spec"]["ports"],
        one_of(&helmed, "Service")["spec"]["ports"],
        "metrics Service ports"
    );
    for kind in ["PodDisruptionBudget", "NetworkPolicy"] {
        let (k, h) = (one_of(&kustomized, kind), one_of(&helmed, kind));
        assert_eq!(k["metadata"]["name"], h["metadata"]["name"], "{kind} name");
        assert_eq!(k["spec"], h["spec"], "{kind} spec");
    }
}

/// The runtime's rule: the shipped manifests always name the kinds they run (and hold RBAC
/// for), so a CRD of another kind installed later never starts a controller without its RBAC.
#[test]
fn every_shipped_install_names_the_kinds_it_runs() {
    let renderings = [
        ("kustomize deploy/", kustomize_base()),
        (
            "kustomize deploy/overlays/sharding",
            parse_yaml(&kustomize("deploy/overlays/sharding")),
        ),
        (
            "kustomize deploy/overlays/namespaced",
            parse_yaml(&kustomize("deploy/overlays/namespaced")),
        ),
        ("helm template", helm_default()),
    ];
    for (source, objects) in renderings {
        let deployments = all_of(&objects, "Deployment");
        assert!(!deployments.is_empty(), "{source} has no Deployment");
        for deployment in deployments {
            assert_eq!(
                flag_values(&args_of(deployment), "--controllers"),
                ["whatsappsender"],
                "{source}: {}",
                name_of(deployment)
            );
        }
    }
}

#[test]
fn the_helm_chart_lints_clean() {
    let out = helm(&["lint", "--strict", support::deploy::CHART]);
    assert!(
        out.success,
        "helm lint --strict:\n{}{}",
        out.stdout, out.stderr
    );
}

#[test]
fn the_default_helm_render_is_accepted_by_the_api_server() {
    let rendered = helm_template(RELEASE, INSTALL_NAMESPACE, &[], &["--include-crds"]);
    let objects = parse_yaml(&rendered);
    one_of(&objects, "CustomResourceDefinition");
    assert!(
        all_of(&objects, "ServiceMonitor").is_empty(),
        "no ServiceMonitor unless asked for"
    );
    install_senderops_namespace();
    let output = server_dry_run(&rendered, "helm template (defaults, with the CRD)");
    assert_dry_run_covered(&output, &objects);
}

#[test]
fn the_readmes_helm_install_command_works_against_a_cluster() {
    let plane = controlplane::shared();
    let kubeconfig = plane.kubeconfig();
    // deploy/README.md's command, as a dry run that talks to the API server.
    let out = helm(&[
        "install",
        RELEASE,
        support::deploy::CHART,
        "-n",
        INSTALL_NAMESPACE,
        "--create-namespace",
        "--dry-run=server",
        "--kubeconfig",
        kubeconfig.to_str().expect("a UTF-8 path"),
    ]);
    assert!(
        out.success,
        "helm install --dry-run=server:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("STATUS: pending-install")
            && out.stdout.contains("watching every namespace"),
        "helm printed the release and its NOTES:\n{}",
        out.stdout
    );
}

#[tokio::test]
async fn helm_values_render_a_namespaced_sharded_monitored_install() {
    let plane = controlplane::shared();
    let watched = plane.namespace("helm-watched").await;
    let release = "team-a";
    let values = [
        format!("watchNamespace={watched}"),
        "selector=senderops.io/shard=a".to_string(),
        "serviceMonitor.enabled=true".to_string(),
        "serviceMonitor.labels.release=prometheus".to_string(),
        "image.repository=registry.example.com/senderops".to_string(),
        "image.tag=0.2.0".to_string(),
        "image.pullPolicy=Always".to_string(),
        "replicas=3".to_string(),
        "logFormat=text".to_string(),
        "twilio.apiUrl=https://twilio-proxy.example.com".to_string(),
        "twilio.requestsPerSecond=20".to_string(),
        "resyncInterval=10m".to_string(),
        "nodeSelector.kubernetes\\.io/os=linux".to_string(),
        "tolerations[0].key=dedicated".to_string(),
        "tolerations[0].operator=Exists".to_string(),
        "resources.limits.memory=512Mi".to_string(),
        "extraArgs[0]=--poll-interval=10s".to_string(),
    ];
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let rendered = helm_template(release, INSTALL_NAMESPACE, &values, &[]);
    let objects = parse_yaml(&rendered);

    // RBAC confined to the watched namespace, but for the read of the cluster-scoped CRD; leases
    // still in the release's namespace.
    let cluster_roles = all_of(&objects, "ClusterRole");
    assert!(
        cluster_roles.len() == 1 && is_crd_only(cluster_roles[0]),
        "watchNamespace needs no cluster-wide grant but reading its CRD: {:?}",
        objects.iter().map(kind_and_name).collect::<Vec<_>>()
    );
    assert_eq!(grants(cluster_roles[0]), expected(CRD_RULES));
    let crd_binding = one_of(&objects, "ClusterRoleBinding");
    assert_eq!(
        crd_binding["roleRef"]["name"],
        cluster_roles[0]["metadata"]["name"]
    );
    assert_eq!(crd_binding["subjects"][0]["namespace"], INSTALL_NAMESPACE);
    let (operator, lease) = operator_and_lease_roles(&objects);
    assert_eq!(operator["kind"], "Role");
    assert_eq!(operator["metadata"]["namespace"], json!(watched));
    assert_eq!(grants(operator), expected(OPERATOR_RULES));
    let binding = all_of(&objects, "RoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["namespace"] == json!(watched))
        .expect("a RoleBinding in the watched namespace");
    assert_eq!(binding["subjects"][0]["namespace"], INSTALL_NAMESPACE);
    assert_eq!(lease["metadata"]["namespace"], INSTALL_NAMESPACE);

    let deployment = one_of(&objects, "Deployment");
    let args = args_of(deployment);
    assert_eq!(
        flag_values(&args, "--namespace"),
        [watched.as_str()],
        "{args:?}"
    );
    assert_eq!(
        flag_values(&args, "--selector"),
        ["senderops.io/shard=a"],
        "{args:?}"
    );
    assert_eq!(
        flag_values(&args, "--lease-name"),
        ["team-a-senderops"],
        "{args:?}"
    );
    assert_eq!(flag_values(&args, "--log-format"), ["text"], "{args:?}");
    assert_eq!(
        flag_values(&args, "--twilio-api-url"),
        ["https://twilio-proxy.example.com"],
        "{args:?}"
    );
    assert_eq!(
        flag_values(&args, "--twilio-requests-per-second"),
        ["20"],
        "{args:?}"
    );
    assert_eq!(flag_values(&args, "--resync-interval"), ["10m"], "{args:?}");
    assert_eq!(
        args.last().map(String::as_str),
        Some("--poll-interval=10s"),
        "{args:?}"
    );
    let container = container(deployment);
    assert_eq!(container["image"], "registry.example.com/senderops:0.2.0");
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(container["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "dedicated", "operator": "Exists"}])
    );

    // The ServiceMonitor (its CRD is not on the test control plane: checked as data).
    let monitor = one_of(&objects, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["namespace"], INSTALL_NAMESPACE);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["namespaceSelector"],
        json!({"matchNames": [INSTALL_NAMESPACE]})
    );
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": true}])
    );
    let service = one_of(&objects, "Service");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "the ServiceMonitor selects the metrics Service"
        );
    }

    // Everything but the ServiceMonitor goes through the API server.
    install_senderops_namespace();
    let installable: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] != "ServiceMonitor")
        .cloned()
        .collect();
    let stream: String = installable
        .iter()
        .map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap()))
        .collect();
    let output = server_dry_run(&stream, "helm template with watchNamespace and selector");
    assert_dry_run_covered(&output, &installable);
}

/// The namespaces `deploy/overlays/namespaced` watches, as its team directories name them.
const OVERLAY_NAMESPACES: &[&str] = &["team-a", "team-b"];

fn is_lease_role(role: &Value) -> bool {
    role["rules"][0]["apiGroups"][0] == "coordination.k8s.io"
}

/// Asserts a namespaced install's RBAC: the operator's rules in a Role, bound to its
/// ServiceAccount, in each of `watched` and in no other namespace; cluster-wide nothing but the
/// read of its CRD, so no Secret (and no sender) outside `watched`; leases in `install`; and
/// `--namespace` naming exactly `watched`.
fn assert_namespaced_rbac(source: &str, objects: &[Value], install: &str, watched: &[&str]) {
    let all_names = || objects.iter().map(kind_and_name).collect::<Vec<_>>();
    let service_account = one_of(objects, "ServiceAccount");
    assert_eq!(
        service_account["metadata"]["namespace"], install,
        "{source}"
    );
    let subjects = json!([{
        "kind": "ServiceAccount",
        "name": service_account["metadata"]["name"],
        "namespace": install,
    }]);

    // Cluster-wide: its CRD, by name, and nothing else.
    let cluster_roles = all_of(objects, "ClusterRole");
    assert!(
        cluster_roles.len() == 1 && is_crd_only(cluster_roles[0]),
        "{source}: no cluster-wide grant but reading the CRD: {:?}",
        all_names()
    );
    assert_eq!(grants(cluster_roles[0]), expected(CRD_RULES), "{source}");
    let cluster_binding = one_of(objects, "ClusterRoleBinding");
    assert_eq!(
        cluster_binding["roleRef"],
        json!({
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": cluster_roles[0]["metadata"]["name"],
        }),
        "{source}"
    );
    assert_eq!(cluster_binding["subjects"], subjects, "{source}");

    // Secrets are granted by Roles in the watched namespaces, and by nothing else.
    for role in all_of(objects, "ClusterRole")
        .into_iter()
        .chain(all_of(objects, "Role"))
    {
        let reads_secrets = grants(role)
            .iter()
            .any(|(group, resource, _)| group.is_empty() && resource == "secrets");
        let namespace = role["metadata"]["namespace"].as_str().unwrap_or("");
        assert!(
            !reads_secrets || (role["kind"] == "Role" && watched.contains(&namespace)),
            "{source}: {} in {namespace:?} grants Secrets",
            kind_and_name(role)
        );
    }

    // A Role and its RoleBinding per watched namespace, with exactly the operator's rules.
    let roles: Vec<&Value> = all_of(objects, "Role")
        .into_iter()
        .filter(|r| !is_lease_role(r))
        .collect();
    let mut namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap_or(""))
        .collect();
    namespaces.sort();
    let mut expected_namespaces = watched.to_vec();
    expected_namespaces.sort();
    assert_eq!(
        namespaces,
        expected_namespaces,
        "{source}: one operator Role per watched namespace: {:?}",
        all_names()
    );
    for role in &roles {
        let namespace = &role["metadata"]["namespace"];
        assert_eq!(
            grants(role),
            expected(OPERATOR_RULES),
            "{source}: {} in {namespace} grants exactly what `senderops run` calls",
            kind_and_name(role)
        );
        let binding = all_of(objects, "RoleBinding")
            .into_iter()
            .find(|b| {
                b["metadata"]["namespace"] == *namespace
                    && b["roleRef"]["name"] == role["metadata"]["name"]
            })
            .unwrap_or_else(|| panic!("{source}: nothing binds the Role in {namespace}"));
        assert_eq!(binding["roleRef"]["kind"], "Role", "{source}: {binding}");
        assert_eq!(binding["subjects"], subjects, "{source}: {binding}");
    }

    // Leases in the operator's own namespace.
    let leases: Vec<&Value> = all_of(objects, "Role")
        .into_iter()
        .filter(|r| is_lease_role(r))
        .collect();
    assert_eq!(leases.len(), 1, "{source}: one lease Role");
    assert_eq!(grants(leases[0]), expected(LEASE_RULES), "{source}");
    assert_eq!(leases[0]["metadata"]["namespace"], install, "{source}");

    let args = args_of(one_of(objects, "Deployment"));
    assert_eq!(
        flag_values(&args, "--namespace"),
        [watched.join(",")],
        "{source}: the operator watches exactly the namespaces it is granted: {args:?}"
    );
}

#[test]
fn the_namespaced_overlay_grants_the_operator_its_rules_in_the_watched_namespaces_only() {
    let source = "kustomize deploy/overlays/namespaced";
    let rendered = kustomize("deploy/overlays/namespaced");
    let objects = parse_yaml(&rendered);
    assert_namespaced_rbac(source, &objects, INSTALL_NAMESPACE, OVERLAY_NAMESPACES);
    let deployment = one_of(&objects, "Deployment");
    assert_locked_down_operator(source, deployment);

    // Otherwise it installs deploy/ as it is: everything but base's ClusterRole and its
    // binding, and the same Deployment but for --namespace.
    let base = kustomize_base();
    for object in &base {
        let kind = object["kind"].as_str().unwrap_or("");
        if ["ClusterRole", "ClusterRoleBinding", "Deployment"].contains(&kind) {
            continue;
        }
        assert!(
            objects.contains(object),
            "{source} installs deploy/'s {} unchanged",
            kind_and_name(object)
        );
    }
    let mut args = args_of(deployment);
    args.retain(|a| !a.starts_with("--namespace="));
    let base_deployment = one_of(&base, "Deployment");
    assert_eq!(args, args_of(base_deployment), "{source}: the other args");
    assert_eq!(
        container(deployment)["env"],
        container(base_deployment)["env"]
    );

    // The Roles hold base's rules but the CRD read, and the chart renders the same install
    // for the same namespaces.
    let base_rules = grants(named(&base, "ClusterRole", "senderops"));
    let role = all_of(&objects, "Role")
        .into_iter()
        .find(|r| !is_lease_role(r))
        .expect("an operator Role");
    let with_crd: BTreeSet<Grant> = grants(role).union(&expected(CRD_RULES)).cloned().collect();
    assert_eq!(with_crd, base_rules, "{source}: base's ClusterRole's rules");
    let list = format!("watchNamespace={{{}}}", OVERLAY_NAMESPACES.join(","));
    let helmed = parse_yaml(&helm_template(RELEASE, INSTALL_NAMESPACE, &[&list], &[]));
    assert_eq!(
        args_of(one_of(&helmed, "Deployment")),
        args_of(deployment),
        "helm --set {list} and {source}: container args"
    );
    let rbac = |objects: &[Value]| -> BTreeSet<(String, String, String)> {
        objects
            .iter()
            .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
            .map(|o| {
                (
                    o["kind"].as_str().unwrap().to_string(),
                    o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    format!("{:?}", grants(o)),
                )
            })
            .collect()
    };
    assert_eq!(rbac(&helmed), rbac(&objects), "helm and {source}: roles");

    // The API server takes it, once the watched namespaces exist (it creates none).
    install_senderops_namespace();
    for namespace in OVERLAY_NAMESPACES {
        install_namespace(&json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace},
        }));
    }
    let output = server_dry_run(&rendered, "kubectl kustomize deploy/overlays/namespaced/");
    assert_dry_run_covered(&output, &objects);
}

#[tokio::test]
async fn helm_watch_namespace_takes_several_namespaces_each_granted_by_a_role_there() {
    let plane = controlplane::shared();
    let a = plane.namespace("helm-watched-a").await;
    let b = plane.namespace("helm-watched-b").await;
    let watched = [a.as_str(), b.as_str()];

    // A list, names separated by commas (escaped for --set; spaces allowed), a name given
    // twice, and a values file's YAML list: the same install.
    let values_dir = tempfile::tempdir().expect("a temporary directory");
    let values_file = values_dir.path().join("values.yaml");
    std::fs::write(&values_file, format!("watchNamespace:\n  - {a}\n  - {b}\n"))
        .expect("write a values file");
    let values_file = values_file.to_str().expect("a UTF-8 path").to_string();
    let renders = [
        (
            format!("--set watchNamespace={{{a},{b}}}"),
            vec![format!("watchNamespace={{{a},{b}}}")],
            vec![],
        ),
        (
            format!("--set watchNamespace={a}\\,{b}"),
            vec![format!("watchNamespace={a}\\, {b}")],
            vec![],
        ),
        (
            format!("--set watchNamespace={{{a},{b},{a}}}"),
            vec![format!("watchNamespace={{{a},{b},{a}}}")],
            vec![],
        ),
        (
            "-f values.yaml".to_string(),
            vec![],
            vec!["-f".to_string(), values_file.clone()],
        ),
    ];
    let mut rendered = String::new();
    for (how, values, extra) in &renders {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        rendered = helm_template(RELEASE, INSTALL_NAMESPACE, &values, &extra);
        let objects = parse_yaml(&rendered);
        let source = format!("helm template {how}");
        assert_namespaced_rbac(&source, &objects, INSTALL_NAMESPACE, &watched);
        assert_locked_down_operator(&source, one_of(&objects, "Deployment"));
    }

    let refused = helm(&[
        "template",
        RELEASE,
        support::deploy::CHART,
        "--set",
        "watchNamespace=Team_A",
    ]);
    assert!(
        !refused.success
            && refused
                .stderr
                .contains("\"Team_A\" is not a namespace name"),
        "a name that is no namespace's is refused; helm said: {}",
        refused.stderr
    );

    install_senderops_namespace();
    let objects = parse_yaml(&rendered);
    let output = server_dry_run(&rendered, "helm template with two watched namespaces");
    assert_dry_run_covered(&output, &objects);

    // deploy/README.md's command, as a dry run that talks to the API server (once the
    // namespaces it names exist); the notes name them.
    let documented = documented_command_in("deploy/README.md", "--set 'watchNamespace=");
    assert_eq!(documented[..2], ["helm", "install"], "{documented:?}");
    for namespace in OVERLAY_NAMESPACES {
        install_namespace(&json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace},
        }));
    }
    let kubeconfig = plane.kubeconfig();
    let mut args: Vec<&str> = documented[1..].iter().map(String::as_str).collect();
    args.extend([
        "--dry-run=server",
        "--kubeconfig",
        kubeconfig.to_str().expect("a UTF-8 path"),
    ]);
    let out = helm(&args);
    assert!(
        out.success && out.stdout.contains("watching namespaces team-a, team-b"),
        "{documented:?} --dry-run=server:\n{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn without_leader_election_the_chart_runs_one_replica_and_no_lease() {
    let rendered = helm_template(
        RELEASE,
        INSTALL_NAMESPACE,
        &["leaderElection=false", "replicas=1"],
        &[],
    );
    let objects = parse_yaml(&rendered);
    let args = args_of(one_of(&objects, "Deployment"));
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--leader-election") || a.starts_with("--lease-name")),
        "{args:?}"
    );
    assert!(
        all_of(&objects, "Role").is_empty(),
        "no lease Role without leader election"
    );
    named(&objects, "ClusterRole", RELEASE);

    let refused = helm(&[
        "template",
        RELEASE,
        support::deploy::CHART,
        "--set",
        "leaderElection=false",
    ]);
    assert!(
        !refused.success && refused.stderr.contains("replicas > 1 needs leaderElection"),
        "two replicas without leader election are refused; helm said: {}",
        refused.stderr
    );
}
