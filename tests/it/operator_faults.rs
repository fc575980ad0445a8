//! Twilio misbehaving under load: twenty senders over two accounts (half waiting for a code a
//! stand-in user writes) through 20 % of requests failing with 500/503 and 200 ms of latency,
//! answers lost after Twilio acted on them, a 429 storm, and two replicas with leader election.
//! Every test first shows its faults happened (failures injected in the phase measured, answers
//! lost on the routes named, the limit hit, the leader killed with work left), and ends with
//! all senders Ready, each registered exactly once (one create handled per number, counted over
//! every attempt; one Twilio sender per object), what the operator saw visible in its
//! /metrics, and, where the faults allow it, every sender deleted again with nothing left at
//! Twilio.
//!
//! (`operator_scale.rs` measures cost without faults, and convergence with errors under a
//! tight request budget; crashes of the operator and of the API server, and deletion races, are
//! in `operator_disruptions.rs`.)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::{Value, json};

use crate::support;
use crate::support::fleet::{
    FLEET, ONBOARDING_DEADLINE, StandInUser, apply_fleet, assert_registered_once, delete_fleet,
    fleet, last_coded, not_ready, onboard, wait_all_gone, waiting_for_ready,
};
use crate::support::metrics::{scrape, sum};
use crate::support::operator::{Fixture, Operator};
use crate::support::sim::{ACCOUNT_A, ACCOUNT_B, Sim, requests_in};
use crate::support::wait::Wait;

const CLEANUP_DEADLINE: Duration = Duration::from_secs(90);

/// Requests the simulator answered with `status`, over all routes.
async fn answered(sim: &Sim, status: u16) -> u64 {
    requests_in(&sim.stats().await, |r| r["status"] == status)
}

/// Twilio attempts the operator counted with outcome `status_code`, over all operations.
fn attempts(metrics: &str, status_code: &str) -> f64 {
    sum(
        metrics,
        "senderops_twilio_requests_total",
        &[("status_code", status_code)],
    )
}

/// Waits until the operator's metrics count a reconcile that failed and was requeued with
/// backoff.
async fn wait_for_failed_reconcile(operator: &Operator) {
    Wait::until("a failed reconcile in the metrics, since every create fails")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(200))
        .poll_ok(async || {
            let metrics = scrape(operator).await;
            if sum(&metrics, "senderops_reconcile_errors_total", &[]) > 0.0 {
                Ok(())
            } else {
                Err(format!("metrics\n{metrics}"))
            }
        })
        .await
}

/// Waits until the operator's metrics count `what` as often as the simulator answered it
/// (requests still on the wire landing: nothing polls once every sender is ONLINE, the test
/// resync being an hour), and returns those metrics; panics with both counts at the deadline.
async fn wait_until_counted(
    f: &Fixture,
    what: &str,
    answered: impl AsyncFn(&Sim) -> u64,
    seen: impl Fn(&str) -> f64,
) -> String {
    Wait::until(format!(
        "the operator's metrics to count every {what} Twilio sent"
    ))
    .within(Duration::from_secs(10))
    .every(Duration::from_millis(200))
    .poll_ok(async || {
        let metrics = scrape(&f.operator).await;
        let (sent, counted) = (answered(&f.sim).await, seen(&metrics));
        if counted == sent as f64 {
            Ok(metrics)
        } else {
            Err(format!(
                "the simulator sent {sent}, the operator counted {counted}:\n{metrics}"
            ))
        }
    })
    .await
}

/// Requests of `method` to `route` answered with `status` in a `/_sim/stats` snapshot.
fn answered_on(stats: &Value, method: &str, route: &str, status: u16) -> u64 {
    requests_in(stats, |r| {
        r["method"] == method && r["route"] == route && r["status"] == status
    })
}

/// What the operator logs when it goes on without an Error Log read that failed.
const ERROR_LOG_SKIPPED: &str = "could not read the account's Error Log";

/// The client's in-place retries the operator logged in `log` (each after a backoff delay).
fn retries_logged(log: &str) -> usize {
    log.matches("Twilio request failed, retrying").count()
}

