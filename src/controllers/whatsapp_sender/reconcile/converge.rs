//! Converge: bring Twilio in line with the spec once the sender is known. [`decide`] (pure)
//! reads the spec, what Twilio reports and the sender's record, and returns the step: stall
//! on what only the user can fix, hand over to [`super::verify`] while Twilio waits for the
//! code, send the fields that differ, or report progress and poll. The executor sends updates.

use super::run::{Outcome, Requeue, Run};
use super::shared::{Phase, twilio};
use crate::api::{WhatsAppSenderSpec, reason};
use crate::controllers::whatsapp_sender::conditions::{SenderAssessment, stall_reason};
use crate::controllers::whatsapp_sender::diff::{self, Drift};
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::state::{NameRejected, SenderFacts, UpdateGuard, Written};
use crate::runtime::conditions::Assessment;
use crate::runtime::events::Note;
use crate::twilio::{Sender, SenderStatus, TwilioClient, TwilioError, codes};
use tokio::time::Instant;

/// The same update sent this many times for one generation without Twilio keeping it stops
/// being sent: something (Twilio normalising a value, say) would otherwise loop forever.
pub const MAX_UPDATE_REPEATS: u32 = 3;

/// What to do with a sender Twilio has.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing to send: set these conditions.
    Conclude(Outcome),
    /// Twilio holds what the spec asks (as far as an API can change it): sent updates are
    /// forgotten.
    Converged(Outcome),
    /// Twilio waits for the one-time code.
    Verify,
    /// Send the fields that differ.
    Update(Box<Drift>),
}

pub fn decide(
    spec: &WhatsAppSenderSpec,
    sender: &Sender,
    facts: &SenderFacts,
    generation: i64,
) -> Step {
    let drift = diff::drift(spec, sender);
    if let Some(step) = needs_user(spec, sender, &drift) {
        return step;
    }
    match &sender.status {
        SenderStatus::PendingVerification => Step::Verify,
        SenderStatus::Draft => stall(
            reason::DRAFT,
            "Twilio reports the sender DRAFT: a registration that was not submitted, which \
             Twilio's API cannot submit; finish it in the Twilio Console, or delete it there and \
             the operator registers the number again"
                .into(),
        ),
        SenderStatus::Stubbed => stall(
            reason::STUBBED,
            "Twilio reports the sender STUBBED: a placeholder, not a registration with \
             WhatsApp, which Twilio's API cannot complete; ask Twilio about it, or delete it at \
             Twilio and the operator registers the number again"
                .into(),
        ),
        SenderStatus::Online => online(spec, sender, facts, generation, drift),
        other => {
            let (reason, message) = progress_of(other);
            Step::Conclude(Outcome::new(
                Assessment::progressing(reason, message),
                Requeue::Poll(other.clone()),
            ))
        }
    }
}

/// What only the user can fix whatever Twilio's status: a WABA that differs from the spec's,
/// or an offline reason whose code needs the user.
fn needs_user(spec: &WhatsAppSenderSpec, sender: &Sender, drift: &Drift) -> Option<Step> {
    if let Some(actual) = &drift.waba_id {
        let message = format!(
            "Twilio registered the sender in WABA {actual}, but the spec asks for {}: a number \
             cannot move between WABAs; delete and recreate the WhatsAppSender (and the \
             number's registration) to change it",
            spec.waba_id.as_deref().unwrap_or_default()
        );
        return Some(stall(reason::WABA_MISMATCH, message));
    }
    let (code, offline) = sender.offline_reasons.iter().find_map(|r| {
        codes::parse(r.code.as_deref()?)
            .filter(|c| c.needs_user())
            .map(|c| (c, r))
    })?;
    let advice = TwilioError::Api {
        http_status: 400,
        code: Some(code.number),
        message: offline.message.clone().unwrap_or_default(),
        more_info: offline.more_info.clone(),
        retry_after: None,
    }
    .advice();
    let message = format!(
        "Twilio reports the sender {} (offline reason {}): {advice}",
        sender.status, code.number
    );
    Some(stall(stall_reason(code.problem), message))
}

/// An ONLINE sender: send the fields that differ (unless Twilio did not keep them
/// [`MAX_UPDATE_REPEATS`] times), or converged, with a display name no API can change.
fn online(
    spec: &WhatsAppSenderSpec,
    sender: &Sender,
    facts: &SenderFacts,
    generation: i64,
    drift: Drift,
) -> Step {
    if !drift.update.is_empty() {
        let repeats = facts.update_repeats(generation, &drift.fields);
        if repeats >= MAX_UPDATE_REPEATS {
            let message = format!(
                "Twilio does not keep {} as the spec sets them (sent {repeats} times); check \
                 the values (Twilio may normalise them) and edit the spec to match",
                drift.fields.join(", ")
            );
            return stall(reason::TWILIO_REJECTED, message);
        }
        return Step::Update(Box::new(drift));
    }
    if let Some(name) = &drift.display_name {
        let message = format!(
            "Twilio shows the display name {name:?} but the spec asks for {:?}: no API \
             can change a display name (Meta reviews it); change it in WhatsApp \
             Manager, or delete and recreate the sender",
            spec.profile.name
        );
        return Step::Converged(Outcome::new(
            Assessment::stalled(reason::DISPLAY_NAME_MISMATCH, message),
            Requeue::Resync,
        ));
    }
    Step::Converged(Outcome::new(
        Assessment::online(format!("ONLINE at Twilio as {}", sender.sid)),
        Requeue::Poll(SenderStatus::Online),
    ))
}

