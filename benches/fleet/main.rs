//! `make bench`: SenderOps against the test control plane and twilio-sim at fleet scale.
//!
//! 1. Onboarding: N senders (`BENCH_SENDERS`, 1000) over 10 accounts, half needing a code that
//!    a stand-in user writes as soon as the simulator sends it, applied at once. Two operators
//!    share the work by label: one with batched refresh (the default) for half the accounts,
//!    one with `--batched-refresh=false` (one GET per sender, as generic operators poll) for
//!    the other half, so both request costs come from the same run.
//! 2. Steady state: all ONLINE; two fresh operators with a 60 s resync
//!    (`BENCH_STEADY_RESYNC_SECONDS`), requests counted over 4 whole resyncs
//!    (`BENCH_STEADY_RESYNCS`), stated per hour at the default 5-minute resync and for all N
//!    senders (`steady.rs` says why).
//! 3. Scale: 10,000 senders (`BENCH_SCALE_SENDERS`; the rest registered at Twilio beforehand, as
//!    an imported fleet would be) and 10,000 unrelated 4 KiB Secrets; one operator started
//!    over them: time to its `/readyz` and to its first status write, and its peak RSS until
//!    all are Ready.
//!
//! Every operator's state lock (acquisitions, wait, hold, busy share) is read from its
//! `/metrics` at the end of its step, and duplicates are counted by create attempt at the end.
//! Writes `target/bench/report.json` and `report.txt`, prints the table, and exits non-zero
//! if a target is missed or was not measured.
//!
//! For profiling: `BENCH_ONLY_SCALE=1` runs step 3 alone (steps 1 and 2's figures are then
//! "not measured", and so is their targets' outcome), and `BENCH_WRAP_SCALE="heaptrack
//! -o target/bench/heaptrack"` runs its operator under a profiler (its RSS is then not the
//! operator's). Heap profilers see only the system allocator: add `--no-default-features`.

// The tests' helpers; the bench uses some of them.
#[allow(dead_code)]
#[path = "../../tests/it/support/mod.rs"]
mod support;

mod attempts;
mod lock;
mod operator;
mod report;
mod steady;
mod user;
mod watch;
mod world;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use attempts::Attempts;
use operator::OperatorProcess;
use report::{Outcome, Report, quantile, round2};
use steady::SteadySettings;
use watch::FleetWatch;
use world::{BenchAccount, Planned, REFRESH_LABEL, SimControl};

const STEP: Duration = Duration::from_millis(50);
const SIM_LIMIT_PER_SECOND: u32 = 10;
/// Flags every operator of the bench runs with, besides where Twilio and `/metrics` are: the
/// simulator's pace instead of Twilio's. The first poll of a sender in motion at 100 ms, matched
/// to the simulator's 50 ms steps as the default 5 s is to Twilio's; and no spacing between an
/// account's registrations, whose default 3 minutes would make 100 senders per account take
/// about five hours. The README's Performance section lists these (`tests/it/bench.rs`).
const OPERATOR_FLAGS: &[&str] = &["--poll-interval", "100ms", "--registration-interval", "0s"];
const ONBOARDING_DEADLINE: Duration = Duration::from_secs(600);

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

struct Bench {
    client: kube::Client,
    kubeconfig: std::path::PathBuf,
    sim: SimControl,
    accounts: Vec<BenchAccount>,
    /// The operator's `PageSize` for lists (the client's default).
    list_page_size: usize,
    out: std::path::PathBuf,
}

impl Bench {
    fn operator(&self, name: &str, extra: &[&str]) -> OperatorProcess {
        self.operator_wrapped(name, extra, &[])
    }

    fn operator_wrapped(&self, name: &str, extra: &[&str], wrapper: &[String]) -> OperatorProcess {
        let flags: Vec<String> = OPERATOR_FLAGS
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        OperatorProcess::start(
            wrapper,
            &self.kubeconfig,
            &self.sim.base,
            &flags,
            self.out.join(format!("operator-{name}.log")),
        )
    }

