//! One reconcile's working state: the object, the status being built, the sender's facts as
//! the reconcile began, and what it will conclude. Writes the status and publishes Events
//! through the runtime's [`StatusWriter`]; decides nothing about Twilio.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;

use crate::api::{WhatsAppSender, WhatsAppSenderSpec, WhatsAppSenderStatus, reason};
use crate::controllers::whatsapp_sender::Context;
use crate::controllers::whatsapp_sender::state::{
    Conclusion, Identity, Polls, SenderFacts, SenderKey, key_of,
};
use crate::error::{Error, Result};
use crate::runtime::backoff;
use crate::runtime::conditions::Assessment;
use crate::runtime::events::Note;
use crate::runtime::status::StatusWriter;
use crate::twilio::SenderStatus;

/// `Synced=False` reasons that are no problem, so publish no Warning: waiting for a turn or
/// for the user to resume.
const QUIET: [&str; 3] = [
    reason::SUSPENDED,
    reason::QUEUED,
    reason::WAITING_FOR_DISPLAY_NAME_CHECK,
];

/// When to look at the sender again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// A settled sender: at the resync interval.
    Resync,
    /// Twilio is working on it: poll, backing off while it stays in this status.
    Poll(SenderStatus),
    /// After this long (a code submitted, an update sent, a queue to recheck).
    After(Duration),
    /// Only when the object or a Secret it reads changes.
    OnChange,
}

/// What a phase concluded: the conditions to set and when to come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub assessment: Assessment,
    pub requeue: Requeue,
}

impl Outcome {
    pub fn new(assessment: Assessment, requeue: Requeue) -> Self {
        Self {
            assessment,
            requeue,
        }
    }
}

pub struct Run<'a> {
    pub ctx: &'a Context,
    pub obj: &'a WhatsAppSender,
    pub key: SenderKey,
    pub uid: String,
    /// The sender's record as the reconcile began.
    pub facts: SenderFacts,
    /// The status being built.
    pub status: WhatsAppSenderStatus,
    writer: StatusWriter<'a, Context>,
    /// What this reconcile will conclude for the sender's record (the driver's, kept however
    /// the reconcile ends).
    pub conclusion: &'a mut Conclusion,
    /// One of its account's reconcile workers, held until the reconcile ends.
    pub worker: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<'a> Run<'a> {
    pub fn new(
        ctx: &'a Context,
        api: &'a Api<WhatsAppSender>,
        obj: &'a WhatsAppSender,
        conclusion: &'a mut Conclusion,
    ) -> Self {
        let key = key_of(obj);
        let uid = obj.uid().unwrap_or_default();
        let facts = ctx.state.facts(&key, &uid);
        let writer = StatusWriter::<Context>::new(api, obj, &ctx.shared.events);
        let mut status = writer.written().clone();
        // The watch cache may not show our latest write yet; what we wrote is the truth.
        if let Some(identity) = &facts.identity {
            identity.overlay(&mut status);
        }
        Self {
            ctx,
            obj,
            key,
            uid,
            facts,
            status,
            writer,
            conclusion,
            worker: None,
        }
    }

    pub fn spec(&self) -> &'a WhatsAppSenderSpec {
        &self.obj.spec
    }

    pub fn namespace(&self) -> String {
        self.obj.namespace().unwrap_or_default()
    }

    pub fn phone(&self) -> &'a str {
        &self.obj.spec.phone_number
    }

    pub fn generation(&self) -> i64 {
        self.obj.metadata.generation.unwrap_or_default()
    }

    /// The verification method's word, for messages.
    pub fn method(&self) -> &'static str {
        self.spec()
            .verification
            .as_ref()
            .map(|v| v.method.as_str())
            .unwrap_or("sms")
    }

    pub async fn note(&self, note: Note) {
        self.writer.note(note).await;
    }

    /// The requeue as an action: jittered per object, polls backing off per status.
    pub fn action(&mut self, requeue: &Requeue) -> Action {
        let pacing = &self.ctx.settings.pacing;
        let delay = match requeue {
            Requeue::OnChange => return Action::await_change(),
            Requeue::After(delay) => return Action::requeue(*delay),
            Requeue::Resync => pacing.resync_interval,
            Requeue::Poll(status) => {
                let polls = Polls::after(self.facts.polls.as_ref(), status.as_str());
                let delay = pacing.next_poll(status, polls.count);
                self.conclusion.polls = Some(polls);
                delay
            }
        };
        let mut hasher = DefaultHasher::new();
        self.uid.hash(&mut hasher);
        Action::requeue(backoff::jittered(delay, hasher.finish()))
    }

    /// Writes the status if it changed. The identity is remembered first, so that even a
    /// failed write cannot make the next reconcile forget a SID.
    pub async fn save(&mut self) -> Result<()> {
        self.conclusion.identity = Some(Identity::of(&self.status));
        self.writer.save(&mut self.status).await
    }

    /// Removes the status fields `fields` (camelCase) at the API server, whoever wrote them;
    /// the caller has cleared them in the status being built.
    pub async fn remove_status_fields(&mut self, fields: &[&str]) -> Result<()> {
        self.conclusion.identity = Some(Identity::of(&self.status));
        self.writer.remove_fields(fields).await
    }

    /// Sets the conditions and `observedGeneration`, writes the status, and publishes a
    /// Warning Event when the sender became stalled or started failing.
    pub async fn conclude(&mut self, assessment: &Assessment) -> Result<()> {
        self.conclusion.identity = Some(Identity::of(&self.status));
        self.writer
            .conclude(&mut self.status, assessment, &QUIET)
            .await
    }

    /// Ends the reconcile with `outcome`. A sender that waits for a person (stalled,
    /// suspended) must not keep its account's other numbers waiting for their turn.
    pub async fn finish(&mut self, outcome: Outcome) -> Result<Action> {
        if outcome.assessment.is_stalled() || self.spec().suspend {
            self.conclusion.leaves_onboarding = true;
        }
        self.conclude(&outcome.assessment).await?;
        Ok(self.action(&outcome.requeue))
    }

    /// Records a transient failure in `Synced` (best effort) and hands the error back for
    /// backoff.
    pub async fn failed(&mut self, err: Error) -> Error {
        let (reason, message) = err.condition();
        if let Err(write) = self.conclude(&Assessment::failed(reason, message)).await {
            tracing::warn!(error = %write, "could not record the failure in status");
        }
        err
    }
}
