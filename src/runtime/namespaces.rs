//! Watching several namespaces (`senderops run --namespace a,b`) as if they were one.
//!
//! The API server watches one namespace or all of them, so a list of namespaces takes one
//! watcher per namespace. Their events cannot simply be merged into one stream: each watcher
//! (re)lists its namespace as `Init`, `InitApply`…, `InitDone`, and everything downstream reads
//! that as "the whole world is being relisted". kube's reflector store swaps its contents for
//! what came between `Init` and `InitDone` (`Writer::apply_watcher_event`), and the state
//! forgets every sender and Secret version a relist did not show (`State::sender_event`,
//! `State::secret_event`): merged as they are, a relist of namespace `a` (after an API server
//! restart, an expired resourceVersion) would empty the cache of namespace `b`, forget its
//! senders' claims on their numbers and their onboarding turns, and an `Init` of one watcher
//! in the middle of another's list would drop the objects the other had listed so far.
//!
//! One store per namespace is no way out: `Controller::for_stream` (and `for_shared_stream`, and
//! `new_with`, which watches one `Api`) reads one store, and one controller per namespace would
//! split the workers, the wake-ups and the Secret triggers that `run()` gives one controller.
//! So [`merged`] rewrites the per-namespace events into the events of one watcher of all the
//! listed namespaces:
//!
//! - **The first list** is one `Init`, every object the namespaces listed as `InitApply`, and
//!   one `InitDone`, once each namespace has listed once. Until then the objects are held here
//!   (changes to a namespace listed early applied to them), so the store is ready, and the
//!   owners of numbers are known, only when every watched namespace is, as with one watcher of
//!   all namespaces (the README: "the owners are known from the watch's first list, before
//!   anything is reconciled, in every namespace the operator watches").
//! - **A later relist of one namespace** is `Apply` for each object it lists and, when it ends,
//!   `Delete` for each object of that namespace seen before and not listed again: the change the
//!   relist stands for, and no more. Other namespaces are never touched.
//!
//! With one namespace, or all of them, the one watcher's events pass through unchanged. The cost
//! of several: the names of each namespace's objects (to know what a relist no longer shows),
//! and until the first list is complete, its objects. A namespace whose first list keeps
//! failing holds the others back, as a failing list of all namespaces would.

use std::collections::{HashMap, HashSet};

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

/// Why a `--namespace` value is not a namespace name.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a namespace name: at most 63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit (an RFC 1123 label)"
        ))
    }
}

/// The namespaces to watch, each once and in the order given; empty ones are left out (none
/// at all: every namespace).
pub fn normalise(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && seen.insert(name.clone()))
        .collect()
}

/// One `Api` per namespace, or one for all of them when `namespaces` is empty.
pub fn apis<K>(client: &Client, namespaces: &[String]) -> Vec<Api<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    if namespaces.is_empty() {
        return vec![Api::all(client.clone())];
    }
    namespaces
        .iter()
        .map(|ns| Api::namespaced(client.clone(), ns))
        .collect()
}

type Event<K> = Result<watcher::Event<K>, watcher::Error>;

/// The events of `watchers` (one per namespace of `namespaces`, in that order; or a single one)
/// as one watcher's (see the module's documentation). `tombstone(namespace, name)` gives an
/// object to put in the `Delete` of an object a relist no longer shows (only its namespace and
/// name are read downstream), or `None` if nothing downstream holds it. `what` names the
/// watched objects in logs.
pub fn merged<K, S>(
    what: &'static str,
    namespaces: &[String],
    mut watchers: Vec<S>,
    tombstone: impl FnMut(&str, &str) -> Option<K> + Send + 'static,
) -> BoxStream<'static, Event<K>>
where
    K: Resource + Clone + Send + 'static,
    S: Stream<Item = Event<K>> + Send + 'static,
{
    if watchers.len() == 1 {
        return watchers.remove(0).boxed();
    }
    assert_eq!(
        watchers.len(),
        namespaces.len(),
        "one watcher per namespace"
    );
    let tagged = watchers
        .into_iter()
        .enumerate()
        .map(|(i, watcher)| watcher.map(move |event| (i, event)).boxed());
    let merge = Merge::new(what, namespaces.to_vec(), tombstone);
    stream::select_all(tagged)
        .scan(merge, |merge, (i, event)| {
            futures::future::ready(Some(merge.on(i, event)))
        })
        .flat_map(stream::iter)
        .boxed()
}

