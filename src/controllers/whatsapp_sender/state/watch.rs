//! The watches that keep the index: the senders' (a record per sender, its claim on its
//! number, the Secrets it reads) and the Secrets' metadata (the version of each Secret some
//! sender reads). The one place a sender is forgotten, and with it whatever only it used.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher;

use super::admission::claimant_of;
use super::owners::{kept_key, number_key};
use super::sender::SenderRecord;
use super::{Index, SecretKey, SenderKey, State, key_of};
use crate::api::WhatsAppSender;
use crate::controllers::whatsapp_sender::otp::CodeSource;

/// The Secrets a sender reads: its credentials and, if named, its code Secret.
pub(super) fn secrets_of(sender: &WhatsAppSender) -> Vec<SecretKey> {
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

impl State {
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
                    .filter(|key| !seen.contains(key))
                    .collect();
                gone.iter().flat_map(|key| index.forget(key)).collect()
            }
        }
    }

    /// Applies one event of the Secrets' metadata watch. Returns the senders that must look
    /// again: their Secret changed, was deleted, or went while the watch was down. Secrets no
    /// sender reads are ignored (clusters hold many).
    pub fn secret_event(
        &self,
        event: &watcher::Event<PartialObjectMeta<Secret>>,
    ) -> Vec<SenderKey> {
        let mut index = self.lock();
        let changed = index.secrets.on_event(event);
        if changed.is_empty() {
            return Vec::new();
        }
        index.readers_of(|read| changed.contains(read))
    }

    /// The sender's reconcile works with a client of `scope` ([`TwilioClient::scope`]): the
    /// scope's record stays while some sender uses it.
    ///
    /// [`TwilioClient::scope`]: crate::twilio::TwilioClient::scope
    pub fn uses_scope(&self, sender: &SenderKey, uid: &str, scope: &str) {
        let mut index = self.lock();
        let index = &mut *index;
        let Some(record) = index.senders.get_mut(sender).filter(|r| r.uid == uid) else {
            return;
        };
        if record.scope.as_deref() == Some(scope) {
            return;
        }
        let shared = match index.scope_users.get_key_value(scope) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(scope),
        };
        let earlier = record.scope.replace(shared.clone());
        *index.scope_users.entry(shared).or_default() += 1;
        if let Some(earlier) = earlier {
            index.stop_using(&earlier);
        }
    }
}

impl Index {
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
                self.unlink(&old);
            }
            // The watch missed the deletion of an older object of this name.
            Some(_) => woken = self.forget(&key),
            None => {}
        }
        for secret in &reads {
            self.secrets.link(secret);
        }
        let record = self
            .senders
            .get_or_insert_with(&key, || SenderRecord::new(uid.clone()));
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
        let Some(record) = self.senders.get_mut(key) else {
            return;
        };
        let number = kept_key(
            record.claim.as_ref(),
            number_key(account, &sender.spec.phone_number),
        );
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
        self.unlink(&record.reads);
        let next_owner = record
            .claim
            .as_ref()
            .and_then(|number| self.numbers.release(number, key, &record.uid));
        if let Some((account, sid)) = &record.settled
            && let Some(account) = self.accounts.get_mut(account)
            && account.settled.holds(sid, key)
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
    pub(super) fn prune(&mut self, scope: &str) {
        if self.scope_users.get(scope).copied().unwrap_or(0) == 0 {
            self.scope_users.remove(scope);
            self.accounts.remove(scope);
        }
    }

    /// The senders that read a Secret `read` accepts.
    fn readers_of(&self, read: impl Fn(&SecretKey) -> bool) -> Vec<SenderKey> {
        self.senders
            .keys_where(|record| record.reads.iter().any(&read))
    }

    /// `reads` were linked (as [`Index::applied`] links them) and are no longer.
    fn unlink(&mut self, reads: &[SecretKey]) {
        for secret in reads {
            self.secrets.unlink(secret);
        }
    }
}
