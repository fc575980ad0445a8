//! Request and response bodies of `/v2/Channels/Senders`, as in Twilio's OpenAPI document
//! (`messaging.v2.channels_sender.*`).
//!
//! Requests are strict and typed: every optional field is skipped when `None`, so an update
//! carries only what the caller wants to change. Responses are lenient: unknown fields are
//! ignored, `null` reads as "absent", and open value sets (status aside) stay strings, because
//! Twilio adds fields and values without notice and the operator must not break when it does.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::enums::{AccountType, VerificationMethod, Vertical, WebhookMethod};

/// `whatsapp:+<E.164>`, Twilio's sender ID for a phone number. Accepts the number with or
/// without its leading `+`.
pub fn sender_id_for(phone_e164: &str) -> String {
    let digits = phone_e164.trim().trim_start_matches('+');
    format!("whatsapp:+{digits}")
}

/// True for a sender SID (`^XE[0-9a-fA-F]{32}$`). The client refuses anything else before it
/// becomes part of a URL path.
pub fn is_valid_sender_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("XE") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Body of `POST /v2/Channels/Senders`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateSenderRequest {
    /// `whatsapp:+E164`, see [`sender_id_for`].
    pub sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Configuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

/// Body of `POST /v2/Channels/Senders/{Sid}`: only the parts that differ.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateSenderRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Configuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
}

impl UpdateSenderRequest {
    /// An update that only submits the one-time code Meta sent to the number.
    pub fn verification_code(code: VerificationCode) -> Self {
        Self {
            configuration: Some(Configuration {
                verification_code: Some(code),
                ..Configuration::default()
            }),
            ..Self::default()
        }
    }

    /// Nothing to send: callers skip the request instead of posting `{}`.
    pub fn is_empty(&self) -> bool {
        self.configuration.is_none() && self.webhook.is_none() && self.profile.is_none()
    }

    /// Whether this update submits an OTP. Such an update is not safe to repeat blindly (the
    /// client retries it only when Twilio certainly did not receive it).
    pub fn submits_verification_code(&self) -> bool {
        self.configuration
            .as_ref()
            .is_some_and(|c| c.verification_code.is_some())
    }
}

/// One field of an update: left out (Twilio keeps its value), `null` (Twilio clears it), or
/// a new value. Create requests only ever use `Keep` and `Set`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum FieldUpdate<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> FieldUpdate<T> {
    /// `skip_serializing_if` helper: a kept field is not in the body at all.
    pub fn is_keep(&self) -> bool {
        matches!(self, Self::Keep)
    }

    /// The new value, if this sets one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Set(value) => Some(value),
            _ => None,
        }
    }
}

impl<T: Serialize> Serialize for FieldUpdate<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Set(value) => value.serialize(s),
            Self::Keep | Self::Clear => s.serialize_none(),
        }
    }
}

/// `configuration` of a request.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Configuration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_method: Option<VerificationMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_code: Option<VerificationCode>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub voice_application_sid: FieldUpdate<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<AccountTypeUpdate>,
}

/// `configuration.account_type` of a request. Twilio's document: a value sets it, an empty
/// string clears it, leaving it out keeps it (the document's enum omits the empty string its
/// own description asks for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountTypeUpdate {
    Set(AccountType),
    Clear,
}

impl Serialize for AccountTypeUpdate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Set(account_type) => account_type.as_str(),
            Self::Clear => "",
        })
    }
}

/// The one-time password from Meta. Serialized as the plain code (Twilio needs it), but its
/// `Debug` is redacted so a logged request or a panic never leaks it.
#[derive(Clone)]
pub struct VerificationCode(SecretString);

impl VerificationCode {
    pub fn new(code: impl Into<String>) -> Self {
        Self(SecretString::from(code.into().trim().to_string()))
    }

    /// The code itself; for comparing with what was last submitted, never for logging.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode([REDACTED])")
    }
}

impl PartialEq for VerificationCode {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Serialize for VerificationCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

/// `webhook` of a request. In an update, `Clear` removes a URL or method.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Webhook {
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub callback_url: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub callback_method: FieldUpdate<WebhookMethod>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub fallback_url: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub fallback_method: FieldUpdate<WebhookMethod>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub status_callback_url: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub status_callback_method: FieldUpdate<WebhookMethod>,
}

