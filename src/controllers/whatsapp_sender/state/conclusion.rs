//! What one reconcile concluded, as named notes, and how the index records it: the sender's
//! facts, its account's marks, its settled place, its onboarding turn and display-name check.

use tokio::time::Instant;

use super::account::{Accounts, NameCheck};
use super::sender::SenderRecord;
use super::{
    CodeFingerprint, Identity, Index, Polls, SenderFacts, SenderKey, State, StateConfig,
    UpdateGuard,
};

/// What one reconcile concluded, for the sender's record and its account's.
#[derive(Clone, Debug, Default)]
pub struct Conclusion {
    /// The reconcile failed (it backs off by the count of failures in a row).
    pub failed: bool,
    /// The identity in status now (recorded even when the status write failed).
    pub identity: Option<Identity>,
    pub polls: Option<Polls>,
    /// `Some(None)`: Twilio matches the spec, forget sent updates.
    pub updates: Option<Option<UpdateGuard>>,
    pub codes_locked_until: Option<Instant>,
    /// The code just submitted.
    pub submitted_fingerprint: Option<CodeFingerprint>,
    /// What Twilio reported for the sender.
    pub seen: Option<Seen>,
    /// A SID that no longer belongs to this sender at Twilio (deleted, orphaned, vanished).
    pub gone: Option<SidGone>,
    /// The sender no longer registers (stalled, suspended, deleted): its account's next
    /// number may start, and a display-name check it ran passes on.
    pub leaves_onboarding: bool,
    /// A create of unknown fate, or a sender found deleted: older lists cannot answer for
    /// this number.
    pub number_changed: Option<NumberChanged>,
    /// The operator changed the sender at Twilio.
    pub written: Option<Written>,
    /// The operator deleted the number's sender at Twilio.
    pub deleted: Option<NumberDeleted>,
    /// Meta refused the sender over its display name: the account's senders waiting to
    /// register with that name stall.
    pub name_rejected: Option<NameRejected>,
}

/// Twilio's view of a sender, as far as its account's records care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub account: String,
    pub sid: String,
    /// Not moving through a Twilio step: refreshed by batched lists.
    pub settled: bool,
    /// Still being registered: holds its account's onboarding turn.
    pub onboarding: bool,
    /// ONLINE with this display name: Meta accepted it in this account.
    pub online_name: Option<String>,
}

/// `sid` no longer belongs to the sender at Twilio in `account`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidGone {
    pub account: String,
    pub sid: String,
}

/// `phone`'s registration in `account` changed at `at`: lists begun before cannot answer for
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberChanged {
    pub account: String,
    pub phone: String,
    pub at: Instant,
}

/// The operator changed sender `sid` in `account` at `at`: lists begun before show stale
/// fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub account: String,
    pub sid: String,
    pub at: Instant,
}

/// The operator deleted `sid`, the sender of `phone` in `account`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberDeleted {
    pub account: String,
    pub phone: String,
    pub sid: String,
}

/// Meta refused display name `name` in `account`; `message` is what Twilio said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRejected {
    pub account: String,
    pub name: String,
    pub message: String,
}

impl Conclusion {
    /// The scopes whose records this conclusion writes to.
    fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = [
            self.gone.as_ref().map(|gone| &gone.account),
            self.number_changed.as_ref().map(|changed| &changed.account),
            self.written.as_ref().map(|written| &written.account),
            self.seen.as_ref().map(|seen| &seen.account),
            self.name_rejected
                .as_ref()
                .map(|rejected| &rejected.account),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// Moves what the reconcile learnt about its sender into `facts`.
    fn update_facts(&mut self, facts: &mut SenderFacts) {
        facts.failures = if self.failed {
            facts.failures.saturating_add(1)
        } else {
            0
        };
        if let Some(identity) = self.identity.take() {
            facts.identity = Some(identity);
        }
        if let Some(polls) = self.polls.take() {
            facts.polls = Some(polls);
        }
        if let Some(updates) = self.updates.take() {
            facts.updates = updates;
        }
        if let Some(until) = self.codes_locked_until.take() {
            facts.codes_locked_until = Some(until);
        }
        if let Some(fingerprint) = self.submitted_fingerprint.take() {
            facts.submitted_fingerprint = Some(fingerprint);
        }
    }
}

impl State {
    /// Records what a reconcile of `sender` (object `uid`) concluded. Returns the senders to
    /// wake (an onboarding turn it freed).
    pub fn concluded(
        &self,
        sender: &SenderKey,
        uid: &str,
        conclusion: Conclusion,
    ) -> Vec<SenderKey> {
        let mut index = self.lock();
        let index = &mut *index;
        let touched = conclusion.scopes();
        let woken = index.conclude(sender, uid, conclusion, &self.config);
        // A conclusion about a scope nobody uses any more (the sender's Delete came first)
        // must not bring its record back.
        for scope in touched {
            index.prune(&scope);
        }
        woken
    }
}

impl Index {
    /// What [`State::concluded`] records.
    fn conclude(
        &mut self,
        sender: &SenderKey,
        uid: &str,
        mut conclusion: Conclusion,
        config: &StateConfig,
    ) -> Vec<SenderKey> {
        // What it learned about its account stands even if the sender went meanwhile (its
        // deletion finished and the watch's Delete came first).
        self.mark_accounts(&conclusion, config);
        let Some(record) = self.senders.get_mut(sender).filter(|r| r.uid == uid) else {
            return Vec::new();
        };
        record.facts.update(|facts| conclusion.update_facts(facts));
        if let Some(gone) = &conclusion.gone
            && record.settled.as_ref().is_some_and(|(_, s)| s == &gone.sid)
        {
            record.settled = None;
        }
        let accounts = &mut self.accounts;
        let mut woken = Vec::new();
        if let Some(seen) = &conclusion.seen {
            woken.extend(seen_in(accounts, record, sender, seen, config));
        }
        if config.display_name_check {
            woken.extend(names_decided(accounts, sender, &conclusion));
        }
        if conclusion.leaves_onboarding {
            woken.extend(left_onboarding(accounts, record, sender));
        }
        woken
    }

