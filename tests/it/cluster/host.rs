//! What the test node may change on the host, read from the host itself (not from the lists in
//! hack/node/settings.sh that the scripts under test act on), as values that compare equal when
//! nothing a user would notice has changed.
//!
//! Two kinds of first-use effects are not changes, and are normalised away, because a newcomer's
//! machine shows them on its first run and never again:
//! - netfilter tables the kernel sets up on their first use (an empty `*mangle` after kube-proxy
//!   lists it; IPv6's `*filter`, `*mangle` and `*nat` after the first `ip6tables` call): a table
//!   holding only built-in chains with `ACCEPT` policies and no rules filters nothing, and no
//!   command removes it cleanly. What is compared is what is in effect: rules, chains that are
//!   not built in, and built-in chains whose policy is not `ACCEPT`.
//! - counters the kernel keeps (`fs.file-nr`, `kernel.ns_last_pid`, …), read with every sysctl.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Everything the node could leave behind, each part as text that can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    pub links: BTreeSet<String>,
    pub routes: String,
    /// `netfilter_in_effect` of `iptables-save` and `ip6tables-save`.
    pub netfilter: BTreeSet<String>,
    pub mounts: BTreeSet<String>,
    /// Every sysctl but the kernel's own counters ([`VOLATILE_SYSCTLS`]); keys that do not exist
    /// (`net.bridge.*` without `br_netfilter`) are absent, so loading a module shows.
    pub sysctls: BTreeMap<String, String>,
    /// Every directory of every cgroup hierarchy mounted under /sys/fs/cgroup.
    pub cgroups: BTreeSet<String>,
    /// Whether each path exists: the kubelet's, containerd's and CNI's fixed paths, and the
    /// directories a first run creates (`/run/netns`).
    pub paths: Vec<(String, bool)>,
    pub netns: BTreeSet<String>,
}

/// Paths the kubelet, containerd, CNI and `ip netns` use whatever they are told. Listed here
/// from what those programs write, not copied from hack/node/settings.sh.
const HOST_PATHS: &[&str] = &[
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/var/lib/cni",
    "/run/netns",
    "/var/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/var/lib/containerd",
    "/run/runc",
    "/run/kubernetes",
    "/var/lib/kube-proxy",
];

/// Sysctls that are the kernel's counters of its own activity: they change whatever runs.
const VOLATILE_SYSCTLS: &[&str] = &[
    "fs.dentry-state",
    "fs.file-nr",
    "fs.inode-nr",
    "fs.inode-state",
    "fs.aio-nr",
    "fs.quota.",
    "kernel.ns_last_pid",
    "kernel.random.",
    "kernel.pty.nr",
    "net.netfilter.nf_conntrack_count",
];

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program} {args:?}: {e} (make node installs it)"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `TOOL-save` (iptables or ip6tables) of the host's network namespace.
pub fn netfilter_save(tool: &str) -> String {
    let save = format!("{tool}-save");
    let out = Command::new(&save)
        .output()
        .unwrap_or_else(|e| panic!("run {save}: {e} (make node installs iptables)"));
    assert!(
        out.status.success(),
        "{save} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a `*-save` listing puts in effect, one line per rule, user-defined chain, or built-in
/// chain with a policy other than `ACCEPT`, each prefixed by its tool and table. Tables that hold
/// none of these (the kernel's defaults) contribute nothing; counters are dropped.
pub fn netfilter_in_effect(tool: &str, save: &str) -> BTreeSet<String> {
    let mut table = "";
    let mut effect = BTreeSet::new();
    for line in save.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            table = name;
        } else if let Some(chain) = line.strip_prefix(':') {
            // `:NAME POLICY [packets:bytes]`; a user-defined chain's policy is `-`.
            let mut fields = chain.split_whitespace();
            let (name, policy) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            match policy {
                "-" => effect.insert(format!("{tool} {table} chain {name}")),
                "ACCEPT" => false,
                other => effect.insert(format!("{tool} {table} policy {name} {other}")),
            };
        } else {
            // Rules, without the `[packets:bytes]` prefix that `-save -c` writes.
            let rule = match line.strip_prefix('[') {
                Some(counted) => counted.split_once("] ").map_or("", |(_, rule)| rule),
                None => line,
            };
            if rule.starts_with("-A ") {
                effect.insert(format!("{tool} {table} {rule}"));
            }
        }
    }
    effect
}

