//! The Senders client on the wire.
//!
//! 1. Every request body the models produce equals its golden file (`tests/golden/*.json`) and
//!    validates against Twilio's OpenAPI request schema (strictly: no unknown fields). Run with
//!    `UPDATE_GOLDEN=1` to rewrite the golden files after an intended change.
//! 2. The validator itself rejects bad bodies, so a passing check means something.
//! 3. Against a tiny in-process HTTP server: pagination, retries, timeouts, auth, and the bodies
//!    the client actually sends.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use senderops::twilio::{
    AccountType, AccountTypeUpdate, BudgetConfig, ClientConfig, Configuration, CreateSenderRequest,
    Credentials, ErrorClass, FieldUpdate, Hosts, Product, Profile, RequestBudget, RetryPolicy,
    SenderStatus, TwilioClient, TwilioError, UpdateSenderRequest, VerificationCode,
    VerificationMethod, Vertical, Webhook, WebhookMethod, sender_id_for,
};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::openapi;

const CREATE_SCHEMA: &str = "messaging.v2.channels_sender.requests.create";
const UPDATE_SCHEMA: &str = "messaging.v2.channels_sender.requests.update";
const LIST: &str = "/v2/Channels/Senders";
const INSTANCE: &str = "/v2/Channels/Senders/{Sid}";

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-t0ken-never-logged";
const SID: &str = "XE0123456789abcdef0123456789abcdef";
const OTP: &str = "774411";

// -------------------------------------------------------------------------------------------
// Models and golden bodies
// -------------------------------------------------------------------------------------------

fn create_full() -> CreateSenderRequest {
    CreateSenderRequest {
        sender_id: sender_id_for("+15017122661"),
        configuration: Some(Configuration {
            waba_id: Some("12345678912345".into()),
            verification_method: Some(VerificationMethod::Voice),
            verification_code: None,
            voice_application_sid: FieldUpdate::Set("AP0123456789abcdef0123456789abcdef".into()),
            account_type: Some(AccountTypeUpdate::Set(AccountType::IsvSubAccount)),
        }),
        webhook: Some(Webhook {
            callback_url: FieldUpdate::Set("https://hooks.acme.example/whatsapp".into()),
            callback_method: FieldUpdate::Set(WebhookMethod::Post),
            fallback_url: FieldUpdate::Set("https://fallback.acme.example/whatsapp".into()),
            fallback_method: FieldUpdate::Set(WebhookMethod::Put),
            status_callback_url: FieldUpdate::Set("https://hooks.acme.example/status".into()),
            status_callback_method: FieldUpdate::Set(WebhookMethod::Post),
        }),
        profile: Some(Profile {
            name: FieldUpdate::Set("Acme Support".into()),
            about: FieldUpdate::Set("Help with your orders".into()),
            address: FieldUpdate::Set("1 Market St, San Francisco, CA 94105".into()),
            description: FieldUpdate::Set("Order tracking, returns and billing questions.".into()),
            vertical: FieldUpdate::Set(Vertical::ProfessionalServices),
            logo_url: FieldUpdate::Set("https://acme.example/logo.png".into()),
            banner_url: FieldUpdate::Set("https://acme.example/banner.png".into()),
            privacy_url: FieldUpdate::Set("https://acme.example/privacy".into()),
            terms_of_service_url: FieldUpdate::Set("https://acme.example/terms".into()),
            accent_color: FieldUpdate::Set("#0055AA".into()),
            emails: FieldUpdate::Set(vec![
                "support@acme.example".into(),
                "billing@acme.example".into(),
            ]),
            websites: FieldUpdate::Set(vec![
                "https://acme.example".into(),
                "https://acme.example/help".into(),
            ]),
        }),
    }
}