/// `profile` of a request. `emails`/`websites` go out as plain strings (Twilio answers with
/// `{email,label}`/`{website,label}` objects, see [`SenderProfile`]). In an update, `Clear`
/// removes a field (Twilio's document marks them all nullable).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Profile {
    /// Display name. Required at creation; Twilio does not let the API change it afterwards.
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub name: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub about: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub address: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub description: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub vertical: FieldUpdate<Vertical>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub logo_url: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub banner_url: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub privacy_url: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub terms_of_service_url: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub accent_color: FieldUpdate<String>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub emails: FieldUpdate<Vec<String>>,
    #[serde(skip_serializing_if = "FieldUpdate::is_keep")]
    pub websites: FieldUpdate<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// `null` or absent reads as the type's default: Twilio returns `null` for many fields it has
/// no value for yet, and that must not fail a whole response.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list that may be `null`, absent, or hold `null` entries (the document marks the items
/// nullable): nulls are dropped.
fn list_skipping_nulls<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items: Option<Vec<Option<T>>> = Option::deserialize(d)?;
    Ok(items.unwrap_or_default().into_iter().flatten().collect())
}

/// Twilio's sender status. Kept verbatim in `.status`, so unknown words survive a round trip.
/// Its words are Twilio's `SCREAMING_SNAKE_CASE` of the variant, `ONLINE:UPDATING` aside.
#[derive(Clone, Debug, PartialEq, Eq, Hash, strum::EnumString, strum::AsRefStr, strum::Display)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SenderStatus {
    Creating,
    Online,
    Offline,
    PendingVerification,
    Verifying,
    #[strum(serialize = "ONLINE:UPDATING")]
    OnlineUpdating,
    TwilioReview,
    Draft,
    Stubbed,
    /// A word this version does not know (or an empty one when Twilio sent none).
    #[strum(default, transparent)]
    Unknown(String),
}

impl SenderStatus {
    pub fn parse(word: &str) -> Self {
        match word.parse() {
            Ok(status) => status,
            Err(never) => match never {},
        }
    }

    /// Twilio's own word.
    pub fn as_str(&self) -> &str {
        self.as_ref()
    }
}

impl Default for SenderStatus {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

impl Serialize for SenderStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SenderStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word: Option<String> = Option::deserialize(d)?;
        Ok(Self::parse(word.as_deref().unwrap_or("")))
    }
}

/// One sender as Twilio reports it (`messaging.v2.channels_sender_response`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    #[serde(default, deserialize_with = "null_as_default")]
    pub sid: String,
    #[serde(default)]
    pub status: SenderStatus,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sender_id: String,
    /// `None` when Twilio leaves it out (update answers carry only the changed part).
    #[serde(default)]
    pub configuration: Option<SenderConfiguration>,
    #[serde(default)]
    pub webhook: Option<SenderWebhook>,
    #[serde(default)]
    pub profile: Option<SenderProfile>,
    #[serde(default)]
    pub properties: Option<SenderProperties>,
    #[serde(default, deserialize_with = "list_skipping_nulls")]
    pub offline_reasons: Vec<OfflineReason>,
    #[serde(default)]
    pub url: Option<String>,
}

impl Sender {
    /// Whether this sender is the WhatsApp sender of `phone_e164` (Twilio may change the case
    /// of the `whatsapp:` prefix).
    pub fn is_for(&self, phone_e164: &str) -> bool {
        self.sender_id
            .trim()
            .eq_ignore_ascii_case(&sender_id_for(phone_e164))
    }
}

/// `configuration` as Twilio reports it. Twilio echoes `verification_code` in answers; it is
/// deliberately not read, so the OTP never lives in a response value that gets logged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderConfiguration {
    #[serde(default)]
    pub waba_id: Option<String>,
    #[serde(default)]
    pub verification_method: Option<String>,
    #[serde(default)]
    pub voice_application_sid: Option<String>,
    #[serde(default)]
    pub account_type: Option<String>,
}

/// `webhook` as Twilio reports it; methods stay strings in answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderWebhook {
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub callback_method: Option<String>,
    #[serde(default)]
    pub fallback_url: Option<String>,
    #[serde(default)]
    pub fallback_method: Option<String>,
    #[serde(default)]
    pub status_callback_url: Option<String>,
    #[serde(default)]
    pub status_callback_method: Option<String>,
}

