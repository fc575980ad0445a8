//! One Twilio account's HTTP transport, shared by every product API (`senders`, `alerts`,
//! `accounts`): authentication, the account's request budget, retries that honour
//! `Retry-After`, the per-request timeout and the leader's fence, a cap on answer bodies, paging
//! (Twilio's `meta.next_page_url` and v2010's `next_page_uri`, both links put under our base
//! URL), redaction of the verification code a body carries, and the observer (metrics).
//!
//! Every attempt (retries included) first takes a token from the account's [`RequestBudget`],
//! runs under the per-request timeout, and is traced with method, route template, status,
//! attempt and account SID; never with credentials, bodies or codes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::budget::RequestBudget;
use super::client::Observer;
use super::credentials::Credentials;
use super::error::{TwilioError, parse_retry_after};
use super::models::VerificationCode;
use super::retry::RetryPolicy;
use crate::leader::{Fence, Fenced};

/// The largest answer body the client reads. A full list page (1 000 senders, Twilio's largest
/// `PageSize`) at a few KiB each stays well under it; anything bigger is not a Twilio answer,
/// and reading it whole would let a broken proxy or a hostile endpoint exhaust the operator's
/// memory (every concurrent reconcile may hold one body).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A walk through a list gives up after this many pages: with the default page size that is
/// 100 000 items, far more than one account can hold, so hitting it means the pages never end.
const MAX_PAGES: usize = 1_000;

/// Whether a request may be sent again after a failure that left its fate unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Reads, deletes (a repeat answers 20404, which callers take as done), profile/webhook
    /// updates (same body, same result): retry on any retryable error.
    Safe,
    /// Create and OTP submission: retry only when Twilio certainly did not receive it.
    OnlyUnprocessed,
}

/// An answer of any status: status, `Retry-After`, body.
type Answer = (StatusCode, Option<Duration>, Vec<u8>);

/// One logical request: what it sends, and how freely it may be sent again.
pub struct Call<'a> {
    /// As metrics name it (`create`, `fetch`, `list_alerts`, …).
    pub operation: &'static str,
    pub method: Method,
    /// The route template, as traced (the SID goes in its own field).
    pub route: &'static str,
    pub sid: Option<&'a str>,
    pub url: String,
    pub body: Option<Body>,
    pub replay: Replay,
}

/// A request body, with the verification code it carries: whatever the answer quotes of it, no
/// error made from that answer may hold it (see [`Transport::attempt`]). No `Debug`: the body
/// may hold the code.
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub code: Option<VerificationCode>,
}

/// A list page of Twilio's shape: its items, and the link to the next page (`meta.next_page_url`
/// on the v1/v2 hosts, `next_page_uri` on v2010's), if any.
pub trait Page: DeserializeOwned {
    type Item;
    fn split(self) -> (Vec<Self::Item>, Option<String>);
}

/// Sends one account's requests. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    pub(super) http: reqwest::Client,
    pub(super) credentials: Arc<Credentials>,
    pub(super) retry: RetryPolicy,
    pub(super) budget: RequestBudget,
    pub(super) observer: Observer,
    pub(super) fence: Fence,
}

impl Transport {
    pub fn account_sid(&self) -> &str {
        self.credentials.account_sid()
    }

