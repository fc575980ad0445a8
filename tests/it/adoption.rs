//! A number registered moments ago, by hand or by another tool, is adopted, never registered
//! again: the object that names its sender (the `senderops.io/exported-from` annotation that
//! `senderops export` writes, or a `status.sid` restored from a backup) is fetched by that SID;
//! one that does not is looked up in a list made after the operator first saw it. Every check
//! counts create attempts at Twilio, refused ones included.

use serde_json::{Value, json};

use crate::support::operator::{Fixture, condition, register_by_hand, sid_of, spec};
use crate::support::sim::{ACCOUNT_A, wait_for_status};

const FIRST: &str = "+15005550301";
const BY_HAND: &str = "+15005550302";
const LIST: &str = "/v2/Channels/Senders";

/// `senderops export` of account A, run as a person would.
async fn export(f: &Fixture) -> String {
    let output = f.sim.export_a().await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The exported manifest of `phone`, alone.
fn manifest_of(yaml: &str, phone: &str) -> String {
    yaml.split("---\n")
        .find(|doc| doc.contains(&format!("phoneNumber: '{phone}'")) || doc.contains(phone))
        .unwrap_or_else(|| panic!("no manifest for {phone} in:\n{yaml}"))
        .to_string()
}

fn apply(f: &Fixture, manifest: &str) {
    f.plane
        .kubectl()
        .args(["apply", "-n", &f.ns, "-f", "-"])
        .stdin(manifest.to_string())
        .run()
        .expect_success("apply the exported manifest");
}

/// Lists the simulator answered, in all.
async fn lists(f: &Fixture) -> u64 {
    f.sim.count("GET", LIST, 200).await
}

/// The operator reconciles a first sender (its lookup lists the account), then a person
/// registers a second number by hand and exports it, all well within the 30 s a list may be
/// reused to say a number is registered.
async fn a_first_sender_then_a_number_registered_by_hand(f: &Fixture, behavior: &str) -> String {
    f.sim.number(FIRST, "auto_verify").await;
    f.apply("first", spec(FIRST, json!({}))).await;
    f.wait_ready("first").await;
    assert!(
        lists(f).await >= 1,
        "the first sender's lookup listed the account"
    );
    f.sim.number(BY_HAND, behavior).await;
    register_by_hand(&f.sim.client_a(), BY_HAND, "Acme")
        .await
        .sid
}

#[tokio::test]
async fn an_exported_sender_is_fetched_by_its_sid_and_adopted_without_a_list_or_a_create() {
    let f = Fixture::new("adopt-exported").await;
    let sid = a_first_sender_then_a_number_registered_by_hand(&f, "auto_verify").await;
    wait_for_status(
        &f.sim.client_a(),
        &sid,
        senderops::twilio::SenderStatus::Online,
    )
    .await;
    let manifest = manifest_of(&export(&f).await, BY_HAND);
    assert!(
        manifest.contains(&format!("senderops.io/exported-from: {sid}")),
        "{manifest}"
    );
    let lists_before = lists(&f).await;
    apply(&f, &manifest);
    let name = senderops::export::object_name(BY_HAND);
    let ready = f.wait_ready(&name).await;
    assert_eq!(sid_of(&ready), sid, "the hand-made sender itself");
    let adopted = f.wait_event(&name, "Adopted").await;
    assert!(adopted.contains(&sid), "{adopted}");
    assert_eq!(
        f.sim.create_attempts(BY_HAND).await,
        1,
        "only the person's registration: the operator sent no create"
    );
    assert_eq!(
        lists(&f).await,
        lists_before,
        "adopted by its SID, without a list"
    );
}

#[tokio::test]
async fn a_plain_manifest_for_a_number_registered_moments_ago_is_looked_up_in_a_fresh_list() {
    let f = Fixture::new("adopt-plain").await;
    let sid = a_first_sender_then_a_number_registered_by_hand(&f, "auto_verify").await;
    // The same manifest without the annotation: the operator has only the number to go on.
    let manifest: String = manifest_of(&export(&f).await, BY_HAND)
        .lines()
        .filter(|line| !line.contains("annotations:") && !line.contains("exported-from"))
        .map(|line| format!("{line}\n"))
        .collect();
    let lists_before = lists(&f).await;
    apply(&f, &manifest);
    let name = senderops::export::object_name(BY_HAND);
    assert_eq!(sid_of(&f.wait_ready(&name).await), sid);
    f.wait_event(&name, "Adopted").await;
    assert_eq!(
        f.sim.create_attempts(BY_HAND).await,
        1,
        "a list older than the object did not say the number was free"
    );
    assert!(
        lists(&f).await > lists_before,
        "a list made after the object was first seen answered"
    );
}

#[tokio::test]
async fn a_hand_made_sender_waiting_for_its_code_is_adopted_and_the_persons_code_brings_it_online()
{
    let f = Fixture::new("adopt-pending").await;
    let sid = a_first_sender_then_a_number_registered_by_hand(&f, "needs_code").await;
    let client = f.sim.client_a();
    wait_for_status(
        &client,
        &sid,
        senderops::twilio::SenderStatus::PendingVerification,
    )
    .await;
    assert_eq!(f.sim.sender(&sid).await["codes_sent"], 1);
    let code = f.sim.otp(&sid).await.expect("the person received a code");

    // The person adds where the code goes to the exported manifest, applies it, then puts the
    // code they received there.
    let manifest = manifest_of(&export(&f).await, BY_HAND).replace(
        "spec:\n",
        "spec:\n  verification:\n    codeSecretRef:\n      name: by-hand-otp\n",
    );
    apply(&f, &manifest);
    let name = senderops::export::object_name(BY_HAND);
    f.wait_event(&name, "Adopted").await;
    let waiting = f
        .wait_condition(&name, "Ready", "False", "WaitingForCode")
        .await;
    assert_eq!(sid_of(&waiting), sid);
    f.secret("by-hand-otp", &[("code", &code)]).await;
    f.wait_ready(&name).await;
    let sender = f.sim.sender(&sid).await;
    assert_eq!(
        (
            sender["codes_sent"].as_u64(),
            sender["wrong_codes"].as_u64()
        ),
        (Some(1), Some(0)),
        "no second create asked Meta for a new code: {sender}"
    );
    assert_eq!(f.sim.create_attempts(BY_HAND).await, 1);
}

#[tokio::test]
async fn a_status_sid_restored_from_a_backup_is_fetched_and_adopted_without_a_create() {
    let mut f = Fixture::new("adopt-restored").await;
    f.operator.kill();
    f.sim.number(BY_HAND, "auto_verify").await;
    let sid = register_by_hand(&f.sim.client_a(), BY_HAND, "Acme")
        .await
        .sid;
    // A restore writes the object, then its status, before any operator sees it.
    f.apply("restored", spec(BY_HAND, json!({}))).await;
    let restored = json!({"status": {"sid": sid, "accountSid": ACCOUNT_A}});
    f.senders
        .patch_status(
            "restored",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&restored),
        )
        .await
        .expect("restore the status");
    f.operator.restart();
    let ready = f.wait_ready("restored").await;
    assert_eq!(sid_of(&ready), sid);
    assert_eq!(
        f.sim.create_attempts(BY_HAND).await,
        1,
        "no create by the operator"
    );
    let reasons: Vec<String> = f
        .events("restored")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert!(!reasons.iter().any(|r| r == "Created"), "{reasons:?}");
}

