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

mod account;
mod owners;
mod secret;
mod sender;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher;
use tokio::time::Instant;

pub use account::{Busy, NameTurn};
pub use owners::{Claimant, Ownership};
pub use sender::{CodeFingerprint, Identity, Polls, SenderFacts, UpdateGuard};

use super::alert_log::AlertLog;
use super::lists::Listed;
use super::otp::CodeSource;
use crate::api::WhatsAppSender;
use crate::metrics::StateLockCounters;
use crate::runtime::accounts::AccountRegistry;
use crate::twilio::{RequestBudget, TwilioClient, TwilioError};
use account::{AccountRecord, Deletions, NameCheck};
use owners::{Numbers, number_key};
use secret::SecretRecord;
use sender::SenderRecord;

/// Identifies a sender (`namespace/name`).
pub type SenderKey = kube::runtime::reflector::ObjectRef<WhatsAppSender>;

/// A Secret by namespace and name.
pub type SecretKey = (String, String);

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
    pub gone: Option<(String, String)>,
    /// The sender no longer registers (stalled, suspended, deleted): its account's next
    /// number may start, and a display-name check it ran passes on.
    pub leaves_onboarding: bool,
    /// A create of unknown fate, or a sender found deleted: older lists cannot answer for
    /// this number (account, phone, when).
    pub number_changed: Option<(String, String, Instant)>,
    /// The operator changed the sender at Twilio (account, SID, when).
    pub written: Option<(String, String, Instant)>,
    /// The operator deleted the number's sender at Twilio (account, phone, SID).
    pub deleted: Option<(String, String, String)>,
    /// Meta refused the sender over its display name (account, name, what Twilio said): the
    /// account's senders waiting to register with that name stall.
    pub name_rejected: Option<(String, String, String)>,
}

impl Conclusion {
    /// The scopes whose records this conclusion writes to.
    fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = [
            self.gone.as_ref().map(|(scope, _)| scope),
            self.number_changed.as_ref().map(|(scope, _, _)| scope),
            self.written.as_ref().map(|(scope, _, _)| scope),
            self.seen.as_ref().map(|seen| &seen.account),
            self.name_rejected.as_ref().map(|(scope, _, _)| scope),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }
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

#[derive(Debug, Default)]
struct Index {
    senders: HashMap<SenderKey, Box<SenderRecord>>,
    secrets: HashMap<SecretKey, SecretRecord>,
    /// Per scope (an account, or an unverified credential's own): see [`Index::prune`].
    accounts: HashMap<String, AccountRecord>,
    /// How many senders use each scope.
    scope_users: HashMap<String, usize>,
    deletions: Deletions,
    /// Reconcile workers one account may hold at once ([`StateConfig::workers_per_account`]).
    workers_per_account: usize,
    /// Who owns each number claimed in each account.
    numbers: Numbers,
    /// Senders listed since a relist of the watch began.
    senders_relisted: Option<HashSet<SenderKey>>,
    /// Read Secrets listed since a relist of their watch began.
    secrets_relisted: Option<HashSet<SecretKey>>,
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

/// The index, locked; records how long it was held when dropped.
struct Locked<'a> {
    guard: MutexGuard<'a, Index>,
    since: std::time::Instant,
    held: &'a prometheus_client::metrics::counter::Counter<f64, std::sync::atomic::AtomicU64>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.guard
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Index {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.held.inc_by(self.since.elapsed().as_secs_f64());
    }
}

/// The Secrets a sender reads: its credentials and, if named, its code Secret.
pub fn secrets_of(sender: &WhatsAppSender) -> Vec<SecretKey> {
    let namespace = sender.namespace().unwrap_or_default();
    let mut names = vec![sender.spec.credentials_ref.name.clone()];
    if let Some(code) = CodeSource::from_spec(sender.spec.verification.as_ref()) {
        names.push(code.secret_name);
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| (namespace.clone(), name))
        .collect()
}

fn secret_key(secret: &PartialObjectMeta<Secret>) -> SecretKey {
    (secret.namespace().unwrap_or_default(), secret.name_any())
}

impl State {
    /// A state with accounts of its own (tests).
    #[cfg(test)]
    pub fn new(config: StateConfig, lock_counters: StateLockCounters) -> Self {
        let accounts = Arc::new(AccountRegistry::new(Default::default()));
        Self::sharing(config, accounts, lock_counters)
    }

