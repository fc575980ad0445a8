//! Twenty senders over two accounts, half of them waiting for a code that a stand-in user
//! writes as soon as the simulator "sends" it: all reach Ready within the request budget,
//! with injected Twilio errors, and none is registered twice. A second run without faults
//! prints what it cost: Twilio requests per sender, code-to-submission latency, and
//! steady-state requests per minute.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::fleet::{
    Member, apply_fleet, assert_one_create_attempt_each, assert_registered_once, fleet,
};
use crate::support::metrics::{scrape, sum};
use crate::support::operator::{Fixture, condition};
use crate::support::sim::{ACCOUNT_A, ACCOUNT_B, requests_in};
use crate::support::wait::Wait;

const SENDERS: usize = 20;
const ONBOARDING_DEADLINE: Duration = Duration::from_secs(180);
/// What an account allows per (fixed) second in the faults test: the most a budget of 5/s
/// with a burst of 5 can send in one second (the burst plus five refilled; `BudgetConfig`).
const ACCOUNT_LIMIT: u64 = 10;
/// The Senders API's routes start with this (list `GET`s and single `GET /{Sid}`s).
const SENDERS_ROUTE: &str = "/v2/Channels/Senders";

/// Twenty senders named `sender-NN`: the first half in account A, the rest in account B, every
/// odd one needing a code.
fn plan() -> Vec<Member> {
    fleet("sender", SENDERS)
}

