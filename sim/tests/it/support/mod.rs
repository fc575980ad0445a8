//! Starts the simulator in-process and talks to it over HTTP like a client would. Every /v2 and
//! /2010-04-01 answer is checked: 2xx bodies against the OpenAPI document, errors against
//! Twilio's error body shape.

// The operator's tests' OpenAPI checks and poll loop, shared so that both crates check and wait
// alike; this crate uses part of each (openapi.rs allows dead code itself).
#[path = "../../../../tests/it/support/openapi.rs"]
pub mod openapi;
#[allow(dead_code)]
#[path = "../../../../tests/it/support/wait.rs"]
pub mod wait;
// Shared with the operator's tests, which use all of it.
#[allow(dead_code)]
#[path = "../../../../tests/it/support/prism.rs"]
pub mod prism;
// The port chooser prism.rs uses.
#[path = "../../../../tests/it/support/ports.rs"]
pub mod ports;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use twilio_sim::{Account, ApiKey, SimConfig, SimHandle};
use wait::Wait;

pub const STEP: Duration = Duration::from_millis(50);
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const ACCOUNT_A: &str = "AC00000000000000000000000000000001";
pub const TOKEN_A: &str = "token-a";
pub const KEY_A: &str = "SK00000000000000000000000000000001";
pub const KEY_SECRET_A: &str = "key-secret-a";
pub const ACCOUNT_B: &str = "AC00000000000000000000000000000002";
pub const TOKEN_B: &str = "token-b";

/// Basic-auth credentials.
#[derive(Debug, Clone, Copy)]
pub struct Creds(pub &'static str, pub &'static str);
pub const A: Creds = Creds(ACCOUNT_A, TOKEN_A);
pub const A_KEY: Creds = Creds(KEY_A, KEY_SECRET_A);
pub const B: Creds = Creds(ACCOUNT_B, TOKEN_B);

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The Twilio error code, asserting the body is a Twilio error.
    pub fn code(&self) -> u64 {
        self.body["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("not a Twilio error: {} {}", self.status, self.body))
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, code: u64) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {}",
            self.body
        );
    }
}

pub struct TestSim {
    /// Held, never read: dropping it stops the simulator.
    _handle: SimHandle,
    pub http: reqwest::Client,
    pub base: String,
}

pub fn config() -> SimConfig {
    let mut a = Account::parse(&format!("{ACCOUNT_A}:{TOKEN_A}")).unwrap();
    a.api_keys.push(ApiKey {
        sid: KEY_A.into(),
        secret: KEY_SECRET_A.into(),
    });
    let b = Account::parse(&format!("{ACCOUNT_B}:{TOKEN_B}")).unwrap();
    SimConfig {
        accounts: vec![a, b],
        step_delay: STEP,
        ..SimConfig::default()
    }
}

pub fn http_client() -> reqwest::Client {
    // The workspace's reqwest has no built-in crypto provider; an error here only means
    // another test installed one first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build reqwest client")
}

/// The route template of a /v2 path, for looking up the OpenAPI operation.
fn route_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    match path.strip_prefix("/v2/Channels/Senders") {
        Some("") => Some("/v2/Channels/Senders"),
        Some(rest) if rest.starts_with('/') && !rest[1..].contains('/') => {
            Some("/v2/Channels/Senders/{Sid}")
        }
        _ => None,
    }
}

pub const NUMBERS_ROUTE: &str = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json";

/// `/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json`.
pub fn numbers_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json")
}

/// Twilio's REST API v2010 document (`tests/openapi/twilio_api_v2010.json`), parsed once.
pub fn v2010_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(include_str!(
            "../../../../tests/openapi/twilio_api_v2010.json"
        ))
        .expect("the vendored v2010 OpenAPI document is JSON")
    })
}

/// The document and route template of a /v2 or /2010-04-01 path.
fn operation_of(path: &str) -> Option<(&'static Value, &'static str)> {
    if let Some(route) = route_of(path) {
        return Some((openapi::document(), route));
    }
    let path = path.split('?').next().unwrap_or(path);
    let account = path
        .strip_prefix("/2010-04-01/Accounts/")?
        .strip_suffix("/IncomingPhoneNumbers.json")?;
    (!account.is_empty() && !account.contains('/')).then(|| (v2010_document(), NUMBERS_ROUTE))
}

/// Every error the simulator sends is Twilio's error body, with the HTTP status repeated.
#[track_caller]
pub fn assert_twilio_error(status: u16, body: &Value) {
    let code = body["code"].as_u64();
    assert!(code.is_some(), "error without integer code: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {body}"
    );
    assert_eq!(
        body["more_info"].as_str(),
        Some(format!("https://www.twilio.com/docs/errors/{}", code.unwrap()).as_str()),
        "{body}"
    );
    assert_eq!(body["status"].as_u64(), Some(u64::from(status)), "{body}");
}

impl TestSim {
    pub async fn start() -> TestSim {
        TestSim::start_with(config()).await
    }

