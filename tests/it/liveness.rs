//! `/healthz` as a kubelet reads it: it fails when the controller stops making progress, and
//! never because a replica is idle or standing by (README, "Health").

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::controlplane;
use crate::support::operator::{Fixture, Operator, spec};
use crate::support::sim::Sim;
use crate::support::wait::Wait;

const PROGRESS_DEADLINE: &str = "2s";

/// `/healthz`'s status and body.
async fn healthz(operator: &Operator) -> (u16, String) {
    let url = format!("{}/healthz", operator.metrics_url().await);
    let response = reqwest::get(&url).await.expect("GET /healthz");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Asserts `/healthz` answers 200 every 200 ms for `period`.
async fn healthy_throughout(operator: &Operator, who: &str, period: Duration) {
    let start = Instant::now();
    while start.elapsed() < period {
        let (status, body) = healthz(operator).await;
        assert_eq!(
            status,
            200,
            "{who} unhealthy {:?} in: {body}\n{}",
            start.elapsed(),
            operator.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_while_every_worker_is_stuck_and_recovers_when_they_move() {
    let sim = Sim::start().await;
    // One worker, and nothing cuts a slow Twilio call short: one sender can hold it.
    let f = Fixture::with_sim(
        "liveness-stuck",
        sim,
        &[
            "--max-concurrent-reconciles",
            "1",
            "--progress-deadline",
            PROGRESS_DEADLINE,
            "--twilio-timeout",
            "1m",
            "--reconcile-timeout",
            "10m",
        ],
    )
    .await;
    // Idle for more than a deadline: healthy all along.
    healthy_throughout(&f.operator, "the idle operator", Duration::from_secs(3)).await;

    // Every Twilio answer now takes 8 s: the one worker waits in the sender's first call.
    f.sim.faults(json!({"latency_ms": 8000})).await;
    f.sim.number("+15005550901", "auto_verify").await;
    f.apply("slow", spec("+15005550901", json!({}))).await;
    let stuck = Instant::now();
    let body = Wait::until("/healthz to fail while the only worker is stuck")
        .within(Duration::from_secs(7))
        .every(Duration::from_millis(100))
        .poll_ok(async || match healthz(&f.operator).await {
            (503, body) => Ok(body),
            other => Err(format!("{other:?}")),
        })
        .await;
    eprintln!(
        "/healthz failed {:.1?} after the worker got stuck: {body}",
        stuck.elapsed()
    );
    assert!(body.contains("no progress for"), "{body}");

    // Twilio answers promptly again: once the slow call returns, the worker takes the probe.
    f.sim.faults(json!({})).await;
    // The fault happened: the first answer came only after its 8 s.
    let answered = Wait::until("the slow call to be answered")
        .within(Duration::from_secs(15))
        .every(Duration::from_millis(50))
        .poll(async || f.sim.requests_total().await, |n| *n > 0)
        .await;
    assert!(
        stuck.elapsed() > Duration::from_secs(7),
        "{answered} Twilio request(s) answered {:.1?} after the sender was applied: the worker \
         was not held by a slow call",
        stuck.elapsed()
    );
    Wait::until("/healthz to pass again")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(100))
        .poll_ok(async || match healthz(&f.operator).await {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        })
        .await;
    f.wait_ready("slow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_leader_and_its_standby_stay_healthy() {
    let plane = controlplane::shared();
    let ns = plane.namespace("liveness-idle").await;
    let args = [
        "--leader-election",
        "--lease-namespace",
        &ns,
        "--lease-duration",
        "3s",
        "--progress-deadline",
        PROGRESS_DEADLINE,
    ];
    let f = Fixture::with_sim_in(&ns, Sim::start().await, &args).await;
    let standby = Operator::start(&ns, &f.sim.base_url(), &args);
    Wait::until("one replica to lead")
        .within(Duration::from_secs(30))
        .poll_ok(async || {
            let leading = [&f.operator, &standby]
                .iter()
                .filter(|o| o.log().contains("this replica is the leader"))
                .count();
            if leading == 1 {
                Ok(())
            } else {
                Err(format!("{leading} lead"))
            }
        })
        .await;
    // Three deadlines with no sender at all.
    tokio::join!(
        healthy_throughout(&f.operator, "the first replica", Duration::from_secs(6)),
        healthy_throughout(&standby, "the second replica", Duration::from_secs(6)),
    );
}

/// `--reconcile-timeout`: a reconcile held by a slow Twilio call past it is dropped and
/// retried with backoff, freeing its worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_past_its_deadline_is_dropped_and_retried() {
    let sim = Sim::start().await;
    let f = Fixture::with_sim(
        "reconcile-deadline",
        sim,
        &["--twilio-timeout", "1m", "--reconcile-timeout", "1s"],
    )
    .await;
    f.sim.faults(json!({"latency_ms": 3000})).await;
    f.sim.number("+15005550902", "auto_verify").await;
    f.apply("slow", spec("+15005550902", json!({}))).await;
    let applied = Instant::now();
    let line = Wait::until("the reconcile to be dropped at its deadline")
        .within(Duration::from_secs(10))
        .every(Duration::from_millis(50))
        .poll_ok(async || {
            f.operator
                .log()
                .lines()
                .find(|l| l.contains("reconcile failed") && l.contains("reconcile_timeout"))
                .map(str::to_string)
                .ok_or("no reconcile dropped yet")
        })
        .await;
    assert!(
        line.contains("the reconcile did not finish within 1s"),
        "{line}"
    );
    assert!(
        applied.elapsed() < Duration::from_secs(3),
        "dropped at 1 s, not when the 3 s call ended: {:.1?}",
        applied.elapsed()
    );
    // Twilio fast again: the retried reconcile gets through.
    f.sim.faults(json!({})).await;
    f.wait_ready("slow").await;
}
