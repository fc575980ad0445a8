//! Step 2, steady state: every sender ONLINE, Twilio requests counted over whole resyncs.
//!
//! At the default 5-minute resync a window of a few minutes holds about one list per account,
//! which is sampling noise. So step 2 runs its own two operators with a short resync
//! (`BENCH_STEADY_RESYNC_SECONDS`, 60) and counts over `BENCH_STEADY_RESYNCS` (4) of them; the
//! figures are then stated at the default resync, since either refresh mode reads once per
//! account (batched) or per sender (unbatched) each resync, whatever its length.
//!
//! The fresh operators read every sender at start-up, so afterwards their reads are in step:
//! each account lists once per resync (the first sender back finds the list older than half a
//! resync), and each sender of the unbatched operator is read once per its resync plus its
//! 0–10 % jitter. A window of k resyncs plus jitter would hold k lists in 1.1 k resyncs and show
//! 91 % of the floor; where a window falls decides how many jittered reads it catches. So the
//! window is k whole resyncs, opened once the start-up reads are over and the jitter has had k
//! resyncs' worth of drift: then it holds exactly the k-th reads after start-up and none of
//! the (k+1)-th, k per account and k per unbatched sender. The figures are requests per resync,
//! a resync counted at its nominal length; the jitter makes the wall-clock rate up to 10 % lower.

use std::time::Duration;

use tokio::time::Instant;

use crate::report::{Report, round2};
use crate::world::{self, Planned};
use crate::{Bench, setting};

pub const DEFAULT_RESYNC: Duration = Duration::from_secs(300);
/// Fewer resyncs than this per account is the sampling noise this step exists to avoid.
const MIN_RESYNCS: usize = 3;
/// No Twilio request for this long: the operators' start-up reads are over.
const QUIET: Duration = Duration::from_secs(3);
/// A requeue's jitter: up to this share of the resync (`controller::pacing::jittered`).
const JITTER_SHARE: f64 = 0.1;
const QUIET_POLL: Duration = Duration::from_millis(250);

/// Step 2's resync and window length.
pub struct SteadySettings {
    resync: Duration,
    resyncs: usize,
}

impl SteadySettings {
    pub fn from_env() -> Self {
        assert!(
            std::env::var_os("BENCH_STEADY_SECONDS").is_none(),
            "BENCH_STEADY_SECONDS is gone: the window is BENCH_STEADY_RESYNCS whole resyncs of \
             BENCH_STEADY_RESYNC_SECONDS"
        );
        let settings = SteadySettings {
            resync: Duration::from_secs(setting("BENCH_STEADY_RESYNC_SECONDS", 60) as u64),
            resyncs: setting("BENCH_STEADY_RESYNCS", 4),
        };
        assert!(
            settings.resyncs >= MIN_RESYNCS,
            "BENCH_STEADY_RESYNCS={} is under {MIN_RESYNCS}",
            settings.resyncs
        );
        settings
    }

    fn window(&self) -> Duration {
        self.resync * self.resyncs as u32
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--resync-interval".to_string(),
            format!("{}s", self.resync.as_secs()),
        ]
    }
}