    /// Sends one logical request with budget, timeout and retries; returns the 2xx answer's
    /// body as `read` makes it.
    pub async fn execute<T>(
        &self,
        call: Call<'_>,
        read: impl Fn(&'static str, &[u8]) -> Result<T, TwilioError>,
    ) -> Result<T, TwilioError> {
        let operation = call.operation;
        // info, not debug: the retry warnings inside must carry account and route at the
        // operator's default log level.
        let span = tracing::info_span!(
            "twilio_request",
            http.method = %call.method,
            route = call.route,
            account_sid = %self.credentials.account_sid(),
            sid = call.sid.unwrap_or(""),
        );
        let should_retry = |err: &TwilioError| match call.replay {
            // This replica may no longer lead: nothing more goes out.
            _ if matches!(err, TwilioError::Fenced) => false,
            // A garbled or oversized answer would most likely come back the same at once.
            Replay::Safe => {
                err.is_retryable()
                    && !matches!(
                        err,
                        TwilioError::Decode(_) | TwilioError::ResponseTooLarge { .. }
                    )
            }
            Replay::OnlyUnprocessed => err.is_retryable() && err.certainly_not_processed(),
        };
        let result = self
            .retry
            .run(should_retry, |attempt| {
                self.attempt(operation, attempt, &call, &read)
            })
            .instrument(span.clone())
            .await;
        if let Err(err) = &result {
            span.in_scope(|| {
                tracing::debug!(error = %err, twilio_code = err.twilio_code(), "Twilio request failed");
            });
        }
        result
    }

    /// One attempt, and the one place where the errors of a request are made: from its
    /// answer, its transport or `read`, and redacted of the code its body carries before the
    /// retry loop, a log line or a caller sees them.
    async fn attempt<T>(
        &self,
        operation: &'static str,
        attempt: u32,
        call: &Call<'_>,
        read: &impl Fn(&'static str, &[u8]) -> Result<T, TwilioError>,
    ) -> Result<T, TwilioError> {
        let secret = call
            .body
            .as_ref()
            .and_then(|body| body.code.as_ref())
            .map_or("", VerificationCode::expose);
        let (answer, elapsed) = self.exchange(operation, attempt, call).await;
        let answered = answer.is_ok();
        let result = match answer {
            Ok((status, _, bytes)) if status.is_success() => read(call.route, &bytes),
            Ok((status, retry_after, bytes)) => Err(TwilioError::from_response_redacting(
                status.as_u16(),
                &String::from_utf8_lossy(&bytes),
                retry_after,
                secret,
            )),
            Err(err) => Err(err),
        }
        .map_err(|err| err.redacting(secret));
        if let Err(err) = &result
            && !answered
        {
            let elapsed_ms = elapsed.as_millis() as u64;
            tracing::debug!(attempt, elapsed_ms, error = %err, "Twilio request did not complete");
        }
        result
    }

    /// Sends the request once and reads the whole answer, whatever its status; also says how
    /// long that took (the wait for the budget left out).
    async fn exchange(
        &self,
        operation: &'static str,
        attempt: u32,
        call: &Call<'_>,
    ) -> (Result<Answer, TwilioError>, Duration) {
        self.take_budget().await;
        // Checked after the wait for the budget, which may have outlasted the fence.
        if self.fence.is_passed() {
            return (Err(TwilioError::Fenced), Duration::ZERO);
        }
        let started = tokio::time::Instant::now();
        let mut request = self
            .http
            .request(call.method.clone(), &call.url)
            .basic_auth(
                self.credentials.basic_auth_username(),
                Some(self.credentials.basic_auth_password()),
            )
            .header(ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, body.content_type)
                .body(body.bytes.clone());
        }
        let outcome = self
            .fence
            .guard(async {
                let response = request.send().await.map_err(transport_error)?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let bytes = read_body(response, MAX_RESPONSE_BYTES).await?;
                Ok::<_, TwilioError>((status, retry_after, bytes))
            })
            .await
            .unwrap_or_else(|fenced| match fenced {
                Fenced::BeforeStart => Err(TwilioError::Fenced),
                // Dropped on the way: Twilio may have acted on it, as after a timeout.
                Fenced::InFlight => Err(TwilioError::Timeout),
            });
        if matches!(outcome, Err(TwilioError::Fenced)) {
            return (outcome, Duration::ZERO);
        }
        let elapsed = started.elapsed();
        self.observe(operation, &outcome, elapsed);
        if let Ok((status, _, _)) = &outcome {
            tracing::debug!(
                attempt,
                status = status.as_u16(),
                elapsed_ms = elapsed.as_millis() as u64,
                "Twilio answered"
            );
        }
        (outcome, elapsed)
    }

    /// Takes a token from the account's request budget, waiting for one if need be. Only
    /// requests the budget held back are observed, so the histogram's count is the number of
    /// throttled requests (a measured wait is never exactly zero).
    async fn take_budget(&self) {
        if !self.budget.try_acquire() {
            let queued = tokio::time::Instant::now();
            self.budget.acquire().await;
            if let Some(observer) = &self.observer.0 {
                observer.budget_wait(queued.elapsed());
            }
        }
    }

    /// Tells the observer how an attempt that went out ended: its HTTP status, or what kept it
    /// from having one.
    fn observe(
        &self,
        operation: &'static str,
        outcome: &Result<Answer, TwilioError>,
        elapsed: Duration,
    ) {
        if let Some(observer) = &self.observer.0 {
            let result = match outcome {
                Ok((status, _, _)) => status.as_str().to_string(),
                Err(TwilioError::Timeout) => "timeout".to_string(),
                Err(TwilioError::Connect(_)) => "connect".to_string(),
                Err(TwilioError::ResponseTooLarge { .. }) => "too_large".to_string(),
                Err(_) => "transport".to_string(),
            };
            observer.attempt(operation, &result, elapsed);
        }
    }

    /// Walks from `page` until its next-page link runs out or `on_page` says it has seen enough.
    pub async fn walk_pages<P: Page>(
        &self,
        operation: &'static str,
        route: &'static str,
        base: &str,
        keep: Option<(&str, &str)>,
        mut page: P,
        mut on_page: impl FnMut(Vec<P::Item>) -> bool,
    ) -> Result<(), TwilioError> {
        let mut seen = HashSet::new();
        loop {
            let (items, next) = page.split();
            let done = on_page(items);
            let next = match next.as_deref().map(str::trim) {
                Some(next) if !done && !next.is_empty() => rebase_next_page(base, next, keep)?,
                _ => return Ok(()),
            };
            if !seen.insert(next.clone()) {
                return Err(TwilioError::Pagination(format!(
                    "next_page_url repeats ({})",
                    strip_origin(&next)
                )));
            }
            if seen.len() >= MAX_PAGES {
                return Err(TwilioError::Pagination(format!(
                    "more than {MAX_PAGES} pages"
                )));
            }
            page = self.get_page(operation, route, next).await?;
        }
    }

    /// One page of a list at `url`.
    pub async fn get_page<P: DeserializeOwned>(
        &self,
        operation: &'static str,
        route: &'static str,
        url: String,
    ) -> Result<P, TwilioError> {
        let call = Call {
            operation,
            method: Method::GET,
            route,
            sid: None,
            url,
            body: None,
            replay: Replay::Safe,
        };
        self.execute(call, decode).await
    }
}

/// Twilio's `next_page_url` names Twilio's host. Only its path and query are kept and put under
/// our base URL (`base`), so a proxy, a path prefix or the simulator keep working. A required
/// query parameter (`keep`) is added if the link lost it.
pub(super) fn rebase_next_page(
    base: &str,
    next: &str,
    keep: Option<(&str, &str)>,
) -> Result<String, TwilioError> {
    let parsed = match Url::parse(next) {
        Ok(url) => url,
        // Relative link: resolve against a dummy origin just to split path and query.
        Err(_) => Url::parse("http://relative.invalid")
            .and_then(|origin| origin.join(next))
            .map_err(|e| TwilioError::Pagination(format!("bad next_page_url: {e}")))?,
    };
    let mut url = Url::parse(&format!("{base}{}", parsed.path()))
        .map_err(|e| TwilioError::Pagination(format!("bad next_page_url: {e}")))?;
    url.set_query(parsed.query());
    if let Some((key, value)) = keep
        && !url.query_pairs().any(|(k, _)| k == key)
    {
        url.query_pairs_mut().append_pair(key, value);
    }
    Ok(url.into())
}

/// The body of `response`, refused as soon as it (or its declared length) passes `limit`: a
/// chunk at a time, so a hostile endpoint can make the client read at most `limit` bytes.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, TwilioError> {
    if response
        .content_length()
        .is_some_and(|declared| declared > limit as u64)
    {
        return Err(TwilioError::ResponseTooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(TwilioError::ResponseTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a success body. The message names where the JSON broke but never quotes it: a
/// response may echo the verification code.
pub(super) fn decode<T: DeserializeOwned>(route: &str, bytes: &[u8]) -> Result<T, TwilioError> {
    serde_json::from_slice(bytes).map_err(|e| {
        TwilioError::Decode(format!(
            "{route}: {} at line {} column {}",
            e.classify_str(),
            e.line(),
            e.column()
        ))
    })
}

pub(super) trait ClassifyStr {
    fn classify_str(&self) -> &'static str;
}

impl ClassifyStr for serde_json::Error {
    fn classify_str(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "JSON of an unexpected shape",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Maps reqwest's failure to ours. A connect failure (refused, DNS, connect timeout) means the
/// request never left, which matters for create.
fn transport_error(err: reqwest::Error) -> TwilioError {
    if err.is_connect() {
        TwilioError::Connect(error_chain(&err))
    } else if err.is_timeout() {
        TwilioError::Timeout
    } else if err.is_builder() {
        TwilioError::InvalidConfig(error_chain(&err))
    } else {
        TwilioError::Transport(error_chain(&err))
    }
}

/// The error with its causes ("…: Connection refused"), which reqwest's Display leaves out.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(super) fn normalize_base_url(raw: &str) -> Result<String, TwilioError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| TwilioError::InvalidConfig(format!("base URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TwilioError::InvalidConfig(format!(
            "base URL must be http(s), got {}",
            url.scheme()
        )));
    }
    // Credentials travel in the Authorization header only; a URL is logged.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TwilioError::InvalidConfig(
            "base URL must not contain credentials".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(TwilioError::InvalidConfig(
            "base URL must not have a query or fragment".into(),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn strip_origin(url: &str) -> String {
    Url::parse(url)
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        })
        .unwrap_or_else(|_| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::models::Sender;

    const CHANNEL: (&str, &str) = ("Channel", "whatsapp");

    #[test]
    fn next_page_links_are_rebased_onto_the_base_url() {
        let base = normalize_base_url("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            rebase_next_page(
                &base,
                "https://messaging.twilio.com/v2/Channels/Senders?PageSize=2&Page=1&PageToken=PT1&Channel=whatsapp",
                Some(CHANNEL),
            )
            .unwrap(),
            "http://127.0.0.1:9/prefix/v2/Channels/Senders?PageSize=2&Page=1&PageToken=PT1&Channel=whatsapp"
        );
        assert_eq!(
            rebase_next_page(&base, "/v2/Channels/Senders?PageToken=x", Some(CHANNEL)).unwrap(),
            "http://127.0.0.1:9/prefix/v2/Channels/Senders?PageToken=x&Channel=whatsapp",
            "relative links work and Channel is restored"
        );
        assert_eq!(
            rebase_next_page(
                &base,
                "https://monitor.twilio.com/v1/Alerts?PageSize=50&Page=1&PageToken=PA1",
                None,
            )
            .unwrap(),
            "http://127.0.0.1:9/prefix/v1/Alerts?PageSize=50&Page=1&PageToken=PA1",
            "the Error Log's links need no Channel"
        );
        assert_eq!(
            rebase_next_page(
                &base,
                "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PageSize=50&Page=1&PageToken=PN1",
                None,
            )
            .unwrap(),
            "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PageSize=50&Page=1&PageToken=PN1",
            "v2010's next_page_uri is a path"
        );
    }

    #[test]
    fn decode_errors_do_not_quote_the_body() {
        let route = "/v2/Channels/Senders/{Sid}";
        let err = decode::<Sender>(route, br#"{"sid": 123456, "status": "#).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("123456"), "{shown}");
        assert!(shown.contains(route), "{shown}");
    }
}
