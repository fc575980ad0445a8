//! The Monitor API's `/v1/Alerts` handlers (Twilio's Error Log), served beside `/v2` by the same
//! server, behind the same auth, faults and counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::middleware;
use axum::routing::get;
use axum::{Extension, Json, Router};

use crate::alerts::{AlertFilter, Cursor, LogLevel};
use crate::errors::ApiError;
use crate::gmt::{format_iso, parse_query_date};
use crate::guard::{Authed, guard};
use crate::monitor_model::{AlertInstance, AlertList};
use crate::paging::{self, Meta};
use crate::twilio_api::base_url;
use crate::{Sim, lock};

pub const ALERTS_ROUTE: &str = "/v1/Alerts";
pub const ALERT_ROUTE: &str = "/v1/Alerts/{Sid}";

pub fn routes(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(ALERTS_ROUTE, get(list))
        .route(ALERT_ROUTE, get(fetch))
        .route_layer(middleware::from_fn_with_state(sim.clone(), guard))
        .with_state(sim)
}

/// The list's filters from the query, each checked as the document describes it.
fn filter(query: &HashMap<String, String>) -> Result<AlertFilter, ApiError> {
    let log_level = query
        .get("LogLevel")
        .map(|raw| {
            raw.parse::<LogLevel>().map_err(|_| {
                ApiError::invalid_parameter(format!(
                    "LogLevel must be error, warning, notice or debug, got {raw:?}"
                ))
            })
        })
        .transpose()?;
    let date = |name: &str| {
        query
            .get(name)
            .map(|raw| {
                parse_query_date(raw).ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "{name} must be a GMT date as YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, \
                         got {raw:?}"
                    ))
                })
            })
            .transpose()
    };
    Ok(AlertFilter {
        log_level,
        start: date("StartDate")?,
        end: date("EndDate")?,
    })
}

/// The query of a page URL: the filters as given (dates written out in full, as the
/// document's examples show them), then the paging.
fn page_query(filter: &AlertFilter, page_size: usize, page: u64, start: Option<Cursor>) -> String {
    let mut parts = Vec::new();
    if let Some(level) = filter.log_level {
        parts.push(format!("LogLevel={level}"));
    }
    if let Some(start) = filter.start {
        parts.push(format!("StartDate={}", format_iso(start)));
    }
    if let Some(end) = filter.end {
        parts.push(format!("EndDate={}", format_iso(end)));
    }
    parts.push(format!("PageSize={page_size}"));
    parts.push(format!("Page={page}"));
    if let Some(cursor) = start {
        parts.push(format!("PageToken={}", cursor.token()));
    }
    parts.join("&")
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Extension(Authed(account)): Extension<Authed>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid_parameter(format!("Invalid query string: {e}")))?;
    let filter = filter(&query)?;
    let page_size = paging::page_size(&query)?;
    let page = paging::page_index(&query)?;
    let start = query
        .get("PageToken")
        .map(|raw| {
            Cursor::from_token(raw)
                .ok_or_else(|| ApiError::invalid_parameter(format!("Invalid PageToken {raw:?}")))
        })
        .transpose()?;

    let result =
        lock(&sim.store).alerts_page(&account, &filter, start, page_size, Instant::now())?;
    let base = base_url(&headers);
    let page_url = |page: u64, start: Option<Cursor>| {
        format!(
            "{base}{ALERTS_ROUTE}?{}",
            page_query(&filter, page_size, page, start)
        )
    };
    Ok(Json(AlertList {
        alerts: result.alerts.iter().map(|a| a.resource(&base)).collect(),
        meta: Meta {
            page,
            page_size,
            first_page_url: page_url(0, None),
            previous_page_url: result
                .previous
                .map(|start| page_url(page.saturating_sub(1), start)),
            url: page_url(page, start),
            next_page_url: result.next.map(|next| page_url(page + 1, Some(next))),
            key: "alerts",
        },
    }))
}

async fn fetch(
    State(sim): State<Arc<Sim>>,
    Extension(Authed(account)): Extension<Authed>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<AlertInstance>, ApiError> {
    let alert = lock(&sim.store).alert(&account, &sid, Instant::now())?;
    Ok(Json(alert.instance(&base_url(&headers))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn page_urls_carry_the_filters_in_the_documents_order_with_full_dates() {
        let filter = filter(&query(&[
            ("EndDate", "2016-01-02T10:00:00Z"),
            ("StartDate", "2016-01-01"),
            ("LogLevel", "error"),
        ]))
        .unwrap();
        assert_eq!(
            page_query(&filter, 50, 0, None),
            "LogLevel=error&StartDate=2016-01-01T00:00:00Z&EndDate=2016-01-02T10:00:00Z&PageSize=50&Page=0"
        );
        assert_eq!(
            page_query(&AlertFilter::default(), 5, 2, None),
            "PageSize=5&Page=2"
        );
    }

    #[test]
    fn bad_filters_are_20001() {
        for (name, value) in [
            ("LogLevel", "ERROR"),
            ("LogLevel", "log_level"),
            ("StartDate", "yesterday"),
            ("EndDate", "2016-01-01T00:00:00+01:00"),
        ] {
            let err = filter(&query(&[(name, value)])).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code),
                (400, 20001),
                "{name}={value}"
            );
            assert!(err.message.contains(name), "{}", err.message);
        }
    }
}
