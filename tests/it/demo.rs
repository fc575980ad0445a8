//! `make demo`, the README's main command: `hack/demo.sh` brings up the control plane,
//! twilio-sim and the operator, plays the user who receives the codes, and either exits 0 once
//! every example sender is Ready (`DEMO_ONESHOT=1`, as CI would run it) or runs until Ctrl-C.
//! Either way every process it started is gone afterwards: the demo lists them (`DEMO_DIR/pids`)
//! and each PID is checked, while it runs and after it stops.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::controlplane::repo_root;
use crate::support::process_runs;
use crate::support::wait::Wait;

/// The demo's own bound on reaching Ready, and ours on its whole run.
const DEMO_TIMEOUT: &str = "120";
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

fn demo(dir: &Path, oneshot: bool) -> Command {
    let mut command = Command::new(repo_root().join("hack/demo.sh"));
    command
        .env("DEMO_STEP_MS", "200")
        .env("DEMO_TIMEOUT", DEMO_TIMEOUT)
        .env("DEMO_DIR", dir);
    if oneshot {
        command.env("DEMO_ONESHOT", "1");
    }
    command
}

/// The processes the demo has listed as started: name and PID.
fn listed_processes(dir: &Path) -> Vec<(String, u32)> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (name, pid) = line.split_once(' ')?;
            Some((name.to_string(), pid.parse().ok()?))
        })
        .collect()
}

/// The processes the demo started, all three of them.
fn started_processes(dir: &Path) -> Vec<(String, u32)> {
    let processes = listed_processes(dir);
    let names: Vec<&str> = processes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["testplane", "twilio-sim", "senderops"],
        "the processes the demo lists in {}",
        dir.join("pids").display()
    );
    processes
}

fn assert_all_gone(processes: &[(String, u32)]) {
    let left: Vec<&(String, u32)> = processes
        .iter()
        .filter(|(_, pid)| process_runs(*pid))
        .collect();
    assert!(left.is_empty(), "processes left running: {left:?}");
}

fn operator_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("operator.log")).unwrap_or_default()
}

/// Waits for the demo to exit; one that does not within `within` (its cleanup waits for a
/// process it failed to stop) fails the test, naming the processes still running, after its
/// whole process group is killed.
fn wait_for_exit(child: &mut Child, dir: &Path, within: Duration) -> std::process::ExitStatus {
    let wait = Wait::until("the demo to exit")
        .within(within)
        .context(|| format!("operator log:\n{}", operator_log(dir)));
    let exited = wait.try_poll_ok_blocking(|| child.try_wait().expect("poll the demo").ok_or(()));
    exited.unwrap_or_else(|()| {
        let running: Vec<(String, u32)> = listed_processes(dir)
            .into_iter()
            .filter(|(_, pid)| process_runs(*pid))
            .collect();
        signal_group(child, "KILL");
        wait.fail(format!("still running: {running:?}"))
    })
}

/// Sends `signal` to the demo's process group (it is started as its own group's leader).
fn signal_group(child: &Child, signal: &str) {
    let group = format!("-{}", child.id());
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), "--", &group])
        .status()
        .expect("run kill");
    assert!(sent.success(), "SIG{signal} to the demo's process group");
}

fn spawn_demo(dir: &Path, oneshot: bool, stdout: Stdio) -> Child {
    use std::os::unix::process::CommandExt;
    demo(dir, oneshot)
        .process_group(0)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("start hack/demo.sh")
}

#[test]
fn the_oneshot_demo_gets_every_example_sender_online_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Outside DEMO_DIR, which the demo empties when it starts.
    let out = tempfile::NamedTempFile::new().expect("a file for the demo's output");
    let started = Instant::now();
    let mut child = spawn_demo(
        dir.path(),
        true,
        out.reopen().expect("the demo's output file").into(),
    );
    let status = wait_for_exit(&mut child, dir.path(), RUN_TIMEOUT);
    let stdout = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert!(
        status.success(),
        "the demo failed after {:?}\nstdout:\n{stdout}\noperator log:\n{}",
        started.elapsed(),
        operator_log(dir.path())
    );
    assert!(stdout.contains("All 3 senders are ONLINE"), "{stdout}");
    assert!(stdout.contains("the user receives the code"), "{stdout}");
    assert!(stdout.contains("export KUBECONFIG="), "{stdout}");
    assert_all_gone(&started_processes(dir.path()));
}

/// Reads the demo's output until `line` (returned with all before it), or panics after `within`.
fn read_until(child: &mut Child, line: &'static str, within: Duration) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push_str(&text);
            seen.push('\n');
            if text.contains(line) {
                let _ = tx.send(seen.clone());
            }
        }
        let _ = tx.send(seen);
    });
    let seen = rx
        .recv_timeout(within)
        .unwrap_or_else(|_| panic!("the demo printed no {line:?} within {within:?}"));
    assert!(
        seen.contains(line),
        "the demo ended before {line:?}:\n{seen}"
    );
    seen
}

/// Ctrl-C as a terminal sends it: SIGINT to the foreground process group, the demo's script and
/// every process it started.
#[test]
fn ctrl_c_stops_the_running_demo_and_every_process_it_started() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut child = spawn_demo(dir.path(), false, Stdio::piped());
    let seen = read_until(&mut child, "Running until Ctrl-C.", RUN_TIMEOUT);
    assert!(seen.contains("All 3 senders are ONLINE"), "{seen}");
    let processes = started_processes(dir.path());
    for (name, pid) in &processes {
        assert!(
            process_runs(*pid),
            "{name} ({pid}) runs while the demo waits for Ctrl-C"
        );
    }

    signal_group(&child, "INT");
    let began = Instant::now();
    let status = wait_for_exit(&mut child, dir.path(), Duration::from_secs(30));
    eprintln!("the demo stopped {:?} after Ctrl-C", began.elapsed());
    assert_eq!(
        status.code(),
        Some(130),
        "the demo exits 130 on Ctrl-C, as a shell reports it"
    );
    assert_all_gone(&processes);
}