/// Plays the user until every sender is Ready: writes each code into its Secret as soon as
/// the simulator has sent it. Returns, per coded sender, how long after its Secret was
/// written the simulator saw the code (the sender left PENDING_VERIFICATION).
async fn onboard(f: &Fixture, plan: &[Member]) -> Vec<Duration> {
    let mut written: BTreeMap<String, Instant> = BTreeMap::new();
    let mut submitted: BTreeMap<String, Duration> = BTreeMap::new();
    Wait::until(format!("all {} senders to be Ready", plan.len()))
        .within(ONBOARDING_DEADLINE)
        .every(Duration::from_millis(10))
        .context(|| format!("operator log:\n{}", f.operator.log_tail(40)))
        .poll_ok(async || {
            for sender in f.sim.all_senders().await {
                let phone = sender["sender_id"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("whatsapp:")
                    .to_string();
                let Some(p) = plan.iter().find(|p| p.phone == phone && p.coded) else {
                    continue;
                };
                let sid = sender["sid"].as_str().unwrap();
                match (sender["status"].as_str(), written.get(&p.name)) {
                    (Some("PENDING_VERIFICATION"), None) => {
                        if let Some(code) = f.sim.otp(sid).await {
                            f.secret(&p.code_secret(), &[("code", &code)]).await;
                            written.insert(p.name.clone(), Instant::now());
                        }
                    }
                    (Some("VERIFYING" | "ONLINE"), Some(at)) => {
                        submitted.entry(p.name.clone()).or_insert(at.elapsed());
                    }
                    _ => {}
                }
            }
            let mut ready = 0;
            for p in plan {
                if f.get(&p.name)
                    .await
                    .is_some_and(|s| condition(&s, "Ready").is_some_and(|c| c.status == "True"))
                {
                    ready += 1;
                }
            }
            if ready == plan.len() {
                Ok(())
            } else {
                Err(format!("{ready}/{} Ready", plan.len()))
            }
        })
        .await;
    submitted.into_values().collect()
}

/// Every number has exactly one sender at Twilio, in its own account, created by exactly one
/// create Twilio handled, with its object's `status.sid` naming it (`assert_registered_once`);
/// the create attempts beyond one per number (each refused before Twilio handled it) are
/// printed.
async fn assert_no_duplicates(f: &Fixture, plan: &[Member]) {
    let attempts = assert_one_create_attempt_each(f, plan).await;
    assert_registered_once(f, plan).await;
    let again: Vec<_> = attempts.iter().filter(|(_, n)| *n > 1).collect();
    eprintln!("numbers sent a create again after one Twilio refused unhandled: {again:?}");
}

fn count(stats: &Value, method: &str, route: &str) -> u64 {
    requests_in(stats, |r| r["method"] == method && r["route"] == route)
}

#[tokio::test]
async fn twenty_senders_with_injected_errors_all_become_ready_once() {
    let f = Fixture::with_args(
        "scale-faults",
        &[
            "--twilio-requests-per-second",
            "5",
            "--poll-interval",
            "200ms",
        ],
    )
    .await;
    // Each account allows what the budget of 5/s can send in any second; more is answered 429.
    f.sim
        .faults(json!({"error_rate": 0.2, "rate_limit_per_second": ACCOUNT_LIMIT}))
        .await;
    let plan = plan();
    apply_fleet(&f, &plan).await;
    onboard(&f, &plan).await;
    f.sim.faults(json!({})).await;
    assert_no_duplicates(&f, &plan).await;
    let stats = f.sim.stats().await;
    // Every route counts: with batched refresh most reads are list pages, and creates plus
    // single-sender GETs alone (about 20 requests) drew no fault in about 0.9^20 = 12 % of runs.
    let failed = requests_in(&stats, |r| r["status"] == 500 || r["status"] == 503);
    assert!(failed > 0, "the faults were injected");
    let throttled = requests_in(&stats, |r| r["status"] == 429);
    let per_account = |account: &str| requests_in(&stats, |r| r["account"] == account);
    assert_eq!(
        throttled,
        0,
        "requests beyond the budget: {throttled} answered 429 by accounts allowing \
         {ACCOUNT_LIMIT} a second ({} requests in account A, {} in B)",
        per_account(ACCOUNT_A),
        per_account(ACCOUNT_B)
    );
    let metrics = scrape(&f.operator).await;
    eprintln!(
        "20 % errors, budget 5/s: {} + {} requests over accounts A and B, {failed} injected \
         500/503, none throttled; held back {:.1} s in all by the budget",
        per_account(ACCOUNT_A),
        per_account(ACCOUNT_B),
        sum(&metrics, "senderops_twilio_budget_wait_seconds_sum", &[])
    );
}

#[tokio::test]
async fn twenty_senders_cost_few_twilio_requests() {
    let resync = Duration::from_secs(10);
    let f = Fixture::with_args(
        "scale-cost",
        &["--poll-interval", "200ms", "--resync-interval", "10s"],
    )
    .await;
    let plan = plan();
    let started = Instant::now();
    apply_fleet(&f, &plan).await;
    let mut latencies = onboard(&f, &plan).await;
    let onboarding = started.elapsed();
    let to_ready = f.sim.requests_total().await;
    assert_no_duplicates(&f, &plan).await;

    // Steady state: every sender ONLINE; the first resync after onboarding has passed.
    tokio::time::sleep(resync + Duration::from_secs(2)).await;
    let window = Duration::from_secs(30);
    let before = f.sim.stats().await;
    tokio::time::sleep(window).await;
    let after = f.sim.stats().await;
    let steady = requests_in(&after, |_| true) - requests_in(&before, |_| true);
    let steady_gets = count(&after, "GET", "/v2/Channels/Senders/{Sid}")
        - count(&before, "GET", "/v2/Channels/Senders/{Sid}");
    let steady_lists = count(&after, "GET", "/v2/Channels/Senders")
        - count(&before, "GET", "/v2/Channels/Senders");
    // Reads of senders (list pages or single GETs) by account.
    let reads_in = |stats: &Value, account: &str| {
        requests_in(stats, |r| {
            r["method"] == "GET"
                && r["route"]
                    .as_str()
                    .is_some_and(|route| route.starts_with(SENDERS_ROUTE))
                && r["account"] == account
        })
    };
    let steady_reads_by_account = [ACCOUNT_A, ACCOUNT_B]
        .map(|account| reads_in(&after, account) - reads_in(&before, account));
    let per_minute = steady as f64 * 60.0 / window.as_secs_f64();
    let floor_per_minute = 2.0 * 60.0 / resync.as_secs_f64(); // one list per account per resync
    let at_default_resync = per_minute * resync.as_secs_f64() / 300.0;

    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    let per_sender = to_ready as f64 / SENDERS as f64;
    // 1 create per sender, 1 code per coded one, and a read per transition seen
    // (CREATING→ONLINE; CREATING→PENDING_VERIFICATION, VERIFYING→ONLINE).
    let floor = (SENDERS + SENDERS / 2 + SENDERS / 2 + 2 * SENDERS / 2) as f64 / SENDERS as f64;
    let stats = f.sim.all_senders().await.len();
    eprintln!(
        "\n20 senders (2 accounts, 10 needing a code), poll 200 ms, simulator step 50 ms:\n\
         - Ready after {onboarding:.1?} (serial onboarding per account)\n\
         - Twilio requests to Ready: {to_ready} = {per_sender:.2} per sender (floor {floor:.2})\n\
         - code Secret written → simulator saw the code: p50 {p50:?}, max {max:?}\n\
         - steady state at resync {resync:?}: {per_minute:.1} requests/min (floor {floor_per_minute:.1}); \
         at the default 5m resync that is {at_default_resync:.2}/min \
         ({steady_lists} list pages and {steady_gets} GETs in {window:?})\n\
         - {stats} senders at Twilio, each created once\n"
    );
    assert!(
        per_sender <= 1.5 * floor,
        "{per_sender:.2} requests per sender to Ready, more than 1.5 × the floor of {floor:.2}"
    );
    assert!(
        per_minute <= 2.0 * floor_per_minute,
        "{per_minute:.1} requests/min in steady state, more than twice the floor of {floor_per_minute:.1}"
    );
    // The resync is alive: a resync period is 10 to 11 s (10 % jitter), so the 30 s window
    // holds at least two for every sender, each reading it (in its account's list or alone).
    assert!(
        steady_reads_by_account.iter().all(|reads| *reads >= 2),
        "sender reads per account (A, B) in {window:?} of steady state: \
         {steady_reads_by_account:?}; a resync every {resync:?} reads each account's senders \
         at least twice"
    );
}
