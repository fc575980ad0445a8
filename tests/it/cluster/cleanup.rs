//! The test node leaves the machine as it found it, with the operator's pods running on it: after
//! a clean stop, and after a run killed outright (SIGKILL: no teardown ran, containers, shims and
//! pods' network namespaces left running), which the next run cleans up before it starts. Pod
//! processes are found by their cgroup, the node's own by their command line. What "as
//! it found it" means is [`super::host`]'s comparison, which every node test's teardown makes;
//! its netfilter part is tried here on a network namespace in its first-use state.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::host::{host_state, netfilter_in_effect};
use super::node::{Node, image_archive, turn, undo_earlier_nodes};
use crate::support::controlplane::repo_root;
use crate::support::kubectl::Kubectl;
use crate::support::{process_runs, processes_whose};

/// PIDs whose command line names the node's directory (its containerd, kubelet, shims, …).
fn node_processes() -> BTreeSet<u32> {
    processes_whose(
        "cmdline",
        &repo_root().join("target/node/run").to_string_lossy(),
    )
}

/// PIDs in a pod's cgroup (the kubelet puts every container, pause included, under
/// `kubepods`): found by what the kernel says they belong to, whatever their command line.
fn pod_processes() -> BTreeSet<u32> {
    processes_whose("cgroup", "/kubepods")
}

/// The operator installed as the README says (hack/node/install/node), on the node of
/// `kubeconfig`, until its Deployment is Available: containers, shims, pod network namespaces,
/// veths, mounts and cgroups for the teardown to undo. Returns the pods' processes.
fn install_operator(kubeconfig: &std::path::Path) -> BTreeSet<u32> {
    let kubectl = || {
        Kubectl::new(
            repo_root().join("target/testplane/kubectl"),
            kubeconfig.into(),
        )
    };
    let overlay = repo_root().join("hack/node/install/node");
    kubectl()
        .args(["apply", "-k", overlay.to_str().unwrap()])
        .run()
        .expect_success("kubectl apply -k hack/node/install/node");
    kubectl()
        .args([
            "-n",
            "senderops",
            "rollout",
            "status",
            "deployment/senderops",
            "--timeout=120s",
        ])
        .run()
        .expect_success("wait for the operator's Deployment to be Available");
    let processes = pod_processes();
    assert!(
        processes.len() >= 4,
        "two pods, each a pause and an operator process at least: {processes:?}"
    );
    processes
}

#[test]
fn the_node_undoes_everything_it_changed_also_after_a_killed_run() {
    // A clean start and stop.
    let _turn = turn();
    undo_earlier_nodes();
    let before = host_state();
    let mut node = Node::start_leaving("cleanup", None, before.clone());
    let during = host_state();
    assert!(
        during.links.contains("senderops0"),
        "the node made its bridge: {:?}",
        during.links
    );
    assert!(
        during.netfilter.iter().any(|r| r.contains("KUBE-SERVICES")),
        "kube-proxy wrote rules"
    );
    assert_ne!(during, before, "a running node changes the host");
    let pods = install_operator(node.kubeconfig());
    assert!(
        host_state().netns.len() > before.netns.len(),
        "the pods have network namespaces of their own"
    );
    // stop() asserts that the host is as `before` once the node has stopped.
    let stopped_in = node.stop();
    eprintln!("node teardown took {stopped_in:?}");
    assert!(
        node_processes().is_empty(),
        "no process of the node is left: {:?}",
        node_processes()
    );
    let left: Vec<&u32> = pods.iter().filter(|pid| process_runs(**pid)).collect();
    assert!(left.is_empty(), "no pod process is left: {left:?}");
    assert!(pod_processes().is_empty(), "{:?}", pod_processes());
    drop(node);

    // A run killed outright leaves its processes, mounts and rules behind...
    let mut killed = Command::new(repo_root().join("hack/node/run.sh"))
        .arg(image_archive())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hack/node/run.sh");
    let stdout = killed.stdout.take().unwrap();
    let kubeconfig = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("ready ").map(std::path::PathBuf::from))
        .expect("the run to be killed came up");
    let pods = install_operator(&kubeconfig);
    let left = node_processes();
    killed.kill().expect("SIGKILL run.sh");
    let _ = killed.wait();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !node_processes().is_empty(),
        "the killed run left processes behind (the fault happened)"
    );
    assert!(
        pods.iter().all(|pid| process_runs(*pid)),
        "the killed run left its pods' containers running (the fault happened)"
    );
    assert!(
        host_state() != before,
        "the killed run left the host changed (the fault happened)"
    );

    // ...which the next run removes before it starts, and its own stop the rest: its teardown
    // must leave the host as it was before the killed run.
    let began = Instant::now();
    let mut next = Node::start_leaving("cleanup-after-kill", None, before);
    eprintln!("a start after a killed run took {:?}", began.elapsed());
    let alive: Vec<u32> = left
        .iter()
        .copied()
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    assert!(
        alive.is_empty(),
        "the killed run's processes are gone: {alive:?}"
    );
    let pods_alive: Vec<&u32> = pods.iter().filter(|pid| process_runs(**pid)).collect();
    assert!(
        pods_alive.is_empty(),
        "the killed run's pod processes are gone: {pods_alive:?}"
    );
    next.stop();
}

