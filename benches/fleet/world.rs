//! The benchmark's world: ten accounts at the simulator (ISV subaccounts), one namespace and
//! credentials Secret per account, and the senders planned over them.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use senderops::api::{WhatsAppSender, WhatsAppSenderSpec};
use senderops::controllers::whatsapp_sender::diff;
use serde_json::{Value, json};
use twilio_sim::{Account, SimConfig, SimHandle};

/// Label that tells the two operators of the request-cost phases apart.
pub const REFRESH_LABEL: &str = "bench.senderops.io/refresh";
/// Concurrent writes while setting the world up.
const SETUP_CONCURRENCY: usize = 32;

pub struct BenchAccount {
    pub sid: String,
    pub token: String,
    pub namespace: String,
    /// Run by the operator with batched refresh (else by the one without).
    pub batched: bool,
}

pub struct Planned {
    pub name: String,
    pub phone: String,
    pub account: usize,
    pub coded: bool,
}

impl Planned {
    pub fn code_secret(&self) -> String {
        format!("{}-otp", self.name)
    }
}

/// Sender `index` of the fleet: accounts take pairs in turn, so each has as many senders that
/// verify automatically as senders that need a code.
pub fn plan(index: usize, accounts: usize, coded_allowed: bool) -> Planned {
    Planned {
        name: format!("s-{index:05}"),
        phone: format!("+1500{index:07}"),
        account: (index / 2) % accounts,
        coded: coded_allowed && index % 2 == 1,
    }
}

pub fn accounts(count: usize, run: &str) -> Vec<BenchAccount> {
    (0..count)
        .map(|i| BenchAccount {
            sid: format!("AC{:032x}", 0xbe00 + i),
            token: format!("bench-token-{i}"),
            namespace: format!("bench-{run}-{i}"),
            batched: i < count.div_ceil(2),
        })
        .collect()
}

pub async fn start_sim(accounts: &[BenchAccount], step: Duration) -> SimHandle {
    let config = SimConfig {
        accounts: accounts
            .iter()
            .map(|a| Account {
                account_sid: a.sid.clone(),
                auth_token: a.token.clone(),
                api_keys: vec![],
            })
            .collect(),
        step_delay: step,
        ..SimConfig::default()
    };
    twilio_sim::spawn("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("start the simulator")
}

/// The simulator's `/_sim` control API and its Twilio API, as the stand-in user and the
/// set-up use them.
#[derive(Clone)]
pub struct SimControl {
    pub base: String,
    http: reqwest::Client,
}

impl SimControl {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("reach the simulator");
        let status = response.status();
        let text = response.text().await.expect("read the simulator's answer");
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn set_numbers(&self, plan: &[Planned]) {
        stream::iter(plan)
            .for_each_concurrent(SETUP_CONCURRENCY, |p| async move {
                let behavior = if p.coded { "needs_code" } else { "auto_verify" };
                self.call(
                    reqwest::Method::POST,
                    "/_sim/numbers",
                    Some(json!({"phone_number": p.phone, "behavior": behavior})),
                )
                .await;
            })
            .await;
    }

    pub async fn set_faults(&self, faults: Value) {
        self.call(reqwest::Method::PUT, "/_sim/faults", Some(faults))
            .await;
    }

    pub async fn stats(&self) -> Value {
        self.call(reqwest::Method::GET, "/_sim/stats", None).await
    }

    pub async fn senders(&self) -> Vec<Value> {
        let all = self.call(reqwest::Method::GET, "/_sim/senders", None).await;
        all.as_array().cloned().unwrap_or_default()
    }

    /// The code "sent" to the phone, once there is one.
    pub async fn otp(&self, sid: &str) -> Option<String> {
        let response = self
            .http
            .get(format!("{}/_sim/senders/{sid}/otp", self.base))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        body["code"].as_str().map(str::to_string)
    }

    /// Registers `p` directly, with the request the operator would send for `spec`: a fleet
    /// that exists before its manifests do (imported with `senderops export`, say).
    pub async fn register(&self, account: &BenchAccount, spec: &WhatsAppSenderSpec) {
        let body = serde_json::to_value(diff::create_request(spec)).expect("a request");
        let response = self
            .http
            .post(format!("{}/v2/Channels/Senders", self.base))
            .basic_auth(&account.sid, Some(&account.token))
            .json(&body)
            .send()
            .await
            .expect("reach the simulator");
        assert!(
            response.status().is_success(),
            "register {}: {}",
            spec.phone_number,
            response.text().await.unwrap_or_default()
        );
    }
}

/// Counts from a `/_sim/stats` snapshot: requests of accounts matching `accounts`, and
/// requests answered with `status`.
pub fn requests_of(stats: &Value, accounts: &[&str]) -> u64 {
    rows(stats)
        .filter(|r| r["account"].as_str().is_some_and(|a| accounts.contains(&a)))
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

/// Reads of Twilio's Error Log (`GET /v1/Alerts`), all accounts.
pub fn alert_reads(stats: &Value) -> u64 {
    rows(stats)
        .filter(|r| r["method"] == "GET" && r["route"] == "/v1/Alerts")
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

pub fn requests_with_status(stats: &Value, status: u64) -> u64 {
    rows(stats)
        .filter(|r| r["status"].as_u64() == Some(status))
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

fn rows(stats: &Value) -> impl Iterator<Item = &Value> {
    stats["requests"].as_array().into_iter().flatten()
}

pub fn spec(p: &Planned) -> Value {
    let mut spec = json!({
        "phoneNumber": p.phone,
        "credentialsRef": {"name": "twilio"},
        "profile": {"name": format!("Bench {}", p.account)},
    });
    if p.coded {
        spec["verification"] = json!({"codeSecretRef": {"name": p.code_secret(), "key": "code"}});
    }
    spec
}

pub fn typed_spec(p: &Planned) -> WhatsAppSenderSpec {
    serde_json::from_value(spec(p)).expect("a valid spec")
}

pub async fn create_namespaces_and_credentials(client: &kube::Client, accounts: &[BenchAccount]) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for a in accounts {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": a.namespace}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {}: {e}", a.namespace));
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "twilio"},
            "stringData": {"accountSid": a.sid, "authToken": a.token},
        }))
        .unwrap();
        Api::<Secret>::namespaced(client.clone(), &a.namespace)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("create the credentials in {}: {e}", a.namespace));
    }
}

