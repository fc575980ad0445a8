//! The Secrets' clients: the version of each Secret some sender reads, and the Twilio client
//! built from a credentials Secret's version (kept past the Secret, for deletions), which the
//! account registry keeps for every controller that reads the Secret.

use std::sync::Arc;

use super::{SecretKey, State};
use crate::runtime::accounts::AccountRegistry;
use crate::runtime::clients::ClientSlot;
use crate::twilio::TwilioClient;

impl State {
    /// A reconcile read the Secret itself (the watch had not shown it yet).
    pub fn secret_read(&self, key: &SecretKey, version: &str) {
        self.lock().secrets.read(key, version);
    }

    /// A client was built from the credentials in version `version` of Secret `key`.
    pub fn client_built(&self, key: &SecretKey, version: &str, client: TwilioClient) {
        let slot = self.accounts.client_slot(key);
        slot.built(version, client);
        self.lock().secrets.hold_clients(key, slot);
    }

    /// The Secret's version as last seen, if it exists.
    pub fn secret_version(&self, key: &SecretKey) -> Option<String> {
        self.lock().secrets.version(key)
    }

    /// The client built from the Secret's current version.
    pub fn current_client(&self, key: &SecretKey) -> Option<TwilioClient> {
        let version = self.secret_version(key)?;
        self.client_at(key, &version)
    }

    /// The client built from version `version`, by this controller or another.
    pub fn client_at(&self, key: &SecretKey, version: &str) -> Option<TwilioClient> {
        self.clients_of(key)?.at(version)
    }

    /// The client last built from the Secret, whatever it holds now or whether it still
    /// exists: for deleting senders whose Secret is gone.
    pub fn last_client(&self, key: &SecretKey) -> Option<TwilioClient> {
        self.clients_of(key)?.last()
    }

    /// The registry's clients of Secret `key`: the index's, or another controller's (then held
    /// by the index too, while a sender reads the Secret).
    fn clients_of(&self, key: &SecretKey) -> Option<Arc<ClientSlot>> {
        if let Some(slot) = self.lock().secrets.clients(key) {
            return Some(slot);
        }
        let slot = self.accounts.existing_client_slot(key)?;
        self.lock().secrets.hold_clients(key, slot.clone());
        Some(slot)
    }

    /// The registry of Twilio accounts every controller shares (their request budgets).
    pub fn accounts(&self) -> &AccountRegistry {
        &self.accounts
    }
}
