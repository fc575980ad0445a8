//! Errors of the Senders API client, Twilio's error codes, and what each one means for the
//! caller: retry, ask the user, or treat as gone.
//!
//! Nothing here ever holds a request body, a credential or a verification code: errors end up
//! in logs and in `.status` conditions.

use std::time::Duration;

use serde::Deserialize;

use super::codes::{self, Problem};

/// What the caller should do with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Transient (rate limit, Twilio outage, network): try again later with backoff.
    Retryable,
    /// Retrying the same request cannot help: the user must change the spec, the credentials
    /// or something at Meta/Twilio. `advice()` says what.
    NeedsUser,
    /// The sender does not exist (Twilio code 20404). A delete that gets this is done.
    NotFound,
}

/// Everything the Senders client can fail with. Each kind says what it reads as (`thiserror`)
/// and, through strum, the label metrics count it under ([`Self::metric_label`]).
#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
pub enum TwilioError {
    /// Twilio (or something in front of it) answered with a non-success status.
    #[error("{}", api_display(*http_status, *code, message))]
    #[strum(serialize = "twilio_api")]
    Api {
        http_status: u16,
        /// Twilio's error code (`20404`, `63110`, …); `None` when the body was not Twilio's.
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
        /// `Retry-After` in seconds, when the response carried one.
        retry_after: Option<Duration>,
    },
    /// No complete answer within the per-request timeout. The request may have been processed.
    #[error("request to Twilio timed out")]
    #[strum(serialize = "twilio_timeout")]
    Timeout,
    /// Not sent: this replica's Lease went unrenewed past its renew deadline, so it may no
    /// longer lead (see `leader::fence`).
    #[error(
        "request to Twilio not sent: this replica did not renew its leader Lease within the \
         renew deadline and may no longer lead"
    )]
    #[strum(serialize = "not_leader")]
    Fenced,
    /// The connection could not be established, so the request was never sent.
    #[error("could not connect to Twilio: {0}")]
    #[strum(serialize = "twilio_transport")]
    Connect(String),
    /// Any other transport failure (connection reset mid-request, broken body, …).
    #[error("request to Twilio failed: {0}")]
    #[strum(serialize = "twilio_transport")]
    Transport(String),
    /// A success status with a body that is not the expected JSON.
    #[error("unexpected response body from Twilio: {0}")]
    #[strum(serialize = "twilio_response")]
    Decode(String),
    /// The client cannot be built or the credentials are unusable.
    #[error("invalid Twilio client configuration: {0}")]
    #[strum(serialize = "twilio_config")]
    InvalidConfig(String),
    /// A caller-supplied value that must not reach Twilio (e.g. a malformed sender SID).
    #[error("invalid argument: {0}")]
    #[strum(serialize = "twilio_config")]
    InvalidArgument(String),
    /// `next_page_url` went in circles or never ended.
    #[error("Twilio pagination did not terminate: {0}")]
    #[strum(serialize = "twilio_response")]
    Pagination(String),
    /// The answer's body was larger than the client reads (`MAX_RESPONSE_BYTES`).
    #[error(
        "Twilio's answer was larger than {limit} bytes, more than any Senders API answer; the \
         client stopped reading it"
    )]
    #[strum(serialize = "twilio_response")]
    ResponseTooLarge { limit: usize },
}

fn api_display(http_status: u16, code: Option<u32>, message: &str) -> String {
    let message = quote(message);
    match code {
        Some(code) => format!("Twilio error {code} (HTTP {http_status}): {message}"),
        None => format!("Twilio answered HTTP {http_status}: {message}"),
    }
}

/// Twilio's error body: `{"code":20404,"message":"…","more_info":"…","status":404}`. Each field
/// is read on its own: one of an unexpected type (a proxy's body, a future Twilio's) must not
/// hide the others, Twilio's code above all.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default, deserialize_with = "lenient_code")]
    code: Option<u32>,
    #[serde(default, deserialize_with = "lenient_text")]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    more_info: Option<String>,
}

/// A code sent as a number or as digits in a string; anything else is no code.
fn lenient_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match d.deserialize_any(Scalar)? {
        Some(ScalarValue::Number(n)) => u32::try_from(n).ok(),
        Some(ScalarValue::Text(s)) => s.trim().parse().ok(),
        None => None,
    })
}

fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match d.deserialize_any(Scalar)? {
        Some(ScalarValue::Text(s)) => Some(s),
        _ => None,
    })
}

enum ScalarValue {
    Number(u64),
    Text(String),
}

/// Reads a string or an unsigned integer; any other value (nested as deep as it likes) is
/// skipped without being built, so it cannot hit the parser's recursion limit.
struct Scalar;

impl<'de> serde::de::Visitor<'de> for Scalar {
    type Value = Option<ScalarValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(ScalarValue::Text(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(ScalarValue::Number(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).ok().map(ScalarValue::Number))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(None)
    }
}

/// How much of a non-JSON error body to keep: enough to recognise a proxy page, no more.
const BODY_SNIPPET_CHARS: usize = 200;

/// How much of Twilio's own text (`message`, `more_info`) an error keeps and quotes. Twilio's
/// messages are a sentence; anything longer is not worth a condition or a log line.
const QUOTED_CHARS: usize = 300;

/// Text from an answer, made safe to quote in a one-line log, an Event or a condition:
/// control characters (newlines that would forge log lines) and bidirectional overrides
/// (which make a terminal show text in another order) become spaces, runs of whitespace
/// collapse, and it is cut to [`QUOTED_CHARS`] characters.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut space_pending = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() || is_bidi_control(c) {
            space_pending = !out.is_empty();
            continue;
        }
        if kept + usize::from(space_pending) >= QUOTED_CHARS {
            out.push('…');
            break;
        }
        if space_pending {
            out.push(' ');
            kept += 1;
            space_pending = false;
        }
        out.push(c);
        kept += 1;
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What a secret is replaced with.
const REDACTED: &str = "[redacted]";

/// `text` with every occurrence of `secret` replaced (none when `secret` is empty).
fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, REDACTED)
    }
}

impl TwilioError {
    /// The same error with every occurrence of `secret` replaced, in every text it carries, and
    /// without a Twilio code whose digits contain it: an answer to a code submission may quote
    /// the code (a proxy echoing the request, say), and an error reaches conditions, Events and
    /// logs, through `Display` and `Debug` alike.
    pub fn redacting(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let scrub = |text: String| redact(&text, secret);
        match self {
            Self::Api {
                http_status,
                code,
                message,
                more_info,
                retry_after,
            } => Self::Api {
                http_status,
                code: code.filter(|code| !code.to_string().contains(secret)),
                message: scrub(message),
                more_info: more_info.map(scrub),
                retry_after,
            },
            Self::Connect(text) => Self::Connect(scrub(text)),
            Self::Transport(text) => Self::Transport(scrub(text)),
            Self::Decode(text) => Self::Decode(scrub(text)),
            Self::InvalidConfig(text) => Self::InvalidConfig(scrub(text)),
            Self::InvalidArgument(text) => Self::InvalidArgument(scrub(text)),
            Self::Pagination(text) => Self::Pagination(scrub(text)),
            Self::Timeout | Self::Fenced | Self::ResponseTooLarge { .. } => self,
        }
    }

    /// Builds the error for a non-success answer. `body` is the response body, which Twilio
    /// fills with its JSON error; anything else (a proxy's HTML, an empty body) still gives a
    /// useful message.
    pub fn from_response(http_status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        Self::from_response_redacting(http_status, body, retry_after, "")
    }

    /// [`Self::from_response`] for the answer to a request that carried `secret`. The secret
    /// is taken out before Twilio's words are cut to length: redacting afterwards would miss
    /// the part of it left at the cut.
    pub fn from_response_redacting(
        http_status: u16,
        body: &str,
        retry_after: Option<Duration>,
        secret: &str,
    ) -> Self {
        let quoted = |text: &str| quote(&redact(text, secret));
        if let Ok(parsed) = serde_json::from_str::<ErrorBody>(body)
            && (parsed.code.is_some() || parsed.message.is_some())
        {
            let message = parsed.message.as_deref().map(quoted).unwrap_or_default();
            return Self::Api {
                http_status,
                code: parsed.code,
                message: if message.is_empty() {
                    "(no message)".to_string()
                } else {
                    message
                },
                more_info: parsed.more_info.as_deref().map(quoted),
                retry_after,
            }
            .redacting(secret);
        }
        let snippet: String = quoted(body).chars().take(BODY_SNIPPET_CHARS).collect();
        let message = if snippet.is_empty() {
            "empty response body".to_string()
        } else {
            format!("non-JSON response body: {snippet}")
        };
        Self::Api {
            http_status,
            code: None,
            message,
            more_info: None,
            retry_after,
        }
        .redacting(secret)
    }

