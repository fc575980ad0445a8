//! One reconcile of one `WhatsAppSender`: the only place that talks to both Kubernetes and
//! Twilio. It runs the phases in order:
//!
//! 1. [`identity`]: credentials pinned to the sender's account, the number claimed (one
//!    object owns a number in an account; the others stall), then the sender by its SID,
//!    by the SID the object names, by its number (adopted), or created in its account's turn;
//! 2. [`mirror`]: what Twilio reports, into status, with an Event per transition;
//!    [`alerts`]: what it records only in its Error Log, for a sender that is OFFLINE or stuck;
//! 3. [`converge`]: the fields that differ, or [`verify`] (the one-time code) while Twilio
//!    waits for it;
//!
//! then the conditions and a requeue paced by Twilio's status. A deleted object goes through
//! [`cleanup`]. Each phase is a pure decision (spec × what Twilio reports × the sender's
//! record → a step) and a thin executor doing the I/O. The runtime's driver
//! ([`crate::runtime::driver`]) holds the finalizer, the span and the timeout around them, and
//! hands the [`Conclusion`] they fill in to the state, once, whatever the path.
//!
//! A phase imports no other phase but the one it hands over to (converge to verify): what
//! several of them use (how a phase ends, the outcome of a Twilio error only the user can fix,
//! the account's workers) lives in [`shared`], below them all.

mod alerts;
mod cleanup;
mod converge;
mod identity;
mod mirror;
mod run;
mod shared;
mod verify;

use kube::api::Api;
use kube::runtime::controller::Action;

use super::Context;
use super::conditions::SenderAssessment;
use super::state::Conclusion;
use crate::api::WhatsAppSender;
use crate::error::Result;
use crate::runtime::conditions::Assessment;
use crate::runtime::driver::Cleanup;
use run::{Outcome, Run};
use shared::{Halt, Phase, stop};

pub use crate::runtime::driver::RECONCILE_REQUESTED_ANNOTATION;
pub use crate::runtime::status::FIELD_MANAGER;

/// Held on every sender until Twilio has let go of it (or the user chose `Orphan`).
pub const FINALIZER: &str = "messaging.senderops.io/cleanup";

/// The phases of a sender that exists; see the module's documentation.
pub async fn apply(
    ctx: &Context,
    api: &Api<WhatsAppSender>,
    obj: &WhatsAppSender,
    conclusion: &mut Conclusion,
) -> Result<Action> {
    let mut run = Run::new(ctx, api, obj, conclusion);
    match phases(&mut run).await {
        Ok(outcome) => run.finish(outcome).await,
        Err(Halt::Outcome(outcome)) => run.finish(*outcome).await,
        Err(Halt::Failed(err)) => Err(run.failed(err).await),
    }
}

/// The cleanup of a sender being deleted.
pub async fn cleanup(
    ctx: &Context,
    api: &Api<WhatsAppSender>,
    obj: &WhatsAppSender,
    conclusion: &mut Conclusion,
) -> Result<Cleanup> {
    cleanup::run(&mut Run::new(ctx, api, obj, conclusion)).await
}

/// The phases in order; any of them may end the reconcile with its outcome.
async fn phases(run: &mut Run<'_>) -> Phase<Outcome> {
    if run.spec().suspend {
        return stop(Outcome::new(
            Assessment::suspended(),
            run::Requeue::OnChange,
        ));
    }
    let client = identity::credentials(run).await?;
    identity::owner(run, &client).await?;
    let sender = identity::find(run, &client).await?;
    let before = run.status.twilio_status.clone();
    mirror::run(run, client.scope(), &sender).await;
    alerts::run(run, &client, &sender, before.as_deref()).await?;
    converge::run(run, &client, &sender).await
}

#[cfg(test)]
mod tests;
