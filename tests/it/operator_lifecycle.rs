//! `senderops run` takes senders through their life on a real API server and the simulator:
//! create, the one-time code, updates, mirroring, adoption, recreation, deletion, suspend.

use std::time::{Duration, Instant};

use kube::ResourceExt;
use senderops::twilio::{SenderStatus, is_valid_sender_sid};
use serde_json::{Value, json};

use crate::support::operator::{
    Fixture, condition, register_by_hand, sid_of, spec, spec_with_code,
};
use crate::support::sim::{ACCOUNT_A, Sim, wait_for_status};
use crate::support::wait::Wait;

const AUTO: &str = "+15005550001";
const CODED: &str = "+15005550002";

#[tokio::test]
async fn an_auto_verified_number_becomes_ready() {
    let f = Fixture::new("auto").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;

    let sender = f.wait_ready("acme").await;
    let status = sender.status.clone().unwrap();
    let sid = sid_of(&sender);
    assert!(is_valid_sender_sid(&sid), "{sid}");
    assert_eq!(status.account_sid.as_deref(), Some(ACCOUNT_A));
    assert_eq!(status.sender_id.as_deref(), Some("whatsapp:+15005550001"));
    assert_eq!(status.twilio_status.as_deref(), Some("ONLINE"));
    assert_eq!(status.quality_rating.as_deref(), Some("HIGH"));
    assert_eq!(status.messaging_limit.as_deref(), Some("1K Customers/24hr"));
    assert_eq!(status.observed_generation, sender.metadata.generation);
    for type_ in ["Ready", "Synced", "Stalled"] {
        let c = condition(&sender, type_).unwrap_or_else(|| panic!("{type_} missing"));
        assert_eq!(c.observed_generation, sender.metadata.generation, "{type_}");
    }
    assert_eq!(condition(&sender, "Synced").unwrap().status, "True");
    assert_eq!(condition(&sender, "Stalled").unwrap().status, "False");
    assert!(
        sender
            .finalizers()
            .iter()
            .any(|f| f == "messaging.senderops.io/cleanup"),
        "{:?}",
        sender.finalizers()
    );

    let twilio = f.sim_sender(AUTO).await;
    assert_eq!(twilio["sid"], sid.as_str());
    assert_eq!(twilio["create_requests"], 1);
    assert_eq!(f.sim.create_attempts(AUTO).await, 1, "one create attempt");
    assert_eq!(twilio["profile"]["name"], "Acme");
    let created = f.wait_event("acme", "Created").await;
    assert!(created.contains(&sid), "{created}");
    f.wait_event("acme", "Online").await;
}

#[tokio::test]
async fn a_code_secret_created_later_is_submitted_at_once() {
    let f = Fixture::new("code").await;
    f.sim.number(CODED, "needs_code").await;
    f.apply(
        "coded",
        spec(
            CODED,
            json!({"verification": {"method": "sms", "codeSecretRef": {"name": "coded-otp", "key": "otp"}}}),
        ),
    )
    .await;

    let waiting = f
        .wait_condition("coded", "Ready", "False", "WaitingForCode")
        .await;
    let message = condition(&waiting, "Ready").unwrap().message;
    assert!(
        message.contains("Secret coded-otp") && message.contains("\"otp\""),
        "the message names the Secret and key to create: {message}"
    );
    assert_eq!(condition(&waiting, "Stalled").unwrap().status, "False");
    let sid = sid_of(&waiting);
    let code = f.sim.otp(&sid).await.expect("the simulator sent a code");

    // The resync is an hour away: only the Secret watch can bring this sender on.
    let written = Instant::now();
    f.secret("coded-otp", &[("otp", &code)]).await;
    let ready = f.wait_ready("coded").await;
    let took = written.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "ONLINE {took:?} after the code"
    );
    let submitted = ready
        .status
        .as_ref()
        .and_then(|s| s.verification.as_ref())
        .and_then(|v| v.submitted_code.clone())
        .expect("the submission is recorded");
    assert_eq!(
        (
            submitted.secret_name.as_str(),
            submitted.key.as_str(),
            submitted.rejected
        ),
        ("coded-otp", "otp", false)
    );
    let status_json = serde_json::to_string(&ready.status).unwrap();
    assert!(
        !status_json.contains(&code),
        "status holds the code: {status_json}"
    );
    f.wait_event("coded", "CodeSubmitted").await;
    assert_eq!(f.sim.sender(&sid).await["wrong_codes"], 0);
}

