//! Spec × what Twilio reports → the request to send. Pure.
//!
//! Creation sends everything the spec sets. Afterwards only the fields that differ go out, and
//! nothing at all when nothing differs: even an empty `{"profile":{}}` moves an ONLINE sender
//! to ONLINE:UPDATING. A field the spec no longer sets is sent as `null`, which clears it.

use crate::api::{Profile as SpecProfile, Webhook as SpecWebhook, WhatsAppSenderSpec};
use crate::twilio::{
    AccountTypeUpdate, Configuration, CreateSenderRequest, FieldUpdate, Profile, Sender,
    SenderConfiguration, SenderProfile, SenderWebhook, UpdateSenderRequest, Webhook, WebhookMethod,
    sender_id_for,
};

/// What a sender's spec asks Twilio to create.
pub fn create_request(spec: &WhatsAppSenderSpec) -> CreateSenderRequest {
    let verification = spec.verification.as_ref();
    let configuration = Configuration {
        waba_id: spec.waba_id.clone(),
        verification_method: verification.map(|v| v.method),
        verification_code: None,
        voice_application_sid: set(verification.and_then(|v| v.voice_application_sid.clone())),
        account_type: spec.account_type.map(AccountTypeUpdate::Set),
    };
    let has_configuration = configuration != Configuration::default();
    CreateSenderRequest {
        sender_id: sender_id_for(&spec.phone_number),
        configuration: has_configuration.then_some(configuration),
        webhook: spec.webhook.as_ref().map(full_webhook),
        profile: Some(full_profile(&spec.profile)),
    }
}

fn set<T>(value: Option<T>) -> FieldUpdate<T> {
    value.map_or(FieldUpdate::Keep, FieldUpdate::Set)
}

fn set_list(values: &[String]) -> FieldUpdate<Vec<String>> {
    if values.is_empty() {
        FieldUpdate::Keep
    } else {
        FieldUpdate::Set(values.to_vec())
    }
}

fn full_profile(profile: &SpecProfile) -> Profile {
    Profile {
        name: FieldUpdate::Set(profile.name.clone()),
        about: set(profile.about.clone()),
        address: set(profile.address.clone()),
        description: set(profile.description.clone()),
        vertical: set(profile.vertical),
        logo_url: set(profile.logo_url.clone()),
        banner_url: set(profile.banner_url.clone()),
        privacy_url: set(profile.privacy_url.clone()),
        terms_of_service_url: set(profile.terms_of_service_url.clone()),
        accent_color: set(profile.accent_color.clone()),
        emails: set_list(&profile.emails),
        websites: set_list(&profile.websites),
    }
}

fn full_webhook(webhook: &SpecWebhook) -> Webhook {
    Webhook {
        callback_url: set(webhook.callback_url.clone()),
        callback_method: set(webhook.callback_method),
        fallback_url: set(webhook.fallback_url.clone()),
        fallback_method: set(webhook.fallback_method),
        status_callback_url: set(webhook.status_callback_url.clone()),
        status_callback_method: set(webhook.status_callback_method),
    }
}

/// How Twilio's sender differs from the spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drift {
    /// The update that brings Twilio in line; empty when nothing needs sending.
    pub update: UpdateSenderRequest,
    /// Names of the fields the update sets or clears (`profile.about`, `webhook.callback_url`),
    /// for Events and logs. Values are never listed.
    pub fields: Vec<&'static str>,
    /// Twilio shows another display name. No API can change it, so it is reported, not sent.
    pub display_name: Option<String>,
    /// Twilio shows another WABA. A number cannot move between WABAs.
    pub waba_id: Option<String>,
}

impl Drift {
    /// True when the spec is fully applied.
    pub fn is_none(&self) -> bool {
        self.update.is_empty() && self.display_name.is_none() && self.waba_id.is_none()
    }
}