fn stall(reason: &'static str, message: String) -> Step {
    Step::Conclude(Outcome::new(
        Assessment::stalled(reason, message),
        Requeue::Resync,
    ))
}

/// The reason and message of `Ready=False` while Twilio works.
pub fn progress_of(status: &SenderStatus) -> (&'static str, String) {
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

/// What Twilio said when Meta refused the sender's display name, if an offline reason says
/// so (63100 about the name).
pub fn refused_name(sender: &Sender) -> Option<String> {
    sender.offline_reasons.iter().find_map(|r| {
        let code = r.code.as_deref()?.trim().parse().ok()?;
        let text = r.message.as_deref().unwrap_or_default();
        codes::refuses_display_name(code, text).then(|| text.to_string())
    })
}

/// Runs the converge step for a sender Twilio has.
pub async fn run(run: &mut Run<'_>, client: &TwilioClient, sender: &Sender) -> Phase<Outcome> {
    if let Some(message) = refused_name(sender) {
        run.conclusion.name_rejected = Some(NameRejected {
            account: client.scope().to_string(),
            name: run.spec().profile.name.clone(),
            message,
        });
    }
    match decide(run.spec(), sender, &run.facts, run.generation()) {
        Step::Conclude(outcome) => Ok(outcome),
        Step::Converged(outcome) => {
            run.conclusion.updates = Some(None);
            Ok(outcome)
        }
        Step::Verify => super::verify::run(run, client, sender).await,
        Step::Update(drift) => send_update(run, client, sender, &drift).await,
    }
}

async fn send_update(
    run: &mut Run<'_>,
    client: &TwilioClient,
    sender: &Sender,
    drift: &Drift,
) -> Phase<Outcome> {
    client
        .update(&sender.sid, &drift.update)
        .await
        .map_err(twilio("update the sender"))?;
    let generation = run.generation();
    run.conclusion.updates = Some(Some(UpdateGuard::after(
        &run.facts,
        generation,
        &drift.fields,
    )));
    run.conclusion.written = Some(Written {
        account: client.scope().to_string(),
        sid: sender.sid.clone(),
        at: Instant::now(),
    });
    let fields = drift.fields.join(", ");
    run.note(Note::normal(
        event::UPDATED,
        format!("updated {fields} at Twilio"),
    ))
    .await;
    Ok(Outcome::new(
        Assessment::progressing(
            reason::UPDATING,
            format!("sent {fields} to Twilio; waiting for Twilio to apply them"),
        ),
        Requeue::After(run.ctx.settings.pacing.poll_interval),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::condition_type::{READY, STALLED};
    use crate::runtime::conditions::Status;

    const SID: &str = "XE0123456789abcdef0123456789abcdef";

    fn spec(extra: serde_json::Value) -> WhatsAppSenderSpec {
        let mut spec = json!({
            "phoneNumber": "+15017122661",
            "credentialsRef": {"name": "twilio"},
            "profile": {"name": "Acme", "about": "Hello"},
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::from_value(spec).unwrap()
    }

    fn sender(status: &str, extra: serde_json::Value) -> Sender {
        let mut sender = json!({
            "sid": SID,
            "status": status,
            "sender_id": "whatsapp:+15017122661",
            "profile": {"name": "Acme", "about": "Hello"},
        });
        for (k, v) in extra.as_object().unwrap() {
            sender[k] = v.clone();
        }
        serde_json::from_value(sender).unwrap()
    }

    fn facts() -> SenderFacts {
        SenderFacts::new(Instant::now())
    }

    /// Ready's reason and whether it stalls, of a step that concludes.
    fn concluded(step: &Step) -> (&'static str, bool, String) {
        match step {
            Step::Conclude(outcome) | Step::Converged(outcome) => {
                let ready = outcome.assessment.get(READY).unwrap();
                let stalled = outcome
                    .assessment
                    .get(STALLED)
                    .is_some_and(|v| v.status == Status::True);
                (ready.reason, stalled, ready.message.clone())
            }
            other => panic!("expected a conclusion, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn each_twilio_status_and_problem_has_its_step() {
        let cases: Vec<(WhatsAppSenderSpec, Sender, &str, bool, &str)> = vec![
            (
                spec(json!({})),
                sender("ONLINE", json!({})),
                reason::ONLINE,
                false,
                "ONLINE at Twilio as XE",
            ),
            (
                spec(json!({})),
                sender("CREATING", json!({})),
                reason::CREATING,
                false,
                "registering",
            ),
            (
                spec(json!({})),
                sender("VERIFYING", json!({})),
                reason::VERIFYING,
                false,
                "verifying",
            ),
            (
                spec(json!({})),
                sender("ONLINE:UPDATING", json!({})),
                reason::UPDATING,
                false,
                "applying",
            ),
            (
                spec(json!({})),
                sender("TWILIO_REVIEW", json!({})),
                reason::IN_REVIEW,
                false,
                "reviewing",
            ),
            (
                spec(json!({})),
                sender("OFFLINE", json!({})),
                reason::OFFLINE,
                false,
                "without a reason",
            ),
            (
                spec(json!({})),
                sender("DRAFT", json!({})),
                reason::DRAFT,
                true,
                "finish it in the Twilio Console",
            ),
            (
                spec(json!({})),
                sender("STUBBED", json!({})),
                reason::STUBBED,
                true,
                "a placeholder",
            ),
            (
                spec(json!({})),
                sender("SOMETHING_NEW", json!({})),
                reason::NOT_ONLINE,
                false,
                "SOMETHING_NEW",
            ),
            (
                spec(json!({})),
                sender("OFFLINE", json!({"offline_reasons": [{"code": "63020"}]})),
                reason::INVITATION_NOT_ACCEPTED,
                true,
                "accept it there",
            ),
            (
                spec(json!({"wabaId": "111"})),
                sender("ONLINE", json!({"configuration": {"waba_id": "222"}})),
                reason::WABA_MISMATCH,
                true,
                "registered the sender in WABA 222, but the spec asks for 111",
            ),
            (
                spec(json!({})),
                sender(
                    "OFFLINE",
                    json!({"offline_reasons": [{"code": "63110", "message": "taken"}]}),
                ),
                reason::ALREADY_REGISTERED,
                true,
                "(offline reason 63110): The number is already registered on WhatsApp",
            ),
            (
                spec(json!({})),
                sender("OFFLINE", json!({"offline_reasons": [{"code": "63116"}]})),
                reason::CODE_NOT_RECEIVED,
                true,
                "switch verification.method to voice",
            ),
            (
                spec(json!({})),
                sender(
                    "ONLINE",
                    json!({"profile": {"name": "Acme Corp", "about": "Hello"}}),
                ),
                reason::DISPLAY_NAME_MISMATCH,
                true,
                "no API can change a display name",
            ),
        ];
        for (spec, sender, reason, stalls, text) in cases {
            let step = decide(&spec, &sender, &facts(), 1);
            let (got, stalled, message) = concluded(&step);
            assert_eq!(
                (got, stalled),
                (reason, stalls),
                "{}: {message}",
                sender.status
            );
            assert!(message.contains(text), "{message:?} lacks {text:?}");
        }
    }

    #[test]
    fn an_offline_reason_about_the_display_name_refuses_the_name() {
        let refused = sender(
            "OFFLINE",
            json!({"offline_reasons": [{"code": "63100", "message": "The display name was rejected"}]}),
        );
        assert_eq!(
            refused_name(&refused).as_deref(),
            Some("The display name was rejected")
        );
        let other = sender(
            "OFFLINE",
            json!({"offline_reasons": [{"code": "63100", "message": "profile.about is too long"}]}),
        );
        assert_eq!(refused_name(&other), None);
        let (reason_, stalls, _) = concluded(&decide(&spec(json!({})), &refused, &facts(), 1));
        assert_eq!((reason_, stalls), (reason::INVALID_SPEC, true));
    }

    #[test]
    fn a_pending_sender_goes_to_verification() {
        let step = decide(
            &spec(json!({})),
            &sender("PENDING_VERIFICATION", json!({})),
            &facts(),
            1,
        );
        assert_eq!(step, Step::Verify);
    }

    #[test]
    fn a_difference_is_sent_until_twilio_refuses_to_keep_it() {
        let spec = spec(json!({"profile": {"name": "Acme", "about": "New"}}));
        let online = sender("ONLINE", json!({}));
        let mut facts = facts();
        for _ in 0..MAX_UPDATE_REPEATS {
            match decide(&spec, &online, &facts, 4) {
                Step::Update(drift) => {
                    assert_eq!(drift.fields, ["profile.about"]);
                    facts.updates = Some(UpdateGuard::after(&facts, 4, &drift.fields));
                }
                other => panic!("expected an update, got {other:?}"),
            }
        }
        let (got, stalled, message) = concluded(&decide(&spec, &online, &facts, 4));
        assert_eq!((got, stalled), (reason::TWILIO_REJECTED, true));
        assert!(
            message.contains("Twilio does not keep profile.about"),
            "{message}"
        );
        assert!(
            matches!(decide(&spec, &online, &facts, 5), Step::Update(_)),
            "a new generation is sent again"
        );
    }

    #[test]
    fn an_online_sender_is_polled_at_the_resync() {
        match decide(&spec(json!({})), &sender("ONLINE", json!({})), &facts(), 1) {
            Step::Converged(outcome) => {
                assert_eq!(outcome.requeue, Requeue::Poll(SenderStatus::Online))
            }
            other => panic!("{other:?}"),
        }
    }
}
