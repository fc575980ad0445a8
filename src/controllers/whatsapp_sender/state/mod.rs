//! The one owner of what the controller remembers: a record per sender, per Secret and per
//! Twilio account, in one index behind one lock (the shape of linkerd2's policy-controller
//! index). It changes only through a few named operations:
//!
//! - [`State::sender_event`]: the senders' watch (applied, deleted, relisted);
//! - [`State::secret_event`]: the Secrets' metadata watch; [`State::secret_read`] and
//!   [`State::client_built`] when a reconcile had to read a Secret itself;
//! - [`State::claim_turn`]: a reconcile asks for its account's onboarding turn;
//! - [`State::claim_number`] and [`State::commit_number`]: a reconcile claims its number in
//!   its account, and registers or adopts it only as the number's one owner (`owners`);
//! - [`State::concluded`]: what a reconcile concluded.
//!
//! A sender is forgotten in one place (`forget`, reached from a Delete event or a relist that
//! no longer shows it), and a conclusion about a sender that is gone, or about an older object
//! of the same name, changes nothing. Everything else only reads: a copy of a sender's facts
//! when its reconcile starts, Secret versions and clients, an account's budget and lists. An
//! account's latest list is a cache of Twilio that the listing reconcile replaces
//! ([`super::lists::Lists`]); which list may answer which question is decided here.
//!
//! One lock, not one per account: every operation is a few map lookups, and `make bench`
//! measured the lock (`senderops_state_lock_*` in `/metrics`) at 700-1,200 acquisitions a
//! second with 10,000 senders and while 1,000 onboard, each held 2-4 µs, busy 0.1-0.3 % of
//! the time, with 20-50 ms of waiting in all over a step of 80-200 s. Locks per
//! account would add a second level of maps, and lock ordering between a sender's record and
//! its account's, to save nothing measurable.
//!
//! One job per file: the index and a reconcile's reads of its sender's record (here), the
//! watches that keep the index ([`watch`]), the Secrets' clients ([`clients`]), who may
//! register or act on a number now ([`admission`]), the account's lists and marks
//! ([`account_lists`]), what a reconcile concluded ([`conclusion`]), and the lock's timing
//! ([`lock`]).

mod account;
mod account_lists;
mod admission;
mod clients;
mod conclusion;
mod lock;
mod owners;
mod sender;
mod senders;
mod watch;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use tokio::time::Instant;

pub use account::{Busy, NameTurn};
pub use admission::claimant_of;
pub use conclusion::{
    Conclusion, NameRejected, NumberChanged, NumberDeleted, Seen, SidGone, Written,
};
pub use owners::{Claimant, Ownership};
pub use sender::{CodeFingerprint, Identity, Polls, SenderFacts, UpdateGuard};

use crate::api::WhatsAppSender;
use crate::metrics::StateLockCounters;
use crate::runtime::accounts::AccountRegistry;
use crate::runtime::secrets::SecretIndex;
use account::{Accounts, Deletions};
use owners::Numbers;
use senders::Senders;

/// Identifies a sender (`namespace/name`).
pub type SenderKey = kube::runtime::reflector::ObjectRef<WhatsAppSender>;

/// A Secret by namespace and name.
pub use crate::runtime::clients::SecretKey;

/// The key of `sender`: namespace and name only. `ObjectRef::from_obj` also copies the UID and
/// resourceVersion, which comparisons ignore and the index would keep in every copy of a key
/// (a sender's key is held four or five times).
pub fn key_of(sender: &WhatsAppSender) -> SenderKey {
    let key = SenderKey::new(&sender.name_any());
    match sender.namespace() {
        Some(namespace) => key.within(&namespace),
        None => key,
    }
}

/// How the state's rules are tuned (from `senderops run`'s flags).
#[derive(Clone, Copy, Debug)]
pub struct StateConfig {
    /// One registration per account at a time.
    pub serial_onboarding: bool,
    /// How long a registration may hold its account's turn.
    pub onboarding_max_hold: Duration,
    /// How old a list may be to say that a number is registered.
    pub lookup_reuse: Duration,
    /// How long a write to a sender makes older lists stale for it.
    pub resync_interval: Duration,
    /// One sender registers with a new display name before the others of its account.
    pub display_name_check: bool,
    /// The least time between two registrations in one account.
    pub registration_interval: Duration,
    /// Reconcile workers one account may hold at once.
    pub workers_per_account: usize,
}

