//! Who may go ahead now: a reconcile's share of its account's workers, its account's
//! onboarding turn, its display name's check and the spacing of registrations, and the one
//! owner of each number in each account (`owners`).

use std::time::Duration;

use super::owners::{kept_key, number_key};
use super::{Busy, Claimant, NameTurn, Ownership, SenderKey, State};
use crate::api::WhatsAppSender;

/// `sender`'s claim on its number.
pub fn claimant_of(sender: &WhatsAppSender, key: &SenderKey, uid: &str, holds: bool) -> Claimant {
    Claimant {
        key: key.clone(),
        uid: uid.to_string(),
        created: sender.metadata.creation_timestamp.as_ref().map(|t| t.0),
        holds,
    }
}

impl State {
    /// One of the reconcile workers `scope` may hold, if one is free: a worker waiting for an
    /// account's request budget must not leave every other account without one. Dropping the
    /// permit frees it.
    pub fn account_worker(&self, scope: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut index = self.lock();
        index
            .accounts
            .record(scope)
            .workers
            .clone()
            .try_acquire_owned()
            .ok()
    }

    /// Takes `account`'s onboarding turn for `sender` if it is free (or its own), else queues
    /// it and says who holds the turn.
    pub fn claim_turn(&self, account: &str, sender: &SenderKey) -> Result<(), Busy> {
        if !self.config.serial_onboarding {
            return Ok(());
        }
        let mut index = self.lock();
        let index = &mut *index;
        if !index.senders.contains_key(sender) {
            return Ok(());
        }
        let shared = index.accounts.shared_name(account);
        if let Some(record) = index.senders.get_mut(sender) {
            record.onboarding_in = Some(shared);
        }
        index
            .accounts
            .record(account)
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
        if !index.senders.contains_key(sender) {
            return NameTurn::Go;
        }
        let shared = index.accounts.shared_name(account);
        if let Some(record) = index.senders.get_mut(sender) {
            record.names_in = Some(shared);
        }
        index
            .accounts
            .record(account)
            .claim_name(name, sender, self.config.onboarding_max_hold)
    }

    /// A registration in `account` may go out now (it then counts as sent), or after how long.
    pub fn claim_registration(&self, account: &str) -> Result<(), Duration> {
        let interval = self.config.registration_interval;
        if interval.is_zero() {
            return Ok(());
        }
        self.lock()
            .accounts
            .record(account)
            .claim_registration(interval)
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
        let Some(record) = index
            .senders
            .get_mut(&claimant.key)
            .filter(|r| r.uid == claimant.uid)
        else {
            return (Ownership::Mine, Vec::new());
        };
        let number = kept_key(record.claim.as_ref(), number_key(account, phone));
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
}
