//! One account's Error Log (the Monitor API's alerts) as the operator has read it: what
//! Twilio records only there (a registration that failed after its create was accepted), kept
//! by the SID of the resource it is about. One pass runs per account at a time, shared by every
//! controller's objects of that account ([`super::accounts::AccountRegistry::alert_log`]); each
//! pass reads from where the last one began (less a margin: Twilio buffers entries, so one can
//! appear a little after its `date_created`), and a pass younger than the caller's `fresh` is
//! reused.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

use crate::twilio::{Alert, TwilioClient, TwilioError};

/// How far each pass reaches back before the start of the last one.
const OVERLAP: SignedDuration = SignedDuration::from_mins(5);

/// Twilio does not answer for entries older than 30 days; an hour less leaves room for clocks.
const OLDEST: SignedDuration = SignedDuration::from_hours(30 * 24 - 1);

/// Entries kept per resource, newest first.
const KEPT_PER_RESOURCE: usize = 10;

/// The resources whose entries are kept, by SID prefix: senders (`XE`). A kind whose objects'
/// failures Twilio records only in the Error Log adds its prefix; entries about anything else
/// (messages, calls) are not kept.
const KEPT_RESOURCES: [&str; 1] = ["XE"];

/// One Error Log entry about a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The entry's SID (`NO…`).
    pub sid: String,
    pub code: Option<String>,
    pub at: Option<Timestamp>,
    pub text: Option<String>,
    pub more_info: Option<String>,
}

impl Logged {
    fn of(alert: Alert) -> Self {
        let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Self {
            at: alert
                .date_created
                .as_deref()
                .and_then(|d| d.trim().parse::<Timestamp>().ok()),
            sid: alert.sid,
            code: non_empty(alert.error_code),
            text: non_empty(alert.alert_text),
            more_info: non_empty(alert.more_info),
        }
    }
}

#[derive(Debug, Default)]
struct Read {
    /// The log has been read without a gap from here...
    from: Option<Timestamp>,
    /// ...up to when the last pass began.
    until: Option<Timestamp>,
    /// When the last pass ran.
    at: Option<Instant>,
    by_resource: HashMap<String, Vec<Logged>>,
}

impl Read {
    fn insert(&mut self, alert: Alert) {
        let Some(resource) = alert
            .resource_sid
            .as_deref()
            .map(str::trim)
            .filter(|sid| KEPT_RESOURCES.iter().any(|prefix| sid.starts_with(prefix)))
            .map(str::to_string)
        else {
            return;
        };
        let logged = Logged::of(alert);
        let entries = self.by_resource.entry(resource).or_default();
        if entries.iter().any(|e| e.sid == logged.sid) {
            return;
        }
        entries.push(logged);
        entries.sort_by_key(|e| std::cmp::Reverse(e.at));
        entries.truncate(KEPT_PER_RESOURCE);
    }

    fn forget_older_than(&mut self, oldest: Timestamp) {
        self.by_resource.retain(|_, entries| {
            entries.retain(|e| e.at.is_none_or(|at| at >= oldest));
            !entries.is_empty()
        });
    }
}

/// The Error Log of one account.
#[derive(Debug, Default)]
pub struct AlertLog {
    read: tokio::sync::Mutex<Read>,
}

impl AlertLog {
    /// The entries about resource `sid` from `since` on (the object's creation: older ones are
    /// about an earlier life of its resource), newest first, from a pass no older than `fresh`.
    pub async fn about(
        &self,
        client: &TwilioClient,
        sid: &str,
        since: Timestamp,
        fresh: Duration,
    ) -> Result<Vec<Logged>, TwilioError> {
        let mut read = self.read.lock().await;
        let now = Timestamp::now();
        let oldest = now.checked_sub(OLDEST).unwrap_or(now);
        let since = since.max(oldest);
        let covered = read.from.is_some_and(|from| from <= since);
        let recent = read.at.is_some_and(|at| at.elapsed() < fresh);
        if !(covered && recent) {
            let start = match (covered, read.until) {
                (true, Some(until)) => until.checked_sub(OVERLAP).unwrap_or(until),
                _ => since,
            }
            .max(oldest);
            client
                .alerts_since(start, |alert| read.insert(alert))
                .await?;
            if !covered {
                read.from = Some(since);
            }
            read.until = Some(now);
            read.at = Some(Instant::now());
            read.forget_older_than(oldest);
        }
        let entries = read
            .by_resource
            .get(sid)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.at.is_none_or(|at| at >= since))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(sid: &str, resource: &str, code: &str, at: &str) -> Alert {
        Alert {
            sid: sid.into(),
            error_code: Some(code.into()),
            resource_sid: Some(resource.into()),
            alert_text: Some("Msg=failed".into()),
            more_info: Some(format!("https://www.twilio.com/docs/errors/{code}")),
            log_level: Some("error".into()),
            date_created: Some(at.into()),
        }
    }

    const XE1: &str = "XE0123456789abcdef0123456789abcdef";

    #[test]
    fn entries_are_kept_per_resource_once_newest_first_and_others_are_ignored() {
        let mut read = Read::default();
        read.insert(alert("NO1", XE1, "63104", "2026-11-30T10:00:00Z"));
        read.insert(alert("NO2", XE1, "63110", "2026-11-30T11:00:00Z"));
        read.insert(alert("NO2", XE1, "63110", "2026-11-30T11:00:00Z"));
        read.insert(alert(
            "NO3",
            "SM0123456789abcdef0123456789abcdef",
            "30007",
            "2026-11-30T11:00:00Z",
        ));
        let entries = &read.by_resource[XE1];
        assert_eq!(
            entries.iter().map(|e| e.sid.as_str()).collect::<Vec<_>>(),
            ["NO2", "NO1"]
        );
        assert_eq!(
            read.by_resource.len(),
            1,
            "a message's alert is not about a sender"
        );
        assert_eq!(entries[0].at, Some("2026-11-30T11:00:00Z".parse().unwrap()));

        for i in 0..20 {
            read.insert(alert(
                &format!("NOx{i}"),
                XE1,
                "63100",
                "2026-11-30T12:00:00Z",
            ));
        }
        assert_eq!(read.by_resource[XE1].len(), KEPT_PER_RESOURCE);
        read.forget_older_than("2026-12-01T00:00:00Z".parse().unwrap());
        assert!(read.by_resource.is_empty());
    }
}
