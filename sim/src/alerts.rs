//! The Error Log: every account's alerts as the Monitor API lists them (`/v1/Alerts`), newest
//! first, filtered by log level and an inclusive GMT date range, kept for 30 days.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::errors::{ApiError, more_info};
use crate::gmt::{self, format_iso, unix_seconds};
use crate::monitor_model::{AlertInstance, AlertResource};
use crate::twilio_api::LIST_ROUTE;
use crate::wire_enum::{WireEnum, unknown_word};

/// How long Twilio keeps alerts: "queries for alerts older than 30 days are not supported".
pub const RETENTION: Duration = gmt::days(30);
/// `api_version` of every alert here: they all come from the Messaging v2 API.
const API_VERSION: &str = "v2";
/// Every alert here is about a registration, which a create started.
const REQUEST_METHOD: &str = "POST";

/// `log_level`, and the `LogLevel` filter.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(into = "&'static str")]
#[strum(parse_err_ty = String, parse_err_fn = unknown_word::<Self>)]
pub enum LogLevel {
    #[default]
    #[strum(serialize = "error")]
    Error,
    #[strum(serialize = "warning")]
    Warning,
    #[strum(serialize = "notice")]
    Notice,
    #[strum(serialize = "debug")]
    Debug,
}

impl WireEnum for LogLevel {
    const WHAT: &'static str = "log level";
}

/// One entry of the Error Log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub sid: String,
    pub account_sid: String,
    pub resource_sid: String,
    pub error_code: String,
    pub alert_text: String,
    pub log_level: LogLevel,
    /// When it happened; shown to the second.
    pub at: SystemTime,
}

/// What [`AlertLog::log`] is given; it adds the SID.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub account_sid: String,
    pub resource_sid: String,
    pub error_code: String,
    pub alert_text: String,
    pub log_level: LogLevel,
    pub at: SystemTime,
}

/// `alert_text` as Twilio writes it: URL-encoded `key=value` pairs.
pub fn text(message: &str, sender_id: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("Msg", message)
        .append_pair("sender_id", sender_id)
        .finish()
}

impl Alert {
    /// `monitor.v1.alert`, as a list shows it; URLs start with `base`.
    pub fn resource(&self, base: &str) -> AlertResource {
        let at = format_iso(unix_seconds(self.at));
        AlertResource {
            account_sid: self.account_sid.clone(),
            alert_text: self.alert_text.clone(),
            api_version: API_VERSION,
            date_created: at.clone(),
            date_generated: at.clone(),
            date_updated: at,
            error_code: self.error_code.clone(),
            log_level: self.log_level,
            more_info: match self.error_code.parse() {
                Ok(code) => more_info(code),
                Err(_) => "https://www.twilio.com/docs/api/errors".into(),
            },
            request_method: REQUEST_METHOD,
            request_url: format!("{base}{LIST_ROUTE}"),
            resource_sid: self.resource_sid.clone(),
            service_sid: None,
            sid: self.sid.clone(),
            url: format!("{base}/v1/Alerts/{}", self.sid),
        }
    }

    /// `monitor.v1.alert-instance`, as a fetch shows it: the same, plus the request and
    /// response details, which no alert here has (they come from no HTTP exchange of their own).
    pub fn instance(&self, base: &str) -> AlertInstance {
        AlertInstance {
            alert: self.resource(base),
            request_variables: None,
            request_headers: None,
            response_body: None,
            response_headers: None,
        }
    }
}

/// What a list asks for. Dates are seconds since the epoch, both bounds inclusive, compared
/// with alert times cut to the second (the precision `date_created` shows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub log_level: Option<LogLevel>,
    pub start: Option<u64>,
    pub end: Option<u64>,
}

/// Orders the log by time, then by order of logging: a failure found late (lifecycle steps are
/// applied when a sender is next read) still sorts at the time it happened.
type Key = (SystemTime, u64);

/// Where a page starts: its newest alert. Opaque to clients, as a page token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Key);

impl Cursor {
    pub fn token(self) -> String {
        let since = self
            .0
            .0
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        format!(
            "PA{:016x}{:08x}{:016x}",
            since.as_secs(),
            since.subsec_nanos(),
            self.0.1
        )
    }

    pub fn from_token(token: &str) -> Option<Cursor> {
        let hex = token.strip_prefix("PA").filter(|h| h.len() == 40)?;
        let secs = u64::from_str_radix(hex.get(..16)?, 16).ok()?;
        let nanos = u32::from_str_radix(hex.get(16..24)?, 16).ok()?;
        let seq = u64::from_str_radix(hex.get(24..)?, 16).ok()?;
        if nanos >= 1_000_000_000 {
            return None;
        }
        let at = SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))?;
        Some(Cursor((at, seq)))
    }
}

