//! Mirror: what Twilio reports goes into status (status word, quality rating, messaging limit,
//! offline reasons), with an Event for each transition. [`mirror`] decides (pure); [`run`]
//! applies it and publishes the Events.

use super::run::Run;
use crate::api::{OfflineReason, WhatsAppSenderStatus};
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::pacing;
use crate::controllers::whatsapp_sender::state::Seen;
use crate::runtime::events::Note;
use crate::twilio::{Sender, SenderStatus};

/// Copies `sender` into `status` and returns the Events its transitions call for.
pub fn mirror(status: &mut WhatsAppSenderStatus, sender: &Sender) -> Vec<Note> {
    let before = status.clone();
    copy(status, sender);
    let mut notes = Vec::new();
    if before.twilio_status != status.twilio_status {
        notes.extend(status_changed(
            before.twilio_status.as_deref(),
            status,
            sender,
        ));
    }
    notes.extend(properties_changed(&before, status));
    notes
}

/// What Twilio reports, into status.
fn copy(status: &mut WhatsAppSenderStatus, sender: &Sender) {
    status.sid = Some(sender.sid.clone());
    if !sender.sender_id.is_empty() {
        status.sender_id = Some(sender.sender_id.clone());
    }
    let word = sender.status.as_str();
    status.twilio_status = (!word.is_empty()).then(|| word.to_string());
    let properties = sender.properties.clone().unwrap_or_default();
    status.quality_rating = properties.quality_rating.filter(|q| !q.is_empty());
    status.messaging_limit = properties.messaging_limit.filter(|l| !l.is_empty());
    status.offline_reasons = sender
        .offline_reasons
        .iter()
        .map(|r| OfflineReason {
            code: r.code.clone(),
            message: r.message.clone(),
            more_info: r.more_info.clone(),
        })
        .collect();
}

/// The Event of a sender whose Twilio status changed from `was`: it came ONLINE (not back from
/// ONLINE:UPDATING), or went OFFLINE, with the reasons.
fn status_changed(
    was: Option<&str>,
    status: &WhatsAppSenderStatus,
    sender: &Sender,
) -> Option<Note> {
    match sender.status {
        SenderStatus::Online if was != Some("ONLINE:UPDATING") => Some(Note::normal(
            event::ONLINE,
            format!(
                "sender {} is ONLINE (quality rating {}, messaging limit {})",
                sender.sid,
                status.quality_rating.as_deref().unwrap_or("not yet rated"),
                status.messaging_limit.as_deref().unwrap_or("unknown"),
            ),
        )),
        SenderStatus::Offline => {
            let reasons: Vec<String> = status
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
            Some(Note::warning(
                event::OFFLINE,
                format!("sender {} is OFFLINE ({why})", sender.sid),
            ))
        }
        _ => None,
    }
}

/// The Events of a quality rating or messaging limit that changed (a rating lowered to LOW is
/// a Warning).
fn properties_changed(before: &WhatsAppSenderStatus, status: &WhatsAppSenderStatus) -> Vec<Note> {
    let mut notes = Vec::new();
    for (reason, what, old, new) in [
        (
            event::QUALITY_RATING_CHANGED,
            "quality rating",
            &before.quality_rating,
            &status.quality_rating,
        ),
        (
            event::MESSAGING_LIMIT_CHANGED,
            "messaging limit",
            &before.messaging_limit,
            &status.messaging_limit,
        ),
    ] {
        if let (Some(old), Some(new)) = (old, new)
            && old != new
        {
            let note = format!("{what} changed from {old} to {new}");
            let lowered = reason == event::QUALITY_RATING_CHANGED && new == "LOW";
            notes.push(if lowered {
                Note::warning(reason, note)
            } else {
                Note::normal(reason, note)
            });
        }
    }
    notes
}

