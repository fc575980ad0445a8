//! `/_sim/…`: the test-facing control API (no Twilio auth). It plays Meta's side (number
//! behaviours, OTPs, quality and status changes, alerts) and exposes counters and fault
//! injection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alerts::LogLevel;
use crate::errors::{ApiError, more_info};
use crate::faults::FaultSettings;
use crate::gmt::WallClock;
use crate::lifecycle::{Behavior, Sender};
use crate::model::{Field, OfflineReason, SenderResource, Status, is_e164};
use crate::monitor_model::AlertInstance;
use crate::store::{AlertRequest, SenderPatch};
use crate::twilio_api::{base_url, parse_body};
use crate::{Sim, lock};

pub fn routes(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/_sim/numbers", post(set_number).get(list_numbers))
        .route("/_sim/senders", get(list_senders))
        .route("/_sim/senders/{sid}", get(get_sender).patch(patch_sender))
        .route("/_sim/senders/{sid}/otp", get(otp))
        .route("/_sim/alerts", post(log_alert))
        .route("/_sim/stats", get(stats))
        .route("/_sim/faults", put(set_faults).get(get_faults))
        .route("/_sim/reset", post(reset))
        .with_state(sim)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    phone_number: Option<String>,
    behavior: Option<String>,
}

#[derive(Debug, Serialize)]
struct NumberOut {
    phone_number: String,
    behavior: Behavior,
}

