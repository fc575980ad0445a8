//! Alerts: what Twilio records only in its Error Log. A sender that is OFFLINE, or has not
//! moved on since the last look (still CREATING, VERIFYING, …), reads its account's log (one
//! shared pass per account and poll); a sender that is ONLINE, or waits for a person's code,
//! reads nothing. New entries become an Event each and the last few go into status; the newest
//! one with a code only the user can fix stalls the sender with that code's advice. A log that
//! cannot be read is skipped, not an error. [`wanted`]
//! and [`decide`] are pure; [`run`] reads the log and publishes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::run::{Outcome, Requeue, Run};
use super::shared::{Phase, stop};
use crate::api::{TwilioAlert, WhatsAppSenderStatus};
use crate::controllers::whatsapp_sender::conditions::stall_reason;
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::state::NameRejected;
use crate::runtime::alert_log::Logged;
use crate::runtime::conditions::Assessment;
use crate::runtime::events::Note;
use crate::twilio::{Sender, SenderStatus, TwilioClient, codes, quote};

/// Entries of the log kept in status.
pub const ALERTS_IN_STATUS: usize = 5;

/// How much of Twilio's text an entry keeps in status.
const TEXT_CHARS: usize = 200;

/// Whether the sender reads its account's log now: it is OFFLINE, or Twilio left it where it
/// was at the last look. ONLINE senders read nothing, nor do senders waiting for a code (a
/// person's turn, which the conditions already say).
pub fn wanted(before: Option<&str>, now: &SenderStatus) -> bool {
    match now {
        SenderStatus::Online | SenderStatus::OnlineUpdating | SenderStatus::PendingVerification => {
            false
        }
        SenderStatus::Offline => true,
        other => before == Some(other.as_str()),
    }
}

/// What the log says for one sender.
#[derive(Debug, Default, PartialEq)]
pub struct Noted {
    /// Entries not seen before: an Event each.
    pub new: Vec<Logged>,
    /// The entries for status, newest first.
    pub kept: Vec<TwilioAlert>,
    /// The stall the newest entry calls for, and, if Meta refused the display name, what
    /// Twilio said.
    pub stall: Option<(Outcome, Option<String>)>,
}

/// `entries` (the log's, newest first) against what status already holds. An entry missing
/// from a full status list but older than its oldest was seen before and dropped off. Entries
/// older than `after` (the last code submission) no longer explain the sender's state.
pub fn decide(
    sid: &str,
    status: &SenderStatus,
    entries: &[Logged],
    in_status: &[TwilioAlert],
    after: Option<Timestamp>,
) -> Noted {
    let oldest_kept = (in_status.len() >= ALERTS_IN_STATUS)
        .then(|| {
            in_status
                .iter()
                .filter_map(|a| a.time.as_ref().map(|t| t.0))
                .min()
        })
        .flatten();
    let new: Vec<Logged> = entries
        .iter()
        .filter(|e| !in_status.iter().any(|a| a.sid == e.sid))
        .filter(|e| match (oldest_kept, e.at) {
            (Some(oldest), Some(at)) => at > oldest,
            _ => true,
        })
        .cloned()
        .collect();
    let mut kept: Vec<TwilioAlert> = new.iter().map(in_status_form).collect();
    kept.extend(in_status.iter().cloned());
    kept.sort_by(|a, b| {
        b.time
            .as_ref()
            .map(|t| t.0)
            .cmp(&a.time.as_ref().map(|t| t.0))
    });
    kept.truncate(ALERTS_IN_STATUS);

    // Neither an ONLINE sender nor one waiting for its code is held by old entries: the latter
    // must reach the code phase, where a new code is submitted or asked for.
    let stall = match status {
        SenderStatus::Online | SenderStatus::OnlineUpdating | SenderStatus::PendingVerification => {
            None
        }
        _ => kept
            .iter()
            .find(|a| after.is_none_or(|after| a.time.as_ref().is_none_or(|t| t.0 > after)))
            .and_then(|newest| stall_for(sid, newest)),
    };
    Noted { new, kept, stall }
}

