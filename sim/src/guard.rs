//! What every Twilio API route (`/v2/…`, `/v1/…` and `/2010-04-01/…`) goes through before and
//! after its handler: Basic auth (and v2010's account and permission checks), injected faults,
//! lost answers and a `Twilio-Request-Id`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::faults::{LoseAnswer, echoing};
use crate::numbers_api::{self, V2010_PREFIX};
use crate::stats::LoggedAccount;
use crate::twilio_api::LIST_ROUTE;
use crate::{Sim, lock};

/// The account a request authenticated as, for the handlers behind [`guard`].
#[derive(Debug, Clone)]
pub struct Authed(pub String);

/// Auth first (on a v2010 route with [`numbers_api::authorize`] too), then faults (latency,
/// rate limit, random errors), then the request (or, for a code submission under `echo_code`,
/// an answer quoting its code), then the answer faults (delay, loss). Every answer carries a
/// `Twilio-Request-Id`, as Twilio's do.
pub async fn guard(
    State(sim): State<Arc<Sim>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    // v2010 paths name the account: `{AccountSid}`.
    let path_account = params.ok().and_then(|params| {
        params
            .iter()
            .find(|(name, _)| *name == "AccountSid")
            .map(|(_, value)| value.to_string())
    });
    let request = match count_create_attempt(&sim, request).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let mut response = authenticated(&sim, request, path_account, next).await;
    let id = format!("RQ{:032x}", rand::random::<u128>());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("twilio-request-id", value);
    }
    response
}

async fn authenticated(
    sim: &Sim,
    mut request: Request,
    path_account: Option<String>,
    next: Next,
) -> Response {
    let principal = match sim.credentials.authenticate(request.headers()) {
        Ok(principal) => principal,
        Err(err) => return err.into_response(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if route.starts_with(V2010_PREFIX)
        && let Err(err) = numbers_api::authorize(&principal, path_account.as_deref())
    {
        // A 403's credential did authenticate: it is counted under its account, like any
        // answer after authentication; a 401 under none, like any other 401.
        let forbidden = err.status == StatusCode::FORBIDDEN;
        let mut response = err.into_response();
        if forbidden {
            response
                .extensions_mut()
                .insert(LoggedAccount(principal.account));
        }
        return response;
    }
    let account = principal.account;
    let method = request.method().as_str().to_string();
    let faulty = lock(&sim.faults).apply_to(&method, &route);
    let latency = lock(&sim.faults).latency().filter(|_| faulty);
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let fault = match faulty {
        true => lock(&sim.faults).check(&account, Instant::now()),
        false => Ok(()),
    };
    let echo = lock(&sim.faults).echo_code().filter(|_| faulty);
    let mut response = match fault {
        Ok(()) => {
            request.extensions_mut().insert(Authed(account.clone()));
            let response = match echo {
                Some(echo) => echoing(echo, request, next).await,
                None => next.run(request).await,
            };
            match faulty {
                true => processed(sim, &account, &method, &route, response).await,
                false => response,
            }
        }
        Err(err) => err.into_response(),
    };
    response.extensions_mut().insert(LoggedAccount(account));
    response
}

/// The largest body a create may have; the handlers' own limit (axum's default) is the same.
pub(crate) const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Counts a create by the number in its body before anything can refuse it (auth, faults,
/// validation), so that attempts refused in any way are seen. The body is read and put back.
async fn count_create_attempt(sim: &Sim, request: Request) -> Result<Request, Response> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    if request.method() != axum::http::Method::POST || route != Some(LIST_ROUTE) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| StatusCode::PAYLOAD_TOO_LARGE.into_response())?;
    if let Some(phone) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .as_ref()
        .and_then(|body| body.get("sender_id"))
        .and_then(Value::as_str)
        .map(phone_of)
    {
        lock(&sim.stats).record_create_attempt(&phone);
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// `whatsapp:+15005550006` (any case of the prefix) → `+15005550006`.
fn phone_of(sender_id: &str) -> String {
    let id = sender_id.trim();
    match id.get(..9) {
        Some(prefix) if prefix.eq_ignore_ascii_case("whatsapp:") => id[9..].to_string(),
        _ => id.to_string(),
    }
}

/// The request has been handled (its changes are made): hold the answer, and maybe lose it.
async fn processed(
    sim: &Sim,
    account: &str,
    method: &str,
    route: &str,
    mut response: Response,
) -> Response {
    let delay = lock(&sim.faults).answer_delay();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let lose = lock(&sim.faults).lose_answer();
    if lose {
        lock(&sim.stats).record_lost_answer(method, route);
        tracing::info!(
            account,
            status = response.status().as_u16(),
            "answer lost (injected fault)"
        );
        response.extensions_mut().insert(LoseAnswer);
    }
    response
}
