//! The test node for one test: `hack/node/run.sh` started with the operator image, ready when it
//! prints `ready KUBECONFIG`, torn down when dropped (its stdin closes: run.sh then removes
//! everything it changed, and would as well if this process died). One node at a time.
//!
//! Every node test checks the teardown: the host is read before run.sh starts and again once it
//! has stopped ([`super::host`]), and the two must be equal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::host::{HostState, differences, host_state};
use crate::support::controlplane::repo_root;
pub use crate::support::image_archive;
use crate::support::kubectl::Kubectl;

/// Start-up: containerd, the API server, controllers, kubelet and kube-proxy, and the node
/// Ready (about 10 s when idle; a loaded CI machine takes longer).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// Teardown deletes the pods while the kubelet runs, then everything else.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// Node tests take turns: one kubelet per machine.
static TURN: Mutex<()> = Mutex::new(());

/// The image's name in the archive and in hack/node/install/local-image.
pub const IMAGE: &str = "localhost/senderops:dev";
/// The node's address: the API server's, the kubelet's, and the pods' gateway to the host.
pub const NODE_IP: &str = "10.244.0.1";

pub struct Node {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    kubeconfig: PathBuf,
    log: PathBuf,
    started_in: Duration,
    /// The host as the node must leave it.
    host_before: HostState,
    _turn: Option<MutexGuard<'static, ()>>,
}

/// This test's turn on the machine's one node (blocks while another node test runs).
pub fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Undoes what a node of an earlier, killed test run left (as run.sh does when it starts), so
/// that the host is then read as the next node must leave it.
pub fn undo_earlier_nodes() {
    let down = Command::new(repo_root().join("hack/node/down.sh"))
        .status()
        .expect("run hack/node/down.sh");
    assert!(down.success(), "hack/node/down.sh failed: {down}");
}

impl Node {
    /// Starts a node with the operator image imported (waits for the previous node test).
    pub fn start(test: &str) -> Node {
        Self::start_in_turn(test, Some(turn()))
    }

    /// Starts a node for a test that holds [`turn`] already.
    pub fn start_in_turn(test: &str, turn: Option<MutexGuard<'static, ()>>) -> Node {
        undo_earlier_nodes();
        Self::start_leaving(test, turn, host_state())
    }

    /// Starts a node whose teardown must leave the host as `host_before` (which a killed run
    /// before it has changed).
    pub fn start_leaving(
        test: &str,
        turn: Option<MutexGuard<'static, ()>>,
        host_before: HostState,
    ) -> Node {
        let image = image_archive();
        let logs = repo_root().join("target/node/test-logs");
        std::fs::create_dir_all(&logs).expect("create target/node/test-logs");
        let log = logs.join(format!("{test}.log"));
        let log_file = std::fs::File::create(&log).expect("create the node log");
        let began = Instant::now();
        let mut child = Command::new(repo_root().join("hack/node/run.sh"))
            .arg(&image)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start hack/node/run.sh");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(kubeconfig) = line.strip_prefix("ready ") {
                    let _ = ready_tx.send(PathBuf::from(kubeconfig));
                }
            }
        });
        let mut node = Node {
            child: Some(child),
            stdin: Some(stdin),
            kubeconfig: PathBuf::new(),
            log,
            started_in: Duration::ZERO,
            host_before,
            _turn: turn,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(kubeconfig) => node.kubeconfig = kubeconfig,
            Err(_) => panic!(
                "the test node was not ready within {START_TIMEOUT:?}; its log ({}):\n{}",
                node.log.display(),
                node.log_tail(60)
            ),
        }
        node.started_in = began.elapsed();
        eprintln!(
            "test node ready in {:?} (log: {})",
            node.started_in,
            node.log.display()
        );
        node
    }

    /// From starting run.sh to the node Ready and untainted.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(
            repo_root().join("target/testplane/kubectl"),
            self.kubeconfig.clone(),
        )
    }

    pub async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read the node kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("load the node kubeconfig");
        kube::Client::try_from(config).expect("build a kube client")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Closes run.sh's stdin and waits for its teardown, which must leave the host as it was
    /// before the node started; returns how long the teardown took.
    pub fn stop(&mut self) -> Duration {
        if self.child.is_none() {
            return Duration::ZERO;
        }
        let took = self.stop_run_sh();
        if !std::thread::panicking() {
            let after = host_state();
            assert!(
                after == self.host_before,
                "the node's teardown left the host changed; what differs:\n{}",
                differences(&self.host_before, &after)
            );
        }
        took
    }

    fn stop_run_sh(&mut self) -> Duration {
        let began = Instant::now();
        drop(self.stdin.take());
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("poll hack/node/run.sh") {
                assert!(
                    status.success() || std::thread::panicking(),
                    "the node's teardown failed ({status}); its log:\n{}",
                    self.log_tail(40)
                );
                return began.elapsed();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the node did not stop within {STOP_TIMEOUT:?}; its log:\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// containerd's CLI on the node's socket, namespace `k8s.io` (the kubelet's).
pub fn ctr(args: &[&str]) -> std::process::Output {
    let socket = repo_root().join("target/node/run/containerd/containerd.sock");
    Command::new("ctr")
        .arg("-a")
        .arg(&socket)
        .args(["-n", "k8s.io"])
        .args(args)
        .output()
        .expect("run ctr")
}

/// The host PID of a container (`containerd://ID` as a pod's status names it).
pub fn container_pid(container_id: &str) -> u32 {
    let id = container_id
        .strip_prefix("containerd://")
        .unwrap_or(container_id);
    let out = ctr(&["tasks", "ls"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    listing
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(id))
                .then(|| fields.next()?.parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no running task {id} in:\n{listing}"))
}