#[tokio::test]
async fn twenty_senders_converge_once_through_errors_and_latency_and_are_deleted() {
    let f = Fixture::new("errors").await;
    // Creates fail outright until one failure has gone back to the controller's backoff; then
    // 20 % of every request fails, which the assertions below show by themselves.
    f.sim
        .faults(json!({"error_rate": 1.0, "only": "POST /v2/Channels/Senders"}))
        .await;
    let fleet = fleet("errors", FLEET);
    apply_fleet(&f, &fleet).await;
    wait_for_failed_reconcile(&f.operator).await;
    // The second phase starts here. The operator's log and metrics first: a failure the
    // simulator counts after its snapshot reaches the operator's log and metrics after theirs.
    let log_before = f.operator.log().len();
    let metrics_before = scrape(&f.operator).await;
    let stats_before = f.sim.stats().await;
    f.sim
        .faults(json!({"error_rate": 0.2, "latency_ms": 200}))
        .await;
    let took = onboard(&f, &fleet, &mut StandInUser::default()).await;
    assert_registered_once(&f, &fleet).await;

    let metrics = wait_until_counted(
        &f,
        "500/503",
        async |sim| answered(sim, 500).await + answered(sim, 503).await,
        |metrics| attempts(metrics, "500") + attempts(metrics, "503"),
    )
    .await;
    let stats = f.sim.stats().await;
    let injected = answered(&f.sim, 500).await + answered(&f.sim, 503).await;
    let seen = attempts(&metrics, "500") + attempts(&metrics, "503");
    let failed_reconciles = sum(&metrics, "senderops_reconcile_errors_total", &[]);
    let requests = f.sim.requests_total().await;
    // The 20 % phase alone.
    let since = |status: u16| {
        requests_in(&stats, |r| r["status"] == status)
            - requests_in(&stats_before, |r| r["status"] == status)
    };
    let phase_requests = requests - requests_in(&stats_before, |_| true);
    let phase_injected = since(500) + since(503);
    // A create or a code submission that fails with a 500 may have been processed, so the
    // client does not repeat it: each goes back to the controller's backoff.
    let unrepeatable = |stats: &Value| {
        answered_on(stats, "POST", "/v2/Channels/Senders", 500)
            + answered_on(stats, "POST", "/v2/Channels/Senders/{Sid}", 500)
    };
    let phase_unrepeatable = unrepeatable(&stats) - unrepeatable(&stats_before);
    let phase_failed_reconciles =
        failed_reconciles - sum(&metrics_before, "senderops_reconcile_errors_total", &[]);
    let phase_log = f
        .operator
        .log()
        .get(log_before..)
        .unwrap_or_default()
        .to_string();
    let phase_retries = retries_logged(&phase_log);
    let phase_skipped_log_reads = phase_log.matches(ERROR_LOG_SKIPPED).count();
    eprintln!(
        "20% errors + 200 ms latency: Ready in {took:.1?}; {requests} requests, {injected} \
         injected 500/503, {failed_reconciles} failed reconciles (retried with backoff); in the \
         20 % phase {phase_requests} requests, {phase_injected} injected 500/503 \
         ({phase_unrepeatable} on creates and code submissions), {phase_retries} retried in \
         place, {phase_failed_reconciles} failed reconciles, {phase_skipped_log_reads} Error Log \
         reads given up"
    );
    assert!(injected > 0, "the faults were injected");
    assert_eq!(
        seen, injected as f64,
        "the operator's metrics count every 500/503 Twilio sent"
    );
    assert!(
        failed_reconciles > 0.0,
        "some errors outlasted the client's retries and went back to the controller's \
         backoff:\n{metrics}"
    );
    // The phase has 70 to 90 requests (20 creates, 10 code submissions, and the reads that see
    // every sender through its transitions); at least 60, so none failing would happen in
    // 0.8^60 < 2e-6 of runs.
    assert!(
        phase_injected > 0,
        "the 20 % phase injected no failure in {phase_requests} requests"
    );
    // Each failure backed off: the client retried it in place after a delay, or gave it up,
    // failing the reconcile (which the controller requeues with backoff), or, for an Error Log
    // read, going on without it. One given-up request fails one reconcile or more (a shared list
    // or log read serves several).
    let backed_off = phase_retries + phase_failed_reconciles as usize + phase_skipped_log_reads;
    assert!(
        backed_off >= phase_injected as usize,
        "{phase_injected} injected failures in the 20 % phase, but only {phase_retries} retries \
         in place, {phase_failed_reconciles} failed reconciles and {phase_skipped_log_reads} \
         skipped Error Log reads:\n{metrics}"
    );
    assert!(
        phase_failed_reconciles >= phase_unrepeatable as f64,
        "each of the {phase_unrepeatable} creates and code submissions that failed with a 500 in \
         the 20 % phase went back to the controller's backoff, but only \
         {phase_failed_reconciles} reconciles failed:\n{metrics}"
    );
    assert!(
        sum(
            &metrics,
            "senderops_twilio_request_duration_seconds_sum",
            &[("operation", "create")]
        ) >= 0.2 * FLEET as f64,
        "every create waited out the latency"
    );

    // Deleting goes through the same faults.
    delete_fleet(&f, &fleet).await;
    wait_all_gone(&f, &fleet, CLEANUP_DEADLINE).await;
}

