//! The simulator's own JSON types for Twilio's Senders resource. Deliberately independent of the
//! operator's client models, so that each side checks the other against the OpenAPI document.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::errors::ApiError;
use crate::wire_enum::{WireEnum, unknown_word};

/// `channels_sender_enum_status`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(into = "&'static str")]
#[strum(parse_err_ty = String, parse_err_fn = unknown_word::<Self>)]
pub enum Status {
    #[strum(serialize = "CREATING")]
    Creating,
    #[strum(serialize = "ONLINE")]
    Online,
    #[strum(serialize = "OFFLINE")]
    Offline,
    #[strum(serialize = "PENDING_VERIFICATION")]
    PendingVerification,
    #[strum(serialize = "VERIFYING")]
    Verifying,
    #[strum(serialize = "ONLINE:UPDATING")]
    OnlineUpdating,
    #[strum(serialize = "TWILIO_REVIEW")]
    TwilioReview,
    #[strum(serialize = "DRAFT")]
    Draft,
    #[strum(serialize = "STUBBED")]
    Stubbed,
}

impl WireEnum for Status {
    const WHAT: &'static str = "status";
}

// ---------------------------------------------------------------------------------------------
// Response side (also what the store keeps).

/// `messaging.v2.channels_sender_response`.
#[derive(Debug, Clone, Serialize)]
pub struct SenderResource {
    pub sid: String,
    pub status: Status,
    pub sender_id: String,
    pub configuration: Configuration,
    pub webhook: Webhook,
    pub profile: Profile,
    pub properties: Properties,
    pub offline_reasons: Option<Vec<OfflineReason>>,
    /// RCS only; always null for WhatsApp.
    pub compliance: Option<Value>,
    pub url: String,
}

/// What `POST /v2/Channels/Senders/{Sid}` answers, as in Twilio's
/// `whatsapp_patch_update_*_response` examples: the sections the request sent, null for the
/// others, and no `properties`, `offline_reasons` or `url`.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateAnswer {
    pub sid: String,
    pub status: Status,
    pub sender_id: String,
    /// RCS only; always null for WhatsApp.
    pub compliance: Option<Value>,
    pub configuration: Option<Configuration>,
    pub webhook: Option<Webhook>,
    pub profile: Option<Profile>,
}

/// Which sections an update request sent (a null section counts as not sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sections {
    pub configuration: bool,
    pub webhook: bool,
    pub profile: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Configuration {
    pub waba_id: Option<String>,
    pub verification_method: Option<String>,
    /// Never echoed back: always null in responses.
    pub verification_code: Option<String>,
    pub voice_application_sid: Option<String>,
    pub account_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub callback_url: Option<String>,
    pub callback_method: Option<String>,
    pub fallback_url: Option<String>,
    pub fallback_method: Option<String>,
    pub status_callback_url: Option<String>,
    pub status_callback_method: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub name: Option<String>,
    pub about: Option<String>,
    pub address: Option<String>,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    pub banner_url: Option<String>,
    pub privacy_url: Option<String>,
    pub terms_of_service_url: Option<String>,
    pub accent_color: Option<String>,
    pub vertical: Option<String>,
    pub websites: Option<Vec<Website>>,
    pub emails: Option<Vec<Email>>,
    pub phone_numbers: Option<Vec<PhoneNumber>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    pub email: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Website {
    pub website: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneNumber {
    pub phone_number: String,
    pub label: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Properties {
    pub quality_rating: Option<String>,
    pub messaging_limit: Option<String>,
}

/// `offline_reasons[]`; `code` is a string in Twilio's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfflineReason {
    pub code: String,
    pub message: Option<String>,
    pub more_info: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Request side.

/// One field of a request: absent (keep the current value), null (clear it) or a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Field::Null, Field::Value))
    }
}

impl<T> Field<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn apply_to(self, target: &mut Option<T>) {
        match self {
            Field::Absent => {}
            Field::Null => *target = None,
            Field::Value(v) => *target = Some(v),
        }
    }

    fn try_map<U>(self, f: impl FnOnce(T) -> Result<U, ApiError>) -> Result<Field<U>, ApiError> {
        Ok(match self {
            Field::Absent => Field::Absent,
            Field::Null => Field::Null,
            Field::Value(v) => Field::Value(f(v)?),
        })
    }
}

