//! One reconcile of one `WhatsAppSender`: the only place that talks to both Kubernetes and
//! Twilio. It reads top to bottom like the loop it runs:
//!
//! 1. finalizer; on deletion, delete at Twilio (or orphan) before letting the object go;
//! 2. credentials from the Secret, pinned to the account the sender was registered in;
//! 3. find the sender: by SID, else by number in the account (adopt), else create it, one
//!    number per account at a time, with the SID written to status the moment it is known;
//! 4. mirror what Twilio reports, with an Event per transition;
//! 5. bring Twilio in line: the fields that differ, or the one-time code while it waits;
//! 6. conditions, then a requeue paced by Twilio's status.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::Instrument;

use super::account_view::AccountView;
use super::conditions::{self, Assessment, reason, stalled_reason};
use super::diff::{self, Drift};
use super::events::{Note, reason as event};
use super::memory::Pinned;
use super::onboarding::SenderKey;
use super::otp::{self, CodeSource, CodeStep};
use super::pacing::{self, QUEUED_RECHECK, TOO_MANY_CODES_RETRY};
use super::{Context, credentials::CredentialsProblem};
use crate::api::condition_type::{STALLED, SYNCED};
use crate::api::{
    DeletionPolicy, EXPORTED_FROM_ANNOTATION, OfflineReason, SubmittedCode, WhatsAppSender,
};
use crate::error::{Error, Result, twilio_message};
use crate::twilio::{
    ErrorClass, Sender, SenderStatus, SendersClient, TwilioError, UpdateSenderRequest,
    is_valid_sender_sid,
};

/// Held on every sender until Twilio has let go of it (or the user chose `Orphan`).
pub const FINALIZER: &str = "messaging.senderops.io/cleanup";

/// Field manager of the operator's status writes.
pub const FIELD_MANAGER: &str = "senderops";

/// Any new value forces an immediate reconcile.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "senderops.io/reconcile-requested-at";

/// The same update sent this many times for one generation without Twilio keeping it stops
/// being sent: something (Twilio normalising a value, say) would otherwise loop forever.
const MAX_UPDATE_REPEATS: u32 = 3;

/// An offline reason code that means the user must act: the codes that stall as errors too.
fn needs_user(code: Option<&str>) -> Option<u32> {
    let code = code?.trim().parse::<u32>().ok()?;
    TwilioError::code_needs_user(code).then_some(code)
}

/// Entry point for kube's controller: the finalizer decides between apply and cleanup.
pub async fn reconcile(obj: Arc<WhatsAppSender>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = obj.namespace().unwrap_or_default();
    let span = tracing::info_span!(
        "reconcile",
        namespace = %namespace,
        name = %obj.name_any(),
        sid = tracing::field::Empty,
    );
    if let Some(sid) = obj.status.as_ref().and_then(|s| s.sid.as_deref()) {
        span.record("sid", sid);
    }
    let key = SenderKey::from_obj(&*obj);
    let uid = obj.uid().unwrap_or_default();
    let api: Api<WhatsAppSender> = Api::namespaced(ctx.kube.clone(), &namespace);
    let started = std::time::Instant::now();
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            finalizer::Event::Apply(obj) => Reconcile::new(&ctx, &api, obj).apply().await,
            finalizer::Event::Cleanup(obj) => Reconcile::new(&ctx, &api, obj).cleanup().await,
        }
    })
    .instrument(span)
    .await
    .map_err(|err| match err {
        finalizer::Error::ApplyFailed(err) | finalizer::Error::CleanupFailed(err) => err,
        finalizer::Error::AddFinalizer(err) | finalizer::Error::RemoveFinalizer(err) => {
            Error::Kube(err)
        }
        other => Error::Finalizer(other.to_string()),
    });
    if result.is_ok() {
        ctx.memory.succeeded(&key, &uid);
    }
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::metric_label),
    );
    result
}

/// What a reconcile concluded: the conditions to set and when to come back.
struct Outcome {
    assessment: Assessment,
    requeue: Action,
}

impl Outcome {
    fn new(assessment: Assessment, requeue: Action) -> Self {
        Self {
            assessment,
            requeue,
        }
    }
}

/// A code to submit: where it is, which version, whether it repeats a submission of unknown
/// fate, and the Secret if it was already read.
struct Submission {
    source: CodeSource,
    resource_version: String,
    retry: bool,
    fetched: Option<Secret>,
}

/// The sender, found or created, or the reason to stop here.
enum Found {
    Sender(Box<Sender>),
    Stop(Outcome),
}

/// The state of one reconcile.
struct Reconcile<'a> {
    ctx: &'a Context,
    api: &'a Api<WhatsAppSender>,
    obj: Arc<WhatsAppSender>,
    key: SenderKey,
    uid: String,
    reference: ObjectReference,
    /// The status being built.
    status: crate::api::WhatsAppSenderStatus,
    /// The status as last written (or read): a write is skipped when nothing changed.
    written: crate::api::WhatsAppSenderStatus,
}

impl<'a> Reconcile<'a> {
    fn new(ctx: &'a Context, api: &'a Api<WhatsAppSender>, obj: Arc<WhatsAppSender>) -> Self {
        let key = SenderKey::from_obj(&*obj);
        let uid = obj.uid().unwrap_or_default();
        let written = obj.status.clone().unwrap_or_default();
        let mut status = written.clone();
        // The watch cache may not show our latest write yet; what we wrote is the truth.
        if let Some(pinned) = ctx.memory.pinned(&key, &uid) {
            pinned.overlay(&mut status);
        }
        Self {
            ctx,
            api,
            reference: obj.object_ref(&()),
            key,
            uid,
            status,
            written,
            obj,
        }
    }