    pub async fn start_with(config: SimConfig) -> TestSim {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let handle = twilio_sim::spawn(listen, config)
            .await
            .expect("start simulator");
        let base = handle.base_url();
        TestSim {
            _handle: handle,
            http: http_client(),
            base,
        }
    }

    async fn send(
        &self,
        creds: Option<Creds>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method, url);
        if let Some(Creds(user, password)) = creds {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request reaches the simulator");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status} body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A Twilio API call; the answer is checked against the OpenAPI document or the error shape.
    pub async fn api(
        &self,
        creds: Creds,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let reply = self
            .send(Some(creds), method.clone(), path, body.as_ref())
            .await;
        self.check(&method, path, &reply);
        reply
    }

    /// The same without credentials.
    pub async fn api_anonymous(&self, method: Method, path: &str) -> Reply {
        let reply = self.send(None, method.clone(), path, None).await;
        self.check(&method, path, &reply);
        reply
    }

    fn check(&self, method: &Method, path: &str, reply: &Reply) {
        let local = path.strip_prefix(&self.base).unwrap_or(path);
        if (200..300).contains(&reply.status) {
            let (doc, route) =
                operation_of(local).unwrap_or_else(|| panic!("2xx for unknown path {local}"));
            if let Err(violations) = openapi::validate_response_in(
                doc,
                route,
                method.as_str(),
                reply.status,
                &reply.body,
            ) {
                panic!(
                    "{method} {route} {} does not match the OpenAPI document:\n  {}\nbody: {:#}",
                    reply.status,
                    violations.join("\n  "),
                    reply.body
                );
            }
        } else {
            assert_twilio_error(reply.status, &reply.body);
            if let Some((doc, route)) = operation_of(local) {
                // An error status the document declares would need its schema checked; none
                // of the Senders operations nor the v2010 list declares one.
                assert!(!openapi::declares_in(
                    doc,
                    route,
                    method.as_str(),
                    reply.status
                ));
            }
        }
    }

    /// A control API call (no auth).
    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(None, method, path, body.as_ref()).await
    }

    // --- conveniences -------------------------------------------------------------------------

    pub async fn set_behavior(&self, number: &str, behavior: &str) {
        let reply = self
            .control(
                Method::POST,
                "/_sim/numbers",
                Some(json!({"phone_number": number, "behavior": behavior})),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    pub async fn create_as(&self, creds: Creds, number: &str, name: &str) -> Reply {
        self.api(
            creds,
            Method::POST,
            "/v2/Channels/Senders",
            Some(json!({
                "sender_id": format!("whatsapp:{number}"),
                "profile": {"name": name},
            })),
        )
        .await
    }

    /// Creates a sender for account A, asserting 202 CREATING; returns its SID.
    pub async fn create(&self, number: &str) -> String {
        let reply = self.create_as(A, number, "Acme").await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.body["status"], "CREATING");
        assert_eq!(reply.body["sender_id"], format!("whatsapp:{number}"));
        reply.body["sid"].as_str().unwrap().to_string()
    }

    pub async fn fetch(&self, sid: &str) -> Value {
        let reply = self
            .api(A, Method::GET, &format!("/v2/Channels/Senders/{sid}"), None)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    pub async fn update(&self, sid: &str, body: Value) -> Reply {
        self.api(
            A,
            Method::POST,
            &format!("/v2/Channels/Senders/{sid}"),
            Some(body),
        )
        .await
    }

    /// Polls (account A) until the sender has `status`, failing after a deadline.
    pub async fn wait_for(&self, sid: &str, status: &str) -> Value {
        Wait::until(format!("{sid} to reach {status}"))
            .within(DEADLINE)
            .every(STEP / 5)
            .poll(
                async || self.fetch(sid).await,
                |sender| sender["status"] == status,
            )
            .await
    }

    /// The OTP the control API says was sent, if any.
    pub async fn otp(&self, sid: &str) -> Option<String> {
        let reply = self
            .control(Method::GET, &format!("/_sim/senders/{sid}/otp"), None)
            .await;
        match reply.status {
            200 => Some(
                reply.body["code"]
                    .as_str()
                    .expect("code is a string")
                    .to_string(),
            ),
            404 => None,
            other => panic!("otp: unexpected {other}: {}", reply.body),
        }
    }

    /// Creates a sender and waits until it asks for a code; returns (SID, code).
    pub async fn pending_with_code(&self, number: &str) -> (String, String) {
        let sid = self.create(number).await;
        self.wait_for(&sid, "PENDING_VERIFICATION").await;
        let code = self.otp(&sid).await.expect("a code was sent");
        (sid, code)
    }
}

/// A six-digit code different from `code`.
pub fn wrong_code(code: &str) -> String {
    if code == "000000" {
        "111111".into()
    } else {
        "000000".into()
    }
}

/// `/_sim/stats`' request counts on routes starting with `prefix`, as sorted rows of (method,
/// route, status, account, count).
pub fn request_rows(
    stats: &Value,
    prefix: &str,
) -> Vec<(String, String, u64, Option<String>, u64)> {
    let mut rows: Vec<_> = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["route"].as_str().unwrap().starts_with(prefix))
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["route"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
                r["account"].as_str().map(str::to_string),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}
