//! Injected faults for Twilio API routes (`/v2/…`, `/v1/…` and `/2010-04-01/…`): added latency, random 500/503,
//! a per-account rate limit, answers held back or lost after the request was processed, and
//! answers to a code submission that quote the code.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::stats::is_twilio_route;

/// What `PUT /_sim/faults` sets; a missing field turns that fault off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    /// Probability (0..=1) that a request fails with 500 or 503.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Added to every request before it is handled.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Requests per account per (fixed, one-second) window before 429s.
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Probability (0..=1) that a processed request's answer is lost: the connection drops.
    #[serde(default)]
    pub lost_answer_rate: Option<f64>,
    /// Holds every answer this long after its request was processed.
    #[serde(default)]
    pub answer_delay_ms: Option<u64>,
    /// Answers every request that submits a verification code with the code quoted, as a
    /// careless proxy or API might: what a client must keep out of its errors and logs.
    #[serde(default)]
    pub echo_code: Option<CodeEcho>,
    /// Limits every fault to one operation, written `METHOD /route/template` (e.g.
    /// `POST /v2/Channels/Senders` for creates only, `GET /v1/Alerts` for alert lists,
    /// `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`); all Twilio API
    /// requests when absent.
    #[serde(default)]
    pub only: Option<String>,
}

