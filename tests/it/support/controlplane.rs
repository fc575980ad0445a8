//! A real kube-apiserver with embedded etcd (`make controlplane`), one per test binary, plus the
//! namespace controller (so deleted namespaces are emptied and removed, as in a cluster).
//!
//! The process is started on first use and shared by every test of the binary, all areas at
//! once: each test works in its own namespace, and whatever is cluster-scoped (ClusterRoles,
//! bindings) is named after that namespace. The harness holds the child's stdin and the child
//! runs with `--exit-on-stdin-eof`, so it stops when the test binary exits by any path, panics
//! and aborts included.
//!
//! A test that stops the API server takes a [`dedicated`] control plane instead: its own
//! process, which [`ControlPlane::stop`] ends (SIGTERM) and [`ControlPlane::start_again`] starts
//! on the same directory, certificates and port, so clients reconnect with the same kubeconfig.
//! A test that checks how a client reads Secrets takes a [`dedicated_audited`] one, whose API
//! server writes an audit log of Secret requests ([`ControlPlane::audit_events`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::kubectl::Kubectl;
use super::wait::Wait;

const START_TIMEOUT: Duration = Duration::from_secs(120);

pub struct ControlPlane {
    dir: PathBuf,
    log: PathBuf,
    /// The API server's audit log of Secret requests, if it keeps one.
    audit_log: Option<PathBuf>,
    /// The running process; `None` between [`ControlPlane::stop`] and a start.
    process: Mutex<Option<Process>>,
}

struct Process {
    child: Child,
    // Held, never written: closing it (process exit) tells the control plane to stop.
    _stdin: ChildStdin,
}

static SHARED: OnceLock<ControlPlane> = OnceLock::new();

/// The test binary's control plane, started (and the CRDs installed) on first use.
pub fn shared() -> &'static ControlPlane {
    SHARED.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("senderops-testplane-")
            .tempdir()
            .expect("create a temporary directory")
            .keep();
        let log = logs_dir().join(format!("{}-shared.log", binary_name()));
        let plane = ControlPlane::start(dir, log, true, None);
        plane.install_crds();
        plane
    })
}

/// A control plane for one test alone (with the CRDs), which the test may stop and start
/// again; `name` says whose it is (`AREA-TEST`) and must be unique in the binary, since it
/// names the directory and the log. Unless stopped it lives until the test binary exits (stdin
/// EOF stops it); its directory, `target/testplane/planes/BINARY-NAME`, is kept across restarts
/// and cleared by the next run.
pub fn dedicated(name: &str) -> &'static ControlPlane {
    dedicated_plane(name, false)
}

/// [`dedicated`], whose API server also writes an audit log of Secret requests into its
/// directory (testplane's `--audit-log`: which client listed, watched or read which Secret, and
/// what a list answered), for [`ControlPlane::audit_events`].
pub fn dedicated_audited(name: &str) -> &'static ControlPlane {
    dedicated_plane(name, true)
}

