//! The state's named operations: what each changes, and that nothing outlives its sender.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher;
use serde_json::json;

use super::watch::secrets_of;
use super::*;
use crate::controllers::whatsapp_sender::sim_world::{ACCOUNT, World};
use crate::twilio::BudgetConfig;

fn config() -> StateConfig {
    StateConfig::for_tests()
}

fn sender(name: &str, uid: &str, credentials: &str, code: Option<&str>) -> WhatsAppSender {
    let mut spec = json!({
        "phoneNumber": "+15017122661",
        "credentialsRef": {"name": credentials},
        "profile": {"name": "Acme"},
    });
    if let Some(code) = code {
        spec["verification"] = json!({"codeSecretRef": {"name": code}});
    }
    serde_json::from_value(json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": {"name": name, "namespace": "ns", "uid": uid},
        "spec": spec,
    }))
    .unwrap()
}

fn key(name: &str) -> SenderKey {
    SenderKey::new(name).within("ns")
}

fn secret(name: &str) -> SecretKey {
    ("ns".into(), name.into())
}

fn secret_meta(name: &str, version: &str) -> PartialObjectMeta<Secret> {
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

fn names(mut keys: Vec<SenderKey>) -> Vec<String> {
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    keys.into_iter().map(|k| k.name).collect()
}

/// The watch delivers `sender`, and its reconciles work in [`ACCOUNT`]'s scope.
fn apply(state: &State, sender: &WhatsAppSender) -> Vec<SenderKey> {
    let woken = state.sender_event(&watcher::Event::Apply(sender.clone()));
    state.uses_scope(&key_of(sender), &sender.uid().unwrap(), ACCOUNT);
    woken
}

#[test]
fn secret_events_wake_the_senders_that_read_them_and_only_on_a_new_version() {
    let state = State::new(config(), Default::default());
    apply(&state, &sender("a", "u1", "twilio", Some("otp-a")));
    apply(&state, &sender("b", "u2", "twilio", None));
    let event = |e| state.secret_event(&e);
    assert_eq!(
        names(event(watcher::Event::Apply(secret_meta("twilio", "1")))),
        ["a", "b"]
    );
    assert!(
        event(watcher::Event::Apply(secret_meta("twilio", "1"))).is_empty(),
        "same version"
    );
    assert_eq!(
        names(event(watcher::Event::Apply(secret_meta("otp-a", "2")))),
        ["a"]
    );
    assert!(event(watcher::Event::Apply(secret_meta("unrelated", "3"))).is_empty());
    assert_eq!(
        state.secret_version(&secret("twilio")).as_deref(),
        Some("1")
    );
    assert_eq!(state.secret_version(&secret("unrelated")), None, "not kept");
    assert_eq!(
        names(event(watcher::Event::Delete(secret_meta("otp-a", "4")))),
        ["a"]
    );
    assert_eq!(state.secret_version(&secret("otp-a")), None);

    // A spec that stops reading a Secret drops it.
    apply(&state, &sender("a", "u1", "twilio", Some("otp-a2")));
    assert!(event(watcher::Event::Apply(secret_meta("otp-a", "5"))).is_empty());
    assert_eq!(state.counts(), (2, 2), "twilio and otp-a2");
}

#[test]
fn a_relist_drops_what_went_while_the_watch_was_down() {
    let state = State::new(config(), Default::default());
    apply(&state, &sender("a", "u1", "creds", Some("code")));
    state.secret_event(&watcher::Event::Apply(secret_meta("creds", "1")));
    state.secret_event(&watcher::Event::Apply(secret_meta("code", "2")));
    state.secret_event(&watcher::Event::Init);
    state.secret_event(&watcher::Event::InitApply(secret_meta("creds", "1")));
    assert_eq!(names(state.secret_event(&watcher::Event::InitDone)), ["a"]);
    assert_eq!(state.secret_version(&secret("code")), None);
    assert_eq!(state.secret_version(&secret("creds")).as_deref(), Some("1"));

    apply(&state, &sender("b", "u2", "creds", None));
    state.sender_event(&watcher::Event::Init);
    state.sender_event(&watcher::Event::InitApply(sender("b", "u2", "creds", None)));
    state.sender_event(&watcher::Event::InitDone);
    assert_eq!(
        state.counts(),
        (1, 1),
        "a and its code Secret are forgotten"
    );
}

#[test]
fn a_version_read_directly_never_replaces_one_from_the_watch() {
    let state = State::new(config(), Default::default());
    apply(&state, &sender("a", "u1", "twilio", Some("code")));
    state.secret_read(&secret("code"), "5");
    assert_eq!(state.secret_version(&secret("code")).as_deref(), Some("5"));
    state.secret_event(&watcher::Event::Apply(secret_meta("code", "7")));
    state.secret_read(&secret("code"), "6");
    assert_eq!(state.secret_version(&secret("code")).as_deref(), Some("7"));
    state.secret_read(&secret("unread"), "1");
    assert_eq!(state.secret_version(&secret("unread")), None);
}

#[tokio::test]
async fn a_client_per_secret_version_outlives_the_secret_until_its_last_reader_goes() {
    let w = World::start().await;
    let state = State::new(config(), Default::default());
    apply(&state, &sender("a", "u1", "twilio", None));
    state.secret_event(&watcher::Event::Apply(secret_meta("twilio", "1")));
    assert!(state.current_client(&secret("twilio")).is_none());
    state.client_built(&secret("twilio"), "1", w.client.clone());
    assert!(state.current_client(&secret("twilio")).is_some());
    assert!(state.client_at(&secret("twilio"), "1").is_some());
    state.secret_event(&watcher::Event::Apply(secret_meta("twilio", "2")));
    assert!(
        state.current_client(&secret("twilio")).is_none(),
        "a new version needs a new client"
    );
    state.secret_event(&watcher::Event::Delete(secret_meta("twilio", "3")));
    assert!(
        state.last_client(&secret("twilio")).is_some(),
        "kept for deletions"
    );
    state.sender_event(&watcher::Event::Delete(sender("a", "u1", "twilio", None)));
    assert!(state.last_client(&secret("twilio")).is_none());
    assert_eq!(state.counts(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn deleting_a_sender_forgets_it_everywhere_and_frees_its_turn() {
    let state = State::new(config(), Default::default());
    let (a, b) = (
        sender("a", "u1", "twilio", None),
        sender("b", "u2", "twilio", None),
    );
    apply(&state, &a);
    apply(&state, &b);
    assert_eq!(state.claim_turn(ACCOUNT, &key("a")), Ok(()));
    let busy = state.claim_turn(ACCOUNT, &key("b")).unwrap_err();
    assert_eq!((busy.holder, busy.ahead), (key("a"), 0));
    let seen = Seen {
        account: ACCOUNT.into(),
        sid: "XE1".into(),
        settled: true,
        onboarding: true,
        online_name: None,
    };
    let conclusion = Conclusion {
        seen: Some(seen),
        ..Conclusion::default()
    };
    assert!(
        state.concluded(&key("a"), "u1", conclusion).is_empty(),
        "still onboarding"
    );
    assert_eq!(state.settled_count(ACCOUNT), 1);

    assert_eq!(names(state.sender_event(&watcher::Event::Delete(a))), ["b"]);
    assert_eq!(state.settled_count(ACCOUNT), 0);
    assert_eq!(state.claim_turn(ACCOUNT, &key("b")), Ok(()));
    assert_eq!(state.counts(), (1, 1));
}

#[test]
fn a_conclusion_about_a_sender_that_is_gone_or_older_changes_nothing() {
    let state = State::new(config(), Default::default());
    let a = sender("a", "u1", "twilio", None);
    apply(&state, &a);
    state.sender_event(&watcher::Event::Delete(a));
    let failed = Conclusion {
        failed: true,
        ..Conclusion::default()
    };
    state.concluded(&key("a"), "u1", failed.clone());
    assert_eq!(state.counts(), (0, 0), "not created again");

    apply(&state, &sender("a", "u2", "twilio", None));
    state.concluded(&key("a"), "u1", failed.clone());
    assert_eq!(state.failures(&key("a")), 0, "about the older object");
    state.concluded(&key("a"), "u2", failed.clone());
    state.concluded(&key("a"), "u2", failed);
    assert_eq!(state.failures(&key("a")), 2);
    state.concluded(&key("a"), "u2", Conclusion::default());
    assert_eq!(state.failures(&key("a")), 0, "reset on success");
}

#[test]
fn a_deletion_concluded_after_its_delete_event_still_marks_the_number_deleted() {
    let state = State::new(config(), Default::default());
    let a = sender("a", "u1", "twilio", None);
    apply(&state, &a);
    state.sender_event(&watcher::Event::Delete(a));
    let deleted = Conclusion {
        deleted: Some(NumberDeleted {
            account: ACCOUNT.into(),
            phone: "+15017122661".into(),
            sid: "XE1".into(),
        }),
        ..Conclusion::default()
    };
    state.concluded(&key("a"), "u1", deleted);
    let (sid, _) = state
        .deleted_before(ACCOUNT, "+15017122661")
        .expect("the account remembers the deletion");
    assert_eq!(sid, "XE1");
    assert_eq!(state.counts(), (0, 0), "and no sender record came back");
}

#[tokio::test(start_paused = true)]
async fn a_recreated_object_starts_afresh() {
    let state = State::new(config(), Default::default());
    apply(&state, &sender("a", "u1", "twilio", None));
    let identity = Identity {
        sid: Some("XE1".into()),
        ..Identity::default()
    };
    state.concluded(
        &key("a"),
        "u1",
        Conclusion {
            identity: Some(identity),
            ..Conclusion::default()
        },
    );
    assert!(state.facts(&key("a"), "u1").identity.is_some());
    tokio::time::advance(Duration::from_secs(5)).await;
    apply(&state, &sender("a", "u2", "twilio", None));
    let facts = state.facts(&key("a"), "u2");
    assert_eq!(facts.identity, None);
    assert_eq!(facts.first_seen, Instant::now(), "seen anew");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_or_finished_sender_passes_the_turn_on() {
    let state = State::new(config(), Default::default());
    for (name, uid) in [("a", "u1"), ("b", "u2"), ("c", "u3")] {
        apply(&state, &sender(name, uid, "twilio", None));
    }
    state.claim_turn(ACCOUNT, &key("a")).unwrap();
    state.claim_turn(ACCOUNT, &key("b")).unwrap_err();
    state.claim_turn(ACCOUNT, &key("c")).unwrap_err();
    let stalled = Conclusion {
        leaves_onboarding: true,
        ..Conclusion::default()
    };
    assert_eq!(names(state.concluded(&key("a"), "u1", stalled)), ["b"]);
    state.claim_turn(ACCOUNT, &key("b")).unwrap();
    let online = Conclusion {
        seen: Some(Seen {
            account: ACCOUNT.into(),
            sid: "XE2".into(),
            settled: true,
            onboarding: false,
            online_name: None,
        }),
        ..Conclusion::default()
    };
    assert_eq!(names(state.concluded(&key("b"), "u2", online)), ["c"]);
}

#[tokio::test]
async fn lookups_around_the_same_time_share_one_list_pass() {
    let w = World::start().await;
    for i in 0..5 {
        w.register(&format!("+1500555000{i}")).await;
    }
    let state = State::new(config(), Default::default());
    let seen = Instant::now();
    let phones: Vec<String> = (0..8).map(|i| format!("+1500555000{i}")).collect();
    let lookups = phones
        .iter()
        .map(|phone| state.lookup(&w.client, phone, false, seen));
    let found = futures::future::try_join_all(lookups).await.unwrap();
    assert_eq!(found.iter().filter(|l| l.sender.is_some()).count(), 5);
    assert_eq!(
        found.iter().filter(|l| l.listed).count(),
        1,
        "one caller listed"
    );
    assert_eq!(w.list_requests().await, 3, "five senders at two per page");
}

#[tokio::test]
async fn a_number_that_changed_needs_a_list_made_after_the_change() {
    let w = World::start().await;
    let state = State::new(config(), Default::default());
    apply(&state, &sender("a", "u1", "twilio", None));
    let seen = Instant::now();
    let first = state
        .lookup(&w.client, "+15005550001", false, seen)
        .await
        .unwrap();
    assert!(first.sender.is_none());
    // A create whose answer was lost: the old list cannot answer for this number.
    w.register("+15005550001").await;
    let changed = Conclusion {
        number_changed: Some(NumberChanged {
            account: ACCOUNT.into(),
            phone: "+15005550001".into(),
            at: Instant::now(),
        }),
        ..Conclusion::default()
    };
    state.concluded(&key("a"), "u1", changed);
    let again = state
        .lookup(&w.client, "+15005550001", false, seen)
        .await
        .unwrap();
    assert!(again.listed && again.sender.is_some(), "{again:?}");
    let other = state
        .lookup(&w.client, "+15005550009", false, seen)
        .await
        .unwrap();
    assert!(!other.listed, "another number may use that fresh list");
    let fresh = state
        .lookup(&w.client, "+15005550009", true, seen)
        .await
        .unwrap();
    assert!(fresh.listed, "fresh");
}

#[tokio::test]
async fn only_a_list_made_after_the_object_was_seen_says_its_number_is_free() {
    let w = World::start().await;
    let state = State::new(config(), Default::default());
    let first = state
        .lookup(&w.client, "+15005550001", false, Instant::now())
        .await
        .unwrap();
    assert!(first.listed && first.sender.is_none());
    // Someone registers a second number by hand, then applies an object for it.
    w.register("+15005550002").await;
    let seen = Instant::now();
    let second = state
        .lookup(&w.client, "+15005550002", false, seen)
        .await
        .unwrap();
    assert!(
        second.listed,
        "a list older than the object must not say its number is free"
    );
    assert!(second.sender.is_some(), "{second:?}");
    // Registered in a list made before the object was seen: that answer stands.
    w.register("+15005550003").await;
    let third = state
        .lookup(&w.client, "+15005550002", false, Instant::now())
        .await
        .unwrap();
    assert!(!third.listed && third.sender.is_some(), "{third:?}");
    assert_eq!(w.list_requests().await, 2, "one page per list pass");
}

#[tokio::test]
async fn a_refresh_after_a_write_waits_for_a_newer_list() {
    let w = World::start().await;
    let sid = w.register("+15005550001").await.sid;
    let state = State::new(config(), Default::default());
    apply(&state, &sender("a", "u1", "twilio", None));
    let max_age = Duration::from_secs(60);
    assert!(
        state
            .refresh(&w.client, &sid, max_age)
            .await
            .unwrap()
            .listed
    );
    assert!(
        !state
            .refresh(&w.client, &sid, max_age)
            .await
            .unwrap()
            .listed,
        "reused"
    );
    let written = Conclusion {
        written: Some(Written {
            account: ACCOUNT.into(),
            sid: sid.clone(),
            at: Instant::now(),
        }),
        ..Conclusion::default()
    };
    state.concluded(&key("a"), "u1", written);
    let after = state.refresh(&w.client, &sid, max_age).await.unwrap();
    assert!(
        after.listed,
        "a list older than the write shows stale fields"
    );
    assert_eq!(after.sender.unwrap().sid, sid);
    let missing = state
        .refresh(&w.client, "XE00000000000000000000000000000000", max_age)
        .await
        .unwrap();
    assert!(missing.sender.is_none());
}

#[tokio::test(start_paused = true)]
async fn the_clients_of_one_account_share_its_request_budget() {
    let accounts = AccountRegistry::new(BudgetConfig {
        per_second: std::num::NonZeroU32::new(1).unwrap(),
        burst: std::num::NonZeroU32::new(2).unwrap(),
    });
    let state = State::sharing(config(), Arc::new(accounts), Default::default());
    let (a1, a2, b) = (
        state.accounts().budget("AC1"),
        state.accounts().budget("AC1"),
        state.accounts().budget("AC2"),
    );
    assert!(a1.try_acquire() && a2.try_acquire());
    assert!(
        !a1.try_acquire(),
        "AC1's two tokens are spent by either client"
    );
    assert!(b.try_acquire(), "another account has its own bucket");
}

#[test]
fn one_secret_for_both_is_read_once() {
    assert_eq!(secrets_of(&sender("a", "u", "s", Some("s"))).len(), 1);
}

/// `sender` as the watch shows it once its status records `account` (it registered or
/// adopted its number), created at `created_s`.
fn holding(name: &str, uid: &str, created_s: i64, account: &str) -> WhatsAppSender {
    let mut sender = sender(name, uid, "twilio", None);
    sender.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(created_s).unwrap(),
        ));
    sender.status = Some(crate::api::WhatsAppSenderStatus {
        sid: Some("XE1".into()),
        account_sid: Some(account.into()),
        ..Default::default()
    });
    sender
}

#[test]
fn the_owners_are_known_from_the_first_list_before_any_reconcile() {
    let state = State::new(config(), Default::default());
    let (young, old) = (
        holding("young", "u1", 20, ACCOUNT),
        holding("old", "u2", 10, ACCOUNT),
    );
    state.sender_event(&watcher::Event::Init);
    state.sender_event(&watcher::Event::InitApply(young.clone()));
    state.sender_event(&watcher::Event::InitApply(old.clone()));
    state.sender_event(&watcher::Event::InitDone);
    assert!(state.owns_number(ACCOUNT, "+15017122661", &key("old"), "u2"));
    assert!(!state.owns_number(ACCOUNT, "+15017122661", &key("young"), "u1"));
    let (ownership, _) = state.claim_number(
        ACCOUNT,
        "+15017122661",
        claimant_of(&young, &key("young"), "u1", true),
    );
    assert_eq!(
        ownership,
        Ownership::Other {
            owner: key("old"),
            demoted: true
        }
    );
    assert!(
        !state.owns_number("ACother", "+15017122661", &key("old"), "u2"),
        "per account"
    );
    assert_eq!(
        names(state.sender_event(&watcher::Event::Delete(old))),
        ["young"],
        "the owner went: the next claimant is woken"
    );
    assert!(state.owns_number(ACCOUNT, "+15017122661", &key("young"), "u1"));
}

#[tokio::test(start_paused = true)]
async fn a_scope_is_forgotten_with_its_last_sender_and_a_late_conclusion_does_not_revive_it() {
    let state = State::new(config(), Default::default());
    let (a, b) = (
        sender("a", "u1", "twilio", None),
        sender("b", "u2", "twilio", None),
    );
    apply(&state, &a);
    apply(&state, &b);
    state.claim_turn(ACCOUNT, &key("a")).unwrap();
    state.uses_scope(&key("b"), "u2", "ACother");
    let _ = state.alert_log("ACother");
    assert_eq!(state.scope_count(), 2);
    state.sender_event(&watcher::Event::Delete(a));
    assert_eq!(state.scope_count(), 1, "a was ACCOUNT's last sender");
    let late = Conclusion {
        gone: Some(SidGone {
            account: ACCOUNT.into(),
            sid: "XE1".into(),
        }),
        number_changed: Some(NumberChanged {
            account: ACCOUNT.into(),
            phone: "+15017122661".into(),
            at: Instant::now(),
        }),
        ..Conclusion::default()
    };
    state.concluded(&key("a"), "u1", late);
    assert_eq!(state.scope_count(), 1, "not brought back");
    // A tenant changing accountSid again and again mints nothing that stays.
    for i in 0..5 {
        state.uses_scope(&key("b"), "u2", &format!("AC{i}"));
        let _ = state.alert_log(&format!("AC{i}"));
    }
    assert_eq!(state.scope_count(), 1);
    state.sender_event(&watcher::Event::Delete(b));
    assert_eq!(state.scope_count(), 0);
}

#[test]
fn a_budget_goes_when_no_client_holds_it() {
    let state = State::new(config(), Default::default());
    // What a client built for ACCOUNT holds.
    let held = state.accounts().budget(ACCOUNT);
    let a = sender("a", "u1", "twilio", None);
    apply(&state, &a);
    state.sender_event(&watcher::Event::Delete(a));
    assert_eq!(state.budget_count(), 1, "a client still holds it");
    drop(held);
    let b = sender("b", "u2", "twilio", None);
    apply(&state, &b);
    state.sender_event(&watcher::Event::Delete(b));
    assert_eq!(state.budget_count(), 0, "gone with the last Secret record");
}
