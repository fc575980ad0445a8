//! Cleanup: the object is being deleted. `Orphan` lets it go at once; `Delete` deletes the
//! sender at Twilio and keeps the finalizer until Twilio no longer has it. A deletion only the
//! user can unblock (suspended, no usable credentials, another account, a Twilio refusal) is a
//! Stalled outcome with a long requeue and an Event, not an error; errors are kept for
//! transient failures, which back off. The decisions are the pure functions below.

use tokio::time::Instant;

use super::run::{Outcome, Requeue, Run};
use super::shared::{Halt, Phase, REREGISTER_HINT, account_changed, hold_worker, stop};
use crate::api::{DeletionPolicy, WhatsAppSenderSpec, WhatsAppSenderStatus, reason};
use crate::controllers::whatsapp_sender::conditions::{SenderAssessment, stall_reason};
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::state::{NumberChanged, NumberDeleted, SidGone};
use crate::controllers::whatsapp_sender::uninstall::{self, Crd};
use crate::error::{Error, Result, twilio_message};
use crate::runtime::conditions::{Assessment, Status, Verdict};
use crate::runtime::credentials::CredentialsProblem;
use crate::runtime::driver::Cleanup;
use crate::runtime::events::Note;
use crate::twilio::{ErrorClass, Sender, TwilioClient, TwilioError};

const ORPHAN_HINT: &str = "or set spec.deletionPolicy to Orphan to leave the sender registered \
                           at Twilio and let this object go";

/// What the deletion needs first.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Let the object go: `Orphan`, or it never got as far as Twilio.
    Release,
    /// Delete it at Twilio (with credentials for its account).
    Delete,
    /// Only the user can unblock it.
    Blocked(Outcome),
}

pub fn decide(spec: &WhatsAppSenderSpec, status: &WhatsAppSenderStatus) -> Step {
    if spec.deletion_policy == DeletionPolicy::Orphan {
        return Step::Release;
    }
    if status.sid.is_none() && status.account_sid.is_none() {
        return Step::Release;
    }
    if spec.suspend {
        return Step::Blocked(blocked(
            reason::SUSPENDED,
            format!(
                "the sender is suspended, so the operator does not call Twilio to delete it: set \
                 spec.suspend to false, {ORPHAN_HINT}"
            ),
        ));
    }
    Step::Delete
}

/// A deletion waiting for the user: `Ready=False Deleting`, `Synced=False DeletionBlocked`,
/// and `Stalled=True` with the reason.
pub fn blocked(reason: &'static str, message: String) -> Outcome {
    let mut assessment = Assessment::deletion_blocked(message.clone());
    assessment.stalled = Some(Verdict::new(Status::True, reason, message));
    Outcome::new(assessment, Requeue::Resync)
}

/// No usable credentials to delete with.
pub fn no_credentials(sid: Option<&str>, problem: &CredentialsProblem) -> Outcome {
    let sid = sid.unwrap_or("(SID not recorded)");
    let (reason, fix) = if problem.is_not_found() {
        (
            reason::CREDENTIALS_NOT_FOUND,
            format!(
                "the operator has no earlier copy of them (it restarted since it last read \
                 them); restore the Secret, or, if it cannot be restored (a namespace being \
                 deleted accepts no new Secret), set spec.deletionPolicy to Orphan to let this \
                 object go and delete sender {sid} at Twilio yourself"
            ),
        )
    } else {
        (
            reason::INVALID_CREDENTIALS,
            "fix the Secret, or set spec.deletionPolicy to Orphan to leave the sender \
             registered at Twilio and let this object go"
                .to_string(),
        )
    };
    blocked(
        reason,
        format!("cannot delete the Twilio sender {sid}: {problem}; {fix}"),
    )
}

/// What the delete's answer calls for.
#[derive(Debug)]
pub enum Deleted {
    /// Gone, or going: check that Twilio no longer has it.
    Confirm,
    Blocked(Outcome),
    Failed(TwilioError),
}