/// One section of the output of [`FIRST_USE`]: `iptables-save` and `ip6tables-save`, as printed.
struct Saved {
    raw: String,
    in_effect: BTreeSet<String>,
}

/// In a network namespace of its own, where netfilter has never been used (as on a newcomer's
/// machine): the saved state before and after the first use, then with one leftover of each kind
/// the node could leave (a chain, a rule, a policy), each undone before the next.
///
/// The first use is what the kubelet and kube-proxy do (their canary chains, created and deleted
/// again; down.sh deletes the rest of their chains): with iptables-nft, Debian 12's default,
/// listing a table does not set it up, but a chain created in it does, and the table stays, empty,
/// once the chain is deleted.
const FIRST_USE: &str = r#"
save() { iptables-save; echo '--- ip6tables'; ip6tables-save; }
save; echo '=== first use'
iptables -t mangle -N KUBE-KUBELET-CANARY && iptables -t mangle -X KUBE-KUBELET-CANARY
for table in filter nat mangle; do
	ip6tables -t "$table" -N KUBE-PROXY-CANARY && ip6tables -t "$table" -X KUBE-PROXY-CANARY
done
save; echo '=== chain'
iptables -t mangle -N KUBE-LEFTOVER && save && iptables -t mangle -X KUBE-LEFTOVER; echo '=== rule'
iptables -A FORWARD -o lo -j DROP && save && iptables -D FORWARD -o lo -j DROP; echo '=== policy'
ip6tables -P FORWARD DROP && save
"#;

fn first_use_sections() -> Vec<Saved> {
    let out = Command::new("unshare")
        .args(["--net", "bash", "-euo", "pipefail", "-c", FIRST_USE])
        .output()
        .expect("run unshare (util-linux)");
    assert!(
        out.status.success(),
        "the first-use script failed (iptables is installed by make node): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split("=== ")
        .map(|section| {
            let (v4, v6) = section
                .split_once("--- ip6tables")
                .expect("both listings in each section");
            Saved {
                raw: section.to_string(),
                in_effect: netfilter_in_effect("iptables", v4)
                    .into_iter()
                    .chain(netfilter_in_effect("ip6tables", v6))
                    .collect(),
            }
        })
        .collect()
}

/// The comparison `host_state` makes of netfilter, tried where it matters: the tables a first use
/// makes the kernel set up (what failed the cleanup test on a fresh machine) are no change, and a
/// chain, a rule or a policy left behind is one, each named.
#[test]
fn netfilter_first_use_is_no_change_but_a_leftover_chain_rule_or_policy_is() {
    let sections = first_use_sections();
    let [before, first_use, chain, rule, policy] = sections.as_slice() else {
        panic!("five sections expected, got {}", sections.len());
    };
    assert_ne!(
        before.raw, first_use.raw,
        "the first use set up tables (the fault this comparison must absorb happened)"
    );
    assert!(
        first_use.raw.contains("*mangle"),
        "the first use set up *mangle: {}",
        first_use.raw
    );
    assert_eq!(
        before.in_effect, first_use.in_effect,
        "tables of default chains and policies put nothing in effect"
    );
    let added = |leftover: &Saved| -> Vec<String> {
        leftover
            .in_effect
            .difference(&first_use.in_effect)
            .cloned()
            .collect()
    };
    assert_eq!(added(chain), ["iptables mangle chain KUBE-LEFTOVER"]);
    assert_eq!(added(rule), ["iptables filter -A FORWARD -o lo -j DROP"]);
    assert_eq!(added(policy), ["ip6tables filter policy FORWARD DROP"]);
}
