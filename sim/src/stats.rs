//! Request counters by route template and account, create attempts by number, lost answers by
//! route, and the one-line request log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::lock;
use crate::numbers_api::V2010_PREFIX;

#[derive(Debug, Default)]
pub struct Stats {
    counts: BTreeMap<(String, String, u16, Option<String>), u64>,
    /// Lost answers by method and route template.
    lost_answers: BTreeMap<(String, String), u64>,
    /// `POST /v2/Channels/Senders` by the number in its body, whatever the answer (refused
    /// by auth, a fault, a 63110 or accepted): a no-duplicate check counts attempts, since a
    /// refused second create is as harmful as an accepted one (it asks Meta for a new code).
    create_attempts: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct LostAnswers {
    pub method: String,
    pub route: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct RequestCount {
    pub method: String,
    pub route: String,
    pub status: u16,
    /// The authenticated account; `None` when authentication failed.
    pub account: Option<String>,
    pub count: u64,
}

impl Stats {
    pub fn record(&mut self, method: &str, route: &str, status: u16, account: Option<&str>) {
        *self
            .counts
            .entry((
                route.to_string(),
                method.to_string(),
                status,
                account.map(str::to_string),
            ))
            .or_default() += 1;
    }

    /// Sorted by route, then method, then status, then account.
    pub fn snapshot(&self) -> Vec<RequestCount> {
        self.counts
            .iter()
            .map(|((route, method, status, account), count)| RequestCount {
                method: method.clone(),
                route: route.clone(),
                status: *status,
                account: account.clone(),
                count: *count,
            })
            .collect()
    }

    /// A processed request whose answer was lost on purpose (it is counted by status too).
    pub fn record_lost_answer(&mut self, method: &str, route: &str) {
        *self
            .lost_answers
            .entry((method.to_string(), route.to_string()))
            .or_default() += 1;
    }

    pub fn lost_answers(&self) -> u64 {
        self.lost_answers.values().sum()
    }

    /// Sorted by route, then method.
    pub fn lost_answers_by_route(&self) -> Vec<LostAnswers> {
        let mut out: Vec<LostAnswers> = self
            .lost_answers
            .iter()
            .map(|((method, route), count)| LostAnswers {
                method: method.clone(),
                route: route.clone(),
                count: *count,
            })
            .collect();
        out.sort_by(|a, b| (&a.route, &a.method).cmp(&(&b.route, &b.method)));
        out
    }

    /// One more create for `phone_number` (E.164).
    pub fn record_create_attempt(&mut self, phone_number: &str) {
        *self
            .create_attempts
            .entry(phone_number.to_string())
            .or_default() += 1;
    }

    pub fn create_attempts(&self) -> &BTreeMap<String, u64> {
        &self.create_attempts
    }

    pub fn reset(&mut self) {
        *self = Stats::default();
    }
}

/// Whether a path or route template is one of Twilio's (Messaging `/v2/…`, Monitor `/v1/…`,
/// REST API `/2010-04-01/…`) rather than the control API's.
pub fn is_twilio_route(route: &str) -> bool {
    route.starts_with("/v2/") || route.starts_with("/v1/") || route.starts_with(V2010_PREFIX)
}

/// Set on a response by the auth layer so that the log can name the account.
#[derive(Debug, Clone)]
pub struct LoggedAccount(pub String);

/// Middleware: counts Twilio API requests (`/v2/…`, `/v1/…`, `/2010-04-01/…`) by route template and logs
/// every request on one line.
/// Only the method, route template, status and account SID are logged: never credentials,
/// bodies or codes.
pub async fn track(
    State(stats): State<Arc<Mutex<Stats>>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_string(),
        None => request.uri().path().to_string(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let account = response
        .extensions()
        .get::<LoggedAccount>()
        .map(|a| a.0.as_str());
    if is_twilio_route(&route) {
        lock(&stats).record(method.as_str(), &route, status, account);
    }
    let account = account.unwrap_or("-");
    tracing::info!(
        method = %method,
        route = %route,
        status,
        account = %account,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