pub fn deleted(answer: Result<(), TwilioError>) -> Deleted {
    match answer {
        Ok(()) => Deleted::Confirm,
        Err(err) if err.is_not_found() => Deleted::Confirm,
        Err(err) if err.class() == ErrorClass::NeedsUser => Deleted::Blocked(blocked(
            stall_reason(err.problem()),
            format!(
                "{}; {ORPHAN_HINT}",
                twilio_message("delete the sender", &err)
            ),
        )),
        Err(err) => Deleted::Failed(err),
    }
}

/// What reading the sender after the delete says.
#[derive(Debug)]
pub enum Confirmed {
    Gone,
    /// Twilio still has it: look again soon.
    StillThere(Outcome),
    Failed(TwilioError),
}

pub fn confirmed(
    sid: &str,
    answer: Result<Sender, TwilioError>,
    poll: std::time::Duration,
) -> Confirmed {
    match answer {
        Err(err) if err.is_not_found() => Confirmed::Gone,
        Ok(still) => Confirmed::StillThere(Outcome::new(
            Assessment::deletion_blocked(format!(
                "Twilio still has sender {sid} ({}) after the delete; checking again",
                still.status
            )),
            Requeue::After(poll),
        )),
        Err(err) => Confirmed::Failed(err),
    }
}

/// What reading the recorded SID before a deletion says.
#[derive(Debug)]
pub enum Checked {
    /// This number, in this account: it may be deleted.
    Ours,
    /// Not this object's to delete: why. `missing`: Twilio has no such sender in the account.
    Not {
        why: String,
        missing: bool,
    },
    Failed(TwilioError),
}

pub fn checked(phone: &str, answer: Result<Sender, TwilioError>) -> Checked {
    match answer {
        Ok(sender) if sender.is_for(phone) => Checked::Ours,
        Ok(sender) => Checked::Not {
            why: format!("Twilio has it as {:?}, not {phone},", sender.sender_id),
            missing: false,
        },
        Err(err) if err.is_not_found() => Checked::Not {
            why: "Twilio has no such sender (deleted already, or never this account's)".into(),
            missing: true,
        },
        Err(err) => Checked::Failed(err),
    }
}

/// Why an object that does not own its number is let go without a deletion at Twilio.
pub fn not_owner_message(sid: Option<&str>, phone: &str, account: &str) -> String {
    format!(
        "let the object go without deleting Twilio sender {}: another WhatsAppSender manages \
         {phone} in account {account}, and only that one deletes it",
        sid.unwrap_or("(SID not recorded)")
    )
}

/// Runs the cleanup: `Released` lets the object go; a deletion not finished keeps the
/// finalizer with the outcome's requeue; transient failures are recorded in `Synced` and back
/// off.
pub async fn run(run: &mut Run<'_>) -> Result<Cleanup> {
    let outcome = match steps(run).await {
        Ok(None) => return Ok(Cleanup::Released),
        Ok(Some(outcome)) => outcome,
        Err(Halt::Outcome(outcome)) => *outcome,
        Err(Halt::Failed(err)) => {
            let (_, message) = err.condition();
            if let Err(write) = run.conclude(&Assessment::deletion_blocked(message)).await {
                tracing::warn!(error = %write, "could not record the failure in status");
            }
            return Err(err);
        }
    };
    run.conclude(&outcome.assessment).await?;
    Ok(Cleanup::Kept(run.action(&outcome.requeue)))
}

/// A failed Twilio request to `action` during deletion: blocked when only the user can fix
/// it, otherwise a failure to back off from.
fn twilio(action: &'static str) -> impl FnOnce(TwilioError) -> Halt {
    move |err| match err.class() {
        ErrorClass::NeedsUser => Halt::Outcome(Box::new(blocked(
            stall_reason(err.problem()),
            format!("{}; {ORPHAN_HINT}", twilio_message(action, &err)),
        ))),
        _ => Halt::Failed(Error::twilio(action)(err)),
    }
}