/// Compares the spec with `observed` (a full sender as GET or list return it).
pub fn drift(spec: &WhatsAppSenderSpec, observed: &Sender) -> Drift {
    let mut fields = Vec::new();
    let no_profile = SenderProfile::default();
    let observed_profile = observed.profile.as_ref().unwrap_or(&no_profile);
    let profile = profile_update(&spec.profile, observed_profile, &mut fields);
    let no_webhook = SenderWebhook::default();
    let no_configuration = SenderConfiguration::default();
    let webhook = webhook_update(
        spec.webhook.as_ref(),
        observed.webhook.as_ref().unwrap_or(&no_webhook),
        &mut fields,
    );
    let display_name = observed_profile
        .name
        .as_deref()
        .filter(|name| !name.trim().is_empty() && *name != spec.profile.name)
        .map(str::to_string);
    let waba_id = match (&spec.waba_id, observed.configuration.as_ref()) {
        (Some(wanted), Some(config)) => config
            .waba_id
            .as_deref()
            .filter(|actual| !actual.is_empty() && actual != wanted)
            .map(str::to_string),
        _ => None,
    };
    let configuration = configuration_update(
        spec,
        observed.configuration.as_ref().unwrap_or(&no_configuration),
        &mut fields,
    );
    Drift {
        update: UpdateSenderRequest {
            configuration,
            webhook,
            profile,
        },
        fields,
        display_name,
        waba_id,
    }
}

/// `Keep` when equal, `Set` when the spec has another value, `Clear` when the spec has none.
fn compare<T>(
    name: &'static str,
    wanted: Option<T>,
    actual: Option<&str>,
    same: impl Fn(&T, &str) -> bool,
    fields: &mut Vec<&'static str>,
) -> FieldUpdate<T> {
    let actual = actual.filter(|a| !a.is_empty());
    let update = match (wanted, actual) {
        (Some(w), Some(a)) if same(&w, a) => FieldUpdate::Keep,
        (Some(w), _) => FieldUpdate::Set(w),
        (None, Some(_)) => FieldUpdate::Clear,
        (None, None) => FieldUpdate::Keep,
    };
    if !update.is_keep() {
        fields.push(name);
    }
    update
}

fn text(
    name: &'static str,
    wanted: &Option<String>,
    actual: &Option<String>,
    fields: &mut Vec<&'static str>,
) -> FieldUpdate<String> {
    let wanted = wanted.clone().filter(|w| !w.is_empty());
    compare(name, wanted, actual.as_deref(), |w, a| w == a, fields)
}

fn list(
    name: &'static str,
    wanted: &[String],
    actual: Vec<String>,
    fields: &mut Vec<&'static str>,
) -> FieldUpdate<Vec<String>> {
    let update = match (wanted.is_empty(), actual.is_empty()) {
        _ if wanted == actual.as_slice() => FieldUpdate::Keep,
        (true, false) => FieldUpdate::Clear,
        _ => FieldUpdate::Set(wanted.to_vec()),
    };
    if !update.is_keep() {
        fields.push(name);
    }
    update
}

fn profile_update(
    spec: &SpecProfile,
    actual: &SenderProfile,
    fields: &mut Vec<&'static str>,
) -> Option<Profile> {
    let profile = Profile {
        // Never sent after creation: Twilio refuses a display-name change (see `Drift`).
        name: FieldUpdate::Keep,
        about: text("profile.about", &spec.about, &actual.about, fields),
        address: text("profile.address", &spec.address, &actual.address, fields),
        description: text(
            "profile.description",
            &spec.description,
            &actual.description,
            fields,
        ),
        vertical: compare(
            "profile.vertical",
            spec.vertical,
            actual.vertical.as_deref(),
            |w, a| w.as_str() == a,
            fields,
        ),
        logo_url: text("profile.logo_url", &spec.logo_url, &actual.logo_url, fields),
        banner_url: text(
            "profile.banner_url",
            &spec.banner_url,
            &actual.banner_url,
            fields,
        ),
        privacy_url: text(
            "profile.privacy_url",
            &spec.privacy_url,
            &actual.privacy_url,
            fields,
        ),
        terms_of_service_url: text(
            "profile.terms_of_service_url",
            &spec.terms_of_service_url,
            &actual.terms_of_service_url,
            fields,
        ),
        // Colours are hex: `#1A2B3C` and `#1a2b3c` are the same colour.
        accent_color: compare(
            "profile.accent_color",
            spec.accent_color.clone().filter(|c| !c.is_empty()),
            actual.accent_color.as_deref(),
            |w, a| w.eq_ignore_ascii_case(a),
            fields,
        ),
        emails: list(
            "profile.emails",
            &spec.emails,
            actual.email_addresses(),
            fields,
        ),
        websites: list(
            "profile.websites",
            &spec.websites,
            actual.website_urls(),
            fields,
        ),
    };
    (profile != Profile::default()).then_some(profile)
}

