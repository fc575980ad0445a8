//! Finding the sender: by its recorded SID (one GET, or a shared list when batched refresh
//! pays), by the SID the object names (`senderops.io/exported-from`), by its number in the
//! account (adopted), or else registered ([`super::register`]).

use kube::ResourceExt;
use tokio::time::Instant;

use super::super::run::Run;
use super::super::shared::{Phase, twilio};
use super::owner::adopt;
use super::register::{may_register, register};
use crate::api::EXPORTED_FROM_ANNOTATION;
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::pacing;
use crate::controllers::whatsapp_sender::state::{NumberChanged, SidGone};
use crate::runtime::events::Note;
use crate::twilio::{Sender, SenderStatus, TwilioClient, is_valid_sender_sid};

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
