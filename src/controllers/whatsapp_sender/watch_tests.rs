//! The sender state behind the runtime's merged namespace watchers.

use kube::runtime::watcher;
use serde_json::json;

use super::state::{State, StateConfig, key_of};
use crate::api::WhatsAppSender;
use crate::runtime::namespaces::Merge;

fn sender(ns: &str, name: &str, uid: &str) -> WhatsAppSender {
    serde_json::from_value(json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": {"name": name, "namespace": ns, "uid": uid},
        "spec": {
            "phoneNumber": "+15017122661",
            "credentialsRef": {"name": "twilio"},
            "profile": {"name": "Acme"},
        },
    }))
    .unwrap()
}

fn state() -> State {
    State::new(StateConfig::for_tests(), Default::default())
}

fn relist(objects: &[&WhatsAppSender]) -> Vec<watcher::Event<WhatsAppSender>> {
    let mut events = vec![watcher::Event::Init];
    events.extend(
        objects
            .iter()
            .map(|o| watcher::Event::InitApply((*o).clone())),
    );
    events.push(watcher::Event::InitDone);
    events
}

/// The state sees the events of [`crate::runtime::namespaces::merged`]: a relist of one namespace leaves the senders
/// of the other as they were (here: the onboarding turn one of them holds).
#[test]
fn a_relist_of_one_namespace_keeps_what_the_state_knows_of_the_other() {
    let state = state();
    let (a1, b1) = (sender("a", "s", "u1"), sender("b", "s", "u2"));
    let mut merge = Merge::new(
        "senders",
        vec!["a".to_string(), "b".to_string()],
        |_: &str, _: &str| None::<WhatsAppSender>,
    );
    let mut feed = |i: usize, events: Vec<watcher::Event<WhatsAppSender>>| {
        for event in events {
            for out in merge.on(i, Ok(event)) {
                state.sender_event(&out.unwrap());
            }
        }
    };
    feed(0, relist(&[&a1]));
    feed(1, relist(&[&b1]));
    for (sender, uid) in [(&a1, "u1"), (&b1, "u2")] {
        state.uses_scope(&key_of(sender), uid, "AC1");
    }
    assert_eq!(state.claim_turn("AC1", &key_of(&a1)), Ok(()));

    feed(1, relist(&[&b1]));
    let busy = state.claim_turn("AC1", &key_of(&b1)).unwrap_err();
    assert_eq!(busy.holder, key_of(&a1), "a's sender still holds the turn");

    // Passed on as they are, b's relist events make the state forget a's sender.
    for event in relist(&[&b1]) {
        state.sender_event(&event);
    }
    assert_eq!(
        state.claim_turn("AC1", &key_of(&b1)),
        Ok(()),
        "the turn was freed: a's sender forgotten"
    );
}
