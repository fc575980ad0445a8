//! One reconcile's working state: the object, the status being built, the sender's facts as
//! the reconcile began, and what it will conclude. Writes the status and publishes Events;
//! decides nothing about Twilio.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{FIELD_MANAGER, RECONCILE_REQUESTED_ANNOTATION};
use crate::api::condition_type::{STALLED, SYNCED};
use crate::api::{WhatsAppSender, WhatsAppSenderSpec, WhatsAppSenderStatus, reason};
use crate::controllers::whatsapp_sender::Context;
use crate::controllers::whatsapp_sender::pacing;
use crate::controllers::whatsapp_sender::state::{
    Conclusion, Identity, Polls, SenderFacts, SenderKey, key_of,
};
use crate::error::{Error, Result};
use crate::runtime::conditions::{self, Assessment};
use crate::runtime::events::Note;
use crate::twilio::SenderStatus;

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
    api: &'a Api<WhatsAppSender>,
    pub obj: &'a WhatsAppSender,
    pub key: SenderKey,
    pub uid: String,
    reference: ObjectReference,
    /// The sender's record as the reconcile began.
    pub facts: SenderFacts,
    /// The status being built.
    pub status: WhatsAppSenderStatus,
    /// The status as last written (or read): a write is skipped when nothing changed.
    written: WhatsAppSenderStatus,
    /// What this reconcile will conclude for the sender's record.
    pub conclusion: Conclusion,
    /// One of its account's reconcile workers, held until the reconcile ends.
    pub worker: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<'a> Run<'a> {
    pub fn new(ctx: &'a Context, api: &'a Api<WhatsAppSender>, obj: &'a WhatsAppSender) -> Self {
        let key = key_of(obj);
        let uid = obj.uid().unwrap_or_default();
        let facts = ctx.state.facts(&key, &uid);
        let written = obj.status.clone().unwrap_or_default();
        let mut status = written.clone();
        // The watch cache may not show our latest write yet; what we wrote is the truth.
        if let Some(identity) = &facts.identity {
            identity.overlay(&mut status);
        }
        Self {
            ctx,
            api,
            reference: obj.object_ref(&()),
            obj,
            key,
            uid,
            facts,
            status,
            written,
            conclusion: Conclusion::default(),
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
        self.ctx.events.publish(&self.reference, note).await;
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
        Action::requeue(pacing::jittered(delay, hasher.finish()))
    }

    /// Writes the status if it changed. The identity is remembered first, so that even a
    /// failed write cannot make the next reconcile forget a SID.
    pub async fn save(&mut self) -> Result<()> {
        self.conclusion.identity = Some(Identity::of(&self.status));
        if self.status == self.written {
            return Ok(());
        }
        if self.status.conditions.is_empty() {
            // Whatever is written first, kstatus readers see all three conditions.
            self.status.conditions = conditions::merge(
                &[],
                &Assessment::unchanged(),
                self.obj.metadata.generation,
                &Time(Timestamp::now()),
            );
        }
        let patch = json!({
            "apiVersion": WhatsAppSender::api_version(&()),
            "kind": WhatsAppSender::kind(&()),
            "status": self.status,
        });
        self.api
            .patch_status(
                &self.obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        self.written = self.status.clone();
        Ok(())
    }

    /// Removes the status fields `fields` (camelCase) at the API server, whoever wrote them;
    /// the caller has cleared them in the status being built. A server-side apply only
    /// removes the fields its own manager owns, and a SID written by someone else (`kubectl
    /// edit --subresource status`, a restore) is theirs.
    pub async fn remove_status_fields(&mut self, fields: &[&str]) -> Result<()> {
        self.conclusion.identity = Some(Identity::of(&self.status));
        let nulls: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|field| (field.to_string(), serde_json::Value::Null))
            .collect();
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let patched = self
            .api
            .patch_status(
                &self.obj.name_any(),
                &params,
                &Patch::Merge(&json!({ "status": nulls })),
            )
            .await?;
        self.written = patched.status.unwrap_or_default();
        Ok(())
    }

    /// Sets the conditions and `observedGeneration`, writes the status, and publishes a
    /// Warning Event when the sender became stalled or started failing.
    pub async fn conclude(&mut self, assessment: &Assessment) -> Result<()> {
        let generation = self.obj.metadata.generation;
        let now = Time(Timestamp::now());
        let before = self.status.conditions.clone();
        self.status.conditions = conditions::merge(&before, assessment, generation, &now);
        self.status.observed_generation = generation;
        // Only a reconcile's conclusion records it, so a user (or a test) who sees their value
        // here knows the requested reconcile ran to its end, not merely that one started.
        if let Some(requested) = self.obj.annotations().get(RECONCILE_REQUESTED_ANNOTATION) {
            self.status.last_handled_reconcile_at = Some(requested.clone());
        }
        for type_ in [STALLED, SYNCED] {
            let (old, new) = (
                conditions::find(&before, type_),
                conditions::find(&self.status.conditions, type_),
            );
            let Some(new) = new else { continue };
            let problem = match type_ {
                STALLED => new.status == "True",
                // Waiting for a turn or for the user to resume is not a problem.
                _ => {
                    new.status == "False"
                        && ![
                            reason::SUSPENDED,
                            reason::QUEUED,
                            reason::WAITING_FOR_DISPLAY_NAME_CHECK,
                        ]
                        .contains(&new.reason.as_str())
                }
            };
            let changed = old.is_none_or(|o| o.status != new.status || o.reason != new.reason);
            // A stalled sender is also not synced: one Event is enough.
            let stalled_too = type_ == SYNCED
                && conditions::is_true(&self.status.conditions, STALLED)
                && !conditions::is_true(&before, STALLED);
            if problem && changed && !stalled_too {
                self.note(Note::warning(new.reason.clone(), new.message.clone()))
                    .await;
            }
        }
        self.save().await
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
