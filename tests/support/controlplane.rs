//! A real kube-apiserver with embedded etcd (`make controlplane`), one per test binary.
//!
//! The process is started on first use and shared by the binary's tests; each test gets its own
//! namespace. The harness holds the child's stdin and the child runs with `--exit-on-stdin-eof`,
//! so it stops when the test binary exits by any path, panics and aborts included.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::kubectl::Kubectl;

const START_TIMEOUT: Duration = Duration::from_secs(120);

pub struct ControlPlane {
    dir: PathBuf,
    log: PathBuf,
    // Held, never written: closing it (process exit) tells the control plane to stop.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
    started_in: Duration,
}

static SHARED: OnceLock<ControlPlane> = OnceLock::new();

/// The test binary's control plane, started (and the CRDs installed) on first use.
pub fn shared() -> &'static ControlPlane {
    SHARED.get_or_init(|| {
        let plane = ControlPlane::start();
        plane.install_crds();
        plane
    })
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn testplane_dir() -> PathBuf {
    repo_root().join("target/testplane")
}

impl ControlPlane {
    fn start() -> ControlPlane {
        let binary = testplane_dir().join("testplane");
        assert!(
            binary.is_file(),
            "{} is missing: run `make controlplane` (or `make test`) first",
            binary.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("senderops-testplane-")
            .tempdir()
            .expect("create a temporary directory")
            .keep();
        let logs = testplane_dir().join("logs");
        std::fs::create_dir_all(&logs).expect("create target/testplane/logs");
        // One log per test binary, overwritten by its next run.
        let log = logs.join(format!("{}.log", binary_name()));
        let log_file = std::fs::File::create(&log).expect("create the control plane log");

        let began = Instant::now();
        let mut child = Command::new(&binary)
            .arg("--dir")
            .arg(&dir)
            .args(["--exit-on-stdin-eof", "--remove-dir"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = ready_tx.send(());
                }
            }
        });
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            let _ = child.kill();
            panic!(
                "the test control plane did not become ready in {START_TIMEOUT:?}; its log:\n{}",
                tail(&log, 40)
            );
        }
        let started_in = began.elapsed();
        eprintln!(
            "test control plane ready in {started_in:?} (log: {})",
            log.display()
        );
        ControlPlane {
            dir,
            log,
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
            started_in,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The cluster CA, for clients that authenticate otherwise than with the admin certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn server_url(&self) -> String {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig()).expect("read kubeconfig");
        kubeconfig.clusters[0]
            .cluster
            .as_ref()
            .and_then(|c| c.server.clone())
            .expect("kubeconfig names the server")
    }

    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(testplane_dir().join("kubectl"), self.kubeconfig())
    }

    /// A client for the calling test's runtime (clients cannot outlive the runtime they were
    /// made on, and every `#[tokio::test]` has its own).
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig()).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("load kubeconfig");
        kube::Client::try_from(config).expect("build a kube client")
    }

    /// A fresh namespace for one test. Namespaces are never deleted: without a controller-manager
    /// they would stay Terminating, and the control plane goes away with the test binary anyway.
    pub async fn namespace(&self, prefix: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let namespaces: Api<Namespace> = Api::all(self.client().await);
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name }
        }))
        .expect("namespace object");
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        name
    }

    fn install_crds(&self) {
        let crds = repo_root().join("crds");
        self.kubectl()
            .args(["apply", "--server-side", "-f"])
            .arg(&crds)
            .run()
            .expect_success("install the CRDs from crds/");
        self.kubectl()
            .args([
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/whatsappsenders.messaging.senderops.io",
            ])
            .run()
            .expect_success("wait for the CRD to be established");
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".into())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