/// `None` lets the object go.
async fn steps(run: &mut Run<'_>) -> Phase<Option<Outcome>> {
    let sid = run.status.sid.clone();
    let account = run.status.account_sid.clone();
    run.conclusion.leaves_onboarding = true;
    let waits_for_user = match decide(run.spec(), &run.status) {
        Step::Release => {
            if run.spec().deletion_policy == DeletionPolicy::Orphan
                && let Some(sid) = sid
            {
                orphaned(run, sid, account).await;
            }
            return Ok(None);
        }
        Step::Blocked(outcome) => Some(outcome),
        Step::Delete => None,
    };
    // Before a blocked deletion too: an uninstall must not wait on a suspended sender either.
    if uninstall::crd(&run.ctx.shared.kube)
        .await
        .map_err(Error::Kube)?
        == Crd::Uninstalling
    {
        run.note(Note::warning(
            event::ORPHANED,
            uninstall::orphaned_message(sid.as_deref()),
        ))
        .await;
        if let (Some(account), Some(sid)) = (account, sid) {
            run.conclusion.gone = Some(SidGone { account, sid });
        }
        return Ok(None);
    }
    if let Some(outcome) = waits_for_user {
        return stop(outcome);
    }
    let client = account_client(run, sid.as_deref(), account.as_deref()).await?;
    let account = client.account_sid();
    // Only the number's owner deletes it: a copy of a manifest, or an object that let go of
    // the SID, must not deregister the number another object manages.
    let state = &run.ctx.state;
    if !state.owns_number(account, run.phone(), &run.key, &run.uid) {
        let message = not_owner_message(sid.as_deref(), run.phone(), account);
        run.note(Note::warning(event::DUPLICATE_SENDER, message))
            .await;
        return Ok(None);
    }
    match sid_to_delete(run, &client, sid).await? {
        Some(sid) => delete(run, &client, &sid).await,
        None => Ok(None),
    }
}

/// `deletionPolicy: Orphan` leaves the sender registered at Twilio.
async fn orphaned(run: &mut Run<'_>, sid: String, account: Option<String>) {
    run.note(Note::normal(
        event::ORPHANED,
        format!("left Twilio sender {sid} registered (deletionPolicy: Orphan)"),
    ))
    .await;
    if let Some(account) = account {
        run.conclusion.gone = Some(SidGone { account, sid });
    }
}

/// The client to delete with ([`client`]), if it acts for the account the sender was
/// registered in (`recorded`); the reconcile then holds one of the account's workers.
async fn account_client(
    run: &mut Run<'_>,
    sid: Option<&str>,
    recorded: Option<&str>,
) -> Phase<TwilioClient> {
    let client = client(run, sid).await?;
    if let Some(recorded) = recorded
        && recorded != client.account_sid()
    {
        let secret = &run.spec().credentials_ref.name;
        let message = account_changed(sid, secret, recorded, client.account_sid());
        return stop(blocked(
            reason::ACCOUNT_CHANGED,
            format!("{message}; {ORPHAN_HINT}"),
        ));
    }
    run.ctx.state.uses_scope(&run.key, &run.uid, client.scope());
    hold_worker(run, &client)?;
    Ok(client)
}

/// The SID to delete: the one in status if Twilio has it as this number in this account, or
/// the number's sender in a fresh list when status has none. `None` lets the object go.
async fn sid_to_delete(
    run: &mut Run<'_>,
    client: &TwilioClient,
    sid: Option<String>,
) -> Phase<Option<String>> {
    let Some(sid) = sid else {
        // The operator may have died between a create and the SID write.
        let listed = run
            .ctx
            .state
            .lookup(client, run.phone(), true, run.facts.first_seen)
            .await
            .map_err(twilio("look up the number"))?;
        return Ok(listed.sender.map(|sender| sender.sid));
    };
    // A SID in status may have been edited, or restored from another backup: it is deleted
    // only if Twilio has it as this number in this account.
    match checked(run.phone(), client.fetch(&sid).await) {
        Checked::Ours => Ok(Some(sid)),
        Checked::Not { why, missing } => {
            let account = client.account_sid();
            let message = format!(
                "let the object go without deleting Twilio sender {sid}: {why} in account \
                 {account}, so there is nothing of this object's to delete"
            );
            run.note(Note::warning(event::NOT_DELETED, message)).await;
            if missing {
                run.conclusion.gone = Some(SidGone {
                    account: client.scope().to_string(),
                    sid,
                });
            }
            Ok(None)
        }
        Checked::Failed(err) => Err(twilio("read the sender before deleting it")(err)),
    }
}