fn in_status_form(entry: &Logged) -> TwilioAlert {
    TwilioAlert {
        sid: entry.sid.clone(),
        code: entry.code.clone(),
        time: entry.at.map(Time),
        text: entry.text.as_deref().map(|t| shorten(&quote(t))),
        more_info: entry.more_info.clone(),
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(TEXT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A stall for an entry whose code only the user can resolve.
fn stall_for(sid: &str, alert: &TwilioAlert) -> Option<(Outcome, Option<String>)> {
    let number: u32 = alert.code.as_deref()?.trim().parse().ok()?;
    let code = codes::lookup(number).filter(|c| c.needs_user())?;
    let text = alert.text.clone().unwrap_or_default();
    let when = alert
        .time
        .as_ref()
        .map(|t| format!(" at {}", t.0))
        .unwrap_or_default();
    let message = format!(
        "Twilio's Error Log reports error {number} for sender {sid}{when}: {}",
        code.advice(&text, alert.more_info.as_deref())
    );
    let refused_name = codes::refuses_display_name(number, &text).then_some(text);
    Some((
        Outcome::new(
            Assessment::stalled(stall_reason(code.problem), message),
            Requeue::Resync,
        ),
        refused_name,
    ))
}

/// The Event for a new entry.
fn note(sid: &str, entry: &Logged) -> Note {
    let code = entry.code.as_deref().unwrap_or("(no code)");
    let when = entry.at.map(|t| format!(" at {t}")).unwrap_or_default();
    let text = entry
        .text
        .as_deref()
        .map(|t| format!(": {}", shorten(&quote(t))))
        .unwrap_or_default();
    let see = entry
        .more_info
        .as_deref()
        .map(|u| format!(" (see {u})"))
        .unwrap_or_default();
    Note::warning(
        event::TWILIO_ALERT,
        format!("Twilio's Error Log: error {code}{when} for sender {sid}{text}{see}"),
    )
}

/// The last code submission: entries before it no longer explain the sender's state.
fn last_action(status: &WhatsAppSenderStatus) -> Option<Timestamp> {
    status
        .verification
        .as_ref()?
        .submitted_code
        .as_ref()
        .map(|s| s.submitted_at.0)
}

/// Reads the log if the sender's state calls for it, notes new entries, and stops the phases
/// if the newest entry needs the user.
pub async fn run(
    run: &mut Run<'_>,
    client: &TwilioClient,
    sender: &Sender,
    before: Option<&str>,
) -> Phase<()> {
    let entries = if wanted(before, &sender.status) {
        let since = run
            .obj
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or_else(Timestamp::now, |t| t.0);
        let fresh = run.ctx.settings.pacing.poll_interval;
        let log = run.ctx.state.alert_log(client.scope());
        match log.about(client, &sender.sid, since, fresh).await {
            Ok(entries) => entries,
            // The log only adds to what the sender's own resource says: a failed read (or
            // credentials that may not read it, an API key limited to the Senders API) must
            // not hold the sender up. The next poll reads again.
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    "could not read the account's Error Log; going on without it"
                );
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let noted = decide(
        &sender.sid,
        &sender.status,
        &entries,
        &run.status.alerts,
        last_action(&run.status),
    );
    for entry in &noted.new {
        run.ctx
            .shared
            .metrics
            .twilio_alert(entry.code.as_deref().unwrap_or("none"));
        run.note(note(&sender.sid, entry)).await;
    }
    run.status.alerts = noted.kept;
    match noted.stall {
        Some((outcome, refused_name)) => {
            if let Some(message) = refused_name {
                run.conclusion.name_rejected = Some(NameRejected {
                    account: client.scope().to_string(),
                    name: run.spec().profile.name.clone(),
                    message,
                });
            }
            stop(outcome)
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reason;

    const SID: &str = "XE0123456789abcdef0123456789abcdef";

    fn logged(sid: &str, code: &str, at: &str) -> Logged {
        Logged {
            sid: sid.into(),
            code: Some(code.into()),
            at: Some(at.parse().unwrap()),
            text: Some("Msg=registration failed".into()),
            more_info: Some(format!("https://www.twilio.com/docs/errors/{code}")),
        }
    }

    #[test]
    fn only_senders_that_are_offline_or_stuck_read_the_log() {
        use SenderStatus::*;
        assert!(wanted(Some("CREATING"), &Offline), "OFFLINE at once");
        assert!(wanted(None, &Offline));
        assert!(
            wanted(Some("CREATING"), &Creating),
            "not moved since the last look"
        );
        assert!(wanted(Some("VERIFYING"), &Verifying));
        assert!(!wanted(None, &Creating), "just created");
        assert!(!wanted(Some("CREATING"), &Verifying), "moving on");
        for settled in [Online, OnlineUpdating, PendingVerification] {
            assert!(!wanted(Some(settled.as_str()), &settled), "{settled}");
        }
    }

    #[test]
    fn a_needs_user_entry_stalls_with_its_code_and_advice_and_each_entry_is_noted_once() {
        let entries = [
            logged("NO2", "63104", "2026-11-30T10:05:00Z"),
            logged("NO1", "30001", "2026-11-30T10:00:00Z"),
        ];
        let first = decide(SID, &SenderStatus::Creating, &entries, &[], None);
        assert_eq!(first.new.len(), 2);
        assert_eq!(first.kept.len(), 2);
        assert_eq!(first.kept[0].sid, "NO2", "newest first");
        let (outcome, refused_name) = first.stall.as_ref().expect("63104 needs the user");
        assert_eq!(refused_name, &None);
        let stalled = outcome.assessment.stalled.as_ref().unwrap();
        assert_eq!(stalled.reason, reason::WABA_FULL);
        assert!(
            stalled
                .message
                .contains("Error Log reports error 63104 for sender XE")
                && stalled.message.contains("maximum number of phone numbers"),
            "{}",
            stalled.message
        );

        let again = decide(SID, &SenderStatus::Creating, &entries, &first.kept, None);
        assert!(again.new.is_empty(), "noted once: {:?}", again.new);
        assert!(again.stall.is_some(), "still stalled");
        let online = decide(SID, &SenderStatus::Online, &[], &first.kept, None);
        assert!(
            online.stall.is_none(),
            "an ONLINE sender is not stalled by old entries"
        );
        let waiting = decide(
            SID,
            &SenderStatus::PendingVerification,
            &[],
            &first.kept,
            None,
        );
        assert!(
            waiting.stall.is_none(),
            "a sender waiting for its code goes on to the code phase"
        );
        assert_eq!(waiting.kept, first.kept, "and keeps the entries in status");
    }

    #[test]
    fn an_entry_older_than_the_last_code_submission_no_longer_stalls() {
        let entries = [logged("NO1", "63116", "2026-11-30T10:00:00Z")];
        let submitted: Timestamp = "2026-11-30T10:01:00Z".parse().unwrap();
        let noted = decide(
            SID,
            &SenderStatus::Verifying,
            &entries,
            &[],
            Some(submitted),
        );
        assert_eq!(noted.new.len(), 1, "still noted");
        assert!(noted.stall.is_none());
    }

    #[test]
    fn entries_that_dropped_off_a_full_list_are_not_noted_again() {
        let entries: Vec<Logged> = (0..8)
            .map(|i| {
                logged(
                    &format!("NO{i}"),
                    "30001",
                    &format!("2026-11-30T10:0{i}:00Z"),
                )
            })
            .rev()
            .collect();
        let first = decide(SID, &SenderStatus::Offline, &entries, &[], None);
        assert_eq!(first.kept.len(), ALERTS_IN_STATUS);
        // After a restart only status remembers: the three oldest are not new.
        let again = decide(SID, &SenderStatus::Offline, &entries, &first.kept, None);
        assert!(again.new.is_empty(), "{:?}", again.new);
        assert!(first.stall.is_none(), "30001 is not one the user must fix");
    }

    #[test]
    fn a_refused_display_name_in_the_log_refuses_it_for_the_account() {
        let mut refused = logged("NO1", "63100", "2026-11-30T10:00:00Z");
        refused.text = Some("Msg=The display name does not follow Meta's guidelines".into());
        let noted = decide(SID, &SenderStatus::Offline, &[refused], &[], None);
        let (outcome, name) = noted.stall.unwrap();
        assert_eq!(
            outcome.assessment.stalled.unwrap().reason,
            reason::INVALID_SPEC
        );
        assert!(name.unwrap().contains("display name"));
    }

    #[test]
    fn an_event_names_the_code_the_time_and_twilios_words() {
        let n = note(SID, &logged("NO1", "63113", "2026-11-30T10:00:00Z"));
        assert!(n.warning);
        assert_eq!(n.reason, event::TWILIO_ALERT);
        assert!(
            n.message
                .contains("error 63113 at 2026-11-30T10:00:00Z for sender XE")
                && n.message.contains("registration failed")
                && n.message.contains("docs/errors/63113"),
            "{}",
            n.message
        );
    }
}
