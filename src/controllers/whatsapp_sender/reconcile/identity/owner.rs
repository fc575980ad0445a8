//! The number's one owner: the object claims its number in its account before any request to
//! Twilio; another owner stops it (and makes it let go of a SID it held too). Registering or
//! adopting commits the claim and records the SID the moment it is known.

use super::super::run::{Outcome, Requeue, Run};
use super::super::shared::{Phase, stop};
use crate::api::reason;
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::state::{Ownership, SenderKey, SidGone, claimant_of};
use crate::error::Result;
use crate::runtime::conditions::Assessment;
use crate::runtime::events::Note;
use crate::twilio::{Sender, TwilioClient};

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
pub(super) fn commit(run: &mut Run<'_>, account: &str) -> Phase<()> {
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
pub(super) const TWILIO_FIELDS: [&str; 9] = [
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

/// Records the SID and account the moment they are known.
pub(super) async fn record_sid(run: &mut Run<'_>, account: &str, sender: &Sender) -> Result<()> {
    run.status.sid = Some(sender.sid.clone());
    run.status.account_sid = Some(account.to_string());
    if !sender.sender_id.is_empty() {
        run.status.sender_id = Some(sender.sender_id.clone());
    }
    tracing::Span::current().record("sid", sender.sid.as_str());
    run.save().await
}

/// Takes over the sender Twilio has for the number.
pub(super) async fn adopt(run: &mut Run<'_>, account: &str, sender: &Sender) -> Phase<()> {
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
