//! Twilio's error codes in one table: for each code, what the caller should do (retry, ask the
//! user, treat as gone), the [`Problem`] it names, and the advice the user reads. The client's
//! errors, the conditions and a sender's offline reasons all read it, so a new code is one row
//! here. Nothing here knows a resource kind: each controller names a problem in its own
//! condition reasons.

use super::ErrorClass;

/// What is wrong, as Twilio's code says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    /// A request parameter or field Twilio refused (20001, 63100).
    InvalidRequest,
    /// The credentials (20003, or any 401/403).
    InvalidCredentials,
    /// The resource is gone (20404).
    NotFound,
    /// Twilio's rate limit (20429).
    RateLimited,
    /// Meta Business Manager's invitation not accepted (63020).
    InvitationNotAccepted,
    /// The WhatsApp Business Account holds its maximum of numbers (63104).
    WabaFull,
    /// The number is registered on WhatsApp already (63110).
    AlreadyRegistered,
    /// The number or the WABA was not found (63111).
    NumberNotFound,
    /// The number cannot be verified (63113).
    CannotVerify,
    /// Too many verification codes asked for (63114).
    TooManyCodes,
    /// The verification code was not received (63116).
    CodeNotReceived,
    /// Any other refusal.
    Rejected,
}

/// One of Twilio's error codes as the operator understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub number: u32,
    pub class: ErrorClass,
    /// What it says is wrong.
    pub problem: Problem,
    advice: Advice,
}

/// What to tell the user. Some advice quotes Twilio's own message, which names the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Advice {
    Says(&'static str),
    /// `"{lead}: {Twilio's message} (see {more_info}). {then}"`.
    Quotes {
        lead: &'static str,
        then: &'static str,
    },
}

const fn needs_user(number: u32, problem: Problem, advice: Advice) -> Code {
    Code {
        number,
        class: ErrorClass::NeedsUser,
        problem,
        advice,
    }
}

/// Every code the operator treats specially. 63114 (too many codes) clears by itself, but only
/// after hours, far beyond any retry loop, so it needs the user too.
const TABLE: &[Code] = &[
    needs_user(
        20001,
        Problem::InvalidRequest,
        Advice::Quotes {
            lead: "Twilio rejected a request parameter",
            then: "Check the spec; if it is right, this is a SenderOps bug",
        },
    ),
    needs_user(
        20003,
        Problem::InvalidCredentials,
        Advice::Says(
            "Twilio rejected the credentials: check accountSid/authToken (or \
             apiKeySid/apiKeySecret) in the credentials Secret",
        ),
    ),
    Code {
        number: 20404,
        class: ErrorClass::NotFound,
        problem: Problem::NotFound,
        advice: Advice::Says(
            "The sender no longer exists at Twilio (deleted outside the operator?)",
        ),
    },
    Code {
        number: 20429,
        class: ErrorClass::Retryable,
        problem: Problem::RateLimited,
        advice: Advice::Says(RATE_LIMITED),
    },
    needs_user(
        63020,
        Problem::InvitationNotAccepted,
        Advice::Says(
            "The business has not accepted Twilio's invitation in Meta Business Manager: accept \
             it there (Business settings, Requests); the sender then continues by itself",
        ),
    ),
    needs_user(
        63100,
        Problem::InvalidRequest,
        Advice::Quotes {
            lead: "Twilio rejected the sender's fields",
            then: "Fix the WhatsAppSender spec",
        },
    ),
    needs_user(
        63104,
        Problem::WabaFull,
        Advice::Says(
            "The WhatsApp Business Account has reached its maximum number of phone numbers: \
             remove unused numbers from the WABA or ask Meta to raise the limit, then recreate",
        ),
    ),
    needs_user(
        63110,
        Problem::AlreadyRegistered,
        Advice::Says(
            "The number is already registered on WhatsApp: delete it from the WhatsApp \
             (Business) app, or turn off two-step verification in WhatsApp Manager, then \
             recreate",
        ),
    ),
    needs_user(
        63111,
        Problem::NumberNotFound,
        Advice::Says(
            "The phone number or WhatsApp Business Account was not found: check phoneNumber \
             and wabaId (the number must belong to this Twilio account)",
        ),
    ),
    needs_user(
        63113,
        Problem::CannotVerify,
        Advice::Quotes {
            lead: "The sender cannot be verified",
            then: "Check that the number can receive SMS or voice calls, then recreate the \
                   sender",
        },
    ),
    needs_user(
        63114,
        Problem::TooManyCodes,
        Advice::Says(
            "Too many verification codes were requested for this number: wait several hours \
             before requesting another",
        ),
    ),
    needs_user(
        63116,
        Problem::CodeNotReceived,
        Advice::Says(
            "The verification code was not received: switch verification.method to voice or \
             request a new code",
        ),
    ),
];