/// `messaging.v2.channels_sender.requests.create`.
#[derive(Debug, Default, Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    pub sender_id: Field<String>,
    #[serde(default)]
    pub configuration: Option<ConfigurationIn>,
    #[serde(default)]
    pub webhook: Option<WebhookIn>,
    #[serde(default)]
    pub profile: Option<ProfileIn>,
}

/// `messaging.v2.channels_sender.requests.update`; null sections mean "no change".
#[derive(Debug, Default, Deserialize)]
pub struct UpdateRequest {
    #[serde(default)]
    pub configuration: Option<ConfigurationIn>,
    #[serde(default)]
    pub webhook: Option<WebhookIn>,
    #[serde(default)]
    pub profile: Option<ProfileIn>,
}

impl UpdateRequest {
    pub fn sections(&self) -> Sections {
        Sections {
            configuration: self.configuration.is_some(),
            webhook: self.webhook.is_some(),
            profile: self.profile.is_some(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ConfigurationIn {
    #[serde(default)]
    pub waba_id: Field<String>,
    #[serde(default)]
    pub verification_method: Field<String>,
    #[serde(default)]
    pub verification_code: Field<String>,
    #[serde(default)]
    pub voice_application_sid: Field<String>,
    #[serde(default)]
    pub account_type: Field<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct WebhookIn {
    #[serde(default)]
    pub callback_url: Field<String>,
    #[serde(default)]
    pub callback_method: Field<String>,
    #[serde(default)]
    pub fallback_url: Field<String>,
    #[serde(default)]
    pub fallback_method: Field<String>,
    #[serde(default)]
    pub status_callback_url: Field<String>,
    #[serde(default)]
    pub status_callback_method: Field<String>,
}

/// Request profile. `emails`/`websites`/`phone_numbers` entries may be plain strings (what
/// Twilio's docs send) or `{value, label}` objects (what its OpenAPI examples send).
#[derive(Debug, Default, Deserialize)]
pub struct ProfileIn {
    #[serde(default)]
    pub name: Field<String>,
    #[serde(default)]
    pub about: Field<String>,
    #[serde(default)]
    pub address: Field<String>,
    #[serde(default)]
    pub description: Field<String>,
    #[serde(default)]
    pub logo_url: Field<String>,
    #[serde(default)]
    pub banner_url: Field<String>,
    #[serde(default)]
    pub privacy_url: Field<String>,
    #[serde(default)]
    pub terms_of_service_url: Field<String>,
    #[serde(default)]
    pub accent_color: Field<String>,
    #[serde(default)]
    pub vertical: Field<String>,
    #[serde(default)]
    pub websites: Field<Vec<Value>>,
    #[serde(default)]
    pub emails: Field<Vec<Value>>,
    #[serde(default)]
    pub phone_numbers: Field<Vec<Value>>,
}

/// `profile.vertical` values listed in the OpenAPI document.
pub const VERTICALS: [&str; 22] = [
    "Alcohol",
    "Automotive",
    "Beauty, Spa and Salon",
    "Clothing and Apparel",
    "Education",
    "Entertainment",
    "Event Planning and Service",
    "Finance and Banking",
    "Food and Grocery",
    "Hotel and Lodging",
    "Matrimony Service",
    "Medical and Health",
    "Non-profit",
    "Online Gambling",
    "OTC Drugs",
    "Other",
    "Physical Gambling",
    "Professional Services",
    "Public Service",
    "Restaurant",
    "Shopping and Retail",
    "Travel and Transportation",
];

/// The phone number (`+…`) of a `whatsapp:+<E.164>` sender ID, or a 63100.
pub fn parse_sender_id(sender_id: &str) -> Result<String, ApiError> {
    let number = sender_id.strip_prefix("whatsapp:").unwrap_or("");
    if is_e164(number) {
        Ok(number.to_string())
    } else {
        Err(ApiError::validation(format!(
            "sender_id must be 'whatsapp:+' followed by an E.164 phone number, got {sender_id:?}"
        )))
    }
}

/// `+` then 7 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

impl ConfigurationIn {
    /// Checks the enum fields.
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(method) = self.verification_method.value()
            && !matches!(method.as_str(), "sms" | "voice")
        {
            return Err(ApiError::invalid_parameter(format!(
                "configuration.verification_method must be 'sms' or 'voice', got {method:?}"
            )));
        }
        if let Some(kind) = self.account_type.value()
            && !matches!(kind.as_str(), "ISV" | "ISVSubAccount" | "")
        {
            return Err(ApiError::invalid_parameter(format!(
                "configuration.account_type must be 'ISV', 'ISVSubAccount' or empty, got {kind:?}"
            )));
        }
        Ok(())
    }

    pub fn apply(self, target: &mut Configuration) {
        self.waba_id.apply_to(&mut target.waba_id);
        self.verification_method
            .apply_to(&mut target.verification_method);
        self.voice_application_sid
            .apply_to(&mut target.voice_application_sid);
        // An empty account_type clears it, per the schema's description.
        match self.account_type {
            Field::Value(kind) if kind.is_empty() => target.account_type = None,
            other => other.apply_to(&mut target.account_type),
        }
    }
}

impl WebhookIn {
    pub fn validate(&self) -> Result<(), ApiError> {
        for (name, method) in [
            ("callback_method", &self.callback_method),
            ("fallback_method", &self.fallback_method),
        ] {
            if let Some(method) = method.value()
                && !matches!(method.as_str(), "POST" | "PUT")
            {
                return Err(ApiError::invalid_parameter(format!(
                    "webhook.{name} must be 'POST' or 'PUT', got {method:?}"
                )));
            }
        }
        for (name, url) in [
            ("callback_url", &self.callback_url),
            ("fallback_url", &self.fallback_url),
            ("status_callback_url", &self.status_callback_url),
        ] {
            if let Some(url) = url.value()
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(ApiError::invalid_parameter(format!(
                    "webhook.{name} must be an http(s) URL, got {url:?}"
                )));
            }
        }
        Ok(())
    }

    pub fn apply(self, target: &mut Webhook) {
        self.callback_url.apply_to(&mut target.callback_url);
        self.callback_method.apply_to(&mut target.callback_method);
        self.fallback_url.apply_to(&mut target.fallback_url);
        self.fallback_method.apply_to(&mut target.fallback_method);
        self.status_callback_url
            .apply_to(&mut target.status_callback_url);
        self.status_callback_method
            .apply_to(&mut target.status_callback_method);
    }
}

/// A profile update checked and converted to response shapes, ready to merge.
#[derive(Debug)]
pub struct ProfilePatch {
    pub name: Field<String>,
    rest: ProfileIn,
    websites: Field<Vec<Website>>,
    emails: Field<Vec<Email>>,
    phone_numbers: Field<Vec<PhoneNumber>>,
}

impl ProfileIn {
    pub fn into_patch(mut self) -> Result<ProfilePatch, ApiError> {
        if let Some(name) = self.name.value()
            && name.trim().is_empty()
        {
            return Err(ApiError::validation("profile.name must not be empty"));
        }
        if let Some(vertical) = self.vertical.value()
            && !VERTICALS.contains(&vertical.as_str())
        {
            return Err(ApiError::validation(format!(
                "profile.vertical {vertical:?} is not one of: {}",
                VERTICALS.join(", ")
            )));
        }
        let websites = std::mem::take(&mut self.websites).try_map(|entries| {
            labeled(entries, "websites", "website", "Website").map(|v| {
                v.into_iter()
                    .map(|(website, label)| Website { website, label })
                    .collect()
            })
        })?;
        let emails = std::mem::take(&mut self.emails).try_map(|entries| {
            labeled(entries, "emails", "email", "Email").map(|v| {
                v.into_iter()
                    .map(|(email, label)| Email { email, label })
                    .collect()
            })
        })?;
        let phone_numbers = std::mem::take(&mut self.phone_numbers).try_map(|entries| {
            labeled(entries, "phone_numbers", "phone_number", "Phone").map(|v| {
                v.into_iter()
                    .map(|(phone_number, label)| PhoneNumber {
                        phone_number,
                        label,
                    })
                    .collect()
            })
        })?;
        Ok(ProfilePatch {
            name: std::mem::take(&mut self.name),
            rest: self,
            websites,
            emails,
            phone_numbers,
        })
    }
}

impl ProfilePatch {
    pub fn apply(self, target: &mut Profile) {
        let rest = self.rest;
        self.name.apply_to(&mut target.name);
        rest.about.apply_to(&mut target.about);
        rest.address.apply_to(&mut target.address);
        rest.description.apply_to(&mut target.description);
        rest.logo_url.apply_to(&mut target.logo_url);
        rest.banner_url.apply_to(&mut target.banner_url);
        rest.privacy_url.apply_to(&mut target.privacy_url);
        rest.terms_of_service_url
            .apply_to(&mut target.terms_of_service_url);
        rest.accent_color.apply_to(&mut target.accent_color);
        rest.vertical.apply_to(&mut target.vertical);
        self.websites.apply_to(&mut target.websites);
        self.emails.apply_to(&mut target.emails);
        self.phone_numbers.apply_to(&mut target.phone_numbers);
    }
}

/// `["a"]` or `[{"<key>": "a", "label": "L"}]` → `[("a", "L")]`.
fn labeled(
    entries: Vec<Value>,
    field: &str,
    key: &str,
    default_label: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    entries
        .into_iter()
        .map(|entry| match entry {
            Value::String(value) => Ok((value, default_label.to_string())),
            Value::Object(mut object) => {
                let value = match object.remove(key) {
                    Some(Value::String(value)) => value,
                    _ => {
                        return Err(ApiError::invalid_parameter(format!(
                            "profile.{field}[] objects need a string {key:?}"
                        )));
                    }
                };
                let label = match object.remove("label") {
                    Some(Value::String(label)) => label,
                    None | Some(Value::Null) => default_label.to_string(),
                    Some(_) => {
                        return Err(ApiError::invalid_parameter(format!(
                            "profile.{field}[].label must be a string"
                        )));
                    }
                };
                Ok((value, label))
            }
            _ => Err(ApiError::invalid_parameter(format!(
                "profile.{field}[] entries must be strings or {{\"{key}\", \"label\"}} objects"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use strum::VariantArray;

    #[test]
    fn status_round_trips_through_its_wire_name() {
        for &status in Status::VARIANTS {
            let word: &str = status.into();
            assert_eq!(word.parse::<Status>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), json!(word));
        }
        assert!("online".parse::<Status>().is_err());
    }

    #[test]
    fn sender_id_must_be_whatsapp_e164() {
        assert_eq!(
            parse_sender_id("whatsapp:+15005550006").unwrap(),
            "+15005550006"
        );
        for bad in [
            "+15005550006",
            "whatsapp:15005550006",
            "whatsapp:+1",
            "whatsapp:+1500x550006",
            "sms:+15005550006",
        ] {
            assert_eq!(parse_sender_id(bad).unwrap_err().code, 63100, "{bad}");
        }
    }

    #[test]
    fn profile_lists_accept_strings_and_objects() {
        let profile: ProfileIn = serde_json::from_value(json!({
            "emails": ["a@example.com", {"email": "b@example.com", "label": "Support"}],
            "websites": [{"website": "https://example.com"}],
            "about": null,
        }))
        .unwrap();
        let mut target = Profile {
            about: Some("old".into()),
            address: Some("kept".into()),
            ..Profile::default()
        };
        profile.into_patch().unwrap().apply(&mut target);
        assert_eq!(
            serde_json::to_value(&target).unwrap(),
            json!({
                "name": null, "about": null, "address": "kept", "description": null,
                "logo_url": null, "banner_url": null, "privacy_url": null,
                "terms_of_service_url": null, "accent_color": null, "vertical": null,
                "websites": [{"website": "https://example.com", "label": "Website"}],
                "emails": [
                    {"email": "a@example.com", "label": "Email"},
                    {"email": "b@example.com", "label": "Support"}
                ],
                "phone_numbers": null,
            })
        );
    }

    #[test]
    fn profile_rejects_bad_vertical_and_entries() {
        let bad: ProfileIn = serde_json::from_value(json!({"vertical": "Spaceflight"})).unwrap();
        assert_eq!(bad.into_patch().unwrap_err().code, 63100);
        let bad: ProfileIn = serde_json::from_value(json!({"emails": [42]})).unwrap();
        assert_eq!(bad.into_patch().unwrap_err().code, 20001);
    }
}
