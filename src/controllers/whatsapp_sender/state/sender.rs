//! One sender's record: what the operator remembers about it between reconciles, and the pure
//! rules for its counters. All of it is rebuilt from `.status` and Twilio after a restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::SecretKey;
use crate::api::{TwilioAlert, VerificationStatus, WhatsAppSenderStatus};

/// What a reconcile reads about its sender at the start.
#[derive(Clone, Debug, PartialEq)]
pub struct SenderFacts {
    /// When the watch first delivered the object: only a list made after it may say that its
    /// number is not registered.
    pub first_seen: Instant,
    /// The identity last written to status. The watch cache can lag behind the operator's own
    /// status writes by a moment, and a status write can fail; a reconcile starting then must
    /// not believe the sender was never created, or a code never submitted.
    pub identity: Option<Identity>,
    /// Consecutive failed reconciles (error backoff).
    pub failures: u32,
    /// Polls in a row that found the sender in one Twilio status (poll backoff).
    pub polls: Option<Polls>,
    /// The update last sent, to stop re-sending a change Twilio does not keep.
    pub updates: Option<UpdateGuard>,
    /// Twilio refused to send more codes (63114) until about then.
    pub codes_locked_until: Option<Instant>,
    /// The last code submitted, as a keyed hash ([`super::State::code_fingerprint`]) with the
    /// Secret and key it came from: a new version of that Secret holding the same code (a
    /// label or annotation added) is not a new code. In memory only, like the key.
    pub submitted_fingerprint: Option<CodeFingerprint>,
}

/// A submitted code, as far as the operator may remember it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeFingerprint {
    pub secret_name: String,
    pub key: String,
    pub hash: u64,
}

impl SenderFacts {
    pub fn new(first_seen: Instant) -> Self {
        Self {
            first_seen,
            identity: None,
            failures: 0,
            polls: None,
            updates: None,
            codes_locked_until: None,
            submitted_fingerprint: None,
        }
    }

    /// How many times in a row this update was already sent for `generation`.
    pub fn update_repeats(&self, generation: i64, fields: &[&'static str]) -> u32 {
        self.updates
            .as_ref()
            .filter(|u| u.generation == generation && u.fields == fields)
            .map_or(0, |u| u.sent)
    }

    /// How long code requests must still wait, if Twilio locked them.
    pub fn lockout_left(&self, now: Instant) -> Option<Duration> {
        self.codes_locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }
}

/// Status fields that must never go backwards: who the sender is, which code was sent, and
/// which Error Log entries were noted (a stale copy would note them, and send their Events,
/// again).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    pub sid: Option<String>,
    pub account_sid: Option<String>,
    /// Boxed: most senders never need a code, and the record of each keeps an identity.
    pub verification: Option<Box<VerificationStatus>>,
    pub alerts: Vec<TwilioAlert>,
}

impl Identity {
    pub fn of(status: &WhatsAppSenderStatus) -> Self {
        Self {
            sid: status.sid.clone(),
            account_sid: status.account_sid.clone(),
            verification: status.verification.clone().map(Box::new),
            alerts: status.alerts.clone(),
        }
    }

    /// Puts the remembered fields over a (possibly stale) status.
    pub fn overlay(&self, status: &mut WhatsAppSenderStatus) {
        status.sid = self.sid.clone();
        status.account_sid = self.account_sid.clone();
        status.verification = self.verification.as_deref().cloned();
        status.alerts = self.alerts.clone();
    }
}

/// Polls in a row in one Twilio status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Polls {
    pub status: String,
    /// Earlier polls in this status (0 on the first).
    pub count: u32,
}

impl Polls {
    /// The count after a poll that found `status`.
    pub fn after(previous: Option<&Polls>, status: &str) -> Polls {
        match previous {
            Some(p) if p.status == status => Polls {
                status: p.status.clone(),
                count: p.count.saturating_add(1),
            },
            _ => Polls {
                status: status.to_string(),
                count: 0,
            },
        }
    }
}

/// The same update sent `sent` times for `generation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateGuard {
    pub generation: i64,
    pub fields: Vec<&'static str>,
    pub sent: u32,
}

impl UpdateGuard {
    /// The guard after sending `fields` once more for `generation`.
    pub fn after(facts: &SenderFacts, generation: i64, fields: &[&'static str]) -> UpdateGuard {
        UpdateGuard {
            generation,
            fields: fields.to_vec(),
            sent: facts.update_repeats(generation, fields).saturating_add(1),
        }
    }
}

/// [`SenderFacts`] as a record keeps them between reconciles: what few senders ever have (an
/// update guard, a code lockout, a submitted code) in one box. A record of each sender is kept,
/// and the facts inline took 400 of its 640 bytes (10,000 senders, heaptrack, `make bench`).
#[derive(Debug)]
pub(super) struct KeptFacts {
    first_seen: Instant,
    failures: u32,
    identity: Option<Identity>,
    polls: Option<Polls>,
    rare: Option<Box<RareFacts>>,
}

#[derive(Debug)]
struct RareFacts {
    updates: Option<UpdateGuard>,
    codes_locked_until: Option<Instant>,
    submitted_fingerprint: Option<CodeFingerprint>,
}

impl KeptFacts {
    pub fn new(first_seen: Instant) -> Self {
        SenderFacts::new(first_seen).into()
    }