pub async fn create_senders(client: &kube::Client, accounts: &[BenchAccount], plan: &[Planned]) {
    stream::iter(plan)
        .map(Ok::<_, kube::Error>)
        .try_for_each_concurrent(SETUP_CONCURRENCY, |p| async move {
            let account = &accounts[p.account];
            let refresh = if account.batched { "batched" } else { "single" };
            let sender: WhatsAppSender = serde_json::from_value(json!({
                "apiVersion": "messaging.senderops.io/v1alpha1",
                "kind": "WhatsAppSender",
                "metadata": {"name": p.name, "labels": {REFRESH_LABEL: refresh}},
                "spec": spec(p),
            }))
            .expect("a WhatsAppSender");
            Api::<WhatsAppSender>::namespaced(client.clone(), &account.namespace)
                .create(&PostParams::default(), &sender)
                .await
                .map(drop)
        })
        .await
        .expect("create the senders");
}

/// Secrets the operator must not cache the data of: `count` of them, 4 KiB each.
pub async fn create_unrelated_secrets(
    client: &kube::Client,
    accounts: &[BenchAccount],
    count: usize,
) {
    let filler = "x".repeat(4096);
    stream::iter(0..count)
        .map(Ok::<_, kube::Error>)
        .try_for_each_concurrent(SETUP_CONCURRENCY, |i| {
            let filler = filler.clone();
            async move {
                let ns = &accounts[i % accounts.len()].namespace;
                let secret: Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("unrelated-{i:05}")},
                    "stringData": {"payload": filler},
                }))
                .unwrap();
                Api::<Secret>::namespaced(client.clone(), ns)
                    .create(&PostParams::default(), &secret)
                    .await
                    .map(drop)
            }
        })
        .await
        .expect("create the unrelated Secrets");
}

/// Creates Secret `p`'s code Secret with `code`.
pub async fn write_code(client: &kube::Client, namespace: &str, p: &Planned, code: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": p.code_secret()},
        "stringData": {"code": code},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", p.code_secret()));
}
