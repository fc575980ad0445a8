//! The benchmark's figures: `target/bench/report.json` and the table printed at the end.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// Every figure issue 8 asks for, plus what is needed to read them (window, flags, raw counts).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub senders: usize,
    pub accounts: usize,
    pub seconds_to_all_ready: f64,
    pub twilio_requests_per_sender_to_ready: f64,
    pub floor_requests_per_sender_to_ready: f64,
    pub twilio_requests_per_hour_steady: f64,
    pub floor_requests_per_hour_steady: f64,
    pub unbatched_twilio_requests_per_sender_to_ready: f64,
    pub unbatched_twilio_requests_per_hour_steady: f64,
    pub unbatched_to_batched_ratio_to_ready: f64,
    pub unbatched_to_batched_ratio_steady: f64,
    pub code_to_submit_ms_p50: f64,
    pub code_to_submit_ms_p99: f64,
    pub operator_rss_mib: f64,
    pub startup_seconds: f64,
    pub duplicate_senders: u64,
    pub throttled_requests: u64,
    pub details: Details,
}

/// How the figures were obtained.
#[derive(Debug, Default, Serialize)]
pub struct Details {
    /// Flags of every `senderops run` besides the Twilio URL, selector and metrics address.
    pub operator_flags: Vec<String>,
    pub simulator_step_ms: u64,
    pub simulator_limit_per_second_per_account: u32,
    /// The client's `PageSize` for lists, which the steady floor counts pages of.
    pub list_page_size: usize,
    /// Accounts run by the operator with batched refresh (the default); the other half ran
    /// with `--batched-refresh=false`. Per-hour figures are scaled from each half to all senders.
    pub batched_accounts: usize,
    pub steady_window_seconds: f64,
    pub steady_requests_batched: u64,
    pub steady_requests_unbatched: u64,
    pub coded_senders: usize,
    pub scale_senders: usize,
    pub scale_unrelated_secrets: usize,
    pub scale_seconds_to_all_ready: f64,
    pub scale_rss_mib_at_first_status_write: f64,
    pub scale_operator_rss_mib_at_end: f64,
    pub seconds_total: f64,
}

/// One target: the figure's name, the limit and whether it was met.
pub struct Target {
    pub figure: &'static str,
    pub value: f64,
    pub limit: f64,
    pub met: bool,
}

impl Report {
    pub fn targets(&self) -> Vec<Target> {
        let at_most = |figure, value: f64, limit: f64| Target {
            figure,
            value,
            limit,
            met: value <= limit,
        };
        let below = |figure, value: f64, limit: f64| Target {
            figure,
            value,
            limit,
            met: value < limit,
        };
        vec![
            below("code_to_submit_ms_p50", self.code_to_submit_ms_p50, 500.0),
            below("operator_rss_mib", self.operator_rss_mib, 64.0),
            at_most(
                "twilio_requests_per_sender_to_ready",
                self.twilio_requests_per_sender_to_ready,
                1.5 * self.floor_requests_per_sender_to_ready,
            ),
            at_most(
                "twilio_requests_per_hour_steady",
                self.twilio_requests_per_hour_steady,
                2.0 * self.floor_requests_per_hour_steady,
            ),
            below("seconds_to_all_ready", self.seconds_to_all_ready, 120.0),
            at_most("duplicate_senders", self.duplicate_senders as f64, 0.0),
            at_most("throttled_requests", self.throttled_requests as f64, 0.0),
        ]
    }

    pub fn table(&self) -> String {
        let json = serde_json::to_value(self).expect("the report serializes");
        let mut out = String::new();
        let _ = writeln!(out, "{:<48} {:>14}", "figure", "value");
        for (key, value) in json.as_object().expect("an object") {
            if key != "details" {
                let _ = writeln!(out, "{key:<48} {:>14}", show(value));
            }
        }
        let _ = writeln!(
            out,
            "\n{:<48} {:>14} {:>10}  met",
            "target", "value", "limit"
        );
        for t in self.targets() {
            let _ = writeln!(
                out,
                "{:<48} {:>14.2} {:>10.2}  {}",
                t.figure,
                t.value,
                t.limit,
                if t.met { "yes" } else { "NO" }
            );
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

fn show(value: &serde_json::Value) -> String {
    match value.as_f64() {
        Some(n) if n.fract() != 0.0 => format!("{n:.2}"),
        _ => value.to_string(),
    }
}

/// The `q`-quantile (0..=1) by nearest rank; 0 for no samples.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