#[tokio::test]
async fn twenty_senders_converge_once_when_answers_are_lost_after_twilio_acted() {
    let f = Fixture::new("lost").await;
    let fleet = fleet("lost", FLEET);
    apply_fleet(&f, &fleet).await;
    let mut user = StandInUser::default();
    // Every create's answer is lost until one is, then every code submission's until one is
    // (20 % alone would miss all code submissions in about 1 run of 9); then any request,
    // creates and code submissions included, may take effect and never answer.
    for route in ["/v2/Channels/Senders", "/v2/Channels/Senders/{Sid}"] {
        f.sim
            .faults(json!({"lost_answer_rate": 1.0, "only": format!("POST {route}")}))
            .await;
        Wait::until(format!("the answer to a POST {route} to be lost"))
            .within(ONBOARDING_DEADLINE)
            .every(Duration::from_millis(50))
            .context(|| format!("operator log:\n{}", f.operator.log_tail(40)))
            .poll_ok(async || {
                user.play(&f, &fleet).await;
                match f.sim.lost_answers("POST", route).await {
                    0 => Err(waiting_for_ready(&f, &fleet)
                        .await
                        .err()
                        .unwrap_or_default()),
                    lost => Ok(lost),
                }
            })
            .await;
    }
    f.sim.faults(json!({"lost_answer_rate": 0.2})).await;
    let took = onboard(&f, &fleet, &mut user).await;
    assert_registered_once(&f, &fleet).await;
    for member in fleet.iter().filter(|m| m.coded) {
        let sid = f.sim_sender(&member.phone).await["sid"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            f.sim.sender(&sid).await["wrong_codes"],
            0,
            "{}: the one code was accepted",
            member.name
        );
    }

    let metrics = wait_until_counted(
        &f,
        "lost answer",
        async |sim| sim.stats().await["lost_answers"].as_u64().unwrap(),
        |metrics| attempts(metrics, "transport") + attempts(metrics, "timeout"),
    )
    .await;
    let stats = f.sim.stats().await;
    let lost = stats["lost_answers"].as_u64().unwrap();
    let seen = attempts(&metrics, "transport") + attempts(&metrics, "timeout");
    let lost_creates = f.sim.lost_answers("POST", "/v2/Channels/Senders").await;
    let lost_codes = f
        .sim
        .lost_answers("POST", "/v2/Channels/Senders/{Sid}")
        .await;
    eprintln!(
        "20% of answers lost: Ready in {took:.1?}; {} requests, {lost} answers lost ({:?})",
        requests_in(&stats, |_| true),
        stats["lost_answers_by_route"]
    );
    assert!(lost > 0, "answers were lost");
    assert!(
        lost_creates > 0 && lost_codes > 0,
        "the answers of {lost_creates} creates and {lost_codes} code submissions were lost"
    );
    assert_eq!(
        seen, lost as f64,
        "every lost answer shows in the operator's metrics as a transport failure:\n{metrics}"
    );

    delete_fleet(&f, &fleet).await;
    wait_all_gone(&f, &fleet, CLEANUP_DEADLINE).await;
}

#[tokio::test]
async fn a_429_storm_is_waited_out_and_every_sender_is_created_once() {
    // The operator's budget (10/s, bursts of 10) is far above what the account allows (2/s).
    let f = Fixture::with_args("storm", &["--twilio-requests-per-second", "10"]).await;
    f.sim.faults(json!({"rate_limit_per_second": 2})).await;
    let fleet = fleet("storm", FLEET);
    apply_fleet(&f, &fleet).await;
    let took = onboard(&f, &fleet, &mut StandInUser::default()).await;
    assert_registered_once(&f, &fleet).await;

    let metrics = wait_until_counted(
        &f,
        "429",
        async |sim| answered(sim, 429).await,
        |metrics| attempts(metrics, "429"),
    )
    .await;
    let throttled = answered(&f.sim, 429).await;
    let requests = f.sim.requests_total().await;
    let failed_reconciles = sum(
        &metrics,
        "senderops_reconcile_errors_total",
        &[("reason", "twilio_throttled")],
    );
    eprintln!(
        "429 storm (2/s per account): Ready in {took:.1?}; {requests} requests, {throttled} \
         answered 429, {failed_reconciles} reconciles throttled past the client's retries"
    );
    assert!(throttled > 0, "the account's limit was hit");
    assert_eq!(
        attempts(&metrics, "429"),
        throttled as f64,
        "the operator's metrics count every 429"
    );
    // Retry-After (1 s) is honoured: a client that retried at once would collect several 429s
    // per request it got through.
    assert!(
        throttled < requests - throttled,
        "{throttled} 429s for {} requests that got through",
        requests - throttled
    );
}