/// One page of an account's alerts, newest first.
#[derive(Debug)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    pub next: Option<Cursor>,
    /// `None`: no previous page; `Some(None)`: it is the first page; `Some(Some(c))`: starts at `c`.
    pub previous: Option<Option<Cursor>>,
}

#[derive(Debug, Default)]
pub struct AlertLog {
    alerts: BTreeMap<Key, Alert>,
    by_sid: HashMap<String, Key>,
    next_seq: u64,
}

impl AlertLog {
    pub fn log(&mut self, new: NewAlert) -> Alert {
        let sid = loop {
            let sid = format!("NO{:032x}", rand::random::<u128>());
            if !self.by_sid.contains_key(&sid) {
                break sid;
            }
        };
        let key = (new.at, self.next_seq);
        self.next_seq += 1;
        let alert = Alert {
            sid: sid.clone(),
            account_sid: new.account_sid,
            resource_sid: new.resource_sid,
            error_code: new.error_code,
            alert_text: new.alert_text,
            log_level: new.log_level,
            at: new.at,
        };
        self.by_sid.insert(sid, key);
        self.alerts.insert(key, alert.clone());
        alert
    }

    /// The account's alert with this SID, unless it is past retention.
    pub fn get(&self, account: &str, sid: &str, now: SystemTime) -> Option<&Alert> {
        self.by_sid
            .get(sid)
            .and_then(|key| self.alerts.get(key))
            .filter(|a| a.account_sid == account && retained(a, now))
    }

    /// Up to `size` of the account's alerts that pass `filter`, newest first, from `start` on.
    /// A bound older than [`RETENTION`] is a 20001, as Twilio does not support such queries.
    pub fn page(
        &self,
        account: &str,
        filter: &AlertFilter,
        start: Option<Cursor>,
        size: usize,
        now: SystemTime,
    ) -> Result<AlertPage, ApiError> {
        let oldest = unix_seconds(now).saturating_sub(RETENTION.as_secs());
        for (name, bound) in [("StartDate", filter.start), ("EndDate", filter.end)] {
            if let Some(bound) = bound
                && bound < oldest
            {
                return Err(ApiError::invalid_parameter(format!(
                    "{name} {} is older than 30 days: queries for alerts older than 30 days are \
                     not supported (the oldest {name} now is {})",
                    format_iso(bound),
                    format_iso(oldest)
                )));
            }
        }
        let matches = |(_, alert): &(&Key, &Alert)| {
            alert.account_sid == account && retained(alert, now) && filter.matches(alert)
        };
        let upper = start.map_or(Bound::Unbounded, |c| Bound::Included(c.0));
        let mut older = self
            .alerts
            .range((Bound::Unbounded, upper))
            .rev()
            .filter(matches);
        let alerts: Vec<Alert> = older.by_ref().take(size).map(|(_, a)| a.clone()).collect();
        let next = older.next().map(|(key, _)| Cursor(*key));

        let previous = start.and_then(|start| {
            let newer: Vec<Key> = self
                .alerts
                .range((Bound::Excluded(start.0), Bound::Unbounded))
                .filter(matches)
                .take(size + 1)
                .map(|(key, _)| *key)
                .collect();
            match newer.len() {
                0 => None,
                n if n <= size => Some(None),
                _ => Some(Some(Cursor(newer[size - 1]))),
            }
        });
        Ok(AlertPage {
            alerts,
            next,
            previous,
        })
    }
}

fn retained(alert: &Alert, now: SystemTime) -> bool {
    now.duration_since(alert.at)
        .map_or(true, |age| age <= RETENTION)
}

