//! One Twilio account's record (one scope's: see [`crate::twilio::TwilioClient::scope`]): its
//! latest list and Error Log read, the marks that say which lists may still answer for a
//! number or a sender, its settled senders (batched refresh), its onboarding turn and queue,
//! its display-name checks. The record goes when the last sender using it goes; the request
//! budget (per account, whatever the scope) and the deletions this operator made outlive it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::{self, Timestamp};
use tokio::time::Instant;

use super::SenderKey;
use super::senders::SharedNamespace;
use crate::controllers::whatsapp_sender::lists::Lists;
use crate::runtime::accounts::AccountRegistry;
use crate::runtime::alert_log::AlertLog;
use crate::twilio::sender_id_for;

#[derive(Debug)]
pub(super) struct AccountRecord {
    pub lists: Arc<Lists>,
    pub alerts: Arc<AlertLog>,
    /// Numbers whose registration changed in a way an older list may not show (a create of
    /// unknown fate, a sender found deleted), and when.
    pub numbers_changed: HashMap<String, Instant>,
    /// Senders the operator changed at Twilio (profile, webhook, code), and when: an older
    /// list shows stale fields.
    pub written: HashMap<String, Instant>,
    /// Settled senders (not moving through a Twilio step), by SID.
    pub settled: Settled,
    pub onboarding: Onboarding,
    /// Display names, by what is known of Meta's review of them in this account.
    pub names: HashMap<String, NameCheck>,
    /// When the operator last sent a registration (a create) in this account.
    pub last_registration: Option<Instant>,
    /// The reconcile workers this account may hold at once (see [`super::State::account_worker`]).
    pub workers: Arc<tokio::sync::Semaphore>,
}

/// What is known of a display name in one account. Twilio advises registering one sender first
/// to confirm that Meta accepts a name before registering others with it: a refused name
/// limits a number to 250 business-initiated messages a day, and no API can change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameCheck {
    /// `first` registers with the name (since `since`); the senders in `waiting` wait for its
    /// verdict.
    Testing {
        first: SenderKey,
        since: Instant,
        waiting: Vec<SenderKey>,
    },
    /// A sender of the account is ONLINE with it.
    Accepted,
    /// Refused over the name: the sender it was refused for, and what Twilio said.
    Rejected { by: SenderKey, message: String },
}

/// May a sender register with its display name now?
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameTurn {
    Go,
    /// Another sender checks the name first.
    Wait {
        first: SenderKey,
    },
    Rejected {
        by: SenderKey,
        message: String,
    },
}

/// The account records, by scope, each made on first use. The scope is kept once, here, and
/// shared with the records of the senders that name it ([`Accounts::shared_name`]).
#[derive(Debug, Default)]
pub(super) struct Accounts {
    records: HashMap<Arc<str>, AccountRecord>,
    /// Reconcile workers one account may hold at once
    /// ([`super::StateConfig::workers_per_account`]).
    workers: usize,
    /// What every controller shares per account (the Error Log pass).
    registry: Arc<AccountRegistry>,
}

impl Accounts {
    pub fn new(workers: usize, registry: Arc<AccountRegistry>) -> Self {
        Self {
            records: HashMap::new(),
            workers,
            registry,
        }
    }

    /// `account`'s record, made on first use.
    pub fn record(&mut self, account: &str) -> &mut AccountRecord {
        if !self.records.contains_key(account) {
            let record = AccountRecord::new(self.workers, self.registry.alert_log(account));
            self.records.insert(Arc::from(account), record);
        }
        self.records.get_mut(account).expect("just made")
    }

    /// `account`'s name as its record keeps it (the record made on first use), for a sender's
    /// record to name the account without a copy of its own.
    pub fn shared_name(&mut self, account: &str) -> Arc<str> {
        self.record(account);
        let (name, _) = self.records.get_key_value(account).expect("just made");
        name.clone()
    }

    pub fn get(&self, account: &str) -> Option<&AccountRecord> {
        self.records.get(account)
    }

    pub fn get_mut(&mut self, account: &str) -> Option<&mut AccountRecord> {
        self.records.get_mut(account)
    }

