//! Serial onboarding: Twilio advises registering one number per account at a time and waiting
//! until it leaves CREATING / PENDING_VERIFICATION / VERIFYING before starting the next. One
//! turn per account; senders that find it taken queue up and are woken, in order, when it
//! frees.
//!
//! A sender waiting for a code nobody provides must not block its account forever, so a turn
//! is held for at most `max_hold`; after that the next sender may start.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Identifies a sender (`namespace/name`, or anything unique and cheap to clone).
pub type SenderKey = kube::runtime::reflector::ObjectRef<crate::api::WhatsAppSender>;

#[derive(Debug)]
struct Turn {
    holder: SenderKey,
    since: Instant,
}

#[derive(Debug, Default)]
struct Account {
    turn: Option<Turn>,
    queue: VecDeque<SenderKey>,
}

/// The onboarding turns of every account.
#[derive(Debug)]
pub struct Onboarding {
    enabled: bool,
    max_hold: Duration,
    accounts: Mutex<HashMap<String, Account>>,
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
    pub fn new(enabled: bool, max_hold: Duration) -> Self {
        Self {
            enabled,
            max_hold,
            accounts: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the account's turn for `sender` if it is free, already its own, or held too long;
    /// otherwise queues `sender` (once) and says who holds it.
    pub fn try_start(&self, account: &str, sender: &SenderKey) -> Result<(), Busy> {
        if !self.enabled {
            return Ok(());
        }
        let mut accounts = self.lock();
        let entry = accounts.entry(account.to_string()).or_default();
        let now = Instant::now();
        let free = match &entry.turn {
            None => true,
            Some(turn) => &turn.holder == sender || now - turn.since >= self.max_hold,
        };
        if free {
            if entry.turn.as_ref().is_none_or(|t| &t.holder != sender) {
                entry.turn = Some(Turn {
                    holder: sender.clone(),
                    since: now,
                });
            }
            entry.queue.retain(|k| k != sender);
            return Ok(());
        }
        let ahead = match entry.queue.iter().position(|k| k == sender) {
            Some(position) => position,
            None => {
                entry.queue.push_back(sender.clone());
                entry.queue.len() - 1
            }
        };
        Err(Busy {
            holder: entry.turn.as_ref().expect("turn is taken").holder.clone(),
            ahead,
        })
    }

    /// Records what Twilio reports for `sender`: still onboarding keeps (or, after a restart,
    /// claims) the turn; anything else ends it. Returns the sender to wake, if the turn freed.
    pub fn observe(
        &self,
        account: &str,
        sender: &SenderKey,
        onboarding: bool,
    ) -> Option<SenderKey> {
        if !self.enabled {
            return None;
        }
        let mut accounts = self.lock();
        let entry = accounts.entry(account.to_string()).or_default();
        if onboarding {
            if entry.turn.is_none() {
                entry.turn = Some(Turn {
                    holder: sender.clone(),
                    since: Instant::now(),
                });
            }
            return None;
        }
        Self::finish(entry, sender)
    }

    /// `sender` is gone (deleted, suspended): drops its turn and its place in the queue.
    /// Returns the sender to wake, if the turn freed.
    pub fn forget(&self, account: &str, sender: &SenderKey) -> Option<SenderKey> {
        let mut accounts = self.lock();
        let entry = accounts.get_mut(account)?;
        entry.queue.retain(|k| k != sender);
        Self::finish(entry, sender)
    }

    fn finish(entry: &mut Account, sender: &SenderKey) -> Option<SenderKey> {
        if entry.turn.as_ref().is_some_and(|t| &t.holder == sender) {
            entry.turn = None;
            return entry.queue.front().cloned();
        }
        None
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
    async fn one_sender_per_account_at_a_time() {
        let turns = Onboarding::new(true, HOLD);
        assert_eq!(turns.try_start("AC1", &key("a")), Ok(()));
        assert_eq!(turns.try_start("AC1", &key("a")), Ok(()), "re-entrant");
        assert_eq!(turns.try_start("AC2", &key("x")), Ok(()), "per account");
        let busy = turns.try_start("AC1", &key("b")).unwrap_err();
        assert_eq!((busy.holder, busy.ahead), (key("a"), 0));
        assert_eq!(turns.try_start("AC1", &key("c")).unwrap_err().ahead, 1);
        assert_eq!(
            turns.try_start("AC1", &key("b")).unwrap_err().ahead,
            0,
            "queued once"
        );

        assert_eq!(
            turns.observe("AC1", &key("a"), true),
            None,
            "still onboarding"
        );
        assert_eq!(turns.observe("AC1", &key("a"), false), Some(key("b")));
        assert_eq!(turns.try_start("AC1", &key("b")), Ok(()));
        assert_eq!(
            turns.try_start("AC1", &key("c")).unwrap_err().holder,
            key("b")
        );
        assert_eq!(turns.forget("AC1", &key("b")), Some(key("c")));
        assert_eq!(turns.try_start("AC1", &key("c")), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_held_too_long_passes_on() {
        let turns = Onboarding::new(true, HOLD);
        turns.try_start("AC1", &key("a")).unwrap();
        tokio::time::advance(HOLD - Duration::from_secs(1)).await;
        assert!(turns.try_start("AC1", &key("b")).is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(turns.try_start("AC1", &key("b")), Ok(()));
        assert_eq!(
            turns.observe("AC1", &key("a"), false),
            None,
            "the old holder finishing does not free b's turn"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sender_seen_onboarding_after_a_restart_claims_the_turn() {
        let turns = Onboarding::new(true, HOLD);
        assert_eq!(turns.observe("AC1", &key("a"), true), None);
        assert_eq!(
            turns.try_start("AC1", &key("b")).unwrap_err().holder,
            key("a")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_means_no_queue() {
        let turns = Onboarding::new(false, HOLD);
        turns.try_start("AC1", &key("a")).unwrap();
        assert_eq!(turns.try_start("AC1", &key("b")), Ok(()));
        assert_eq!(turns.observe("AC1", &key("a"), false), None);
    }
}
