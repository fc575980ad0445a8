//! Identity: which Twilio account, and which sender in it. Credentials come from the Secret and
//! are pinned to the account the sender was registered in. The sender is then found by its
//! recorded SID (one GET, or a shared list when batched refresh pays), by the SID the object
//! names (`senderops.io/exported-from`), by its number in the account (adopted), or else
//! created, one number per account at a time, with the SID written to status the moment it is
//! known. The decisions are the pure functions below; the
//! executors around them do the I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use tokio::time::Instant;

use super::run::{Outcome, Requeue, Run};
use super::shared::{
    Phase, REREGISTER_HINT, account_changed, hold_worker, spaced, stalled, stop, twilio,
};
use crate::api::{EXPORTED_FROM_ANNOTATION, condition_type, reason};
use crate::controller::conditions::{self, Assessment};
use crate::controller::credentials::CredentialsProblem;
use crate::controller::diff;
use crate::controller::events::{Note, reason as event};
use crate::controller::pacing::{self, QUEUED_RECHECK};
use crate::controller::state::{
    Busy, NameRejected, NameTurn, NumberChanged, Ownership, SenderKey, SidGone, claimant_of,
};
use crate::error::{Error, Result};
use crate::twilio::{
    ErrorClass, Sender, SenderStatus, TwilioClient, TwilioError, codes, is_valid_sender_sid,
};

// -- credentials ----------------------------------------------------------------------------

/// A credentials Secret that is missing or incomplete waits for the user; one that holds
/// unusable credentials stalls.
pub fn credentials_problem(problem: &CredentialsProblem) -> Outcome {
    let assessment = if problem.is_not_found() {
        Assessment::waiting(reason::CREDENTIALS_NOT_FOUND, problem.to_string())
    } else {
        Assessment::stalled(reason::INVALID_CREDENTIALS, problem.to_string())
    };
    Outcome::new(assessment, Requeue::Resync)
}

/// A sender stays in the account it was registered in.
pub fn other_account(
    recorded: Option<&str>,
    sid: Option<&str>,
    secret: &str,
    account: &str,
) -> Option<Outcome> {
    let recorded = recorded.filter(|recorded| *recorded != account)?;
    Some(Outcome::new(
        Assessment::stalled(
            reason::ACCOUNT_CHANGED,
            account_changed(sid, secret, recorded, account),
        ),
        Requeue::Resync,
    ))
}

/// The account's client, or the outcome that stops here.
pub async fn credentials(run: &mut Run<'_>) -> Phase<TwilioClient> {
    let secret = &run.spec().credentials_ref.name;
    let client = match run.ctx.twilio_client(&run.namespace(), secret).await? {
        Ok(client) => client,
        Err(problem) => return stop(credentials_problem(&problem)),
    };
    let (recorded, sid) = (run.status.account_sid.as_deref(), run.status.sid.as_deref());
    if let Some(outcome) = other_account(recorded, sid, secret, client.account_sid()) {
        return stop(outcome);
    }
    run.ctx.state.uses_scope(&run.key, &run.uid, client.scope());
    hold_worker(run, &client)?;
    note_account_check(run, secret, &client).await;
    Ok(client)
}

/// The `AccountVerified` condition of credentials whose account Twilio did not confirm.
pub fn unverified_condition(secret: &str, account: &str, why: &str) -> Condition {
    Condition {
        type_: condition_type::ACCOUNT_VERIFIED.to_string(),
        status: "False".to_string(),
        reason: reason::ACCOUNT_UNVERIFIED.to_string(),
        message: format!(
            "Twilio did not confirm that the credentials in Secret {secret} act for account \
             {account} ({why}): this sender works with them, but what is learnt with them \
             (lists, the Error Log, onboarding turns) is shared with no other Secret; let the \
             API key read the account's IncomingPhoneNumbers (api v2010) to have it confirmed"
        ),
        observed_generation: None,
        last_transition_time: Time(Timestamp::now()),
    }
}

/// Adds the `AccountVerified` condition (and a Warning Event) while the client's account is
/// not confirmed, and removes it once it is.
async fn note_account_check(run: &mut Run<'_>, secret: &str, client: &TwilioClient) {
    let conditions = &mut run.status.conditions;
    let had = conditions::find(conditions, condition_type::ACCOUNT_VERIFIED).cloned();
    conditions.retain(|c| c.type_ != condition_type::ACCOUNT_VERIFIED);
    let Some(why) = client.unverified() else {
        return;
    };
    let mut condition = unverified_condition(secret, client.account_sid(), why);
    condition.observed_generation = run.obj.metadata.generation;
    match had {
        Some(had) if had.message == condition.message => conditions.push(had),
        _ => {
            let message = condition.message.clone();
            conditions.push(condition);
            run.note(Note::warning(reason::ACCOUNT_UNVERIFIED, message))
                .await;
        }
    }
}