/// The rewriting of [`merged`], one namespace's event at a time.
pub(crate) struct Merge<K, F> {
    what: &'static str,
    namespaces: Vec<String>,
    /// Until every namespace has listed once: each namespace's objects by name, and whether
    /// its list is complete.
    first: Option<Vec<(HashMap<String, K>, bool)>>,
    /// After that: the names downstream holds, per namespace.
    known: Vec<HashSet<String>>,
    /// The names a namespace's relist has shown so far, while it relists.
    relisting: Vec<Option<HashSet<String>>>,
    tombstone: F,
}

impl<K, F> Merge<K, F>
where
    K: Resource + Clone,
    F: FnMut(&str, &str) -> Option<K>,
{
    pub(crate) fn new(what: &'static str, namespaces: Vec<String>, tombstone: F) -> Self {
        let n = namespaces.len();
        Merge {
            what,
            namespaces,
            first: Some((0..n).map(|_| (HashMap::new(), false)).collect()),
            known: vec![HashSet::new(); n],
            relisting: vec![None; n],
            tombstone,
        }
    }

    /// The events that stand for `event` of namespace `i`'s watcher.
    pub(crate) fn on(&mut self, i: usize, event: Event<K>) -> Vec<Event<K>> {
        let event = match event {
            Ok(event) => event,
            Err(err) => return vec![Err(err)],
        };
        match self.first.as_mut() {
            Some(first) => {
                let (objects, listed) = &mut first[i];
                match event {
                    watcher::Event::Init => {
                        objects.clear();
                        *listed = false;
                    }
                    watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                        objects.insert(obj.name_any(), obj);
                    }
                    watcher::Event::Delete(obj) => {
                        objects.remove(&obj.name_any());
                    }
                    watcher::Event::InitDone => {
                        *listed = true;
                        if first.iter().all(|(_, listed)| *listed) {
                            return self.first_list_done();
                        }
                    }
                }
                Vec::new()
            }
            None => self.watching(i, event),
        }
    }

    /// Every namespace has listed: the first list, as one.
    fn first_list_done(&mut self) -> Vec<Event<K>> {
        let first = self.first.take().unwrap_or_default();
        let mut events = vec![Ok(watcher::Event::Init)];
        for (i, (objects, _)) in first.into_iter().enumerate() {
            self.known[i] = objects.keys().cloned().collect();
            events.extend(
                objects
                    .into_values()
                    .map(|obj| Ok(watcher::Event::InitApply(obj))),
            );
        }
        events.push(Ok(watcher::Event::InitDone));
        events
    }

    fn watching(&mut self, i: usize, event: watcher::Event<K>) -> Vec<Event<K>> {
        match event {
            watcher::Event::Init => {
                tracing::debug!(
                    watch = self.what,
                    namespace = %self.namespaces[i],
                    "relisting a namespace"
                );
                self.relisting[i] = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(obj) => {
                let name = obj.name_any();
                self.relisting[i]
                    .get_or_insert_with(HashSet::new)
                    .insert(name.clone());
                self.known[i].insert(name);
                vec![Ok(watcher::Event::Apply(obj))]
            }
            watcher::Event::Apply(obj) => {
                self.known[i].insert(obj.name_any());
                vec![Ok(watcher::Event::Apply(obj))]
            }
            watcher::Event::Delete(obj) => {
                self.known[i].remove(&obj.name_any());
                vec![Ok(watcher::Event::Delete(obj))]
            }
            watcher::Event::InitDone => {
                let Some(listed) = self.relisting[i].take() else {
                    return Vec::new();
                };
                let gone: Vec<String> = self.known[i].difference(&listed).cloned().collect();
                self.known[i] = listed;
                let namespace = &self.namespaces[i];
                tracing::debug!(
                    watch = self.what,
                    namespace = %namespace,
                    listed = self.known[i].len(),
                    gone = gone.len(),
                    "relisted a namespace"
                );
                gone.iter()
                    .filter_map(|name| (self.tombstone)(namespace, name))
                    .map(|obj| Ok(watcher::Event::Delete(obj)))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::{self, store::Writer};
    use serde_json::json;

    use super::*;

    fn object(ns: &str, name: &str, version: &str) -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "resourceVersion": version},
        }))
        .unwrap()
    }

    fn tombstone(ns: &str, name: &str) -> Option<ConfigMap> {
        Some(object(ns, name, ""))
    }

    const NAMESPACES: [&str; 2] = ["a", "b"];

    type Tombstone = fn(&str, &str) -> Option<ConfigMap>;

    fn merge() -> Merge<ConfigMap, Tombstone> {
        Merge::new(
            "objects",
            NAMESPACES.iter().map(|n| n.to_string()).collect(),
            tombstone as Tombstone,
        )
    }

    fn index(ns: &str) -> usize {
        NAMESPACES.iter().position(|n| *n == ns).unwrap()
    }

    /// Feeds `events` (namespace, event) and applies what comes out to `writer`, as the
    /// reflector does; returns what came out, as text.
    fn feed(
        merge: &mut Merge<ConfigMap, Tombstone>,
        writer: &mut Writer<ConfigMap>,
        events: Vec<(&str, watcher::Event<ConfigMap>)>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (ns, event) in events {
            for event in merge.on(index(ns), Ok(event)) {
                let event = event.expect("no errors here");
                writer.apply_watcher_event(&event);
                out.push(describe(&event));
            }
        }
        out
    }

    fn describe(event: &watcher::Event<ConfigMap>) -> String {
        let id = |o: &ConfigMap| {
            format!(
                "{}/{}@{}",
                o.namespace().unwrap(),
                o.name_any(),
                o.resource_version().unwrap_or_default()
            )
        };
        match event {
            watcher::Event::Init => "Init".into(),
            watcher::Event::InitApply(o) => format!("InitApply {}", id(o)),
            watcher::Event::InitDone => "InitDone".into(),
            watcher::Event::Apply(o) => format!("Apply {}", id(o)),
            watcher::Event::Delete(o) => {
                format!("Delete {}/{}", o.namespace().unwrap(), o.name_any())
            }
        }
    }

    /// The store's objects as `ns/name@version`, sorted.
    fn contents(store: &reflector::Store<ConfigMap>) -> Vec<String> {
        let mut all: Vec<String> = store
            .state()
            .iter()
            .map(|o| {
                format!(
                    "{}/{}@{}",
                    o.namespace().unwrap(),
                    o.name_any(),
                    o.resource_version().unwrap()
                )
            })
            .collect();
        all.sort();
        all
    }

    fn list(ns: &str, objects: &[(&str, &str)]) -> Vec<(&'static str, watcher::Event<ConfigMap>)> {
        let ns: &'static str = NAMESPACES[index(ns)];
        let mut events = vec![(ns, watcher::Event::Init)];
        for (name, version) in objects {
            events.push((ns, watcher::Event::InitApply(object(ns, name, version))));
        }
        events.push((ns, watcher::Event::InitDone));
        events
    }

    #[test]
    fn namespace_names_are_rfc_1123_labels() {
        for good in ["a", "team-a", "0", "a0-b", &"x".repeat(63)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Team",
            "team_a",
            "-a",
            "a-",
            "a.b",
            "a b",
            &"x".repeat(64),
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(err.contains("is not a namespace name"), "{bad}: {err}");
        }
    }

    #[test]
    fn namespaces_are_kept_once_in_order_and_empty_ones_left_out() {
        let names = |v: &[&str]| normalise(v.iter().map(|s| s.to_string()));
        assert_eq!(names(&["b", "a", "b", " a ", ""]), ["b", "a"]);
        assert!(names(&[""]).is_empty(), "empty: every namespace");
        assert!(names(&[]).is_empty());
    }

    #[test]
    fn the_first_list_ends_once_every_namespace_has_listed_once() {
        let mut merge = merge();
        let mut writer = Writer::<ConfigMap>::default();
        let store = writer.as_reader();
        let mut events = list("a", &[("a1", "1"), ("a2", "2")]);
        // a's list is done, b's not: changes in a are held with its list.
        events.push(("a", watcher::Event::Apply(object("a", "a1", "3"))));
        events.push(("a", watcher::Event::Delete(object("a", "a2", "4"))));
        events.push(("a", watcher::Event::Apply(object("a", "a3", "5"))));
        // b's list fails half-way and starts over: what it listed first is dropped.
        events.push(("b", watcher::Event::Init));
        events.push(("b", watcher::Event::InitApply(object("b", "stale", "6"))));
        assert!(feed(&mut merge, &mut writer, events).is_empty());
        assert!(store.state().is_empty());

        let out = feed(&mut merge, &mut writer, list("b", &[("b1", "7")]));
        assert_eq!(out.first().map(String::as_str), Some("Init"));
        assert_eq!(out.last().map(String::as_str), Some("InitDone"));
        assert_eq!(out.len(), 5, "{out:?}");
        assert_eq!(contents(&store), ["a/a1@3", "a/a3@5", "b/b1@7"]);
        assert!(
            futures::FutureExt::now_or_never(store.wait_until_ready()).is_some(),
            "the store is ready"
        );
    }

    #[test]
    fn a_relist_of_one_namespace_changes_that_namespace_only() {
        let mut merge = merge();
        let mut writer = Writer::<ConfigMap>::default();
        let store = writer.as_reader();
        let mut events = list("a", &[("a1", "1"), ("a2", "2")]);
        events.extend(list("b", &[("b1", "3")]));
        feed(&mut merge, &mut writer, events);
        assert_eq!(contents(&store), ["a/a1@1", "a/a2@2", "b/b1@3"]);

        // a relists (its watch expired): a2 went and a4 came meanwhile. b's watch carries on
        // in the middle of it.
        let mut events = vec![("a", watcher::Event::Init)];
        events.push(("a", watcher::Event::InitApply(object("a", "a1", "1"))));
        events.push(("b", watcher::Event::Apply(object("b", "b2", "5"))));
        events.push(("a", watcher::Event::InitApply(object("a", "a4", "6"))));
        events.push(("a", watcher::Event::InitDone));
        let out = feed(&mut merge, &mut writer, events);
        assert_eq!(
            out,
            [
                "Apply a/a1@1",
                "Apply b/b2@5",
                "Apply a/a4@6",
                "Delete a/a2"
            ]
        );
        assert_eq!(contents(&store), ["a/a1@1", "a/a4@6", "b/b1@3", "b/b2@5"]);

        // b relists and shows nothing: b's objects go, a's stay.
        let out = feed(&mut merge, &mut writer, list("b", &[]));
        let mut out = out;
        out.sort();
        assert_eq!(out, ["Delete b/b1", "Delete b/b2"]);
        assert_eq!(contents(&store), ["a/a1@1", "a/a4@6"]);

        // A relist interrupted and started over counts only what the last attempt listed.
        let mut events = vec![("a", watcher::Event::Init)];
        events.push(("a", watcher::Event::InitApply(object("a", "a1", "1"))));
        events.extend(list("a", &[("a4", "6")]));
        let out = feed(&mut merge, &mut writer, events);
        assert_eq!(out.last().map(String::as_str), Some("Delete a/a1"));
        assert_eq!(contents(&store), ["a/a4@6"]);
    }

    #[test]
    fn errors_pass_through_as_they_come() {
        let mut merge = merge();
        let out = merge.on(1, Err(watcher::Error::NoResourceVersion));
        assert!(matches!(
            out.as_slice(),
            [Err(watcher::Error::NoResourceVersion)]
        ));
    }

    /// Why the rewriting: the two watchers' events merged as they come into one reflector
    /// lose a namespace at each relist.
    #[test]
    fn merged_as_they_come_a_relist_would_empty_the_other_namespace() {
        let mut writer = Writer::<ConfigMap>::default();
        let store = writer.as_reader();
        let mut events = list("a", &[("a1", "1")]);
        events.extend(list("b", &[("b1", "2")]));
        events.extend(list("a", &[("a1", "1")]));
        for (_, event) in events {
            writer.apply_watcher_event(&event);
        }
        assert_eq!(contents(&store), ["a/a1@1"], "b1 is gone from the cache");
    }

    /// [`merged`] as a stream: two watchers' first lists come out as one; a single watcher's
    /// events pass through as they are.
    #[tokio::test]
    async fn merged_streams_read_as_one_watcher() {
        let names = vec!["a".to_string(), "b".to_string()];
        let watch = |ns, objects| {
            let events: Vec<Event<ConfigMap>> =
                list(ns, objects).into_iter().map(|(_, e)| Ok(e)).collect();
            stream::iter(events)
        };
        let watchers = vec![watch("a", &[("a1", "1")]), watch("b", &[("b1", "2")])];
        let out: Vec<String> = merged("objects", &names, watchers, tombstone)
            .map(|e| describe(&e.unwrap()))
            .collect()
            .await;
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!((out[0].as_str(), out[3].as_str()), ("Init", "InitDone"));

        let one = vec![watch("a", &[("a1", "1")])];
        let out: Vec<String> = merged("objects", &names[..1], one, tombstone)
            .map(|e| describe(&e.unwrap()))
            .collect()
            .await;
        assert_eq!(out, ["Init", "InitApply a/a1@1", "InitDone"]);
    }
}
