//! `make demo-cluster` as CI would run it: `hack/demo-cluster.sh` with `DEMO_ONESHOT=1` starts
//! the test node, installs the operator with `kubectl apply -k`, plays the user, exits 0 once the
//! Deployment is Available (2/2) and every example sender is Ready, and tears everything down.

use std::process::Command;
use std::time::{Duration, Instant};

use super::node::turn;
use crate::support::controlplane::repo_root;

#[test]
fn the_cluster_demo_installs_the_operator_as_pods_and_gets_every_example_online() {
    let _turn = turn();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let output = Command::new(repo_root().join("hack/demo-cluster.sh"))
        .env("DEMO_ONESHOT", "1")
        .env("DEMO_STEP_MS", "200")
        .env("DEMO_TIMEOUT", "180")
        .env("DEMO_DIR", dir.path())
        .output()
        .expect("run hack/demo-cluster.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the cluster demo failed after {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nnode log:\n{}",
        started.elapsed(),
        std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default()
    );
    for expected in [
        "All 3 senders are ONLINE",
        "the user receives the code",
        "deployment.apps/senderops   2/2",
        "export KUBECONFIG=",
        "Tearing the node down",
    ] {
        assert!(
            stdout.contains(expected),
            "the demo printed {expected:?}:\n{stdout}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(300));
    assert!(
        !std::path::Path::new("/sys/class/net/senderops0").exists(),
        "the node's bridge is gone after the demo"
    );
}