/// `profile` as Twilio reports it (`profile_generic_response`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderProfile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub about: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A string, not [`Vertical`]: Meta may add categories.
    #[serde(default)]
    pub vertical: Option<String>,
    #[serde(default)]
    pub logo_url: Option<String>,
    #[serde(default)]
    pub banner_url: Option<String>,
    #[serde(default)]
    pub privacy_url: Option<String>,
    #[serde(default)]
    pub terms_of_service_url: Option<String>,
    #[serde(default)]
    pub accent_color: Option<String>,
    #[serde(default, deserialize_with = "list_skipping_nulls")]
    pub emails: Vec<ProfileEmail>,
    #[serde(default, deserialize_with = "list_skipping_nulls")]
    pub websites: Vec<ProfileWebsite>,
    #[serde(default, deserialize_with = "list_skipping_nulls")]
    pub phone_numbers: Vec<ProfilePhoneNumber>,
}

impl SenderProfile {
    /// The addresses alone, comparable with [`Profile::emails`].
    pub fn email_addresses(&self) -> Vec<String> {
        self.emails.iter().map(|e| e.email.clone()).collect()
    }

    /// The URLs alone, comparable with [`Profile::websites`].
    pub fn website_urls(&self) -> Vec<String> {
        self.websites.iter().map(|w| w.website.clone()).collect()
    }
}

/// Builds a labelled entry from either Twilio's object or a bare string (what requests send;
/// tolerated in answers too, in case a proxy or an older API version echoes it).
macro_rules! labelled_entry {
    ($name:ident, $field:ident) => {
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct $name {
            pub $field: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub label: Option<String>,
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                struct Object {
                    #[serde(default, deserialize_with = "null_as_default")]
                    $field: String,
                    #[serde(default)]
                    label: Option<String>,
                }
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Either {
                    Plain(String),
                    Object(Object),
                }
                Ok(match Either::deserialize(d)? {
                    Either::Plain($field) => Self {
                        $field,
                        label: None,
                    },
                    Either::Object(o) => Self {
                        $field: o.$field,
                        label: o.label,
                    },
                })
            }
        }
    };
}

labelled_entry!(ProfileEmail, email);
labelled_entry!(ProfileWebsite, website);
labelled_entry!(ProfilePhoneNumber, phone_number);

/// `properties`: what Meta says about a registered sender.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderProperties {
    /// `HIGH`, `MEDIUM`, `LOW`, … (kept as Twilio writes it).
    #[serde(default)]
    pub quality_rating: Option<String>,
    /// e.g. `10K Customers/24hr`.
    #[serde(default)]
    pub messaging_limit: Option<String>,
}

/// One entry of `offline_reasons`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OfflineReason {
    /// A string in Twilio's document and answers; numbers are accepted and turned into text.
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Code>::deserialize(d)?.map(|c| match c {
        Code::Text(s) => s,
        Code::Number(n) => n.to_string(),
    }))
}

/// One page of `GET /v2/Channels/Senders`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderPage {
    #[serde(default, deserialize_with = "list_skipping_nulls")]
    pub senders: Vec<Sender>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub meta: PageMeta,
}

/// One entry of the account's Error Log (`monitor.v1.alert`), as far as the operator reads it.
/// Every field is lenient: an entry that cannot be mapped to a sender is skipped, not an error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(default, deserialize_with = "null_as_default")]
    pub sid: String,
    /// Twilio's error code, as a string (`"63104"`).
    #[serde(default)]
    pub error_code: Option<String>,
    /// The resource the alert is about: a sender's `XE…` SID for registration failures.
    #[serde(default)]
    pub resource_sid: Option<String>,
    #[serde(default)]
    pub alert_text: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
    #[serde(default)]
    pub log_level: Option<String>,
    /// ISO 8601, GMT.
    #[serde(default)]
    pub date_created: Option<String>,
}

/// Body of `GET /v1/Alerts`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct AlertPage {
    #[serde(default, deserialize_with = "list_skipping_nulls")]
    pub alerts: Vec<Alert>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub meta: PageMeta,
}