impl FaultSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("lost_answer_rate", self.lost_answer_rate),
        ] {
            if let Some(rate) = rate
                && !(0.0..=1.0).contains(&rate)
            {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if let Some(only) = &self.only
            && !matches!(only.split_once(' '), Some((method, route)) if !method.is_empty() && is_twilio_route(route))
        {
            return Err(format!(
                "only must be METHOD and a /v2, /v1 or /2010-04-01 route template, e.g. \"POST /v2/Channels/Senders\" or \"GET /v1/Alerts\", got {only:?}"
            ));
        }
        if self.rate_limit_per_second == Some(0) {
            return Err("rate_limit_per_second must be at least 1 (omit it to turn it off)".into());
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    settings: FaultSettings,
    windows: HashMap<String, (Instant, u32)>,
}

impl Faults {
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    pub fn set(&mut self, settings: FaultSettings) {
        self.settings = settings;
        self.windows.clear();
    }

    pub fn reset(&mut self) {
        self.set(FaultSettings::default());
    }

    /// Whether the faults apply to `method` on `route` (a template).
    pub fn apply_to(&self, method: &str, route: &str) -> bool {
        self.settings.only.as_deref().is_none_or(|only| {
            only.split_once(' ')
                .is_some_and(|(m, r)| m.eq_ignore_ascii_case(method) && r == route)
        })
    }

    pub fn latency(&self) -> Option<Duration> {
        positive_ms(self.settings.latency_ms)
    }

    pub fn answer_delay(&self) -> Option<Duration> {
        positive_ms(self.settings.answer_delay_ms)
    }

    pub fn echo_code(&self) -> Option<CodeEcho> {
        self.settings.echo_code
    }

    /// Whether this answer is to be lost (drawn once per processed request).
    pub fn lose_answer(&self) -> bool {
        self.settings
            .lost_answer_rate
            .is_some_and(|rate| rand::rng().random_bool(rate))
    }

    /// Counts the request against `account`'s window, then decides whether it fails.
    pub fn check(&mut self, account: &str, now: Instant) -> Result<(), ApiError> {
        if let Some(limit) = self.settings.rate_limit_per_second {
            let window = self.windows.entry(account.to_string()).or_insert((now, 0));
            if now.duration_since(window.0) >= Duration::from_secs(1) {
                *window = (now, 0);
            }
            window.1 += 1;
            if window.1 > limit {
                return Err(ApiError::too_many_requests());
            }
        }
        if let Some(rate) = self.settings.error_rate {
            let mut rng = rand::rng();
            if rng.random_bool(rate) {
                return Err(if rng.random_bool(0.5) {
                    ApiError::internal()
                } else {
                    ApiError::unavailable()
                });
            }
        }
        Ok(())
    }
}

fn positive_ms(ms: Option<u64>) -> Option<Duration> {
    ms.filter(|ms| *ms > 0).map(Duration::from_millis)
}

/// How the `echo_code` fault answers a request that submits a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeEcho {
    /// 400 (20001) with Twilio's error body, its message quoting the code; the request is not
    /// handled.
    Rejected,
    /// The request is handled; a success answer is then replaced by a 200 whose plain-text
    /// (not JSON) body quotes the code.
    Text,
}

/// Runs `request` under the `echo_code` fault: one whose JSON body has
/// `configuration.verification_code` is answered as `echo` says, any other as usual.
pub async fn echoing(echo: CodeEcho, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::guard::MAX_BODY_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let code = submitted_code(&bytes);
    let request = Request::from_parts(parts, Body::from(bytes));
    match (echo, code) {
        (_, None) => next.run(request).await,
        (CodeEcho::Rejected, Some(code)) => ApiError::invalid_parameter(format!(
            "Invalid parameter `configuration.verification_code`: {code} is not a valid code"
        ))
        .into_response(),
        (CodeEcho::Text, Some(code)) => {
            let handled = next.run(request).await;
            if !handled.status().is_success() {
                return handled;
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("OK\nverification_code={code}\n"),
            )
                .into_response()
        }
    }
}

/// `configuration.verification_code` of a JSON body, if it is a non-empty string.
fn submitted_code(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    body.pointer("/configuration/verification_code")?
        .as_str()
        .filter(|code| !code.is_empty())
        .map(str::to_string)
}

/// Put on a response whose request was processed but whose answer is to be lost.
#[derive(Debug, Clone, Copy)]
pub struct LoseAnswer;

/// Middleware (outermost): a response marked [`LoseAnswer`] is replaced by one whose body
/// fails at once. hyper then drops the connection before anything is sent, so the client
/// gets a transport error and never a status.
pub async fn lose_marked_answers(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<LoseAnswer>().is_none() {
        return response;
    }
    // A fresh response rather than the original's body swapped: hyper sends the head of a
    // 204 without ever polling its body.
    Response::new(Body::new(LostBody))
}

/// A body that fails before its first byte.
struct LostBody;

impl HttpBody for LostBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "answer lost (injected fault)",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_is_per_account_and_per_window() {
        let mut faults = Faults::default();
        faults.set(FaultSettings {
            rate_limit_per_second: Some(2),
            ..FaultSettings::default()
        });
        let t0 = Instant::now();
        assert!(faults.check("AC1", t0).is_ok());
        assert!(faults.check("AC1", t0).is_ok());
        let err = faults.check("AC1", t0).unwrap_err();
        assert_eq!((err.code, err.retry_after), (20429, Some(1)));
        assert!(faults.check("AC2", t0).is_ok());
        assert!(faults.check("AC1", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn error_rate_bounds() {
        assert!(
            FaultSettings {
                error_rate: Some(1.5),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        let mut faults = Faults::default();
        faults.set(FaultSettings {
            error_rate: Some(1.0),
            ..Default::default()
        });
        let codes: Vec<u32> = (0..50)
            .map(|_| faults.check("AC1", Instant::now()).unwrap_err().code)
            .collect();
        assert!(codes.iter().all(|c| [20500, 20503].contains(c)));
        faults.set(FaultSettings {
            error_rate: Some(0.0),
            ..Default::default()
        });
        assert!(faults.check("AC1", Instant::now()).is_ok());
    }

    #[test]
    fn faults_can_be_limited_to_one_operation() {
        let mut faults = Faults::default();
        assert!(
            faults.apply_to("GET", "/v2/Channels/Senders"),
            "all by default"
        );
        let only = |only: &str| FaultSettings {
            only: Some(only.into()),
            ..Default::default()
        };
        faults.set(only("POST /v2/Channels/Senders"));
        assert!(faults.apply_to("POST", "/v2/Channels/Senders"));
        assert!(!faults.apply_to("GET", "/v2/Channels/Senders"));
        assert!(!faults.apply_to("POST", "/v2/Channels/Senders/{Sid}"));
        for bad in [
            "POST",
            "POST /_sim/faults",
            " /v2/Channels/Senders",
            "GET /v3/x",
        ] {
            assert!(only(bad).validate().is_err(), "{bad}");
        }
        assert!(only("GET /v1/Alerts").validate().is_ok());
        assert!(
            only("GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn only_a_body_with_a_code_is_echoed() {
        let code = |body: &str| submitted_code(body.as_bytes());
        assert_eq!(
            code(r#"{"configuration":{"verification_code":"123456"}}"#).as_deref(),
            Some("123456")
        );
        for none in [
            r#"{"configuration":{"verification_code":""}}"#,
            r#"{"configuration":{"waba_id":"1"}}"#,
            r#"{"profile":{"about":"x"}}"#,
            "",
            "not json",
        ] {
            assert_eq!(code(none), None, "{none}");
        }
        let settings: FaultSettings = serde_json::from_str(r#"{"echo_code":"text"}"#).unwrap();
        assert_eq!(settings.echo_code, Some(CodeEcho::Text));
        assert!(serde_json::from_str::<FaultSettings>(r#"{"echo_code":"loud"}"#).is_err());
    }

    #[test]
    fn lost_answer_rate_is_validated_and_drawn() {
        for rate in [-0.1, 1.01] {
            let settings = FaultSettings {
                lost_answer_rate: Some(rate),
                ..Default::default()
            };
            let err = settings.validate().unwrap_err();
            assert!(err.contains("lost_answer_rate"), "{rate}: {err}");
        }
        let mut faults = Faults::default();
        assert!(!faults.lose_answer(), "off by default");
        faults.set(FaultSettings {
            lost_answer_rate: Some(1.0),
            answer_delay_ms: Some(7),
            ..Default::default()
        });
        assert!(faults.lose_answer());
        assert_eq!(faults.answer_delay(), Some(Duration::from_millis(7)));
        faults.set(FaultSettings {
            lost_answer_rate: Some(0.0),
            answer_delay_ms: Some(0),
            ..Default::default()
        });
        assert!(!faults.lose_answer());
        assert_eq!(faults.answer_delay(), None);
    }
}
