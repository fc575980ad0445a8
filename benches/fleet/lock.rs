//! The controller's state lock as an operator's `/metrics` reports it: the figures that say
//! whether one lock for all state is enough (`src/controllers/whatsapp_sender/state/mod.rs`).

use serde::Serialize;

use crate::report::round2;

const ACQUISITIONS: &str = "senderops_state_lock_acquisitions_total";
const WAIT_SECONDS: &str = "senderops_state_lock_wait_seconds_total";
const HELD_SECONDS: &str = "senderops_state_lock_held_seconds_total";

/// One operator's state lock over `wall_seconds` of its life.
#[derive(Debug, Serialize)]
pub struct LockFigures {
    pub acquisitions: u64,
    pub wait_seconds: f64,
    pub held_seconds: f64,
    /// From the operator's start to the scrape.
    pub wall_seconds: f64,
    /// `held_seconds / wall_seconds`: the share of the time the lock was taken.
    pub busy_share: f64,
}

impl LockFigures {
    /// The figures in `metrics` (Prometheus text), or `None` from an operator that has no
    /// state lock counters (builds before the controller's one state index).
    pub fn from_metrics(metrics: &str, wall_seconds: f64) -> Option<Self> {
        let held_seconds = sample(metrics, HELD_SECONDS)?;
        Some(LockFigures {
            acquisitions: sample(metrics, ACQUISITIONS)? as u64,
            wait_seconds: round6(sample(metrics, WAIT_SECONDS)?),
            held_seconds: round6(held_seconds),
            wall_seconds: round2(wall_seconds),
            busy_share: round6(held_seconds / wall_seconds),
        })
    }
}

/// The value of the unlabelled series `name`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        (series == name).then(|| value.trim().parse().ok())?
    })
}

/// Lock times are microseconds each: six decimals keep them.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
