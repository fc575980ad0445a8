//! Twilio's list paging, the same for every list here: the `PageSize` and `Page` query
//! parameters and the `meta` block of a page.

use std::collections::HashMap;

use serde::Serialize;

use crate::errors::ApiError;

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 1000;

/// The `meta` of a list page. URLs are absolute; `next_page_url` is null on the last page.
#[derive(Debug, Serialize)]
pub struct Meta {
    pub page: u64,
    pub page_size: usize,
    pub first_page_url: String,
    pub previous_page_url: Option<String>,
    pub url: String,
    pub next_page_url: Option<String>,
    /// The name of the list field (`senders`, `alerts`).
    pub key: &'static str,
}

/// `PageSize`: 1 to 1000, 50 when absent.
pub fn page_size(query: &HashMap<String, String>) -> Result<usize, ApiError> {
    match query.get("PageSize") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "PageSize must be an integer from 1 to {MAX_PAGE_SIZE}, got {raw:?}"
                ))
            }),
    }
}

/// `Page`: informational (only the page token moves through a list), 0 when absent.
pub fn page_index(query: &HashMap<String, String>) -> Result<u64, ApiError> {
    match query.get("Page") {
        None => Ok(0),
        Some(raw) => raw.parse::<u64>().map_err(|_| {
            ApiError::invalid_parameter(format!("Page must be a non-negative integer, got {raw:?}"))
        }),
    }
}