    fn spec(&self) -> &crate::api::WhatsAppSenderSpec {
        &self.obj.spec
    }

    fn namespace(&self) -> String {
        self.obj.namespace().unwrap_or_default()
    }

    fn phone(&self) -> &str {
        &self.obj.spec.phone_number
    }

    fn resync(&self) -> Action {
        Action::requeue(pacing::jittered(
            self.ctx.settings.pacing.resync_interval,
            self.seed(),
        ))
    }

    fn poll(&self, status: &SenderStatus) -> Action {
        let polls = self
            .ctx
            .memory
            .polled(&self.key, &self.uid, status.as_str());
        Action::requeue(pacing::jittered(
            self.ctx.settings.pacing.next_poll(status, polls),
            self.seed(),
        ))
    }

    fn first_seen(&self) -> tokio::time::Instant {
        self.ctx.memory.first_seen(&self.key, &self.uid)
    }

    fn seed(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.uid.hash(&mut hasher);
        hasher.finish()
    }

    async fn note(&self, note: Note) {
        self.ctx.events.publish(&self.reference, note).await;
    }

    // -----------------------------------------------------------------------------------------
    // Status

    /// Writes the status if it changed. Identity fields are remembered first, so that even a
    /// failed write cannot make the next reconcile forget a SID.
    async fn save(&mut self) -> Result<()> {
        self.ctx
            .memory
            .pin(&self.key, &self.uid, Pinned::of(&self.status));
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

    /// Sets the conditions and `observedGeneration`, writes the status, and publishes an
    /// Event when the sender became stalled or started failing.
    async fn conclude(&mut self, assessment: &Assessment) -> Result<()> {
        let generation = self.obj.metadata.generation;
        let now = Time(Timestamp::now());
        let before = self.status.conditions.clone();
        self.status.conditions = conditions::merge(&before, assessment, generation, &now);
        self.status.observed_generation = generation;
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
                        && ![reason::SUSPENDED, reason::QUEUED].contains(&new.reason.as_str())
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

    // -----------------------------------------------------------------------------------------
    // Apply

    async fn apply(mut self) -> Result<Action> {
        let outcome = match self.apply_steps().await {
            Ok(outcome) => outcome,
            // Wherever it came from, an error retrying cannot fix waits for the user.
            Err(Error::Twilio { action, source }) if source.class() == ErrorClass::NeedsUser => {
                self.twilio_stalled(action, &source)
            }
            Err(err) => {
                let (reason, message) = err.condition();
                if let Err(write) = self.conclude(&Assessment::failed(reason, message)).await {
                    tracing::warn!(error = %write, "could not record the failure in status");
                }
                return Err(err);
            }
        };
        // A sender that waits for a person (stalled, suspended) must not keep its account's
        // other numbers waiting for their onboarding turn.
        if (outcome.assessment.is_stalled() || self.spec().suspend)
            && let Some(account) = self.status.account_sid.clone()
        {
            self.release_turn(&account);
        }
        self.conclude(&outcome.assessment).await?;
        Ok(outcome.requeue)
    }

    async fn apply_steps(&mut self) -> Result<Outcome> {
        if self.spec().suspend {
            return Ok(Outcome::new(
                Assessment::suspended(),
                Action::await_change(),
            ));
        }

        let client = match self.twilio_client().await? {
            Ok(client) => client,
            Err(problem) => {
                let assessment = if problem.is_not_found() {
                    Assessment::waiting(reason::CREDENTIALS_NOT_FOUND, problem.to_string())
                } else {
                    Assessment::stalled(reason::INVALID_CREDENTIALS, problem.to_string())
                };
                return Ok(Outcome::new(assessment, self.resync()));
            }
        };
        let account = client.account_sid().to_string();
        if let Some(recorded) = self.status.account_sid.clone()
            && recorded != account
        {
            return Ok(Outcome::new(
                Assessment::stalled(
                    reason::ACCOUNT_CHANGED,
                    self.account_changed(&recorded, &account),
                ),
                self.resync(),
            ));
        }
        let view = self.ctx.views.account(&account);

        let sender = match self.status.sid.clone() {
            Some(sid) => match self.read(&client, &view, &sid).await? {
                Some(sender) if sender.is_for(self.phone()) => sender,
                Some(other) => {
                    self.not_this_number("status.sid", &other).await;
                    self.status.sid = None;
                    match self.find_or_create(&client, &view, &account, false).await? {
                        Found::Sender(sender) => *sender,
                        Found::Stop(outcome) => return Ok(outcome),
                    }
                }
                None => {
                    tracing::warn!(
                        sid,
                        "the sender no longer exists at Twilio; registering it again"
                    );
                    view.forget(&sid);
                    view.number_changed(self.phone());
                    self.status.sid = None;
                    match self.find_or_create(&client, &view, &account, true).await? {
                        Found::Sender(sender) => *sender,
                        Found::Stop(outcome) => return Ok(outcome),
                    }
                }
            },
            None => match self.adopt_named(&client, &account).await? {
                Some(sender) => sender,
                None => match self.find_or_create(&client, &view, &account, false).await? {
                    Found::Sender(sender) => *sender,
                    Found::Stop(outcome) => return Ok(outcome),
                },
            },
        };
        self.converge(&client, &view, &account, sender).await
    }

    /// Adopts the sender the object names in [`EXPORTED_FROM_ANNOTATION`] if Twilio has it as
    /// this number in this account (a fetch with this account's credentials finds only its
    /// own): no list, no create. `None` sends the caller to the lookup by number.
    async fn adopt_named(
        &mut self,
        client: &SendersClient,
        account: &str,
    ) -> Result<Option<Sender>> {
        let Some(sid) = self
            .obj
            .annotations()
            .get(EXPORTED_FROM_ANNOTATION)
            .map(|sid| sid.trim().to_string())
            .filter(|sid| is_valid_sender_sid(sid))
        else {
            return Ok(None);
        };
        let sender = match client.fetch(&sid).await {
            Ok(sender) => sender,
            Err(err) if err.is_not_found() => {
                tracing::info!(
                    sid,
                    "the sender named by {EXPORTED_FROM_ANNOTATION} is not in this account; \
                     looking the number up"
                );
                return Ok(None);
            }
            Err(err) => return Err(Error::twilio("read the exported sender")(err)),
        };
        if !sender.is_for(self.phone()) {
            self.not_this_number(EXPORTED_FROM_ANNOTATION, &sender)
                .await;
            return Ok(None);
        }
        self.adopt(account, &sender).await?;
        Ok(Some(sender))
    }

    /// `source` named a sender of another number: it is left alone and the number looked up.
    async fn not_this_number(&self, source: &str, sender: &Sender) {
        let message = format!(
            "{source} names Twilio sender {}, which is {:?}, not {}: the operator leaves it \
             alone and looks the number up instead",
            sender.sid,
            sender.sender_id,
            self.phone()
        );
        self.note(Note::warning(event::SENDER_MISMATCH, message))
            .await;
    }

    fn account_changed(&self, recorded: &str, now: &str) -> String {
        format!(
            "the sender {} is registered in Twilio account {recorded}, but Secret {} now holds \
             credentials for account {now}; the operator will not register the number in \
             another account: restore credentials for {recorded}, or delete and recreate this \
             WhatsAppSender to move the number",
            self.status.sid.as_deref().unwrap_or("(no SID yet)"),
            self.spec().credentials_ref.name,
        )
    }

    async fn twilio_client(&self) -> Result<Result<SendersClient, CredentialsProblem>> {
        self.ctx
            .twilio_client(&self.namespace(), &self.spec().credentials_ref.name)
            .await
    }

    /// The sender as Twilio has it now, or `None` if Twilio no longer has it. Settled senders
    /// of an account with several come from a shared list when batching is on.
    async fn read(
        &self,
        client: &SendersClient,
        view: &AccountView,
        sid: &str,
    ) -> Result<Option<Sender>> {
        let last = self
            .status
            .twilio_status
            .as_deref()
            .map(SenderStatus::parse);
        let settled = last.as_ref().is_some_and(|s| !pacing::in_motion(s));
        if self.ctx.settings.batched_refresh && settled && view.settled_count() >= 2 {
            let max_age = self.ctx.settings.pacing.resync_interval / 2;
            let listed = view
                .refresh(client, sid, max_age)
                .await
                .map_err(Error::twilio("list the account's senders"))?;
            if listed.listed {
                // Everyone settled in this account can use this list now, which keeps the
                // account at one list per resync.
                for other in view.settled_except(sid) {
                    self.ctx.wake(other);
                }
            }
            if listed.sender.is_some() {
                return Ok(listed.sender);
            }
        }
        match client.fetch(sid).await {
            Ok(sender) => Ok(Some(sender)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(Error::twilio("read the sender")(err)),
        }
    }

    /// Adopts the number's sender if the account has one, else creates it (in turn). `fresh`
    /// demands a list made now (the sender was just found deleted).
    async fn find_or_create(
        &mut self,
        client: &SendersClient,
        view: &AccountView,
        account: &str,
        fresh: bool,
    ) -> Result<Found> {
        if let Err(busy) = self.ctx.onboarding.try_start(account, &self.key) {
            let message = format!(
                "serial onboarding: waiting for {}/{} to finish registering in account \
                 {account} ({} more ahead); Twilio advises one registration per account at a \
                 time",
                busy.holder.namespace.as_deref().unwrap_or(""),
                busy.holder.name,
                busy.ahead,
            );
            return Ok(Found::Stop(Outcome::new(
                Assessment::waiting(reason::QUEUED, message),
                Action::requeue(QUEUED_RECHECK),
            )));
        }
        let phone = self.phone().to_string();
        let listed = view
            .lookup(client, &phone, fresh, self.first_seen())
            .await
            .map_err(Error::twilio("look up the number"))?;
        if let Some(sender) = listed.sender {
            self.adopt(account, &sender).await?;
            return Ok(Found::Sender(Box::new(sender)));
        }

        // If the operator dies between the create and the SID write, cleanup still knows
        // which account to search for the number.
        if self.status.account_sid.is_none() {
            self.status.account_sid = Some(account.to_string());
            self.save().await?;
        }
        match client.create(&diff::create_request(self.spec())).await {
            Ok(sender) if is_valid_sender_sid(&sender.sid) => {
                self.record_sid(account, &sender).await?;
                // `fresh` lookups only happen when the sender was found deleted at Twilio.
                let (reason, verb) = if fresh {
                    (
                        event::RECREATED,
                        "registered again (it had been deleted at Twilio)",
                    )
                } else {
                    (event::CREATED, "created")
                };
                self.note(Note::normal(
                    reason,
                    format!(
                        "{verb} Twilio sender {} for {phone} in account {account}",
                        sender.sid
                    ),
                ))
                .await;
                Ok(Found::Sender(Box::new(sender)))
            }
            Ok(_) => {
                view.number_changed(&phone);
                Err(Error::Twilio {
                    action: "create the sender",
                    source: TwilioError::Decode(
                        "the answer carries no valid sender SID (XE + 32 hex digits)".into(),
                    ),
                })
            }
            Err(err) if err.twilio_code() == Some(63110) => {
                // Registered already: ours if it is in this account (a create whose answer was
                // lost, another tool), someone else's otherwise.
                let again = view
                    .lookup(client, &phone, true, self.first_seen())
                    .await
                    .map_err(Error::twilio("look up the number"))?;
                match again.sender {
                    Some(sender) => {
                        self.adopt(account, &sender).await?;
                        Ok(Found::Sender(Box::new(sender)))
                    }
                    None => Ok(Found::Stop(self.twilio_stalled("create the sender", &err))),
                }
            }
            Err(err) if err.class() == ErrorClass::NeedsUser => {
                Ok(Found::Stop(self.twilio_stalled("create the sender", &err)))
            }
            Err(err) => {
                // Timeouts, 5xx, broken answers: the create may have gone through. The next
                // attempt looks the number up in a list made after this moment.
                if !err.certainly_not_processed() {
                    view.number_changed(&phone);
                }
                Err(Error::twilio("create the sender")(err))
            }
        }
    }

    fn release_turn(&self, account: &str) {
        if let Some(next) = self.ctx.onboarding.forget(account, &self.key) {
            self.ctx.wake(next);
        }
    }

    /// Records the SID and account the moment they are known.
    async fn record_sid(&mut self, account: &str, sender: &Sender) -> Result<()> {
        self.status.sid = Some(sender.sid.clone());
        self.status.account_sid = Some(account.to_string());
        if !sender.sender_id.is_empty() {
            self.status.sender_id = Some(sender.sender_id.clone());
        }
        tracing::Span::current().record("sid", sender.sid.as_str());
        self.save().await
    }

    async fn adopt(&mut self, account: &str, sender: &Sender) -> Result<()> {
        self.record_sid(account, sender).await?;
        self.note(Note::normal(
            event::ADOPTED,
            format!(
                "adopted the existing Twilio sender {} ({}) for {} in account {account}",
                sender.sid,
                sender.status,
                self.phone()
            ),
        ))
        .await;
        Ok(())
    }

    /// The outcome for a Twilio error only the user can fix.
    fn twilio_stalled(&self, action: &str, err: &TwilioError) -> Outcome {
        let reason = stalled_reason(err.twilio_code(), err.http_status());
        let requeue = if reason == reason::TOO_MANY_CODES {
            Action::requeue(TOO_MANY_CODES_RETRY)
        } else {
            self.resync()
        };
        Outcome::new(conditions::twilio_failure(action, err), requeue)
    }

    // -----------------------------------------------------------------------------------------
    // Converge

    async fn converge(
        &mut self,
        client: &SendersClient,
        view: &AccountView,
        account: &str,
        sender: Sender,
    ) -> Result<Outcome> {
        self.mirror(&sender).await;
        if let Some(next) =
            self.ctx
                .onboarding
                .observe(account, &self.key, pacing::onboarding(&sender.status))
        {
            self.ctx.wake(next);
        }
        view.set_settled(&sender.sid, &self.key, !pacing::in_motion(&sender.status));

        let drift = diff::drift(self.spec(), &sender);
        if let Some(actual) = &drift.waba_id {
            let message = format!(
                "Twilio registered the sender in WABA {actual}, but the spec asks for {}: a \
                 number cannot move between WABAs; delete and recreate the WhatsAppSender (and \
                 the number's registration) to change it",
                self.spec().waba_id.as_deref().unwrap_or_default()
            );
            return Ok(Outcome::new(
                Assessment::stalled(reason::WABA_MISMATCH, message),
                self.resync(),
            ));
        }
        if let Some((code, reason)) = sender
            .offline_reasons
            .iter()
            .find_map(|r| needs_user(r.code.as_deref()).map(|code| (code, r)))
        {
            let advice = TwilioError::Api {
                http_status: 400,
                code: Some(code),
                message: reason.message.clone().unwrap_or_default(),
                more_info: reason.more_info.clone(),
                retry_after: None,
            }
            .advice();
            let message = format!(
                "Twilio reports the sender {} (offline reason {code}): {advice}",
                sender.status
            );
            return Ok(Outcome::new(
                Assessment::stalled(stalled_reason(Some(code), None), message),
                self.resync(),
            ));
        }

        match &sender.status {
            SenderStatus::PendingVerification => self.verify(client, view, &sender).await,
            SenderStatus::Online if !drift.update.is_empty() => {
                self.send_update(client, view, &sender, &drift).await
            }
            SenderStatus::Online => {
                self.ctx.memory.converged(&self.key, &self.uid);
                if let Some(name) = &drift.display_name {
                    let message = format!(
                        "Twilio shows the display name {name:?} but the spec asks for {:?}: no \
                         API can change a display name (Meta reviews it); change it in \
                         WhatsApp Manager, or delete and recreate the sender",
                        self.spec().profile.name
                    );
                    return Ok(Outcome::new(
                        Assessment::stalled(reason::DISPLAY_NAME_MISMATCH, message),
                        self.resync(),
                    ));
                }
                Ok(Outcome::new(
                    Assessment::ready(format!("ONLINE at Twilio as {}", sender.sid)),
                    self.poll(&sender.status),
                ))
            }
            other => {
                let (reason, message) = progress_of(other);
                Ok(Outcome::new(
                    Assessment::progressing(reason, message),
                    self.poll(other),
                ))
            }
        }
    }

    /// Copies what Twilio reports into status and publishes an Event for each transition.
    async fn mirror(&mut self, sender: &Sender) {
        let before = self.status.clone();
        self.status.sid = Some(sender.sid.clone());
        if !sender.sender_id.is_empty() {
            self.status.sender_id = Some(sender.sender_id.clone());
        }
        let word = sender.status.as_str();
        self.status.twilio_status = (!word.is_empty()).then(|| word.to_string());
        let properties = sender.properties.clone().unwrap_or_default();
        self.status.quality_rating = properties.quality_rating.filter(|q| !q.is_empty());
        self.status.messaging_limit = properties.messaging_limit.filter(|l| !l.is_empty());
        self.status.offline_reasons = sender
            .offline_reasons
            .iter()
            .map(|r| OfflineReason {
                code: r.code.clone(),
                message: r.message.clone(),
                more_info: r.more_info.clone(),
            })
            .collect();

        let was = before.twilio_status.as_deref();
        let now = self.status.twilio_status.as_deref();
        if was != now {
            tracing::info!(
                from = was.unwrap_or("-"),
                to = now.unwrap_or("-"),
                "Twilio status changed"
            );
            match sender.status {
                SenderStatus::Online if was != Some("ONLINE:UPDATING") => {
                    self.note(Note::normal(
                        event::ONLINE,
                        format!(
                            "sender {} is ONLINE (quality rating {}, messaging limit {})",
                            sender.sid,
                            self.status
                                .quality_rating
                                .as_deref()
                                .unwrap_or("not yet rated"),
                            self.status.messaging_limit.as_deref().unwrap_or("unknown"),
                        ),
                    ))
                    .await
                }
                SenderStatus::Offline => {
                    let reasons: Vec<String> = self
                        .status
                        .offline_reasons
                        .iter()
                        .map(|r| {
                            format!(
                                "{}: {}",
                                r.code.as_deref().unwrap_or("?"),
                                r.message.as_deref().unwrap_or("")
                            )
                        })
                        .collect();
                    let why = if reasons.is_empty() {
                        "no reason given; new senders may read OFFLINE for a few minutes".into()
                    } else {
                        reasons.join("; ")
                    };
                    self.note(Note::warning(
                        event::OFFLINE,
                        format!("sender {} is OFFLINE ({why})", sender.sid),
                    ))
                    .await
                }
                _ => {}
            }
        }
        for (reason, what, old, new) in [
            (
                event::QUALITY_RATING_CHANGED,
                "quality rating",
                &before.quality_rating,
                &self.status.quality_rating,
            ),
            (
                event::MESSAGING_LIMIT_CHANGED,
                "messaging limit",
                &before.messaging_limit,
                &self.status.messaging_limit,
            ),
        ] {
            if let (Some(old), Some(new)) = (old, new)
                && old != new
            {
                let note = format!("{what} changed from {old} to {new}");
                let lowered = reason == event::QUALITY_RATING_CHANGED && new == "LOW";
                self.note(if lowered {
                    Note::warning(reason, note)
                } else {
                    Note::normal(reason, note)
                })
                .await;
            }
        }
    }

    async fn send_update(
        &mut self,
        client: &SendersClient,
        view: &AccountView,
        sender: &Sender,
        drift: &Drift,
    ) -> Result<Outcome> {
        let generation = self.obj.metadata.generation.unwrap_or_default();
        let fields = drift.fields.join(", ");
        let repeats =
            self.ctx
                .memory
                .update_repeats(&self.key, &self.uid, generation, &drift.fields);
        if repeats >= MAX_UPDATE_REPEATS {
            let message = format!(
                "Twilio does not keep {fields} as the spec sets them (sent {repeats} times); \
                 check the values (Twilio may normalise them) and edit the spec to match"
            );
            return Ok(Outcome::new(
                Assessment::stalled(reason::TWILIO_REJECTED, message),
                self.resync(),
            ));
        }
        match client.update(&sender.sid, &drift.update).await {
            Ok(_) => {}
            Err(err) if err.class() == ErrorClass::NeedsUser => {
                return Ok(self.twilio_stalled("update the sender", &err));
            }
            Err(err) => return Err(Error::twilio("update the sender")(err)),
        }
        self.ctx
            .memory
            .sent_update(&self.key, &self.uid, generation, &drift.fields);
        view.written(&sender.sid, self.ctx.settings.pacing.resync_interval);
        self.note(Note::normal(
            event::UPDATED,
            format!("updated {fields} at Twilio"),
        ))
        .await;
        Ok(Outcome::new(
            Assessment::progressing(
                reason::UPDATING,
                format!("sent {fields} to Twilio; waiting for Twilio to apply them"),
            ),
            Action::requeue(self.ctx.settings.pacing.poll_interval),
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Verification

    async fn verify(
        &mut self,
        client: &SendersClient,
        view: &AccountView,
        sender: &Sender,
    ) -> Result<Outcome> {
        let handled = self
            .status
            .verification
            .as_ref()
            .and_then(|v| v.resend_code_request.clone());
        if let Some(value) = otp::resend_request(self.obj.annotations(), handled.as_deref()) {
            let value = value.to_string();
            return self.request_new_code(client, &value).await;
        }

        let source = CodeSource::from_spec(self.spec().verification.as_ref());
        let (version, fetched) = match &source {
            Some(source) => self.code_secret_version(&source.secret_name).await?,
            None => (None, None),
        };
        let submitted = self
            .status
            .verification
            .as_ref()
            .and_then(|v| v.submitted_code.clone());
        match otp::code_step(source, version.as_deref(), submitted.as_ref()) {
            CodeStep::NoSecretConfigured => Ok(Outcome::new(
                Assessment::progressing(
                    reason::WAITING_FOR_CODE,
                    format!(
                        "Twilio sent a one-time code to {} by {}; set \
                         spec.verification.codeSecretRef to a Secret and put the code there",
                        self.phone(),
                        self.method()
                    ),
                ),
                self.resync(),
            )),
            CodeStep::WaitForSecret(source) => Ok(Outcome::new(
                Assessment::progressing(reason::WAITING_FOR_CODE, self.waiting_for(&source)),
                self.resync(),
            )),
            CodeStep::AwaitVerdict => {
                // Twilio answers a submission with VERIFYING; reading PENDING_VERIFICATION
                // after it means the code was refused.
                if let Some(done) = self
                    .status
                    .verification
                    .as_mut()
                    .and_then(|v| v.submitted_code.as_mut())
                {
                    done.rejected = true;
                }
                let message = self.rejected_message();
                self.note(Note::warning(event::CODE_REJECTED, message.clone()))
                    .await;
                Ok(Outcome::new(
                    Assessment::stalled(reason::CODE_REJECTED, message),
                    self.resync(),
                ))
            }
            CodeStep::Rejected(_) => Ok(Outcome::new(
                Assessment::stalled(reason::CODE_REJECTED, self.rejected_message()),
                self.resync(),
            )),
            CodeStep::Submit {
                source,
                resource_version,
                retry,
            } => {
                let submission = Submission {
                    source,
                    resource_version,
                    retry,
                    fetched,
                };
                self.submit_code(client, view, sender, submission).await
            }
        }
    }

    fn method(&self) -> &'static str {
        self.spec()
            .verification
            .as_ref()
            .map(|v| v.method.as_str())
            .unwrap_or("sms")
    }

    fn waiting_for(&self, source: &CodeSource) -> String {
        format!(
            "waiting for the one-time code sent to {} by {}: create Secret {} with the code under \
             key {:?} (kubectl create secret generic {} -n {} --from-literal={}=CODE)",
            self.phone(),
            self.method(),
            source.secret_name,
            source.key,
            source.secret_name,
            self.namespace(),
            source.key,
        )
    }

    fn rejected_message(&self) -> String {
        let (secret, key) = self
            .status
            .verification
            .as_ref()
            .and_then(|v| v.submitted_code.as_ref())
            .map(|s| (s.secret_name.clone(), s.key.clone()))
            .unwrap_or_default();
        format!(
            "Twilio did not accept the code from Secret {secret} key {key:?} (wrong, expired or \
             not received): put the right code in the Secret, or set the annotation \
             {}=<any new value> to have a new code sent",
            otp::RESEND_CODE_ANNOTATION
        )
    }

    /// The code Secret's `resourceVersion` from the metadata cache or, when the cache does not
    /// have it (yet), from the API server; then the Secret read is returned too, so that a
    /// submission does not read it again.
    async fn code_secret_version(&self, name: &str) -> Result<(Option<String>, Option<Secret>)> {
        let namespace = self.namespace();
        if let Some(version) = self.ctx.secret_version(&namespace, name) {
            return Ok((Some(version), None));
        }
        let secret = self.ctx.secret(&namespace, name).await?;
        let version = secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone());
        Ok((version, secret))
    }

    async fn request_new_code(&mut self, client: &SendersClient, value: &str) -> Result<Outcome> {
        // Asking again while Twilio's lockout runs only prolongs it.
        if let Some(left) = self.ctx.memory.codes_lockout_left(&self.key, &self.uid) {
            let message = format!(
                "Twilio refused to send more codes (63114); the request in annotation {} is \
                 retried in {}",
                otp::RESEND_CODE_ANNOTATION,
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            );
            return Ok(Outcome::new(
                Assessment::stalled(reason::TOO_MANY_CODES, message),
                Action::requeue(left),
            ));
        }
        // Registering a number that waits for its code again is how Twilio sends a new one.
        match client.create(&diff::create_request(self.spec())).await {
            Ok(_) => {}
            Err(err) if err.class() == ErrorClass::NeedsUser => {
                if err.twilio_code() == Some(63114) {
                    self.ctx
                        .memory
                        .codes_locked(&self.key, &self.uid, TOO_MANY_CODES_RETRY);
                }
                return Ok(self.twilio_stalled("request a new code", &err));
            }
            Err(err) => return Err(Error::twilio("request a new code")(err)),
        }
        self.status
            .verification
            .get_or_insert_default()
            .resend_code_request = Some(value.to_string());
        self.save().await?;
        let message = match CodeSource::from_spec(self.spec().verification.as_ref()) {
            Some(source) => format!(
                "asked Twilio for a new code for {} by {}: put it in Secret {} key {:?}",
                self.phone(),
                self.method(),
                source.secret_name,
                source.key
            ),
            None => format!("asked Twilio for a new code for {}", self.phone()),
        };
        self.note(Note::normal(event::CODE_REQUESTED, message.clone()))
            .await;
        Ok(Outcome::new(
            Assessment::progressing(reason::PENDING_VERIFICATION, message),
            self.resync(),
        ))
    }

    async fn submit_code(
        &mut self,
        client: &SendersClient,
        view: &AccountView,
        sender: &Sender,
        submission: Submission,
    ) -> Result<Outcome> {
        let Submission {
            source,
            resource_version,
            retry,
            fetched,
        } = submission;
        let secret = match fetched {
            Some(secret) => Some(secret),
            None => {
                self.ctx
                    .secret(&self.namespace(), &source.secret_name)
                    .await?
            }
        };
        let Some(secret) = secret else {
            return Ok(Outcome::new(
                Assessment::progressing(reason::WAITING_FOR_CODE, self.waiting_for(&source)),
                self.resync(),
            ));
        };
        let version = secret
            .metadata
            .resource_version
            .clone()
            .unwrap_or(resource_version);
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let code = match otp::read_code(&source, &data) {
            Ok(code) => code,
            Err(problem @ otp::CodeProblem::MissingKey { .. }) => {
                return Ok(Outcome::new(
                    Assessment::progressing(reason::WAITING_FOR_CODE, problem.to_string()),
                    self.resync(),
                ));
            }
            Err(problem) => {
                return Ok(Outcome::new(
                    Assessment::stalled(reason::INVALID_CODE, problem.to_string()),
                    self.resync(),
                ));
            }
        };
        drop(data);

        if retry {
            tracing::info!(
                "submitting the code again: the last submission of this Secret version may not \
                 have reached Twilio"
            );
        }
        let result = client
            .update(&sender.sid, &UpdateSenderRequest::verification_code(code))
            .await;
        let record = |rejected: bool, uncertain: bool| SubmittedCode {
            secret_name: source.secret_name.clone(),
            key: source.key.clone(),
            resource_version: version.clone(),
            submitted_at: Time(Timestamp::now()),
            rejected,
            uncertain,
        };
        if let Err(err) = &result
            && err.certainly_not_processed()
        {
            return Err(Error::twilio("submit the code")(result.unwrap_err()));
        }
        // Recorded whatever came back: refused and accepted versions are never sent again. One
        // of unknown fate (a timeout, a 500) is sent again, with error backoff, for as long as
        // Twilio still waits for a code: only an accepted submission followed by
        // PENDING_VERIFICATION means the code was wrong. (Declaring a rejection after two
        // failed submissions stalled senders whose code never reached Twilio.)
        let refused = result
            .as_ref()
            .is_err_and(|err| err.class() == ErrorClass::NeedsUser);
        let uncertain = result.is_err() && !refused;
        self.status
            .verification
            .get_or_insert_default()
            .submitted_code = Some(record(refused, uncertain));
        if !refused {
            view.written(&sender.sid, self.ctx.settings.pacing.resync_interval);
        }
        self.save().await?;
        match result {
            Ok(_) => {}
            Err(err) if refused => return Ok(self.twilio_stalled("submit the code", &err)),
            Err(err) => return Err(Error::twilio("submit the code")(err)),
        }
        self.note(Note::normal(
            event::CODE_SUBMITTED,
            format!(
                "submitted the one-time code from Secret {} key {:?} (resourceVersion {version})",
                source.secret_name, source.key
            ),
        ))
        .await;
        Ok(Outcome::new(
            Assessment::progressing(
                reason::CODE_SUBMITTED,
                "submitted the one-time code; waiting for Twilio to verify it",
            ),
            Action::requeue(self.ctx.settings.pacing.poll_interval),
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Cleanup

    async fn cleanup(mut self) -> Result<Action> {
        match self.cleanup_steps().await {
            Ok(action) => Ok(action),
            Err(err) => {
                let (reason, message) = err.condition();
                let mut assessment = Assessment::deletion_blocked(message.clone());
                if stalls_deletion(reason) {
                    assessment.stalled = Some(conditions::Verdict::new(
                        conditions::Status::True,
                        reason,
                        message,
                    ));
                }
                if let Err(write) = self.conclude(&assessment).await {
                    tracing::warn!(error = %write, "could not record the failure in status");
                }
                Err(err)
            }
        }
    }

    async fn cleanup_steps(&mut self) -> Result<Action> {
        let sid = self.status.sid.clone();
        let account = self.status.account_sid.clone();
        if let Some(account) = &account {
            self.release_turn(account);
        }
        if self.spec().deletion_policy == DeletionPolicy::Orphan {
            if let Some(sid) = &sid {
                self.note(Note::normal(
                    event::ORPHANED,
                    format!("left Twilio sender {sid} registered (deletionPolicy: Orphan)"),
                ))
                .await;
                if let Some(account) = &account {
                    self.ctx.views.account(account).forget(sid);
                }
            }
            self.ctx.memory.forget(&self.key);
            return Ok(Action::await_change());
        }
        if sid.is_none() && account.is_none() {
            // Never got as far as Twilio.
            self.ctx.memory.forget(&self.key);
            return Ok(Action::await_change());
        }
        let orphan_hint = "or set spec.deletionPolicy to Orphan to leave the sender registered \
                           at Twilio and let this object go";
        if self.spec().suspend {
            return Err(Error::DeletionBlocked {
                reason: reason::SUSPENDED,
                message: format!(
                    "the sender is suspended, so the operator does not call Twilio to delete it: \
                     set spec.suspend to false, {orphan_hint}"
                ),
            });
        }
        let client = match self.twilio_client().await? {
            Ok(client) => client,
            Err(problem) => match self.remembered_client(&problem) {
                Some(client) => client,
                None => return Err(self.no_credentials_to_delete(sid.as_deref(), &problem)),
            },
        };
        if let Some(recorded) = &account
            && recorded != client.account_sid()
        {
            return Err(Error::DeletionBlocked {
                reason: reason::ACCOUNT_CHANGED,
                message: format!(
                    "{}; {orphan_hint}",
                    self.account_changed(recorded, client.account_sid())
                ),
            });
        }
        let view = self.ctx.views.account(client.account_sid());
        let sid = match sid {
            Some(sid) => sid,
            // The operator may have died between a create and the SID write.
            None => match view
                .lookup(&client, self.phone(), true, self.first_seen())
                .await
                .map_err(Error::twilio("look up the number"))?
                .sender
            {
                Some(sender) => sender.sid,
                None => {
                    self.ctx.memory.forget(&self.key);
                    return Ok(Action::await_change());
                }
            },
        };
        match client.delete(&sid).await {
            Ok(()) => {}
            Err(err) if err.is_not_found() => {}
            Err(err) if err.class() == ErrorClass::NeedsUser => {
                return Err(Error::DeletionBlocked {
                    reason: stalled_reason(err.twilio_code(), err.http_status()),
                    message: format!(
                        "{}; {orphan_hint}",
                        twilio_message("delete the sender", &err)
                    ),
                });
            }
            Err(err) => return Err(Error::twilio("delete the sender")(err)),
        }
        // Keep the finalizer until Twilio no longer has the sender.
        match client.fetch(&sid).await {
            Err(err) if err.is_not_found() => {}
            Ok(still) => {
                return Err(Error::DeletionBlocked {
                    reason: reason::DELETING,
                    message: format!(
                        "Twilio still has sender {sid} ({}) after the delete; checking again",
                        still.status
                    ),
                });
            }
            Err(err) => return Err(Error::twilio("confirm the deletion")(err)),
        }
        view.forget(&sid);
        view.number_changed(self.phone());
        self.note(Note::normal(
            event::DELETED,
            format!("deleted Twilio sender {sid} for {}", self.phone()),
        ))
        .await;
        self.ctx.memory.forget(&self.key);
        Ok(Action::await_change())
    }
}

impl Reconcile<'_> {
    /// The client last built from the credentials Secret, when the Secret is gone: in a
    /// namespace deletion Secrets disappear at once while senders wait on the finalizer, and a
    /// Terminating namespace accepts no new Secret. Used for deleting only; a Secret that exists
    /// but no longer works is followed, not second-guessed.
    fn remembered_client(&self, problem: &CredentialsProblem) -> Option<SendersClient> {
        if !matches!(problem, CredentialsProblem::SecretNotFound(_)) {
            return None;
        }
        let secret = &self.spec().credentials_ref.name;
        let client = self.ctx.clients.last_seen(&self.namespace(), secret)?;
        tracing::info!(
            secret,
            account = client.account_sid(),
            "the credentials Secret is gone; deleting with the credentials last read from it"
        );
        Some(client)
    }

    fn no_credentials_to_delete(&self, sid: Option<&str>, problem: &CredentialsProblem) -> Error {
        let sid = sid.unwrap_or("(SID not recorded)");
        let (reason, fix) = if problem.is_not_found() {
            (
                reason::CREDENTIALS_NOT_FOUND,
                format!(
                    "the operator has no earlier copy of them (it restarted since it last read \
                     them); restore the Secret, or, if it cannot be restored (a namespace being \
                     deleted accepts no new Secret), set spec.deletionPolicy to Orphan to let \
                     this object go and delete sender {sid} at Twilio yourself"
                ),
            )
        } else {
            (
                reason::INVALID_CREDENTIALS,
                "fix the Secret, or set spec.deletionPolicy to Orphan to leave the sender \
                 registered at Twilio and let this object go"
                    .to_string(),
            )
        };
        Error::DeletionBlocked {
            reason,
            message: format!("cannot delete the Twilio sender {sid}: {problem}; {fix}"),
        }
    }
}

/// Deletion problems that only the user can clear (as opposed to Twilio being slow).
fn stalls_deletion(reason: &str) -> bool {
    ![
        reason::DELETING,
        reason::TWILIO_UNAVAILABLE,
        reason::KUBERNETES_ERROR,
    ]
    .contains(&reason)
}

/// The reason and message of `Ready=False` while Twilio works.
fn progress_of(status: &SenderStatus) -> (&'static str, String) {
    match status {
        SenderStatus::Creating => (
            reason::CREATING,
            "Twilio is registering the number with WhatsApp".into(),
        ),
        SenderStatus::Verifying => (
            reason::VERIFYING,
            "Twilio is verifying the one-time code".into(),
        ),
        SenderStatus::OnlineUpdating => (
            reason::UPDATING,
            "Twilio is applying a profile or webhook change".into(),
        ),
        SenderStatus::TwilioReview => (reason::IN_REVIEW, "Twilio is reviewing the sender".into()),
        SenderStatus::Offline => (
            reason::OFFLINE,
            "Twilio reports the sender OFFLINE without a reason for you to act on; new senders \
             may read OFFLINE for a few minutes"
                .into(),
        ),
        other => (
            reason::NOT_ONLINE,
            format!("Twilio reports the sender {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_reasons_that_need_the_user() {
        assert_eq!(needs_user(Some("63110")), Some(63110));
        assert_eq!(needs_user(Some(" 63116 ")), Some(63116));
        assert_eq!(needs_user(Some("30008")), None);
        assert_eq!(needs_user(Some("junk")), None);
        assert_eq!(needs_user(None), None);
    }
}
