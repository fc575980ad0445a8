//! Kubernetes Events on an object's transitions (`kubectl describe` shows its history).
//!
//! Notes are written by the operator: Twilio's error text may appear, request contents (codes,
//! credentials) never do. Publishing is best effort: a failed Event is logged, never retried
//! at the expense of the reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::conditions::truncate_bytes;

/// One Event to publish about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Note {
    pub fn normal(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn warning(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The API server refuses notes longer than 1 kB.
const MAX_NOTE_BYTES: usize = 1024;

fn truncate(message: &str) -> String {
    let mut note = message.to_string();
    truncate_bytes(&mut note, MAX_NOTE_BYTES);
    note
}

/// Publishes Events as the operator.
///
/// kube's `Recorder` keeps every Event it published for six minutes, to count repeats into
/// a series, in a map without bound: with 10,000 senders onboarding that map held 70 MiB.
/// Events here mark transitions, which rarely repeat within minutes, so each Event goes out
/// through a fresh `Recorder` (as kube's documentation suggests, one per reconcile) and
/// nothing is kept.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    reporter: Reporter,
}

impl Publisher {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self { client, reporter }
    }

    /// Publishes `note` about `regarding`; failures are logged and dropped.
    pub async fn publish(&self, regarding: &ObjectReference, note: Note) {
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        publish(&recorder, regarding, note).await;
    }
}

async fn publish(recorder: &Recorder, regarding: &ObjectReference, note: Note) {
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.clone(),
        note: Some(truncate(&note.message)),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, regarding).await {
        tracing::warn!(reason = %note.reason, error = %err, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let short = "fine";
        assert_eq!(truncate(short), short);
        let long = "é".repeat(MAX_NOTE_BYTES);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_NOTE_BYTES, "{}", cut.len());
        assert!(cut.ends_with("..."));
    }
}
