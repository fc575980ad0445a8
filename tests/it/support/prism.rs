//! Stoplight Prism as a validating proxy in front of a server (`make prism` installs it): every
//! request and response is checked against one of Twilio's OpenAPI documents, and with
//! `--errors` a violation of severity Error turns into a 422 (request) or 500 (response) answer.
//!
//! Needs only its sibling `ports`: the root crate's tests reach it as `support::prism`, the
//! simulator's tests include both with `#[path]`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Prism {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Prism {
    /// Starts `prism proxy` for `upstream` on a free loopback port, checking traffic against
    /// the Messaging v2 document, and waits until it listens.
    pub fn start(upstream: &str) -> Prism {
        Prism::start_for("twilio_messaging_v2.json", upstream)
    }

    /// The same with another document of `tests/openapi/` (e.g. `twilio_monitor_v1.json`).
    pub fn start_for(document: &str, upstream: &str) -> Prism {
        let binary = repo_root().join("tests/prism/node_modules/.bin/prism");
        assert!(
            binary.exists(),
            "{} is missing: run `make prism` (or `make test`) first",
            binary.display()
        );
        let port = super::ports::unused();
        let mut child = Command::new(&binary)
            .arg("proxy")
            .arg(repo_root().join("tests/openapi").join(document))
            .arg(upstream)
            .args([
                "--errors",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));

        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let log = Arc::clone(&log);
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("Prism is listening on") {
                        let _ = ready_tx.send(());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            let _ = child.kill();
            panic!(
                "Prism did not start in {START_TIMEOUT:?}:\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        Prism {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits until Prism has logged nothing new for a moment: it logs a request's verdict just
    /// after answering it, so a check made right after the last answer could miss it.
    pub fn settle(&self) {
        let quiet = Duration::from_millis(300);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut seen = self.log.lock().unwrap().len();
        while std::time::Instant::now() < deadline {
            std::thread::sleep(quiet);
            let now = self.log.lock().unwrap().len();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Log lines reporting a violation of severity Error or a request Prism refused.
    pub fn errors(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains("✖") || line.contains("error "))
            .cloned()
            .collect()
    }

    /// Log lines with a warning (e.g. an error status code the document does not list).
    pub fn warnings(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains("warning"))
            .cloned()
            .collect()
    }

    /// Waits for Prism's log to settle, then fails with the violations and the whole log if
    /// it found any request or response off the document (severity Error).
    pub fn assert_no_violations(&self) {
        self.settle();
        let errors = self.errors();
        assert!(
            errors.is_empty(),
            "Prism found spec violations:\n{}\n\nfull log:\n{}",
            errors.join("\n"),
            self.log()
        );
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository root: this crate's directory or the nearest one above it with `tests/prism`.
fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("tests/prism/package.json").exists())
        .expect("tests/prism in the crate's directory or above it")
}
