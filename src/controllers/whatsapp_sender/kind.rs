//! What the runtime's driver needs of the `WhatsAppSender` controller: the small per-kind
//! interface ([`Kind`]), and where the runtime finds its conditions in the status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::Context;
use super::reconcile::{self, FINALIZER};
use super::state::{Conclusion, key_of};
use crate::api::{WhatsAppSender, WhatsAppSenderStatus};
use crate::error::Result;
use crate::runtime::driver::{Cleanup, Kind, Shared};
use crate::runtime::namespaces;
use crate::runtime::status::ObjectStatus;

impl Kind for Context {
    type Object = WhatsAppSender;
    type Status = WhatsAppSenderStatus;
    type Conclusion = Conclusion;

    const CONTROLLER: &'static str = "whatsappsender";
    const FINALIZER: &'static str = FINALIZER;

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn api(&self, obj: &WhatsAppSender) -> Api<WhatsAppSender> {
        Api::namespaced(
            self.shared.kube.clone(),
            &obj.namespace().unwrap_or_default(),
        )
    }

    fn watch_apis(client: &Client, namespaces: &[String]) -> Vec<Api<WhatsAppSender>> {
        namespaces::apis(client, namespaces)
    }

    fn status(obj: &WhatsAppSender) -> Option<&WhatsAppSenderStatus> {
        obj.status.as_ref()
    }

    fn span(&self, obj: &WhatsAppSender) -> tracing::Span {
        let span = tracing::info_span!(
            "reconcile",
            namespace = %obj.namespace().unwrap_or_default(),
            // Not `name`: JSON logs write the span's own name under that key.
            sender = %obj.name_any(),
            sid = tracing::field::Empty,
        );
        if let Some(sid) = obj.status.as_ref().and_then(|s| s.sid.as_deref()) {
            span.record("sid", sid);
        }
        span
    }

    fn last_started(&self, obj: &WhatsAppSender) -> Option<Instant> {
        self.state
            .last_started(&key_of(obj), &obj.uid().unwrap_or_default())
    }

    fn failures(&self, obj: &WhatsAppSender) -> u32 {
        self.state.failures(&key_of(obj))
    }

    fn started(&self, obj: &WhatsAppSender) {
        self.state
            .started(&key_of(obj), &obj.uid().unwrap_or_default());
    }

    async fn apply(
        &self,
        obj: &WhatsAppSender,
        api: &Api<WhatsAppSender>,
        conclusion: &mut Conclusion,
    ) -> Result<Action> {
        reconcile::apply(self, api, obj, conclusion).await
    }

    async fn cleanup(
        &self,
        obj: &WhatsAppSender,
        api: &Api<WhatsAppSender>,
        conclusion: &mut Conclusion,
    ) -> Result<Cleanup> {
        reconcile::cleanup(self, api, obj, conclusion).await
    }

    fn concluded(&self, obj: &WhatsAppSender, mut conclusion: Conclusion, failed: bool) {
        conclusion.failed = failed;
        let uid = obj.uid().unwrap_or_default();
        for sender in self.state.concluded(&key_of(obj), &uid, conclusion) {
            self.wake(sender);
        }
    }
}

impl ObjectStatus for WhatsAppSenderStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn set_conditions(&mut self, conditions: Vec<Condition>) {
        self.conditions = conditions;
    }

    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }

    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }

    fn last_handled_request(&self) -> Option<&str> {
        self.last_handled_reconcile_at.as_deref()
    }

    fn set_last_handled_request(&mut self, value: String) {
        self.last_handled_reconcile_at = Some(value);
    }
}
