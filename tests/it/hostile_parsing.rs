//! Hostile answers from Twilio, or from whatever sits at the client's base URL: arbitrary
//! bytes, Twilio's own examples with fields replaced by wrong types, huge strings, deep nesting
//! and unknown words, hostile error bodies, redirects and endless bodies. The client must give
//! back a sender, a page or a typed error: never panic, never read more than
//! `MAX_RESPONSE_BYTES`, never quote a body it could not read.

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use senderops::twilio::{
    BudgetConfig, ClientConfig, Credentials, Hosts, MAX_RESPONSE_BYTES, Product, RequestBudget,
    RetryPolicy, Sender, SenderPage, SenderStatus, TwilioClient, TwilioError,
};
use serde_json::{Value, json};

use crate::support::json_paths::pointers;
use crate::support::openapi::example;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "hostile-parsing-token";
const SID: &str = "XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Twilio's own sender answers, as its OpenAPI document gives them.
const SENDER_EXAMPLES: &[&str] = &[
    "whatsapp_create_response",
    "whatsapp_fetch",
    "whatsapp_fetch_offline_reasons",
    "whatsapp_patch_update_configuration_response",
    "whatsapp_patch_update_profile_response",
    "whatsapp_patch_update_webhook_response",
];

/// Words Twilio might add to its open value sets.
const UNKNOWN_WORDS: &[&str] = &[
    "SUSPENDED_BY_META",
    "ONLINE:RESTRICTED",
    "",
    "online",
    "FLAGGED",
    "Space Travel",
    "63999",
];

/// The longest a one-line error built from an answer may be (Twilio's quoted text plus what
/// the client says around it).
const MAX_ERROR_CHARS: usize = 500;

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// Text a hostile endpoint might send: anything, control characters and bidi overrides, or
/// one character repeated up to 200 000 times.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 \\n\\r\\t\\u{0}\\u{1b}\\u{202E}\\u{2066}é🚀\"\\\\]{0,64}",
        (any::<char>(), 0..200_000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// `depth` nested arrays, past serde_json's recursion limit (128) when deep enough.
fn nested_arrays(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

/// Any JSON value, with wrong types, huge strings, unknown words and deep nesting.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile_text().prop_map(Value::from),
        prop::sample::select(UNKNOWN_WORDS).prop_map(Value::from),
        (1usize..300).prop_map(nested_arrays),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A sender example with the value at one of its pointers replaced by `value`.
fn replaced(doc: &Value, at: prop::sample::Index, value: Value) -> (String, Value) {
    let paths = pointers(doc);
    let (path, _) = &paths[at.index(paths.len())];
    let mut doc = doc.clone();
    *doc.pointer_mut(path).expect("the pointer exists") = value;
    (path.clone(), doc)
}

fn sender_example() -> impl Strategy<Value = Value> {
    prop::sample::select(SENDER_EXAMPLES).prop_map(example)
}

/// A Twilio sender example with one field, anywhere, replaced by a hostile value.
fn mutated_sender() -> impl Strategy<Value = Value> {
    (
        sender_example(),
        any::<prop::sample::Index>(),
        hostile_value(),
    )
        .prop_map(|(doc, at, value)| replaced(&doc, at, value).1)
}

/// A list page of mutated senders with a hostile `meta`.
fn mutated_page() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(mutated_sender(), 0..4),
        hostile_value(),
        hostile_value(),
    )
        .prop_map(|(senders, next_page_url, page)| {
            json!({"senders": senders, "meta": {"next_page_url": next_page_url, "page": page,
                   "page_size": 50, "key": "senders"}})
        })
}

/// Twilio's error body shape with hostile values in every field.
fn hostile_error_body() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            hostile_value(),
            any::<u32>().prop_map(Value::from),
            any::<u32>().prop_map(|c| Value::from(c.to_string())),
        ],
        hostile_value(),
        hostile_value(),
        hostile_value(),
    )
        .prop_map(|(code, message, more_info, status)| {
            json!({"code": code, "message": message, "more_info": more_info, "status": status})
        })
}