    /// A short label for metrics and logs, one per kind of failure: its variant's, a throttled
    /// answer (HTTP 429) set apart from the others.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Api {
                http_status: 429, ..
            } => "twilio_throttled",
            other => other.into(),
        }
    }

    /// Twilio's numeric error code, when Twilio sent one.
    pub fn twilio_code(&self) -> Option<u32> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { http_status, .. } => Some(*http_status),
            _ => None,
        }
    }

    /// How long Twilio asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api {
                http_status, code, ..
            } => {
                // Twilio's code decides where it is known: a needs-user code even when sent
                // with 429/5xx (repeating the request cannot fix it), and only Twilio's own
                // "not found" (a bare 404 from a wrong base URL or a proxy must not let a
                // delete believe the sender is gone).
                if let Some(known) = code.and_then(codes::lookup) {
                    known.class
                } else if *http_status == 429 || *http_status >= 500 || *http_status == 408 {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::NeedsUser
                }
            }
            // A garbled success body or a pagination loop is Twilio's or a proxy's hiccup:
            // trying again later is all the caller can do.
            Self::Timeout
            | Self::Fenced
            | Self::Connect(_)
            | Self::Transport(_)
            | Self::Decode(_)
            | Self::Pagination(_)
            | Self::ResponseTooLarge { .. } => ErrorClass::Retryable,
            Self::InvalidConfig(_) | Self::InvalidArgument(_) => ErrorClass::NeedsUser,
        }
    }

    /// What this error says is wrong, for one that needs the user.
    pub fn problem(&self) -> Problem {
        if let Some(known) = self
            .twilio_code()
            .and_then(codes::lookup)
            .filter(|c| c.needs_user())
        {
            return known.problem;
        }
        match self.http_status() {
            Some(401 | 403) => Problem::InvalidCredentials,
            _ => Problem::Rejected,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }

    /// True when Twilio certainly did not act on the request: rate limited (429/20429),
    /// unavailable (503), or the connection never opened. Only these may be retried for a
    /// request that is not idempotent (create, OTP submission); a timeout or a 500 may have
    /// been processed.
    pub fn certainly_not_processed(&self) -> bool {
        match self {
            Self::Api {
                http_status, code, ..
            } => *http_status == 429 || *http_status == 503 || *code == Some(20429),
            Self::Connect(_) | Self::Fenced => true,
            _ => false,
        }
    }

    /// What the user (or the operator) should do about this error, in one sentence or two.
    pub fn advice(&self) -> String {
        // Quoted again: an `Api` error may be built from a sender's offline reason, not only
        // by `from_response`.
        let (message, more_info) = match self {
            Self::Api {
                message, more_info, ..
            } => (quote(message), more_info.as_deref().map(quote)),
            _ => (String::new(), None),
        };
        if let Some(known) = self.twilio_code().and_then(codes::lookup) {
            return known.advice(&message, more_info.as_deref());
        }
        let see = more_info.map(|u| format!(" (see {u})")).unwrap_or_default();
        match self {
            Self::Api {
                http_status, code, ..
            } => api_advice(*http_status, *code, &message, &see),
            Self::Timeout => "Twilio did not answer in time: retrying with backoff; check the \
                              network path to Twilio if this persists"
                .to_string(),
            Self::Fenced => "Not sent: this replica may no longer lead; the replica holding the \
                             Lease takes over"
                .to_string(),
            Self::Connect(_) | Self::Transport(_) => format!(
                "Could not reach Twilio ({self}): check egress, proxy settings and the client's \
                 base URL"
            ),
            Self::Decode(_) => format!("{self}: retrying; if it persists this is a bug"),
            Self::InvalidConfig(_) | Self::InvalidArgument(_) => {
                format!("{self}: fix it in the WhatsAppSender or its credentials Secret")
            }
            Self::Pagination(_) => format!("{self}: retrying later"),
            Self::ResponseTooLarge { .. } => format!(
                "{self}: check the client's base URL and any proxy in front of Twilio; retrying \
                 later"
            ),
        }
    }
}