    /// Two operators sharing the accounts by label, one with batched refresh (the default) and
    /// one with `--batched-refresh=false`, both with `extra` flags; started and ready.
    async fn refresh_operators(&self, step: &str, extra: &[&str]) -> [OperatorProcess; 2] {
        let batched_selector = format!("{REFRESH_LABEL}=batched");
        let single_selector = format!("{REFRESH_LABEL}=single");
        let batched_flags = [&["--selector", batched_selector.as_str()][..], extra].concat();
        let single_flags = [
            &["--selector", &single_selector, "--batched-refresh=false"][..],
            extra,
        ]
        .concat();
        let mut batched = self.operator(&format!("{step}-batched"), &batched_flags);
        let mut single = self.operator(&format!("{step}-unbatched"), &single_flags);
        batched.wait_ready(Duration::from_secs(60)).await;
        single.wait_ready(Duration::from_secs(60)).await;
        [batched, single]
    }

    fn account_sids(&self, batched: bool) -> Vec<&str> {
        self.accounts
            .iter()
            .filter(|a| a.batched == batched)
            .map(|a| a.sid.as_str())
            .collect()
    }

    /// How many of `plan` belong to the batched (or the unbatched) operator's accounts.
    fn senders_in(&self, plan: &[Planned], batched: bool) -> usize {
        plan.iter()
            .filter(|p| self.accounts[p.account].batched == batched)
            .count()
    }
}

#[tokio::main]
async fn main() {
    let began = Instant::now();
    let only_scale = std::env::var_os("BENCH_ONLY_SCALE").is_some();
    let n = if only_scale {
        0
    } else {
        setting("BENCH_SENDERS", 1000)
    };
    let account_count = setting("BENCH_ACCOUNTS", 10);
    let scale = setting("BENCH_SCALE_SENDERS", 10_000);
    // Start-up is timed to the first status write, which only new senders are sure to cause.
    assert!(
        scale > n,
        "BENCH_SCALE_SENDERS ({scale}) must exceed BENCH_SENDERS ({n})"
    );
    let unrelated = setting("BENCH_UNRELATED_SECRETS", 10_000);
    let steady_settings = SteadySettings::from_env();
    let _ = rustls::crypto::ring::default_provider().install_default();

    let plane = support::controlplane::shared();
    let client = plane.client().await;
    let run = std::process::id().to_string();
    let accounts = world::accounts(account_count, &run);
    let handle = world::start_sim(&accounts, STEP).await;
    let bench = Bench {
        client: client.clone(),
        kubeconfig: plane.kubeconfig(),
        sim: SimControl::new(handle.base_url()),
        accounts,
        list_page_size: senderops::twilio::ClientConfig::default().list_page_size as usize,
        out: support::controlplane::repo_root().join("target/bench"),
    };
    std::fs::create_dir_all(&bench.out).expect("create target/bench");
    bench.sim.set_faults(sim_limit()).await;
    world::create_namespaces_and_credentials(&client, &bench.accounts).await;

    let mut report = Report {
        senders: n,
        accounts: account_count,
        ..Report::default()
    };
    report.details.operator_flags = OPERATOR_FLAGS.iter().map(|s| s.to_string()).collect();
    report.details.simulator_step_ms = STEP.as_millis() as u64;
    report.details.simulator_limit_per_second_per_account = SIM_LIMIT_PER_SECOND;
    report.details.batched_accounts = bench.account_sids(true).len();
    report.details.list_page_size = bench.list_page_size;

    let plan: Vec<Planned> = (0..n)
        .map(|i| world::plan(i, account_count, true))
        .collect();
    let (sid_tx, sid_rx) = tokio::sync::mpsc::unbounded_channel();
    let fleet = FleetWatch::start(client.clone(), sid_tx).await;
    if !only_scale {
        let by_name = (0..n)
            .map(|i| world::plan(i, account_count, true))
            .map(|p| (p.name.clone(), p))
            .collect();
        let (secret_times, _user) =
            user::start(client.clone(), bench.sim.clone(), Arc::new(by_name), sid_rx);
        onboard(&bench, &plan, &fleet, &mut report).await;
        let latencies = code_latencies(&bench.sim.senders().await, &secret_times.lock().unwrap());
        assert_eq!(
            latencies.len(),
            report.details.coded_senders,
            "every coded sender got its code in"
        );
        report.code_to_submit_ms_p50 = quantile(&latencies, 0.5);
        report.code_to_submit_ms_p99 = quantile(&latencies, 0.99);
        eprintln!(
            "bench: requests/sender to Ready {:?} (unbatched {:?}, floor {:?}); code to submit \
             p50 {:?} ms, p99 {:?} ms",
            report.twilio_requests_per_sender_to_ready,
            report.unbatched_twilio_requests_per_sender_to_ready,
            report.floor_requests_per_sender_to_ready,
            report.code_to_submit_ms_p50,
            report.code_to_submit_ms_p99
        );
        steady::measure(&bench, &plan, &steady_settings, &mut report).await;
    }
    let extra: Vec<Planned> = (n..scale)
        .map(|i| world::plan(i, account_count, false))
        .collect();
    let by_bench = measure_scale(&bench, &extra, unrelated, &fleet, &mut report).await;

    let final_stats = bench.sim.stats().await;
    report.throttled_requests = world::requests_with_status(&final_stats, 429);
    count_duplicates(&bench, &plan, &extra, &by_bench, &mut report).await;
    report.details.seconds_total = round2(began.elapsed().as_secs_f64());

    report
        .write(&bench.out)
        .expect("write target/bench/report.json");
    println!("{}", report.table());
    println!("written: {}", bench.out.join("report.json").display());
    let missed = report.targets_with(Outcome::Missed);
    let unmeasured = report.targets_with(Outcome::NotMeasured);
    drop(handle);
    if !missed.is_empty() {
        eprintln!("bench: targets missed: {}", missed.join(", "));
    }
    if !unmeasured.is_empty() {
        eprintln!(
            "bench: targets not measured, so not met: {}",
            unmeasured.join(", ")
        );
    }
    if !missed.is_empty() || !unmeasured.is_empty() {
        std::process::exit(1);
    }
}