// -- the number's one owner -----------------------------------------------------------------

/// The outcome of an object whose number, in its account, another object manages. The owner
/// is named only when it is in the same namespace: a tenant must not learn the names of
/// another namespace's objects.
pub fn duplicate(namespace: &str, phone: &str, account: &str, owner: &SenderKey) -> Outcome {
    let (who, handover) = if in_namespace(owner, namespace) {
        (
            format!("WhatsAppSender {} in this namespace", owner.name),
            format!(
                "or delete {} (with spec.deletionPolicy Orphan to keep the number registered) \
                 to let this object take the number over",
                owner.name
            ),
        )
    } else {
        (
            "a WhatsAppSender in another namespace".to_string(),
            "or ask the team that manages the number".to_string(),
        )
    };
    let message = format!(
        "{who} manages {phone} in Twilio account {account}: one object per number and account, \
         so this one sends nothing to Twilio for the number, and deleting it never deletes at \
         Twilio; delete this WhatsAppSender if it is a copy, {handover}"
    );
    Outcome::new(
        Assessment::stalled(reason::DUPLICATE_SENDER, message),
        Requeue::Resync,
    )
}

/// Whether `owner` may be named to an object of `namespace`: only within its own namespace.
fn in_namespace(owner: &SenderKey, namespace: &str) -> bool {
    owner.namespace.as_deref() == Some(namespace)
}

/// Claims the number in `account` for this object. Another object owning it stops the
/// reconcile here, before any request to Twilio; if this object held the number too (pairs
/// left behind by earlier versions), it lets go of the SID in its status.
pub async fn owner(run: &mut Run<'_>, client: &TwilioClient) -> Phase<()> {
    let account = client.account_sid();
    let holds = run.status.sid.is_some() || run.status.account_sid.is_some();
    let claimant = claimant_of(run.obj, &run.key, &run.uid, holds);
    let (ownership, woken) = run.ctx.state.claim_number(account, run.phone(), claimant);
    for sender in woken {
        run.ctx.wake(sender);
    }
    match ownership {
        Ownership::Mine => Ok(()),
        Ownership::Other { owner, demoted } => {
            if demoted {
                let_go(run, client, &owner).await?;
            }
            not_the_owner(run, account, &owner)
        }
    }
}

/// This object registers or adopts the number now, if it still owns it.
fn commit(run: &mut Run<'_>, account: &str) -> Phase<()> {
    match run
        .ctx
        .state
        .commit_number(account, run.phone(), &run.key, &run.uid)
    {
        Ok(()) => Ok(()),
        Err(owner) => not_the_owner(run, account, &owner),
    }
}

fn not_the_owner<T>(run: &mut Run<'_>, account: &str, owner: &SenderKey) -> Phase<T> {
    // It may have queued for its account's onboarding turn or display-name check.
    run.conclusion.leaves_onboarding = true;
    stop(duplicate(&run.namespace(), run.phone(), account, owner))
}

/// What the status says about the Twilio sender (camelCase), all cleared when the object lets
/// go of a sender another object owns.
const TWILIO_FIELDS: [&str; 9] = [
    "sid",
    "accountSid",
    "senderId",
    "twilioStatus",
    "qualityRating",
    "messagingLimit",
    "offlineReasons",
    "alerts",
    "verification",
];

