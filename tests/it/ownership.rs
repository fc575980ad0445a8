//! One owner per (Twilio account, number). A staging copy of a production manifest, a second
//! object for a number in one namespace, a pair that already holds one SID, or a `status.sid`
//! edited to another number's sender: none of them may take over, change or deregister the
//! sender another object manages. Each test first shows the conflict is set up (both objects
//! exist, the owner is Ready), then counts what reached Twilio.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::operator::{Fixture, condition, sid_of, spec};
use crate::support::sim::{ACCOUNT_A, Sim, requests_in};

const PHONE: &str = "+15550500001";
const INSTANCE_ROUTE: &str = "/v2/Channels/Senders/{Sid}";

/// Requests with `method` to one sender (`/v2/Channels/Senders/{Sid}`).
async fn to_a_sender(f: &Fixture, method: &str) -> u64 {
    requests_in(&f.sim.stats().await, |r| {
        r["method"] == method && r["route"] == INSTANCE_ROUTE
    })
}

fn with_webhook(url: &str) -> Value {
    spec(PHONE, json!({"webhook": {"callbackUrl": url}}))
}

/// Writes `status` fields as someone with `whatsappsenders/status` rights could.
async fn patch_status(f: &Fixture, name: &str, status: Value) {
    f.senders
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .unwrap_or_else(|e| panic!("patch the status of {name}: {e}"));
}

/// A sender created while no operator runs, with the operator's finalizer already on it (as a
/// sender the operator had handled before would have).
fn with_finalizer(name: &str, spec: Value, label: (&str, &str)) -> Value {
    json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": {
            "name": name,
            "finalizers": ["messaging.senderops.io/cleanup"],
            "labels": {label.0: label.1},
        },
        "spec": spec,
    })
}

fn stalled_message(sender: &senderops::api::WhatsAppSender) -> String {
    condition(sender, "Stalled")
        .expect("a Stalled condition")
        .message
}

#[tokio::test]
async fn a_copy_in_another_namespace_stalls_sends_nothing_and_deleting_it_deregisters_nothing() {
    let sim = Sim::start().await;
    let mut f = Fixture::cluster_wide("own-prod", sim).await;
    let prod = f.ns.clone();
    f.sim.number(PHONE, "auto_verify").await;
    f.apply("acme-support", with_webhook("https://prod.example.com/in"))
        .await;
    let sid = sid_of(&f.wait_ready("acme-support").await);
    let updates_before = to_a_sender(&f, "POST").await;

    // The staging copy: same number, same account, another webhook.
    let staging = f.namespace_with_credentials("own-staging").await;
    f.enter(&staging);
    f.apply("copy", with_webhook("https://staging.example.com/in"))
        .await;
    let copy = f
        .wait_condition("copy", "Stalled", "True", "DuplicateSender")
        .await;
    let message = stalled_message(&copy);
    assert!(
        message.contains("another namespace") && message.contains(PHONE),
        "{message}"
    );
    assert!(
        !message.contains("acme-support") && !message.contains(&prod),
        "another namespace's object is not named: {message}"
    );
    let status = copy.status.clone().unwrap_or_default();
    assert_eq!(
        (status.sid, status.account_sid),
        (None, None),
        "the copy adopted nothing"
    );
    assert_eq!(condition(&copy, "Ready").unwrap().status, "False");
    assert_eq!(
        to_a_sender(&f, "POST").await,
        updates_before,
        "the copy sent no update"
    );
    let at_twilio = f.sim.sender(&sid).await;
    assert_eq!(
        at_twilio["webhook"]["callback_url"], "https://prod.example.com/in",
        "{at_twilio}"
    );

    f.delete("copy").await;
    f.wait_gone("copy").await;
    assert_eq!(
        to_a_sender(&f, "DELETE").await,
        0,
        "no DELETE reached Twilio"
    );
    assert_eq!(f.sim.sender(&sid).await["status"], "ONLINE");
    f.enter(&prod);
    let owner = f.get("acme-support").await.expect("prod's object");
    assert_eq!(sid_of(&owner), sid);
    assert_eq!(condition(&owner, "Ready").unwrap().status, "True");
    assert_eq!(f.sim.create_attempts(PHONE).await, 1, "registered once");
}