    /// The marks a conclusion leaves on its accounts' records: which lists may still answer
    /// for a number or a sender, and the numbers this operator deleted.
    fn mark_accounts(&mut self, conclusion: &Conclusion, config: &StateConfig) {
        if let Some(gone) = &conclusion.gone {
            self.accounts.record(&gone.account).forget_sid(&gone.sid);
        }
        if let Some(changed) = &conclusion.number_changed {
            self.accounts.record(&changed.account).number_changed(
                &changed.phone,
                changed.at,
                config.lookup_reuse,
            );
        }
        if let Some(written) = &conclusion.written {
            self.accounts.record(&written.account).written(
                &written.sid,
                written.at,
                config.resync_interval,
            );
        }
        if let Some(deleted) = &conclusion.deleted {
            self.deletions
                .deleted(&deleted.account, &deleted.phone, &deleted.sid);
        }
    }
}

/// What Twilio reported for `sender`: whether it counts as settled in its account (batched
/// refresh), and whether it still holds its account's onboarding turn. Returns the sender to
/// wake if the turn freed.
fn seen_in(
    accounts: &mut Accounts,
    record: &mut SenderRecord,
    sender: &SenderKey,
    seen: &Seen,
    config: &StateConfig,
) -> Option<SenderKey> {
    let name = accounts.shared_name(&seen.account);
    let account = accounts.record(&seen.account);
    if seen.settled {
        account.settled.insert(seen.sid.clone(), sender.clone());
        record.settled = Some((name.clone(), seen.sid.clone()));
    } else {
        account.settled.remove(&seen.sid);
        record.settled = None;
    }
    if !config.serial_onboarding {
        return None;
    }
    record.onboarding_in = Some(name);
    account.onboarding.observe(sender, seen.onboarding)
}

/// Meta's verdicts on display names in a conclusion: a name ONLINE is accepted, a name refused
/// for `sender` is rejected. Returns the senders that waited for a verdict.
fn names_decided(
    accounts: &mut Accounts,
    sender: &SenderKey,
    conclusion: &Conclusion,
) -> Vec<SenderKey> {
    let mut woken = Vec::new();
    if let Some(seen) = &conclusion.seen
        && let Some(name) = &seen.online_name
    {
        let account = accounts.record(&seen.account);
        if account.names.get(name) != Some(&NameCheck::Accepted) {
            woken.extend(account.name_decided(name, NameCheck::Accepted));
        }
    }
    if let Some(rejected) = &conclusion.name_rejected {
        let verdict = NameCheck::Rejected {
            by: sender.clone(),
            message: rejected.message.clone(),
        };
        woken.extend(
            accounts
                .record(&rejected.account)
                .name_decided(&rejected.name, verdict),
        );
    }
    woken
}

/// `sender` no longer registers: it leaves its account's onboarding turn or queue and the
/// display-name check it ran or waited for. Returns the senders to wake.
fn left_onboarding(
    accounts: &mut Accounts,
    record: &SenderRecord,
    sender: &SenderKey,
) -> Vec<SenderKey> {
    let mut woken = Vec::new();
    if let Some(account) = record
        .onboarding_in
        .as_ref()
        .and_then(|a| accounts.get_mut(a))
    {
        woken.extend(account.onboarding.leave(sender));
    }
    if let Some(account) = record.names_in.as_ref().and_then(|a| accounts.get_mut(a)) {
        woken.extend(account.name_left(sender));
    }
    woken
}