fn sim_limit() -> Value {
    json!({"rate_limit_per_second": SIM_LIMIT_PER_SECOND})
}

/// Step 1: all of `plan` applied at once, run by two operators (batched refresh and not) until
/// every sender is Ready; their state locks are read then, and they are stopped.
async fn onboard(bench: &Bench, plan: &[Planned], fleet: &FleetWatch, report: &mut Report) {
    bench.sim.set_numbers(plan).await;
    let [batched, single] = bench.refresh_operators("onboarding", &[]).await;
    let n = plan.len();
    eprintln!(
        "bench: applying {n} senders over {} accounts",
        bench.accounts.len()
    );
    let applied = Instant::now();
    world::create_senders(&bench.client, &bench.accounts, plan).await;
    fleet.wait_ready(n, ONBOARDING_DEADLINE, "onboarding").await;
    let seconds_to_all_ready = round2(applied.elapsed().as_secs_f64());
    report.seconds_to_all_ready = Some(seconds_to_all_ready);
    eprintln!("bench: all {n} Ready in {seconds_to_all_ready:.1} s");
    report.state_lock.onboarding_batched = batched.state_lock().await;
    report.state_lock.onboarding_unbatched = single.state_lock().await;
    batched.stop().await;
    single.stop().await;

    let stats = bench.sim.stats().await;
    let hours = seconds_to_all_ready / 3600.0;
    report.alert_reads_per_account_per_hour_onboarding = Some(round2(
        world::alert_reads(&stats) as f64 / bench.accounts.len() as f64 / hours.max(1e-9),
    ));
    let per_sender = |batched: bool| {
        let requests = world::requests_of(&stats, &bench.account_sids(batched));
        requests as f64 / bench.senders_in(plan, batched).max(1) as f64
    };
    let coded = plan.iter().filter(|p| p.coded).count();
    report.details.coded_senders = coded;
    // One create, plus a code for half of them, plus one read per transition to see:
    // CREATING -> ONLINE, or CREATING -> PENDING_VERIFICATION and VERIFYING -> ONLINE.
    report.floor_requests_per_sender_to_ready = Some(round2(
        (2.0 * (n - coded) as f64 + 4.0 * coded as f64) / n as f64,
    ));
    let (requests, unbatched) = (round2(per_sender(true)), round2(per_sender(false)));
    report.twilio_requests_per_sender_to_ready = Some(requests);
    report.unbatched_twilio_requests_per_sender_to_ready = Some(unbatched);
    report.unbatched_to_batched_ratio_to_ready = Some(round2(unbatched / requests));
}

