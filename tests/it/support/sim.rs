//! The Twilio simulator in-process, with a client for its `/_sim` control API and clients of
//! the operator's own Twilio client pointed at it (or at a proxy in front of it).

use std::time::Duration;

use senderops::twilio::{
    BudgetConfig, ClientConfig, Credentials, RequestBudget, RetryPolicy, Sender, SenderStatus,
    TwilioClient, TwilioError,
};
use serde_json::{Value, json};
use twilio_sim::{Account, ApiKey, SimConfig, SimHandle};

use super::wait::Wait;

pub const ACCOUNT_A: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN_A: &str = "sim-token-a";
pub const KEY_A: &str = "SK0123456789abcdef0123456789abcdef";
pub const KEY_SECRET_A: &str = "sim-key-secret-a";
pub const ACCOUNT_B: &str = "ACfedcba9876543210fedcba9876543210";
pub const TOKEN_B: &str = "sim-token-b";

/// How long one simulated lifecycle step takes.
pub const STEP: Duration = Duration::from_millis(50);

/// Stops the simulator when dropped (its handle does).
pub struct Sim {
    handle: SimHandle,
    http: reqwest::Client,
}

impl Sim {
    /// Two accounts; A also has an API key.
    pub async fn start() -> Sim {
        Self::start_with(|_| {}).await
    }

