//! `kubectl apply -k` as the README says, of an overlay written with the README's commands
//! (`kustomize create --resources deploy`, `kustomize edit set image` with the image built here;
//! plus `imagePullPolicy: Never` and twilio-sim's URL, [`install_overlay`]): two replicas become
//! Available under the manifests' security context, probes and limits, as the kubelet enforces
//! them; one leads; senders become Ready; `/metrics` answers through the Service; the logs are
//! JSON lines that name each sender and hold no secret; a deleted pod stops at once; memory stays
//! low. The checked-in overlays other node tests and `make demo-cluster` apply
//! (hack/node/install/{node,sharding}) render exactly as the ones those commands write.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::fixture::{
    Cluster, OPERATOR_NAMESPACE, SENDERS_NAMESPACE, container_id, install_overlay, name_of,
    scrape_pod, sender_spec,
};
use super::node::{IMAGE, container_pid};
use crate::support::deploy::{all_of, container, kustomize, parse_yaml};
use crate::support::metrics::sum;
use crate::support::sim::TOKEN_A;

const SELECTOR: &str = "app.kubernetes.io/name=senderops";
/// deploy/operator/deployment.yaml's resources.
const MEMORY_REQUEST: u64 = 64 * 1024 * 1024;
const MEMORY_LIMIT: u64 = 256 * 1024 * 1024;
/// SIGTERM handled as PID 1: deploy/README says a deleted pod exits 0 and is gone within 3
/// seconds (its grace period is 60 s).
const STOP_WITHIN: Duration = Duration::from_secs(3);

/// `/proc/PID/status` of a container's process, as `field -> value`.
fn proc_status(pid: u32) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Asserts what the kubelet enforced on the operator's process: user and group 65532, no
/// capability, no privilege escalation, seccomp, a read-only root and the memory limit.
fn assert_enforced_security_context(pod: &Pod) {
    let name = name_of(pod);
    let pid = container_pid(&container_id(pod));
    let status = proc_status(pid);
    for ids in ["Uid", "Gid"] {
        assert!(
            status[ids].split_whitespace().all(|id| id == "65532"),
            "{name}: the operator runs as 65532, not {ids} {}",
            status[ids]
        );
    }
    for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            status[caps], "0000000000000000",
            "{name}: every capability dropped ({caps})"
        );
    }
    assert_eq!(status["NoNewPrivs"], "1", "{name}: no privilege escalation");
    assert_eq!(
        status["Seccomp"], "2",
        "{name}: the RuntimeDefault seccomp filter"
    );
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let root = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("{name}: no root mount in\n{mounts}"));
    let options = root.split_whitespace().nth(5).unwrap_or_default();
    assert!(
        options.split(',').any(|o| o == "ro"),
        "{name}: the root filesystem is read-only: {root}"
    );
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let memory = cgroup
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, path)| path.to_string()))
        .unwrap_or_else(|| panic!("{name}: no memory cgroup in\n{cgroup}"));
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes"
    ))
    .expect("read the container's memory limit");
    assert_eq!(
        limit.trim().parse::<u64>().ok(),
        Some(MEMORY_LIMIT),
        "{name}: the kubelet applied the manifests' memory limit"
    );
}

/// The memory cgroup directory of a container's process.
fn memory_cgroup(pid: u32) -> String {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let path = cgroup
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, path)| path.to_string()))
        .unwrap_or_else(|| panic!("no memory cgroup in\n{cgroup}"));
    format!("/sys/fs/cgroup/memory{path}")
}

/// A container's peak memory since it started, in bytes: its process's peak resident set
/// (VmHWM) and its cgroup's peak usage (`memory.max_usage_in_bytes`, what the limit is
/// enforced against, page cache included). One reading of the current use would miss the
/// start-up's list and the first reconciles.
fn memory_peak_of(pod: &Pod) -> (u64, u64) {
    let pid = container_pid(&container_id(pod));
    let hwm_kib: u64 = proc_status(pid)["VmHWM"]
        .trim_end_matches(" kB")
        .parse()
        .expect("VmHWM in kB");
    let dir = memory_cgroup(pid);
    let peak: u64 = std::fs::read_to_string(format!("{dir}/memory.max_usage_in_bytes"))
        .expect("read the memory cgroup's peak")
        .trim()
        .parse()
        .expect("a peak in bytes");
    (hwm_kib * 1024, peak)
}

