//! The test node leaves the machine as it found it: after a clean stop, and after a run killed
//! outright (SIGKILL: no teardown ran), which the next run cleans up before it starts.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::node::{Node, image_archive, turn};
use crate::support::controlplane::repo_root;

/// What the node changes on the host, as text that can be compared.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    links: BTreeSet<String>,
    routes: String,
    iptables: BTreeSet<String>,
    mounts: BTreeSet<String>,
    sysctls: Vec<String>,
    paths: Vec<(String, bool)>,
    netns: BTreeSet<String>,
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_state() -> HostState {
    let rules = |tool: &str| {
        output(tool, &[])
            .lines()
            .filter(|l| !l.starts_with('#'))
            // Counters and the chains' packet counts change by themselves.
            .map(|l| l.split(" [").next().unwrap_or(l).to_string())
            .map(|l| format!("{tool}: {l}"))
            .collect::<Vec<_>>()
    };
    HostState {
        links: output("ip", &["-o", "link"])
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
            .collect(),
        routes: output("ip", &["route"]),
        iptables: rules("iptables-save")
            .into_iter()
            .chain(rules("ip6tables-save"))
            .collect(),
        mounts: std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .collect(),
        sysctls: [
            "vm.overcommit_memory",
            "kernel.panic",
            "kernel.panic_on_oops",
            "net.ipv4.ip_forward",
            "net.bridge.bridge-nf-call-iptables",
            "net.ipv4.conf.all.route_localnet",
        ]
        .iter()
        .map(|k| format!("{k}={}", output("sysctl", &["-n", k]).trim()))
        .collect(),
        paths: [
            "/var/lib/kubelet",
            "/var/log/containers",
            "/var/log/pods",
            "/run/containerd",
            "/var/lib/cni",
            "/sys/fs/cgroup/memory/kubepods",
            "/sys/fs/cgroup/cpu/kubepods",
        ]
        .iter()
        .map(|p| (p.to_string(), std::path::Path::new(p).exists()))
        .collect(),
        netns: std::fs::read_dir("/run/netns")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// PIDs whose command line names the node's directory (its containerd, kubelet, shims, …).
fn node_processes() -> BTreeSet<u32> {
    let dir = repo_root().join("target/node/run");
    let dir = dir.to_string_lossy();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(dir.as_ref()))
        })
        .collect()
}

#[test]
fn the_node_undoes_everything_it_changed_also_after_a_killed_run() {
    // A clean start and stop.
    let _turn = turn();
    let before = host_state();
    let mut node = Node::start_in_turn("cleanup", None);
    let during = host_state();
    assert!(
        during.links.contains("senderops0"),
        "the node made its bridge: {:?}",
        during.links
    );
    assert!(
        during.iptables.iter().any(|r| r.contains("KUBE-SERVICES")),
        "kube-proxy wrote rules"
    );
    assert_ne!(during, before, "a running node changes the host");
    let stopped_in = node.stop();
    eprintln!("node teardown took {stopped_in:?}");
    assert_eq!(
        host_state(),
        before,
        "the host after the node stopped, as before it started"
    );
    assert!(
        node_processes().is_empty(),
        "no process of the node is left: {:?}",
        node_processes()
    );
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
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("ready "));
    assert!(ready, "the run to be killed came up");
    let left = node_processes();
    killed.kill().expect("SIGKILL run.sh");
    let _ = killed.wait();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !node_processes().is_empty(),
        "the killed run left processes behind (the fault happened)"
    );
    assert_ne!(host_state(), before, "the killed run left the host changed");

    // ...which the next run removes before it starts, and its own stop the rest.
    let began = Instant::now();
    let mut next = Node::start_in_turn("cleanup-after-kill", None);
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
    next.stop();
    assert_eq!(
        host_state(),
        before,
        "the host as before, after a killed run and the next"
    );
}
