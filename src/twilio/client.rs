//! The HTTP client of one Twilio account: the Senders API (`/v2/Channels/Senders`, on the
//! messaging host) and the account's Error Log (`/v1/Alerts`, on the monitor host).
//!
//! Every attempt (retries included) first takes a token from the account's [`RequestBudget`],
//! runs under the per-request timeout, and is traced with method, route template, status,
//! attempt and account SID; never with credentials, bodies or codes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::budget::{BudgetConfig, RequestBudget};
use super::credentials::Credentials;
use super::error::{TwilioError, parse_retry_after};
use super::models::{
    Alert, AlertPage, Configuration, CreateSenderRequest, Sender, SenderPage, UpdateSenderRequest,
    VerificationCode, is_valid_sender_sid,
};
use super::retry::RetryPolicy;
use crate::leader::{Fence, Fenced};

/// Route templates, as traced (the SID goes in its own field).
const ROUTE_LIST: &str = "/v2/Channels/Senders";
const ROUTE_INSTANCE: &str = "/v2/Channels/Senders/{Sid}";
const ROUTE_ALERTS: &str = "/v1/Alerts";
const ROUTE_INCOMING_NUMBERS: &str = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json";

/// Twilio's hosts, one per product.
pub const MESSAGING_URL: &str = "https://messaging.twilio.com";
pub const MONITOR_URL: &str = "https://monitor.twilio.com";
pub const API_URL: &str = "https://api.twilio.com";

/// The largest answer body the client reads. A full list page (1 000 senders, Twilio's largest
/// `PageSize`) at a few KiB each stays well under it; anything bigger is not a Senders API
/// answer, and reading it whole would let a broken proxy or a hostile endpoint exhaust the
/// operator's memory (every concurrent reconcile may hold one body).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A walk through the list gives up after this many pages: with the default page size that is 100 000
/// senders, far more than one account can hold, so hitting it means the pages never end.
const MAX_PAGES: usize = 1_000;

/// Told about every attempt a client makes, for metrics. The client knows nothing of how
/// they are kept.
pub trait RequestObserver: Send + Sync {
    /// One attempt of `operation` (create, fetch, update, delete, list) ended with `outcome`:
    /// the HTTP status ("202", "429", …), or "timeout", "connect", "transport" or "too_large"
    /// (a body over [`MAX_RESPONSE_BYTES`]).
    fn attempt(&self, operation: &'static str, outcome: &str, elapsed: Duration);
    /// A request waited this long for the account's request budget.
    fn budget_wait(&self, waited: Duration);
}

/// An optional [`RequestObserver`], shared by every client built with the same config.
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<dyn RequestObserver>>);

impl Observer {
    pub fn new(observer: Arc<dyn RequestObserver>) -> Self {
        Self(Some(observer))
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}

impl PartialEq for Observer {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for Observer {}

/// Settings shared by all clients the operator makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The Senders API's base URL (messaging): scheme, host and optional path prefix; the
    /// simulator or a proxy in tests and air-gapped setups, Twilio otherwise.
    pub base_url: String,
    /// The Error Log's base URL (monitor), the same way.
    pub monitor_url: String,
    /// The REST API's base URL (api v2010), the same way.
    pub api_url: String,
    /// Whole-request limit (connect, send, read the answer) for each attempt.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Size of each account's bucket (the controller keeps one per account).
    pub budget: BudgetConfig,
    /// `PageSize` of every list (senders, alerts).
    pub list_page_size: u32,
    /// Told about every attempt (metrics).
    pub observer: Observer,
    /// No request starts past it, and one in flight is dropped when it is reached: a leader's
    /// renew deadline (open without leader election).
    pub fence: Fence,
}

impl Default for ClientConfig {
    /// 15 s per request: Twilio answers Senders calls in well under a second, but create does
    /// work at Meta before its 202. 5 s to connect. 100 senders per page keeps a full resync of
    /// a large account to a few requests.
    fn default() -> Self {
        Self {
            base_url: MESSAGING_URL.to_string(),
            monitor_url: MONITOR_URL.to_string(),
            api_url: API_URL.to_string(),
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            budget: BudgetConfig::default(),
            list_page_size: 100,
            observer: Observer::default(),
            fence: Fence::open(),
        }
    }
}

impl ClientConfig {
    /// Every Twilio product at one base URL (the simulator, or a proxy that routes by path).
    pub fn all_products_at(mut self, base_url: &str) -> Self {
        self.base_url = base_url.to_string();
        self.monitor_url = base_url.to_string();
        self.api_url = base_url.to_string();
        self
    }
}

/// Whether a request may be sent again after a failure that left its fate unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replay {
    /// Reads, deletes (a repeat answers 20404, which callers take as done), profile/webhook
    /// updates (same body, same result): retry on any retryable error.
    Safe,
    /// Create and OTP submission: retry only when Twilio certainly did not receive it.
    OnlyUnprocessed,
}

