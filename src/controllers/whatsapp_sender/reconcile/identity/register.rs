//! Registering the number: whether it may go now (its display name checked with one sender
//! first, one number per account at a time, registrations spaced), the create, and what its
//! answer calls for.

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use super::super::run::{Outcome, Requeue, Run};
use super::super::shared::{Phase, REREGISTER_HINT, spaced, stalled, stop, twilio};
use super::owner::{adopt, commit, record_sid};
use crate::api::reason;
use crate::controllers::whatsapp_sender::diff;
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::pacing::QUEUED_RECHECK;
use crate::controllers::whatsapp_sender::state::{
    Busy, NameRejected, NameTurn, NumberChanged, SenderKey,
};
use crate::error::{Error, Result};
use crate::runtime::conditions::Assessment;
use crate::runtime::events::Note;
use crate::twilio::{ErrorClass, Sender, TwilioClient, TwilioError, codes, is_valid_sender_sid};

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

/// Whether the sender may register now: a new display name is checked with one sender first,
/// one number per account registers at a time, and registrations are spaced.
pub(super) fn may_register(run: &Run<'_>, client: &TwilioClient) -> Phase<()> {
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
pub(super) async fn register(
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