/// Clears what the status says about the Twilio sender another object owns: its SID, its
/// account (so that deleting this object deletes nothing) and what was mirrored from it.
async fn let_go(run: &mut Run<'_>, client: &TwilioClient, owner: &SenderKey) -> Result<()> {
    let account = client.account_sid();
    let sid = run.status.sid.take();
    let status = &mut run.status;
    status.account_sid = None;
    status.sender_id = None;
    status.twilio_status = None;
    status.quality_rating = None;
    status.messaging_limit = None;
    status.offline_reasons.clear();
    status.alerts.clear();
    status.verification = None;
    run.remove_status_fields(&TWILIO_FIELDS).await?;
    if let Some(sid) = &sid {
        run.conclusion.gone = Some(SidGone {
            account: client.scope().to_string(),
            sid: sid.clone(),
        });
    }
    let owner_named = if in_namespace(owner, &run.namespace()) {
        format!("WhatsAppSender {}", owner.name)
    } else {
        "an older WhatsAppSender in another namespace".to_string()
    };
    run.note(Note::warning(
        event::DUPLICATE_SENDER,
        format!(
            "let go of Twilio sender {} for {}: {owner_named} holds the same number in account \
             {account} and keeps it (the oldest object does)",
            sid.as_deref().unwrap_or("(SID not recorded)"),
            run.phone()
        ),
    ))
    .await;
    Ok(())
}

// -- finding the sender ---------------------------------------------------------------------

/// What reading a SID the operator or the object named found.
#[derive(Debug, PartialEq)]
pub enum Named {
    /// This number, in this account.
    Ours(Box<Sender>),
    /// A sender of another number: left alone, the number is looked up instead.
    OtherNumber(Box<Sender>),
    /// Not in this account (any more).
    Missing,
}

pub fn named(phone: &str, read: Option<Sender>) -> Named {
    match read {
        Some(sender) if sender.is_for(phone) => Named::Ours(Box::new(sender)),
        Some(sender) => Named::OtherNumber(Box::new(sender)),
        None => Named::Missing,
    }
}

/// The outcome of a sender that waits for another one to check their display name.
pub fn waiting_for_name(name: &str, first: &SenderKey) -> Outcome {
    let message = format!(
        "waiting for {}/{} to be registered first with the display name {name:?}: Twilio \
         advises confirming with one sender that Meta accepts a name before registering others \
         with it (a refused name limits a number to 250 business-initiated messages a day, and \
         no API can change it); this sender registers once that one is ONLINE",
        first.namespace.as_deref().unwrap_or(""),
        first.name,
    );
    Outcome::new(
        Assessment::waiting(reason::WAITING_FOR_DISPLAY_NAME_CHECK, message),
        Requeue::After(QUEUED_RECHECK),
    )
}

/// The outcome of a sender whose own create Meta refused over its display name
/// (`twilio_said`, a 63100): the stall that answer gave, again, without sending the create again
/// (Meta would refuse the same name, and every create asks it anew). The link is the one
/// Twilio's error answers carry for the code.
pub fn own_name_refused(twilio_said: &str) -> Outcome {
    let refusal = TwilioError::Api {
        http_status: 400,
        code: Some(63100),
        message: twilio_said.to_string(),
        more_info: Some("https://www.twilio.com/docs/errors/63100".to_string()),
        retry_after: None,
    };
    stalled("create the sender", &refusal)
}

/// The outcome of a sender whose display name Meta refused for another sender.
pub fn name_rejected(name: &str, by: &SenderKey, twilio_said: &str) -> Outcome {
    let message = format!(
        "Meta refused the display name {name:?} when {}/{} was registered with it first ({}); \
         this sender was not registered: delete and recreate this WhatsAppSender with a \
         profile.name that follows Meta's display name guidelines",
        by.namespace.as_deref().unwrap_or(""),
        by.name,
        crate::twilio::quote(twilio_said),
    );
    Outcome::new(
        Assessment::stalled(reason::DISPLAY_NAME_REJECTED, message),
        Requeue::Resync,
    )
}

/// The outcome of a sender queued behind another one's registration.
pub fn queued(account: &str, busy: &Busy) -> Outcome {
    let message = format!(
        "serial onboarding: waiting for {}/{} to finish registering in account {account} ({} \
         more ahead); Twilio advises one registration per account at a time",
        busy.holder.namespace.as_deref().unwrap_or(""),
        busy.holder.name,
        busy.ahead,
    );
    Outcome::new(
        Assessment::waiting(reason::QUEUED, message),
        Requeue::After(QUEUED_RECHECK),
    )
}

/// What a create's answer calls for.
#[derive(Debug)]
pub enum Created {
    /// Registered: record the SID.
    Sender(Box<Sender>),
    /// Registered already (63110): ours if a fresh list of this account has it.
    LookAgain(TwilioError),
    /// Only the user can fix it. `name_refused`: Meta refused the display name (what Twilio
    /// said), so the account's other senders with this name must not register.
    Stalled {
        outcome: Outcome,
        name_refused: Option<String>,
    },
    /// Failed; retried with backoff. `maybe_registered`: the create may have gone through,
    /// so the next attempt needs a list made after now.
    Failed {
        err: TwilioError,
        maybe_registered: bool,
    },
}

