//! The `resourceVersion`s of the Secrets that senders read, kept from a metadata watch of all
//! Secrets. A client is built once per credentials version, and a code is submitted once per
//! code Secret version, so reconciles need the version without reading the Secret.
//!
//! Only Secrets some sender reads are kept. Clusters hold many other Secrets (10,000 in
//! `make bench`); caching their metadata cost 8 MiB and bought nothing. A Secret a sender starts
//! reading after the watch last saw it is read once from the API server (`learned`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher;

use super::referrers::SecretKey;

#[derive(Debug, Default)]
pub struct SecretVersions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    versions: HashMap<SecretKey, String>,
    /// The read Secrets listed since a relist began; kept ones not among them were deleted
    /// while the watch was down.
    relisted: Option<HashSet<SecretKey>>,
}

fn key_of(secret: &PartialObjectMeta<Secret>) -> SecretKey {
    (secret.namespace().unwrap_or_default(), secret.name_any())
}

impl SecretVersions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<String> {
        self.lock()
            .versions
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// A version read from the API server. One the watch delivered meanwhile is as new or
    /// newer, so it stays.
    pub fn learned(&self, namespace: &str, name: &str, version: &str) {
        self.lock()
            .versions
            .entry((namespace.to_string(), name.to_string()))
            .or_insert_with(|| version.to_string());
    }

    /// No sender reads this Secret any more.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.lock()
            .versions
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// Applies one watch event. Returns the Secrets whose readers must look again: changed,
    /// deleted, or gone while the watch was down. `is_read` says whether a sender reads one.
    pub fn observe(
        &self,
        event: &watcher::Event<PartialObjectMeta<Secret>>,
        is_read: impl Fn(&SecretKey) -> bool,
    ) -> Vec<SecretKey> {
        let mut inner = self.lock();
        match event {
            watcher::Event::Init => {
                inner.relisted = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(secret) | watcher::Event::Apply(secret) => {
                let key = key_of(secret);
                if !is_read(&key) {
                    inner.versions.remove(&key);
                    return Vec::new();
                }
                if let (watcher::Event::InitApply(_), Some(seen)) = (event, &mut inner.relisted) {
                    seen.insert(key.clone());
                }
                let version = secret.resource_version().unwrap_or_default();
                if inner.versions.get(&key) == Some(&version) {
                    return Vec::new();
                }
                inner.versions.insert(key.clone(), version);
                vec![key]
            }
            watcher::Event::Delete(secret) => {
                let key = key_of(secret);
                inner.versions.remove(&key);
                if is_read(&key) { vec![key] } else { Vec::new() }
            }
            watcher::Event::InitDone => {
                let Some(seen) = inner.relisted.take() else {
                    return Vec::new();
                };
                let gone: Vec<SecretKey> = inner
                    .versions
                    .keys()
                    .filter(|key| !seen.contains(*key))
                    .cloned()
                    .collect();
                for key in &gone {
                    inner.versions.remove(key);
                }
                gone.into_iter().filter(|key| is_read(key)).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn secret(name: &str, version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            _phantom: Default::default(),
        }
    }

    fn key(name: &str) -> SecretKey {
        ("ns".into(), name.into())
    }

    fn read_only(names: &'static [&'static str]) -> impl Fn(&SecretKey) -> bool {
        move |(_, name)| names.contains(&name.as_str())
    }

    #[test]
    fn only_secrets_that_senders_read_are_kept() {
        let versions = SecretVersions::default();
        let is_read = read_only(&["creds"]);
        let woken = versions.observe(&watcher::Event::Apply(secret("creds", "1")), &is_read);
        assert_eq!(woken, [key("creds")]);
        let woken = versions.observe(&watcher::Event::Apply(secret("other", "2")), &is_read);
        assert!(woken.is_empty());
        assert_eq!(versions.get("ns", "creds").as_deref(), Some("1"));
        assert_eq!(versions.get("ns", "other"), None);
    }

    #[test]
    fn readers_wake_only_when_the_version_changes() {
        let versions = SecretVersions::default();
        let is_read = read_only(&["creds"]);
        versions.observe(&watcher::Event::Apply(secret("creds", "1")), &is_read);
        let same = versions.observe(&watcher::Event::Apply(secret("creds", "1")), &is_read);
        assert!(same.is_empty());
        let changed = versions.observe(&watcher::Event::Apply(secret("creds", "2")), &is_read);
        assert_eq!(changed, [key("creds")]);
        let deleted = versions.observe(&watcher::Event::Delete(secret("creds", "3")), &is_read);
        assert_eq!(deleted, [key("creds")]);
        assert_eq!(versions.get("ns", "creds"), None);
    }

    #[test]
    fn a_version_read_directly_never_replaces_one_from_the_watch() {
        let versions = SecretVersions::default();
        versions.learned("ns", "code", "5");
        assert_eq!(versions.get("ns", "code").as_deref(), Some("5"));
        versions.observe(
            &watcher::Event::Apply(secret("code", "7")),
            read_only(&["code"]),
        );
        versions.learned("ns", "code", "6");
        assert_eq!(versions.get("ns", "code").as_deref(), Some("7"));
    }

    #[test]
    fn a_relist_drops_secrets_deleted_while_the_watch_was_down() {
        let versions = SecretVersions::default();
        let is_read = read_only(&["creds", "code"]);
        versions.observe(&watcher::Event::Apply(secret("creds", "1")), &is_read);
        versions.observe(&watcher::Event::Apply(secret("code", "2")), &is_read);
        versions.observe(&watcher::Event::Init, &is_read);
        versions.observe(&watcher::Event::InitApply(secret("creds", "1")), &is_read);
        let gone = versions.observe(&watcher::Event::InitDone, &is_read);
        assert_eq!(gone, [key("code")]);
        assert_eq!(versions.get("ns", "code"), None);
        assert_eq!(versions.get("ns", "creds").as_deref(), Some("1"));
    }

    #[test]
    fn a_secret_no_longer_read_is_dropped_on_its_next_event() {
        let versions = SecretVersions::default();
        versions.learned("ns", "old", "1");
        let woken = versions.observe(&watcher::Event::Apply(secret("old", "2")), |_| false);
        assert!(woken.is_empty());
        assert_eq!(versions.get("ns", "old"), None);
    }
}