#[tokio::test]
async fn a_wrong_code_is_reported_once_and_a_fixed_one_goes_through() {
    let f = Fixture::new("wrong").await;
    f.sim.number(CODED, "needs_code").await;
    f.apply("coded", spec_with_code(CODED, "otp")).await;
    let waiting = f
        .wait_condition("coded", "Ready", "False", "WaitingForCode")
        .await;
    let sid = sid_of(&waiting);
    let code = f.sim.otp(&sid).await.expect("a code was sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };

    f.secret("otp", &[("code", wrong)]).await;
    let rejected = f
        .wait_condition("coded", "Stalled", "True", "CodeRejected")
        .await;
    let message = condition(&rejected, "Stalled").unwrap().message;
    assert!(
        message.contains("Secret otp") && message.contains("senderops.io/resend-code"),
        "{message}"
    );
    assert!(
        !message.contains(wrong),
        "the message quotes the code: {message}"
    );
    let note = f.wait_event("coded", "CodeRejected").await;
    assert!(!note.contains(wrong), "{note}");

    // Ask again through an unrelated change: the rejected version is not sent again.
    f.reconcile_and_wait("coded", "1").await;
    let rejections = f
        .events("coded")
        .await
        .into_iter()
        .filter(|e| e.1 == "CodeRejected")
        .count();
    assert_eq!(rejections, 1, "one Event for one rejected code");
    let twilio = f.sim.sender(&sid).await;
    assert_eq!(twilio["wrong_codes"], 1, "{twilio}");
    assert_eq!(twilio["status"], "PENDING_VERIFICATION");

    f.secret("otp", &[("code", &code)]).await;
    let ready = f.wait_ready("coded").await;
    assert_eq!(condition(&ready, "Stalled").unwrap().status, "False");
    assert_eq!(f.sim.sender(&sid).await["wrong_codes"], 1);
    assert_eq!(f.sim.sender(&sid).await["create_requests"], 1);
    assert_eq!(
        f.sim.create_attempts(CODED).await,
        1,
        "a rejected code asks for no new one"
    );
}

#[tokio::test]
async fn reconcile_requests_in_a_burst_are_spaced_per_object() {
    let f = Fixture::with_args("forced", &["--reconcile-request-interval", "10s"]).await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    f.wait_ready("acme").await;
    let reads = async || f.sim.count("GET", "/v2/Channels/Senders/{Sid}", 200).await;
    let before = reads().await;
    let asked = Instant::now();
    for value in ["v1", "v2", "v3", "v4", "v5"] {
        f.request_reconcile("acme", value).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f.wait_for("acme", "the last request handled", |s| {
        s.status
            .as_ref()
            .and_then(|st| st.last_handled_reconcile_at.as_deref())
            == Some("v5")
    })
    .await;
    assert!(
        asked.elapsed() >= Duration::from_secs(5),
        "the burst waited for the interval after the last reconcile ({:?})",
        asked.elapsed()
    );
    assert_eq!(
        reads().await - before,
        1,
        "one reconcile (one read of the sender) for five requests"
    );
}

/// Marks the code Secret as External Secrets or Argo CD would: a new `resourceVersion`, the
/// same code. Returns the new version.
async fn relabel_code_secret(f: &Fixture, round: &str) -> String {
    let patched = f
        .secrets
        .patch(
            "otp",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"metadata": {
                "labels": {"synced-by": round},
                "annotations": {"example.com/last-sync": round},
            }})),
        )
        .await
        .expect("label the code Secret");
    patched.resource_version().expect("a resourceVersion")
}