/// Every sysctl with its value, but the counters in [`VOLATILE_SYSCTLS`].
fn sysctls() -> BTreeMap<String, String> {
    output("sysctl", &["-a"])
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .filter(|(key, _)| !VOLATILE_SYSCTLS.iter().any(|v| key.starts_with(v)))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Every directory under each cgroup hierarchy (v1 controllers, named ones, and cgroup2).
fn cgroups() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            // A cgroup directory holds only files and cgroup directories; no symlinks to follow.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(entry.path().to_string_lossy().into_owned());
                walk(&entry.path(), out);
            }
        }
    }
    let mut out = BTreeSet::new();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    for line in mounts.lines() {
        // `... MOUNTPOINT OPTIONS [optional fields] - FSTYPE SOURCE SUPEROPTIONS`
        let mount_point = line.split_whitespace().nth(4).unwrap_or("");
        let fs_type = line
            .split_once(" - ")
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if matches!(fs_type, Some("cgroup" | "cgroup2")) {
            walk(Path::new(mount_point), &mut out);
        }
    }
    out
}

pub fn host_state() -> HostState {
    HostState {
        links: output("ip", &["-o", "link"])
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
            .collect(),
        routes: output("ip", &["route"]),
        netfilter: ["iptables", "ip6tables"]
            .iter()
            .flat_map(|tool| netfilter_in_effect(tool, &netfilter_save(tool)))
            .collect(),
        mounts: std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .collect(),
        sysctls: sysctls(),
        cgroups: cgroups(),
        paths: HOST_PATHS
            .iter()
            .map(|p| (p.to_string(), Path::new(p).exists()))
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

/// The parts of `after` that differ from `before`, for an assertion message short enough to
/// read (the whole state is thousands of lines).
pub fn differences(before: &HostState, after: &HostState) -> String {
    fn sets<T: Ord + std::fmt::Debug>(
        name: &str,
        before: &BTreeSet<T>,
        after: &BTreeSet<T>,
    ) -> String {
        let gone: Vec<_> = before.difference(after).collect();
        let new: Vec<_> = after.difference(before).collect();
        if gone.is_empty() && new.is_empty() {
            return String::new();
        }
        format!("{name}: new {new:#?}, gone {gone:#?}\n")
    }
    let mut out = String::new();
    out += &sets("links", &before.links, &after.links);
    if before.routes != after.routes {
        out += &format!("routes: {:?} -> {:?}\n", before.routes, after.routes);
    }
    out += &sets("netfilter", &before.netfilter, &after.netfilter);
    out += &sets("mounts", &before.mounts, &after.mounts);
    let sysctls = |s: &BTreeMap<String, String>| -> BTreeSet<String> {
        s.iter().map(|(k, v)| format!("{k} = {v}")).collect()
    };
    out += &sets(
        "sysctls",
        &sysctls(&before.sysctls),
        &sysctls(&after.sysctls),
    );
    out += &sets("cgroups", &before.cgroups, &after.cgroups);
    if before.paths != after.paths {
        out += &format!("paths: {:?} -> {:?}\n", before.paths, after.paths);
    }
    out += &sets("netns", &before.netns, &after.netns);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_of_default_chains_and_policies_puts_nothing_in_effect() {
        let save = "# Generated by ip6tables-save v1.8.9 (nf_tables)\n*mangle\n\
            :PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
            :OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
        assert!(netfilter_in_effect("ip6tables", save).is_empty());
    }

    #[test]
    fn rules_user_chains_and_policies_are_in_effect() {
        let save = "*filter\n:INPUT ACCEPT [4:240]\n:FORWARD DROP [0:0]\n:KUBE-FORWARD - [0:0]\n\
            [7:420] -A FORWARD -j KUBE-FORWARD\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n";
        let effect = netfilter_in_effect("iptables", save);
        let expected: BTreeSet<String> = [
            "iptables filter policy FORWARD DROP",
            "iptables filter chain KUBE-FORWARD",
            "iptables filter -A FORWARD -j KUBE-FORWARD",
            "iptables filter -A INPUT -i lo -j ACCEPT",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(effect, expected);
    }

    #[test]
    fn the_same_rule_in_another_table_is_another_effect() {
        let nat = netfilter_in_effect("iptables", "*nat\n-A OUTPUT -j X\n");
        let filter = netfilter_in_effect("iptables", "*filter\n-A OUTPUT -j X\n");
        assert_ne!(nat, filter);
    }
}
