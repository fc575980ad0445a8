//! The `/v2/Channels/Senders` handlers: Twilio's paths, bodies and status codes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::errors::ApiError;
use crate::guard::{Authed, guard};
use crate::model::{CreateRequest, SenderResource, UpdateRequest};
use crate::paging::{self, Meta};
use crate::{Sim, lock};

pub const LIST_ROUTE: &str = "/v2/Channels/Senders";
pub const INSTANCE_ROUTE: &str = "/v2/Channels/Senders/{Sid}";

pub fn routes(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(LIST_ROUTE, get(list).post(create))
        .route(INSTANCE_ROUTE, get(fetch).post(update).delete(delete))
        .route_layer(middleware::from_fn_with_state(sim.clone(), guard))
        .with_state(sim)
}

/// `http://HOST` from the request, so that URLs we hand out point back at us.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// JSON object body → `T`; an empty body is `T::default()`. Anything else is a 20001.
pub fn parse_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_parameter(format!("Request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_parameter(
            "Request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        ApiError::invalid_parameter(format!("Invalid parameter {}: {}", e.path(), e.inner()))
    })
}

fn accepted(answer: impl Serialize) -> Response {
    (StatusCode::ACCEPTED, Json(answer)).into_response()
}

async fn create(
    State(sim): State<Arc<Sim>>,
    Extension(Authed(account)): Extension<Authed>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateRequest = parse_body(&body)?;
    let sender = lock(&sim.store).create(&account, request, Instant::now())?;
    Ok(accepted(sender.resource(&base_url(&headers))))
}

async fn fetch(
    State(sim): State<Arc<Sim>>,
    Extension(Authed(account)): Extension<Authed>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SenderResource>, ApiError> {
    let sender = lock(&sim.store).fetch(&account, &sid, Instant::now())?;
    Ok(Json(sender.resource(&base_url(&headers))))
}

async fn update(
    State(sim): State<Arc<Sim>>,
    Extension(Authed(account)): Extension<Authed>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: UpdateRequest = parse_body(&body)?;
    let sent = request.sections();
    let sender = lock(&sim.store).update(&account, &sid, request, Instant::now())?;
    Ok(accepted(sender.update_answer(sent)))
}

async fn delete(
    State(sim): State<Arc<Sim>>,
    Extension(Authed(account)): Extension<Authed>,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    lock(&sim.store).delete(&account, &sid)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct ListResponse {
    senders: Vec<SenderResource>,
    meta: Meta,
}

/// Page tokens are opaque to clients; inside they name the creation sequence number the page
/// starts at, so they stay valid when senders before them are deleted.
fn encode_token(seq: u64) -> String {
    format!("PT{seq:016x}")
}

fn decode_token(token: &str) -> Option<u64> {
    let hex = token.strip_prefix("PT").filter(|h| h.len() == 16)?;
    u64::from_str_radix(hex, 16).ok()
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Extension(Authed(account)): Extension<Authed>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid_parameter(format!("Invalid query string: {e}")))?;
    let channel = query
        .get("Channel")
        .ok_or_else(|| ApiError::invalid_parameter("Missing required parameter Channel"))?
        .to_ascii_lowercase();
    if channel != "whatsapp" && channel != "rcs" {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid Channel {channel:?}: expected whatsapp or rcs"
        )));
    }
    let page_size = paging::page_size(&query)?;
    let page = paging::page_index(&query)?;
    let start = match query.get("PageToken") {
        None => None,
        Some(raw) => Some(
            decode_token(raw)
                .ok_or_else(|| ApiError::invalid_parameter(format!("Invalid PageToken {raw:?}")))?,
        ),
    };

    let base = base_url(&headers);
    let page_url = |page: u64, token: Option<u64>| {
        let mut url =
            format!("{base}{LIST_ROUTE}?Channel={channel}&PageSize={page_size}&Page={page}");
        if let Some(seq) = token {
            url.push_str("&PageToken=");
            url.push_str(&encode_token(seq));
        }
        url
    };

    // This simulator has no RCS senders.
    let result = if channel == "whatsapp" {
        Some(lock(&sim.store).page(&account, start, page_size, Instant::now()))
    } else {
        None
    };
    let (senders, next, previous) = match result {
        Some(p) => (p.senders, p.next, p.previous),
        None => (Vec::new(), None, None),
    };
    Ok(Json(ListResponse {
        senders: senders.iter().map(|s| s.resource(&base)).collect(),
        meta: Meta {
            page,
            page_size,
            first_page_url: page_url(0, None),
            previous_page_url: previous.map(|token| page_url(page.saturating_sub(1), token)),
            url: page_url(page, start),
            next_page_url: next.map(|seq| page_url(page + 1, Some(seq))),
            key: "senders",
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_junk() {
        assert_eq!(decode_token(&encode_token(42)), Some(42));
        for junk in ["", "PT", "42", "PTzzzzzzzzzzzzzzzz", "XX000000000000002a"] {
            assert_eq!(decode_token(junk), None, "{junk}");
        }
    }

    #[test]
    fn body_errors_are_20001() {
        assert_eq!(
            parse_body::<UpdateRequest>(&Bytes::from_static(b"{nope"))
                .unwrap_err()
                .code,
            20001
        );
        assert_eq!(
            parse_body::<UpdateRequest>(&Bytes::from_static(b"[1]"))
                .unwrap_err()
                .code,
            20001
        );
        let err = parse_body::<UpdateRequest>(&Bytes::from_static(br#"{"profile":{"name":5}}"#))
            .unwrap_err();
        assert!(err.message.contains("profile.name"), "{}", err.message);
        assert!(parse_body::<UpdateRequest>(&Bytes::from_static(b"  ")).is_ok());
    }

    #[test]
    fn base_url_falls_back_on_odd_hosts() {
        let mut headers = HeaderMap::new();
        assert_eq!(base_url(&headers), "http://localhost");
        headers.insert(header::HOST, "127.0.0.1:4010".parse().unwrap());
        assert_eq!(base_url(&headers), "http://127.0.0.1:4010");
        headers.insert(header::HOST, "evil/path?x".parse().unwrap());
        assert_eq!(base_url(&headers), "http://localhost");
    }
}