#[tokio::test]
async fn an_operator_held_within_the_accounts_limit_is_never_throttled() {
    // A budget of 2/s allows bursts of 2: at most 2 requests at once after a quiet spell, plus
    // 2 refilled within the second. An account limit of 6/s is therefore never exceeded,
    // unless the operator sends more than its budget.
    let f = Fixture::with_args("budget", &["--twilio-requests-per-second", "2"]).await;
    f.sim.faults(json!({"rate_limit_per_second": 6})).await;
    let fleet = fleet("budget", FLEET);
    apply_fleet(&f, &fleet).await;
    let took = onboard(&f, &fleet, &mut StandInUser::default()).await;
    assert_registered_once(&f, &fleet).await;

    let metrics = scrape(&f.operator).await;
    let stats = f.sim.stats().await;
    let per_account = |account: &str| requests_in(&stats, |r| r["account"] == account);
    // The histogram's count includes waits of a few microseconds; its sum is the time held.
    let waited = sum(&metrics, "senderops_twilio_budget_wait_seconds_sum", &[]);
    let (a, b) = (per_account(ACCOUNT_A), per_account(ACCOUNT_B));
    eprintln!(
        "budget 2/s per account: Ready in {took:.1?}; {a} + {b} requests over accounts A and B, \
         held back {waited:.1} s in all by the budget"
    );
    assert_eq!(
        answered(&f.sim, 429).await,
        0,
        "no second ever carried more requests than the budget allows"
    );
    assert!(
        waited > 1.0,
        "the load was above the budget, so the budget held requests back:\n{metrics}"
    );
    assert!(a > 0 && b > 0, "both accounts were used: {stats}");
}

/// What a leader logs when it loses the Lease, before it exits to restart as a standby.
const LEASE_LOST: &str = "stopped leading: lost the Lease to another replica";

/// The pid in the Lease holder's identity (`host-PID` outside a pod).
async fn lease_holder(f: &Fixture) -> Option<u32> {
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &f.ns);
    crate::support::lease::holder_pid(&leases, "senderops").await
}

/// Two replicas run as a Deployment's pods would: one that exits on its own (a replica that
/// loses the Lease, e.g. when a loaded machine delays its renewal, exits to come back as a
/// standby) is started again at once, as kubelet would. If the test fails, the tails of every
/// replica's logs, those of exited and killed processes included, are printed.
#[derive(Default)]
struct Supervisor {
    /// (replica, pid, log file) for every process started, in order.
    started: Vec<(&'static str, Option<u32>, PathBuf)>,
    /// What happened besides the planned kill: exits and restarts.
    history: Vec<String>,
}

impl Supervisor {
    fn started(&mut self, name: &'static str, replica: &Operator) {
        let entry = (name, replica.pid(), replica.log_file().to_path_buf());
        self.started.push(entry);
    }

    /// Restarts `replica` if it has exited as a leader that lost the Lease does (it led, then
    /// logged the loss and exited 1). Any other exit fails the test: a standby that panics, or
    /// a leader that crashes, is not restarted into a pass.
    fn tend(&mut self, name: &'static str, replica: &mut Operator) {
        if let Some(status) = replica.exit_status() {
            let log = replica.log();
            let led = log.contains("senderops started");
            let lost = log.contains(LEASE_LOST);
            assert!(
                led && lost && status.code() == Some(1),
                "{name} (pid {:?}) exited ({status}) other than by losing the Lease it held \
                 (led: {led}, logged the loss: {lost}):\n{}",
                replica.pid(),
                replica.log_tail(40)
            );
            self.history.push(format!(
                "{name} (pid {:?}) lost the Lease, exited ({status}) and was restarted",
                replica.pid()
            ));
            replica.restart();
            self.started(name, replica);
        }
    }

