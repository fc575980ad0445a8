//! `Ready`, `Synced` and `Stalled`: what each reconcile concluded, written as standard
//! Kubernetes conditions. Pure: takes the old conditions and a verdict, returns the new ones.
//!
//! `lastTransitionTime` only moves when a condition's status changes, so writing the same
//! verdict twice produces the same status, the write is skipped, and the loop is not woken.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types every kind sets (kstatus-compatible: Flux and Argo CD read them).
pub mod condition_type {
    /// The object's remote counterpart is in the state the spec asks for.
    pub const READY: &str = "Ready";
    /// The last reconcile brought Twilio in line with the spec.
    pub const SYNCED: &str = "Synced";
    /// Progress needs the user: a terminal Twilio error, bad credentials, a refused spec.
    pub const STALLED: &str = "Stalled";
}

/// The reasons the runtime itself writes, whatever the kind. A kind's CRD lists them among its
/// own (`api::reason::ALL` holds them, and a test there checks it).
pub mod reason {
    pub const APPLIED: &str = "Applied";
    pub const NOT_STALLED: &str = "NotStalled";
    pub const RECONCILING: &str = "Reconciling";
    pub const TWILIO_UNAVAILABLE: &str = "TwilioUnavailable";
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
}

use condition_type::{READY, STALLED, SYNCED};

/// One condition's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// The longest condition message written. Kubernetes allows 32 KiB; the operator's own
/// messages stay under 1 KiB, and the cap keeps text quoted from Twilio or from the spec from
/// bloating every status write (or, past the API server's limit, failing it).
pub const MAX_MESSAGE_BYTES: usize = 4096;

impl Verdict {
    pub fn new(status: Status, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: bounded(message.into()),
        }
    }
}

/// `message` on one line (a control character, such as a newline from quoted text, becomes a
/// space), cut on a character boundary to at most [`MAX_MESSAGE_BYTES`], ending in `...` when
/// cut.
fn bounded(mut message: String) -> String {
    if message.contains(char::is_control) {
        message = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
    }
    truncate_bytes(&mut message, MAX_MESSAGE_BYTES);
    message
}

/// Cuts `text` longer than `max_bytes` (at least 3) on a character boundary, to at most that
/// many bytes ending in `...`. For what the API server measures in bytes: condition messages,
/// Event notes.
pub(crate) fn truncate_bytes(text: &mut String, max_bytes: usize) {
    if text.len() <= max_bytes {
        return;
    }
    let mut end = max_bytes - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
}

/// What one reconcile concluded about the three conditions. `None` leaves a condition as it
/// was (a passing Twilio outage must not flip `Ready` of a object that is still ready).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub ready: Option<Verdict>,
    pub synced: Option<Verdict>,
    pub stalled: Option<Verdict>,
}

impl Assessment {
    /// In the state the spec asks for, and matching it.
    pub fn ready(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ready: Some(Verdict::new(Status::True, reason, message)),
            synced: Some(applied()),
            stalled: Some(not_stalled()),
        }
    }

    /// Twilio (or Meta, or the user with a code) is working on it; nothing is wrong.
    pub fn progressing(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ready: Some(Verdict::new(Status::False, reason, message)),
            synced: Some(applied()),
            stalled: Some(not_stalled()),
        }
    }

    /// Not yet applied, but not because of an error (waiting for an onboarding turn, for a
    /// Secret to appear).
    pub fn waiting(reason: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            ready: Some(Verdict::new(Status::False, reason, message.clone())),
            synced: Some(Verdict::new(Status::False, reason, message)),
            stalled: Some(not_stalled()),
        }
    }

    /// Only the user can unblock it; the message says how.
    pub fn stalled(reason: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            ready: Some(Verdict::new(Status::False, reason, message.clone())),
            synced: Some(Verdict::new(Status::False, reason, message.clone())),
            stalled: Some(Verdict::new(Status::True, reason, message)),
        }
    }

    /// A transient failure (Twilio or Kubernetes unavailable): retried with backoff. `Ready`
    /// stays as it was.
    pub fn failed(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ready: None,
            synced: Some(Verdict::new(Status::False, reason, message)),
            stalled: Some(not_stalled()),
        }
    }

    /// Changes nothing, but fills in conditions that were never set.
    pub fn unchanged() -> Self {
        Self {
            ready: None,
            synced: None,
            stalled: None,
        }
    }

    /// Whether this sets `Stalled=True`: only the user can move the object on.
    pub fn is_stalled(&self) -> bool {
        self.stalled
            .as_ref()
            .is_some_and(|v| v.status == Status::True)
    }

    /// The verdict of the condition `type_`, if this assessment sets it.
    pub fn get(&self, type_: &str) -> Option<&Verdict> {
        match type_ {
            READY => self.ready.as_ref(),
            SYNCED => self.synced.as_ref(),
            STALLED => self.stalled.as_ref(),
            _ => None,
        }
    }
}

fn applied() -> Verdict {
    Verdict::new(
        Status::True,
        reason::APPLIED,
        "the spec is applied at Twilio as far as the object's state there allows",
    )
}

pub fn not_stalled() -> Verdict {
    Verdict::new(Status::False, reason::NOT_STALLED, "")
}