/// The configuration fields an update may change: the voice application that takes the
/// verification call, and the account type. (The WABA cannot change; the verification method
/// only matters while a code is pending, which an update does not restart.)
fn configuration_update(
    spec: &WhatsAppSenderSpec,
    actual: &SenderConfiguration,
    fields: &mut Vec<&'static str>,
) -> Option<Configuration> {
    let wanted_voice = spec
        .verification
        .as_ref()
        .and_then(|v| v.voice_application_sid.clone());
    let voice_application_sid = compare(
        "configuration.voice_application_sid",
        wanted_voice,
        actual.voice_application_sid.as_deref(),
        |w, a| w.eq_ignore_ascii_case(a),
        fields,
    );
    let actual_type = actual.account_type.as_deref().filter(|a| !a.is_empty());
    let account_type = match (spec.account_type, actual_type) {
        (Some(wanted), Some(actual)) if wanted.as_str() == actual => None,
        (Some(wanted), _) => Some(AccountTypeUpdate::Set(wanted)),
        (None, Some(_)) => Some(AccountTypeUpdate::Clear),
        (None, None) => None,
    };
    if account_type.is_some() {
        fields.push("configuration.account_type");
    }
    let configuration = Configuration {
        voice_application_sid,
        account_type,
        ..Configuration::default()
    };
    (configuration != Configuration::default()).then_some(configuration)
}

/// Twilio calls webhooks with POST unless told otherwise, and may report the default either
/// way: an unset method and `POST` are the same.
fn same_method(wanted: &WebhookMethod, actual: &str) -> bool {
    wanted.as_str().eq_ignore_ascii_case(actual)
}

fn method(
    name: &'static str,
    wanted: Option<WebhookMethod>,
    actual: &Option<String>,
    fields: &mut Vec<&'static str>,
) -> FieldUpdate<WebhookMethod> {
    let actual = actual
        .as_deref()
        .filter(|a| !a.eq_ignore_ascii_case(WebhookMethod::Post.as_str()));
    let wanted = wanted.filter(|w| *w != WebhookMethod::Post);
    compare(name, wanted, actual, same_method, fields)
}