#[tokio::test]
async fn a_refused_codes_secret_relabelled_is_not_submitted_again_and_a_restart_resubmits_it_once()
{
    let mut f = Fixture::new("relabel").await;
    f.sim.number(CODED, "needs_code").await;
    f.apply("coded", spec_with_code(CODED, "otp")).await;
    let sid = sid_of(
        &f.wait_condition("coded", "Ready", "False", "WaitingForCode")
            .await,
    );
    let code = f.sim.otp(&sid).await.expect("a code was sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    f.secret("otp", &[("code", wrong)]).await;
    f.wait_condition("coded", "Stalled", "True", "CodeRejected")
        .await;
    assert_eq!(f.sim.sender(&sid).await["wrong_codes"], 1);

    let version = relabel_code_secret(&f, "1").await;
    f.reconcile_and_wait("coded", "after-label-1").await;
    let seen = f.get("coded").await.unwrap();
    let submitted = seen
        .status
        .as_ref()
        .and_then(|s| s.verification.as_ref())
        .and_then(|v| v.submitted_code.as_ref())
        .expect("the submission is recorded");
    assert_eq!(
        (submitted.resource_version.as_str(), submitted.rejected),
        (version.as_str(), true),
        "the new version was read and found to hold the refused code"
    );
    assert_eq!(
        f.sim.sender(&sid).await["wrong_codes"],
        1,
        "the same code is not submitted again"
    );
    assert_eq!(condition(&seen, "Stalled").unwrap().reason, "CodeRejected");

    // A restart forgets the fingerprint (it is never written anywhere): the version decides,
    // once.
    f.operator.restart();
    relabel_code_secret(&f, "2").await;
    f.reconcile_and_wait("coded", "after-restart").await;
    assert_eq!(
        f.sim.sender(&sid).await["wrong_codes"],
        2,
        "one resubmission"
    );
    relabel_code_secret(&f, "3").await;
    f.reconcile_and_wait("coded", "after-label-3").await;
    assert_eq!(f.sim.sender(&sid).await["wrong_codes"], 2, "and no more");
}

#[tokio::test]
async fn spec_changes_reach_twilio_and_removed_fields_are_cleared() {
    let f = Fixture::new("update").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply(
        "acme",
        spec(
            AUTO,
            json!({
                "profile": {"about": "Old about", "emails": ["help@acme.example.com"]},
                "webhook": {"callbackUrl": "https://hooks.acme.example.com/in", "callbackMethod": "PUT"},
            }),
        ),
    )
    .await;
    let ready = f.wait_ready("acme").await;
    let sid = sid_of(&ready);
    let updates_before = f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await;
    assert_eq!(updates_before, 0, "creation sent everything at once");

    f.patch(
        "acme",
        json!({"spec": {"profile": {"about": "New about", "description": "Tools"}}}),
    )
    .await;
    let generation = f.get("acme").await.unwrap().metadata.generation;
    let caught_up = f
        .wait_for("acme", "Ready at the new generation", |s| {
            s.status.as_ref().and_then(|st| st.observed_generation) == generation
                && condition(s, "Ready").is_some_and(|c| c.status == "True")
        })
        .await;
    assert_eq!(
        condition(&caught_up, "Ready").unwrap().observed_generation,
        generation
    );
    let twilio = f.sim.sender(&sid).await;
    assert_eq!(twilio["profile"]["about"], "New about");
    assert_eq!(twilio["profile"]["description"], "Tools");
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await,
        1,
        "one update with only what changed"
    );
    let note = f.wait_event("acme", "Updated").await;
    assert!(
        note.contains("profile.about") && note.contains("profile.description"),
        "{note}"
    );

    // Removing fields from the spec clears them at Twilio.
    f.patch(
        "acme",
        json!({"spec": {"profile": {"about": null, "emails": null}, "webhook": null}}),
    )
    .await;
    let generation = f.get("acme").await.unwrap().metadata.generation;
    f.wait_for("acme", "Ready after the removal", |s| {
        s.status.as_ref().and_then(|st| st.observed_generation) == generation
            && condition(s, "Ready").is_some_and(|c| c.status == "True")
    })
    .await;
    let twilio = f.sim.sender(&sid).await;
    assert_eq!(twilio["profile"]["about"], Value::Null, "{twilio}");
    assert_eq!(twilio["profile"]["emails"], Value::Null, "{twilio}");
    assert_eq!(twilio["profile"]["description"], "Tools", "kept");
    assert_eq!(twilio["webhook"]["callback_url"], Value::Null, "{twilio}");
    assert_eq!(
        twilio["webhook"]["callback_method"],
        Value::Null,
        "{twilio}"
    );
    assert_eq!(twilio["profile"]["name"], "Acme");

    // Nothing differs any more: a forced reconcile sends nothing.
    let updates = f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await;
    f.reconcile_and_wait("acme", "now").await;
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await,
        updates
    );
    assert_eq!(f.sim.sender(&sid).await["status"], "ONLINE");
}