    /// Kills `replica` and starts it again (a crash, then the restart).
    fn crash(&mut self, name: &'static str, replica: &mut Operator) {
        self.history
            .push(format!("{name} (pid {:?}) killed", replica.pid()));
        replica.kill();
        replica.restart();
        self.started(name, replica);
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        eprintln!("replica history: {:#?}", self.history);
        for (name, pid, log) in &self.started {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "---- {name} (pid {pid:?}), last 40 lines of its log:\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

/// Waits (restarting replicas that exit) until the Lease names a running replica other than
/// `not`, and returns its pid.
async fn running_leader(
    f: &mut Fixture,
    second: &mut Operator,
    supervisor: &mut Supervisor,
    not: Option<u32>,
) -> u32 {
    Wait::until(format!(
        "a running replica other than {not:?} to hold the Lease"
    ))
    .within(Duration::from_secs(30))
    .poll_ok(async || {
        supervisor.tend("first", &mut f.operator);
        supervisor.tend("second", second);
        let holder = lease_holder(f).await;
        if let Some(pid) = holder
            && holder != not
            && [f.operator.pid(), second.pid()].contains(&holder)
            && f.operator.exit_status().is_none()
            && second.exit_status().is_none()
        {
            return Ok(pid);
        }
        Err(format!("holder {holder:?}"))
    })
    .await
}

#[tokio::test]
async fn two_replicas_under_errors_create_each_sender_once_across_a_takeover() {
    let sim = Sim::start().await;
    let plane = support::controlplane::shared();
    let ns = plane.namespace("replicas").await;
    // 6 s leaves the leader 2 s to renew (it starts a third of the duration before expiry):
    // with 3 s, a busy machine delayed renewals past expiry and the leader lost the Lease.
    let args = [
        "--leader-election",
        "--lease-namespace",
        &ns,
        "--lease-duration",
        "6s",
    ];
    let mut supervisor = Supervisor::default();
    let mut f = Fixture::with_sim_in(&ns, sim, &args).await;
    supervisor.started("first", &f.operator);
    let mut second = Operator::start(&ns, &f.sim.base_url(), &args);
    supervisor.started("second", &second);
    f.sim.faults(json!({"error_rate": 0.2})).await;
    let fleet = fleet("replicas", FLEET);
    apply_fleet(&f, &fleet).await;

    // Halfway through, the leader dies; the standby takes over and the dead one restarts as
    // the new standby. The last coded member's code is withheld until then, so work is
    // certainly left for the new leader.
    let last = last_coded(&fleet);
    let mut user = StandInUser::withholding(last);
    Wait::until("half the fleet to be Ready")
        .within(ONBOARDING_DEADLINE)
        .every(Duration::from_millis(50))
        .poll_ok(async || {
            let waiting = not_ready(&f, &fleet).await;
            if waiting.len() <= FLEET / 2 {
                return Ok(());
            }
            supervisor.tend("first", &mut f.operator);
            supervisor.tend("second", &mut second);
            user.play(&f, &fleet).await;
            Err(format!(
                "{} not Ready:\n{}",
                waiting.len(),
                waiting.join("\n")
            ))
        })
        .await;
    let leader = running_leader(&mut f, &mut second, &mut supervisor, None).await;
    if Some(leader) == f.operator.pid() {
        supervisor.crash("first", &mut f.operator);
    } else {
        supervisor.crash("second", &mut second);
    }
    let left = not_ready(&f, &fleet).await;
    assert!(
        left.iter()
            .any(|w| w.starts_with(&format!("{}:", last.name))),
        "the leader was killed with no work left: {} was Ready; not Ready: {left:?}",
        last.name
    );
    user.release();

    let took = Instant::now();
    Wait::until(format!(
        "all {FLEET} senders to be Ready after the takeover"
    ))
    .within(ONBOARDING_DEADLINE)
    .every(Duration::from_millis(50))
    .poll_ok(async || {
        supervisor.tend("first", &mut f.operator);
        supervisor.tend("second", &mut second);
        user.play(&f, &fleet).await;
        waiting_for_ready(&f, &fleet).await
    })
    .await;
    let took = took.elapsed();
    assert_registered_once(&f, &fleet).await;
    // The killed leader's Lease passed to a live replica (the killed pid no longer runs).
    let new_leader = running_leader(&mut f, &mut second, &mut supervisor, Some(leader)).await;
    eprintln!(
        "two replicas, 20% errors, leader killed halfway: Ready {took:.1?} after the takeover; \
         leader {leader} then {new_leader}; {:?}",
        supervisor.history
    );
}
