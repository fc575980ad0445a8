//! The REST API of `2010-04-01` (on the api host): the check that credentials act for the
//! account they name.

use reqwest::{Method, Url};

use super::client::{Product, TwilioClient};
use super::error::TwilioError;
use super::transport::{Call, Replay, decode};

/// The route template, as traced.
pub(super) const ROUTE_INCOMING_NUMBERS: &str =
    "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json";

/// A page of v2010's incoming phone numbers: only its shape is checked (the answer of a
/// Twilio REST API, not some other server's 200).
#[derive(serde::Deserialize)]
struct IncomingPhoneNumberPage {
    #[serde(rename = "incoming_phone_numbers")]
    _numbers: Vec<serde::de::IgnoredAny>,
}

impl TwilioClient {
    /// `GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json?PageSize=1`: a read
    /// under the account's own path, which Twilio answers only for credentials of that
    /// account (or its parent). An API key is not tied to `accountSid` by anything else: the
    /// Senders API acts for whichever account the key belongs to.
    pub async fn verify_account(&self) -> Result<(), TwilioError> {
        let mut url = Url::parse(self.url(Product::Api))
            .map_err(|e| TwilioError::InvalidConfig(format!("API URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| TwilioError::InvalidConfig("API URL cannot have a path".into()))?
            .pop_if_empty()
            .extend([
                "2010-04-01",
                "Accounts",
                self.account_sid(),
                "IncomingPhoneNumbers.json",
            ]);
        url.query_pairs_mut().append_pair("PageSize", "1");
        let call = Call {
            operation: "verify_account",
            method: Method::GET,
            route: ROUTE_INCOMING_NUMBERS,
            sid: None,
            url: url.into(),
            body: None,
            replay: Replay::Safe,
        };
        let _: IncomingPhoneNumberPage = self.transport.execute(call, decode).await?;
        Ok(())
    }
}
