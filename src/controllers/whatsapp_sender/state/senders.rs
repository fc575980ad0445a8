//! The index's sender records, by sender. A sender's key is 96 bytes (kube's `ObjectRef`,
//! with room for a UID and resourceVersion the index never sets); the table keys each record
//! by namespace (shared among the senders of one namespace) and name instead, 32 bytes, and is
//! read with the senders' keys as they are. With 10,000 senders the table of whole keys took
//! 1.7 MiB (heaptrack, `make bench`).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::SenderKey;
use super::sender::SenderRecord;

/// A sender's namespace and name, as the table keeps them.
#[derive(Debug)]
struct Name {
    namespace: Option<Arc<str>>,
    name: Box<str>,
}

impl Name {
    fn key(&self) -> SenderKey {
        let key = SenderKey::new(&self.name);
        match &self.namespace {
            Some(namespace) => key.within(namespace),
            None => key,
        }
    }
}

/// What the table is keyed by, whoever holds it: a [`Name`] or a [`SenderKey`] (which
/// compares by namespace and name alone too).
trait Named {
    fn namespace(&self) -> Option<&str>;
    fn name(&self) -> &str;
}

impl Named for Name {
    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for SenderKey {
    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl Hash for dyn Named + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace().hash(state);
        self.name().hash(state);
    }
}

impl PartialEq for dyn Named + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.namespace() == other.namespace() && self.name() == other.name()
    }
}

impl Eq for dyn Named + '_ {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn Named).hash(state);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn Named) == (other as &dyn Named)
    }
}

impl Eq for Name {}

impl<'a> Borrow<dyn Named + 'a> for Name {
    fn borrow(&self) -> &(dyn Named + 'a) {
        self
    }
}

/// The sender records, by sender.
#[derive(Debug, Default)]
pub(super) struct Senders {
    records: HashMap<Name, Box<SenderRecord>>,
    /// The namespace of the sender recorded last, to share with the next.
    namespace: SharedNamespace,
}

/// One copy of a namespace for the senders recorded one after another in it: the watch
/// delivers a namespace's senders together, so keeping the last one shares nearly all.
#[derive(Debug, Default)]
pub(super) struct SharedNamespace {
    last: Option<Arc<str>>,
}

impl SharedNamespace {
    /// `namespace`, shared with the one before if they are the same.
    pub fn share(&mut self, namespace: Option<&str>) -> Option<Arc<str>> {
        let shared = namespace.map(|namespace| match &self.last {
            Some(last) if **last == *namespace => last.clone(),
            _ => Arc::from(namespace),
        });
        self.last.clone_from(&shared);
        shared
    }
}

impl Senders {
    pub fn get(&self, key: &SenderKey) -> Option<&SenderRecord> {
        self.records.get(key as &dyn Named).map(Box::as_ref)
    }

    pub fn get_mut(&mut self, key: &SenderKey) -> Option<&mut SenderRecord> {
        self.records.get_mut(key as &dyn Named).map(Box::as_mut)
    }

    pub fn contains_key(&self, key: &SenderKey) -> bool {
        self.records.contains_key(key as &dyn Named)
    }

    pub fn remove(&mut self, key: &SenderKey) -> Option<Box<SenderRecord>> {
        self.records.remove(key as &dyn Named)
    }

    /// `key`'s record, made by `make` if there is none.
    pub fn get_or_insert_with(
        &mut self,
        key: &SenderKey,
        make: impl FnOnce() -> SenderRecord,
    ) -> &mut SenderRecord {
        if !self.contains_key(key) {
            let namespace = self.namespace.share(key.namespace.as_deref());
            let name = Name {
                namespace,
                name: key.name.as_str().into(),
            };
            self.records.insert(name, Box::new(make()));
        }
        self.get_mut(key).expect("just made")
    }

    /// The senders whose record `matches` accepts.
    pub fn keys_where(&self, matches: impl Fn(&SenderRecord) -> bool) -> Vec<SenderKey> {
        self.records
            .iter()
            .filter(|(_, record)| matches(record))
            .map(|(name, _)| name.key())
            .collect()
    }

    pub fn keys(&self) -> impl Iterator<Item = SenderKey> + '_ {
        self.records.keys().map(Name::key)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uid: &str) -> SenderRecord {
        SenderRecord::new(uid.into())
    }

    #[test]
    fn records_are_found_by_namespace_and_name_and_share_the_namespace() {
        let mut senders = Senders::default();
        let a = SenderKey::new("a").within("ns");
        let b = SenderKey::new("b").within("ns");
        senders.get_or_insert_with(&a, || record("u1"));
        senders.get_or_insert_with(&b, || record("u2"));
        senders.get_or_insert_with(&a, || record("never made"));
        assert_eq!(senders.len(), 2);
        let mut with_uid = SenderKey::new("a").within("ns");
        with_uid.extra.uid = Some("u1".into());
        assert_eq!(senders.get(&with_uid).map(|r| r.uid.as_str()), Some("u1"));
        assert!(!senders.contains_key(&SenderKey::new("a").within("other")));
        assert!(!senders.contains_key(&SenderKey::new("a")));
        let mut keys: Vec<SenderKey> = senders.keys().collect();
        keys.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(keys, [a.clone(), b.clone()]);
        let namespaces: Vec<_> = senders
            .records
            .keys()
            .map(|n| n.namespace.clone())
            .collect();
        assert!(Arc::ptr_eq(
            namespaces[0].as_ref().unwrap(),
            namespaces[1].as_ref().unwrap()
        ));
        assert_eq!(senders.keys_where(|r| r.uid == "u2"), [b]);
        assert!(senders.remove(&a).is_some());
        assert!(senders.get(&a).is_none());
    }
}