/// Bytes as they could come off the wire.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    let json = |s: BoxedStrategy<Value>| s.prop_map(|v| serde_json::to_vec(&v).unwrap());
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        json(mutated_sender().boxed()),
        json(mutated_page().boxed()),
        json(hostile_error_body().boxed()),
        json(hostile_value().boxed()),
        // Valid JSON cut short.
        (json(mutated_sender().boxed()), any::<prop::sample::Index>()).prop_map(|(bytes, at)| {
            let end = at.index(bytes.len() + 1);
            bytes[..end].to_vec()
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Parsing, without a server

/// What the client's error for an answer shows must be one bounded line.
fn assert_one_bounded_line(err: &TwilioError) -> Result<(), TestCaseError> {
    for shown in [err.to_string(), err.advice()] {
        prop_assert!(
            shown.chars().count() <= MAX_ERROR_CHARS,
            "{} chars: {:.200}",
            shown.chars().count(),
            shown
        );
        prop_assert!(!shown.contains(char::is_control), "{shown:?}");
    }
    Ok(())
}

#[test]
fn arbitrary_bytes_parse_or_fail_cleanly_as_sender_page_and_error() {
    TestRunner::new(config())
        .run(&(hostile_body(), any::<u16>()), |(bytes, status)| {
            let _ = serde_json::from_slice::<Sender>(&bytes);
            let _ = serde_json::from_slice::<SenderPage>(&bytes);
            let err = TwilioError::from_response(status, &String::from_utf8_lossy(&bytes), None);
            prop_assert_eq!(err.http_status(), Some(status));
            assert_one_bounded_line(&err)
        })
        .unwrap();
}

#[test]
fn a_sender_with_any_field_replaced_parses_or_fails_cleanly() {
    TestRunner::new(config())
        .run(&mutated_sender(), |doc| {
            let bytes = serde_json::to_vec(&doc).unwrap();
            if let Ok(sender) = serde_json::from_slice::<Sender>(&bytes) {
                // What was read serializes again (it is logged and mirrored).
                serde_json::to_vec(&sender).expect("a parsed sender serializes");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn null_anywhere_in_a_twilio_sender_reads_as_absent() {
    TestRunner::new(config())
        .run(
            &(sender_example(), any::<prop::sample::Index>()),
            |(doc, at)| {
                let (path, doc) = replaced(&doc, at, Value::Null);
                let parsed = serde_json::from_value::<Sender>(doc);
                prop_assert!(parsed.is_ok(), "null at {path}: {:?}", parsed.err());
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn unknown_fields_anywhere_in_a_twilio_sender_are_ignored() {
    TestRunner::new(config())
        .run(
            &(
                sender_example(),
                any::<prop::sample::Index>(),
                "zz_[a-z_]{1,12}",
                hostile_value(),
            ),
            |(doc, at, field, value)| {
                let original: Sender = serde_json::from_value(doc.clone()).unwrap();
                let objects: Vec<String> = std::iter::once(String::new())
                    .chain(
                        pointers(&doc)
                            .into_iter()
                            .filter(|(_, is_object)| *is_object)
                            .map(|(p, _)| p),
                    )
                    .collect();
                let path = &objects[at.index(objects.len())];
                let mut doc = doc;
                let object = doc.pointer_mut(path).unwrap().as_object_mut().unwrap();
                object.insert(field.clone(), value);
                let parsed = serde_json::from_value::<Sender>(doc);
                prop_assert_eq!(
                    parsed.as_ref().ok(),
                    Some(&original),
                    "unknown field {}/{} changed the parse: {:?}",
                    path,
                    field,
                    parsed.as_ref().err()
                );
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn unknown_status_words_survive_verbatim() {
    TestRunner::new(config())
        .run(&(sender_example(), hostile_text()), |(mut doc, word)| {
            doc["status"] = Value::from(word.clone());
            let sender: Sender = serde_json::from_value(doc).unwrap();
            prop_assert_eq!(sender.status.as_str(), word.as_str());
            prop_assert_eq!(&sender.status, &SenderStatus::parse(&word));
            Ok(())
        })
        .unwrap();
}

#[test]
fn list_pages_with_hostile_senders_and_meta_parse_or_fail_cleanly() {
    TestRunner::new(config())
        .run(&mutated_page(), |page| {
            let bytes = serde_json::to_vec(&page).unwrap();
            if let Ok(page) = serde_json::from_slice::<SenderPage>(&bytes) {
                prop_assert!(page.senders.len() <= 4);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn hostile_error_bodies_become_bounded_typed_errors() {
    TestRunner::new(config())
        .run(&(hostile_error_body(), any::<u16>()), |(body, status)| {
            let err = TwilioError::from_response(status, &body.to_string(), None);
            let TwilioError::Api {
                http_status, code, ..
            } = &err
            else {
                panic!("an answer's error is an API error: {err:?}");
            };
            prop_assert_eq!(*http_status, status);
            let sent_code = match &body["code"] {
                Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            if sent_code.is_some() {
                prop_assert_eq!(*code, sent_code, "{}", body["code"]);
            }
            assert_one_bounded_line(&err)
        })
        .unwrap();
}

#[test]
fn nesting_far_past_the_recursion_limit_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // A field the model reads: serde_json's recursion limit refuses it.
    for body in [
        format!(r#"{{"sid":"{SID}","profile":{{"emails":{deep}}}}}"#),
        deep.clone(),
    ] {
        assert!(serde_json::from_str::<Sender>(&body).is_err(), "{body:.80}");
    }
    for body in [format!(r#"{{"senders":[{deep}]}}"#), deep.clone()] {
        assert!(
            serde_json::from_str::<SenderPage>(&body).is_err(),
            "{body:.80}"
        );
    }
    // Twilio's code survives a deep value in another field of its error body.
    let err = TwilioError::from_response(
        400,
        &format!(r#"{{"code":63100,"message":"bad","more_info":{deep}}}"#),
        None,
    );
    assert_eq!(err.twilio_code(), Some(63100), "{err}");
    // A field it ignores is skipped without recursing, however deep.
    let ignored = format!(r#"{{"sid":"{SID}","brand_new":{deep}}}"#);
    let sender: Sender = serde_json::from_str(&ignored).expect("an unknown field is skipped");
    assert_eq!(sender.sid, SID);
    for body in [ignored, deep] {
        let err = TwilioError::from_response(400, &body, None);
        assert_eq!(err.twilio_code(), None, "{err}");
        assert!(err.to_string().len() < MAX_ERROR_CHARS, "{err}");
    }
}

#[test]
fn a_huge_display_name_is_kept_whole_for_the_operator_to_bound() {
    let name = "🚀".repeat(1_000_000);
    let mut doc = example("whatsapp_fetch");
    doc["profile"]["name"] = Value::from(name.clone());
    let sender: Sender = serde_json::from_value(doc).unwrap();
    assert_eq!(
        sender.profile.and_then(|p| p.name).map(|n| n.len()),
        Some(name.len())
    );
}

// ---------------------------------------------------------------------------------------------
// Through the client, against a local server that answers whatever the test says

/// A server that answers every request with the status and body last set.
struct Canned {
    base_url: String,
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
    hits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct CannedState {
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
    hits: Arc<AtomicUsize>,
}

async fn canned(State(state): State<CannedState>) -> Response {
    state.hits.fetch_add(1, Ordering::Relaxed);
    let (status, body) = state.answer.lock().unwrap().clone();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::LOCATION, "http://127.0.0.1:9/elsewhere")
        .body(Body::from(body))
        .unwrap()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn canned_server() -> Canned {
    let state = CannedState {
        answer: Arc::new(Mutex::new((200, Vec::new()))),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let router = Router::new().fallback(canned).with_state(state.clone());
    Canned {
        base_url: serve(router).await,
        answer: state.answer,
        hits: state.hits,
    }
}

/// One attempt per request (no retry waits), and a budget that never makes a case wait.
fn client(base_url: &str) -> TwilioClient {
    let config = ClientConfig {
        hosts: Hosts::default().with(Product::Messaging, base_url),
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        },
        ..ClientConfig::default()
    };
    let budget = RequestBudget::new(BudgetConfig {
        per_second: NonZeroU32::new(1_000_000).unwrap(),
        burst: NonZeroU32::new(1_000_000).unwrap(),
    });
    TwilioClient::new(Credentials::auth_token(ACCOUNT, TOKEN), &config, budget).unwrap()
}

/// The statuses an answer may carry, redirects included (the client follows none).
const STATUSES: &[u16] = &[
    200, 201, 202, 204, 301, 302, 307, 308, 400, 401, 403, 404, 408, 429, 500, 502, 503, 599,
];

/// The client's verdict on an answer, checked against what the bytes were.
fn check_answer<T: std::fmt::Debug>(
    status: u16,
    body: &[u8],
    parses: bool,
    result: Result<T, TwilioError>,
) -> Result<(), TestCaseError> {
    let success = (200..300).contains(&status);
    match result {
        Ok(_) => prop_assert!(success && parses, "{status}: accepted {:.200?}", body),
        Err(TwilioError::Decode(message)) => {
            prop_assert!(success && !parses, "{status}: Decode({message})");
            prop_assert!(message.len() < 200, "the error quotes the body: {message}");
        }
        Err(err @ TwilioError::Api { .. }) => {
            prop_assert!(!success, "{status}: {err}");
            prop_assert_eq!(err.http_status(), Some(status));
            assert_one_bounded_line(&err)?;
        }
        Err(other) => prop_assert!(false, "{status}: unexpected {other:?}"),
    }
    Ok(())
}

#[test]
fn the_client_turns_any_answer_into_a_value_or_a_typed_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(canned_server());
    let client = client(&server.base_url);
    let answers = (prop::sample::select(STATUSES), hostile_body());
    let mut runner = TestRunner::new(Config {
        cases: 128,
        ..config()
    });
    runner
        .run(&answers, |(status, body)| {
            *server.answer.lock().unwrap() = (status, body.clone());
            // HTTP drops the body of a 204.
            let body = if status == 204 { Vec::new() } else { body };
            let hits = server.hits.load(Ordering::Relaxed);
            let fetched = runtime.block_on(client.fetch(SID));
            prop_assert_eq!(server.hits.load(Ordering::Relaxed), hits + 1, "one attempt");
            let parses = serde_json::from_slice::<Sender>(&body).is_ok();
            check_answer(status, &body, parses, fetched)?;
            let page = runtime.block_on(client.list_page(50, None));
            let parses = serde_json::from_slice::<SenderPage>(&body).is_ok();
            check_answer(status, &body, parses, page)
        })
        .unwrap();
}

#[test]
fn a_redirect_is_not_followed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(canned_server());
    let client = client(&server.base_url);
    for status in [301, 302, 303, 307, 308] {
        *server.answer.lock().unwrap() = (status, Vec::new());
        let err = runtime.block_on(client.fetch(SID)).unwrap_err();
        assert_eq!(err.http_status(), Some(status), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies larger than the client reads

/// A server whose every answer is `status` with a body of spaces that never ends (with or
/// without a declared, huge `Content-Length`), counting the bytes it produced.
async fn endless_server(status: u16, declare_length: bool) -> (String, Arc<AtomicUsize>) {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let handler = move || {
        let counter = counter.clone();
        async move {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures::stream::repeat(chunk).map(move |chunk| {
                counter.fetch_add(chunk.len(), Ordering::Relaxed);
                Ok::<_, Infallible>(chunk)
            });
            let mut response = Response::new(Body::from_stream(stream));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            if declare_length {
                response.headers_mut().insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from_static("1073741824"),
                );
            }
            response
        }
    };
    (serve(Router::new().fallback(handler)).await, produced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_refused_after_max_response_bytes() {
    for (status, declare_length) in [(200, false), (200, true), (500, false), (400, true)] {
        let (base_url, produced) = endless_server(status, declare_length).await;
        let client = client(&base_url);
        let started = Instant::now();
        let err = client.fetch(SID).await.unwrap_err();
        let what = format!("HTTP {status}, declared length: {declare_length}");
        assert!(
            matches!(err, TwilioError::ResponseTooLarge { limit } if limit == MAX_RESPONSE_BYTES),
            "{what}: {err:?}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("larger than {MAX_RESPONSE_BYTES} bytes")),
            "{what}: {shown}"
        );
        assert!(
            err.is_retryable(),
            "{what}: a later attempt may get a sane answer"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: took {:?}",
            started.elapsed()
        );
        // Let the server notice the closed connection, then check it was stopped early: what it
        // produced is the client's read plus what socket buffers held, not gigabytes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = produced.load(Ordering::Relaxed);
        assert!(
            sent < MAX_RESPONSE_BYTES + 32 * 1024 * 1024,
            "{what}: the server produced {sent} bytes"
        );
        if declare_length {
            assert!(
                sent < MAX_RESPONSE_BYTES,
                "{what}: a declared oversize body is refused before it is read ({sent} bytes)"
            );
        }
    }
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_read() {
    // A list page with one sender padded to just under the limit: big, but a valid answer.
    let mut sender = example("whatsapp_fetch");
    let page_without_padding = serde_json::to_vec(&json!({"senders": [sender.clone()]})).unwrap();
    let padding = MAX_RESPONSE_BYTES - page_without_padding.len() - 64;
    sender["profile"]["description"] = Value::from("d".repeat(padding));
    let body = serde_json::to_vec(&json!({"senders": [sender]})).unwrap();
    assert!(body.len() <= MAX_RESPONSE_BYTES);
    let server = canned_server().await;
    *server.answer.lock().unwrap() = (200, body);
    let page = client(&server.base_url).list_page(50, None).await.unwrap();
    assert_eq!(page.senders.len(), 1);
}