    /// [`Sim::start`] with settings changed by `tweak` (how long a number reads OFFLINE after
    /// registration, say).
    pub async fn start_with(tweak: impl FnOnce(&mut SimConfig)) -> Sim {
        let mut config = SimConfig {
            accounts: vec![
                Account {
                    account_sid: ACCOUNT_A.into(),
                    auth_token: TOKEN_A.into(),
                    api_keys: vec![ApiKey {
                        sid: KEY_A.into(),
                        secret: KEY_SECRET_A.into(),
                    }],
                },
                Account {
                    account_sid: ACCOUNT_B.into(),
                    auth_token: TOKEN_B.into(),
                    api_keys: vec![],
                },
            ],
            step_delay: STEP,
            ..SimConfig::default()
        };
        tweak(&mut config);
        let handle = twilio_sim::spawn("127.0.0.1:0".parse().unwrap(), config)
            .await
            .expect("start the simulator");
        // reqwest is built without a default crypto provider, even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Sim {
            handle,
            http: reqwest::Client::new(),
        }
    }

    pub fn base_url(&self) -> String {
        self.handle.base_url()
    }

    /// Test settings: quick retries so fault tests finish fast.
    pub fn client_config(base_url: &str) -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                max_attempts: 6,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_secs(2),
            },
            list_page_size: 2,
            ..ClientConfig::default().all_products_at(base_url)
        }
    }

    /// The operator's client for account A, talking to `base_url` (the simulator or a proxy).
    pub fn client_via(&self, base_url: &str, credentials: Credentials) -> TwilioClient {
        let budget = RequestBudget::new(BudgetConfig::default());
        TwilioClient::new(credentials, &Self::client_config(base_url), budget)
            .expect("build the Twilio client")
    }

    pub fn client(&self, credentials: Credentials) -> TwilioClient {
        self.client_via(&self.base_url(), credentials)
    }

    pub fn client_a(&self) -> TwilioClient {
        self.client(Credentials::auth_token(ACCOUNT_A, TOKEN_A))
    }

    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .expect("reach the simulator's control API");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sets how Meta treats a number: auto_verify, needs_code, already_registered,
    /// code_never_arrives.
    pub async fn number(&self, phone: &str, behavior: &str) {
        let (status, body) = self
            .control(
                reqwest::Method::POST,
                "/_sim/numbers",
                Some(json!({"phone_number": phone, "behavior": behavior})),
            )
            .await;
        assert!(status < 300, "configure {phone}: {status} {body}");
    }

    /// The last code "sent" to the sender's number, if any.
    pub async fn otp(&self, sid: &str) -> Option<String> {
        let (status, body) = self
            .control(
                reqwest::Method::GET,
                &format!("/_sim/senders/{sid}/otp"),
                None,
            )
            .await;
        match status {
            200 => Some(body["code"].as_str().expect("code is a string").to_string()),
            404 => None,
            _ => panic!("read the OTP of {sid}: {status} {body}"),
        }
    }

    /// Changes what Meta reports for a sender.
    pub async fn patch_sender(&self, sid: &str, patch: Value) {
        let (status, body) = self
            .control(
                reqwest::Method::PATCH,
                &format!("/_sim/senders/{sid}"),
                Some(patch),
            )
            .await;
        assert!(status < 300, "patch {sid}: {status} {body}");
    }

    pub async fn faults(&self, faults: Value) {
        let (status, body) = self
            .control(reqwest::Method::PUT, "/_sim/faults", Some(faults))
            .await;
        assert!(status < 300, "set faults: {status} {body}");
    }

    /// Every sender of every account, as the simulator holds them.
    pub async fn all_senders(&self) -> Vec<Value> {
        let (status, body) = self
            .control(reqwest::Method::GET, "/_sim/senders", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().expect("an array").clone()
    }

    /// One sender as the simulator holds it (with `create_requests`, `codes_sent`, …).
    pub async fn sender(&self, sid: &str) -> Value {
        let (status, body) = self
            .control(reqwest::Method::GET, &format!("/_sim/senders/{sid}"), None)
            .await;
        assert_eq!(status, 200, "read simulator sender {sid}: {body}");
        body
    }

    /// `GET /_sim/stats`: `{"requests": [{method, route, status, count}], "lost_answers"}`.
    pub async fn stats(&self) -> Value {
        let (code, body) = self
            .control(reqwest::Method::GET, "/_sim/stats", None)
            .await;
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Every /v2 request the simulator answered (or lost), all routes and statuses.
    pub async fn requests_total(&self) -> u64 {
        requests_in(&self.stats().await, |_| true)
    }

    /// Logs an alert about sender `resource_sid` in the account that owns it, as Twilio would
    /// (`POST /_sim/alerts`); returns the alert as `GET /v1/Alerts/{Sid}` shows it.
    pub async fn log_alert(&self, resource_sid: &str, error_code: &str, text: &str) -> Value {
        let (status, body) = self
            .control(
                reqwest::Method::POST,
                "/_sim/alerts",
                Some(json!({"resource_sid": resource_sid, "error_code": error_code, "alert_text": text})),
            )
            .await;
        assert_eq!(status, 201, "log an alert: {body}");
        body
    }

    /// `senderops export` of account A from this simulator, run as a person would (Twilio's
    /// CLI variables, an auth token).
    pub async fn export_a(&self) -> std::process::Output {
        // Async: this simulator answers it on the caller's runtime.
        tokio::process::Command::new(env!("CARGO_BIN_EXE_senderops"))
            .args(["export", "--twilio-api-url", &self.base_url()])
            .env("TWILIO_ACCOUNT_SID", ACCOUNT_A)
            .env("TWILIO_AUTH_TOKEN", TOKEN_A)
            .env_remove("TWILIO_API_KEY")
            .output()
            .await
            .expect("run senderops export")
    }

    /// Reads of the Error Log (`GET /v1/Alerts`), whatever their answer.
    pub async fn alert_reads(&self) -> u64 {
        requests_in(&self.stats().await, |r| {
            r["method"] == "GET" && r["route"] == "/v1/Alerts"
        })
    }

    /// Every `POST /v2/Channels/Senders` for `phone` (E.164), whatever its answer: for a
    /// number registered once, exactly 1, ever; for a number adopted, 0.
    pub async fn create_attempts(&self, phone: &str) -> u64 {
        create_attempts_in(&self.stats().await, phone)
    }

    /// Lost answers of `method` on `route` (a template).
    pub async fn lost_answers(&self, method: &str, route: &str) -> u64 {
        self.stats().await["lost_answers_by_route"]
            .as_array()
            .expect("stats have lost_answers_by_route")
            .iter()
            .filter(|r| r["method"] == method && r["route"] == route)
            .map(|r| r["count"].as_u64().unwrap_or(0))
            .sum()
    }

    /// How many requests of `method` to `route` (a template) got `status`.
    pub async fn count(&self, method: &str, route: &str, status: u16) -> u64 {
        requests_in(&self.stats().await, |r| {
            r["method"] == method && r["route"] == route && r["status"] == status
        })
    }
}

/// The create attempts for `phone` in a `/_sim/stats` snapshot.
pub fn create_attempts_in(stats: &Value, phone: &str) -> u64 {
    stats["create_attempts"][phone].as_u64().unwrap_or(0)
}

/// The requests counted in a `/_sim/stats` snapshot whose row (method, route, status) matches.
pub fn requests_in(stats: &Value, matches: impl Fn(&Value) -> bool) -> u64 {
    stats["requests"]
        .as_array()
        .expect("stats have requests")
        .iter()
        .filter(|r| matches(r))
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

/// Fetches `sid` until `done` holds for it, or panics after a deadline with what it last read.
pub async fn wait_for(
    client: &TwilioClient,
    sid: &str,
    what: &str,
    done: impl Fn(&Sender) -> bool,
) -> Sender {
    Wait::until(format!("{sid} to become {what}"))
        .within(Duration::from_secs(10))
        .every(STEP / 2)
        .poll(
            async || client.fetch(sid).await.expect("fetch the sender"),
            done,
        )
        .await
}

pub async fn wait_for_status(client: &TwilioClient, sid: &str, status: SenderStatus) -> Sender {
    let what = status.to_string();
    wait_for(client, sid, &what, |s| s.status == status).await
}

/// The Twilio code of an error, asserting it is one.
pub fn code_of(error: &TwilioError) -> u32 {
    error
        .twilio_code()
        .unwrap_or_else(|| panic!("not a Twilio API error: {error}"))
}
