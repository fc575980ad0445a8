//! What the operator remembers about each sender between reconciles, in memory only.
//!
//! - The identity fields it last wrote to status (SID, account, code bookkeeping). The watch
//!   cache can lag behind the operator's own status writes by a moment; a reconcile that starts
//!   in that moment must not believe the sender was never created, or a code never submitted.
//!   It also keeps the SID when writing the status failed.
//! - Consecutive errors (for backoff) and polls in one Twilio status (for poll backoff).
//! - Updates sent for one generation, to stop re-sending a change Twilio does not keep.
//! - When the operator first saw the object: only a list made after that may say its number is
//!   not registered (someone may have registered it by hand just before applying it).
//!
//! All of it is rebuilt from `.status` and Twilio after a restart.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::api::{VerificationStatus, WhatsAppSenderStatus};

use super::onboarding::SenderKey;

/// Status fields that must never go backwards.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pinned {
    pub sid: Option<String>,
    pub account_sid: Option<String>,
    pub verification: Option<VerificationStatus>,
}

impl Pinned {
    pub fn of(status: &WhatsAppSenderStatus) -> Self {
        Self {
            sid: status.sid.clone(),
            account_sid: status.account_sid.clone(),
            verification: status.verification.clone(),
        }
    }

    /// Puts the remembered fields over a (possibly stale) status.
    pub fn overlay(&self, status: &mut WhatsAppSenderStatus) {
        status.sid = self.sid.clone();
        status.account_sid = self.account_sid.clone();
        status.verification = self.verification.clone();
    }
}

#[derive(Debug, Default)]
struct Entry {
    /// The object's UID: a deleted and recreated object of the same name starts afresh.
    uid: String,
    pinned: Option<Pinned>,
    failures: u32,
    polls: Option<(String, u32)>,
    updates: Option<(i64, Vec<&'static str>, u32)>,
    /// Twilio refused to send more codes (63114) until about then.
    codes_locked_until: Option<tokio::time::Instant>,
    /// When the watch first delivered the object (or its first reconcile began).
    first_seen: Option<tokio::time::Instant>,
}

impl Entry {
    fn repeats(&self, generation: i64, fields: &[&'static str]) -> u32 {
        match &self.updates {
            Some((g, f, count)) if *g == generation && f.as_slice() == fields => *count,
            _ => 0,
        }
    }
}

#[derive(Debug, Default)]
pub struct Memory {
    /// Boxed: an entry is a few hundred bytes, and the table keeps up to twice as many slots
    /// as senders (6 MiB of mostly empty slots at 10,000 senders, unboxed).
    entries: Mutex<HashMap<SenderKey, Box<Entry>>>,
}

impl Memory {
    fn with<T>(&self, key: &SenderKey, uid: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(key.clone()).or_default();
        if entry.uid != uid {
            **entry = Entry {
                uid: uid.to_string(),
                ..Entry::default()
            };
        }
        f(entry)
    }

    /// When the operator first saw this object; the first call records now.
    pub fn first_seen(&self, key: &SenderKey, uid: &str) -> tokio::time::Instant {
        self.with(key, uid, |e| {
            *e.first_seen.get_or_insert_with(tokio::time::Instant::now)
        })
    }

    pub fn pinned(&self, key: &SenderKey, uid: &str) -> Option<Pinned> {
        self.with(key, uid, |e| e.pinned.clone())
    }

    pub fn pin(&self, key: &SenderKey, uid: &str, pinned: Pinned) {
        self.with(key, uid, |e| e.pinned = Some(pinned));
    }

    /// Counts one more consecutive failure and returns the count.
    pub fn failed(&self, key: &SenderKey, uid: &str) -> u32 {
        self.with(key, uid, |e| {
            e.failures = e.failures.saturating_add(1);
            e.failures
        })
    }

    pub fn succeeded(&self, key: &SenderKey, uid: &str) {
        self.with(key, uid, |e| e.failures = 0);
    }

    /// How many polls in a row found the sender in `status` before this one.
    pub fn polled(&self, key: &SenderKey, uid: &str, status: &str) -> u32 {
        self.with(key, uid, |e| match &mut e.polls {
            Some((last, count)) if last == status => {
                *count = count.saturating_add(1);
                *count
            }
            _ => {
                e.polls = Some((status.to_string(), 0));
                0
            }
        })
    }