#[tokio::test]
async fn quality_rating_and_messaging_limit_changes_are_mirrored() {
    let f = Fixture::new("quality").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);

    f.sim
        .patch_sender(
            &sid,
            json!({"quality_rating": "LOW", "messaging_limit": "10K Customers/24hr"}),
        )
        .await;
    // The resync is an hour away; the annotation asks for a reconcile now.
    f.request_reconcile("acme", "t1").await;
    let sender = f
        .wait_for("acme", "LOW / 10K", |s| {
            s.status.as_ref().is_some_and(|st| {
                st.quality_rating.as_deref() == Some("LOW")
                    && st.messaging_limit.as_deref() == Some("10K Customers/24hr")
            })
        })
        .await;
    assert_eq!(condition(&sender, "Ready").unwrap().status, "True");
    let quality = f.wait_event("acme", "QualityRatingChanged").await;
    assert!(
        quality.contains("HIGH") && quality.contains("LOW"),
        "{quality}"
    );
    f.wait_event("acme", "MessagingLimitChanged").await;
    let events = f.events("acme").await;
    let warning = events
        .iter()
        .find(|(_, reason, _)| reason == "QualityRatingChanged")
        .unwrap();
    assert_eq!(warning.0, "Warning", "a LOW rating is a warning");

    // OFFLINE with reasons is mirrored too.
    f.sim
        .patch_sender(
            &sid,
            json!({"status": "OFFLINE", "offline_reasons": [{"code": "30008", "message": "No delivery"}]}),
        )
        .await;
    f.request_reconcile("acme", "t2").await;
    let offline = f.wait_condition("acme", "Ready", "False", "Offline").await;
    let status = offline.status.unwrap();
    assert_eq!(status.twilio_status.as_deref(), Some("OFFLINE"));
    assert_eq!(status.offline_reasons[0].code.as_deref(), Some("30008"));
    f.wait_event("acme", "Offline").await;
}

#[tokio::test]
async fn a_sender_already_registered_in_the_account_is_adopted() {
    let f = Fixture::new("adopt").await;
    f.sim.number(AUTO, "auto_verify").await;
    let existing = register_by_hand(&f.sim.client_a(), AUTO, "Acme").await;
    wait_for_status(&f.sim.client_a(), &existing.sid, SenderStatus::Online).await;

    f.apply("acme", spec(AUTO, json!({}))).await;
    let ready = f.wait_ready("acme").await;
    assert_eq!(sid_of(&ready), existing.sid);
    let note = f.wait_event("acme", "Adopted").await;
    assert!(note.contains(&existing.sid), "{note}");
    assert_eq!(
        f.sim_sender(AUTO).await["create_requests"],
        1,
        "the operator did not create it again"
    );
    assert_eq!(
        f.sim.create_attempts(AUTO).await,
        1,
        "the registration by hand was the only create attempt (a second one would be refused \
         with 63110 and adopted all the same)"
    );
    assert!(
        !f.events("acme")
            .await
            .iter()
            .any(|(_, r, _)| r == "Created"),
        "{:?}",
        f.events("acme").await
    );
}

