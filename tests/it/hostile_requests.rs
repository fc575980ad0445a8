//! Any `WhatsAppSenderSpec` through the controller's request building (`diff::create_request`,
//! `diff::drift`): no panic for any spec the types can hold, and, for every spec the CRD
//! accepts, create and update bodies that Twilio's OpenAPI document accepts too (strictly: no
//! field Twilio does not know), and nothing sent once Twilio holds what was created.

use std::sync::OnceLock;

use kube::CustomResourceExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use senderops::api::{WhatsAppSender, WhatsAppSenderSpec};
use senderops::controllers::whatsapp_sender::diff::{create_request, drift};
use senderops::twilio::{Sender, UpdateSenderRequest, VerificationCode};
use serde_json::{Value, json};

use crate::support::json_paths::pointers;
use crate::support::openapi::{request_schema_name, validate_request};

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The CRD's enum for a spec field, so the strategies follow the schema the API server uses.
fn crd_enum(pointer: &str) -> Vec<String> {
    let crd = serde_json::to_value(WhatsAppSender::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    spec.pointer(pointer)
        .and_then(|node| node["enum"].as_array())
        .unwrap_or_else(|| panic!("no enum at spec{pointer}"))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn verticals() -> &'static [String] {
    static VERTICALS: OnceLock<Vec<String>> = OnceLock::new();
    VERTICALS.get_or_init(|| crd_enum("/properties/profile/properties/vertical"))
}

// ---------------------------------------------------------------------------------------------
// Specs the CRD accepts

/// Any characters (emoji, RTL, combining marks, control characters), `min..=max` of them: the
/// CRD bounds free text by length only.
fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), min..=max).prop_map(String::from_iter),
        prop::collection::vec(
            prop::sample::select(vec![
                'a', ' ', 'é', 'e', '\u{301}', '🚀', 'م', '\u{202E}', '\n'
            ]),
            min..=max,
        )
        .prop_map(String::from_iter),
    ]
}

fn http_url() -> impl Strategy<Value = String> {
    "https?://[a-z0-9]{1,20}(\\.[a-z0-9-]{1,10}){0,3}(:[1-9][0-9]{0,3})?(/[a-zA-Z0-9._~%-]{0,16}){0,4}(\\?[a-z]{1,8}=[a-z0-9]{0,8})?"
}

fn method() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec!["POST", "PUT"]))
}

/// Distinct values (the CRD refuses duplicates), at most two.
fn distinct_pair(item: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(item, 0..=2).prop_map(|set| set.into_iter().collect())
}

/// Inserts `value` under `key` unless it is `None`.
fn put(object: &mut Value, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        object[key] = value.into();
    }
}

fn valid_profile() -> impl Strategy<Value = Value> {
    (
        (
            // The CRD refuses control characters in the display name.
            text(1, 256).prop_filter("no control characters", |n| !n.contains(char::is_control)),
            prop::option::of(text(1, 139)),
            prop::option::of(text(0, 256)),
            prop::option::of(text(0, 512)),
            prop::option::of(prop::sample::select(verticals())),
        ),
        (
            prop::option::of(http_url()),
            prop::option::of(http_url()),
            prop::option::of(http_url()),
            prop::option::of(http_url()),
            prop::option::of("#[0-9A-Fa-f]{6}"),
        ),
        distinct_pair("[a-z0-9._%+-]{1,20}@[a-z0-9.-]{1,20}"),
        distinct_pair(http_url()),
    )
        .prop_map(
            |((name, about, address, description, vertical), urls, emails, websites)| {
                let (logo, banner, privacy, terms, accent) = urls;
                let mut profile = json!({"name": name});
                put(&mut profile, "about", about);
                put(&mut profile, "address", address);
                put(&mut profile, "description", description);
                put(&mut profile, "vertical", vertical);
                put(&mut profile, "logoUrl", logo);
                put(&mut profile, "bannerUrl", banner);
                put(&mut profile, "privacyUrl", privacy);
                put(&mut profile, "termsOfServiceUrl", terms);
                put(&mut profile, "accentColor", accent);
                put(
                    &mut profile,
                    "emails",
                    (!emails.is_empty()).then_some(emails),
                );
                put(
                    &mut profile,
                    "websites",
                    (!websites.is_empty()).then_some(websites),
                );
                profile
            },
        )
}

fn valid_webhook() -> impl Strategy<Value = Value> {
    (
        prop::option::of(http_url()),
        method(),
        prop::option::of(http_url()),
        method(),
        prop::option::of(http_url()),
        method(),
    )
        .prop_map(|(callback, cm, fallback, fm, status, sm)| {
            let mut webhook = json!({});
            put(&mut webhook, "callbackUrl", callback);
            put(&mut webhook, "callbackMethod", cm);
            put(&mut webhook, "fallbackUrl", fallback);
            put(&mut webhook, "fallbackMethod", fm);
            put(&mut webhook, "statusCallbackUrl", status);
            put(&mut webhook, "statusCallbackMethod", sm);
            webhook
        })
}