/// Deletes operator pod `name` and follows it until it is gone: how long that took, and the
/// exit code its container's last status recorded (the kubelet writes it before the pod goes).
async fn delete_and_follow(cluster: &Cluster, name: &str) -> (Duration, Option<i32>) {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    let mut changes = std::pin::pin!(watcher::watch_object(pods.clone(), name));
    // The watch's first answer is the pod as it is now: start the clock after it.
    changes
        .next()
        .await
        .expect("the pod watch")
        .expect("watch the pod");
    let deleted = Instant::now();
    pods.delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    let mut exit_code = None;
    loop {
        let change = tokio::time::timeout(
            STOP_WITHIN.saturating_sub(deleted.elapsed()),
            changes.next(),
        )
        .await
        .unwrap_or_else(|_| panic!("{name} still there {STOP_WITHIN:?} after its deletion"));
        match change {
            Some(Ok(Some(pod))) => {
                let terminated = pod
                    .status
                    .and_then(|s| s.container_statuses)
                    .into_iter()
                    .flatten()
                    .find(|c| c.name == "senderops")
                    .and_then(|c| c.state?.terminated);
                if let Some(terminated) = terminated {
                    exit_code = Some(terminated.exit_code);
                }
            }
            Some(Ok(None)) => return (deleted.elapsed(), exit_code),
            // The watcher retries its own errors.
            Some(Err(_)) => {}
            None => panic!("the watch of {name} ended"),
        }
    }
}