/// Deletes `sid` at Twilio and keeps the finalizer until Twilio no longer has it.
async fn delete(run: &mut Run<'_>, client: &TwilioClient, sid: &str) -> Phase<Option<Outcome>> {
    match deleted(client.delete(sid).await) {
        Deleted::Confirm => {}
        Deleted::Blocked(outcome) => return stop(outcome),
        Deleted::Failed(err) => return Err(Error::twilio("delete the sender")(err).into()),
    }
    // Keep the finalizer until Twilio no longer has the sender.
    let poll = run.ctx.settings.pacing.poll_interval;
    match confirmed(sid, client.fetch(sid).await, poll) {
        Confirmed::Gone => {}
        Confirmed::StillThere(outcome) => return stop(outcome),
        Confirmed::Failed(err) => return Err(twilio("confirm the deletion")(err)),
    }
    let (scope, phone) = (client.scope().to_string(), run.phone().to_string());
    run.conclusion.gone = Some(SidGone {
        account: scope.clone(),
        sid: sid.to_string(),
    });
    run.conclusion.number_changed = Some(NumberChanged {
        account: scope.clone(),
        phone: phone.clone(),
        at: Instant::now(),
    });
    run.conclusion.deleted = Some(NumberDeleted {
        account: scope,
        phone,
        sid: sid.to_string(),
    });
    run.note(Note::normal(
        event::DELETED,
        format!(
            "deleted Twilio sender {sid} for {}; {REREGISTER_HINT}",
            run.phone()
        ),
    ))
    .await;
    Ok(None)
}