/// Mirrors `sender` into the run's status, publishes the Events, and tells the account's
/// records whether the sender is settled and whether it still holds an onboarding turn.
pub async fn run(run: &mut Run<'_>, scope: &str, sender: &Sender) {
    let was = run.status.twilio_status.clone();
    let notes = mirror(&mut run.status, sender);
    if was != run.status.twilio_status {
        tracing::info!(
            from = was.as_deref().unwrap_or("-"),
            to = run.status.twilio_status.as_deref().unwrap_or("-"),
            "Twilio status changed"
        );
    }
    for note in notes {
        run.note(note).await;
    }
    run.conclusion.seen = Some(Seen {
        account: scope.to_string(),
        sid: sender.sid.clone(),
        settled: !pacing::in_motion(&sender.status),
        onboarding: pacing::onboarding(&sender.status),
        online_name: (sender.status == SenderStatus::Online)
            .then(|| sender.profile.as_ref()?.name.clone())
            .flatten()
            .filter(|name| !name.trim().is_empty()),
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sender(value: serde_json::Value) -> Sender {
        serde_json::from_value(value).unwrap()
    }

    fn mirrored(
        before: &WhatsAppSenderStatus,
        value: serde_json::Value,
    ) -> (WhatsAppSenderStatus, Vec<Note>) {
        let mut status = before.clone();
        let notes = mirror(&mut status, &sender(value));
        (status, notes)
    }

    const SID: &str = "XE0123456789abcdef0123456789abcdef";

    /// An Event expected: reason, whether a warning, and a part of its message.
    type Expected = (&'static str, bool, &'static str);

    #[test]
    fn each_transition_has_its_event() {
        let creating = WhatsAppSenderStatus {
            twilio_status: Some("CREATING".into()),
            ..Default::default()
        };
        let cases: &[(&WhatsAppSenderStatus, serde_json::Value, &[Expected])] = &[
            (
                &creating,
                json!({"sid": SID, "status": "ONLINE", "sender_id": "whatsapp:+15017122661",
                       "properties": {"quality_rating": "HIGH", "messaging_limit": "1K Customers/24hr"}}),
                &[(
                    event::ONLINE,
                    false,
                    "ONLINE (quality rating HIGH, messaging limit 1K Customers/24hr)",
                )],
            ),
            (
                &creating,
                json!({"sid": SID, "status": "OFFLINE",
                       "offline_reasons": [{"code": "63110", "message": "taken"}]}),
                &[(event::OFFLINE, true, "OFFLINE (63110: taken)")],
            ),
            (
                &creating,
                json!({"sid": SID, "status": "OFFLINE"}),
                &[(event::OFFLINE, true, "no reason given")],
            ),
            (
                &WhatsAppSenderStatus {
                    twilio_status: Some("ONLINE:UPDATING".into()),
                    ..Default::default()
                },
                json!({"sid": SID, "status": "ONLINE"}),
                &[],
            ),
            (
                &WhatsAppSenderStatus {
                    twilio_status: Some("ONLINE".into()),
                    quality_rating: Some("HIGH".into()),
                    messaging_limit: Some("1K Customers/24hr".into()),
                    ..Default::default()
                },
                json!({"sid": SID, "status": "ONLINE",
                       "properties": {"quality_rating": "LOW", "messaging_limit": "10K Customers/24hr"}}),
                &[
                    (
                        event::QUALITY_RATING_CHANGED,
                        true,
                        "quality rating changed from HIGH to LOW",
                    ),
                    (
                        event::MESSAGING_LIMIT_CHANGED,
                        false,
                        "from 1K Customers/24hr to 10K Customers/24hr",
                    ),
                ],
            ),
        ];
        for (before, answer, expected) in cases {
            let (_, notes) = mirrored(before, answer.clone());
            assert_eq!(notes.len(), expected.len(), "{answer}: {notes:?}");
            for (note, (reason, warning, text)) in notes.iter().zip(expected.iter()) {
                assert_eq!(
                    (note.reason.as_str(), note.warning),
                    (*reason, *warning),
                    "{note:?}"
                );
                assert!(
                    note.message.contains(text),
                    "{:?} lacks {text:?}",
                    note.message
                );
            }
        }
    }

    #[test]
    fn status_holds_what_twilio_reports_and_nothing_empty() {
        let (status, _) = mirrored(
            &WhatsAppSenderStatus::default(),
            json!({"sid": SID, "status": "ONLINE", "sender_id": "whatsapp:+15017122661",
                   "properties": {"quality_rating": "", "messaging_limit": "1K Customers/24hr"},
                   "offline_reasons": [{"code": "30008", "message": "m", "more_info": "https://x"}]}),
        );
        assert_eq!(status.sid.as_deref(), Some(SID));
        assert_eq!(status.sender_id.as_deref(), Some("whatsapp:+15017122661"));
        assert_eq!(status.twilio_status.as_deref(), Some("ONLINE"));
        assert_eq!(status.quality_rating, None, "an empty rating is no rating");
        assert_eq!(status.messaging_limit.as_deref(), Some("1K Customers/24hr"));
        assert_eq!(status.offline_reasons[0].code.as_deref(), Some("30008"));
    }
}