/// An answer of any status: status, `Retry-After`, body.
type Answer = (StatusCode, Option<Duration>, Vec<u8>);

/// One logical request: what it sends, and how freely it may be sent again.
struct Call<'a> {
    method: Method,
    route: &'static str,
    sid: Option<&'a str>,
    url: String,
    body: Option<Body>,
    replay: Replay,
}

/// A request body, with the verification code it carries: whatever the answer quotes of it, no
/// error made from that answer may hold it (see [`SendersClient::attempt`]). No `Debug`: the
/// JSON holds the code.
struct Body {
    json: Vec<u8>,
    code: Option<VerificationCode>,
}

impl Body {
    fn of(request: &impl RequestBody) -> Result<Self, TwilioError> {
        let json = serde_json::to_vec(request).map_err(|e| {
            TwilioError::InvalidArgument(format!("request body: {}", e.classify_str()))
        })?;
        Ok(Self {
            json,
            code: request
                .configuration()
                .and_then(|c| c.verification_code.clone()),
        })
    }
}

/// A request body the client sends. Each says where its code would be, so that a new kind of
/// body cannot send one the client does not know to keep out of errors.
trait RequestBody: Serialize {
    fn configuration(&self) -> Option<&Configuration>;
}

impl RequestBody for CreateSenderRequest {
    fn configuration(&self) -> Option<&Configuration> {
        self.configuration.as_ref()
    }
}

impl RequestBody for UpdateSenderRequest {
    fn configuration(&self) -> Option<&Configuration> {
        self.configuration.as_ref()
    }
}

/// Senders API client for one account. Cheap to clone.
#[derive(Clone)]
pub struct SendersClient {
    http: reqwest::Client,
    base_url: String,
    monitor_url: String,
    api_url: String,
    credentials: Arc<Credentials>,
    /// What its caches are shared under: the account, unless Twilio could not confirm it.
    scope: Arc<str>,
    /// Why Twilio could not confirm the account, if it could not.
    unverified: Option<Arc<str>>,
    retry: RetryPolicy,
    budget: RequestBudget,
    list_page_size: u32,
    observer: Observer,
    fence: Fence,
}

