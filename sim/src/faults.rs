//! Injected faults for /v2 routes: added latency, random 500/503, and a per-account rate limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;

/// What `PUT /_sim/faults` sets; a missing field turns that fault off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    /// Probability (0..=1) that a request fails with 500 or 503.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Added to every request before it is handled.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Requests per account per (fixed, one-second) window before 429s.
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
}

impl FaultSettings {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(rate) = self.error_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!("error_rate must be between 0 and 1, got {rate}"));
        }
        if self.rate_limit_per_second == Some(0) {
            return Err("rate_limit_per_second must be at least 1 (omit it to turn it off)".into());
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    settings: FaultSettings,
    windows: HashMap<String, (Instant, u32)>,
}

impl Faults {
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    pub fn set(&mut self, settings: FaultSettings) {
        self.settings = settings;
        self.windows.clear();
    }

    pub fn reset(&mut self) {
        self.set(FaultSettings::default());
    }

    pub fn latency(&self) -> Option<Duration> {
        self.settings
            .latency_ms
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }

    /// Counts the request against `account`'s window, then decides whether it fails.
    pub fn check(&mut self, account: &str, now: Instant) -> Result<(), ApiError> {
        if let Some(limit) = self.settings.rate_limit_per_second {
            let window = self.windows.entry(account.to_string()).or_insert((now, 0));
            if now.duration_since(window.0) >= Duration::from_secs(1) {
                *window = (now, 0);
            }
            window.1 += 1;
            if window.1 > limit {
                return Err(ApiError::too_many_requests());
            }
        }
        if let Some(rate) = self.settings.error_rate {
            let mut rng = rand::rng();
            if rng.random_bool(rate) {
                return Err(if rng.random_bool(0.5) {
                    ApiError::internal()
                } else {
                    ApiError::unavailable()
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_is_per_account_and_per_window() {
        let mut faults = Faults::default();
        faults.set(FaultSettings {
            rate_limit_per_second: Some(2),
            ..FaultSettings::default()
        });
        let t0 = Instant::now();
        assert!(faults.check("AC1", t0).is_ok());
        assert!(faults.check("AC1", t0).is_ok());
        let err = faults.check("AC1", t0).unwrap_err();
        assert_eq!((err.code, err.retry_after), (20429, Some(1)));
        assert!(faults.check("AC2", t0).is_ok());
        assert!(faults.check("AC1", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn error_rate_bounds() {
        assert!(
            FaultSettings {
                error_rate: Some(1.5),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        let mut faults = Faults::default();
        faults.set(FaultSettings {
            error_rate: Some(1.0),
            ..Default::default()
        });
        let codes: Vec<u32> = (0..50)
            .map(|_| faults.check("AC1", Instant::now()).unwrap_err().code)
            .collect();
        assert!(codes.iter().all(|c| [20500, 20503].contains(c)));
        faults.set(FaultSettings {
            error_rate: Some(0.0),
            ..Default::default()
        });
        assert!(faults.check("AC1", Instant::now()).is_ok());
    }
}