    /// A copy, for a reconcile.
    pub fn get(&self) -> SenderFacts {
        let rare = self.rare.as_deref();
        SenderFacts {
            first_seen: self.first_seen,
            identity: self.identity.clone(),
            failures: self.failures,
            polls: self.polls.clone(),
            updates: rare.and_then(|r| r.updates.clone()),
            codes_locked_until: rare.and_then(|r| r.codes_locked_until),
            submitted_fingerprint: rare.and_then(|r| r.submitted_fingerprint.clone()),
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Changes the facts through `change`.
    pub fn update(&mut self, change: impl FnOnce(&mut SenderFacts)) {
        let mut facts = self.get();
        change(&mut facts);
        *self = facts.into();
    }
}

impl From<SenderFacts> for KeptFacts {
    fn from(facts: SenderFacts) -> Self {
        let rare = RareFacts {
            updates: facts.updates,
            codes_locked_until: facts.codes_locked_until,
            submitted_fingerprint: facts.submitted_fingerprint,
        };
        let common = rare.updates.is_none()
            && rare.codes_locked_until.is_none()
            && rare.submitted_fingerprint.is_none();
        Self {
            first_seen: facts.first_seen,
            failures: facts.failures,
            identity: facts.identity,
            polls: facts.polls,
            rare: (!common).then(|| Box::new(rare)),
        }
    }
}

/// The index's record of one sender.
#[derive(Debug)]
pub(super) struct SenderRecord {
    /// The object's UID: a deleted and recreated object of the same name starts afresh.
    pub uid: String,
    pub facts: KeptFacts,
    /// The Secrets it reads (credentials, code).
    pub reads: Vec<SecretKey>,
    /// When its last reconcile started.
    pub last_started: Option<Instant>,
    /// The account and SID under which it counts as settled, for batched refresh.
    pub settled: Option<(Arc<str>, String)>,
    /// The account whose onboarding turn it holds or waits for.
    pub onboarding_in: Option<Arc<str>>,
    /// The account where it checks, or waits for the check of, its display name.
    pub names_in: Option<Arc<str>>,
    /// The number it claims, in the account it claims it in.
    pub claim: Option<super::owners::NumberKey>,
    /// The scope its reconciles work in (see [`super::State::uses_scope`]).
    pub scope: Option<Arc<str>>,
}

impl SenderRecord {
    /// The record of object `uid`, first seen now: no reads, claims or marks yet.
    pub fn new(uid: String) -> Self {
        SenderRecord {
            uid,
            facts: KeptFacts::new(Instant::now()),
            reads: Vec::new(),
            last_started: None,
            settled: None,
            onboarding_in: None,
            names_in: None,
            claim: None,
            scope: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_count_in_one_status() {
        let first = Polls::after(None, "CREATING");
        assert_eq!(first.count, 0);
        let second = Polls::after(Some(&first), "CREATING");
        assert_eq!(second.count, 1);
        assert_eq!(Polls::after(Some(&second), "VERIFYING").count, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn kept_facts_give_back_what_was_kept() {
        let mut kept = KeptFacts::new(Instant::now());
        assert_eq!(kept.get(), SenderFacts::new(Instant::now()));
        assert!(kept.rare.is_none());
        let mut facts = kept.get();
        facts.failures = 2;
        facts.polls = Some(Polls::after(None, "ONLINE"));
        facts.codes_locked_until = Some(Instant::now());
        facts.submitted_fingerprint = Some(CodeFingerprint {
            secret_name: "otp".into(),
            key: "code".into(),
            hash: 7,
        });
        kept.update(|f| *f = facts.clone());
        assert_eq!(kept.get(), facts);
        assert_eq!(kept.failures(), 2);
        kept.update(|f| {
            f.codes_locked_until = None;
            f.submitted_fingerprint = None;
        });
        assert!(kept.rare.is_none(), "nothing rare left to box");
    }

    #[tokio::test(start_paused = true)]
    async fn updates_repeat_per_generation_and_lockouts_run_out() {
        let mut facts = SenderFacts::new(Instant::now());
        let fields = ["profile.about"];
        assert_eq!(facts.update_repeats(1, &fields), 0);
        facts.updates = Some(UpdateGuard::after(&facts, 1, &fields));
        facts.updates = Some(UpdateGuard::after(&facts, 1, &fields));
        assert_eq!(facts.update_repeats(1, &fields), 2);
        assert_eq!(facts.update_repeats(2, &fields), 0, "new generation");
        assert_eq!(facts.update_repeats(1, &["webhook.callback_url"]), 0);

        assert_eq!(facts.lockout_left(Instant::now()), None);
        facts.codes_locked_until = Some(Instant::now() + Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            facts.lockout_left(Instant::now()),
            Some(Duration::from_secs(40))
        );
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(facts.lockout_left(Instant::now()), None);
    }
}