#[tokio::test]
async fn a_sender_deleted_at_twilio_is_registered_again() {
    let f = Fixture::new("recreate").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    let old = sid_of(&f.wait_ready("acme").await);

    f.sim
        .client_a()
        .delete(&old)
        .await
        .expect("delete at Twilio");
    f.request_reconcile("acme", "gone").await;
    let again = f
        .wait_for("acme", "Ready with a new SID", |s| {
            s.status
                .as_ref()
                .and_then(|st| st.sid.as_deref())
                .is_some_and(|sid| sid != old)
                && condition(s, "Ready").is_some_and(|c| c.status == "True")
        })
        .await;
    let new = sid_of(&again);
    let note = f.wait_event("acme", "Recreated").await;
    assert!(note.contains(&new), "{note}");
    assert_eq!(f.sim_sender(AUTO).await["sid"], new.as_str());
    assert_eq!(
        f.sim.create_attempts(AUTO).await,
        2,
        "the registration and the one registration again"
    );
}

#[tokio::test]
async fn deletion_honours_the_deletion_policy() {
    let f = Fixture::new("delete").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.sim.number(CODED, "auto_verify").await;
    f.apply("deleted", spec(AUTO, json!({}))).await;
    f.apply("orphaned", spec(CODED, json!({"deletionPolicy": "Orphan"})))
        .await;
    let deleted_sid = sid_of(&f.wait_ready("deleted").await);
    let orphan_sid = sid_of(&f.wait_ready("orphaned").await);

    f.delete("deleted").await;
    f.delete("orphaned").await;
    f.wait_gone("deleted").await;
    f.wait_gone("orphaned").await;

    assert!(
        f.sim_senders_for(AUTO).await.is_empty(),
        "Delete deregistered {deleted_sid}"
    );
    assert_eq!(
        f.sim_sender(CODED).await["sid"],
        orphan_sid.as_str(),
        "Orphan left it registered"
    );
    assert_eq!(
        f.sim
            .count("DELETE", "/v2/Channels/Senders/{Sid}", 204)
            .await,
        1
    );
}

#[tokio::test]
async fn a_blocked_deletion_says_why_and_orphan_releases_it() {
    let mut f = Fixture::new("stuck").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);

    // A running operator deletes with the credentials it last read (operator_disruptions.rs);
    // one restarted after the Secret went has none.
    f.operator.kill();
    f.delete_secret("twilio").await;
    f.delete("acme").await;
    f.operator.restart();
    let blocked = f
        .wait_condition("acme", "Synced", "False", "DeletionBlocked")
        .await;
    let message = condition(&blocked, "Synced").unwrap().message;
    for needle in [sid.as_str(), "Secret twilio", "deletionPolicy to Orphan"] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    let stalled = condition(&blocked, "Stalled").unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "CredentialsNotFound")
    );
    assert_eq!(
        f.sim_senders_for(AUTO).await.len(),
        1,
        "nothing was deleted"
    );
    assert!(blocked.metadata.deletion_timestamp.is_some());
    f.wait_event("acme", "CredentialsNotFound").await;

    f.patch("acme", json!({"spec": {"deletionPolicy": "Orphan"}}))
        .await;
    f.wait_gone("acme").await;
    assert_eq!(f.sim_sender(AUTO).await["sid"], sid.as_str());
}

#[tokio::test]
async fn suspend_stops_all_twilio_calls() {
    let f = Fixture::new("suspend").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);

    f.patch("acme", json!({"spec": {"suspend": true}})).await;
    let suspended = f
        .wait_condition("acme", "Synced", "False", "Suspended")
        .await;
    assert_eq!(
        condition(&suspended, "Ready").unwrap().status,
        "True",
        "Ready keeps its last known value"
    );
    let requests = f.sim.requests_total().await;
    // A spec change and a forced reconcile: the reconcile runs (it observes the generation and
    // is counted), and calls Twilio for nothing.
    f.patch(
        "acme",
        json!({
            "metadata": {"annotations": {"senderops.io/reconcile-requested-at": "s"}},
            "spec": {"profile": {"about": "changed while suspended"}},
        }),
    )
    .await;
    let generation = f.get("acme").await.unwrap().metadata.generation;
    // The reconcile that saw both the new generation and the request, finished.
    f.wait_for("acme", "observed while suspended", |s| {
        s.status.as_ref().is_some_and(|st| {
            st.observed_generation == generation
                && st.last_handled_reconcile_at.as_deref() == Some("s")
        })
    })
    .await;
    assert_eq!(f.sim.requests_total().await, requests, "no Twilio call");
    f.reconcile_and_wait("acme", "s2").await;
    assert_eq!(
        f.sim.requests_total().await,
        requests,
        "no Twilio call on a forced reconcile either"
    );

    f.patch("acme", json!({"spec": {"suspend": false}})).await;
    f.wait_for("acme", "the change applied", |s| {
        condition(s, "Synced").is_some_and(|c| c.status == "True")
    })
    .await;
    Wait::until("the change to reach Twilio")
        .within(Duration::from_secs(20))
        .poll(
            async || f.sim.sender(&sid).await,
            |twilio| twilio["profile"]["about"] == "changed while suspended",
        )
        .await;
}