#[tokio::test]
async fn a_recorded_sid_of_another_number_is_left_alone_and_the_number_looked_up() {
    let mut f = Fixture::new("adopt-mismatch").await;
    f.operator.kill();
    for phone in [FIRST, BY_HAND] {
        f.sim.number(phone, "auto_verify").await;
    }
    let other = register_by_hand(&f.sim.client_a(), FIRST, "Acme").await.sid;
    f.apply("mine", spec(BY_HAND, json!({}))).await;
    let wrong: Value = json!({"status": {"sid": other, "accountSid": ACCOUNT_A}});
    f.senders
        .patch_status(
            "mine",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&wrong),
        )
        .await
        .expect("write a wrong status");
    f.operator.restart();
    let ready = f.wait_ready("mine").await;
    assert_ne!(sid_of(&ready), other, "not the other number's sender");
    let warning = f.wait_event("mine", "SenderMismatch").await;
    assert!(
        warning.contains(&other) && warning.contains(FIRST),
        "{warning}"
    );
    assert_eq!(f.sim.create_attempts(BY_HAND).await, 1, "registered once");
    assert_eq!(
        f.sim.create_attempts(FIRST).await,
        1,
        "the other number untouched"
    );
    assert_eq!(
        f.sim_senders_for(FIRST).await.len(),
        1,
        "the other number's sender is still there"
    );
    assert_eq!(condition(&ready, "Stalled").unwrap().status, "False");
}