fn dedicated_plane(name: &str, audited: bool) -> &'static ControlPlane {
    static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    {
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            !names.iter().any(|n| n == name),
            "two tests asked for dedicated control plane {name:?}: {names:?}"
        );
        names.push(name.to_string());
    }
    let dir = testplane_dir()
        .join("planes")
        .join(format!("{}-{name}", binary_name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the control plane's directory");
    let log = logs_dir().join(format!("{}-{name}.log", binary_name()));
    let audit_log = audited.then(|| dir.join("audit.log"));
    let plane = ControlPlane::start(dir, log, false, audit_log);
    plane.install_crds();
    Box::leak(Box::new(plane))
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn testplane_dir() -> PathBuf {
    repo_root().join("target/testplane")
}

fn logs_dir() -> PathBuf {
    let logs = testplane_dir().join("logs");
    std::fs::create_dir_all(&logs).expect("create target/testplane/logs");
    logs
}

impl ControlPlane {
    /// Starts a control plane in `dir`, logging to `log` (overwritten: one log per control
    /// plane, kept until the next run). `remove_dir`: the process deletes `dir` when it stops.
    /// `audit_log`: where its API server writes an audit log of Secret requests, if anywhere.
    fn start(
        dir: PathBuf,
        log: PathBuf,
        remove_dir: bool,
        audit_log: Option<PathBuf>,
    ) -> ControlPlane {
        let log_file = std::fs::File::create(&log).expect("create the control plane log");
        let (process, started_in) = spawn(&dir, &log, log_file, remove_dir, audit_log.as_deref());
        eprintln!(
            "test control plane ready in {started_in:?} (log: {})",
            log.display()
        );
        ControlPlane {
            dir,
            log,
            audit_log,
            process: Mutex::new(Some(process)),
        }
    }

    fn process(&self) -> MutexGuard<'_, Option<Process>> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGTERM, then waits (bounded) for a clean exit. The directory stays for
    /// [`ControlPlane::start_again`].
    pub fn stop(&self) {
        let mut process = self.process().take().expect("the control plane is running");
        let pid = process.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        let status = Wait::until("the control plane to exit after SIGTERM")
            .within(Duration::from_secs(30))
            .every(Duration::from_millis(50))
            .try_poll_ok_blocking(|| {
                let exited = process.child.try_wait().expect("poll the control plane");
                exited.ok_or("still running")
            })
            .unwrap_or_else(|_| {
                let _ = process.child.kill();
                panic!(
                    "the control plane did not exit within 30 s of SIGTERM; its log:\n{}",
                    self.log_tail(40)
                )
            });
        assert!(
            status.success(),
            "the control plane exited with {status} after SIGTERM; its log:\n{}",
            self.log_tail(40)
        );
    }

    /// Starts the stopped control plane again on the same directory: same etcd data,
    /// certificates and port (testplane reuses them), so the kubeconfig stays valid. Returns
    /// how long it took to be ready.
    pub fn start_again(&self) -> Duration {
        let mut process = self.process();
        assert!(process.is_none(), "the control plane is still running");
        let log_file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("open the control plane log");
        let (started, took) = spawn(
            &self.dir,
            &self.log,
            log_file,
            false,
            self.audit_log.as_deref(),
        );
        *process = Some(started);
        took
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

    /// A fresh namespace for one test. Tests need not delete it: the control plane goes away
    /// with the test binary. Deleting one works as in a cluster: the namespace controller
    /// deletes its content (objects with finalizers wait for them) and then the namespace.
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

    /// Installs the CRDs from crds/ and waits until they are established (again, after a test
    /// deleted them).
    pub fn install_crds(&self) {
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

    /// The audit events of Secret requests so far, oldest first: one JSON object per event
    /// (`auditID`, `stage`, `verb`, `user`, `userAgent`, `objectRef`, `requestURI`, and for a
    /// list the `responseObject`). Only for a [`dedicated_audited`] control plane.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        let path = self
            .audit_log
            .as_ref()
            .expect("an audit log: this control plane is not dedicated_audited");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read the audit log {}: {e}", path.display()));
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("an audit event that is not JSON ({e}): {line}"))
            })
            .collect()
    }
}

/// Runs testplane on `dir` (with an audit log of Secret requests at `audit_log`, if given) and
/// waits for its "ready"; returns the process and how long that took.
fn spawn(
    dir: &Path,
    log: &Path,
    log_file: std::fs::File,
    remove_dir: bool,
    audit_log: Option<&Path>,
) -> (Process, Duration) {
    let binary = testplane_dir().join("testplane");
    assert!(
        binary.is_file(),
        "{} is missing: run `make controlplane` (or `make test`) first",
        binary.display()
    );
    let began = Instant::now();
    let mut command = Command::new(&binary);
    command.arg("--dir").arg(dir).arg("--exit-on-stdin-eof");
    if remove_dir {
        command.arg("--remove-dir");
    }
    if let Some(audit_log) = audit_log {
        command.arg("--audit-log").arg(audit_log);
    }
    let mut child = command
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
            tail(log, 40)
        );
    }
    (
        Process {
            child,
            _stdin: stdin,
        },
        began.elapsed(),
    )
}

/// The test binary's name without cargo's hash (`it`, or `fleet` for the bench): stable across
/// builds, so that each run overwrites its logs instead of leaving one more.
fn binary_name() -> String {
    let stem = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => stem,
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
