//! `senderops run` (the release binary `cargo bench` builds) as a child process watching every
//! namespace, with its peak memory read from `/proc` and its state lock from `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::lock::LockFigures;

pub struct OperatorProcess {
    child: Child,
    started: Instant,
    pub log: PathBuf,
    pub metrics: String,
}

impl OperatorProcess {
    /// Starts `senderops run` with `flags` against `twilio_url`, logging to `log`; under
    /// `wrapper` (a profiler's command line) if one is given.
    pub fn start(
        wrapper: &[String],
        kubeconfig: &Path,
        twilio_url: &str,
        flags: &[String],
        log: PathBuf,
    ) -> Self {
        let port = free_port();
        let file = std::fs::File::create(&log).expect("create the operator log");
        let binary = env!("CARGO_BIN_EXE_senderops");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let child = command
            .arg("run")
            .args(["--twilio-api-url", twilio_url])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(flags)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("TWILIO_API_URL")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log handle"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start senderops run");
        OperatorProcess {
            child,
            started: Instant::now(),
            log,
            metrics: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the operator runs")
    }

    /// Peak and current resident set size in MiB (`VmHWM`, `VmRSS`).
    pub fn rss_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        let kib = |field: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{field} in /proc status"))
        };
        (kib("VmHWM:") / 1024.0, kib("VmRSS:") / 1024.0)
    }

    /// The state lock's counters now, over the operator's life so far; `None` if this build
    /// of the operator has none.
    pub async fn state_lock(&self) -> Option<LockFigures> {
        let url = format!("{}/metrics", self.metrics);
        let text = reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("scrape {url}: {e}"))
            .text()
            .await
            .expect("a metrics page");
        LockFigures::from_metrics(&text, self.started.elapsed().as_secs_f64())
    }

    /// Waits until `/readyz` answers 200: the operator's first list of WhatsAppSenders
    /// succeeded (API server reachable, CRD installed, RBAC allows it). Its caches fill after.
    pub async fn wait_ready(&mut self, within: Duration) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if answers_ready(&http, &self.metrics).await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the operator exited ({status}); see {}", self.log.display());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the operator was not ready within {within:?}; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, and waits for the exit. Under a wrapper the signal goes to the wrapper's
    /// children too: a profiler's launch script does not pass it on, and the profile is only
    /// written when the operator exits.
    pub async fn stop(mut self) {
        let pid = self.pid().to_string();
        let _ = Command::new("pkill")
            .args(["-TERM", "-P", &pid])
            .status()
            .await;
        let _ = Command::new("kill").args(["-TERM", &pid]).status().await;
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// When `/readyz` of the operator serving `metrics` (its `http://ADDR`) first answers 200,
/// polled every 10 ms; `None` if not within `within`. Given the address alone, it runs as a
/// task of its own beside the other waits of start-up (`wait_ready` also watches the process).
pub async fn first_ready(metrics: String, within: Duration) -> Option<Instant> {
    let http = reqwest::Client::new();
    let began = Instant::now();
    while began.elapsed() < within {
        if answers_ready(&http, &metrics).await {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

async fn answers_ready(http: &reqwest::Client, metrics: &str) -> bool {
    http.get(format!("{metrics}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}