/// `meta` of a list page. `next_page_url` is absolute and points at Twilio's host; the client
/// keeps only its path and query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageMeta {
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub page_size: Option<u64>,
    #[serde(default)]
    pub first_page_url: Option<String>,
    #[serde(default)]
    pub previous_page_url: Option<String>,
    #[serde(default)]
    pub next_page_url: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const OPENAPI: &str = include_str!("../../tests/openapi/twilio_messaging_v2.json");

    fn example(name: &str) -> Value {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        doc["components"]["examples"][name]["value"].clone()
    }

    #[test]
    fn sender_id_format() {
        assert_eq!(sender_id_for("+15017122661"), "whatsapp:+15017122661");
        assert_eq!(sender_id_for("5491112345678"), "whatsapp:+5491112345678");
    }

    #[test]
    fn sid_check() {
        assert!(is_valid_sender_sid("XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(is_valid_sender_sid("XE0123456789ABCDEF0123456789abcdef"));
        assert!(!is_valid_sender_sid("XEaaaa"));
        assert!(!is_valid_sender_sid("XEgaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(!is_valid_sender_sid("../../v2/Channels/Senders/XEaaaaaa"));
    }

    #[test]
    fn status_words_round_trip() {
        let words = [
            "CREATING",
            "ONLINE",
            "OFFLINE",
            "PENDING_VERIFICATION",
            "VERIFYING",
            "ONLINE:UPDATING",
            "TWILIO_REVIEW",
            "DRAFT",
            "STUBBED",
        ];
        for word in words {
            let status: SenderStatus = serde_json::from_value(json!(word)).unwrap();
            assert!(!matches!(status, SenderStatus::Unknown(_)), "{word}");
            assert_eq!(status.as_str(), word);
            assert_eq!(serde_json::to_value(&status).unwrap(), json!(word));
        }
        assert_eq!(
            SenderStatus::parse("ONLINE:UPDATING"),
            SenderStatus::OnlineUpdating
        );

        let new: SenderStatus = serde_json::from_value(json!("SUSPENDED_BY_META")).unwrap();
        assert_eq!(new, SenderStatus::Unknown("SUSPENDED_BY_META".into()));
        assert_eq!(new.as_str(), "SUSPENDED_BY_META");
        assert_eq!(new.to_string(), "SUSPENDED_BY_META");
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            json!("SUSPENDED_BY_META")
        );

        let null: SenderStatus = serde_json::from_value(Value::Null).unwrap();
        assert_eq!(null, SenderStatus::Unknown(String::new()));
    }

    #[test]
    fn parses_create_response_example() {
        let sender: Sender = serde_json::from_value(example("whatsapp_create_response")).unwrap();
        assert_eq!(sender.sid, "XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(sender.status, SenderStatus::Creating);
        assert_eq!(sender.sender_id, "whatsapp:+999999999XX");
        let config = sender.configuration.unwrap();
        assert_eq!(config.waba_id.as_deref(), Some("1234567XXX"));
        assert_eq!(config.verification_method.as_deref(), Some("sms"));
        let profile = sender.profile.unwrap();
        assert_eq!(
            profile.email_addresses(),
            ["example@example.com", "example2@example.com"]
        );
        assert_eq!(profile.websites[1].website, "http://website2.example.com");
        assert_eq!(profile.websites[1].label.as_deref(), Some("Website2"));
        assert_eq!(profile.vertical.as_deref(), Some("Automotive"));
        assert!(sender.properties.is_none());
        assert!(sender.offline_reasons.is_empty());
    }

    #[test]
    fn parses_fetch_examples() {
        let online: Sender = serde_json::from_value(example("whatsapp_fetch")).unwrap();
        assert_eq!(online.status, SenderStatus::Online);
        let props = online.properties.as_ref().unwrap();
        assert_eq!(props.quality_rating.as_deref(), Some("HIGH"));
        assert_eq!(props.messaging_limit.as_deref(), Some("10K Customers/24hr"));
        assert!(online.offline_reasons.is_empty(), "null offline_reasons");
        let profile = online.profile.as_ref().unwrap();
        assert!(profile.phone_numbers.is_empty(), "null phone_numbers");
        assert_eq!(profile.banner_url, None);
        assert_eq!(
            online.configuration.as_ref().unwrap().verification_method,
            None
        );
        assert_eq!(
            online.url.as_deref(),
            Some(
                "https://messaging.twilio.com/v2/Channels/Senders/XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            )
        );

        let offline: Sender =
            serde_json::from_value(example("whatsapp_fetch_offline_reasons")).unwrap();
        assert_eq!(offline.status, SenderStatus::Offline);
        assert_eq!(
            offline.offline_reasons,
            [OfflineReason {
                code: Some("30008".into()),
                message: Some("No delivery".into()),
                more_info: Some("https://www.twilio.com/docs/api/errors/30008".into()),
            }]
        );
    }

    #[test]
    fn parses_update_response_examples_with_null_parts() {
        let config: Sender =
            serde_json::from_value(example("whatsapp_patch_update_configuration_response"))
                .unwrap();
        assert_eq!(config.status, SenderStatus::Verifying);
        assert!(config.webhook.is_none() && config.profile.is_none());
        assert_eq!(
            config
                .configuration
                .as_ref()
                .unwrap()
                .voice_application_sid
                .as_deref(),
            Some("APaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        );
        // Twilio echoes the OTP; the model does not keep it anywhere.
        assert!(!format!("{config:?}").contains("123456"));

        let profile: Sender =
            serde_json::from_value(example("whatsapp_patch_update_profile_response")).unwrap();
        assert_eq!(
            profile.profile.unwrap().website_urls(),
            [
                "https://website3.example.com",
                "http://website4.example.com"
            ]
        );
        assert!(profile.configuration.is_none());

        let webhook: Sender =
            serde_json::from_value(example("whatsapp_patch_update_webhook_response")).unwrap();
        let hook = webhook.webhook.unwrap();
        assert_eq!(
            hook.callback_url.as_deref(),
            Some("https://callback.example.com")
        );
        assert_eq!(hook.status_callback_method.as_deref(), Some("POST"));
    }

    #[test]
    fn tolerates_unknown_fields_nulls_and_numeric_codes() {
        let sender: Sender = serde_json::from_value(json!({
            "sid": null,
            "status": "BRAND_NEW_STATE",
            "sender_id": "whatsapp:+15017122661",
            "brand_new_field": {"nested": [1, 2, 3]},
            "profile": {"name": "Acme", "emails": ["a@example.com"], "future": true,
                        "websites": null, "vertical": "Some Future Vertical"},
            "properties": {"quality_rating": "UNKNOWN", "messaging_tier": "TIER_1K"},
            "offline_reasons": [{"code": 63113, "message": "nope", "extra": 1}, null]
        }))
        .unwrap_or_else(|e| panic!("lenient parse failed: {e}"));
        assert_eq!(sender.sid, "");
        assert_eq!(sender.status.as_str(), "BRAND_NEW_STATE");
        let profile = sender.profile.unwrap();
        assert_eq!(profile.email_addresses(), ["a@example.com"]);
        assert!(profile.websites.is_empty());
        assert_eq!(profile.vertical.as_deref(), Some("Some Future Vertical"));
        assert_eq!(sender.offline_reasons.len(), 1, "null entries are dropped");
        assert_eq!(sender.offline_reasons[0].code.as_deref(), Some("63113"));
    }

    #[test]
    fn parses_list_page() {
        let page: SenderPage = serde_json::from_value(json!({
            "senders": [example("whatsapp_fetch")],
            "meta": {"page": 0, "page_size": 1, "next_page_url": null, "key": "senders",
                     "first_page_url": "https://messaging.twilio.com/v2/Channels/Senders?PageSize=1&Page=0&Channel=whatsapp"}
        }))
        .unwrap();
        assert_eq!(page.senders.len(), 1);
        assert_eq!(page.meta.page_size, Some(1));
        assert_eq!(page.meta.next_page_url, None);
        let empty: SenderPage = serde_json::from_value(json!({"senders": null})).unwrap();
        assert!(empty.senders.is_empty());
    }

    #[test]
    fn requests_skip_absent_fields_and_redact_the_code() {
        assert_eq!(
            serde_json::to_value(UpdateSenderRequest::default()).unwrap(),
            json!({})
        );
        assert!(UpdateSenderRequest::default().is_empty());

        let update = UpdateSenderRequest {
            configuration: Some(Configuration {
                verification_code: Some(VerificationCode::new(" 987654\n")),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(update.submits_verification_code());
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({"configuration": {"verification_code": "987654"}})
        );
        let shown = format!("{update:?} {update:#?}");
        assert!(!shown.contains("987654"), "{shown}");
        assert!(shown.contains("REDACTED"));
        assert_eq!(
            VerificationCode::new("1"),
            VerificationCode::new("1"),
            "codes compare by value"
        );
    }
}
