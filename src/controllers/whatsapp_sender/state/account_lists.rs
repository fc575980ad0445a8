//! What an account's lists may answer: the sender registered for a number, a sender by its SID
//! (batched refresh), the numbers this operator deleted, the Error Log read so far and the
//! settled senders to wake after a fresh list. An account's latest list is a cache of Twilio
//! that the listing reconcile replaces ([`crate::controllers::whatsapp_sender::lists::Lists`]); which list may
//! answer which question is decided here.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use super::{SenderKey, State};
use crate::controllers::whatsapp_sender::lists::Listed;
use crate::runtime::alert_log::AlertLog;
use crate::twilio::{TwilioClient, TwilioError};

impl State {
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
            let account = index.accounts.record(client.scope());
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
                    || (snapshot.started >= found_since && snapshot.has_number(phone_e164))
            })
            .await?;
        Ok(Listed {
            sender: snapshot.by_number(phone_e164),
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
            let account = index.accounts.record(client.scope());
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
            sender: snapshot.by_sid(sid),
            listed,
        })
    }

    /// The sender this operator deleted for `phone` in `scope`, and when, if it did.
    pub fn deleted_before(&self, scope: &str, phone: &str) -> Option<(String, Timestamp)> {
        self.lock().deletions.deleted_at(scope, phone)
    }

    /// `account`'s Error Log, as read so far.
    pub fn alert_log(&self, account: &str) -> Arc<AlertLog> {
        self.lock().accounts.record(account).alerts.clone()
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
        account.settled.keys_except(except)
    }
}