#[tokio::test]
async fn a_second_object_in_one_namespace_names_the_owner_and_takes_over_once_it_is_orphaned() {
    let sim = Sim::start().await;
    let f = Fixture::cluster_wide("own-pair", sim).await;
    f.sim.number(PHONE, "auto_verify").await;
    f.apply("first", spec(PHONE, json!({}))).await;
    let sid = sid_of(&f.wait_ready("first").await);

    f.apply("second", spec(PHONE, json!({}))).await;
    let second = f
        .wait_condition("second", "Stalled", "True", "DuplicateSender")
        .await;
    let message = stalled_message(&second);
    assert!(
        message.contains("WhatsAppSender first in this namespace"),
        "the owner in the same namespace is named: {message}"
    );
    assert_eq!(second.status.as_ref().and_then(|s| s.sid.clone()), None);

    // The owner goes and leaves the number registered: the claimant adopts it.
    f.patch("first", json!({"spec": {"deletionPolicy": "Orphan"}}))
        .await;
    f.delete("first").await;
    f.wait_gone("first").await;
    let adopted = f.wait_ready("second").await;
    assert_eq!(sid_of(&adopted), sid, "the same Twilio sender, adopted");
    f.wait_event("second", "Adopted").await;
    assert_eq!(to_a_sender(&f, "DELETE").await, 0);
    assert_eq!(f.sim.create_attempts(PHONE).await, 1, "registered once");
}

#[tokio::test]
async fn a_pair_holding_one_sid_is_split_at_start_and_the_younger_deletes_nothing() {
    let sim = Sim::start().await;
    let mut f = Fixture::cluster_wide("own-split", sim).await;
    let label = ("senderops.io/test", f.ns.clone());
    f.sim.number(PHONE, "auto_verify").await;
    f.apply("old", spec(PHONE, json!({}))).await;
    let sid = sid_of(&f.wait_ready("old").await);

    // What earlier versions left behind: two objects whose status holds the same SID. One
    // of them is being deleted when the operator starts. Creation times have one-second
    // resolution, and a tie goes by UID: the pair must be younger by a second for "old" to be
    // the oldest.
    f.operator.stop();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for name in ["young", "leaving"] {
        f.senders
            .create(
                &Default::default(),
                &serde_json::from_value(with_finalizer(
                    name,
                    spec(PHONE, json!({})),
                    (label.0, &label.1),
                ))
                .unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        patch_status(&f, name, json!({"sid": sid, "accountSid": ACCOUNT_A})).await;
    }
    f.senders
        .delete("leaving", &DeleteParams::default())
        .await
        .expect("delete leaving");
    let leaving = f.get("leaving").await.expect("held by its finalizer");
    assert!(leaving.metadata.deletion_timestamp.is_some());
    assert_eq!(sid_of(&leaving), sid, "the pair is set up");

    f.operator.restart();
    let young = f
        .wait_condition("young", "Stalled", "True", "DuplicateSender")
        .await;
    let status = young.status.clone().unwrap_or_default();
    assert_eq!(
        (status.sid, status.account_sid),
        (None, None),
        "its SID was cleared"
    );
    let note = f.wait_event("young", "DuplicateSender").await;
    assert!(note.contains(&sid) && note.contains("old"), "{note}");

    f.wait_gone("leaving").await;
    let note = f.wait_event("leaving", "DuplicateSender").await;
    assert!(note.contains("without deleting"), "{note}");
    assert_eq!(
        to_a_sender(&f, "DELETE").await,
        0,
        "no DELETE reached Twilio"
    );
    let old = f.get("old").await.expect("the owner");
    assert_eq!(sid_of(&old), sid, "the oldest keeps it");
    assert_eq!(f.sim.sender(&sid).await["status"], "ONLINE");
}

#[tokio::test]
async fn a_status_sid_edited_to_another_numbers_sender_is_not_deleted() {
    const OTHER: &str = "+15550500002";
    let sim = Sim::start().await;
    let mut f = Fixture::cluster_wide("own-edited", sim).await;
    for phone in [PHONE, OTHER] {
        f.sim.number(phone, "auto_verify").await;
    }
    f.apply("keep", spec(PHONE, json!({}))).await;
    f.apply("edited", spec(OTHER, json!({}))).await;
    let kept = sid_of(&f.wait_ready("keep").await);
    let own = sid_of(&f.wait_ready("edited").await);

    // Someone with status rights points `edited` at `keep`'s sender, then deletes it.
    f.operator.stop();
    patch_status(&f, "edited", json!({"sid": kept})).await;
    f.senders
        .delete("edited", &DeleteParams::default())
        .await
        .expect("delete edited");
    assert_eq!(
        sid_of(&f.get("edited").await.unwrap()),
        kept,
        "the edit is set up"
    );
    f.operator.restart();

    f.wait_gone("edited").await;
    let note = f.wait_event("edited", "NotDeleted").await;
    assert!(note.contains(&kept) && note.contains(OTHER), "{note}");
    assert_eq!(
        to_a_sender(&f, "DELETE").await,
        0,
        "no DELETE reached Twilio"
    );
    assert_eq!(f.sim.sender(&kept).await["status"], "ONLINE");
    assert_eq!(
        f.sim.sender(&own).await["status"],
        "ONLINE",
        "left registered"
    );
    let keep = f.get("keep").await.expect("keep");
    assert_eq!(condition(&keep, "Ready").unwrap().status, "True");
}