pub fn created(answer: Result<Sender, TwilioError>) -> Created {
    match answer {
        Ok(sender) if is_valid_sender_sid(&sender.sid) => Created::Sender(Box::new(sender)),
        Ok(_) => Created::Failed {
            err: TwilioError::Decode(
                "the answer carries no valid sender SID (XE + 32 hex digits)".into(),
            ),
            maybe_registered: true,
        },
        Err(err) if err.twilio_code() == Some(63110) => Created::LookAgain(err),
        Err(err) if err.class() == ErrorClass::NeedsUser => Created::Stalled {
            outcome: stalled("create the sender", &err),
            name_refused: match &err {
                TwilioError::Api {
                    code: Some(code),
                    message,
                    ..
                } if codes::refuses_display_name(*code, message) => Some(message.clone()),
                _ => None,
            },
        },
        Err(err) => Created::Failed {
            maybe_registered: !err.certainly_not_processed(),
            err,
        },
    }
}

/// A number Twilio says is registered (63110) that this account does not hold. If this
/// operator deleted its sender before, the message says what re-registering needs.
pub fn already_registered(err: &TwilioError, deleted: Option<(String, Timestamp)>) -> Outcome {
    let mut outcome = stalled("create the sender", err);
    if let Some((sid, at)) = deleted {
        let note = format!(
            "; this operator deleted the number's sender {sid} at {at}, and {}",
            REREGISTER_HINT
        );
        for verdict in [
            &mut outcome.assessment.ready,
            &mut outcome.assessment.synced,
            &mut outcome.assessment.stalled,
        ]
        .into_iter()
        .flatten()
        {
            verdict.message.push_str(&note);
        }
    }
    outcome
}

/// Finds the sender (by SID, by name, by number) or creates it.
pub async fn find(run: &mut Run<'_>, client: &TwilioClient) -> Phase<Sender> {
    let account = client.account_sid().to_string();
    if let Some(sid) = run.status.sid.clone() {
        match named(run.phone(), read(run, client, &sid).await?) {
            Named::Ours(sender) => return Ok(*sender),
            Named::OtherNumber(sender) => {
                not_this_number(run, "status.sid", &sender).await;
                run.status.sid = None;
                return find_or_create(run, client, &account, false).await;
            }
            Named::Missing => {
                tracing::warn!(
                    sid,
                    "the sender no longer exists at Twilio; registering it again"
                );
                let scope = client.scope().to_string();
                run.conclusion.gone = Some(SidGone {
                    account: scope.clone(),
                    sid,
                });
                run.conclusion.number_changed = Some(NumberChanged {
                    account: scope,
                    phone: run.phone().to_string(),
                    at: Instant::now(),
                });
                run.status.sid = None;
                return find_or_create(run, client, &account, true).await;
            }
        }
    }
    if let Some(sender) = adopt_named(run, client, &account).await? {
        return Ok(sender);
    }
    find_or_create(run, client, &account, false).await
}

