//! The test control plane itself: ServiceAccount tokens authenticate and RBAC applies (so a test
//! can run the operator as its ServiceAccount), and a control plane stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::controlplane::{self, repo_root};
use crate::support::kubectl::{Kubectl, KubectlOutput};
use crate::support::wait::Wait;

/// kubectl as the holder of `token`, not as the admin of the kubeconfig.
fn kubectl_with_token(token: &str, args: &[&str]) -> KubectlOutput {
    let plane = controlplane::shared();
    Kubectl::new(
        repo_root().join("target/testplane/kubectl"),
        "/dev/null".into(),
    )
    .arg(format!("--server={}", plane.server_url()))
    .arg(format!(
        "--certificate-authority={}",
        plane.ca_file().display()
    ))
    .arg(format!("--token={token}"))
    .args(args)
    .run()
}

#[tokio::test]
async fn service_account_tokens_authenticate_and_rbac_applies() {
    let plane = controlplane::shared();
    let ns = plane.namespace("rbac").await;
    let admin = || plane.kubectl().args(["-n", &ns]);
    admin()
        .args(["create", "serviceaccount", "senderops"])
        .run()
        .expect_success("create a ServiceAccount");
    let token = admin()
        .args(["create", "token", "senderops", "--duration=10m"])
        .run()
        .expect_success("issue a token")
        .stdout
        .trim()
        .to_string();

    let whoami = kubectl_with_token(
        &token,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )
    .expect_success("authenticate with the token");
    assert_eq!(
        whoami.stdout,
        format!("system:serviceaccount:{ns}:senderops")
    );

    let denied = kubectl_with_token(&token, &["get", "whatsappsenders", "-n", &ns])
        .expect_failure("a read without any role");
    assert!(
        denied.stderr.contains("Forbidden") || denied.stderr.contains("forbidden"),
        "{}",
        denied.stderr
    );

    admin()
        .args([
            "create",
            "role",
            "read-senders",
            "--verb=get,list,watch",
            "--resource=whatsappsenders.messaging.senderops.io",
        ])
        .run()
        .expect_success("create a Role");
    admin()
        .args([
            "create",
            "rolebinding",
            "read-senders",
            "--role=read-senders",
        ])
        .arg(format!("--serviceaccount={ns}:senderops"))
        .run()
        .expect_success("bind it");
    kubectl_with_token(&token, &["get", "whatsappsenders", "-n", &ns])
        .expect_success("a read the Role allows");
    kubectl_with_token(&token, &["get", "secrets", "-n", &ns])
        .expect_failure("a read the Role does not allow");
}

#[test]
fn a_control_plane_stops_cleanly_on_sigterm_and_removes_its_directory() {
    let dir = tempfile::Builder::new()
        .prefix("testplane-sigterm-")
        .tempdir()
        .unwrap()
        .keep();
    let mut child = Command::new(repo_root().join("target/testplane/testplane"))
        .arg("--dir")
        .arg(&dir)
        .arg("--remove-dir")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a second control plane (run `make controlplane` first)");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let began = Instant::now();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("ready"),
        "it announces readiness"
    );
    assert!(dir.join("kubeconfig").is_file() && dir.join("ca.crt").is_file());
    eprintln!("second control plane ready in {:?}", began.elapsed());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = Wait::until("the second control plane to exit after SIGTERM")
        .within(Duration::from_secs(30))
        .try_poll_ok_blocking(|| child.try_wait().unwrap().ok_or("still running"))
        .unwrap_or_else(|last| {
            let _ = child.kill();
            panic!("{last} 30 s after SIGTERM")
        });
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
    assert!(!dir.exists(), "--remove-dir removed {}", dir.display());
}