#[tokio::test]
async fn a_sender_under_twilio_review_waits_and_is_ready_once_twilio_approves_it() {
    let f = Fixture::new("review").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);

    // TWILIO_REVIEW never happens by itself in the simulator: Twilio puts the sender there.
    f.sim
        .patch_sender(&sid, json!({"status": "TWILIO_REVIEW"}))
        .await;
    f.request_reconcile("acme", "review").await;
    let review = f.wait_condition("acme", "Ready", "False", "InReview").await;
    let message = condition(&review, "Ready").unwrap().message;
    assert!(
        message.contains("Twilio is reviewing the sender"),
        "{message}"
    );
    assert_eq!(
        review.status.as_ref().unwrap().twilio_status.as_deref(),
        Some("TWILIO_REVIEW")
    );
    assert_eq!(
        condition(&review, "Stalled").unwrap().status,
        "False",
        "a review needs nothing from the user"
    );

    // Twilio is at work, so the operator polls by itself: no reconcile is asked for.
    f.sim.patch_sender(&sid, json!({"status": "ONLINE"})).await;
    let ready = f.wait_ready("acme").await;
    assert_eq!(sid_of(&ready), sid);
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await,
        0,
        "nothing differed, nothing was sent"
    );
    assert_eq!(f.sim.create_attempts(AUTO).await, 1);
}

#[tokio::test]
async fn a_new_sender_offline_without_reasons_waits_and_becomes_ready_by_itself() {
    // OFFLINE for 40 steps (2 s) after registration, as Twilio warns a new sender may be for a
    // few minutes: long enough for the operator to see it.
    let sim = Sim::start_with(|config| config.offline_steps = 40).await;
    let f = Fixture::with_sim("offline", sim, &[]).await;
    f.sim.number(AUTO, "offline_after_registration").await;
    f.apply("acme", spec(AUTO, json!({}))).await;

    let offline = f.wait_condition("acme", "Ready", "False", "Offline").await;
    let message = condition(&offline, "Ready").unwrap().message;
    assert!(
        message.contains("without a reason for you to act on")
            && message.contains("new senders may read OFFLINE for a few minutes"),
        "{message}"
    );
    let status = offline.status.as_ref().unwrap();
    assert_eq!(status.twilio_status.as_deref(), Some("OFFLINE"));
    assert!(
        status.offline_reasons.is_empty(),
        "{:?}",
        status.offline_reasons
    );
    assert_eq!(
        condition(&offline, "Stalled").unwrap().status,
        "False",
        "nothing for the user to do"
    );
    let note = f.wait_event("acme", "Offline").await;
    assert!(note.contains("no reason given"), "{note}");

    // Polled like a sender in motion: ONLINE without anything asked for.
    let ready = f.wait_ready("acme").await;
    assert_eq!(
        ready.status.as_ref().unwrap().twilio_status.as_deref(),
        Some("ONLINE")
    );
    assert!(
        f.sim.count("GET", "/v1/Alerts", 200).await > 0,
        "the Error Log was read for the OFFLINE sender"
    );
    let events = f.events("acme").await;
    assert!(
        !events.iter().any(|(_, r, _)| r == "TwilioAlert"),
        "no alert was logged, none reported: {events:?}"
    );
    assert_eq!(f.sim.create_attempts(AUTO).await, 1);
}

