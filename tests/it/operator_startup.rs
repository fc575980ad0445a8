//! What the README promises of `senderops run` before it reconciles anything: it "refuses to
//! start with a clear message when the cluster is unreachable or the CRD is missing". Each case
//! runs the binary as a user would (KUBECONFIG, no other setup) and asserts its exit status, that
//! it exits promptly rather than retrying in the background, and the message it gives.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::controlplane;
use crate::support::wait::Wait;

/// A refusal is immediate: no watch starts retrying (kube's client gives up on a refused
/// connection at once).
const REFUSES_WITHIN: Duration = Duration::from_secs(20);

/// Runs `senderops run` with `kubeconfig` until it exits; panics if it keeps running.
fn run_with(kubeconfig: &Path) -> Output {
    run_with_flags(kubeconfig, &[])
}

/// [`run_with`] with `flags` added.
fn run_with_flags(kubeconfig: &Path, flags: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_senderops"))
        .args(["run", "--twilio-api-url", "http://127.0.0.1:9"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(flags)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start senderops run");
    let exited = Wait::until("senderops run to exit")
        .within(REFUSES_WITHIN)
        .try_poll_ok_blocking(|| match child.try_wait().expect("poll senderops") {
            Some(_) => Ok(()),
            None => Err(()),
        });
    if exited.is_err() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("senderops's output");
    assert!(
        exited.is_ok(),
        "senderops run kept running for {REFUSES_WITHIN:?} instead of refusing to start: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn assert_refused(output: &Output, message: &str) {
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "senderops run exits 1 when it cannot start: {log}"
    );
    assert!(log.contains(message), "the message {message:?} in: {log}");
}

#[test]
fn it_refuses_to_start_without_the_crd_and_says_how_to_install_it() {
    let plane = controlplane::dedicated("operator_startup-no-crd");
    let deleted = plane
        .kubectl()
        .args([
            "delete",
            "crd",
            "whatsappsenders.messaging.senderops.io",
            "--wait=true",
        ])
        .run();
    assert!(deleted.success, "delete the CRD: {}", deleted.stderr);
    let message = "the WhatsAppSender CRD is not installed in this cluster: install it with \
                   `kubectl apply -f crds/`";
    // No kind named: none of the kinds has its CRD.
    assert_refused(&run_with(&plane.kubeconfig()), message);
    // README: "a named kind whose CRD is missing stops start-up".
    let named = run_with_flags(&plane.kubeconfig(), &["--controllers", "whatsappsender"]);
    assert_refused(&named, message);
}

#[test]
fn it_refuses_to_start_when_the_cluster_is_unreachable() {
    // The shared control plane's kubeconfig with its server moved to a port nothing listens on.
    let kubeconfig = std::fs::read_to_string(controlplane::shared().kubeconfig())
        .expect("read the control plane's kubeconfig");
    let server = controlplane::shared().server_url();
    assert!(kubeconfig.contains(&server), "{kubeconfig}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let unreachable = dir.path().join("kubeconfig");
    std::fs::write(
        &unreachable,
        kubeconfig.replace(&server, "https://127.0.0.1:9"),
    )
    .expect("write the kubeconfig");
    let output = run_with(&unreachable);
    assert_refused(&output, "cannot reach the Kubernetes API");
}

#[test]
fn it_refuses_to_start_without_a_kubeconfig_and_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = run_with(&dir.path().join("no-such-kubeconfig"));
    assert_refused(
        &output,
        "cannot configure a Kubernetes client: set KUBECONFIG (or ~/.kube/config)",
    );
}

/// README: the renew deadline "must be at least 1s shorter than the Lease duration; the operator
/// refuses to start otherwise".
#[test]
fn it_refuses_a_renew_deadline_that_leaves_a_standby_no_margin() {
    let output = run_with_flags(
        &controlplane::shared().kubeconfig(),
        &[
            "--leader-election",
            "--lease-duration",
            "15s",
            "--lease-renew-deadline",
            "15s",
        ],
    );
    assert_refused(
        &output,
        "--lease-renew-deadline 15s must be at least 1s shorter than --lease-duration 15s",
    );
}