fn valid_verification() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["sms", "voice"]),
        prop::option::of(("[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", "[-._a-zA-Z0-9]{1,20}")),
        prop::option::of("AP[0-9a-fA-F]{32}"),
    )
        .prop_map(|(method, code, voice)| {
            let mut verification = json!({"method": method});
            put(
                &mut verification,
                "codeSecretRef",
                code.map(|(name, key)| json!({"name": name, "key": key})),
            );
            put(&mut verification, "voiceApplicationSid", voice);
            verification
        })
}

/// A spec that meets every constraint of the CRD.
fn valid_spec() -> impl Strategy<Value = WhatsAppSenderSpec> {
    (
        "\\+[1-9][0-9]{6,14}",
        prop::option::of("[0-9]{1,32}"),
        prop::option::of(valid_verification()),
        valid_profile(),
        prop::option::of(valid_webhook()),
        prop::sample::select(vec!["Delete", "Orphan"]),
        any::<bool>(),
    )
        .prop_map(
            |(phone, waba, verification, profile, webhook, deletion, suspend)| {
                let mut spec = json!({
                    "phoneNumber": phone,
                    "credentialsRef": {"name": "twilio"},
                    "profile": profile,
                    "deletionPolicy": deletion,
                    "suspend": suspend,
                });
                put(&mut spec, "wabaId", waba);
                put(&mut spec, "verification", verification);
                put(&mut spec, "webhook", webhook);
                serde_json::from_value(spec).expect("the strategy builds a well-typed spec")
            },
        )
}

// ---------------------------------------------------------------------------------------------
// What Twilio might report

fn maybe_text() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::from("")),
        text(0, 40).prop_map(Value::from),
        http_url().prop_map(Value::from),
    ]
}

/// A sender as Twilio could answer it, each field absent, null, empty or anything.
fn observed_sender() -> impl Strategy<Value = Sender> {
    let profile = prop::collection::vec(maybe_text(), 10);
    let webhook = prop::collection::vec(maybe_text(), 6);
    let list = || prop::collection::vec(text(0, 20), 0..3);
    (
        profile,
        webhook,
        list(),
        list(),
        prop::option::of("[0-9]{1,20}"),
        prop::sample::select(vec!["ONLINE", "CREATING", "OFFLINE", "NEW_WORD", ""]),
    )
        .prop_map(|(p, w, emails, websites, waba, status)| {
            let names = [
                "name",
                "about",
                "address",
                "description",
                "vertical",
                "logo_url",
                "banner_url",
                "privacy_url",
                "terms_of_service_url",
                "accent_color",
            ];
            let mut profile: serde_json::Map<String, Value> =
                names.iter().map(|n| n.to_string()).zip(p).collect();
            profile.insert(
                "emails".into(),
                emails.into_iter().map(|e| json!({"email": e})).collect(),
            );
            profile.insert(
                "websites".into(),
                websites
                    .into_iter()
                    .map(|w| json!({"website": w}))
                    .collect(),
            );
            let hooks = [
                "callback_url",
                "callback_method",
                "fallback_url",
                "fallback_method",
                "status_callback_url",
                "status_callback_method",
            ];
            let webhook: serde_json::Map<String, Value> =
                hooks.iter().map(|n| n.to_string()).zip(w).collect();
            serde_json::from_value(json!({
                "sid": "XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "status": status,
                "sender_id": "whatsapp:+15017122661",
                "profile": profile,
                "webhook": webhook,
                "configuration": {"waba_id": waba},
            }))
            .expect("a well-typed sender")
        })
}