    pub fn remove(&mut self, account: &str) {
        self.records.remove(account);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

/// How long a deletion is remembered (a 63110 on the number soon after says why).
const DELETIONS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

impl AccountRecord {
    /// `alerts`: the account's Error Log, shared with the other controllers.
    pub fn new(workers: usize, alerts: Arc<AlertLog>) -> Self {
        Self {
            workers: Arc::new(tokio::sync::Semaphore::new(workers)),
            lists: Arc::new(Lists::default()),
            alerts,
            numbers_changed: HashMap::new(),
            written: HashMap::new(),
            settled: Settled::default(),
            onboarding: Onboarding::default(),
            names: HashMap::new(),
            last_registration: None,
        }
    }

    /// `sender` asks to register with display name `name`. A check held longer than
    /// `max_hold` (a first sender whose code never comes) passes to `sender`, as the
    /// onboarding turn does; the old first then waits for the verdict like the others.
    pub fn claim_name(&mut self, name: &str, sender: &SenderKey, max_hold: Duration) -> NameTurn {
        let now = Instant::now();
        match self.names.get_mut(name) {
            None => {
                self.names.insert(
                    name.to_string(),
                    NameCheck::Testing {
                        first: sender.clone(),
                        since: now,
                        waiting: Vec::new(),
                    },
                );
                NameTurn::Go
            }
            Some(NameCheck::Accepted) => NameTurn::Go,
            Some(NameCheck::Testing { first, .. }) if first == sender => NameTurn::Go,
            Some(NameCheck::Testing {
                first,
                since,
                waiting,
            }) if now - *since >= max_hold => {
                let earlier = std::mem::replace(first, sender.clone());
                *since = now;
                waiting.retain(|k| k != sender);
                waiting.push(earlier);
                NameTurn::Go
            }
            Some(NameCheck::Testing { first, waiting, .. }) => {
                if !waiting.contains(sender) {
                    waiting.push(sender.clone());
                }
                NameTurn::Wait {
                    first: first.clone(),
                }
            }
            Some(NameCheck::Rejected { by, message }) => NameTurn::Rejected {
                by: by.clone(),
                message: message.clone(),
            },
        }
    }

    /// Meta's verdict on `name`: the senders that waited for it go on.
    pub fn name_decided(&mut self, name: &str, verdict: NameCheck) -> Vec<SenderKey> {
        match self.names.insert(name.to_string(), verdict) {
            Some(NameCheck::Testing { waiting, .. }) => waiting,
            _ => Vec::new(),
        }
    }

    /// `sender` no longer registers: if it was checking a name, the check starts over with
    /// one of the senders that waited; a waiting sender leaves the queue.
    pub fn name_left(&mut self, sender: &SenderKey) -> Vec<SenderKey> {
        let mut woken = Vec::new();
        self.names.retain(|_, check| match check {
            NameCheck::Testing { first, waiting, .. } if first == sender => {
                woken.append(waiting);
                false
            }
            NameCheck::Testing { waiting, .. } => {
                waiting.retain(|k| k != sender);
                true
            }
            _ => true,
        });
        woken
    }

    /// A registration may go out now if the last one in the account was at least `interval`
    /// ago (then it counts from now); otherwise, how long is left.
    pub fn claim_registration(&mut self, interval: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        if let Some(last) = self.last_registration {
            let next = last + interval;
            if next > now {
                return Err(next - now);
            }
        }
        self.last_registration = Some(now);
        Ok(())
    }

    /// Records that `phone` changed at `at`; marks older than `keep` go.
    pub fn number_changed(&mut self, phone: &str, at: Instant, keep: Duration) {
        self.numbers_changed
            .retain(|_, t| at.saturating_duration_since(*t) < keep);
        self.numbers_changed.insert(number_key(phone), at);
    }

    /// Records that `sid` was written at `at`; marks older than `keep` go.
    pub fn written(&mut self, sid: &str, at: Instant, keep: Duration) {
        self.written
            .retain(|_, t| at.saturating_duration_since(*t) < keep);
        self.written.insert(sid.to_string(), at);
    }

    pub fn number_changed_at(&self, phone: &str) -> Option<Instant> {
        self.numbers_changed.get(&number_key(phone)).copied()
    }

    /// `sid` is no longer at Twilio as a sender of this operator.
    pub fn forget_sid(&mut self, sid: &str) {
        self.settled.remove(sid);
        self.written.remove(sid);
    }
}

/// An account's settled senders by SID, each named by its namespace (shared among them) and
/// name: a table of whole sender keys, 120 bytes a slot, took 2.4 MiB for 10,000 senders.
#[derive(Debug, Default)]
pub(super) struct Settled {
    by_sid: HashMap<Box<str>, NamedSender>,
    /// The namespace of the sender settled last, to share with the next.
    namespace: SharedNamespace,
}

/// A sender's namespace and name.
type NamedSender = (Option<Arc<str>>, Box<str>);

impl Settled {
    pub fn insert(&mut self, sid: String, sender: SenderKey) {
        let namespace = self.namespace.share(sender.namespace.as_deref());
        let name = sender.name.into_boxed_str();
        self.by_sid.insert(sid.into_boxed_str(), (namespace, name));
    }

    pub fn remove(&mut self, sid: &str) {
        self.by_sid.remove(sid);
    }

    /// Whether `sender` is the one settled as `sid`.
    pub fn holds(&self, sid: &str, sender: &SenderKey) -> bool {
        self.by_sid.get(sid).is_some_and(|(namespace, name)| {
            **name == *sender.name && namespace.as_deref() == sender.namespace.as_deref()
        })
    }

    /// The settled senders but the one settled as `except` (a SID).
    pub fn keys_except(&self, except: &str) -> Vec<SenderKey> {
        self.by_sid
            .iter()
            .filter(|&(sid, _)| &**sid != except)
            .map(|(_, (namespace, name))| {
                let key = SenderKey::new(name);
                match namespace {
                    Some(namespace) => key.within(namespace),
                    None => key,
                }
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }
}

fn number_key(phone: &str) -> String {
    sender_id_for(phone).to_ascii_lowercase()
}

/// The numbers whose sender this operator deleted, per scope: their SID and when, for a
/// month (a 63110 on the number soon after says what re-registering needs). Kept apart from
/// the account records, which go with their last sender, as a deletion often is.
#[derive(Debug, Default)]
pub(super) struct Deletions {
    by_number: HashMap<(String, String), (String, Timestamp)>,
}

impl Deletions {
    /// The operator deleted `sid`, the sender of `phone` in `scope`, just now.
    pub fn deleted(&mut self, scope: &str, phone: &str, sid: &str) {
        let now = Timestamp::now();
        let kept = jiff::SignedDuration::try_from(DELETIONS_KEPT).unwrap_or_default();
        self.by_number
            .retain(|_, (_, at)| now.duration_since(*at) < kept);
        self.by_number.insert(
            (scope.to_string(), number_key(phone)),
            (sid.to_string(), now),
        );
    }

    pub fn deleted_at(&self, scope: &str, phone: &str) -> Option<(String, Timestamp)> {
        self.by_number
            .get(&(scope.to_string(), number_key(phone)))
            .cloned()
    }
}

/// Serial onboarding: Twilio advises registering one number per account at a time and waiting
/// until it leaves CREATING / PENDING_VERIFICATION / VERIFYING before starting the next. One
/// turn; senders that find it taken queue up and are woken, in order, when it frees. A sender
/// waiting for a code nobody provides must not block its account forever, so a turn is held
/// for at most `max_hold`.
#[derive(Debug, Default)]
pub(super) struct Onboarding {
    turn: Option<Turn>,
    queue: VecDeque<SenderKey>,
}

#[derive(Debug)]
struct Turn {
    holder: SenderKey,
    since: Instant,
}

/// Why a sender may not start registering now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busy {
    /// The sender whose turn it is.
    pub holder: SenderKey,
    /// Senders ahead of this one in the queue, the holder excluded.
    pub ahead: usize,
}

impl Onboarding {
    /// Takes the turn for `sender` if it is free, already its own, or held longer than
    /// `max_hold`; otherwise queues `sender` (once) and says who holds it.
    pub fn try_start(&mut self, sender: &SenderKey, max_hold: Duration) -> Result<(), Busy> {
        let now = Instant::now();
        let free = match &self.turn {
            None => true,
            Some(turn) => &turn.holder == sender || now - turn.since >= max_hold,
        };
        if free {
            if self.turn.as_ref().is_none_or(|t| &t.holder != sender) {
                self.turn = Some(Turn {
                    holder: sender.clone(),
                    since: now,
                });
            }
            self.queue.retain(|k| k != sender);
            return Ok(());
        }
        let ahead = match self.queue.iter().position(|k| k == sender) {
            Some(position) => position,
            None => {
                self.queue.push_back(sender.clone());
                self.queue.len() - 1
            }
        };
        Err(Busy {
            holder: self.turn.as_ref().expect("turn is taken").holder.clone(),
            ahead,
        })
    }

    /// What Twilio reports for `sender`: still onboarding keeps (or, after a restart, claims)
    /// the turn; anything else ends it. Returns the sender to wake, if the turn freed.
    pub fn observe(&mut self, sender: &SenderKey, onboarding: bool) -> Option<SenderKey> {
        if onboarding {
            if self.turn.is_none() {
                self.turn = Some(Turn {
                    holder: sender.clone(),
                    since: Instant::now(),
                });
            }
            return None;
        }
        self.finish(sender)
    }

    /// `sender` no longer registers (gone, suspended, stalled): drops its turn and its place
    /// in the queue. Returns the sender to wake, if the turn freed.
    pub fn leave(&mut self, sender: &SenderKey) -> Option<SenderKey> {
        self.queue.retain(|k| k != sender);
        self.finish(sender)
    }

    fn finish(&mut self, sender: &SenderKey) -> Option<SenderKey> {
        if self.turn.as_ref().is_some_and(|t| &t.holder == sender) {
            self.turn = None;
            return self.queue.front().cloned();
        }
        None
    }

    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.turn.is_none() && self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SenderKey {
        SenderKey::new(name).within("ns")
    }

    const HOLD: Duration = Duration::from_secs(600);

    #[tokio::test(start_paused = true)]
    async fn one_sender_at_a_time() {
        let mut turns = Onboarding::default();
        assert_eq!(turns.try_start(&key("a"), HOLD), Ok(()));
        assert_eq!(turns.try_start(&key("a"), HOLD), Ok(()), "re-entrant");
        let busy = turns.try_start(&key("b"), HOLD).unwrap_err();
        assert_eq!((busy.holder, busy.ahead), (key("a"), 0));
        assert_eq!(turns.try_start(&key("c"), HOLD).unwrap_err().ahead, 1);
        assert_eq!(
            turns.try_start(&key("b"), HOLD).unwrap_err().ahead,
            0,
            "queued once"
        );
        assert_eq!(turns.observe(&key("a"), true), None, "still onboarding");
        assert_eq!(turns.observe(&key("a"), false), Some(key("b")));
        assert_eq!(turns.try_start(&key("b"), HOLD), Ok(()));
        assert_eq!(
            turns.try_start(&key("c"), HOLD).unwrap_err().holder,
            key("b")
        );
        assert_eq!(turns.leave(&key("b")), Some(key("c")));
        assert_eq!(turns.try_start(&key("c"), HOLD), Ok(()));
        assert_eq!(turns.leave(&key("c")), None);
        assert!(turns.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_held_too_long_passes_on() {
        let mut turns = Onboarding::default();
        turns.try_start(&key("a"), HOLD).unwrap();
        tokio::time::advance(HOLD - Duration::from_secs(1)).await;
        assert!(turns.try_start(&key("b"), HOLD).is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(turns.try_start(&key("b"), HOLD), Ok(()));
        assert_eq!(
            turns.observe(&key("a"), false),
            None,
            "the old holder finishing does not free b's turn"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_seen_onboarding_after_a_restart_claims_the_turn() {
        let mut turns = Onboarding::default();
        assert_eq!(turns.observe(&key("a"), true), None);
        assert_eq!(
            turns.try_start(&key("b"), HOLD).unwrap_err().holder,
            key("a")
        );
    }

    #[test]
    fn one_sender_checks_a_display_name_while_the_others_wait_for_the_verdict() {
        let mut account = AccountRecord::new(1, Default::default());
        assert_eq!(account.claim_name("Acme", &key("a"), HOLD), NameTurn::Go);
        assert_eq!(
            account.claim_name("Acme", &key("a"), HOLD),
            NameTurn::Go,
            "its own check"
        );
        assert_eq!(
            account.claim_name("Acme", &key("b"), HOLD),
            NameTurn::Wait { first: key("a") }
        );
        account.claim_name("Acme", &key("c"), HOLD);
        assert_eq!(
            account.claim_name("Other", &key("d"), HOLD),
            NameTurn::Go,
            "per name"
        );
        assert_eq!(
            account.name_decided("Acme", NameCheck::Accepted),
            [key("b"), key("c")]
        );
        assert_eq!(account.claim_name("Acme", &key("b"), HOLD), NameTurn::Go);

        let refused = NameCheck::Rejected {
            by: key("d"),
            message: "63100".into(),
        };
        account.claim_name("Other", &key("e"), HOLD);
        assert_eq!(account.name_decided("Other", refused), [key("e")]);
        assert_eq!(
            account.claim_name("Other", &key("e"), HOLD),
            NameTurn::Rejected {
                by: key("d"),
                message: "63100".into()
            }
        );
    }

    #[test]
    fn a_check_whose_first_sender_leaves_passes_to_one_that_waited() {
        let mut account = AccountRecord::new(1, Default::default());
        account.claim_name("Acme", &key("a"), HOLD);
        account.claim_name("Acme", &key("b"), HOLD);
        account.claim_name("Acme", &key("c"), HOLD);
        account.name_left(&key("c"));
        assert_eq!(account.name_left(&key("a")), [key("b")]);
        assert_eq!(account.claim_name("Acme", &key("b"), HOLD), NameTurn::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_held_too_long_passes_on_and_its_first_sender_waits() {
        let mut account = AccountRecord::new(1, Default::default());
        assert_eq!(account.claim_name("Acme", &key("a"), HOLD), NameTurn::Go);
        tokio::time::advance(HOLD - Duration::from_secs(1)).await;
        assert_eq!(
            account.claim_name("Acme", &key("b"), HOLD),
            NameTurn::Wait { first: key("a") }
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(account.claim_name("Acme", &key("b"), HOLD), NameTurn::Go);
        assert_eq!(
            account.claim_name("Acme", &key("c"), HOLD),
            NameTurn::Wait { first: key("b") }
        );
        assert_eq!(
            account.name_decided("Acme", NameCheck::Accepted),
            [key("a"), key("c")],
            "the old first sender waits for the verdict too"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn registrations_in_an_account_are_spaced_by_the_interval() {
        let mut account = AccountRecord::new(1, Default::default());
        let interval = Duration::from_secs(180);
        assert_eq!(account.claim_registration(interval), Ok(()));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            account.claim_registration(interval),
            Err(Duration::from_secs(120))
        );
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(account.claim_registration(interval), Ok(()));
        assert_eq!(
            account.claim_registration(Duration::ZERO),
            Ok(()),
            "0: no spacing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn marks_expire_and_numbers_match_in_any_form() {
        let mut account = AccountRecord::new(1, Default::default());
        let keep = Duration::from_secs(30);
        account.number_changed("+15005550001", Instant::now(), keep);
        assert!(account.number_changed_at("15005550001").is_some());
        tokio::time::advance(keep).await;
        account.number_changed("+15005550002", Instant::now(), keep);
        assert_eq!(account.numbers_changed.len(), 1, "the old mark went");
        account.written("XE1", Instant::now(), keep);
        account.settled.insert("XE1".into(), key("a"));
        account.forget_sid("XE1");
        assert!(account.written.is_empty() && account.settled.is_empty());
    }
}