fn create_minimal() -> CreateSenderRequest {
    CreateSenderRequest {
        sender_id: sender_id_for("+5491112345678"),
        profile: Some(Profile {
            name: FieldUpdate::Set("Acme Support".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn update_profile() -> UpdateSenderRequest {
    UpdateSenderRequest {
        profile: Some(Profile {
            about: FieldUpdate::Set("Help with your orders, 24/7".into()),
            vertical: FieldUpdate::Set(Vertical::ShoppingAndRetail),
            emails: FieldUpdate::Set(vec!["help@acme.example".into()]),
            websites: FieldUpdate::Set(vec!["https://acme.example/support".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn update_webhook() -> UpdateSenderRequest {
    UpdateSenderRequest {
        webhook: Some(Webhook {
            callback_url: FieldUpdate::Set("https://hooks.acme.example/v2/whatsapp".into()),
            callback_method: FieldUpdate::Set(WebhookMethod::Put),
            status_callback_url: FieldUpdate::Set("https://hooks.acme.example/v2/status".into()),
            status_callback_method: FieldUpdate::Set(WebhookMethod::Put),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Fields removed from the spec go out as `null`; untouched ones stay out of the body.
fn update_clearing() -> UpdateSenderRequest {
    UpdateSenderRequest {
        profile: Some(Profile {
            about: FieldUpdate::Clear,
            emails: FieldUpdate::Clear,
            vertical: FieldUpdate::Set(Vertical::Other),
            ..Default::default()
        }),
        webhook: Some(Webhook {
            fallback_url: FieldUpdate::Clear,
            fallback_method: FieldUpdate::Clear,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn update_configuration() -> UpdateSenderRequest {
    UpdateSenderRequest::verification_code(VerificationCode::new(OTP))
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.json"))
}

/// Compares `body` with the golden file (exact JSON value equality) and validates it.
fn check_golden(name: &str, schema: &str, body: &Value) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(body).unwrap() + "\n").unwrap();
    }
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    assert_eq!(
        *body,
        golden,
        "{name}: serialized body differs from {}\nactual:\n{body:#}",
        path.display()
    );
    if let Err(errors) = openapi::validate_request(schema, body) {
        panic!("{name} violates {schema}:\n{}", errors.join("\n"));
    }
}

#[test]
fn golden_create_full() {
    check_golden(
        "create_full",
        CREATE_SCHEMA,
        &serde_json::to_value(create_full()).unwrap(),
    );
}

#[test]
fn golden_create_minimal() {
    check_golden(
        "create_minimal",
        CREATE_SCHEMA,
        &serde_json::to_value(create_minimal()).unwrap(),
    );
}

#[test]
fn golden_update_profile() {
    check_golden(
        "update_profile",
        UPDATE_SCHEMA,
        &serde_json::to_value(update_profile()).unwrap(),
    );
}

#[test]
fn golden_update_webhook() {
    check_golden(
        "update_webhook",
        UPDATE_SCHEMA,
        &serde_json::to_value(update_webhook()).unwrap(),
    );
}

#[test]
fn golden_update_clearing() {
    check_golden(
        "update_clearing",
        UPDATE_SCHEMA,
        &serde_json::to_value(update_clearing()).unwrap(),
    );
}

#[test]
fn golden_update_configuration() {
    let request = update_configuration();
    check_golden(
        "update_configuration",
        UPDATE_SCHEMA,
        &serde_json::to_value(&request).unwrap(),
    );
    assert!(
        !format!("{request:?}").contains(OTP),
        "Debug redacts the OTP"
    );
}

/// The one request off Twilio's document: its `account_type` enum lists `ISV` and
/// `ISVSubAccount` only, while its description says "empty string to clear"; the operator
/// follows the description. Both facts are checked, so the exception cannot widen unseen.
#[test]
fn clearing_the_account_type_sends_the_empty_string_the_document_describes() {
    let clear = UpdateSenderRequest {
        configuration: Some(Configuration {
            account_type: Some(AccountTypeUpdate::Clear),
            ..Configuration::default()
        }),
        ..UpdateSenderRequest::default()
    };
    let body = serde_json::to_value(&clear).unwrap();
    assert_eq!(body, json!({"configuration": {"account_type": ""}}));
    let property = &openapi::document()["components"]["schemas"]["messaging.v2.channels_sender.configuration"]
        ["properties"]["account_type"];
    assert!(
        property["description"]
            .as_str()
            .unwrap()
            .contains("empty string to clear"),
        "{property}"
    );
    let errors = rejected(UPDATE_SCHEMA, body.clone());
    assert!(
        errors.iter().any(|e| e.contains("account_type")),
        "the enum refuses it: {errors:?}"
    );
    let set = json!({"configuration": {"account_type": "ISV"}});
    openapi::validate_request(UPDATE_SCHEMA, &set).unwrap();
}

#[test]
fn operations_declare_the_schemas_used_here() {
    assert_eq!(openapi::request_schema_name(LIST, "post"), CREATE_SCHEMA);
    assert_eq!(
        openapi::request_schema_name(INSTANCE, "post"),
        UPDATE_SCHEMA
    );
}

// -------------------------------------------------------------------------------------------
// The validator can fail
// -------------------------------------------------------------------------------------------

fn rejected(schema: &str, body: Value) -> Vec<String> {
    match openapi::validate_request(schema, &body) {
        Ok(()) => panic!("{schema} accepted {body}"),
        Err(errors) => errors,
    }
}

#[test]
fn validator_accepts_twilios_own_request_examples() {
    for (schema, example) in [
        (CREATE_SCHEMA, "whatsapp_create_request"),
        (UPDATE_SCHEMA, "whatsapp_patch_update_configuration_request"),
        (UPDATE_SCHEMA, "whatsapp_patch_update_webhook_request"),
        (UPDATE_SCHEMA, "whatsapp_patch_update_profile_request"),
    ] {
        if let Err(errors) = openapi::validate_request(schema, &openapi::example(example)) {
            panic!("{example}: {errors:?}");
        }
    }
    // nullable on a $ref, and on a referenced schema
    openapi::validate_request(UPDATE_SCHEMA, &json!({"profile": null, "webhook": null})).unwrap();
    openapi::validate_request(
        CREATE_SCHEMA,
        &json!({"sender_id": "whatsapp:+1", "configuration": null}),
    )
    .unwrap();
}

#[test]
fn validator_rejects_a_misspelled_field() {
    let errors = rejected(
        CREATE_SCHEMA,
        json!({"sender_id": "whatsapp:+15017122661", "profile": {"nmae": "Acme"}}),
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("/profile:") && e.contains("nmae")),
        "{errors:?}"
    );

    let errors = rejected(UPDATE_SCHEMA, json!({"webhooks": {}}));
    assert!(errors.iter().any(|e| e.contains("webhooks")), "{errors:?}");
}

#[test]
fn validator_rejects_bad_enums_types_and_missing_fields() {
    let errors = rejected(
        UPDATE_SCHEMA,
        json!({"webhook": {"callback_url": "https://x.example", "callback_method": "GET"}}),
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/webhook/callback_method")),
        "{errors:?}"
    );
    let errors = rejected(
        UPDATE_SCHEMA,
        json!({"configuration": {"verification_method": "carrier-pigeon"}}),
    );
    assert!(
        errors.iter().any(|e| e.contains("verification_method")),
        "{errors:?}"
    );
    rejected(
        UPDATE_SCHEMA,
        json!({"configuration": {"verification_code": 123456}}),
    );
    let errors = rejected(CREATE_SCHEMA, json!({"profile": {"name": "Acme"}}));
    assert!(errors.iter().any(|e| e.contains("sender_id")), "{errors:?}");
}

#[test]
fn response_validation_uses_the_operation() {
    openapi::validate_response(INSTANCE, "get", 200, &openapi::example("whatsapp_fetch")).unwrap();
    openapi::validate_response(
        INSTANCE,
        "get",
        200,
        &openapi::example("whatsapp_fetch_offline_reasons"),
    )
    .unwrap();
    openapi::validate_response(
        LIST,
        "post",
        202,
        &openapi::example("whatsapp_create_response"),
    )
    .unwrap();
    openapi::validate_response(INSTANCE, "delete", 204, &Value::Null).unwrap();

    // Responses are open to new fields but not to wrong values, statuses or shapes.
    let mut extra = openapi::example("whatsapp_fetch");
    extra["brand_new_field"] = json!(1);
    openapi::validate_response(INSTANCE, "get", 200, &extra).unwrap();
    let mut bad_status = openapi::example("whatsapp_fetch");
    bad_status["status"] = json!("ONLINE_NOW");
    assert!(openapi::validate_response(INSTANCE, "get", 200, &bad_status).is_err());
    let mut bad_reason = openapi::example("whatsapp_fetch_offline_reasons");
    bad_reason["offline_reasons"][0]["code"] = json!(30008);
    assert!(openapi::validate_response(INSTANCE, "get", 200, &bad_reason).is_err());
    assert!(
        openapi::validate_response(LIST, "post", 201, &openapi::example("whatsapp_fetch")).is_err()
    );
    assert!(openapi::validate_response(INSTANCE, "delete", 204, &json!({})).is_err());
}

// -------------------------------------------------------------------------------------------
// A tiny Twilio stand-in
// -------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
    /// Sent as is, as `text/plain`, instead of `body`: what a proxy's page would be.
    text: Option<String>,
    delay: Duration,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body,
        text: None,
        delay: Duration::ZERO,
    }
}

fn text_reply(status: u16, text: &str) -> Reply {
    Reply {
        text: Some(text.to_string()),
        ..reply(status, Value::Null)
    }
}

fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    reply(
        status,
        json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

type Script = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

struct Server {
    seen: Mutex<Vec<Seen>>,
    script: Box<Script>,
}

struct TestServer {
    addr: SocketAddr,
    state: Arc<Server>,
}

impl TestServer {
    async fn start(script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Self {
        let state = Arc::new(Server {
            seen: Mutex::new(Vec::new()),
            script: Box::new(script),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

async fn handle(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let seen = Seen {
        method,
        path: uri.path().to_string(),
        query,
        headers,
        body,
    };
    let index = {
        let mut all = server.seen.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    let reply = (server.script)(index, &seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap();
    let (body, content_type) = match (reply.text, reply.body.is_null()) {
        (Some(text), _) => (text, Some("text/plain")),
        (None, true) => (String::new(), None),
        (None, false) => (reply.body.to_string(), Some("application/json")),
    };
    let mut response = (status, body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
    }
    response
}

fn config(base_url: String) -> ClientConfig {
    ClientConfig {
        hosts: Hosts::default().with(Product::Messaging, &base_url),
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
        },
        budget: BudgetConfig::default(),
        list_page_size: 2,
        ..ClientConfig::default()
    }
}

fn unlimited() -> RequestBudget {
    RequestBudget::new(BudgetConfig {
        per_second: NonZeroU32::new(10_000).unwrap(),
        burst: NonZeroU32::new(10_000).unwrap(),
    })
}

fn client_with(config: &ClientConfig, budget: RequestBudget) -> TwilioClient {
    TwilioClient::new(Credentials::auth_token(ACCOUNT, TOKEN), config, budget).unwrap()
}

fn client(server: &TestServer) -> TwilioClient {
    client_with(&config(server.url()), unlimited())
}

/// A sender as Twilio lists it; checked against the response schema where served.
fn sender(n: u32, status: &str) -> Value {
    json!({
        "sid": format!("XE{n:032x}"),
        "status": status,
        "sender_id": format!("whatsapp:+1501712{n:04}"),
        "configuration": {"waba_id": "12345678912345", "verification_method": "sms",
                          "verification_code": null, "voice_application_sid": null},
        "webhook": null,
        "profile": {"name": "Acme", "emails": [{"email": "a@acme.example", "label": "Email"}]},
        "properties": {"quality_rating": "HIGH", "messaging_limit": "1K Customers/24hr"},
        "offline_reasons": null,
        "url": format!("https://messaging.twilio.com/v2/Channels/Senders/XE{n:032x}")
    })
}

/// Three pages of two senders; `next_page_url` names Twilio's host, as the real API does.
fn paged(_: usize, seen: &Seen) -> Reply {
    let (page, senders, next) = match seen.param("PageToken") {
        None => (0, [1, 2], Some("PT1")),
        Some("PT1") => (1, [3, 4], Some("PT2")),
        Some("PT2") => (2, [5, 6], None),
        Some(other) => panic!("unexpected page token {other}"),
    };
    let body = json!({
        "senders": senders.iter().map(|n| sender(*n, "ONLINE")).collect::<Vec<_>>(),
        "meta": {
            "page": page,
            "page_size": 2,
            "first_page_url": "https://messaging.twilio.com/v2/Channels/Senders?PageSize=2&Page=0&Channel=whatsapp",
            "previous_page_url": null,
            "url": format!("https://messaging.twilio.com/v2/Channels/Senders?PageSize=2&Page={page}&Channel=whatsapp"),
            "next_page_url": next.map(|t| format!(
                "https://messaging.twilio.com/v2/Channels/Senders?PageSize=2&Page={}&PageToken={t}&Channel=whatsapp",
                page + 1
            )),
            "key": "senders"
        }
    });
    openapi::validate_response(LIST, "get", 200, &body).expect("fixture page matches the spec");
    reply(200, body)
}

fn expected_authorization() -> String {
    // Let reqwest encode the pair the way any client would, then compare headers.
    let request = reqwest::Client::new()
        .get("http://example.invalid")
        .basic_auth(ACCOUNT, Some(TOKEN))
        .build()
        .unwrap();
    request.headers()["authorization"]
        .to_str()
        .unwrap()
        .to_string()
}

// -------------------------------------------------------------------------------------------
// Pagination
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_all_follows_next_page_urls_onto_the_base_url() {
    let server = TestServer::start(paged).await;
    let senders = client(&server).list_all().await.unwrap();

    let sids: Vec<_> = senders.iter().map(|s| s.sid.clone()).collect();
    let expected: Vec<_> = (1..=6).map(|n| format!("XE{n:032x}")).collect();
    assert_eq!(sids, expected);
    assert!(senders.iter().all(|s| s.status == SenderStatus::Online));

    let seen = server.seen();
    assert_eq!(seen.len(), 3, "one request per page");
    let auth = expected_authorization();
    for request in &seen {
        assert_eq!(request.method, Method::GET);
        assert_eq!(request.path, "/v2/Channels/Senders");
        assert_eq!(
            request.param("Channel"),
            Some("whatsapp"),
            "{:?}",
            request.query
        );
        assert_eq!(request.headers["authorization"], auth.as_str());
        let agent = request.headers["user-agent"].to_str().unwrap();
        assert!(agent.starts_with("senderops/"), "{agent}");
    }
    assert_eq!(seen[0].param("PageSize"), Some("2"));
    assert_eq!(seen[0].param("PageToken"), None);
    assert_eq!(seen[1].param("PageToken"), Some("PT1"));
    assert_eq!(seen[2].param("PageToken"), Some("PT2"));
}

#[tokio::test]
async fn a_next_page_url_loop_is_an_error() {
    let server = TestServer::start(|_, _| {
        reply(
            200,
            json!({"senders": [], "meta": {"next_page_url":
                "https://messaging.twilio.com/v2/Channels/Senders?PageToken=SAME&Channel=whatsapp"}}),
        )
    })
    .await;
    let err = client(&server).list_all().await.unwrap_err();
    assert!(matches!(err, TwilioError::Pagination(_)), "{err}");
    assert_eq!(server.seen().len(), 2, "stops as soon as a link repeats");
}

// -------------------------------------------------------------------------------------------
// Operations, bodies and retries
// -------------------------------------------------------------------------------------------

fn created(_: usize, seen: &Seen) -> Reply {
    let mut body = openapi::example("whatsapp_create_response");
    body["sender_id"] = seen.json()["sender_id"].clone();
    reply(202, body)
}

#[tokio::test]
async fn create_and_update_send_the_golden_bodies() {
    let server = TestServer::start(|i, seen| match i {
        0 => created(i, seen),
        _ => reply(
            202,
            openapi::example("whatsapp_patch_update_configuration_response"),
        ),
    })
    .await;
    let c = client(&server);

    let sender = c.create(&create_full()).await.unwrap();
    assert_eq!(sender.status, SenderStatus::Creating);
    assert_eq!(sender.sender_id, "whatsapp:+15017122661");
    let updated = c.update(SID, &update_configuration()).await.unwrap();
    assert_eq!(updated.status, SenderStatus::Verifying);

    let seen = server.seen();
    assert_eq!(
        (&seen[0].method, seen[0].path.as_str()),
        (&Method::POST, LIST)
    );
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_path("create_full")).unwrap())
            .unwrap();
    assert_eq!(seen[0].json(), golden);
    openapi::validate_request(CREATE_SCHEMA, &seen[0].json()).unwrap();

    assert_eq!(seen[1].path, format!("/v2/Channels/Senders/{SID}"));
    assert_eq!(
        seen[1].json(),
        json!({"configuration": {"verification_code": OTP}})
    );
    openapi::validate_request(UPDATE_SCHEMA, &seen[1].json()).unwrap();
}

#[tokio::test]
async fn fetch_and_delete() {
    let server = TestServer::start(|i, _| match i {
        0 => reply(200, openapi::example("whatsapp_fetch_offline_reasons")),
        1 => reply(204, Value::Null),
        _ => twilio_error(404, 20404, "The requested resource was not found"),
    })
    .await;
    let c = client(&server);
    let sender = c.fetch(SID).await.unwrap();
    assert_eq!(sender.status, SenderStatus::Offline);
    assert_eq!(sender.offline_reasons[0].code.as_deref(), Some("30008"));
    c.delete(SID).await.unwrap();
    let gone = c.delete(SID).await.unwrap_err();
    assert_eq!(gone.class(), ErrorClass::NotFound);
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "404 is not retried");
    assert_eq!(seen[1].method, Method::DELETE);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = TestServer::start(|i, _| match i {
        0 | 1 => twilio_error(503, 20503, "Service unavailable"),
        _ => reply(200, openapi::example("whatsapp_fetch")),
    })
    .await;
    let sender = client(&server).fetch(SID).await.unwrap();
    assert_eq!(sender.status, SenderStatus::Online);
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn user_errors_are_not_retried() {
    let server = TestServer::start(|_, _| {
        twilio_error(
            400,
            63110,
            "The phone number is already registered on WhatsApp",
        )
    })
    .await;
    let err = client(&server).create(&create_minimal()).await.unwrap_err();
    assert_eq!(err.twilio_code(), Some(63110));
    assert_eq!(err.class(), ErrorClass::NeedsUser);
    assert!(
        err.advice().contains("two-step verification"),
        "{}",
        err.advice()
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after() {
    let server = TestServer::start(|i, seen| match i {
        0 => {
            let mut r = twilio_error(429, 20429, "Too Many Requests");
            r.headers.push(("retry-after", "1".into()));
            r
        }
        _ => created(i, seen),
    })
    .await;
    let started = Instant::now();
    let sender = client(&server).create(&create_minimal()).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(sender.status, SenderStatus::Creating);
    assert_eq!(
        server.seen().len(),
        2,
        "429 means unprocessed: create may retry"
    );
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}

#[tokio::test]
async fn a_create_that_may_have_been_processed_is_not_repeated() {
    let server = TestServer::start(|_, _| twilio_error(500, 20500, "Internal Server Error")).await;
    let err = client(&server).create(&create_minimal()).await.unwrap_err();
    assert_eq!(
        err.class(),
        ErrorClass::Retryable,
        "the caller retries, after re-listing"
    );
    assert_eq!(server.seen().len(), 1);

    // An OTP submission is treated the same way; a profile update is not.
    let c = client(&server);
    c.update(SID, &update_configuration()).await.unwrap_err();
    assert_eq!(server.seen().len(), 2);
    c.update(SID, &update_profile()).await.unwrap_err();
    assert_eq!(server.seen().len(), 6, "profile updates use all 4 attempts");
}

#[tokio::test]
async fn a_hung_server_times_out() {
    let server = TestServer::start(|_, _| Reply {
        delay: Duration::from_secs(30),
        ..reply(200, openapi::example("whatsapp_fetch"))
    })
    .await;
    let mut cfg = config(server.url());
    cfg.timeout = Duration::from_millis(200);
    cfg.retry.max_attempts = 2;
    let c = client_with(&cfg, unlimited());

    let started = Instant::now();
    let err = c.fetch(SID).await.unwrap_err();
    assert!(matches!(err, TwilioError::Timeout), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.seen().len(), 2, "a read is retried after a timeout");

    let err = c.create(&create_minimal()).await.unwrap_err();
    assert!(matches!(err, TwilioError::Timeout), "{err:?}");
    assert_eq!(
        server.seen().len(),
        3,
        "a create is not: it may have gone through"
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // Bind and drop to get a port nobody listens on.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = config(format!("http://{addr}"));
    cfg.retry.max_attempts = 2;
    let err = client_with(&cfg, unlimited())
        .create(&create_minimal())
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::Connect(_)), "{err:?}");
    assert!(err.certainly_not_processed());
}

#[tokio::test]
async fn every_attempt_takes_a_budget_token() {
    let server = TestServer::start(|i, _| match i {
        0 | 1 => twilio_error(503, 20503, "Service unavailable"),
        _ => reply(200, openapi::example("whatsapp_fetch")),
    })
    .await;
    // One token up front, then one every 250 ms: attempts 2 and 3 wait for theirs even
    // though the retry delays are only ~10-40 ms.
    let budget = RequestBudget::new(BudgetConfig {
        per_second: NonZeroU32::new(4).unwrap(),
        burst: NonZeroU32::new(1).unwrap(),
    });
    let started = Instant::now();
    client_with(&config(server.url()), budget)
        .fetch(SID)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(480),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.seen().len(), 3);
}

// -------------------------------------------------------------------------------------------
// Secrets stay out of errors and logs
// -------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn credentials_and_codes_never_reach_errors_or_traces() {
    let logs = LogBuffer::default();
    // Global, not `set_default`: tracing caches per-callsite interest process-wide, so a
    // thread-local subscriber misses spans first hit by other tests. It records this test's
    // thread only (a `#[tokio::test]` runs everything it spawns on its own thread): the binary
    // holds every integration test, whose traces would grow the buffer for the whole run and
    // whose random SIDs and timestamps could contain the six digits of OTP by chance (no
    // timestamps here either, for the same reason: they are not the client's to choose).
    let this_test = std::thread::current().id();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("senderops=trace")
        .with_writer(logs.clone())
        .with_ansi(false)
        .without_time()
        .finish()
        // Dynamic: asked on every event (a plain `filter_fn` is cached per callsite).
        .with(tracing_subscriber::filter::dynamic_filter_fn(
            move |_, _| std::thread::current().id() == this_test,
        ));
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets it");

    let server = TestServer::start(|i, _| match i {
        0 => twilio_error(503, 20503, "Service unavailable"),
        1 => {
            let mut body = openapi::example("whatsapp_patch_update_configuration_response");
            body["configuration"]["verification_code"] = json!(OTP);
            reply(202, body)
        }
        2 => twilio_error(401, 20003, "Authenticate"),
        3 => twilio_error(429, 20429, &format!("Too many requests with code {OTP}")),
        4 => twilio_error(400, 20001, &format!("Invalid verification_code {OTP}")),
        _ => text_reply(200, &format!("verification_code={OTP}")),
    })
    .await;
    let c = client(&server);
    // Retried, answered with Twilio echoing the code, then a credentials error.
    let sender = c.update(SID, &update_configuration()).await.unwrap();
    let err = c.fetch(SID).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NeedsUser);
    assert!(err.advice().contains("credentials Secret"));
    // Answers that quote the code: a 429 (retried, so logged at warn), a 400, and a 200 that
    // is not JSON.
    let refused = c.update(SID, &update_configuration()).await.unwrap_err();
    assert_eq!(refused.twilio_code(), Some(20001));
    let echoed = c.update(SID, &update_configuration()).await.unwrap_err();
    assert!(matches!(echoed, TwilioError::Decode(_)), "{echoed:?}");
    assert_eq!(server.seen().len(), 6);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(ACCOUNT), "traces name the account:\n{logs}");
    assert!(logs.contains(INSTANCE), "traces name the route:\n{logs}");
    assert!(logs.contains("attempt=2"), "traces count attempts:\n{logs}");
    assert!(
        logs.contains("status=202"),
        "traces carry the status:\n{logs}"
    );
    for shown in [
        logs.as_str(),
        &err.to_string(),
        &format!("{err:?}"),
        &err.advice(),
        &everything(&refused),
        &everything(&echoed),
        &format!("{sender:?}"),
        &format!("{c:?}"),
    ] {
        assert!(!shown.contains(TOKEN), "token leaked: {shown}");
        assert!(!shown.contains(OTP), "OTP leaked: {shown}");
    }
    // The answers that quoted the code were logged (so the search above means something).
    assert!(
        logs.contains("Too many requests with code [redacted]")
            && logs.contains("Invalid verification_code [redacted]"),
        "{logs}"
    );
}

/// Everything an error shows of itself, as conditions, Events and logs would carry it.
fn everything(err: &TwilioError) -> String {
    format!(
        "{err}\n{err:?}\n{}\n{}",
        err.advice(),
        senderops::twilio_message("submit the code", err)
    )
}

#[tokio::test]
async fn a_code_submission_answered_with_the_code_keeps_it_out_of_the_error() {
    // Twilio's words are cut to 300 characters: the code straddles the cut.
    let long = format!("{} {OTP} is not valid", "x".repeat(296));
    let server = TestServer::start(move |i, _| match i {
        0 => twilio_error(
            400,
            20001,
            &format!("Invalid parameter: verification_code {OTP} is not a valid code"),
        ),
        1 => text_reply(200, &format!("OK\nverification_code={OTP}\n")),
        2 => reply(200, json!([{"configuration": {"verification_code": OTP}}])),
        3 => twilio_error(400, 20001, &long),
        _ => text_reply(502, &format!("<html>Bad gateway for code {OTP}</html>")),
    })
    .await;
    let mut cfg = config(server.url());
    cfg.retry.max_attempts = 1;
    let c = client_with(&cfg, unlimited());
    let mut errors = Vec::new();
    for _ in 0..5 {
        errors.push(c.update(SID, &update_configuration()).await.unwrap_err());
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 5);
    for request in &seen {
        assert_eq!(
            request.json(),
            json!({"configuration": {"verification_code": OTP}})
        );
    }
    for err in &errors {
        let shown = everything(err);
        assert!(!shown.contains(OTP), "the code is in the error:\n{shown}");
    }
    // Still the errors they were, and what the answers said is kept around the code.
    let [rejected, echoed, misshapen, cut, proxy] = &errors[..] else {
        unreachable!()
    };
    assert_eq!(rejected.http_status(), Some(400));
    assert_eq!(rejected.twilio_code(), Some(20001));
    assert_eq!(rejected.class(), ErrorClass::NeedsUser);
    assert!(
        rejected
            .to_string()
            .contains("verification_code [redacted] is not a valid code"),
        "{rejected}"
    );
    for decode in [echoed, misshapen] {
        assert!(matches!(decode, TwilioError::Decode(_)), "{decode:?}");
        assert!(decode.to_string().contains(INSTANCE), "{decode}");
        assert_eq!(decode.class(), ErrorClass::Retryable);
    }
    assert_eq!(cut.twilio_code(), Some(20001));
    assert!(!everything(cut).contains("774"), "{}", everything(cut));
    assert_eq!(proxy.http_status(), Some(502));
    assert!(
        proxy
            .to_string()
            .contains("Bad gateway for code [redacted]"),
        "{proxy}"
    );
}

/// Records what the client reports, as the metrics do.
#[derive(Default)]
struct Recorder {
    attempts: std::sync::Mutex<Vec<(&'static str, String)>>,
}

impl senderops::twilio::RequestObserver for Recorder {
    fn attempt(&self, operation: &'static str, outcome: &str, _elapsed: Duration) {
        self.attempts
            .lock()
            .unwrap()
            .push((operation, outcome.to_string()));
    }

    fn budget_wait(&self, _waited: Duration) {}
}

#[tokio::test]
async fn every_attempt_is_reported_with_its_operation_and_status() {
    let server = TestServer::start(|i, _| match i {
        0 => twilio_error(503, 20503, "Service unavailable"),
        _ => reply(200, openapi::example("whatsapp_fetch")),
    })
    .await;
    let recorder = std::sync::Arc::new(Recorder::default());
    let config = ClientConfig {
        observer: senderops::twilio::Observer::new(recorder.clone()),
        ..config(server.url())
    };
    client_with(&config, unlimited()).fetch(SID).await.unwrap();
    assert_eq!(
        *recorder.attempts.lock().unwrap(),
        [("fetch", "503".to_string()), ("fetch", "200".to_string())]
    );
}