/// The overlays written with the README's commands ([`install_overlay`]) render exactly as the
/// checked-in ones (what `make demo-cluster`, failover and rollout apply), with the image built
/// here, never pulled. No node: it takes no turn.
#[test]
fn the_checked_in_node_overlays_are_what_the_readmes_commands_write() {
    for (name, base) in [("node", "deploy"), ("sharding", "deploy/overlays/sharding")] {
        let overlay = install_overlay(&format!("readme-{name}"), base);
        let written = kustomize(overlay.path().to_str().expect("a UTF-8 path"));
        let checked_in = kustomize(&format!("hack/node/install/{name}"));
        assert!(
            written == checked_in,
            "hack/node/install/{name} renders otherwise than the README's commands on {base}"
        );
        let objects = parse_yaml(&written);
        let deployments = all_of(&objects, "Deployment");
        assert!(!deployments.is_empty(), "{name}: no Deployment");
        for deployment in deployments {
            assert_eq!(container(deployment)["image"], IMAGE, "{name}");
            assert_eq!(container(deployment)["imagePullPolicy"], "Never", "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_runs_two_locked_down_replicas_that_onboard_senders() {
    let cluster = Cluster::start("kustomize").await;
    let overlay = install_overlay("kustomize", "deploy");
    let began = Instant::now();
    cluster
        .kubectl(&["apply", "-k", overlay.path().to_str().unwrap()])
        .expect_success("kubectl apply -k of the README's overlay (kustomize edit set image)");
    cluster.wait_available("senderops", 2).await;
    let to_available = began.elapsed();
    eprintln!(
        "node Ready {:?} after start; kubectl apply -k to Deployment Available (2/2): {to_available:?}",
        cluster.node.started_in()
    );

    // Two replicas, as the kubelet runs them, exactly one leading.
    let pods = cluster.pods(SELECTOR).await;
    assert_eq!(
        pods.len(),
        2,
        "two replicas: {:?}",
        pods.iter().map(name_of).collect::<Vec<_>>()
    );
    let leader = cluster.leader_pod("senderops").await;
    let mut leading = 0;
    for pod in &pods {
        assert_enforced_security_context(pod);
        let metrics = scrape_pod(pod).await;
        let is_leader = sum(&metrics, "senderops_leader", &[]) == 1.0;
        assert_eq!(
            is_leader,
            name_of(pod) == leader,
            "{}: senderops_leader",
            name_of(pod)
        );
        leading += usize::from(is_leader);
    }
    assert_eq!(leading, 1, "exactly one replica leads");

    // The probes: no pod logged a failed probe (the startup probe waits for the real start).
    // Two Warnings are the test cluster's, not the operator's: the node has no cluster DNS, so
    // the kubelet warns MissingClusterDNS; and the API server's IP repair loop may warn
    // ClusterIPNotAllocated about a Service whose address its allocator does not hold yet, and
    // repairs it (seen once, on a machine that had just run the suite from a fresh clone).
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    let probe_failures: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && !matches!(
                    e.reason.as_deref(),
                    Some("MissingClusterDNS" | "ClusterIPNotAllocated")
                )
        })
        .map(|e| format!("{:?}: {:?}", e.reason, e.message))
        .collect();
    assert!(
        probe_failures.is_empty(),
        "no probe failed, no other Warning in {OPERATOR_NAMESPACE}: {probe_failures:#?}"
    );
    for pod in &pods {
        let status = pod.status.as_ref().expect("pod status");
        let started = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.clone())
            .expect("the container runs");
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .and_then(|c| c.last_transition_time.clone())
            .expect("a Ready condition");
        eprintln!(
            "{}: container start to Ready {} ms",
            name_of(pod),
            ready.0.as_millisecond() - started.0.as_millisecond()
        );
    }

    // Senders: one Twilio verifies itself, one needs the code the user receives.
    cluster.sim.number("+15017122661", "auto_verify").await;
    cluster.sim.number("+15017122662", "needs_code").await;
    cluster
        .apply_sender("acme-support", sender_spec("+15017122661", None), json!({}))
        .await;
    cluster
        .apply_sender(
            "acme-sales",
            sender_spec("+15017122662", Some("acme-sales-otp")),
            json!({}),
        )
        .await;
    let names = ["acme-support".to_string(), "acme-sales".to_string()];
    cluster.wait_ready(&names).await;
    let not_once = cluster.numbers_not_created_once().await;
    assert!(
        not_once.is_empty(),
        "one create attempt per number: {not_once:?}"
    );

    // /metrics through the Service, from the node: the Service picks a replica at random, so
    // scrape until the leader answered.
    let mut reconciles = 0.0;
    for _ in 0..40 {
        let metrics = cluster.scrape_through_service().await;
        if sum(&metrics, "senderops_leader", &[]) == 1.0 {
            reconciles = sum(
                &metrics,
                "senderops_reconciles_total",
                &[("outcome", "success")],
            );
            break;
        }
    }
    assert!(
        reconciles >= 2.0,
        "the leader's reconciles, through the Service: {reconciles}"
    );

    // Logs: JSON lines; those about a sender name its namespace, name and SID; no secret.
    let logs = cluster.logs(&leader);
    let senders = cluster.senders();
    let mut secrets = vec![TOKEN_A.to_string()];
    for name in &names {
        let sender = senders.get(name).await.expect("read a sender");
        let sid = sender.status.and_then(|s| s.sid).expect("a SID");
        if let Some(code) = cluster.sim.otp(&sid).await {
            secrets.push(code);
        }
        let about: Vec<&str> = logs.lines().filter(|l| l.contains(&sid)).collect();
        assert!(!about.is_empty(), "the leader's log names {sid}:\n{logs}");
        for line in about {
            // Parsed as a log pipeline would: the reconcile span among the line's spans names
            // the sender, each field once.
            let parsed: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let names_it = parsed["spans"].as_array().is_some_and(|spans| {
                spans.iter().any(|span| {
                    span["name"] == "reconcile"
                        && span["namespace"] == SENDERS_NAMESPACE
                        && span["sender"] == name.as_str()
                        && span["sid"] == sid.as_str()
                })
            });
            assert!(
                names_it,
                "a line about {sid} names {SENDERS_NAMESPACE}/{name}: {line}"
            );
        }
    }
    for line in logs.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a token or code leaked into the logs"
        );
    }

    // Memory, from the host: each replica's peak since it started (the leader's includes its
    // start-up lists and these reconciles), its resident set against the request and its
    // cgroup's (page cache included) against the limit the kernel enforces.
    for pod in cluster.pods(SELECTOR).await {
        let (resident, cgroup) = memory_peak_of(&pod);
        eprintln!(
            "{}: peak RSS (VmHWM) {:.1} MiB, cgroup peak {:.1} MiB (request 64 MiB, limit 256 MiB)",
            name_of(&pod),
            resident as f64 / 1048576.0,
            cgroup as f64 / 1048576.0
        );
        assert!(
            resident < MEMORY_REQUEST,
            "{}: a peak resident set of {resident} bytes, above its request",
            name_of(&pod)
        );
        assert!(
            cgroup < MEMORY_LIMIT,
            "{}: a cgroup peak of {cgroup} bytes, at its limit",
            name_of(&pod)
        );
        assert!(resident > 1024 * 1024, "a plausible peak: {resident}");
    }

    // SIGTERM as PID 1: a deleted pod exits cleanly (status 0) within 3 s (deploy/README),
    // the standby and then the leader, which first finishes its reconciles and releases the
    // Lease.
    let standby = pods
        .iter()
        .map(name_of)
        .find(|p| *p != leader)
        .expect("a standby");
    for (role, pod) in [("standby", standby), ("leader", leader.clone())] {
        let (gone_in, exit_code) = delete_and_follow(&cluster, &pod).await;
        eprintln!("the deleted {role} {pod} exited with {exit_code:?} and was gone in {gone_in:?}");
        assert_eq!(
            exit_code,
            Some(0),
            "the {role} {pod} exits cleanly on SIGTERM"
        );
        assert!(
            gone_in < STOP_WITHIN,
            "the {role} {pod} was gone {gone_in:?} after its deletion"
        );
        cluster.wait_available("senderops", 2).await;
    }
}