impl std::fmt::Debug for SendersClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendersClient")
            .field("account_sid", &self.account_sid())
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SendersClient {
    /// A client for the account of `credentials`. `budget` should be that account's shared
    /// bucket (the controller's state keeps one per account).
    pub fn new(
        credentials: Credentials,
        config: &ClientConfig,
        budget: RequestBudget,
    ) -> Result<Self, TwilioError> {
        credentials.validate()?;
        let base_url = normalize_base_url(&config.base_url)?;
        let monitor_url = normalize_base_url(&config.monitor_url)?;
        let api_url = normalize_base_url(&config.api_url)?;
        if config.retry.max_attempts == 0 {
            return Err(TwilioError::InvalidConfig(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        // reqwest is built with `rustls-no-provider`: the process must pick the crypto
        // provider. Installing is idempotent in effect: a second call fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("senderops/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // Twilio's API never redirects. Following one would repeat a create elsewhere, or
            // (307/308) send an OTP body to whatever host a proxy or a wrong base URL names.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TwilioError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url,
            monitor_url,
            api_url,
            scope: Arc::from(credentials.account_sid()),
            unverified: None,
            credentials: Arc::new(credentials),
            retry: config.retry,
            budget,
            list_page_size: config.list_page_size.clamp(1, 1000),
            observer: config.observer.clone(),
            fence: config.fence.clone(),
        })
    }

    pub fn account_sid(&self) -> &str {
        self.credentials.account_sid()
    }

    /// The key under which what is learnt with this client (lists, marks, the Error Log) may
    /// be shared with other clients: the account SID unless [`SendersClient::unverified`]
    /// made it one of its own.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Why Twilio could not confirm that these credentials act for `account_sid`, if so.
    pub fn unverified(&self) -> Option<&str> {
        self.unverified.as_deref()
    }

    /// This client, its account not confirmed (`why`): what it learns is kept under `scope`,
    /// shared with no other credentials.
    pub fn unconfirmed(mut self, scope: &str, why: &str) -> Self {
        self.scope = Arc::from(scope);
        self.unverified = Some(Arc::from(why));
        self
    }

    /// `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json?PageSize=1`: a read
    /// under the account's own path, which Twilio answers only for credentials of that
    /// account (or its parent). An API key is not tied to `accountSid` by anything else: the
    /// Senders API acts for whichever account the key belongs to.
    pub async fn verify_account(&self) -> Result<(), TwilioError> {
        let mut url = Url::parse(&self.api_url)
            .map_err(|e| TwilioError::InvalidConfig(format!("API URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| TwilioError::InvalidConfig("API URL cannot have a path".into()))?
            .pop_if_empty()
            .extend([
                "2010-04-01",
                "Accounts",
                self.account_sid(),
                "IncomingPhoneNumbers.json",
            ]);
        url.query_pairs_mut().append_pair("PageSize", "1");
        let call = Call {
            method: Method::GET,
            route: ROUTE_INCOMING_NUMBERS,
            sid: None,
            url: url.into(),
            body: None,
            replay: Replay::Safe,
        };
        let _: IncomingPhoneNumberPage = self.execute(call, decode).await?;
        Ok(())
    }

    /// `POST /v2/Channels/Senders`.
    ///
    /// Not idempotent at Twilio: if a create times out or gets a 500 it may still have
    /// registered the number, and a second create for it would then fail (63110, or a second
    /// OTP request). So this retries only when Twilio certainly did not receive the request
    /// (429, 503, connection refused); on any other failure the caller must list
    /// (`find_by_sender_id`) and adopt the sender before creating again.
    pub async fn create(&self, request: &CreateSenderRequest) -> Result<Sender, TwilioError> {
        let call = Call {
            method: Method::POST,
            route: ROUTE_LIST,
            sid: None,
            url: format!("{}{ROUTE_LIST}", self.base_url),
            body: Some(Body::of(request)?),
            replay: Replay::OnlyUnprocessed,
        };
        self.execute(call, decode).await
    }

    /// `GET /v2/Channels/Senders/{Sid}`.
    pub async fn fetch(&self, sid: &str) -> Result<Sender, TwilioError> {
        let call = Call {
            method: Method::GET,
            route: ROUTE_INSTANCE,
            sid: Some(sid),
            url: self.instance_url(sid)?,
            body: None,
            replay: Replay::Safe,
        };
        self.execute(call, decode).await
    }

    /// `POST /v2/Channels/Senders/{Sid}`. An update carrying a verification code is treated
    /// like create (retried only if certainly unprocessed): resubmitting an OTP that Twilio
    /// already accepted can fail or burn the code.
    pub async fn update(
        &self,
        sid: &str,
        request: &UpdateSenderRequest,
    ) -> Result<Sender, TwilioError> {
        let call = Call {
            method: Method::POST,
            route: ROUTE_INSTANCE,
            sid: Some(sid),
            url: self.instance_url(sid)?,
            body: Some(Body::of(request)?),
            replay: if request.submits_verification_code() {
                Replay::OnlyUnprocessed
            } else {
                Replay::Safe
            },
        };
        self.execute(call, decode).await
    }

    /// `DELETE /v2/Channels/Senders/{Sid}`. A sender that is already gone yields an error of
    /// class `NotFound`, which callers treat as success.
    pub async fn delete(&self, sid: &str) -> Result<(), TwilioError> {
        let call = Call {
            method: Method::DELETE,
            route: ROUTE_INSTANCE,
            sid: Some(sid),
            url: self.instance_url(sid)?,
            body: None,
            replay: Replay::Safe,
        };
        self.execute(call, |_, _| Ok(())).await
    }

    /// One page of `GET /v2/Channels/Senders?Channel=whatsapp`. `page_size` is clamped to
    /// Twilio's 1..=1000.
    pub async fn list_page(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<SenderPage, TwilioError> {
        let mut url = Url::parse(&format!("{}{ROUTE_LIST}", self.base_url))
            .map_err(|e| TwilioError::InvalidConfig(format!("base URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("Channel", "whatsapp")
                .append_pair("PageSize", &page_size.clamp(1, 1000).to_string());
            if let Some(token) = page_token {
                query.append_pair("PageToken", token);
            }
        }
        self.get_page(ROUTE_LIST, url.into()).await
    }

    /// Every WhatsApp sender of the account, following `meta.next_page_url`.
    pub async fn list_all(&self) -> Result<Vec<Sender>, TwilioError> {
        let mut all = Vec::new();
        self.list_each(|sender| all.push(sender)).await?;
        Ok(all)
    }

    /// Every WhatsApp sender of the account handed to `each` page by page, so that a caller
    /// that indexes them never holds the whole list twice.
    pub async fn list_each(&self, mut each: impl FnMut(Sender)) -> Result<(), TwilioError> {
        let first = self.list_page(self.list_page_size, None).await?;
        self.walk_pages(ROUTE_LIST, &self.base_url, Some(CHANNEL), first, |page| {
            page.into_iter().for_each(&mut each);
            false
        })
        .await
    }

    /// `GET /v1/Alerts` on the monitor host: the account's Error Log entries at level `error`
    /// from `since` on (Twilio's `StartDate` is inclusive, to the second), handed to `each`
    /// page by page.
    pub async fn alerts_since(
        &self,
        since: Timestamp,
        mut each: impl FnMut(Alert),
    ) -> Result<(), TwilioError> {
        let mut url = Url::parse(&format!("{}{ROUTE_ALERTS}", self.monitor_url))
            .map_err(|e| TwilioError::InvalidConfig(format!("monitor URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("LogLevel", "error")
            .append_pair(
                "StartDate",
                &since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
            .append_pair("PageSize", &self.list_page_size.clamp(1, 1000).to_string());
        let first: AlertPage = self.get_page(ROUTE_ALERTS, url.into()).await?;
        self.walk_pages(ROUTE_ALERTS, &self.monitor_url, None, first, |page| {
            page.into_iter().for_each(&mut each);
            false
        })
        .await
    }

    /// Walks from `page` until `next_page_url` runs out or `on_page` says it has seen enough.
    async fn walk_pages<P: Page>(
        &self,
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
            page = self.get_page(route, next).await?;
        }
    }

    async fn get_page<P: DeserializeOwned>(
        &self,
        route: &'static str,
        url: String,
    ) -> Result<P, TwilioError> {
        let call = Call {
            method: Method::GET,
            route,
            sid: None,
            url,
            body: None,
            replay: Replay::Safe,
        };
        self.execute(call, decode).await
    }

    fn instance_url(&self, sid: &str) -> Result<String, TwilioError> {
        if !is_valid_sender_sid(sid) {
            return Err(TwilioError::InvalidArgument(format!(
                "sender SID must match ^XE[0-9a-fA-F]{{32}}$ (got {} characters)",
                sid.len()
            )));
        }
        Ok(format!("{}{ROUTE_LIST}/{sid}", self.base_url))
    }

    /// Sends one logical request with budget, timeout and retries; returns the 2xx answer's
    /// body as `read` makes it.
    async fn execute<T>(
        &self,
        call: Call<'_>,
        read: impl Fn(&'static str, &[u8]) -> Result<T, TwilioError>,
    ) -> Result<T, TwilioError> {
        let operation = operation_name(&call.method, call.route);
        // info, not debug: the retry warnings inside must carry account and route at the
        // operator's default log level.
        let span = tracing::info_span!(
            "twilio_request",
            http.method = %call.method,
            route = call.route,
            account_sid = %self.account_sid(),
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
        // Only requests the budget held back are observed, so the histogram's count is the
        // number of throttled requests (a measured wait is never exactly zero).
        if !self.budget.try_acquire() {
            let queued = tokio::time::Instant::now();
            self.budget.acquire().await;
            if let Some(observer) = &self.observer.0 {
                observer.budget_wait(queued.elapsed());
            }
        }
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
                .header(CONTENT_TYPE, "application/json")
                .body(body.json.clone());
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
        if let Some(observer) = &self.observer.0 {
            let result = match &outcome {
                Ok((status, _, _)) => status.as_str().to_string(),
                Err(TwilioError::Timeout) => "timeout".to_string(),
                Err(TwilioError::Connect(_)) => "connect".to_string(),
                Err(TwilioError::ResponseTooLarge { .. }) => "too_large".to_string(),
                Err(_) => "transport".to_string(),
            };
            observer.attempt(operation, &result, elapsed);
        }
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
}

/// The Senders list's required filter: Twilio answers 20001 without it.
const CHANNEL: (&str, &str) = ("Channel", "whatsapp");

/// A list page of Twilio's shape: items and `meta.next_page_url`.
trait Page: DeserializeOwned {
    type Item;
    fn split(self) -> (Vec<Self::Item>, Option<String>);
}

impl Page for SenderPage {
    type Item = Sender;
    fn split(self) -> (Vec<Sender>, Option<String>) {
        (self.senders, self.meta.next_page_url)
    }
}

impl Page for AlertPage {
    type Item = Alert;
    fn split(self) -> (Vec<Alert>, Option<String>) {
        (self.alerts, self.meta.next_page_url)
    }
}

/// Twilio's `next_page_url` names Twilio's host. Only its path and query are kept and put under
/// our base URL (`base`), so a proxy, a path prefix or the simulator keep working. A required
/// query parameter (`keep`) is added if the link lost it.
fn rebase_next_page(
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

/// The Senders API operation a method on a route performs, as metrics name it.
fn operation_name(method: &Method, route: &str) -> &'static str {
    match (method.as_str(), route) {
        ("POST", ROUTE_LIST) => "create",
        ("GET", ROUTE_LIST) => "list",
        ("GET", ROUTE_ALERTS) => "list_alerts",
        ("GET", ROUTE_INCOMING_NUMBERS) => "verify_account",
        ("GET", _) => "fetch",
        ("POST", _) => "update",
        ("DELETE", _) => "delete",
        _ => "other",
    }
}

/// A page of v2010's incoming phone numbers: only its shape is checked (the answer of a
/// Twilio REST API, not some other server's 200).
#[derive(serde::Deserialize)]
struct IncomingPhoneNumberPage {
    #[serde(rename = "incoming_phone_numbers")]
    _numbers: Vec<serde::de::IgnoredAny>,
}

/// Parses a success body. The message names where the JSON broke but never quotes it: a
/// response may echo the verification code.
fn decode<T: DeserializeOwned>(route: &str, bytes: &[u8]) -> Result<T, TwilioError> {
    serde_json::from_slice(bytes).map_err(|e| {
        TwilioError::Decode(format!(
            "{route}: {} at line {} column {}",
            e.classify_str(),
            e.line(),
            e.column()
        ))
    })
}

trait ClassifyStr {
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

fn normalize_base_url(raw: &str) -> Result<String, TwilioError> {
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
    use crate::twilio::budget::BudgetConfig;

    fn client(base_url: &str) -> SendersClient {
        let config = ClientConfig {
            base_url: base_url.to_string(),
            ..ClientConfig::default()
        };
        SendersClient::new(
            Credentials::auth_token("AC0123456789abcdef0123456789abcdef", "secret-token"),
            &config,
            RequestBudget::new(BudgetConfig::default()),
        )
        .unwrap()
    }

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
    }

    #[tokio::test]
    async fn rejects_bad_configuration_and_sids() {
        let creds = || Credentials::auth_token("AC0123456789abcdef0123456789abcdef", "t");
        let budget = || RequestBudget::new(BudgetConfig::default());
        for bad in [
            "ftp://example.com",
            "https://user:pw@example.com",
            "not a url",
        ] {
            let config = ClientConfig {
                base_url: bad.into(),
                ..ClientConfig::default()
            };
            let err = SendersClient::new(creds(), &config, budget()).unwrap_err();
            assert!(matches!(err, TwilioError::InvalidConfig(_)), "{bad}: {err}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        let c = client("https://messaging.twilio.com");
        assert_eq!(c.account_sid(), "AC0123456789abcdef0123456789abcdef");
        let err = c.fetch("../Services").await.unwrap_err();
        assert!(matches!(err, TwilioError::InvalidArgument(_)), "{err}");
        assert!(!format!("{c:?}").contains("secret-token"));
    }

    #[test]
    fn decode_errors_do_not_quote_the_body() {
        let err = decode::<Sender>(ROUTE_INSTANCE, br#"{"sid": 123456, "status": "#).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("123456"), "{shown}");
        assert!(shown.contains(ROUTE_INSTANCE), "{shown}");
    }
}