/// The sender as Twilio has it now, or `None` if Twilio no longer has it. Settled senders of
/// an account with several come from a shared list when batching is on.
async fn read(run: &Run<'_>, client: &TwilioClient, sid: &str) -> Phase<Option<Sender>> {
    let ctx = run.ctx;
    let settled = run
        .status
        .twilio_status
        .as_deref()
        .map(SenderStatus::parse)
        .is_some_and(|s| !pacing::in_motion(&s));
    let account = client.scope();
    if ctx.settings.batched_refresh && settled && ctx.state.settled_count(account) >= 2 {
        let max_age = ctx.settings.pacing.resync_interval / 2;
        let listed = ctx
            .state
            .refresh(client, sid, max_age)
            .await
            .map_err(twilio("list the account's senders"))?;
        if listed.listed {
            // Everyone settled in this account can use this list now, which keeps the
            // account at one list per resync.
            for other in ctx.state.settled_except(account, sid) {
                ctx.wake(other);
            }
        }
        if listed.sender.is_some() {
            return Ok(listed.sender);
        }
    }
    match client.fetch(sid).await {
        Ok(sender) => Ok(Some(sender)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(twilio("read the sender")(err)),
    }
}

/// Adopts the sender the object names in [`EXPORTED_FROM_ANNOTATION`] if Twilio has it as
/// this number in this account (a fetch with this account's credentials finds only its own):
/// no list, no create, no onboarding turn.
async fn adopt_named(
    run: &mut Run<'_>,
    client: &TwilioClient,
    account: &str,
) -> Phase<Option<Sender>> {
    let Some(sid) = run
        .obj
        .annotations()
        .get(EXPORTED_FROM_ANNOTATION)
        .map(|sid| sid.trim().to_string())
        .filter(|sid| is_valid_sender_sid(sid))
    else {
        return Ok(None);
    };
    let read = match client.fetch(&sid).await {
        Ok(sender) => Some(sender),
        Err(err) if err.is_not_found() => None,
        Err(err) => return Err(twilio("read the exported sender")(err)),
    };
    match named(run.phone(), read) {
        Named::Ours(sender) => {
            adopt(run, account, &sender).await?;
            Ok(Some(*sender))
        }
        Named::OtherNumber(sender) => {
            not_this_number(run, EXPORTED_FROM_ANNOTATION, &sender).await;
            Ok(None)
        }
        Named::Missing => {
            tracing::info!(
                sid,
                "the sender named by {EXPORTED_FROM_ANNOTATION} is not in this account; looking \
                 the number up"
            );
            Ok(None)
        }
    }
}

/// Adopts the number's sender if the account has one, else registers it. `fresh` demands a
/// list made now (the sender was just found deleted).
async fn find_or_create(
    run: &mut Run<'_>,
    client: &TwilioClient,
    account: &str,
    fresh: bool,
) -> Phase<Sender> {
    let listed = run
        .ctx
        .state
        .lookup(client, run.phone(), fresh, run.facts.first_seen)
        .await
        .map_err(twilio("look up the number"))?;
    if let Some(sender) = listed.sender {
        adopt(run, account, &sender).await?;
        return Ok(sender);
    }
    may_register(run, client)?;
    register(run, client, account, fresh).await
}

/// Whether the sender may register now: a new display name is checked with one sender first,
/// one number per account registers at a time, and registrations are spaced.
fn may_register(run: &Run<'_>, client: &TwilioClient) -> Phase<()> {
    let (account, scope) = (client.account_sid(), client.scope());
    let state = &run.ctx.state;
    let name = &run.spec().profile.name;
    match state.claim_name(scope, name, &run.key) {
        NameTurn::Go => {}
        NameTurn::Wait { first } => return stop(waiting_for_name(name, &first)),
        NameTurn::Rejected { by, message } if by == run.key => {
            return stop(own_name_refused(&message));
        }
        NameTurn::Rejected { by, message } => return stop(name_rejected(name, &by, &message)),
    }
    if let Err(busy) = state.claim_turn(scope, &run.key) {
        return stop(queued(account, &busy));
    }
    if let Err(left) = state.claim_registration(scope) {
        let interval = run.ctx.settings.registration_interval;
        return stop(spaced(account, left, interval));
    }
    Ok(())
}

/// Creates the sender and acts on the answer.
async fn register(
    run: &mut Run<'_>,
    client: &TwilioClient,
    account: &str,
    fresh: bool,
) -> Phase<Sender> {
    commit(run, account)?;
    let phone = run.phone();
    // If the operator dies between the create and the SID write, cleanup still knows which
    // account to search for the number.
    if run.status.account_sid.is_none() {
        run.status.account_sid = Some(account.to_string());
        run.save().await?;
    }
    match created(client.create(&diff::create_request(run.spec())).await) {
        Created::Sender(sender) => {
            record_sid(run, account, &sender).await?;
            // `fresh` lookups only happen when the sender was found deleted at Twilio.
            let (reason, verb) = if fresh {
                (
                    event::RECREATED,
                    "registered again (it had been deleted at Twilio)",
                )
            } else {
                (event::CREATED, "created")
            };
            let message = format!(
                "{verb} Twilio sender {} for {phone} in account {account}",
                sender.sid
            );
            run.note(Note::normal(reason, message)).await;
            Ok(*sender)
        }
        Created::LookAgain(err) => registered_already(run, client, account, &err).await,
        Created::Stalled {
            outcome,
            name_refused,
        } => {
            if let Some(message) = name_refused {
                let name = run.spec().profile.name.clone();
                run.conclusion.name_rejected = Some(NameRejected {
                    account: client.scope().to_string(),
                    name,
                    message,
                });
            }
            stop(outcome)
        }
        Created::Failed {
            err,
            maybe_registered,
        } => {
            // The next attempt looks the number up in a list made after this moment.
            if maybe_registered {
                run.conclusion.number_changed = Some(NumberChanged {
                    account: client.scope().to_string(),
                    phone: phone.to_string(),
                    at: Instant::now(),
                });
            }
            Err(Error::twilio("create the sender")(err).into())
        }
    }
}

/// Twilio says the number is registered (63110): ours if a fresh list of this account has it
/// (a create whose answer was lost, another tool), someone else's otherwise.
async fn registered_already(
    run: &mut Run<'_>,
    client: &TwilioClient,
    account: &str,
    err: &TwilioError,
) -> Phase<Sender> {
    let phone = run.phone();
    let again = run
        .ctx
        .state
        .lookup(client, phone, true, run.facts.first_seen)
        .await
        .map_err(twilio("look up the number"))?;
    match again.sender {
        Some(sender) => {
            adopt(run, account, &sender).await?;
            Ok(sender)
        }
        None => {
            let deleted = run.ctx.state.deleted_before(client.scope(), phone);
            stop(already_registered(err, deleted))
        }
    }
}

/// Records the SID and account the moment they are known.
async fn record_sid(run: &mut Run<'_>, account: &str, sender: &Sender) -> Result<()> {
    run.status.sid = Some(sender.sid.clone());
    run.status.account_sid = Some(account.to_string());
    if !sender.sender_id.is_empty() {
        run.status.sender_id = Some(sender.sender_id.clone());
    }
    tracing::Span::current().record("sid", sender.sid.as_str());
    run.save().await
}

async fn adopt(run: &mut Run<'_>, account: &str, sender: &Sender) -> Phase<()> {
    commit(run, account)?;
    record_sid(run, account, sender).await?;
    run.note(Note::normal(
        event::ADOPTED,
        format!(
            "adopted the existing Twilio sender {} ({}) for {} in account {account}",
            sender.sid,
            sender.status,
            run.phone()
        ),
    ))
    .await;
    Ok(())
}

/// `source` named a sender of another number: it is left alone and the number looked up.
async fn not_this_number(run: &Run<'_>, source: &str, sender: &Sender) {
    let message = format!(
        "{source} names Twilio sender {}, which is {:?}, not {}: the operator leaves it alone \
         and looks the number up instead",
        sender.sid,
        sender.sender_id,
        run.phone()
    );
    run.note(Note::warning(event::SENDER_MISMATCH, message))
        .await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::condition_type::STALLED;
    use crate::controller::state::SenderKey;

    const A: &str = "AC0123456789abcdef0123456789abcdef";
    const B: &str = "ACfedcba9876543210fedcba9876543210";
    const SID: &str = "XE0123456789abcdef0123456789abcdef";

    fn api_error(http_status: u16, code: Option<u32>) -> TwilioError {
        TwilioError::Api {
            http_status,
            code,
            message: "m".into(),
            more_info: None,
            retry_after: None,
        }
    }

    fn sender(sid: &str, phone: &str) -> Sender {
        Sender {
            sid: sid.into(),
            sender_id: format!("whatsapp:{phone}"),
            ..Sender::default()
        }
    }

    fn reasons(outcome: &Outcome) -> (&'static str, bool) {
        let a = &outcome.assessment;
        (
            a.ready.as_ref().map_or("", |v| v.reason),
            a.get(STALLED)
                .is_some_and(|v| v.status == conditions::Status::True),
        )
    }

    #[test]
    fn credentials_decide_between_waiting_stalling_and_going_on() {
        let missing = CredentialsProblem::SecretNotFound("twilio".into());
        assert_eq!(
            reasons(&credentials_problem(&missing)),
            (reason::CREDENTIALS_NOT_FOUND, false)
        );
        let unusable = CredentialsProblem::Unusable {
            secret: "twilio".into(),
            reason: "accountSid is not an account SID".into(),
        };
        assert_eq!(
            reasons(&credentials_problem(&unusable)),
            (reason::INVALID_CREDENTIALS, true)
        );
        assert_eq!(
            other_account(None, None, "twilio", A),
            None,
            "first registration"
        );
        assert_eq!(other_account(Some(A), Some(SID), "twilio", A), None);
        let changed = other_account(Some(A), Some(SID), "twilio", B).unwrap();
        assert_eq!(reasons(&changed), (reason::ACCOUNT_CHANGED, true));
        let message = &changed.assessment.ready.unwrap().message;
        assert!(
            message.contains(&format!("registered in Twilio account {A}"))
                && message.contains(&format!("credentials for account {B}"))
                && message.contains("restore credentials"),
            "{message}"
        );
    }

    #[test]
    fn a_named_sid_is_ours_only_for_this_number() {
        let phone = "+15017122661";
        assert!(matches!(
            named(phone, Some(sender(SID, phone))),
            Named::Ours(_)
        ));
        let upper = Sender {
            sender_id: "WhatsApp:+15017122661".into(),
            ..sender(SID, phone)
        };
        assert!(
            matches!(named(phone, Some(upper)), Named::Ours(_)),
            "any case"
        );
        assert!(matches!(
            named(phone, Some(sender(SID, "+15017122662"))),
            Named::OtherNumber(_)
        ));
        assert_eq!(named(phone, None), Named::Missing);
    }

    #[test]
    fn a_queued_sender_waits_without_stalling_and_says_for_whom() {
        let busy = Busy {
            holder: SenderKey::new("first").within("team-a"),
            ahead: 2,
        };
        let outcome = queued(A, &busy);
        assert_eq!(reasons(&outcome), (reason::QUEUED, false));
        assert_eq!(outcome.requeue, Requeue::After(QUEUED_RECHECK));
        let message = &outcome.assessment.ready.unwrap().message;
        assert!(
            message.contains("team-a/first") && message.contains("2 more ahead"),
            "{message}"
        );
    }

    #[test]
    fn each_create_answer_has_its_step() {
        assert!(matches!(
            created(Ok(sender(SID, "+15017122661"))),
            Created::Sender(_)
        ));
        assert!(matches!(
            created(Ok(sender("XE-broken", "+15017122661"))),
            Created::Failed {
                maybe_registered: true,
                ..
            }
        ));
        assert!(matches!(
            created(Err(api_error(400, Some(63110)))),
            Created::LookAgain(_)
        ));
        let stalls = [
            (63104, reason::WABA_FULL),
            (63111, reason::NUMBER_NOT_FOUND),
            (63113, reason::CANNOT_VERIFY),
            (63116, reason::CODE_NOT_RECEIVED),
            (63100, reason::INVALID_SPEC),
            (20003, reason::INVALID_CREDENTIALS),
        ];
        for (code, expected) in stalls {
            match created(Err(api_error(400, Some(code)))) {
                Created::Stalled {
                    outcome,
                    name_refused,
                } => {
                    assert_eq!(name_refused, None, "{code}: not about the display name");
                    assert_eq!(reasons(&outcome), (expected, true), "{code}");
                    assert_eq!(outcome.requeue, Requeue::Resync, "{code}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        for (err, maybe) in [
            (api_error(500, Some(20500)), true),
            (TwilioError::Timeout, true),
            (api_error(503, Some(20503)), false),
            (api_error(429, Some(20429)), false),
            (TwilioError::Connect("refused".into()), false),
        ] {
            let shown = err.to_string();
            match created(Err(err)) {
                Created::Failed {
                    maybe_registered, ..
                } => assert_eq!(maybe_registered, maybe, "{shown}"),
                other => panic!("{shown}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_number_this_operator_deleted_says_what_registering_it_again_needs() {
        let taken = api_error(400, Some(63110));
        let plain = already_registered(&taken, None);
        assert_eq!(reasons(&plain), (reason::ALREADY_REGISTERED, true));
        let message = &plain.assessment.ready.as_ref().unwrap().message;
        assert!(!message.contains("this operator deleted"), "{message}");
        let at: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        let deleted = already_registered(&taken, Some((SID.into(), at)));
        for verdict in [&deleted.assessment.ready, &deleted.assessment.stalled] {
            let message = &verdict.as_ref().unwrap().message;
            assert!(
                message.contains(&format!("this operator deleted the number's sender {SID}"))
                    && message.contains("two-step verification turned off in WhatsApp Manager"),
                "{message}"
            );
        }
    }

    #[test]
    fn senders_that_share_a_display_name_wait_for_the_first_or_stall_with_its_refusal() {
        let first = SenderKey::new("first").within("team-a");
        let waiting = waiting_for_name("Acme", &first);
        assert_eq!(
            reasons(&waiting),
            (reason::WAITING_FOR_DISPLAY_NAME_CHECK, false)
        );
        assert_eq!(waiting.requeue, Requeue::After(QUEUED_RECHECK));
        let message = &waiting.assessment.ready.as_ref().unwrap().message;
        assert!(
            message.contains("team-a/first") && message.contains("\"Acme\""),
            "{message}"
        );

        let refused = name_rejected("Acme", &first, "The display name\nis not allowed");
        assert_eq!(reasons(&refused), (reason::DISPLAY_NAME_REJECTED, true));
        let message = &refused.assessment.stalled.as_ref().unwrap().message;
        assert!(
            message.contains("when team-a/first was registered with it first")
                && message.contains("The display name is not allowed")
                && message.contains("was not registered"),
            "{message}"
        );
        let name_refusal = TwilioError::Api {
            http_status: 400,
            code: Some(63100),
            message: "The display name does not follow Meta's guidelines".into(),
            more_info: Some("https://www.twilio.com/docs/errors/63100".into()),
            retry_after: None,
        };
        let said = "The display name does not follow Meta's guidelines";
        let own_answer = match created(Err(name_refusal)) {
            Created::Stalled {
                outcome,
                name_refused,
            } => {
                assert_eq!(name_refused.as_deref(), Some(said));
                outcome
            }
            other => panic!("{other:?}"),
        };
        // The refused sender itself keeps the stall its own answer gave, on every reconcile
        // after it: not the refusal "for another sender".
        let again = own_name_refused(said);
        assert_eq!(reasons(&again), (reason::INVALID_SPEC, true));
        assert_eq!(again.assessment, own_answer.assessment);
        assert_eq!(again.requeue, own_answer.requeue);
    }

    #[test]
    fn registrations_held_back_say_when_they_go() {
        let outcome = spaced(A, Duration::from_secs(125), Duration::from_secs(180));
        assert_eq!(reasons(&outcome), (reason::QUEUED, false));
        assert_eq!(outcome.requeue, Requeue::After(Duration::from_secs(125)));
        let message = &outcome.assessment.ready.as_ref().unwrap().message;
        assert!(
            message.contains("goes out in 2m 5s") && message.contains("--registration-interval 3m"),
            "{message}"
        );
    }

    #[test]
    fn too_many_codes_waits_an_hour_before_asking_again() {
        let outcome = stalled("request a new code", &api_error(400, Some(63114)));
        assert_eq!(reasons(&outcome), (reason::TOO_MANY_CODES, true));
        assert_eq!(outcome.requeue, Requeue::After(Duration::from_secs(3600)));
    }

    #[test]
    fn a_duplicate_names_its_owner_only_within_its_namespace() {
        let text = |outcome: &Outcome| {
            let stalled = outcome.assessment.get(STALLED).unwrap();
            assert_eq!(stalled.reason, reason::DUPLICATE_SENDER);
            stalled.message.clone()
        };
        let same = text(&duplicate(
            "prod",
            "+15550500001",
            A,
            &SenderKey::new("main").within("prod"),
        ));
        assert!(
            same.contains("WhatsAppSender main in this namespace"),
            "{same}"
        );
        assert!(same.contains("+15550500001") && same.contains(A), "{same}");
        let other = text(&duplicate(
            "staging",
            "+15550500001",
            A,
            &SenderKey::new("main-secret-name").within("prod"),
        ));
        assert!(
            !other.contains("main-secret-name") && !other.contains("prod"),
            "{other}"
        );
        assert!(other.contains("another namespace"), "{other}");
        assert!(other.contains("never deletes at Twilio"), "{other}");
    }

    #[test]
    fn letting_go_clears_fields_the_status_really_has() {
        let status = crate::api::WhatsAppSenderStatus {
            sid: Some(SID.into()),
            account_sid: Some(A.into()),
            sender_id: Some("whatsapp:+15550500001".into()),
            twilio_status: Some("ONLINE".into()),
            quality_rating: Some("HIGH".into()),
            messaging_limit: Some("TIER_1K".into()),
            offline_reasons: vec![Default::default()],
            alerts: vec![Default::default()],
            verification: Some(Default::default()),
            ..Default::default()
        };
        let written = serde_json::to_value(&status).unwrap();
        let mut names: Vec<&str> = written
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort();
        let mut cleared = TWILIO_FIELDS.to_vec();
        cleared.sort();
        assert_eq!(
            names, cleared,
            "every Twilio field, by the name the API server has"
        );
    }
}
