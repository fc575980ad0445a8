//! The simulator's own JSON types for the Monitor API's Alert resource (`monitor.v1.alert` and
//! `monitor.v1.alert-instance`), independent of the operator's client models.

use serde::Serialize;

use crate::alerts::LogLevel;
use crate::paging::Meta;

/// `monitor.v1.alert`: an alert as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertResource {
    pub account_sid: String,
    pub alert_text: String,
    pub api_version: &'static str,
    /// ISO 8601 in GMT, to the second (`2015-07-30T20:00:00Z`), like the document's examples.
    pub date_created: String,
    pub date_generated: String,
    pub date_updated: String,
    /// A string, as in the document: `"63110"`.
    pub error_code: String,
    pub log_level: LogLevel,
    pub more_info: String,
    pub request_method: &'static str,
    pub request_url: String,
    pub resource_sid: String,
    pub service_sid: Option<String>,
    pub sid: String,
    pub url: String,
}

/// `monitor.v1.alert-instance`: what a fetch of one alert shows, with the request and response
/// details that a list leaves out.
#[derive(Debug, Clone, Serialize)]
pub struct AlertInstance {
    #[serde(flatten)]
    pub alert: AlertResource,
    pub request_variables: Option<String>,
    pub request_headers: Option<String>,
    pub response_body: Option<String>,
    pub response_headers: Option<String>,
}

/// `ListAlertResponse`.
#[derive(Debug, Serialize)]
pub struct AlertList {
    pub alerts: Vec<AlertResource>,
    pub meta: Meta,
}