/// The condition to start from when a type has never been set: kstatus tools read a missing
/// `Ready` as "not reconciled yet", so all three are written on the first visit.
fn initial(type_: &str) -> Verdict {
    match type_ {
        STALLED => not_stalled(),
        _ => Verdict::new(
            Status::Unknown,
            reason::RECONCILING,
            "the operator has not finished its first reconcile",
        ),
    }
}

/// The three conditions after applying `assessment` to `existing`. Conditions of other types
/// are kept as they are. `lastTransitionTime` is `now` only for a condition whose status
/// changed (or that is new).
pub fn merge(
    existing: &[Condition],
    assessment: &Assessment,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| ![READY, SYNCED, STALLED].contains(&c.type_.as_str()))
        .cloned()
        .collect();
    for type_ in [READY, SYNCED, STALLED] {
        let old = existing.iter().find(|c| c.type_ == type_);
        let verdict = match (assessment.get(type_), old) {
            (Some(verdict), _) => verdict.clone(),
            (None, Some(old)) => {
                out.push(old.clone());
                continue;
            }
            (None, None) => initial(type_),
        };
        let last_transition_time = match old {
            Some(old) if old.status == verdict.status.as_str() => old.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: type_.to_string(),
            status: verdict.status.as_str().to_string(),
            reason: verdict.reason.to_string(),
            message: verdict.message,
            observed_generation: generation,
            last_transition_time,
        });
    }
    out
}

/// The condition `type_` in `conditions`, if set.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when `type_` is set with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn get<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        find(conditions, type_).unwrap_or_else(|| panic!("{type_} missing from {conditions:?}"))
    }

    #[test]
    fn the_first_visit_sets_all_three_conditions() {
        let conditions = merge(&[], &Assessment::failed("X", "boom"), Some(1), &at(10));
        assert_eq!(get(&conditions, READY).status, "Unknown");
        assert_eq!(get(&conditions, SYNCED).status, "False");
        assert_eq!(get(&conditions, STALLED).status, "False");
        assert!(conditions.iter().all(|c| c.observed_generation == Some(1)));
        assert!(conditions.iter().all(|c| c.last_transition_time == at(10)));
    }

    #[test]
    fn an_unchanged_status_keeps_its_transition_time() {
        let first = merge(
            &[],
            &Assessment::progressing("Creating", "creating"),
            Some(1),
            &at(10),
        );
        let second = merge(
            &first,
            &Assessment::progressing("Verifying", "verifying"),
            Some(2),
            &at(20),
        );
        let ready = get(&second, READY);
        assert_eq!(
            (ready.reason.as_str(), &ready.last_transition_time),
            ("Verifying", &at(10)),
            "reason and message change without a transition"
        );
        assert_eq!(ready.observed_generation, Some(2));

        let third = merge(
            &second,
            &Assessment::ready("Online", "online"),
            Some(2),
            &at(30),
        );
        assert_eq!(get(&third, READY).last_transition_time, at(30));
        assert_eq!(get(&third, SYNCED).last_transition_time, at(10));
    }

    #[test]
    fn merging_the_same_verdict_twice_is_idempotent() {
        let assessment = Assessment::stalled("CodeRejected", "put a new code");
        let once = merge(&[], &assessment, Some(3), &at(10));
        let twice = merge(&once, &assessment, Some(3), &at(99));
        assert_eq!(once, twice);
    }

    #[test]
    fn a_transient_failure_leaves_ready_alone() {
        let online = merge(
            &[],
            &Assessment::ready("Online", "online"),
            Some(1),
            &at(10),
        );
        let failed = merge(
            &online,
            &Assessment::failed(reason::TWILIO_UNAVAILABLE, "503"),
            Some(1),
            &at(20),
        );
        assert_eq!(get(&failed, READY), get(&online, READY));
        assert_eq!(get(&failed, SYNCED).status, "False");
        assert_eq!(get(&failed, SYNCED).reason, reason::TWILIO_UNAVAILABLE);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary_and_lose_control_characters() {
        let verdict = Verdict::new(Status::False, "Offline", "é".repeat(MAX_MESSAGE_BYTES));
        assert!(verdict.message.len() <= MAX_MESSAGE_BYTES);
        assert!(verdict.message.ends_with("..."), "{}", verdict.message);
        let verdict = Verdict::new(Status::False, "Offline", "a\nforged: line\r\u{7}");
        assert_eq!(verdict.message, "a forged: line  ");
    }

    #[test]
    fn stalled_sets_all_three_and_other_types_survive() {
        let foreign = Condition {
            type_: "Custom".into(),
            status: "True".into(),
            reason: "Mine".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: at(1),
        };
        let conditions = merge(
            std::slice::from_ref(&foreign),
            &Assessment::stalled("InvalidCredentials", "fix the Secret"),
            Some(4),
            &at(10),
        );
        assert!(is_true(&conditions, STALLED));
        assert!(!is_true(&conditions, READY));
        assert_eq!(get(&conditions, SYNCED).message, "fix the Secret");
        assert_eq!(get(&conditions, "Custom"), &foreign);
        assert_eq!(conditions.len(), 4);
    }
}