fn webhook_update(
    spec: Option<&SpecWebhook>,
    actual: &SenderWebhook,
    fields: &mut Vec<&'static str>,
) -> Option<Webhook> {
    let none = SpecWebhook {
        callback_url: None,
        callback_method: None,
        fallback_url: None,
        fallback_method: None,
        status_callback_url: None,
        status_callback_method: None,
    };
    let spec = spec.unwrap_or(&none);
    let webhook = Webhook {
        callback_url: text(
            "webhook.callback_url",
            &spec.callback_url,
            &actual.callback_url,
            fields,
        ),
        callback_method: method(
            "webhook.callback_method",
            spec.callback_method,
            &actual.callback_method,
            fields,
        ),
        fallback_url: text(
            "webhook.fallback_url",
            &spec.fallback_url,
            &actual.fallback_url,
            fields,
        ),
        fallback_method: method(
            "webhook.fallback_method",
            spec.fallback_method,
            &actual.fallback_method,
            fields,
        ),
        status_callback_url: text(
            "webhook.status_callback_url",
            &spec.status_callback_url,
            &actual.status_callback_url,
            fields,
        ),
        status_callback_method: method(
            "webhook.status_callback_method",
            spec.status_callback_method,
            &actual.status_callback_method,
            fields,
        ),
    };
    (webhook != Webhook::default()).then_some(webhook)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn spec(extra: Value) -> WhatsAppSenderSpec {
        let mut base = json!({
            "phoneNumber": "+15017122661",
            "credentialsRef": {"name": "twilio"},
            "profile": {"name": "Acme"},
        });
        merge(&mut base, extra);
        serde_json::from_value(base).expect("a valid spec")
    }

    fn merge(base: &mut Value, extra: Value) {
        match (base, extra) {
            (Value::Object(b), Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    /// What Twilio would report after creating `spec` exactly.
    fn observed_as_created(spec: &WhatsAppSenderSpec) -> Sender {
        let request = serde_json::to_value(create_request(spec)).unwrap();
        let mut sender = json!({
            "sid": "XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "status": "ONLINE",
            "sender_id": request["sender_id"],
            "profile": request["profile"],
            "webhook": request["webhook"],
            "configuration": request["configuration"],
        });
        // Twilio answers lists as labelled objects.
        for (list, key) in [("emails", "email"), ("websites", "website")] {
            if let Some(items) = sender["profile"][list].as_array().cloned() {
                sender["profile"][list] = items
                    .into_iter()
                    .map(|v| json!({key: v, "label": "L"}))
                    .collect();
            }
        }
        serde_json::from_value(sender).unwrap()
    }

    fn full() -> WhatsAppSenderSpec {
        spec(json!({
            "wabaId": "123",
            "verification": {"method": "voice", "voiceApplicationSid": "AP0123456789abcdef0123456789abcdef"},
            "profile": {
                "about": "Help", "address": "1 Main St", "description": "We sell",
                "vertical": "Professional Services", "logoUrl": "https://a.example/l.png",
                "bannerUrl": "https://a.example/b.png", "privacyUrl": "https://a.example/p",
                "termsOfServiceUrl": "https://a.example/t", "accentColor": "#1A2B3C",
                "emails": ["a@a.example", "b@a.example"], "websites": ["https://a.example"],
            },
            "webhook": {
                "callbackUrl": "https://h.example/in", "callbackMethod": "PUT",
                "fallbackUrl": "https://h.example/fb", "statusCallbackUrl": "https://h.example/st",
            },
        }))
    }

    #[test]
    fn the_voice_application_and_account_type_are_sent_when_they_change_and_cleared_when_removed() {
        let with = |account_type: &str, voice_app: &str| {
            spec(json!({
                "accountType": account_type,
                "verification": {"method": "voice", "voiceApplicationSid": voice_app},
            }))
        };
        const APP: &str = "AP0123456789abcdef0123456789abcdef";
        const OTHER_APP: &str = "APfedcba9876543210fedcba9876543210";
        let before = with("ISVSubAccount", APP);
        let observed = observed_as_created(&before);
        let created = serde_json::to_value(create_request(&before)).unwrap();
        assert_eq!(
            created["configuration"]["account_type"], "ISVSubAccount",
            "sent on create"
        );
        assert!(drift(&before, &observed).is_none(), "nothing differs");

        let d = drift(&with("ISVSubAccount", OTHER_APP), &observed);
        assert_eq!(d.fields, ["configuration.voice_application_sid"]);
        assert_eq!(
            serde_json::to_value(&d.update).unwrap(),
            json!({"configuration": {"voice_application_sid": OTHER_APP}})
        );

        let d = drift(&with("ISV", APP), &observed);
        assert_eq!(d.fields, ["configuration.account_type"]);
        assert_eq!(
            serde_json::to_value(&d.update).unwrap(),
            json!({"configuration": {"account_type": "ISV"}})
        );

        let d = drift(&spec(json!({})), &observed);
        assert_eq!(
            d.fields,
            [
                "configuration.voice_application_sid",
                "configuration.account_type"
            ]
        );
        assert_eq!(
            serde_json::to_value(&d.update).unwrap(),
            json!({"configuration": {"voice_application_sid": null, "account_type": ""}}),
            "an empty string clears the account type, as Twilio's document says"
        );
    }

    #[test]
    fn create_sends_everything_the_spec_sets() {
        let body = serde_json::to_value(create_request(&full())).unwrap();
        assert_eq!(body["sender_id"], "whatsapp:+15017122661");
        assert_eq!(
            body["configuration"],
            json!({"waba_id": "123", "verification_method": "voice",
                   "voice_application_sid": "AP0123456789abcdef0123456789abcdef"})
        );
        assert_eq!(body["profile"]["vertical"], "Professional Services");
        assert_eq!(
            body["profile"]["emails"],
            json!(["a@a.example", "b@a.example"])
        );
        assert_eq!(
            body["webhook"],
            json!({"callback_url": "https://h.example/in", "callback_method": "PUT",
                   "fallback_url": "https://h.example/fb", "status_callback_url": "https://h.example/st"})
        );
        let minimal = serde_json::to_value(create_request(&spec(json!({})))).unwrap();
        assert_eq!(
            minimal,
            json!({"sender_id": "whatsapp:+15017122661", "profile": {"name": "Acme"}}),
            "nothing unset is sent, not even null"
        );
    }

    #[test]
    fn nothing_is_sent_when_twilio_matches() {
        for spec in [full(), spec(json!({}))] {
            let drift = drift(&spec, &observed_as_created(&spec));
            assert!(drift.is_none(), "{drift:?}");
            assert_eq!(
                serde_json::to_value(&drift.update).unwrap(),
                json!({}),
                "not even an empty section"
            );
        }
    }

    #[test]
    fn only_differing_fields_are_sent() {
        let wanted = full();
        let mut observed = observed_as_created(&wanted);
        let profile = observed.profile.as_mut().unwrap();
        profile.about = Some("Old about".into());
        profile.accent_color = Some("#1a2b3c".into());
        observed.webhook.as_mut().unwrap().fallback_url = Some("https://old.example".into());
        let drift = drift(&wanted, &observed);
        assert_eq!(
            serde_json::to_value(&drift.update).unwrap(),
            json!({"profile": {"about": "Help"},
                   "webhook": {"fallback_url": "https://h.example/fb"}})
        );
        assert_eq!(drift.fields, ["profile.about", "webhook.fallback_url"]);
    }

    #[test]
    fn fields_removed_from_the_spec_are_cleared_with_null() {
        let before = full();
        let observed = observed_as_created(&before);
        let mut after = before.clone();
        after.profile.about = None;
        after.profile.emails.clear();
        after.webhook = None;
        let drift = drift(&after, &observed);
        assert_eq!(
            serde_json::to_value(&drift.update).unwrap(),
            json!({
                "profile": {"about": null, "emails": null},
                "webhook": {"callback_url": null, "callback_method": null,
                            "fallback_url": null, "status_callback_url": null},
            })
        );
    }

    #[test]
    fn list_order_and_content_matter() {
        let wanted = full();
        let mut observed = observed_as_created(&wanted);
        observed.profile.as_mut().unwrap().emails.reverse();
        let drift = drift(&wanted, &observed);
        assert_eq!(
            serde_json::to_value(&drift.update).unwrap(),
            json!({"profile": {"emails": ["a@a.example", "b@a.example"]}})
        );
    }

    #[test]
    fn post_is_the_default_method() {
        let wanted = spec(json!({"webhook": {"callbackUrl": "https://h.example/in"}}));
        let mut observed = observed_as_created(&wanted);
        observed.webhook.as_mut().unwrap().callback_method = Some("POST".into());
        observed.webhook.as_mut().unwrap().status_callback_method = Some("post".into());
        assert!(drift(&wanted, &observed).is_none());

        observed.webhook.as_mut().unwrap().callback_method = Some("PUT".into());
        assert_eq!(
            serde_json::to_value(drift(&wanted, &observed).update).unwrap(),
            json!({"webhook": {"callback_method": null}})
        );
    }

    #[test]
    fn a_missing_section_at_twilio_is_sent_whole() {
        let wanted = full();
        let mut observed = observed_as_created(&wanted);
        observed.webhook = None;
        let drift = drift(&wanted, &observed);
        assert_eq!(drift.fields.len(), 4, "{:?}", drift.fields);
    }

    #[test]
    fn display_name_and_waba_differences_are_reported_not_sent() {
        let wanted = full();
        let mut observed = observed_as_created(&wanted);
        observed.profile.as_mut().unwrap().name = Some("Acme Inc".into());
        observed.configuration.as_mut().unwrap().waba_id = Some("999".into());
        let drift = drift(&wanted, &observed);
        assert!(drift.update.is_empty(), "{:?}", drift.update);
        assert_eq!(drift.display_name.as_deref(), Some("Acme Inc"));
        assert_eq!(drift.waba_id.as_deref(), Some("999"));
        assert!(!drift.is_none());
    }
}
