//! The Senders API (`/v2/Channels/Senders`, on the messaging host): create, fetch, update,
//! delete and list an account's WhatsApp senders.

use reqwest::{Method, Url};
use serde::Serialize;

use super::client::{Product, TwilioClient};
use super::error::TwilioError;
use super::models::{
    Configuration, CreateSenderRequest, Sender, SenderPage, UpdateSenderRequest,
    is_valid_sender_sid,
};
use super::transport::{Body, Call, ClassifyStr, Page, Replay, decode};

/// Route templates, as traced (the SID goes in its own field).
pub(super) const ROUTE_LIST: &str = "/v2/Channels/Senders";
pub(super) const ROUTE_INSTANCE: &str = "/v2/Channels/Senders/{Sid}";

/// The Senders list's required filter: Twilio answers 20001 without it.
pub(super) const CHANNEL: (&str, &str) = ("Channel", "whatsapp");

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

/// A JSON body, with the code it carries.
fn json_body(request: &impl RequestBody) -> Result<Body, TwilioError> {
    let bytes = serde_json::to_vec(request)
        .map_err(|e| TwilioError::InvalidArgument(format!("request body: {}", e.classify_str())))?;
    Ok(Body {
        bytes,
        content_type: "application/json",
        code: request
            .configuration()
            .and_then(|c| c.verification_code.clone()),
    })
}

impl Page for SenderPage {
    type Item = Sender;
    fn split(self) -> (Vec<Sender>, Option<String>) {
        (self.senders, self.meta.next_page_url)
    }
}

impl TwilioClient {
    /// `POST /v2/Channels/Senders`.
    ///
    /// Not idempotent at Twilio: if a create times out or gets a 500 it may still have
    /// registered the number, and a second create for it would then fail (63110, or a second
    /// OTP request). So this retries only when Twilio certainly did not receive the request
    /// (429, 503, connection refused); on any other failure the caller must list
    /// (`find_by_sender_id`) and adopt the sender before creating again.
    pub async fn create(&self, request: &CreateSenderRequest) -> Result<Sender, TwilioError> {
        let call = Call {
            operation: "create",
            method: Method::POST,
            route: ROUTE_LIST,
            sid: None,
            url: format!("{}{ROUTE_LIST}", self.url(Product::Messaging)),
            body: Some(json_body(request)?),
            replay: Replay::OnlyUnprocessed,
        };
        self.transport.execute(call, decode).await
    }

    /// `GET /v2/Channels/Senders/{Sid}`.
    pub async fn fetch(&self, sid: &str) -> Result<Sender, TwilioError> {
        let call = Call {
            operation: "fetch",
            method: Method::GET,
            route: ROUTE_INSTANCE,
            sid: Some(sid),
            url: self.instance_url(sid)?,
            body: None,
            replay: Replay::Safe,
        };
        self.transport.execute(call, decode).await
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
            operation: "update",
            method: Method::POST,
            route: ROUTE_INSTANCE,
            sid: Some(sid),
            url: self.instance_url(sid)?,
            body: Some(json_body(request)?),
            replay: if request.submits_verification_code() {
                Replay::OnlyUnprocessed
            } else {
                Replay::Safe
            },
        };
        self.transport.execute(call, decode).await
    }

    /// `DELETE /v2/Channels/Senders/{Sid}`. A sender that is already gone yields an error of
    /// class `NotFound`, which callers treat as success.
    pub async fn delete(&self, sid: &str) -> Result<(), TwilioError> {
        let call = Call {
            operation: "delete",
            method: Method::DELETE,
            route: ROUTE_INSTANCE,
            sid: Some(sid),
            url: self.instance_url(sid)?,
            body: None,
            replay: Replay::Safe,
        };
        self.transport.execute(call, |_, _| Ok(())).await
    }

    /// One page of `GET /v2/Channels/Senders?Channel=whatsapp`. `page_size` is clamped to
    /// Twilio's 1..=1000.
    pub async fn list_page(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<SenderPage, TwilioError> {
        let mut url = Url::parse(&format!("{}{ROUTE_LIST}", self.url(Product::Messaging)))
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
        self.transport
            .get_page("list", ROUTE_LIST, url.into())
            .await
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
        self.transport
            .walk_pages(
                "list",
                ROUTE_LIST,
                self.url(Product::Messaging),
                Some(CHANNEL),
                first,
                |page| {
                    page.into_iter().for_each(&mut each);
                    false
                },
            )
            .await
    }

    fn instance_url(&self, sid: &str) -> Result<String, TwilioError> {
        if !is_valid_sender_sid(sid) {
            return Err(TwilioError::InvalidArgument(format!(
                "sender SID must match ^XE[0-9a-fA-F]{{32}}$ (got {} characters)",
                sid.len()
            )));
        }
        Ok(format!(
            "{}{ROUTE_LIST}/{sid}",
            self.url(Product::Messaging)
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::twilio::TwilioError;
    use crate::twilio::{BudgetConfig, ClientConfig, Credentials, RequestBudget, TwilioClient};

    #[tokio::test]
    async fn a_malformed_sid_never_reaches_a_url() {
        let client = TwilioClient::new(
            Credentials::auth_token("AC0123456789abcdef0123456789abcdef", "secret-token"),
            &ClientConfig::default(),
            RequestBudget::new(BudgetConfig::default()),
        )
        .unwrap();
        assert_eq!(client.account_sid(), "AC0123456789abcdef0123456789abcdef");
        let err = client.fetch("../Services").await.unwrap_err();
        assert!(matches!(err, TwilioError::InvalidArgument(_)), "{err}");
        assert!(!format!("{client:?}").contains("secret-token"));
    }
}