async fn set_number(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Json<NumberOut>, ApiError> {
    let body: NumberBody = parse_body(&body)?;
    let raw = body
        .phone_number
        .ok_or_else(|| ApiError::invalid_parameter("phone_number is required"))?;
    // Accept the sender ID form too, since that is what tests have at hand.
    let phone = raw.strip_prefix("whatsapp:").unwrap_or(&raw).to_string();
    if !is_e164(&phone) {
        return Err(ApiError::invalid_parameter(format!(
            "phone_number must be an E.164 number like +15005550006, got {raw:?}"
        )));
    }
    let behavior: Behavior = body
        .behavior
        .ok_or_else(|| ApiError::invalid_parameter("behavior is required"))?
        .parse()
        .map_err(ApiError::invalid_parameter)?;
    lock(&sim.store).set_number(phone.clone(), behavior);
    Ok(Json(NumberOut {
        phone_number: phone,
        behavior,
    }))
}

async fn list_numbers(State(sim): State<Arc<Sim>>) -> Json<Vec<NumberOut>> {
    let store = lock(&sim.store);
    Json(
        store
            .numbers()
            .map(|(phone, behavior)| NumberOut {
                phone_number: phone.clone(),
                behavior: *behavior,
            })
            .collect(),
    )
}

/// Twilio's resource plus what only the simulator knows.
#[derive(Debug, Serialize)]
struct SimSender {
    account_sid: String,
    behavior: Behavior,
    /// The first create plus every re-create that asked for a new code.
    create_requests: u32,
    codes_sent: u32,
    wrong_codes: u32,
    /// Unix time in milliseconds when the latest code submission arrived; null if none did.
    last_code_received_ms: Option<u64>,
    /// Unix time in milliseconds when the first create arrived.
    created_ms: u64,
    /// Unix time in milliseconds when the sender first left CREATING, PENDING_VERIFICATION and
    /// VERIFYING (its registration ended: ONLINE, or OFFLINE if it failed); null while it
    /// registers. With `created_ms`, a test sees whether two registrations overlapped.
    left_onboarding_ms: Option<u64>,
    /// How much longer code requests get 63114; null when not locked.
    lockout_remaining_ms: Option<u64>,
    #[serde(flatten)]
    resource: SenderResource,
}

fn sim_sender(sender: &Sender, base: &str, now: Instant, clock: &WallClock) -> SimSender {
    SimSender {
        account_sid: sender.account_sid.clone(),
        behavior: sender.behavior,
        create_requests: sender.create_requests,
        codes_sent: sender.codes_sent,
        wrong_codes: sender.wrong_codes,
        last_code_received_ms: sender.last_code_received.map(unix_ms),
        created_ms: unix_ms(clock.at(sender.created_at)),
        left_onboarding_ms: sender.left_onboarding_at.map(|at| unix_ms(clock.at(at))),
        lockout_remaining_ms: sender.lockout_remaining(now).map(whole_ms),
        resource: sender.resource(base),
    }
}

fn unix_ms(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds, rounded up so that a lockout about to lift never reads 0.
fn whole_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

async fn list_senders(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Json<Vec<SimSender>> {
    let base = base_url(&headers);
    let now = Instant::now();
    let (senders, clock) = {
        let mut store = lock(&sim.store);
        (store.all(now), store.clock())
    };
    Json(
        senders
            .iter()
            .map(|s| sim_sender(s, &base, now, &clock))
            .collect(),
    )
}

async fn get_sender(
    State(sim): State<Arc<Sim>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SimSender>, ApiError> {
    let now = Instant::now();
    let (all, clock) = {
        let mut store = lock(&sim.store);
        (store.all(now), store.clock())
    };
    let sender = all
        .iter()
        .find(|s| s.sid == sid)
        .ok_or_else(|| ApiError::not_found(&format!("/_sim/senders/{sid}")))?;
    Ok(Json(sim_sender(sender, &base_url(&headers), now, &clock)))
}

async fn otp(
    State(sim): State<Arc<Sim>>,
    Path(sid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match lock(&sim.store).otp(&sid, Instant::now())? {
        Some(code) => Ok(Json(json!({ "code": code }))),
        None => Err(ApiError::not_found(&format!("/_sim/senders/{sid}/otp"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    quality_rating: Field<String>,
    #[serde(default)]
    messaging_limit: Field<String>,
    #[serde(default)]
    offline_reasons: Field<Vec<ReasonBody>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    /// Twilio's schema has a string; accept a number too.
    code: Value,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    more_info: Option<String>,
}

/// A Twilio error code given as a string (as Twilio's schemas have it) or a number.
fn error_code(value: Value, field: &str) -> Result<String, ApiError> {
    match value {
        Value::String(code) => Ok(code),
        Value::Number(code) => Ok(code.to_string()),
        _ => Err(ApiError::invalid_parameter(format!(
            "{field} must be a string or a number"
        ))),
    }
}

impl ReasonBody {
    fn into_reason(self) -> Result<OfflineReason, ApiError> {
        let code = error_code(self.code, "offline_reasons[].code")?;
        let more_info = self
            .more_info
            .or_else(|| code.parse::<u32>().ok().map(more_info));
        Ok(OfflineReason {
            code,
            message: self.message,
            more_info,
        })
    }
}

async fn patch_sender(
    State(sim): State<Arc<Sim>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SimSender>, ApiError> {
    let body: PatchBody = parse_body(&body)?;
    let status = body
        .status
        .map(|s| s.parse::<Status>())
        .transpose()
        .map_err(ApiError::invalid_parameter)?;
    let offline_reasons = match body.offline_reasons {
        Field::Absent => Field::Absent,
        Field::Null => Field::Null,
        Field::Value(reasons) => Field::Value(
            reasons
                .into_iter()
                .map(ReasonBody::into_reason)
                .collect::<Result<_, _>>()?,
        ),
    };
    let patch = SenderPatch {
        status,
        quality_rating: body.quality_rating,
        messaging_limit: body.messaging_limit,
        offline_reasons,
    };
    let now = Instant::now();
    let (sender, clock) = {
        let mut store = lock(&sim.store);
        (store.patch(&sid, patch, now)?, store.clock())
    };
    Ok(Json(sim_sender(&sender, &base_url(&headers), now, &clock)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertBody {
    resource_sid: Option<String>,
    error_code: Option<Value>,
    alert_text: Option<String>,
    log_level: Option<String>,
}

/// Logs an alert about a sender in the account that owns it, as Twilio would; answers 201 with
/// the alert as `GET /v1/Alerts/{Sid}` shows it.
async fn log_alert(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: AlertBody = parse_body(&body)?;
    let resource_sid = body
        .resource_sid
        .ok_or_else(|| ApiError::invalid_parameter("resource_sid is required"))?;
    let error_code = error_code(
        body.error_code
            .ok_or_else(|| ApiError::invalid_parameter("error_code is required"))?,
        "error_code",
    )?;
    if error_code.is_empty() || !error_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_parameter(format!(
            "error_code must be a Twilio error code such as 63110, got {error_code:?}"
        )));
    }
    let log_level = body
        .log_level
        .map(|level| level.parse::<LogLevel>())
        .transpose()
        .map_err(ApiError::invalid_parameter)?
        .unwrap_or_default();
    let request = AlertRequest {
        resource_sid,
        error_code,
        alert_text: body.alert_text,
        log_level,
    };
    let alert = lock(&sim.store).log_alert(request, Instant::now())?;
    let shown: AlertInstance = alert.instance(&base_url(&headers));
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let stats = lock(&sim.stats);
    Json(json!({
        "requests": stats.snapshot(),
        "lost_answers": stats.lost_answers(),
        "lost_answers_by_route": stats.lost_answers_by_route(),
        "create_attempts": stats.create_attempts(),
    }))
}

async fn set_faults(
    State(sim): State<Arc<Sim>>,
    body: Bytes,
) -> Result<Json<FaultSettings>, ApiError> {
    let settings: FaultSettings = parse_body(&body)?;
    settings.validate().map_err(ApiError::invalid_parameter)?;
    lock(&sim.faults).set(settings.clone());
    Ok(Json(settings))
}

async fn get_faults(State(sim): State<Arc<Sim>>) -> Json<FaultSettings> {
    Json(lock(&sim.faults).settings().clone())
}

async fn reset(State(sim): State<Arc<Sim>>) -> Response {
    lock(&sim.store).reset();
    lock(&sim.stats).reset();
    lock(&sim.faults).reset();
    StatusCode::NO_CONTENT.into_response()
}
