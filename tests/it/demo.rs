//! `make demo`, the README's main command, as CI would run it: `hack/demo.sh` with
//! `DEMO_ONESHOT=1` brings up the control plane, twilio-sim and the operator, plays the user
//! who receives the codes, exits 0 once every example sender is Ready, and leaves no process
//! behind.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::controlplane::repo_root;

#[test]
fn the_demo_gets_every_example_sender_online_and_cleans_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let output = Command::new(repo_root().join("hack/demo.sh"))
        .env("DEMO_ONESHOT", "1")
        .env("DEMO_STEP_MS", "200")
        .env("DEMO_TIMEOUT", "120")
        .env("DEMO_DIR", dir.path())
        .output()
        .expect("run hack/demo.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the demo failed after {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\noperator log:\n{}",
        started.elapsed(),
        std::fs::read_to_string(dir.path().join("operator.log")).unwrap_or_default()
    );
    assert!(stdout.contains("All 3 senders are ONLINE"), "{stdout}");
    assert!(stdout.contains("the user receives the code"), "{stdout}");
    assert!(stdout.contains("export KUBECONFIG="), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(150));

    // Every process the demo started is gone.
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let leftovers = Command::new("pgrep")
        .args(["-f", &dir_arg])
        .output()
        .expect("run pgrep");
    assert!(
        leftovers.stdout.is_empty(),
        "processes left running: {}",
        String::from_utf8_lossy(&leftovers.stdout)
    );
}