/// [`TwilioError::advice`] for an answer whose code (if any) the table does not know, by its
/// HTTP status. `see` is `" (see <more_info>)"` or empty.
fn api_advice(http_status: u16, code: Option<u32>, message: &str, see: &str) -> String {
    match (http_status, code) {
        (401, None) => codes::lookup(20003)
            .expect("20003 is in the table")
            .advice(message, None),
        (429, _) => codes::RATE_LIMITED.to_string(),
        (403, _) => format!(
            "Twilio refused access: {message}{see}. Check that the credentials belong to this \
             account and, for an API key, that it may use the Senders API"
        ),
        (404, None) => {
            "The URL answered 404 without a Twilio error code: check the client's base URL or proxy"
                .to_string()
        }
        (status, _) if status >= 500 => {
            format!("Twilio had a server error ({message}): retrying with backoff")
        }
        _ => format!("Twilio rejected the request: {message}{see}"),
    }
}

/// `Retry-After` in either of HTTP's forms: delta-seconds (what Twilio sends), or an HTTP-date
/// (what a proxy in front of it may send), as the time from now until then (zero if past).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    retry_after_at(value, k8s_openapi::jiff::Timestamp::now())
}

fn retry_after_at(value: &str, now: k8s_openapi::jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT") is RFC 2822's form.
    let at = k8s_openapi::jiff::fmt::rfc2822::parse(value)
        .ok()?
        .timestamp();
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio(status: u16, code: u32, message: &str) -> TwilioError {
        let body = serde_json::json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        });
        TwilioError::from_response(status, &body.to_string(), None)
    }

    #[test]
    fn an_answer_that_quotes_the_code_keeps_its_words_but_not_the_code() {
        let echoed = twilio(400, 63100, "Invalid verification_code 482913 for sender");
        let echoed = echoed.redacting("482913");
        let shown = echoed.to_string();
        assert!(!format!("{echoed:?}").contains("482913"), "{echoed:?}");
        assert!(!shown.contains("482913"), "{shown}");
        assert!(
            shown.contains("Invalid verification_code [redacted] for sender"),
            "{shown}"
        );
        assert!(shown.contains("63100"), "{shown}");
        let kept = twilio(500, 20500, "Internal error").redacting("");
        assert!(kept.to_string().contains("Internal error"));
    }

    /// Everything an error shows of itself: what conditions, Events and logs may carry.
    fn everything(err: &TwilioError) -> String {
        format!("{err} {err:?} {}", err.advice())
    }

    #[test]
    fn no_part_of_the_code_is_left_where_a_long_answer_is_cut() {
        // The code straddles the cut: a Twilio message is cut to QUOTED_CHARS, a foreign body
        // to BODY_SNIPPET_CHARS, and "482" would be left of it if the cut came first.
        let message = format!("{}482913 rejected", "x".repeat(QUOTED_CHARS - 3));
        let body = serde_json::json!({"code": 20001, "message": message}).to_string();
        let long_json = TwilioError::from_response_redacting(400, &body, None, "482913");
        let page = format!("{}482913 rejected", "y".repeat(BODY_SNIPPET_CHARS - 3));
        let long_page = TwilioError::from_response_redacting(502, &page, None, "482913");
        for err in [&long_json, &long_page] {
            let shown = everything(err);
            assert!(!shown.contains("482"), "{shown}");
        }
        assert_eq!(long_json.twilio_code(), Some(20001));
        assert_eq!(long_page.http_status(), Some(502));
    }

    #[test]
    fn a_code_escaped_in_json_or_sent_as_twilios_code_is_redacted_too() {
        let escaped = r#"{"code":20001,"message":"code \u0034\u0038\u0032\u0039\u0031\u0033","more_info":"https://example.com/?c=482913"}"#;
        let err = TwilioError::from_response_redacting(400, escaped, None, "482913");
        let shown = everything(&err);
        assert!(!shown.contains("482913"), "{shown}");
        assert!(shown.contains("code [redacted]"), "{shown}");
        assert_eq!(err.twilio_code(), Some(20001));

        let as_code = r#"{"code":482913,"message":"Invalid code"}"#;
        let err = TwilioError::from_response_redacting(400, as_code, None, "482913");
        let shown = everything(&err);
        assert!(!shown.contains("482913"), "{shown}");
        assert_eq!((err.twilio_code(), err.http_status()), (None, Some(400)));
    }

    #[test]
    fn every_text_an_error_carries_is_redacted() {
        for err in [
            TwilioError::Connect("a 482913 b".into()),
            TwilioError::Transport("a 482913 b".into()),
            TwilioError::Decode("a 482913 b".into()),
            TwilioError::InvalidConfig("a 482913 b".into()),
            TwilioError::InvalidArgument("a 482913 b".into()),
            TwilioError::Pagination("a 482913 b".into()),
        ] {
            let class = err.class();
            let err = err.redacting("482913");
            let shown = everything(&err);
            assert!(!shown.contains("482913"), "{shown}");
            assert!(shown.contains("a [redacted] b"), "{shown}");
            assert_eq!(err.class(), class);
        }
    }

    #[test]
    fn parses_twilio_error_body() {
        let err = twilio(404, 20404, "The requested resource was not found");
        match &err {
            TwilioError::Api {
                http_status,
                code,
                message,
                more_info,
                retry_after,
            } => {
                assert_eq!(*http_status, 404);
                assert_eq!(*code, Some(20404));
                assert_eq!(message, "The requested resource was not found");
                assert_eq!(
                    more_info.as_deref(),
                    Some("https://www.twilio.com/docs/errors/20404")
                );
                assert_eq!(*retry_after, None);
            }
            other => panic!("expected Api, got {other:?}"),
        }
        assert_eq!(err.twilio_code(), Some(20404));
        assert_eq!(err.http_status(), Some(404));
        assert_eq!(
            err.to_string(),
            "Twilio error 20404 (HTTP 404): The requested resource was not found"
        );
    }

    #[test]
    fn code_as_string_is_accepted() {
        let err = TwilioError::from_response(400, r#"{"code":"63110","message":"taken"}"#, None);
        assert_eq!(err.twilio_code(), Some(63110));
    }

    #[test]
    fn non_json_bodies_fall_back_to_a_snippet() {
        let html = format!(
            "<html>\n  <body>Bad   Gateway</body>{}</html>",
            "x".repeat(1000)
        );
        let err = TwilioError::from_response(502, &html, None);
        assert_eq!(err.twilio_code(), None);
        assert_eq!(err.http_status(), Some(502));
        let shown = err.to_string();
        assert!(shown.contains("HTTP 502"), "{shown}");
        assert!(shown.contains("<body>Bad Gateway</body>"), "{shown}");
        assert!(shown.len() < 300, "body is truncated: {}", shown.len());
        assert_eq!(err.class(), ErrorClass::Retryable);

        let empty = TwilioError::from_response(503, "", None);
        assert!(empty.to_string().contains("empty response body"));

        // JSON that is not Twilio's error shape is treated like any foreign body.
        let foreign = TwilioError::from_response(400, r#"{"error":"nope"}"#, None);
        assert_eq!(foreign.twilio_code(), None);
        assert!(foreign.to_string().contains(r#"{"error":"nope"}"#));
    }

    #[test]
    fn classification_per_code_and_status() {
        use ErrorClass::*;
        let cases = [
            (429, 20429, Retryable),
            (500, 20500, Retryable),
            (503, 20503, Retryable),
            (401, 20003, NeedsUser),
            (400, 20001, NeedsUser),
            (400, 63100, NeedsUser),
            (400, 63104, NeedsUser),
            (400, 63110, NeedsUser),
            (404, 63111, NeedsUser),
            (400, 63113, NeedsUser),
            (429, 63114, NeedsUser),
            (400, 63114, NeedsUser),
            (400, 63116, NeedsUser),
            (409, 12345, NeedsUser),
            (404, 20404, NotFound),
        ];
        for (status, code, class) in cases {
            assert_eq!(twilio(status, code, "m").class(), class, "{status}/{code}");
        }
        // Twilio's rate-limit code wins even on an unusual status.
        assert_eq!(twilio(400, 20429, "m").class(), Retryable);
        // A bare 404 (wrong base URL) is not proof that the sender is gone.
        assert_eq!(
            TwilioError::from_response(404, "Not Found", None).class(),
            NeedsUser
        );
        assert_eq!(TwilioError::Timeout.class(), Retryable);
        assert_eq!(TwilioError::Connect("refused".into()).class(), Retryable);
        assert_eq!(TwilioError::InvalidConfig("x".into()).class(), NeedsUser);
        assert!(twilio(404, 20404, "m").is_not_found());
        assert!(twilio(503, 20503, "m").is_retryable());
    }

    #[test]
    fn each_user_code_names_its_problem() {
        let cases = [
            (401, Some(20003), Problem::InvalidCredentials),
            (403, None, Problem::InvalidCredentials),
            (400, Some(20001), Problem::InvalidRequest),
            (400, Some(63100), Problem::InvalidRequest),
            (400, Some(63104), Problem::WabaFull),
            (400, Some(63110), Problem::AlreadyRegistered),
            (400, Some(63111), Problem::NumberNotFound),
            (400, Some(63113), Problem::CannotVerify),
            (400, Some(63114), Problem::TooManyCodes),
            (400, Some(63116), Problem::CodeNotReceived),
            (409, Some(12345), Problem::Rejected),
        ];
        for (http_status, code, expected) in cases {
            let err = TwilioError::Api {
                http_status,
                code,
                message: "m".into(),
                more_info: None,
                retry_after: None,
            };
            assert_eq!(err.problem(), expected, "{code:?}/{http_status}");
        }
    }

    #[test]
    fn only_unprocessed_requests_are_safe_to_repeat() {
        assert!(twilio(429, 20429, "m").certainly_not_processed());
        assert!(twilio(503, 20503, "m").certainly_not_processed());
        assert!(TwilioError::Connect("refused".into()).certainly_not_processed());
        assert!(!twilio(500, 20500, "m").certainly_not_processed());
        assert!(!twilio(504, 20504, "m").certainly_not_processed());
        assert!(!TwilioError::Timeout.certainly_not_processed());
        assert!(!TwilioError::Transport("reset".into()).certainly_not_processed());
    }

    #[test]
    fn retry_after_is_kept() {
        let err = TwilioError::from_response(
            429,
            r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
            parse_retry_after(" 7 "),
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(err.class(), ErrorClass::Retryable);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "an HTTP-date in the past"
        );
        let now: k8s_openapi::jiff::Timestamp = "2015-10-21T07:27:30Z".parse().unwrap();
        assert_eq!(
            retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(TwilioError::Timeout.retry_after(), None);
    }

    #[test]
    fn advice_names_the_action() {
        let cases: [(u16, u32, &[&str]); 10] = [
            (
                401,
                20003,
                &["credentials", "accountSid/authToken", "apiKeySid"],
            ),
            (400, 20001, &["parameter", "Channel is required"]),
            (
                400,
                63100,
                &["Fix the WhatsAppSender spec", "Channel is required"],
            ),
            (400, 63104, &["maximum number", "WABA"]),
            (
                400,
                63110,
                &["already registered", "two-step verification", "recreate"],
            ),
            (400, 63111, &["not found", "wabaId"]),
            (400, 63113, &["cannot be verified"]),
            (400, 63114, &["wait several hours"]),
            (400, 63116, &["verification.method to voice", "new code"]),
            (429, 20429, &["rate limiting", "backoff"]),
        ];
        for (status, code, needles) in cases {
            let advice = twilio(status, code, "Channel is required").advice();
            for needle in needles {
                assert!(
                    advice.contains(needle),
                    "{code}: {advice:?} lacks {needle:?}"
                );
            }
        }
        assert!(TwilioError::Timeout.advice().contains("retrying"));
        assert!(
            TwilioError::from_response(404, "", None)
                .advice()
                .contains("base URL")
        );
    }
}
