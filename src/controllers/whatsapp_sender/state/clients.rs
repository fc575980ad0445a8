//! The Secrets' clients: the version of each Secret some sender reads, the Twilio client built
//! from a credentials Secret's version (kept past the Secret, for deletions), and the
//! account registry whose request budget every client of an account shares.

use super::{SecretKey, State};
use crate::runtime::accounts::AccountRegistry;
use crate::twilio::TwilioClient;

impl State {
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

    /// The registry of Twilio accounts every controller shares (their request budgets).
    pub fn accounts(&self) -> &AccountRegistry {
        &self.accounts
    }
}