    /// A state whose accounts' budgets are `accounts`, shared with other controllers.
    pub fn sharing(
        config: StateConfig,
        accounts: Arc<AccountRegistry>,
        lock_counters: StateLockCounters,
    ) -> Self {
        Self {
            config,
            accounts,
            code_key: std::hash::RandomState::new(),
            index: Mutex::new(Index {
                workers_per_account: config.workers_per_account.max(1),
                ..Index::default()
            }),
            lock_counters,
        }
    }

    fn lock(&self) -> Locked<'_> {
        let asked = std::time::Instant::now();
        let guard = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let since = std::time::Instant::now();
        let counters = &self.lock_counters;
        counters.acquired.inc();
        counters.waited.inc_by((since - asked).as_secs_f64());
        Locked {
            guard,
            since,
            held: &counters.held,
        }
    }

    // -- the senders' watch ---------------------------------------------------------------

    /// Applies one event of the senders' watch. Returns senders to wake (an onboarding turn
    /// freed by a sender that went).
    pub fn sender_event(&self, event: &watcher::Event<WhatsAppSender>) -> Vec<SenderKey> {
        let mut index = self.lock();
        match event {
            watcher::Event::Init => {
                index.senders_relisted = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(sender) => {
                if let Some(seen) = index.senders_relisted.as_mut() {
                    seen.insert(key_of(sender));
                }
                index.applied(sender)
            }
            watcher::Event::Apply(sender) => index.applied(sender),
            watcher::Event::Delete(sender) => index.forget(&key_of(sender)),
            watcher::Event::InitDone => {
                let Some(seen) = index.senders_relisted.take() else {
                    return Vec::new();
                };
                let gone: Vec<SenderKey> = index
                    .senders
                    .keys()
                    .filter(|key| !seen.contains(*key))
                    .cloned()
                    .collect();
                gone.iter().flat_map(|key| index.forget(key)).collect()
            }
        }
    }

    // -- Secrets --------------------------------------------------------------------------

    /// Applies one event of the Secrets' metadata watch. Returns the senders that must look
    /// again: their Secret changed, was deleted, or went while the watch was down. Secrets no
    /// sender reads are ignored (clusters hold many).
    pub fn secret_event(
        &self,
        event: &watcher::Event<PartialObjectMeta<Secret>>,
    ) -> Vec<SenderKey> {
        let mut index = self.lock();
        let index = &mut *index;
        let readers = |record: &SecretRecord| record.readers.iter().cloned().collect::<Vec<_>>();
        match event {
            watcher::Event::Init => {
                index.secrets_relisted = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(secret) | watcher::Event::Apply(secret) => {
                let key = secret_key(secret);
                let Some(record) = index.secrets.get_mut(&key) else {
                    return Vec::new();
                };
                if let (watcher::Event::InitApply(_), Some(seen)) =
                    (event, index.secrets_relisted.as_mut())
                {
                    seen.insert(key);
                }
                let version = secret.resource_version();
                if record.version == version {
                    return Vec::new();
                }
                record.version = version;
                readers(record)
            }
            watcher::Event::Delete(secret) => match index.secrets.get_mut(&secret_key(secret)) {
                Some(record) => {
                    record.version = None;
                    readers(record)
                }
                None => Vec::new(),
            },
            watcher::Event::InitDone => {
                let Some(seen) = index.secrets_relisted.take() else {
                    return Vec::new();
                };
                let mut woken = Vec::new();
                for (key, record) in &mut index.secrets {
                    if record.version.is_some() && !seen.contains(key) {
                        record.version = None;
                        woken.extend(readers(record));
                    }
                }
                woken
            }
        }
    }

    /// A reconcile read the Secret itself (the watch had not shown it yet). A version the
    /// watch delivered meanwhile is as new or newer, so it stays.
    pub fn secret_read(&self, key: &SecretKey, version: &str) {
        if let Some(record) = self.lock().secrets.get_mut(key)
            && record.version.is_none()
        {
            record.version = Some(version.to_string());
        }
    }

    /// A client was built from the credentials in version `version` of Secret `key`.
    pub fn client_built(&self, key: &SecretKey, version: &str, client: TwilioClient) {
        if let Some(record) = self.lock().secrets.get_mut(key) {
            record.client = Some((version.to_string(), client));
        }
    }

    /// The Secret's version as last seen, if it exists.
    pub fn secret_version(&self, key: &SecretKey) -> Option<String> {
        self.lock().secrets.get(key)?.version.clone()
    }

    /// The client built from the Secret's current version.
    pub fn current_client(&self, key: &SecretKey) -> Option<TwilioClient> {
        self.lock().secrets.get(key)?.current_client().cloned()
    }

    /// The client built from version `version`.
    pub fn client_at(&self, key: &SecretKey, version: &str) -> Option<TwilioClient> {
        self.lock().secrets.get(key)?.client_at(version).cloned()
    }

    /// The client last built from the Secret, whatever it holds now or whether it still
    /// exists: for deleting senders whose Secret is gone.
    pub fn last_client(&self, key: &SecretKey) -> Option<TwilioClient> {
        let index = self.lock();
        index
            .secrets
            .get(key)?
            .client
            .as_ref()
            .map(|(_, c)| c.clone())
    }

    /// The request budget every client of `account` shares.
    pub fn budget(&self, account: &str) -> RequestBudget {
        self.accounts.budget(account)
    }

    /// The sender's reconcile works with a client of `scope` ([`TwilioClient::scope`]): the
    /// scope's record stays while some sender uses it.
    pub fn uses_scope(&self, sender: &SenderKey, uid: &str, scope: &str) {
        let mut index = self.lock();
        let index = &mut *index;
        let Some(record) = index.senders.get_mut(sender).filter(|r| r.uid == uid) else {
            return;
        };
        if record.scope.as_deref() == Some(scope) {
            return;
        }
        let earlier = record.scope.replace(scope.to_string());
        *index.scope_users.entry(scope.to_string()).or_default() += 1;
        if let Some(earlier) = earlier {
            index.stop_using(&earlier);
        }
    }

    // -- reconciles -----------------------------------------------------------------------

    /// A copy of the sender's facts for a reconcile; fresh facts if the record is gone (a
    /// conclusion about it will change nothing).
    pub fn facts(&self, key: &SenderKey, uid: &str) -> SenderFacts {
        match self.lock().senders.get(key) {
            Some(record) if record.uid == uid => record.facts.clone(),
            _ => SenderFacts::new(Instant::now()),
        }
    }

    /// Takes `account`'s onboarding turn for `sender` if it is free (or its own), else queues
    /// it and says who holds the turn.
    pub fn claim_turn(&self, account: &str, sender: &SenderKey) -> Result<(), Busy> {
        if !self.config.serial_onboarding {
            return Ok(());
        }
        let mut index = self.lock();
        let index = &mut *index;
        let Some(record) = index.senders.get_mut(sender) else {
            return Ok(());
        };
        record.onboarding_in = Some(account.to_string());
        account_in(&mut index.accounts, account, index.workers_per_account)
            .onboarding
            .try_start(sender, self.config.onboarding_max_hold)
    }

    /// `sender` asks to register in `account` with display name `name`: it goes if the name
    /// is known good or no one checks it yet (it then checks it); else it waits for the
    /// sender that checks it, or learns that Meta refused the name.
    pub fn claim_name(&self, account: &str, name: &str, sender: &SenderKey) -> NameTurn {
        if !self.config.display_name_check {
            return NameTurn::Go;
        }
        let mut index = self.lock();
        let index = &mut *index;
        let Some(record) = index.senders.get_mut(sender) else {
            return NameTurn::Go;
        };
        record.names_in = Some(account.to_string());
        account_in(&mut index.accounts, account, index.workers_per_account).claim_name(
            name,
            sender,
            self.config.onboarding_max_hold,
        )
    }

    /// A registration in `account` may go out now (it then counts as sent), or after how long.
    pub fn claim_registration(&self, account: &str) -> Result<(), Duration> {
        let interval = self.config.registration_interval;
        if interval.is_zero() {
            return Ok(());
        }
        self.lock().account(account).claim_registration(interval)
    }

    /// `claimant` claims `phone` in `account` (its credentials' account): whether it owns the
    /// number, and the senders to wake (a number it claimed before and no longer does may
    /// have passed to another owner). An object the watch no longer shows owns nothing new.
    pub fn claim_number(
        &self,
        account: &str,
        phone: &str,
        claimant: Claimant,
    ) -> (Ownership, Vec<SenderKey>) {
        let mut index = self.lock();
        let index = &mut *index;
        let number = number_key(account, phone);
        let Some(record) = index
            .senders
            .get_mut(&claimant.key)
            .filter(|r| r.uid == claimant.uid)
        else {
            return (Ownership::Mine, Vec::new());
        };
        let mut woken = Vec::new();
        if let Some(earlier) = record.claim.replace(number.clone())
            && earlier != number
        {
            woken.extend(
                index
                    .numbers
                    .release(&earlier, &claimant.key, &claimant.uid),
            );
        }
        (index.numbers.claim(&number, claimant), woken)
    }

    /// The sender registers or adopts `phone` in `account` now: it holds the number from here
    /// on if it still owns it; otherwise the owner. Checked and marked in one step, so that
    /// of two senders racing for one number only one gets through.
    pub fn commit_number(
        &self,
        account: &str,
        phone: &str,
        sender: &SenderKey,
        uid: &str,
    ) -> Result<(), SenderKey> {
        let mut index = self.lock();
        if index.senders.get(sender).is_none_or(|r| r.uid != uid) {
            // Gone from the watch mid-reconcile: nothing of it is left to protect.
            return Ok(());
        }
        index
            .numbers
            .commit(&number_key(account, phone), sender, uid)
    }

    /// Whether the sender owns `phone` in `account` (before a deletion at Twilio).
    pub fn owns_number(&self, account: &str, phone: &str, sender: &SenderKey, uid: &str) -> bool {
        self.lock()
            .numbers
            .owns(&number_key(account, phone), sender, uid)
    }

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

    /// One of the reconcile workers `scope` may hold, if one is free: a worker waiting for an
    /// account's request budget must not leave every other account without one. Dropping the
    /// permit frees it.
    pub fn account_worker(&self, scope: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut index = self.lock();
        index
            .account(scope)
            .workers
            .clone()
            .try_acquire_owned()
            .ok()
    }

    /// Consecutive failed reconciles of `sender`.
    pub fn failures(&self, sender: &SenderKey) -> u32 {
        self.lock()
            .senders
            .get(sender)
            .map_or(0, |r| r.facts.failures)
    }

    /// The sender registered for `phone_e164` in `client`'s account, if any. A recent list may
    /// say that the number is registered; only one that began after `seen` (when the operator
    /// first saw the object asking for it) may say that it is not: someone may have registered
    /// it by hand moments before applying the object, and a create for a number waiting for
    /// its code asks Meta for a new one. `fresh` demands a list that starts now (after a
    /// 63110, say); otherwise a recent one is reused unless the number changed since it began.
    pub async fn lookup(
        &self,
        client: &TwilioClient,
        phone_e164: &str,
        fresh: bool,
        seen: Instant,
    ) -> Result<Listed, TwilioError> {
        let now = Instant::now();
        let (lists, found_since) = {
            let mut index = self.lock();
            let account = index.account(client.scope());
            let found_since = if fresh {
                now
            } else {
                let recent = now.checked_sub(self.config.lookup_reuse).unwrap_or(now);
                account
                    .number_changed_at(phone_e164)
                    .map_or(recent, |changed| changed.max(recent))
            };
            (account.lists.clone(), found_since)
        };
        let absent_since = found_since.max(seen);
        let (snapshot, listed) = lists
            .latest_where(client, |snapshot| {
                snapshot.started >= absent_since
                    || (snapshot.started >= found_since && snapshot.by_number(phone_e164).is_some())
            })
            .await?;
        Ok(Listed {
            sender: snapshot.by_number(phone_e164).cloned(),
            listed,
        })
    }

    /// `sid` as a list no older than `max_age` (and younger than the operator's last change to
    /// it) shows it. `sender: None` means the list does not have it: fetch it to tell a
    /// deleted sender from one the list missed.
    pub async fn refresh(
        &self,
        client: &TwilioClient,
        sid: &str,
        max_age: Duration,
    ) -> Result<Listed, TwilioError> {
        let now = Instant::now();
        let (lists, not_before) = {
            let mut index = self.lock();
            let account = index.account(client.scope());
            let recent = now.checked_sub(max_age).unwrap_or(now);
            let written = account.written.get(sid).copied();
            (
                account.lists.clone(),
                written.map_or(recent, |w| w.max(recent)),
            )
        };
        let (snapshot, listed) = lists
            .latest_where(client, |s| s.started >= not_before)
            .await?;
        Ok(Listed {
            sender: snapshot.by_sid(sid).cloned(),
            listed,
        })
    }

    /// The sender this operator deleted for `phone` in `scope`, and when, if it did.
    pub fn deleted_before(&self, scope: &str, phone: &str) -> Option<(String, Timestamp)> {
        self.lock().deletions.deleted_at(scope, phone)
    }

    /// `account`'s Error Log, as read so far.
    pub fn alert_log(&self, account: &str) -> std::sync::Arc<AlertLog> {
        self.lock().account(account).alerts.clone()
    }

    /// How many of `account`'s senders are settled.
    pub fn settled_count(&self, account: &str) -> usize {
        self.lock()
            .accounts
            .get(account)
            .map_or(0, |a| a.settled.len())
    }

    /// `account`'s settled senders other than `except` (a SID), to wake after a fresh list.
    pub fn settled_except(&self, account: &str, except: &str) -> Vec<SenderKey> {
        let index = self.lock();
        let Some(account) = index.accounts.get(account) else {
            return Vec::new();
        };
        account
            .settled
            .iter()
            .filter(|(sid, _)| sid.as_str() != except)
            .map(|(_, key)| key.clone())
            .collect()
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

/// `sender`'s claim on its number.
pub fn claimant_of(sender: &WhatsAppSender, key: &SenderKey, uid: &str, holds: bool) -> Claimant {
    Claimant {
        key: key.clone(),
        uid: uid.to_string(),
        created: sender.metadata.creation_timestamp.as_ref().map(|t| t.0),
        holds,
    }
}

/// `account`'s record, made on first use.
fn account_in<'a>(
    accounts: &'a mut HashMap<String, AccountRecord>,
    account: &str,
    workers: usize,
) -> &'a mut AccountRecord {
    accounts
        .entry(account.to_string())
        .or_insert_with(|| AccountRecord::new(workers))
}

impl Index {
    /// What [`State::concluded`] records.
    fn conclude(
        &mut self,
        sender: &SenderKey,
        uid: &str,
        conclusion: Conclusion,
        config: &StateConfig,
    ) -> Vec<SenderKey> {
        let index = self;
        let workers = index.workers_per_account;
        let accounts = &mut index.accounts;
        // What it learned about its account stands even if the sender went meanwhile (its
        // deletion finished and the watch's Delete came first).
        if let Some((account, sid)) = &conclusion.gone {
            account_in(accounts, account, workers).forget_sid(sid);
        }
        if let Some((account, phone, at)) = &conclusion.number_changed {
            account_in(accounts, account, workers).number_changed(phone, *at, config.lookup_reuse);
        }
        if let Some((account, sid, at)) = &conclusion.written {
            account_in(accounts, account, workers).written(sid, *at, config.resync_interval);
        }
        if let Some((account, phone, sid)) = &conclusion.deleted {
            index.deletions.deleted(account, phone, sid);
        }
        let Some(record) = index.senders.get_mut(sender).filter(|r| r.uid == uid) else {
            return Vec::new();
        };
        let facts = &mut record.facts;
        facts.failures = if conclusion.failed {
            facts.failures.saturating_add(1)
        } else {
            0
        };
        if let Some(identity) = conclusion.identity {
            facts.identity = Some(identity);
        }
        if let Some(polls) = conclusion.polls {
            facts.polls = Some(polls);
        }
        if let Some(updates) = conclusion.updates {
            facts.updates = updates;
        }
        if let Some(until) = conclusion.codes_locked_until {
            facts.codes_locked_until = Some(until);
        }
        if let Some(fingerprint) = conclusion.submitted_fingerprint {
            facts.submitted_fingerprint = Some(fingerprint);
        }

        let mut woken = Vec::new();
        if let Some((_, sid)) = &conclusion.gone
            && record.settled.as_ref().is_some_and(|(_, s)| s == sid)
        {
            record.settled = None;
        }
        if let Some(seen) = &conclusion.seen {
            let account = account_in(accounts, &seen.account, workers);
            if seen.settled {
                account.settled.insert(seen.sid.clone(), sender.clone());
                record.settled = Some((seen.account.clone(), seen.sid.clone()));
            } else {
                account.settled.remove(&seen.sid);
                record.settled = None;
            }
            if config.serial_onboarding {
                record.onboarding_in = Some(seen.account.clone());
                woken.extend(account.onboarding.observe(sender, seen.onboarding));
            }
        }
        if let Some(seen) = &conclusion.seen
            && let Some(name) = &seen.online_name
            && config.display_name_check
        {
            let account = account_in(accounts, &seen.account, workers);
            if account.names.get(name) != Some(&NameCheck::Accepted) {
                woken.extend(account.name_decided(name, NameCheck::Accepted));
            }
        }
        if let Some((account, name, message)) = &conclusion.name_rejected
            && config.display_name_check
        {
            let verdict = NameCheck::Rejected {
                by: sender.clone(),
                message: message.clone(),
            };
            woken.extend(account_in(accounts, account, workers).name_decided(name, verdict));
        }
        if conclusion.leaves_onboarding {
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
        }
        woken
    }

    fn account(&mut self, account: &str) -> &mut AccountRecord {
        account_in(&mut self.accounts, account, self.workers_per_account)
    }

    /// A sender appeared or changed: its record (new, or fresh for a recreated object) and
    /// the Secrets it reads.
    fn applied(&mut self, sender: &WhatsAppSender) -> Vec<SenderKey> {
        let key = key_of(sender);
        let uid = sender.uid().unwrap_or_default();
        let reads = secrets_of(sender);
        let mut woken = Vec::new();
        match self.senders.get(&key) {
            Some(record) if record.uid == uid => {
                if record.reads == reads {
                    self.claim_recorded(sender, &key, &uid);
                    return woken;
                }
                let old = std::mem::take(&mut self.senders.get_mut(&key).expect("present").reads);
                self.unlink(&key, &old);
            }
            // The watch missed the deletion of an older object of this name.
            Some(_) => woken = self.forget(&key),
            None => {}
        }
        for secret in &reads {
            self.secrets
                .entry(secret.clone())
                .or_default()
                .readers
                .insert(key.clone());
        }
        let record = self.senders.entry(key.clone()).or_insert_with(|| {
            Box::new(SenderRecord {
                uid: uid.clone(),
                facts: SenderFacts::new(Instant::now()),
                reads: Vec::new(),
                last_started: None,
                settled: None,
                onboarding_in: None,
                names_in: None,
                claim: None,
                scope: None,
            })
        });
        record.reads = reads;
        self.claim_recorded(sender, &key, &uid);
        woken
    }

    /// A sender whose status records an account holds its number there: it registered or
    /// adopted it, or sent a create for it. This is how the owners are known at start, from
    /// the watch's first list, before any reconcile runs.
    fn claim_recorded(&mut self, sender: &WhatsAppSender, key: &SenderKey, uid: &str) {
        let Some(account) = sender
            .status
            .as_ref()
            .and_then(|s| s.account_sid.as_deref())
        else {
            return;
        };
        let number = number_key(account, &sender.spec.phone_number);
        let Some(record) = self.senders.get_mut(key) else {
            return;
        };
        if let Some(earlier) = record.claim.replace(number.clone())
            && earlier != number
        {
            self.numbers.release(&earlier, key, uid);
        }
        self.numbers
            .claim(&number, claimant_of(sender, key, uid, true));
    }

    /// The one place a sender is forgotten: its record, its place among its Secrets' readers
    /// (a Secret no one reads any more goes, client included), its account's marks and its
    /// onboarding turn. Returns the sender to wake if the turn freed.
    fn forget(&mut self, key: &SenderKey) -> Vec<SenderKey> {
        let Some(record) = self.senders.remove(key) else {
            return Vec::new();
        };
        self.unlink(key, &record.reads);
        let next_owner = record
            .claim
            .as_ref()
            .and_then(|number| self.numbers.release(number, key, &record.uid));
        if let Some((account, sid)) = &record.settled
            && let Some(account) = self.accounts.get_mut(account)
            && account.settled.get(sid) == Some(key)
        {
            account.settled.remove(sid);
        }
        let mut woken: Vec<SenderKey> = record
            .onboarding_in
            .as_ref()
            .and_then(|account| self.accounts.get_mut(account))
            .and_then(|account| account.onboarding.leave(key))
            .into_iter()
            .chain(next_owner)
            .collect();
        if let Some(account) = record
            .names_in
            .as_ref()
            .and_then(|account| self.accounts.get_mut(account))
        {
            woken.extend(account.name_left(key));
        }
        if let Some(scope) = &record.scope {
            self.stop_using(scope);
        }
        woken
    }

    /// One sender fewer uses `scope`.
    fn stop_using(&mut self, scope: &str) {
        if let Some(users) = self.scope_users.get_mut(scope) {
            *users = users.saturating_sub(1);
        }
        self.prune(scope);
    }

    /// Drops `scope`'s record if no sender uses it: the records would otherwise only grow,
    /// one per account SID any Secret ever named.
    fn prune(&mut self, scope: &str) {
        if self.scope_users.get(scope).copied().unwrap_or(0) == 0 {
            self.scope_users.remove(scope);
            self.accounts.remove(scope);
        }
    }

    fn unlink(&mut self, key: &SenderKey, reads: &[SecretKey]) {
        for secret in reads {
            if let Some(record) = self.secrets.get_mut(secret) {
                record.readers.remove(key);
                if record.readers.is_empty() {
                    // Its client, and with it its hold on its account's budget, goes too.
                    self.secrets.remove(secret);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