/// What Twilio reports after creating exactly `request`: the same fields, lists as labelled
/// objects.
fn as_created(request: &Value) -> Sender {
    let mut sender = json!({
        "sid": "XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "status": "ONLINE",
        "sender_id": request["sender_id"],
        "profile": request["profile"],
        "webhook": request["webhook"],
        "configuration": request["configuration"],
    });
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

fn create_schema() -> String {
    request_schema_name("/v2/Channels/Senders", "post")
}

fn update_schema() -> String {
    request_schema_name("/v2/Channels/Senders/{Sid}", "post")
}

// ---------------------------------------------------------------------------------------------
// Properties

#[test]
fn create_requests_for_specs_the_crd_accepts_validate_against_twilios_document() {
    let schema = create_schema();
    TestRunner::new(config())
        .run(&valid_spec(), |spec| {
            let body = serde_json::to_value(create_request(&spec)).unwrap();
            if let Err(errors) = validate_request(&schema, &body) {
                prop_assert!(false, "{errors:#?}\nbody: {body:#}");
            }
            let sender_id = format!("whatsapp:{}", spec.phone_number);
            prop_assert_eq!(body["sender_id"].as_str(), Some(sender_id.as_str()));
            prop_assert_eq!(
                body["profile"]["name"].as_str(),
                Some(spec.profile.name.as_str()),
                "the display name reaches Twilio byte for byte"
            );
            prop_assert!(
                body.pointer("/configuration/verification_code").is_none(),
                "a create never carries a code"
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn updates_for_specs_the_crd_accepts_validate_against_twilios_document() {
    let schema = update_schema();
    TestRunner::new(config())
        .run(&(valid_spec(), observed_sender()), |(spec, observed)| {
            let drift = drift(&spec, &observed);
            let body = serde_json::to_value(&drift.update).unwrap();
            if let Err(errors) = validate_request(&schema, &body) {
                prop_assert!(false, "{errors:#?}\nbody: {body:#}");
            }
            prop_assert_eq!(drift.update.is_empty(), body == json!({}));
            prop_assert_eq!(
                drift.fields.is_empty(),
                drift.update.is_empty(),
                "{:?}",
                drift.fields
            );
            prop_assert!(
                body.pointer("/profile/name").is_none(),
                "an update never sends the display name"
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn nothing_is_sent_once_twilio_holds_what_was_created() {
    TestRunner::new(config())
        .run(&valid_spec(), |spec| {
            let request = serde_json::to_value(create_request(&spec)).unwrap();
            let drift = drift(&spec, &as_created(&request));
            prop_assert!(drift.is_none(), "{drift:?}\ncreated: {request:#}");
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_code_submission_validates_against_twilios_document() {
    let schema = update_schema();
    TestRunner::new(config())
        .run(&"[0-9]{4,8}", |code| {
            let update = UpdateSenderRequest::verification_code(VerificationCode::new(code));
            let body = serde_json::to_value(&update).unwrap();
            if let Err(errors) = validate_request(&schema, &body) {
                prop_assert!(false, "{errors:#?}\nbody: {body:#}");
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Specs the CRD would refuse, and values no schema would let through

/// Any JSON value, huge strings included.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        (any::<char>(), 0..100_000usize).prop_map(|(c, n)| Value::from(c.to_string().repeat(n))),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid spec with one field, anywhere, replaced by any JSON value.
fn mutated_spec_json() -> impl Strategy<Value = Value> {
    (valid_spec(), any::<prop::sample::Index>(), any_json()).prop_map(|(spec, at, value)| {
        let mut doc = serde_json::to_value(&spec).unwrap();
        let paths = pointers(&doc);
        let (path, _) = &paths[at.index(paths.len())];
        *doc.pointer_mut(path).unwrap() = value;
        doc
    })
}

/// Free text anywhere, unbounded (as if the schema had been bypassed).
fn unbounded_spec() -> impl Strategy<Value = WhatsAppSenderSpec> {
    (
        valid_spec(),
        prop::collection::vec(any_text_unbounded(), 12),
    )
        .prop_map(|(mut spec, t)| {
            spec.phone_number = t[0].clone();
            spec.profile.name = t[1].clone();
            spec.profile.about = Some(t[2].clone());
            spec.profile.address = Some(t[3].clone());
            spec.profile.logo_url = Some(t[4].clone());
            spec.profile.accent_color = Some(t[5].clone());
            spec.profile.emails = vec![t[6].clone(), t[6].clone(), t[7].clone()];
            spec.profile.websites = vec![t[8].clone(); 3];
            spec.waba_id = Some(t[9].clone());
            let webhook = spec.webhook.get_or_insert_with(|| {
                serde_json::from_value(json!({})).expect("an empty webhook")
            });
            webhook.callback_url = Some(t[10].clone());
            webhook.status_callback_url = Some(t[11].clone());
            spec
        })
}

fn any_text_unbounded() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just(String::new()),
        (any::<char>(), 0..100_000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

#[test]
fn any_json_as_a_spec_is_read_or_refused_without_panicking() {
    TestRunner::new(config())
        .run(&mutated_spec_json(), |doc| {
            if let Ok(spec) = serde_json::from_value::<WhatsAppSenderSpec>(doc) {
                serde_json::to_vec(&create_request(&spec)).unwrap();
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn specs_past_every_limit_still_build_requests_without_panicking() {
    TestRunner::new(config())
        .run(
            &(unbounded_spec(), observed_sender()),
            |(spec, observed)| {
                let create = serde_json::to_value(create_request(&spec)).unwrap();
                prop_assert_eq!(
                    create["profile"]["name"].as_str(),
                    Some(spec.profile.name.as_str())
                );
                let drift = drift(&spec, &observed);
                serde_json::to_vec(&drift.update).unwrap();
                let debug = format!("{drift:?}");
                // A Debug string is never empty (that check could not fail): what must hold of
                // any drift is that it never sends the display name, which Twilio refuses to
                // change.
                prop_assert!(
                    drift
                        .update
                        .profile
                        .as_ref()
                        .is_none_or(|p| p.name.is_keep()),
                    "an update sends the display name: {}",
                    debug
                );
                Ok(())
            },
        )
        .unwrap();
}
