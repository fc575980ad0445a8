//! The REST API v2010's `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`
//! (operation `ListIncomingPhoneNumber` of Twilio's `twilio_api_v2010.json`): the read a client
//! makes under an account's path to learn whether a credential belongs to that account. Served
//! beside `/v2` and `/v1` behind the same auth, faults and counters; [`authorize`] adds what
//! v2010 asks beyond authentication.
//!
//! The simulator models no Twilio phone numbers (only senders), so every page lists none.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderMap;
use axum::middleware;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::Value;

use crate::Sim;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::guard::{Authed, guard};
use crate::paging;
use crate::twilio_api::base_url;

/// Every REST API v2010 path starts with this.
pub const V2010_PREFIX: &str = "/2010-04-01/";
pub const NUMBERS_ROUTE: &str = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json";

pub fn routes(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(NUMBERS_ROUTE, get(list))
        .route_layer(middleware::from_fn_with_state(sim, guard))
}

/// What a v2010 route asks of an authenticated credential, checked right after authentication
/// (before faults), in this order:
/// 1. The account in the path (`path_account`, the route's `{AccountSid}`) must be the one the
///    credential acts for; otherwise 401 (20003 "Authenticate"). Twilio's document does not say
///    what another account's token or key gets: this answer is the simulator's choice. (At
///    Twilio a parent account's token may also read its subaccounts' v2010 resources; the
///    simulator has no subaccounts, so every other account is refused alike.)
/// 2. The credential must be allowed v2010: a restricted key gets 403 (20403 "Forbidden").
///    Also the simulator's choice and not from Twilio's document, which declares no 403 for
///    this operation; the code and message are from Twilio's error pages.
pub fn authorize(principal: &Principal, path_account: Option<&str>) -> Result<(), ApiError> {
    if path_account != Some(principal.account.as_str()) {
        return Err(ApiError::authentication("Authenticate"));
    }
    if !principal.may_read_v2010 {
        return Err(ApiError::forbidden());
    }
    Ok(())
}

/// `ListIncomingPhoneNumberResponse`, fields in the order of the document's examples.
#[derive(Debug, Serialize)]
struct NumberList {
    end: u64,
    first_page_uri: String,
    /// Always empty: the simulator models no Twilio phone numbers (`api.v2010.account.
    /// incoming_phone_number`), only WhatsApp senders.
    incoming_phone_numbers: Vec<Value>,
    next_page_uri: Option<String>,
    page: u64,
    page_size: usize,
    previous_page_uri: Option<String>,
    start: u64,
    uri: String,
}

/// The list's filters, as the request gave them (none is applied: there is nothing to filter).
#[derive(Debug, Default, PartialEq)]
struct Filters {
    friendly_name: Option<String>,
    beta: Option<bool>,
    phone_number: Option<String>,
    origin: Option<String>,
}

impl Filters {
    fn from_query(query: &HashMap<String, String>) -> Result<Filters, ApiError> {
        let beta = query
            .get("Beta")
            .map(|raw| match raw.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::invalid_parameter(format!(
                    "Beta must be true or false, got {raw:?}"
                ))),
            })
            .transpose()?;
        Ok(Filters {
            friendly_name: query.get("FriendlyName").cloned(),
            beta,
            phone_number: query.get("PhoneNumber").cloned(),
            origin: query.get("Origin").cloned(),
        })
    }
}

/// The query of a page URI: the filters given, in the order of the document's example URIs
/// (`FriendlyName`, `Beta`, `PhoneNumber`; `Origin`, which the examples lack, after them), then
/// `PageSize`, `Page` and a `PageToken` if the page was asked for with one.
fn page_query(filters: &Filters, page_size: usize, page: u64, token: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(name) = &filters.friendly_name {
        query.append_pair("FriendlyName", name);
    }
    if let Some(beta) = filters.beta {
        query.append_pair("Beta", if beta { "true" } else { "false" });
    }
    if let Some(number) = &filters.phone_number {
        query.append_pair("PhoneNumber", number);
    }
    if let Some(origin) = &filters.origin {
        query.append_pair("Origin", origin);
    }
    query.append_pair("PageSize", &page_size.to_string());
    query.append_pair("Page", &page.to_string());
    if let Some(token) = token {
        query.append_pair("PageToken", token);
    }
    query.finish()
}

async fn list(
    Extension(Authed(account)): Extension<Authed>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<NumberList>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid_parameter(format!("Invalid query string: {e}")))?;
    let filters = Filters::from_query(&query)?;
    let page_size = paging::page_size(&query)?;
    let page = paging::page_index(&query)?;
    // Any token is accepted: no page has numbers, so none is handed out and every one is empty.
    let token = query.get("PageToken").map(String::as_str);

    // Twilio's v2010 page URIs are relative (`/2010-04-01/Accounts/AC…/…json?PageSize=1&Page=0`)
    // but the document gives them `format: uri`, and Prism (`--errors`) refuses a relative one
    // (500: "Response body property uri must match format \"uri\""). So they are Twilio's
    // relative URI resolved against the base the request came to, `http://HOST`, as the
    // simulator's other page URLs are: what a client gets by resolving Twilio's (RFC 3986).
    let base = format!(
        "{}/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json",
        base_url(&headers)
    );
    let page_uri = |page: u64, token: Option<&str>| {
        format!("{base}?{}", page_query(&filters, page_size, page, token))
    };
    // An empty page starts and ends at its first index, as the document's empty example (page
    // 0: start 0, end 0) has it.
    let start = page.saturating_mul(page_size as u64);
    Ok(Json(NumberList {
        end: start,
        first_page_uri: page_uri(0, None),
        incoming_phone_numbers: Vec::new(),
        next_page_uri: None,
        page,
        page_size,
        previous_page_uri: None,
        start,
        uri: page_uri(page, token),
    }))
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
    fn another_account_is_401_and_a_restricted_key_403() {
        let principal = |may_read_v2010| Principal {
            account: "AC1".into(),
            may_read_v2010,
        };
        assert_eq!(authorize(&principal(true), Some("AC1")), Ok(()));
        for path in [Some("AC2"), Some("ac1"), None] {
            let err = authorize(&principal(true), path).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code, err.message.as_str()),
                (401, 20003, "Authenticate"),
                "{path:?}"
            );
        }
        let err = authorize(&principal(false), Some("AC1")).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code, err.message.as_str()),
            (403, 20403, "Forbidden")
        );
        let err = authorize(&principal(false), Some("AC2")).unwrap_err();
        assert_eq!(err.code, 20003, "the account is checked first");
    }

    #[test]
    fn page_uris_carry_the_filters_in_the_examples_order() {
        let filters = Filters::from_query(&query(&[
            ("PhoneNumber", "+19876543210"),
            ("Beta", "TRUE"),
            ("FriendlyName", "friendly name"),
            ("Origin", "twilio"),
        ]))
        .unwrap();
        assert_eq!(
            page_query(&filters, 50, 0, None),
            "FriendlyName=friendly+name&Beta=true&PhoneNumber=%2B19876543210&Origin=twilio&PageSize=50&Page=0"
        );
        assert_eq!(
            page_query(&Filters::default(), 1, 2, Some("PT1")),
            "PageSize=1&Page=2&PageToken=PT1"
        );
    }

    #[test]
    fn beta_is_a_boolean() {
        assert_eq!(
            Filters::from_query(&query(&[("Beta", "false")]))
                .unwrap()
                .beta,
            Some(false)
        );
        let err = Filters::from_query(&query(&[("Beta", "yes")])).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (400, 20001));
        assert!(err.message.contains("Beta"), "{}", err.message);
    }
}