/// The account's client; or, when the credentials Secret is gone, the client last built from
/// it: in a namespace deletion Secrets disappear at once while senders wait on the finalizer,
/// and a Terminating namespace accepts no new Secret. A Secret that exists but no longer works
/// is followed, not second-guessed.
async fn client(run: &Run<'_>, sid: Option<&str>) -> Phase<TwilioClient> {
    let namespace = run.namespace();
    let secret = &run.spec().credentials_ref.name;
    let problem = match run.ctx.twilio_client(&namespace, secret).await? {
        Ok(client) => return Ok(client),
        Err(problem) => problem,
    };
    if matches!(problem, CredentialsProblem::SecretNotFound(_))
        && let Some(client) = run.ctx.state.last_client(&(namespace, secret.clone()))
    {
        tracing::info!(
            secret,
            account = client.account_sid(),
            "the credentials Secret is gone; deleting with the credentials last read from it"
        );
        return Ok(client);
    }
    stop(no_credentials(sid, &problem))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::super::tests::spec;
    use super::*;
    use crate::api::condition_type::{READY, STALLED, SYNCED};

    fn registered() -> WhatsAppSenderStatus {
        WhatsAppSenderStatus {
            sid: Some("XE0123456789abcdef0123456789abcdef".into()),
            account_sid: Some("AC0123456789abcdef0123456789abcdef".into()),
            ..Default::default()
        }
    }

    fn api_error(http_status: u16, code: u32) -> TwilioError {
        TwilioError::Api {
            http_status,
            code: Some(code),
            message: "m".into(),
            more_info: None,
            retry_after: None,
        }
    }

    /// (Stalled reason or "", Synced reason) of an outcome.
    fn reasons(outcome: &Outcome) -> (&'static str, &'static str) {
        let a = &outcome.assessment;
        assert_eq!(a.get(READY).unwrap().reason, reason::DELETING);
        let stalled = a
            .get(STALLED)
            .filter(|v| v.status == Status::True)
            .map_or("", |v| v.reason);
        (stalled, a.get(SYNCED).unwrap().reason)
    }

    #[test]
    fn what_a_deletion_needs_first() {
        let orphan = spec(json!({"deletionPolicy": "Orphan", "suspend": true}));
        assert_eq!(decide(&orphan, &registered()), Step::Release, "Orphan wins");
        assert_eq!(
            decide(&spec(json!({})), &WhatsAppSenderStatus::default()),
            Step::Release,
            "never reached Twilio"
        );
        assert_eq!(decide(&spec(json!({})), &registered()), Step::Delete);
        let account_only = WhatsAppSenderStatus {
            sid: None,
            ..registered()
        };
        assert_eq!(
            decide(&spec(json!({})), &account_only),
            Step::Delete,
            "a create may have gone through before the SID was written"
        );
        match decide(&spec(json!({"suspend": true})), &registered()) {
            Step::Blocked(outcome) => {
                assert_eq!(
                    reasons(&outcome),
                    (reason::SUSPENDED, reason::DELETION_BLOCKED)
                );
                assert_eq!(outcome.requeue, Requeue::Resync, "a long requeue");
                let message = &outcome.assessment.stalled.as_ref().unwrap().message;
                assert!(
                    message.contains(
                        "set spec.suspend to false, or set spec.deletionPolicy to Orphan"
                    ),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deleting_without_credentials_says_how_to_let_go() {
        let gone = CredentialsProblem::SecretNotFound("twilio".into());
        let outcome = no_credentials(Some("XE1"), &gone);
        assert_eq!(
            reasons(&outcome),
            (reason::CREDENTIALS_NOT_FOUND, reason::DELETION_BLOCKED)
        );
        let message = &outcome.assessment.stalled.as_ref().unwrap().message;
        assert!(
            message.contains("delete sender XE1 at Twilio yourself"),
            "{message}"
        );
        let bad = CredentialsProblem::Unusable {
            secret: "twilio".into(),
            reason: "r".into(),
        };
        assert_eq!(
            reasons(&no_credentials(None, &bad)).0,
            reason::INVALID_CREDENTIALS
        );
    }

    #[test]
    fn each_delete_answer_has_its_step() {
        assert!(matches!(deleted(Ok(())), Deleted::Confirm));
        assert!(
            matches!(deleted(Err(api_error(404, 20404))), Deleted::Confirm),
            "already gone"
        );
        match deleted(Err(api_error(403, 20003))) {
            Deleted::Blocked(outcome) => {
                assert_eq!(reasons(&outcome).0, reason::INVALID_CREDENTIALS);
                let message = &outcome.assessment.stalled.as_ref().unwrap().message;
                assert!(
                    message.starts_with("could not delete the sender (Twilio error 20003"),
                    "{message}"
                );
                assert!(message.ends_with(ORPHAN_HINT), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            deleted(Err(api_error(500, 20500))),
            Deleted::Failed(_)
        ));
        assert!(matches!(
            deleted(Err(TwilioError::Timeout)),
            Deleted::Failed(_)
        ));
    }

    #[test]
    fn a_sender_still_at_twilio_after_the_delete_is_checked_again_soon() {
        let poll = Duration::from_secs(5);
        assert!(matches!(
            confirmed("XE1", Err(api_error(404, 20404)), poll),
            Confirmed::Gone
        ));
        let still = Sender {
            sid: "XE1".into(),
            status: crate::twilio::SenderStatus::Online,
            ..Sender::default()
        };
        match confirmed("XE1", Ok(still), poll) {
            Confirmed::StillThere(outcome) => {
                assert_eq!(reasons(&outcome), ("", reason::DELETION_BLOCKED));
                assert_eq!(outcome.requeue, Requeue::After(poll));
                assert!(
                    !outcome.assessment.is_stalled(),
                    "Twilio is working, not the user"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            confirmed("XE1", Err(TwilioError::Timeout), poll),
            Confirmed::Failed(_)
        ));
    }

    #[test]
    fn only_this_number_in_this_account_is_deleted() {
        let phone = "+15017122661";
        let ours = Sender {
            sid: "XE0123456789abcdef0123456789abcdef".into(),
            sender_id: format!("whatsapp:{phone}"),
            ..Sender::default()
        };
        assert!(matches!(checked(phone, Ok(ours.clone())), Checked::Ours));
        let other = Sender {
            sender_id: "whatsapp:+15550000000".into(),
            ..ours
        };
        assert!(matches!(
            checked(phone, Ok(other)),
            Checked::Not { missing: false, .. }
        ));
        assert!(matches!(
            checked(phone, Err(api_error(404, 20404))),
            Checked::Not { missing: true, .. }
        ));
        assert!(matches!(
            checked(phone, Err(api_error(503, 20500))),
            Checked::Failed(_)
        ));
    }
}
