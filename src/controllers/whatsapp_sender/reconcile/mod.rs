//! One reconcile of one `WhatsAppSender`: the only place that talks to both Kubernetes and
//! Twilio. The driver holds the finalizer and runs the phases in order:
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
//! record → a step) and a thin executor doing the I/O. Whatever the path, the reconcile ends
//! by handing its [`Conclusion`] to the state, once.
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

use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, finalizer};
use tracing::Instrument;

use super::Context;
use super::state::{Conclusion, key_of};
use crate::api::WhatsAppSender;
use crate::error::{Error, Result};
use run::{Outcome, Run};
use shared::{Halt, NotDone, Phase, stop};

/// Held on every sender until Twilio has let go of it (or the user chose `Orphan`).
pub const FINALIZER: &str = "messaging.senderops.io/cleanup";

/// Field manager of the operator's status writes.
pub const FIELD_MANAGER: &str = "senderops";

/// Any new value forces an immediate reconcile.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "senderops.io/reconcile-requested-at";

/// Entry point for kube's controller.
pub async fn reconcile(obj: Arc<WhatsAppSender>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = obj.namespace().unwrap_or_default();
    let span = tracing::info_span!(
        "reconcile",
        namespace = %namespace,
        // Not `name`: JSON logs write the span's own name under that key.
        sender = %obj.name_any(),
        sid = tracing::field::Empty,
    );
    if let Some(sid) = obj.status.as_ref().and_then(|s| s.sid.as_deref()) {
        span.record("sid", sid);
    }
    let key = key_of(&obj);
    let uid = obj.uid().unwrap_or_default();
    if let Some(wait) = forced_too_soon(&obj, &ctx, &key, &uid) {
        tracing::info!(
            parent: &span,
            wait_ms = wait.as_millis() as u64,
            "a reconcile request came sooner than --reconcile-request-interval after the last \
             reconcile; it runs then"
        );
        return Ok(Action::requeue(wait));
    }
    ctx.state.started(&key, &uid);
    let api: Api<WhatsAppSender> = Api::namespaced(ctx.kube.clone(), &namespace);
    let started = std::time::Instant::now();
    let concluded = Mutex::new(Conclusion::default());
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        let (obj, deleting) = match event {
            finalizer::Event::Apply(obj) => (obj, false),
            finalizer::Event::Cleanup(obj) => (obj, true),
        };
        let mut run = Run::new(&ctx, &api, &obj);
        let limit = ctx.settings.reconcile_timeout;
        // Dropped where it stands past the limit; what it concluded so far is kept.
        let result = tokio::time::timeout(limit, work(&mut run, deleting))
            .await
            .unwrap_or(Err(NotDone::Failed(Error::ReconcileTimeout(limit))));
        *concluded.lock().unwrap_or_else(|p| p.into_inner()) = run.conclusion;
        result
    })
    .instrument(span)
    .await
    .or_else(|err| match err {
        finalizer::Error::CleanupFailed(NotDone::Deleting(action)) => Ok(action),
        finalizer::Error::ApplyFailed(NotDone::Failed(err))
        | finalizer::Error::CleanupFailed(NotDone::Failed(err)) => Err(err),
        finalizer::Error::ApplyFailed(NotDone::Deleting(_)) => {
            Err(Error::Finalizer("apply reported a deletion".into()))
        }
        finalizer::Error::AddFinalizer(err) | finalizer::Error::RemoveFinalizer(err) => {
            Err(Error::Kube(err))
        }
        other => Err(Error::Finalizer(other.to_string())),
    });
    let mut conclusion = concluded.into_inner().unwrap_or_else(|p| p.into_inner());
    conclusion.failed = result.is_err();
    for sender in ctx.state.concluded(&key, &uid, conclusion) {
        ctx.wake(sender);
    }
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::metric_label),
    );
    result
}

/// The phases of an object that exists, or the cleanup of one being deleted.
async fn work(run: &mut Run<'_>, deleting: bool) -> std::result::Result<Action, NotDone> {
    if deleting {
        cleanup::run(run).await
    } else {
        apply(run).await.map_err(NotDone::Failed)
    }
}

/// How long a reconcile forced by a new `senderops.io/reconcile-requested-at` value must wait:
/// each new value would otherwise reconcile at once, past any backoff, so a tenant annotating
/// in a loop could keep the operator (and Twilio) busy. Not for a spec change or a deletion.
fn forced_too_soon(
    obj: &WhatsAppSender,
    ctx: &Context,
    key: &super::state::SenderKey,
    uid: &str,
) -> Option<std::time::Duration> {
    let requested = obj.annotations().get(RECONCILE_REQUESTED_ANNOTATION)?;
    let status = obj.status.as_ref();
    let handled = status.and_then(|s| s.last_handled_reconcile_at.as_ref()) == Some(requested);
    let spec_changed = obj.metadata.generation != status.and_then(|s| s.observed_generation);
    if handled || spec_changed || obj.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let last = ctx.state.last_started(key, uid)?;
    let failures = ctx.state.failures(key);
    let backoff = if failures > 0 {
        ctx.settings.pacing.after_error(failures, None)
    } else {
        std::time::Duration::ZERO
    };
    let gap = ctx.settings.reconcile_request_interval.max(backoff);
    gap.checked_sub(last.elapsed())
        .filter(|wait| !wait.is_zero())
}

async fn apply(run: &mut Run<'_>) -> Result<Action> {
    match phases(run).await {
        Ok(outcome) => run.finish(outcome).await,
        Err(Halt::Outcome(outcome)) => run.finish(*outcome).await,
        Err(Halt::Failed(err)) => Err(run.failed(err).await),
    }
}

/// The phases in order; any of them may end the reconcile with its outcome.
async fn phases(run: &mut Run<'_>) -> Phase<Outcome> {
    if run.spec().suspend {
        return stop(Outcome::new(
            <crate::runtime::conditions::Assessment as super::conditions::SenderAssessment>::suspended(),
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