impl AlertFilter {
    fn matches(&self, alert: &Alert) -> bool {
        let second = unix_seconds(alert.at);
        self.log_level.is_none_or(|level| level == alert.log_level)
            && self.start.is_none_or(|start| second >= start)
            && self.end.is_none_or(|end| second <= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "AC00000000000000000000000000000001";

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn new(account: &str, code: &str, when: SystemTime, level: LogLevel) -> NewAlert {
        NewAlert {
            account_sid: account.into(),
            resource_sid: "XE00000000000000000000000000000001".into(),
            error_code: code.into(),
            alert_text: text("Failed", "whatsapp:+15005550006"),
            log_level: level,
            at: when,
        }
    }

    /// A log with alerts at 1000, 1001, …, coded by their index.
    fn log_of(count: u64) -> AlertLog {
        let mut log = AlertLog::default();
        for i in 0..count {
            log.log(new(ACCOUNT, &i.to_string(), at(1000 + i), LogLevel::Error));
        }
        log
    }

    fn codes(page: &AlertPage) -> Vec<&str> {
        page.alerts.iter().map(|a| a.error_code.as_str()).collect()
    }

    const NOW: u64 = 2000;

    #[test]
    fn pages_run_newest_first_and_back() {
        let log = log_of(5);
        let filter = AlertFilter::default();
        let first = log.page(ACCOUNT, &filter, None, 2, at(NOW)).unwrap();
        assert_eq!(codes(&first), ["4", "3"]);
        assert_eq!(first.previous, None);
        let second = log.page(ACCOUNT, &filter, first.next, 2, at(NOW)).unwrap();
        assert_eq!(codes(&second), ["2", "1"]);
        assert_eq!(second.previous, Some(None), "back to the first page");
        let third = log.page(ACCOUNT, &filter, second.next, 2, at(NOW)).unwrap();
        assert_eq!(codes(&third), ["0"]);
        assert_eq!(third.next, None);
        assert_eq!(third.previous, Some(first.next), "back to the second page");
    }

    #[test]
    fn a_failure_logged_late_sorts_at_the_time_it_happened() {
        let mut log = log_of(3);
        log.log(new(ACCOUNT, "late", at(1000), LogLevel::Error));
        let page = log
            .page(ACCOUNT, &AlertFilter::default(), None, 10, at(NOW))
            .unwrap();
        assert_eq!(codes(&page), ["2", "1", "late", "0"]);
    }

    #[test]
    fn dates_are_inclusive_to_the_second() {
        let mut log = AlertLog::default();
        let in_second = at(1500) + Duration::from_millis(999);
        log.log(new(ACCOUNT, "a", in_second, LogLevel::Error));
        for (start, end, found) in [
            (Some(1500), None, true),
            (None, Some(1500), true),
            (Some(1500), Some(1500), true),
            (Some(1501), None, false),
            (None, Some(1499), false),
        ] {
            let filter = AlertFilter {
                start,
                end,
                ..AlertFilter::default()
            };
            let page = log.page(ACCOUNT, &filter, None, 50, at(NOW)).unwrap();
            assert_eq!(!page.alerts.is_empty(), found, "{filter:?}");
        }
    }

    #[test]
    fn filters_by_level_and_account() {
        let mut log = AlertLog::default();
        log.log(new(ACCOUNT, "e", at(1000), LogLevel::Error));
        log.log(new(ACCOUNT, "w", at(1001), LogLevel::Warning));
        log.log(new("AC2", "other", at(1002), LogLevel::Error));
        let warnings = AlertFilter {
            log_level: Some(LogLevel::Warning),
            ..AlertFilter::default()
        };
        let page = log.page(ACCOUNT, &warnings, None, 50, at(NOW)).unwrap();
        assert_eq!(codes(&page), ["w"]);
        let all = log
            .page(ACCOUNT, &AlertFilter::default(), None, 50, at(NOW))
            .unwrap();
        assert_eq!(codes(&all), ["w", "e"]);
    }

    #[test]
    fn nothing_older_than_thirty_days_is_kept_or_asked_for() {
        let now = at(RETENTION.as_secs() + 10_000);
        let mut log = AlertLog::default();
        let old = log.log(new(ACCOUNT, "old", at(9_999), LogLevel::Error));
        let kept = log.log(new(ACCOUNT, "kept", at(10_000), LogLevel::Error));
        let page = log
            .page(ACCOUNT, &AlertFilter::default(), None, 50, now)
            .unwrap();
        assert_eq!(codes(&page), ["kept"]);
        assert!(log.get(ACCOUNT, &old.sid, now).is_none());
        assert!(log.get(ACCOUNT, &kept.sid, now).is_some());
        for filter in [
            AlertFilter {
                start: Some(9_999),
                ..AlertFilter::default()
            },
            AlertFilter {
                end: Some(9_999),
                ..AlertFilter::default()
            },
        ] {
            let err = log.page(ACCOUNT, &filter, None, 50, now).unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (400, 20001), "{filter:?}");
        }
        let oldest = AlertFilter {
            start: Some(10_000),
            ..AlertFilter::default()
        };
        assert!(log.page(ACCOUNT, &oldest, None, 50, now).is_ok());
    }

    #[test]
    fn tokens_round_trip_and_reject_junk() {
        let cursor = Cursor((at(1_438_286_400) + Duration::from_nanos(123), 42));
        assert_eq!(Cursor::from_token(&cursor.token()), Some(cursor));
        for junk in [
            "",
            "PA",
            "PT0000000000000000",
            &"f".repeat(42),
            &format!("PA{}", "z".repeat(40)),
        ] {
            assert_eq!(Cursor::from_token(junk), None, "{junk}");
        }
        let too_many_nanos = format!("PA{:016x}{:08x}{:016x}", 1, 1_000_000_000u32, 1);
        assert_eq!(Cursor::from_token(&too_many_nanos), None);
    }

    #[test]
    fn alert_text_is_url_encoded_pairs() {
        assert_eq!(
            text(
                "Sender cannot be verified: no code",
                "whatsapp:+15005550006"
            ),
            "Msg=Sender+cannot+be+verified%3A+no+code&sender_id=whatsapp%3A%2B15005550006"
        );
    }
}
