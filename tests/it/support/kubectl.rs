//! Runs the real kubectl against the test control plane.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Kubectl {
    command: Command,
    stdin: Option<String>,
}

/// What a kubectl run printed, and whether it succeeded.
#[derive(Debug)]
pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(binary: PathBuf, kubeconfig: PathBuf) -> Kubectl {
        assert!(
            binary.exists(),
            "{} is missing: run `make controlplane` (or `make test`) first",
            binary.display()
        );
        let mut command = Command::new(binary);
        command.arg("--kubeconfig").arg(kubeconfig);
        Kubectl {
            command,
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Feeds `text` (YAML or JSON) on stdin, for `-f -`.
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn run(mut self) -> KubectlOutput {
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("run kubectl");
        if let Some(text) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(text.as_bytes())
                .expect("write kubectl stdin");
        }
        let output = child.wait_with_output().expect("wait for kubectl");
        KubectlOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl KubectlOutput {
    pub fn expect_success(self, what: &str) -> Self {
        assert!(
            self.success,
            "kubectl failed to {what}:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn expect_failure(self, what: &str) -> Self {
        assert!(
            !self.success,
            "kubectl was expected to refuse {what}, but succeeded:\n{}",
            self.stdout
        );
        self
    }
}
