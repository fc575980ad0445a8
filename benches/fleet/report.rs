//! The benchmark's figures: `target/bench/report.json` and the table printed at the end.
//!
//! A figure a run did not measure (the onboarding and steady-state ones under
//! `BENCH_ONLY_SCALE=1`, the state lock on an operator without its counters) is `null` in the
//! JSON and "not measured" in the table, and a target on it is never counted as met.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::lock::LockFigures;

/// Every figure issue 8 asks for, plus what is needed to read them (window, flags, raw counts).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub senders: usize,
    pub accounts: usize,
    pub seconds_to_all_ready: Option<f64>,
    pub twilio_requests_per_sender_to_ready: Option<f64>,
    pub floor_requests_per_sender_to_ready: Option<f64>,
    /// At the default 5-minute resync (step 2 runs a shorter one and scales; see `details`).
    pub twilio_requests_per_hour_steady: Option<f64>,
    pub floor_requests_per_hour_steady: Option<f64>,
    pub unbatched_twilio_requests_per_sender_to_ready: Option<f64>,
    pub unbatched_twilio_requests_per_hour_steady: Option<f64>,
    pub unbatched_to_batched_ratio_to_ready: Option<f64>,
    pub unbatched_to_batched_ratio_steady: Option<f64>,
    pub code_to_submit_ms_p50: Option<f64>,
    pub code_to_submit_ms_p99: Option<f64>,
    pub operator_rss_mib: f64,
    /// Step 3: from starting the operator to its first status write (some sender's status
    /// patched by it). Not readiness: see `readyz_seconds`.
    pub startup_seconds: f64,
    /// Step 3: from starting the operator to the first 200 from its `/readyz` (its first list
    /// of WhatsAppSenders succeeded; the caches fill after).
    pub readyz_seconds: f64,
    /// Numbers with more create attempts than they may have: more than one for a number the
    /// operator registered, any by the operator for a number registered before it started.
    pub duplicate_senders: u64,
    pub throttled_requests: u64,
    /// Reads of Twilio's Error Log (`GET /v1/Alerts`) per account per hour while onboarding.
    pub alert_reads_per_account_per_hour_onboarding: Option<f64>,
    /// Reads of the Error Log during the steady-state window, every sender ONLINE: must be 0.
    pub alert_reads_steady: Option<f64>,
    pub state_lock: StateLocks,
    pub details: Details,
}

/// The controller's state lock in each operator the bench ran, read from its `/metrics` when
/// its step ended.
#[derive(Debug, Default, Serialize)]
pub struct StateLocks {
    pub scale: Option<LockFigures>,
    pub onboarding_batched: Option<LockFigures>,
    pub onboarding_unbatched: Option<LockFigures>,
}

/// How the figures were obtained.
#[derive(Debug, Default, Serialize)]
pub struct Details {
    /// Flags of every `senderops run` besides the Twilio URL and metrics address; steps 1 and 2
    /// add theirs (`--selector`, `--batched-refresh=false`, step 2's `--resync-interval`).
    pub operator_flags: Vec<String>,
    pub simulator_step_ms: u64,
    pub simulator_limit_per_second_per_account: u32,
    /// The client's `PageSize` for lists, which the steady floor counts pages of.
    pub list_page_size: usize,
    /// Accounts run by the operator with batched refresh (the default); the other half ran
    /// with `--batched-refresh=false`. Per-hour figures are scaled from each half to all senders.
    pub batched_accounts: usize,
    pub coded_senders: usize,
    pub steady: SteadyDetails,
    pub create_attempts: AttemptDetails,
    pub scale_senders: usize,
    pub scale_unrelated_secrets: usize,
    pub scale_seconds_to_all_ready: f64,
    pub scale_rss_mib_at_first_status_write: f64,
    pub scale_operator_rss_mib_at_end: f64,
    pub seconds_total: f64,
}

/// Step 2's method: the resync its operators ran with, the window, and the raw counts.
#[derive(Debug, Default, Serialize)]
pub struct SteadyDetails {
    /// One sentence for report.txt: what was measured and how it was scaled.
    pub method: String,
    /// Flags step 2's operators had on top of `operator_flags`.
    pub extra_operator_flags: Vec<String>,
    pub resync_seconds: f64,
    pub default_resync_seconds: f64,
    /// From the operators' start to the window's: start-up reads over, and the jitter's
    /// drift over the window's resyncs waited out.
    pub warmup_seconds: f64,
    pub window_seconds: f64,
    pub resyncs_in_window: f64,
    pub requests_batched: u64,
    pub requests_unbatched: u64,
    /// Per hour at `resync_seconds`, for all senders, before scaling to the default resync.
    pub measured_requests_per_hour_batched: f64,
    pub measured_requests_per_hour_unbatched: f64,
}

/// `/_sim/stats` `create_attempts`, split by who registered the number.
#[derive(Debug, Default, Serialize)]
pub struct AttemptDetails {
    /// Numbers the operators registered (steps 1 and 2), and their create attempts in all.
    pub registered_numbers: usize,
    pub registered_attempts: u64,
    /// Numbers the bench registered before step 3, and the operators' attempts on them.
    pub adopted_numbers: usize,
    pub adopted_attempts_by_operator: u64,
    /// The numbers `duplicate_senders` counts (the first few).
    pub numbers_with_extra_attempts: Vec<String>,
    /// The earlier check, kept for comparison: senders at Twilio beyond one per object, plus
    /// accepted creates beyond one per sender.
    pub extra_senders_or_accepted_creates: u64,
}

