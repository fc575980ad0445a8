//! The Error Log (`/v1/Alerts`, on the monitor host): an account's alerts since a moment.

use k8s_openapi::jiff::Timestamp;
use reqwest::Url;

use super::client::{Product, TwilioClient};
use super::error::TwilioError;
use super::models::{Alert, AlertPage};
use super::transport::Page;

/// The route template, as traced.
pub(super) const ROUTE_ALERTS: &str = "/v1/Alerts";

impl Page for AlertPage {
    type Item = Alert;
    fn split(self) -> (Vec<Alert>, Option<String>) {
        (self.alerts, self.meta.next_page_url)
    }
}

impl TwilioClient {
    /// `GET /v1/Alerts` on the monitor host: the account's Error Log entries at level `error`
    /// from `since` on (Twilio's `StartDate` is inclusive, to the second), handed to `each`
    /// page by page.
    pub async fn alerts_since(
        &self,
        since: Timestamp,
        mut each: impl FnMut(Alert),
    ) -> Result<(), TwilioError> {
        let mut url = Url::parse(&format!("{}{ROUTE_ALERTS}", self.url(Product::Monitor)))
            .map_err(|e| TwilioError::InvalidConfig(format!("monitor URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("LogLevel", "error")
            .append_pair(
                "StartDate",
                &since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
            .append_pair("PageSize", &self.list_page_size.clamp(1, 1000).to_string());
        let first: AlertPage = self
            .transport
            .get_page("list_alerts", ROUTE_ALERTS, url.into())
            .await?;
        self.transport
            .walk_pages(
                "list_alerts",
                ROUTE_ALERTS,
                self.url(Product::Monitor),
                None,
                first,
                |page| {
                    page.into_iter().for_each(&mut each);
                    false
                },
            )
            .await
    }
}