#[tokio::test]
async fn a_code_that_never_arrives_waits_for_the_user_who_can_ask_for_another() {
    let f = Fixture::new("nocode").await;
    f.sim.number(CODED, "code_never_arrives").await;
    f.apply("coded", spec_with_code(CODED, "otp")).await;
    let waiting = f
        .wait_condition("coded", "Ready", "False", "WaitingForCode")
        .await;
    let message = condition(&waiting, "Ready").unwrap().message;
    assert!(
        message.contains("create Secret otp") && message.contains("\"code\""),
        "{message}"
    );
    assert_eq!(condition(&waiting, "Stalled").unwrap().status, "False");
    let sid = sid_of(&waiting);
    assert_eq!(f.sim.otp(&sid).await, None, "no code arrived");

    // The user, who got no code, asks for another: a create for the same number.
    f.patch(
        "coded",
        json!({"metadata": {"annotations": {"senderops.io/resend-code": "again"}}}),
    )
    .await;
    let again = f
        .wait_for("coded", "the resend handled", |s| {
            s.status
                .as_ref()
                .and_then(|st| st.verification.as_ref())
                .and_then(|v| v.resend_code_request.as_deref())
                == Some("again")
        })
        .await;
    let twilio = f.sim.sender(&sid).await;
    assert_eq!(twilio["codes_sent"], 2, "{twilio}");
    assert_eq!(twilio["status"], "PENDING_VERIFICATION", "{twilio}");
    assert_eq!(
        f.sim.create_attempts(CODED).await,
        2,
        "the registration and the one create that asked for a new code"
    );
    assert_eq!(sid_of(&again), sid, "the same sender");
    let asked = f
        .wait_condition("coded", "Ready", "False", "PendingVerification")
        .await;
    let message = condition(&asked, "Ready").unwrap().message;
    assert!(
        message.contains("asked Twilio for a new code") && message.contains("Secret otp"),
        "{message}"
    );
    assert_eq!(condition(&asked, "Stalled").unwrap().status, "False");
    assert_eq!(
        f.sim.otp(&sid).await,
        None,
        "the new code did not arrive either"
    );
    assert_eq!(
        f.sim.sender(&sid).await["wrong_codes"],
        0,
        "nothing submitted"
    );
}

#[tokio::test]
async fn a_sender_twilio_is_updating_reads_updating_and_then_ready_without_a_new_online_event() {
    let f = Fixture::new("updating").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    let sid = sid_of(&f.wait_ready("acme").await);
    f.wait_event("acme", "Online").await;
    let online_events = async || {
        f.events("acme")
            .await
            .into_iter()
            .filter(|(_, r, _)| r == "Online")
            .count()
    };
    assert_eq!(online_events().await, 1);

    // Twilio applies a change of its own (an update from the Console, say).
    f.sim
        .patch_sender(&sid, json!({"status": "ONLINE:UPDATING"}))
        .await;
    f.request_reconcile("acme", "updating").await;
    let updating = f.wait_condition("acme", "Ready", "False", "Updating").await;
    let message = condition(&updating, "Ready").unwrap().message;
    assert!(
        message.contains("Twilio is applying a profile or webhook change"),
        "{message}"
    );
    assert_eq!(
        updating.status.as_ref().unwrap().twilio_status.as_deref(),
        Some("ONLINE:UPDATING")
    );
    assert_eq!(condition(&updating, "Stalled").unwrap().status, "False");

    f.sim.patch_sender(&sid, json!({"status": "ONLINE"})).await;
    f.wait_ready("acme").await;
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await,
        0,
        "nothing differed, nothing was sent"
    );
    assert_eq!(
        online_events().await,
        1,
        "ONLINE again after ONLINE:UPDATING is no new Online event: {:?}",
        f.events("acme").await
    );
}

#[tokio::test]
async fn the_operator_stops_cleanly_on_sigterm() {
    let mut f = Fixture::new("sigterm").await;
    f.sim.number(AUTO, "auto_verify").await;
    f.apply("acme", spec(AUTO, json!({}))).await;
    f.wait_ready("acme").await;
    let status = f.operator.stop();
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        f.operator.log_tail(20)
    );
    assert!(f.operator.log().contains("senderops stopped"));
}