/// Advice for Twilio's rate limit, by code (20429) or by HTTP status (429).
pub(crate) const RATE_LIMITED: &str = "Twilio is rate limiting this account: requests are \
                                       retried with backoff; lower the request budget or \
                                       onboard fewer numbers at once if this persists";

/// The row of Twilio's error `number`, if the operator treats it specially.
pub fn lookup(number: u32) -> Option<&'static Code> {
    TABLE.iter().find(|code| code.number == number)
}

/// The row of a code given as text (a sender's offline reason carries a string).
pub fn parse(text: &str) -> Option<&'static Code> {
    lookup(text.trim().parse().ok()?)
}

/// Whether Twilio's `code` with `text` refuses the display name (63100 is any validation
/// error; its text says which field).
pub fn refuses_display_name(code: u32, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    code == 63100
        && ["display name", "display_name", "profile.name"]
            .iter()
            .any(|field| text.contains(field))
}

impl Code {
    pub fn needs_user(&self) -> bool {
        self.class == ErrorClass::NeedsUser
    }

    /// What to do, quoting Twilio's `message` (already made safe to quote) where the advice
    /// needs it.
    pub fn advice(&self, message: &str, more_info: Option<&str>) -> String {
        match self.advice {
            Advice::Says(text) => text.to_string(),
            Advice::Quotes { lead, then } => {
                let see = more_info.map(|u| format!(" (see {u})")).unwrap_or_default();
                format!("{lead}: {message}{see}. {then}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_with_advice() {
        for (i, code) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|c| c.number != code.number),
                "{} is listed twice",
                code.number
            );
            let advice = code.advice("Twilio's text", Some("https://twilio.example/e"));
            assert!(!advice.is_empty() && !advice.ends_with('.'), "{advice:?}");
        }
    }

    #[test]
    fn offline_reason_codes_are_read_from_text() {
        assert_eq!(
            parse(" 63110 ").map(|c| c.problem),
            Some(Problem::AlreadyRegistered)
        );
        assert!(parse("63116").is_some_and(Code::needs_user));
        assert_eq!(parse("30008"), None);
        assert_eq!(parse("junk"), None);
    }

    #[test]
    fn only_a_63100_about_the_display_name_refuses_it() {
        assert!(refuses_display_name(
            63100,
            "The display name does not follow Meta's guidelines"
        ));
        assert!(refuses_display_name(63100, "Invalid profile.name"));
        assert!(!refuses_display_name(63100, "profile.about is too long"));
        assert!(!refuses_display_name(63110, "display name"));
    }

    #[test]
    fn quoting_advice_carries_twilios_words_and_link() {
        let advice = lookup(63100).unwrap().advice(
            "profile.about is too long",
            Some("https://www.twilio.com/docs/errors/63100"),
        );
        assert_eq!(
            advice,
            "Twilio rejected the sender's fields: profile.about is too long (see \
             https://www.twilio.com/docs/errors/63100). Fix the WhatsAppSender spec"
        );
    }
}