    /// Records an update of `fields` for `generation` and returns how many times in a row this
    /// same update was sent for it.
    pub fn sent_update(
        &self,
        key: &SenderKey,
        uid: &str,
        generation: i64,
        fields: &[&'static str],
    ) -> u32 {
        self.with(key, uid, |e| {
            let count = e.repeats(generation, fields).saturating_add(1);
            e.updates = Some((generation, fields.to_vec(), count));
            count
        })
    }

    /// How many times in a row this update was already sent for `generation`.
    pub fn update_repeats(
        &self,
        key: &SenderKey,
        uid: &str,
        generation: i64,
        fields: &[&'static str],
    ) -> u32 {
        self.with(key, uid, |e| e.repeats(generation, fields))
    }

    /// Twilio matches the spec: forget sent updates.
    pub fn converged(&self, key: &SenderKey, uid: &str) {
        self.with(key, uid, |e| e.updates = None);
    }

    /// Twilio said 63114: no code requests for `wait`.
    pub fn codes_locked(&self, key: &SenderKey, uid: &str, wait: std::time::Duration) {
        let until = tokio::time::Instant::now() + wait;
        self.with(key, uid, |e| e.codes_locked_until = Some(until));
    }

    /// How long code requests must still wait, if Twilio locked them.
    pub fn codes_lockout_left(&self, key: &SenderKey, uid: &str) -> Option<std::time::Duration> {
        let now = tokio::time::Instant::now();
        self.with(key, uid, |e| {
            e.codes_locked_until
                .filter(|until| *until > now)
                .map(|until| until - now)
        })
    }

    pub fn forget(&self, key: &SenderKey) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SenderKey {
        SenderKey::new("a").within("ns")
    }

    #[test]
    fn a_new_uid_starts_afresh() {
        let memory = Memory::default();
        memory.pin(
            &key(),
            "uid-1",
            Pinned {
                sid: Some("XE1".into()),
                ..Pinned::default()
            },
        );
        assert_eq!(memory.failed(&key(), "uid-1"), 1);
        assert!(memory.pinned(&key(), "uid-1").is_some());
        assert!(memory.pinned(&key(), "uid-2").is_none(), "recreated object");
        assert_eq!(memory.failed(&key(), "uid-2"), 1);
    }

    #[test]
    fn counters() {
        let memory = Memory::default();
        assert_eq!(memory.failed(&key(), "u"), 1);
        assert_eq!(memory.failed(&key(), "u"), 2);
        memory.succeeded(&key(), "u");
        assert_eq!(memory.failed(&key(), "u"), 1);

        assert_eq!(memory.polled(&key(), "u", "CREATING"), 0);
        assert_eq!(memory.polled(&key(), "u", "CREATING"), 1);
        assert_eq!(memory.polled(&key(), "u", "VERIFYING"), 0);

        let fields = ["profile.about"];
        assert_eq!(memory.update_repeats(&key(), "u", 1, &fields), 0);
        assert_eq!(memory.sent_update(&key(), "u", 1, &fields), 1);
        assert_eq!(memory.sent_update(&key(), "u", 1, &fields), 2);
        assert_eq!(memory.update_repeats(&key(), "u", 1, &fields), 2);
        assert_eq!(
            memory.sent_update(&key(), "u", 2, &fields),
            1,
            "new generation"
        );
        memory.converged(&key(), "u");
        assert_eq!(memory.update_repeats(&key(), "u", 2, &fields), 0);

        memory.forget(&key());
        assert!(memory.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn first_seen_is_the_first_call_and_a_new_uid_sees_anew() {
        let memory = Memory::default();
        let first = memory.first_seen(&key(), "u");
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        assert_eq!(memory.first_seen(&key(), "u"), first);
        assert_eq!(
            memory.first_seen(&key(), "u2"),
            first + std::time::Duration::from_secs(5),
            "a recreated object is new"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_code_lockout_runs_out() {
        let memory = Memory::default();
        assert_eq!(memory.codes_lockout_left(&key(), "u"), None);
        memory.codes_locked(&key(), "u", std::time::Duration::from_secs(60));
        tokio::time::advance(std::time::Duration::from_secs(20)).await;
        assert_eq!(
            memory.codes_lockout_left(&key(), "u"),
            Some(std::time::Duration::from_secs(40))
        );
        tokio::time::advance(std::time::Duration::from_secs(40)).await;
        assert_eq!(memory.codes_lockout_left(&key(), "u"), None);
    }
}
