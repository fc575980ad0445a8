//! The Secrets a controller's objects read, by namespace and name: each one's version as last
//! seen, how many objects read it, and the registry's clients built from it (credentials
//! Secrets only). Every controller keeps one such index, fed by its Secrets' metadata watch
//! ([`super::controller::secret_changes`]); it says which Secrets changed, and the kind finds
//! their readers in its own records.
//!
//! Secret data is never kept, only the version: a client is built once per credentials
//! version, and a code is submitted once per code Secret version. The last client outlives the
//! Secret itself, for deletions: when a namespace is deleted its Secrets go at once while its
//! objects wait on the operator's finalizer, and a Terminating namespace accepts no new Secret.
//! A record goes with its last reader; the client lives in the account registry, shared with
//! every controller that reads the Secret, while some record holds it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher;

use super::clients::{ClientSlot, SecretKey};

#[derive(Debug, Default)]
struct SecretRecord {
    /// The `resourceVersion` last seen, by the watch or a read; `None` while it does not exist.
    version: Option<String>,
    /// How many objects read it: the record goes with the last. Which objects they are is
    /// found in their records when the Secret changes, which is rare; a set of their keys per
    /// Secret took 2 MiB with 10,000 senders reading 10 Secrets (heaptrack, `make bench`).
    readers: usize,
    /// The registry's clients of this Secret, held while an object reads it (from the first
    /// client built or looked up).
    clients: Option<Arc<ClientSlot>>,
}

/// The Secrets one controller's objects read.
#[derive(Debug, Default)]
pub struct SecretIndex {
    records: HashMap<SecretKey, SecretRecord>,
    /// The Secrets a relist has shown so far, while one runs.
    relisted: Option<HashSet<SecretKey>>,
}

/// A Secret's key as the watch shows it.
fn key_of(secret: &PartialObjectMeta<Secret>) -> SecretKey {
    (secret.namespace().unwrap_or_default(), secret.name_any())
}

impl SecretIndex {
    /// One more object reads `key`.
    pub fn link(&mut self, key: &SecretKey) {
        self.records.entry(key.clone()).or_default().readers += 1;
    }

    /// One object no longer reads `key`. With its last reader the record goes, and with it its
    /// hold on the Secret's clients (and their hold on their account's budget).
    pub fn unlink(&mut self, key: &SecretKey) {
        if let Some(record) = self.records.get_mut(key) {
            record.readers = record.readers.saturating_sub(1);
            if record.readers == 0 {
                self.records.remove(key);
            }
        }
    }

    /// Applies one event of the Secrets' metadata watch; returns the Secrets read here that
    /// changed, were deleted, or went while the watch was down. Secrets nobody reads are
    /// ignored (clusters hold many).
    pub fn on_event(
        &mut self,
        event: &watcher::Event<PartialObjectMeta<Secret>>,
    ) -> Vec<SecretKey> {
        match event {
            watcher::Event::Init => {
                self.relisted = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(secret) | watcher::Event::Apply(secret) => {
                let key = key_of(secret);
                let Some(record) = self.records.get_mut(&key) else {
                    return Vec::new();
                };
                let version = secret.resource_version();
                let changed = record.version != version;
                record.version = version;
                if let (watcher::Event::InitApply(_), Some(seen)) = (event, self.relisted.as_mut())
                {
                    seen.insert(key.clone());
                }
                if changed { vec![key] } else { Vec::new() }
            }
            watcher::Event::Delete(secret) => {
                let key = key_of(secret);
                let Some(record) = self.records.get_mut(&key) else {
                    return Vec::new();
                };
                record.version = None;
                vec![key]
            }
            watcher::Event::InitDone => {
                let Some(seen) = self.relisted.take() else {
                    return Vec::new();
                };
                let mut gone = Vec::new();
                for (key, record) in &mut self.records {
                    if record.version.is_some() && !seen.contains(key) {
                        record.version = None;
                        gone.push(key.clone());
                    }
                }
                gone
            }
        }
    }

    /// A reconcile read the Secret itself (the watch had not shown it yet). A version the
    /// watch delivered meanwhile is as new or newer, so it stays.
    pub fn read(&mut self, key: &SecretKey, version: &str) {
        if let Some(record) = self.records.get_mut(key)
            && record.version.is_none()
        {
            record.version = Some(version.to_string());
        }
    }

    /// The Secret's version as last seen, if it exists.
    pub fn version(&self, key: &SecretKey) -> Option<String> {
        self.records.get(key)?.version.clone()
    }

    /// The registry's clients of `key` this index holds.
    pub fn clients(&self, key: &SecretKey) -> Option<Arc<ClientSlot>> {
        self.records.get(key)?.clients.clone()
    }

    /// Holds `slot` while some object reads `key`.
    pub fn hold_clients(&mut self, key: &SecretKey, slot: Arc<ClientSlot>) {
        if let Some(record) = self.records.get_mut(key) {
            record.clients = Some(slot);
        }
    }

    /// Secrets some object reads.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMetaExt;

    use super::*;

    fn secret(name: &str, version: &str) -> PartialObjectMeta<Secret> {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team".into()),
            resource_version: Some(version.into()),
            ..Default::default()
        }
        .into_response_partial()
    }

    fn key(name: &str) -> SecretKey {
        ("team".into(), name.into())
    }

    #[test]
    fn only_read_secrets_are_followed_and_a_relist_notices_one_that_went() {
        let mut index = SecretIndex::default();
        index.link(&key("twilio"));
        index.link(&key("twilio"));
        let applied = |index: &mut SecretIndex, name, version| {
            index.on_event(&watcher::Event::Apply(secret(name, version)))
        };
        assert!(applied(&mut index, "unrelated", "1").is_empty());
        assert_eq!(applied(&mut index, "twilio", "1"), [key("twilio")]);
        assert!(applied(&mut index, "twilio", "1").is_empty(), "no change");
        assert_eq!(index.version(&key("twilio")).as_deref(), Some("1"));

        index.on_event(&watcher::Event::Init);
        assert_eq!(
            index.on_event(&watcher::Event::InitDone),
            [key("twilio")],
            "gone while the watch was down"
        );
        assert_eq!(index.version(&key("twilio")), None);

        index.unlink(&key("twilio"));
        assert_eq!(index.len(), 1, "one reader left");
        index.unlink(&key("twilio"));
        assert!(index.is_empty());
    }
}