/// Step 3: `extra` senders registered at Twilio beforehand and applied with `unrelated`
/// Secrets; one operator with default flags started over all of them. Returns the create
/// attempts once the bench had registered `extra`, before the operator started.
async fn measure_scale(
    bench: &Bench,
    extra: &[Planned],
    unrelated: usize,
    fleet: &FleetWatch,
    report: &mut Report,
) -> Attempts {
    let total = fleet.ready() + extra.len();
    eprintln!("bench: preparing {total} senders and {unrelated} unrelated Secrets");
    bench.sim.set_faults(json!({})).await;
    bench.sim.set_numbers(extra).await;
    futures::stream::iter(extra)
        .for_each_concurrent(32, |p| {
            let account = &bench.accounts[p.account];
            async move { bench.sim.register(account, &world::typed_spec(p)).await }
        })
        .await;
    let by_bench = attempts::of(&bench.sim.stats().await);
    bench.sim.set_faults(sim_limit()).await;
    world::create_unrelated_secrets(&bench.client, &bench.accounts, unrelated).await;
    world::create_senders(&bench.client, &bench.accounts, extra).await;
    report.details.scale_senders = total;
    report.details.scale_unrelated_secrets = unrelated;

    eprintln!("bench: starting one operator over {total} senders");
    let wrapper: Vec<String> = std::env::var("BENCH_WRAP_SCALE")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let spawned = Instant::now();
    let mut operator = bench.operator_wrapped("scale", &[], &wrapper);
    // Polled beside the first status write: which of the two comes first is not fixed.
    let ready = tokio::spawn(operator::first_ready(
        operator.metrics.clone(),
        Duration::from_secs(300),
    ));
    let startup = loop {
        if let Some(at) = fleet.first_status_write_since(spawned) {
            break at - spawned;
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(300),
            "no status write within 300 s; see {}",
            operator.log.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    report.startup_seconds = round2(startup.as_secs_f64());
    report.details.scale_rss_mib_at_first_status_write = round2(operator.rss_mib().1);
    operator.wait_ready(Duration::from_secs(60)).await;
    let ready_at = ready
        .await
        .expect("the /readyz poll")
        .expect("/readyz answered 200 within 300 s");
    report.readyz_seconds = round2((ready_at - spawned).as_secs_f64());
    eprintln!(
        "bench: scale operator ready (/readyz) after {} s, first status write after {} s",
        report.readyz_seconds, report.startup_seconds
    );
    fleet.wait_ready(total, ONBOARDING_DEADLINE, "scale").await;
    report.details.scale_seconds_to_all_ready = round2(spawned.elapsed().as_secs_f64());
    let (peak, now) = operator.rss_mib();
    report.operator_rss_mib = round2(peak);
    report.details.scale_operator_rss_mib_at_end = round2(now);
    report.state_lock.scale = operator.state_lock().await;
    operator.stop().await;
    by_bench
}

/// `duplicate_senders`: numbers of `registered` (by the operators) with more than one create
/// attempt, and numbers of `adopted` with any attempt beyond the bench's own (`by_bench`).
async fn count_duplicates(
    bench: &Bench,
    registered: &[Planned],
    adopted: &[Planned],
    by_bench: &Attempts,
    report: &mut Report,
) {
    fn phones(plan: &[Planned]) -> Vec<&str> {
        plan.iter().map(|p| p.phone.as_str()).collect()
    }
    let (registered, adopted) = (phones(registered), phones(adopted));
    let at_end = attempts::of(&bench.sim.stats().await);
    let (duplicates, mut details) = attempts::tally(&at_end, &registered, &adopted, by_bench);
    let objects = registered.len() + adopted.len();
    details.extra_senders_or_accepted_creates =
        attempts::extra_senders_or_accepted_creates(&bench.sim.senders().await, objects);
    report.duplicate_senders = duplicates;
    report.details.create_attempts = details;
}

/// Milliseconds from each code Secret's creation to the simulator receiving the code.
fn code_latencies(senders: &[Value], written: &HashMap<String, u64>) -> Vec<f64> {
    let by_phone: HashMap<String, &Value> = senders
        .iter()
        .filter_map(|s| {
            Some((
                s["sender_id"]
                    .as_str()?
                    .trim_start_matches("whatsapp:")
                    .to_string(),
                s,
            ))
        })
        .collect();
    written
        .iter()
        .filter_map(|(name, at)| {
            let index: usize = name.trim_start_matches("s-").parse().ok()?;
            let phone = format!("+1500{index:07}");
            let received = by_phone.get(&phone)?["last_code_received_ms"].as_u64()?;
            Some(received.saturating_sub(*at) as f64)
        })
        .collect()
}