/// Runs step 2 over `plan` (all ONLINE) with fresh operators, stopped again at the end.
pub async fn measure(
    bench: &Bench,
    plan: &[Planned],
    settings: &SteadySettings,
    report: &mut Report,
) {
    let flags = settings.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let started = Instant::now();
    let operators = bench.refresh_operators("steady", &flags).await;
    wait_out_startup(bench, plan, settings.resync).await;
    tokio::time::sleep(settings.window().mul_f64(JITTER_SHARE)).await;
    let warmup = started.elapsed();
    // Later, and the window would miss the first reads after start-up.
    assert!(
        warmup < settings.resync,
        "the steady-state warm-up ({warmup:?}) took longer than a resync ({:?})",
        settings.resync
    );

    let window = settings.window();
    eprintln!(
        "bench: counting steady-state requests for {window:?} ({} resyncs of {:?})",
        settings.resyncs, settings.resync
    );
    let before = bench.sim.stats().await;
    let window_start = Instant::now();
    tokio::time::sleep(window).await;
    let after = bench.sim.stats().await;
    let seconds = window_start.elapsed().as_secs_f64();
    for operator in operators {
        operator.stop().await;
    }

    let n = plan.len() as f64;
    // Requests in the window, and per hour at the bench's resync for all `plan`.
    let rate = |batched: bool| {
        let sids = bench.account_sids(batched);
        let count = world::requests_of(&after, &sids) - world::requests_of(&before, &sids);
        let share = bench.senders_in(plan, batched).max(1) as f64 / n;
        (count, count as f64 * 3600.0 / seconds / share)
    };
    report.alert_reads_steady =
        Some((world::alert_reads(&after) - world::alert_reads(&before)) as f64);
    let (batched_count, batched_rate) = rate(true);
    let (single_count, single_rate) = rate(false);
    let to_default = settings.resync.as_secs_f64() / DEFAULT_RESYNC.as_secs_f64();

    report.twilio_requests_per_hour_steady = Some(round2(batched_rate * to_default));
    report.unbatched_twilio_requests_per_hour_steady = Some(round2(single_rate * to_default));
    report.unbatched_to_batched_ratio_steady = Some(round2(single_rate / batched_rate.max(1e-9)));
    let accounts = bench.accounts.len();
    let pages_per_list = plan
        .len()
        .div_ceil(accounts)
        .div_ceil(bench.list_page_size)
        .max(1);
    report.floor_requests_per_hour_steady = Some(round2(
        (accounts * pages_per_list) as f64 * 3600.0 / DEFAULT_RESYNC.as_secs_f64(),
    ));

    let steady = &mut report.details.steady;
    steady.extra_operator_flags = settings.flags();
    steady.resync_seconds = settings.resync.as_secs_f64();
    steady.default_resync_seconds = DEFAULT_RESYNC.as_secs_f64();
    steady.warmup_seconds = round2(warmup.as_secs_f64());
    steady.window_seconds = round2(seconds);
    steady.resyncs_in_window = round2(seconds / settings.resync.as_secs_f64());
    steady.requests_batched = batched_count;
    steady.requests_unbatched = single_count;
    steady.measured_requests_per_hour_batched = round2(batched_rate);
    steady.measured_requests_per_hour_unbatched = round2(single_rate);
    steady.method = format!(
        "operators restarted with --resync-interval {resync}s; requests counted over {seconds:.0} \
         s ({resyncs} whole resyncs) from {warmup:.0} s after their start (start-up reads and \
         jitter drift over); per-hour figures are the measured ones x {resync}/{default}, i.e. \
         at the default {default} s resync counted at its nominal length (the 0-10 % jitter \
         makes the wall-clock rate up to 10 % lower); floor: one list page per account per \
         resync",
        resync = settings.resync.as_secs(),
        resyncs = settings.resyncs,
        warmup = warmup.as_secs_f64(),
        default = DEFAULT_RESYNC.as_secs(),
    );
}

/// Waits until both operators have made their start-up reads and then no request for
/// [`QUIET`], so that the window holds resyncs only. A start-up that takes a whole resync
/// leaves no clean window: that fails the run.
async fn wait_out_startup(bench: &Bench, plan: &[Planned], resync: Duration) {
    let halves: Vec<(Vec<&str>, bool)> = [true, false]
        .into_iter()
        .map(|batched| {
            let busy = bench.senders_in(plan, batched) > 0;
            (bench.account_sids(batched), busy)
        })
        .collect();
    let counts = |stats: &serde_json::Value| -> Vec<u64> {
        halves
            .iter()
            .map(|(sids, _)| world::requests_of(stats, sids))
            .collect()
    };
    let began = Instant::now();
    let initial = counts(&bench.sim.stats().await);
    let mut last = initial.clone();
    let mut last_change = Instant::now();
    loop {
        tokio::time::sleep(QUIET_POLL).await;
        let now = counts(&bench.sim.stats().await);
        let all_started = halves
            .iter()
            .zip(now.iter().zip(&initial))
            .all(|((_, busy), (now, initial))| !busy || now > initial);
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if all_started && last_change.elapsed() >= QUIET {
            return;
        }
        assert!(
            began.elapsed() < resync,
            "the steady-state operators' start-up reads took over a resync ({resync:?})"
        );
    }
}
