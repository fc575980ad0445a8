//! Which senders read which Secrets (credentials and codes), so that a Secret change wakes
//! exactly the senders that use it: a new code is submitted at once, fixed credentials take
//! effect at once. Kept up to date from the senders' watch stream.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::ResourceExt;

use super::onboarding::SenderKey;
use super::otp::CodeSource;
use crate::api::WhatsAppSender;

/// A Secret by namespace and name.
pub type SecretKey = (String, String);

#[derive(Debug, Default)]
struct Index {
    by_secret: HashMap<SecretKey, HashSet<SenderKey>>,
    by_sender: HashMap<SenderKey, Vec<SecretKey>>,
}

#[derive(Debug, Default)]
pub struct Referrers {
    index: Mutex<Index>,
}

/// The Secrets a sender reads.
pub fn secrets_of(sender: &WhatsAppSender) -> Vec<SecretKey> {
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

impl Referrers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records (or replaces) what `sender` reads.
    pub fn observe(&self, sender: &WhatsAppSender) {
        let key = SenderKey::from_obj(sender);
        let secrets = secrets_of(sender);
        let mut index = self.lock();
        if index.by_sender.get(&key) == Some(&secrets) {
            return;
        }
        Self::remove(&mut index, &key);
        for secret in &secrets {
            index
                .by_secret
                .entry(secret.clone())
                .or_default()
                .insert(key.clone());
        }
        index.by_sender.insert(key, secrets);
    }

    /// `sender` is gone.
    pub fn forget(&self, key: &SenderKey) {
        Self::remove(&mut self.lock(), key);
    }

    fn remove(index: &mut Index, key: &SenderKey) {
        for secret in index.by_sender.remove(key).unwrap_or_default() {
            if let Some(senders) = index.by_secret.get_mut(&secret) {
                senders.remove(key);
                if senders.is_empty() {
                    index.by_secret.remove(&secret);
                }
            }
        }
    }

    /// Whether any sender reads this Secret. Asked for every Secret event in the cluster, so
    /// it takes the key as is.
    pub fn is_read(&self, secret: &SecretKey) -> bool {
        self.lock().by_secret.contains_key(secret)
    }

    /// The senders that read Secret `name` in `namespace`.
    pub fn of_secret(&self, namespace: &str, name: &str) -> Vec<SenderKey> {
        self.lock()
            .by_secret
            .get(&(namespace.to_string(), name.to_string()))
            .map(|senders| senders.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sender(name: &str, credentials: &str, code: Option<&str>) -> WhatsAppSender {
        let mut spec = json!({
            "phoneNumber": "+15017122661",
            "credentialsRef": {"name": credentials},
            "profile": {"name": "Acme"},
        });
        if let Some(code) = code {
            spec["verification"] = json!({"codeSecretRef": {"name": code, "key": "code"}});
        }
        serde_json::from_value(json!({
            "apiVersion": "messaging.senderops.io/v1alpha1",
            "kind": "WhatsAppSender",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn names(mut keys: Vec<SenderKey>) -> Vec<String> {
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        keys.into_iter().map(|k| k.name).collect()
    }

    #[test]
    fn secrets_map_back_to_their_senders() {
        let referrers = Referrers::default();
        referrers.observe(&sender("a", "twilio", Some("otp-a")));
        referrers.observe(&sender("b", "twilio", None));
        assert_eq!(names(referrers.of_secret("ns", "twilio")), ["a", "b"]);
        assert_eq!(names(referrers.of_secret("ns", "otp-a")), ["a"]);
        assert!(referrers.of_secret("other", "twilio").is_empty());
        assert!(referrers.is_read(&("ns".into(), "otp-a".into())));
        assert!(!referrers.is_read(&("other".into(), "twilio".into())));

        referrers.observe(&sender("a", "twilio", Some("otp-a2")));
        assert!(
            referrers.of_secret("ns", "otp-a").is_empty(),
            "spec changed"
        );
        assert_eq!(names(referrers.of_secret("ns", "otp-a2")), ["a"]);

        referrers.forget(&SenderKey::new("a").within("ns"));
        assert_eq!(names(referrers.of_secret("ns", "twilio")), ["b"]);
        assert!(referrers.of_secret("ns", "otp-a2").is_empty());
    }

    #[test]
    fn one_secret_for_both_is_listed_once() {
        assert_eq!(secrets_of(&sender("a", "s", Some("s"))).len(), 1);
    }
}
