//! Writing an object's status, every kind's way: server-side apply of the status being built
//! (skipped when nothing changed), the conditions merged from a reconcile's verdict, and a
//! Warning Event when a condition turns into a problem.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::conditions::condition_type::{STALLED, SYNCED};
use super::conditions::{self, Assessment};
use super::driver::{Kind, RECONCILE_REQUESTED_ANNOTATION};
use super::events::{Note, Publisher};
use crate::error::Result;

/// Field manager of the operator's status writes.
pub const FIELD_MANAGER: &str = "senderops";

/// What the runtime reads and writes in a kind's status: its conditions, the generation they
/// describe, and the last reconcile request handled.
pub trait ObjectStatus: Serialize + Clone + PartialEq + Default + Send + Sync {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>);
    fn observed_generation(&self) -> Option<i64>;
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// The `senderops.io/reconcile-requested-at` value whose reconcile ran to its end.
    fn last_handled_request(&self) -> Option<&str>;
    fn set_last_handled_request(&mut self, value: String);
}

/// Writes one object's status during one reconcile, and publishes its Events.
pub struct StatusWriter<'a, K: Kind> {
    api: &'a Api<K::Object>,
    obj: &'a K::Object,
    events: &'a Publisher,
    reference: ObjectReference,
    /// The status as last written (or read): a write is skipped when nothing changed.
    written: K::Status,
}

impl<'a, K: Kind> StatusWriter<'a, K> {
    pub fn new(api: &'a Api<K::Object>, obj: &'a K::Object, events: &'a Publisher) -> Self {
        Self {
            api,
            obj,
            events,
            reference: obj.object_ref(&()),
            written: K::status(obj).cloned().unwrap_or_default(),
        }
    }

    /// The status as last written (or as read, before the first write).
    pub fn written(&self) -> &K::Status {
        &self.written
    }

    pub async fn note(&self, note: Note) {
        self.events.publish(&self.reference, note).await;
    }

    /// Writes `status` if it changed since the last write.
    pub async fn save(&mut self, status: &mut K::Status) -> Result<()> {
        if *status == self.written {
            return Ok(());
        }
        if status.conditions().is_empty() {
            // Whatever is written first, kstatus readers see all three conditions.
            status.set_conditions(conditions::merge(
                &[],
                &Assessment::unchanged(),
                self.obj.meta().generation,
                &Time(Timestamp::now()),
            ));
        }
        let patch = json!({
            "apiVersion": K::Object::api_version(&()),
            "kind": K::Object::kind(&()),
            "status": status,
        });
        self.api
            .patch_status(
                &self.obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        self.written = status.clone();
        Ok(())
    }

    /// Removes the status fields `fields` (camelCase) at the API server, whoever wrote them;
    /// the caller has cleared them in the status being built. A server-side apply only
    /// removes the fields its own manager owns, and a field written by someone else (`kubectl
    /// edit --subresource status`, a restore) is theirs.
    pub async fn remove_fields(&mut self, fields: &[&str]) -> Result<()> {
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
        self.written = K::status(&patched).cloned().unwrap_or_default();
        Ok(())
    }

    /// Sets the conditions and `observedGeneration` from `assessment`, writes the status, and
    /// publishes a Warning Event when the object became stalled or started failing. A `Synced`
    /// of a reason in `quiet` (waiting for a turn, for the user to resume) is no problem.
    pub async fn conclude(
        &mut self,
        status: &mut K::Status,
        assessment: &Assessment,
        quiet: &[&str],
    ) -> Result<()> {
        let generation = self.obj.meta().generation;
        let before = status.conditions().to_vec();
        let now = Time(Timestamp::now());
        status.set_conditions(conditions::merge(&before, assessment, generation, &now));
        status.set_observed_generation(generation);
        // Only a reconcile's conclusion records it, so a user (or a test) who sees their value
        // here knows the requested reconcile ran to its end, not merely that one started.
        if let Some(requested) = self.obj.annotations().get(RECONCILE_REQUESTED_ANNOTATION) {
            status.set_last_handled_request(requested.clone());
        }
        for note in problems(&before, status.conditions(), quiet) {
            self.note(note).await;
        }
        self.save(status).await
    }
}

/// The Warning Events for conditions that turned into a problem between `before` and `after`:
/// `Stalled=True`, or `Synced=False` for a reason not in `quiet`. A stalled object is also not
/// synced: one Event is enough.
fn problems(before: &[Condition], after: &[Condition], quiet: &[&str]) -> Vec<Note> {
    let mut notes = Vec::new();
    for type_ in [STALLED, SYNCED] {
        let (old, new) = (
            conditions::find(before, type_),
            conditions::find(after, type_),
        );
        let Some(new) = new else { continue };
        let problem = match type_ {
            STALLED => new.status == "True",
            _ => new.status == "False" && !quiet.contains(&new.reason.as_str()),
        };
        let changed = old.is_none_or(|o| o.status != new.status || o.reason != new.reason);
        let stalled_too = type_ == SYNCED
            && conditions::is_true(after, STALLED)
            && !conditions::is_true(before, STALLED);
        if problem && changed && !stalled_too {
            notes.push(Note::warning(new.reason.clone(), new.message.clone()));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::conditions::merge;

    fn after(before: &[Condition], assessment: &Assessment) -> Vec<Condition> {
        merge(before, assessment, Some(1), &Time(Timestamp::UNIX_EPOCH))
    }

    fn reasons(notes: &[Note]) -> Vec<(&str, bool)> {
        notes
            .iter()
            .map(|n| (n.reason.as_str(), n.warning))
            .collect()
    }

    #[test]
    fn a_condition_that_turns_into_a_problem_publishes_one_warning() {
        let ready = after(&[], &Assessment::ready("Online", "online"));
        let stalled = after(&ready, &Assessment::stalled("InvalidSpec", "fix it"));
        assert_eq!(
            reasons(&problems(&ready, &stalled, &[])),
            [("InvalidSpec", true)],
            "stalled, and not synced for the same reason: one Event"
        );
        assert!(
            problems(&stalled, &stalled, &[]).is_empty(),
            "no transition, no Event"
        );
        let failing = after(&ready, &Assessment::failed("TwilioUnavailable", "503"));
        assert_eq!(
            reasons(&problems(&ready, &failing, &[])),
            [("TwilioUnavailable", true)]
        );
    }

    #[test]
    fn a_quiet_reason_is_no_problem() {
        let ready = after(&[], &Assessment::ready("Online", "online"));
        let queued = after(&ready, &Assessment::waiting("Queued", "your turn comes"));
        assert!(problems(&ready, &queued, &["Queued"]).is_empty());
        assert_eq!(reasons(&problems(&ready, &queued, &[])), [("Queued", true)]);
    }
}