#[cfg(test)]
impl StateConfig {
    /// The rules as the state's and the watches' unit tests run them: serial onboarding, the
    /// name check, no spacing between registrations, five workers per account.
    pub fn for_tests() -> StateConfig {
        StateConfig {
            serial_onboarding: true,
            onboarding_max_hold: Duration::from_secs(900),
            lookup_reuse: Duration::from_secs(30),
            resync_interval: Duration::from_secs(300),
            display_name_check: true,
            registration_interval: Duration::ZERO,
            workers_per_account: 5,
        }
    }
}

#[derive(Debug, Default)]
struct Index {
    senders: Senders,
    secrets: SecretIndex,
    /// Per scope (an account, or an unverified credential's own): see [`Index::prune`].
    accounts: Accounts,
    /// How many senders use each scope (the scope kept once, shared with their records).
    scope_users: HashMap<Arc<str>, usize>,
    deletions: Deletions,
    /// Who owns each number claimed in each account.
    numbers: Numbers,
    /// Senders listed since a relist of the watch began.
    senders_relisted: Option<HashSet<SenderKey>>,
}

pub struct State {
    config: StateConfig,
    /// Each account's request budget, shared by every client of the account whatever its
    /// scope, and with every other controller; it goes when no client holds it.
    accounts: Arc<AccountRegistry>,
    /// The key of code fingerprints: random per process and never written anywhere, so a
    /// fingerprint cannot be turned back into a code outside this process.
    code_key: std::hash::RandomState,
    index: Mutex<Index>,
    lock_counters: StateLockCounters,
}

impl State {
    /// A state with accounts of its own (tests).
    #[cfg(test)]
    pub fn new(config: StateConfig, lock_counters: StateLockCounters) -> Self {
        let accounts = Arc::new(AccountRegistry::new(Default::default()));
        Self::sharing(config, accounts, lock_counters)
    }

    /// A state whose accounts' budgets and Error Logs are `accounts`', shared with other
    /// controllers.
    pub fn sharing(
        config: StateConfig,
        accounts: Arc<AccountRegistry>,
        lock_counters: StateLockCounters,
    ) -> Self {
        let index = Index {
            accounts: Accounts::new(config.workers_per_account.max(1), accounts.clone()),
            ..Index::default()
        };
        Self {
            config,
            accounts,
            code_key: std::hash::RandomState::new(),
            index: Mutex::new(index),
            lock_counters,
        }
    }

    // -- a reconcile's reads of its sender's record ----------------------------------------

    /// A copy of the sender's facts for a reconcile; fresh facts if the record is gone (a
    /// conclusion about it will change nothing).
    pub fn facts(&self, key: &SenderKey, uid: &str) -> SenderFacts {
        match self.lock().senders.get(key) {
            Some(record) if record.uid == uid => record.facts.get(),
            _ => SenderFacts::new(Instant::now()),
        }
    }

    /// A keyed hash of `code`: tells a code from another within this process.
    pub fn code_fingerprint(&self, code: &str) -> u64 {
        use std::hash::BuildHasher;
        self.code_key.hash_one(code)
    }

    /// When the last reconcile of `sender` started, if one did.
    pub fn last_started(&self, sender: &SenderKey, uid: &str) -> Option<Instant> {
        let index = self.lock();
        index
            .senders
            .get(sender)
            .filter(|r| r.uid == uid)?
            .last_started
    }

    /// A reconcile of `sender` starts now.
    pub fn started(&self, sender: &SenderKey, uid: &str) {
        if let Some(record) = self.lock().senders.get_mut(sender).filter(|r| r.uid == uid) {
            record.last_started = Some(Instant::now());
        }
    }

    /// Consecutive failed reconciles of `sender`.
    pub fn failures(&self, sender: &SenderKey) -> u32 {
        self.lock()
            .senders
            .get(sender)
            .map_or(0, |r| r.facts.failures())
    }

    #[cfg(test)]
    fn scope_count(&self) -> usize {
        self.lock().accounts.len()
    }

    #[cfg(test)]
    fn budget_count(&self) -> usize {
        self.accounts.accounts_in_use()
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let index = self.lock();
        (index.senders.len(), index.secrets.len())
    }
}

#[cfg(test)]
mod tests;
