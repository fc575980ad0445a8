//! One Secret's record: the version last seen, how many senders read it, and the Twilio client
//! built from it (credentials Secrets only).
//!
//! Secret data is never kept, only the version: a client is built once per credentials
//! version, and a code is submitted once per code Secret version. The last client outlives the
//! Secret itself, for deletions: when a namespace is deleted its Secrets go at once while its
//! senders wait on the operator's finalizer, and a Terminating namespace accepts no new
//! Secret. The record (client included) goes with its last reader.

use crate::twilio::TwilioClient;

#[derive(Debug, Default)]
pub(super) struct SecretRecord {
    /// The `resourceVersion` last seen, by the watch or a read; `None` while it does not exist.
    pub version: Option<String>,
    /// How many senders read it: the record goes with the last. Which senders they are is
    /// found in their records when the Secret changes, which is rare; a set of their keys per
    /// Secret took 2 MiB with 10,000 senders reading 10 Secrets (heaptrack, `make bench`).
    pub readers: usize,
    /// The client built from the credentials of one version.
    pub client: Option<(String, TwilioClient)>,
}

impl SecretRecord {
    /// The client built from the version seen last, if there is one.
    pub fn current_client(&self) -> Option<&TwilioClient> {
        let version = self.version.as_deref()?;
        self.client_at(version)
    }

    pub fn client_at(&self, version: &str) -> Option<&TwilioClient> {
        self.client
            .as_ref()
            .filter(|(built_from, _)| built_from == version)
            .map(|(_, client)| client)
    }
}