/// Whether a target was met, missed, or could not be judged because its figure is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Met,
    Missed,
    NotMeasured,
}

/// One target: the figure's name, the limit and whether it was met.
pub struct Target {
    pub figure: &'static str,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub outcome: Outcome,
}

impl Target {
    fn new(
        figure: &'static str,
        value: Option<f64>,
        limit: Option<f64>,
        ok: fn(f64, f64) -> bool,
    ) -> Self {
        let outcome = match (value, limit) {
            (Some(v), Some(l)) if ok(v, l) => Outcome::Met,
            (Some(_), Some(_)) => Outcome::Missed,
            _ => Outcome::NotMeasured,
        };
        Target {
            figure,
            value,
            limit,
            outcome,
        }
    }
}

impl Report {
    pub fn targets(&self) -> Vec<Target> {
        let at_most = |figure, value, limit| Target::new(figure, value, limit, |v, l| v <= l);
        let below = |figure, value, limit| Target::new(figure, value, limit, |v, l| v < l);
        let times = |factor: f64, floor: Option<f64>| floor.map(|f| factor * f);
        vec![
            below(
                "code_to_submit_ms_p50",
                self.code_to_submit_ms_p50,
                Some(500.0),
            ),
            below("operator_rss_mib", Some(self.operator_rss_mib), Some(64.0)),
            at_most(
                "twilio_requests_per_sender_to_ready",
                self.twilio_requests_per_sender_to_ready,
                times(1.5, self.floor_requests_per_sender_to_ready),
            ),
            at_most(
                "twilio_requests_per_hour_steady",
                self.twilio_requests_per_hour_steady,
                times(2.0, self.floor_requests_per_hour_steady),
            ),
            below(
                "seconds_to_all_ready",
                self.seconds_to_all_ready,
                Some(120.0),
            ),
            at_most(
                "duplicate_senders",
                Some(self.duplicate_senders as f64),
                Some(0.0),
            ),
            at_most(
                "throttled_requests",
                Some(self.throttled_requests as f64),
                Some(0.0),
            ),
            at_most("alert_reads_steady", self.alert_reads_steady, Some(0.0)),
        ]
    }

    /// The targets with `outcome`, by figure name.
    pub fn targets_with(&self, outcome: Outcome) -> Vec<&'static str> {
        self.targets()
            .into_iter()
            .filter(|t| t.outcome == outcome)
            .map(|t| t.figure)
            .collect()
    }

    pub fn table(&self) -> String {
        let json = serde_json::to_value(self).expect("the report serializes");
        let mut rows = Vec::new();
        for (key, value) in json.as_object().expect("an object") {
            if key != "details" {
                flatten(key, value, &mut rows);
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{:<48} {:>14}", "figure", "value");
        for (key, value) in rows {
            let _ = writeln!(out, "{key:<48} {value:>14}");
        }
        let _ = writeln!(
            out,
            "\n{:<48} {:>14} {:>12}  met",
            "target", "value", "limit"
        );
        for t in self.targets() {
            let number = |x: Option<f64>| x.map_or(NOT_MEASURED.to_string(), |x| format!("{x:.2}"));
            let met = match t.outcome {
                Outcome::Met => "yes",
                Outcome::Missed => "NO",
                Outcome::NotMeasured => "not measured",
            };
            let _ = writeln!(
                out,
                "{:<48} {:>14} {:>12}  {met}",
                t.figure,
                number(t.value),
                number(t.limit)
            );
        }
        if !self.details.steady.method.is_empty() {
            let _ = writeln!(out, "\nsteady state: {}", self.details.steady.method);
        }
        out
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).expect("the report serializes");
        std::fs::write(dir.join("report.json"), json + "\n")?;
        std::fs::write(dir.join("report.txt"), self.table())
    }
}

const NOT_MEASURED: &str = "not measured";

/// Table rows for `value`: one per number, nested objects as `outer.inner`.
fn flatten(key: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (inner, v) in fields {
                flatten(&format!("{key}.{inner}"), v, rows);
            }
        }
        Value::Null => rows.push((key.to_string(), NOT_MEASURED.to_string())),
        Value::Number(n) if n.is_f64() => {
            rows.push((key.to_string(), decimals(n.as_f64().unwrap_or(f64::NAN))));
        }
        other => rows.push((key.to_string(), other.to_string())),
    }
}

/// Two decimals, or three significant digits for small fractions (a lock busy 0.2 % of the
/// time is 0.00200, not 0.00).
fn decimals(n: f64) -> String {
    if n == 0.0 || n.fract() == 0.0 {
        return format!("{n}");
    }
    let places = (2 - n.abs().log10().floor() as i32).max(2) as usize;
    format!("{n:.places$}")
}

/// The `q`-quantile (0..=1) by nearest rank; `None` for no samples.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
