//! `senderops run` as a child process against the test control plane and an in-process
//! simulator, and a fixture that gives each test its own namespace, simulator and operator.
//!
//! The operator is the real binary (`CARGO_BIN_EXE_senderops`), so the CLI, start-up, signal
//! handling and crashes (SIGKILL) are what users get. Each wait has a deadline ([`Wait`]) and,
//! when it runs out, panics with what it saw last and the tail of the operator's log.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use senderops::api::WhatsAppSender;
use senderops::twilio::{
    CreateSenderRequest, FieldUpdate, Profile, Sender, TwilioClient, sender_id_for,
};
use serde_json::{Value, json};

use super::controlplane::{self, ControlPlane, repo_root};
use super::metrics;
use super::sim::{ACCOUNT_A, Sim, TOKEN_A};
use super::wait::Wait;

/// Timing for tests: polls fast (the simulator's steps are 50 ms) and never resyncs, so a test
/// that sees a change knows a watch or a poll caused it, not the resync timer.
pub const TEST_ARGS: &[&str] = &[
    "--poll-interval",
    "100ms",
    "--error-backoff",
    "100ms",
    "--resync-interval",
    "1h",
    "--metrics-addr",
    "127.0.0.1:0",
    // The simulator registers in milliseconds; tests of the spacing set it themselves.
    "--registration-interval",
    "0s",
    // Tests ask for new codes and reconciles in quick succession; tests of the limits set
    // them themselves.
    "--code-resend-interval",
    "0s",
    "--reconcile-request-interval",
    "0s",
];

/// How long a test waits for the operator to get somewhere.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A running `senderops run`. Dropping it kills the process.
pub struct Operator {
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
    namespace: String,
    twilio_url: String,
    kubeconfig: PathBuf,
    /// Environment on top of the defaults (see [`Operator::restart_with_env`]).
    env: Vec<(String, String)>,
}

fn log_path(namespace: &str) -> PathBuf {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let dir = repo_root().join("target/testplane/logs");
    std::fs::create_dir_all(&dir).expect("create the log directory");
    dir.join(format!(
        "operator-{namespace}-{}.log",
        RUNS.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Operator {
    /// Starts the operator for `namespace` with [`TEST_ARGS`] and `extra` flags, against the
    /// shared control plane.
    pub fn start(namespace: &str, twilio_url: &str, extra: &[&str]) -> Operator {
        let kubeconfig = controlplane::shared().kubeconfig();
        Self::start_with_kubeconfig(&kubeconfig, namespace, twilio_url, extra)
    }

    /// [`Operator::start`] against the cluster of `kubeconfig` (a dedicated control plane).
    pub fn start_with_kubeconfig(
        kubeconfig: &Path,
        namespace: &str,
        twilio_url: &str,
        extra: &[&str],
    ) -> Operator {
        let mut args: Vec<String> = TEST_ARGS.iter().map(|a| a.to_string()).collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut operator = Operator {
            child: None,
            log: PathBuf::new(),
            args,
            namespace: namespace.to_string(),
            twilio_url: twilio_url.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            env: Vec::new(),
        };
        operator.spawn();
        operator
    }

    fn spawn(&mut self) {
        self.log = log_path(match self.namespace.as_str() {
            "" => "all-namespaces",
            namespace => namespace,
        });
        let log = File::create(&self.log).expect("create the operator log");
        // No namespace: every namespace (see `Fixture::cluster_wide`).
        let namespace = (!self.namespace.is_empty()).then_some(["--namespace", &self.namespace]);
        let child = Command::new(env!("CARGO_BIN_EXE_senderops"))
            .arg("run")
            .args(namespace.iter().flatten())
            .args(["--twilio-api-url", &self.twilio_url])
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,senderops=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("TWILIO_API_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start senderops run");
        self.child = Some(child);
    }

    /// The process ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process (the same one, never restarted behind the caller's back) still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("poll the operator").is_none())
    }

    /// How the process ended, once it has exited on its own (`None` while it runs, or when it
    /// was never started or was killed by [`Operator::kill`]).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("poll the operator")
    }

    /// The log file of the current process (each start writes a new one).
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// SIGKILL, as a crash or an OOM kill would end it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same flags (after [`Operator::kill`] or [`Operator::stop`]).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again with `env` added to its environment, after the defaults: `RUST_LOG`
    /// here replaces the default filter. Later restarts keep it.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.restart();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the operator is running");
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        let exit = Wait::until("the operator to exit after SIGTERM")
            .within(Duration::from_secs(15))
            .every(Duration::from_millis(50))
            .try_poll_ok_blocking(|| {
                child
                    .try_wait()
                    .expect("poll the operator")
                    .ok_or("still running")
            });
        exit.unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "the operator did not exit within 15 s of SIGTERM:\n{}",
                self.log_tail(20)
            )
        })
    }

    /// The operator's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://ADDR` of `/metrics`, `/healthz` and `/readyz`, once the operator logged it.
    pub async fn metrics_url(&self) -> String {
        Wait::until("the operator to serve metrics")
            .within(DEADLINE)
            .every(Duration::from_millis(50))
            .context(|| format!("operator log:\n{}", self.log_tail(20)))
            .poll_ok(async || {
                let log = self.log();
                log.lines()
                    .find(|l| l.contains("serving /metrics"))
                    .and_then(|l| l.split("addr=").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(|addr| format!("http://{}", addr.trim_matches('"')))
                    .ok_or("no \"serving /metrics\" line in its log")
            })
            .await
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One test's world: a namespace with Twilio credentials for account A in Secret `twilio`, a
/// simulator, and an operator watching the namespace.
pub struct Fixture {
    pub plane: &'static ControlPlane,
    pub ns: String,
    pub sim: Sim,
    pub operator: Operator,
    pub client: kube::Client,
    pub senders: Api<WhatsAppSender>,
    pub secrets: Api<Secret>,
    /// A label every applied sender carries: the selector of a cluster-wide operator.
    label: Option<(String, String)>,
}

/// The label that gives a cluster-wide test operator its own senders on the shared plane.
const TEST_LABEL: &str = "senderops.io/test";

impl Fixture {
    /// A fixture whose operator watches every namespace of the shared control plane, limited
    /// (`--selector`) to the senders this fixture applies, which carry a label of its own.
    /// It starts in a new namespace; [`Fixture::namespace_with_credentials`] makes more and
    /// [`Fixture::enter`] moves the fixture's reads and writes into one of them.
    pub async fn cluster_wide(prefix: &str, sim: Sim) -> Fixture {
        let plane = controlplane::shared();
        let ns = plane.namespace(prefix).await;
        let selector = format!("{TEST_LABEL}={ns}");
        let mut fixture = Self::on_plane_via(
            plane,
            &plane.kubeconfig(),
            "",
            sim,
            &["--selector", &selector],
        )
        .await;
        fixture.label = Some((TEST_LABEL.to_string(), ns.clone()));
        fixture.enter(&ns);
        fixture
            .secret(
                "twilio",
                &[("accountSid", ACCOUNT_A), ("authToken", TOKEN_A)],
            )
            .await;
        fixture
    }

    /// A new namespace with Secret `twilio` holding account A's credentials, as every
    /// fixture's namespace has.
    pub async fn namespace_with_credentials(&self, prefix: &str) -> String {
        let ns = self.plane.namespace(prefix).await;
        create_credentials(&self.client, &ns).await;
        ns
    }

    /// Reads and writes of this fixture go to namespace `ns` from now on.
    pub fn enter(&mut self, ns: &str) {
        self.ns = ns.to_string();
        self.senders = Api::namespaced(self.client.clone(), ns);
        self.secrets = Api::namespaced(self.client.clone(), ns);
    }

    pub async fn new(prefix: &str) -> Fixture {
        Self::with_args(prefix, &[]).await
    }

    pub async fn with_args(prefix: &str, extra: &[&str]) -> Fixture {
        let sim = Sim::start().await;
        Self::with_sim(prefix, sim, extra).await
    }

    pub async fn with_sim(prefix: &str, sim: Sim, extra: &[&str]) -> Fixture {
        let ns = controlplane::shared().namespace(prefix).await;
        Self::with_sim_in(&ns, sim, extra).await
    }

    /// A fixture in an existing namespace `ns`.
    pub async fn with_sim_in(ns: &str, sim: Sim, extra: &[&str]) -> Fixture {
        Self::on_plane(controlplane::shared(), ns, sim, extra).await
    }

    /// A fixture in namespace `ns` of `plane` (a dedicated control plane), whose operator
    /// uses that plane's kubeconfig.
    pub async fn on_plane(
        plane: &'static ControlPlane,
        ns: &str,
        sim: Sim,
        extra: &[&str],
    ) -> Fixture {
        Self::on_plane_via(plane, &plane.kubeconfig(), ns, sim, extra).await
    }

    /// [`Fixture::on_plane`] whose operator reaches `plane` with `kubeconfig` (through a relay,
    /// say); the test's own client uses the plane's.
    pub async fn on_plane_via(
        plane: &'static ControlPlane,
        kubeconfig: &Path,
        ns: &str,
        sim: Sim,
        extra: &[&str],
    ) -> Fixture {
        let twilio_url = sim.base_url();
        Self::on_plane_through(plane, kubeconfig, &twilio_url, ns, sim, extra).await
    }

    /// [`Fixture::on_plane_via`] whose operator reaches the simulator at `twilio_url` (a relay
    /// in front of it, say).
    pub async fn on_plane_through(
        plane: &'static ControlPlane,
        kubeconfig: &Path,
        twilio_url: &str,
        ns: &str,
        sim: Sim,
        extra: &[&str],
    ) -> Fixture {
        let ns = ns.to_string();
        let client = plane.client().await;
        let fixture = Fixture {
            plane,
            operator: Operator::start_with_kubeconfig(kubeconfig, &ns, twilio_url, extra),
            senders: Api::namespaced(client.clone(), &ns),
            secrets: Api::namespaced(client.clone(), &ns),
            client,
            sim,
            ns,
            label: None,
        };
        if !fixture.ns.is_empty() {
            fixture
                .secret(
                    "twilio",
                    &[("accountSid", ACCOUNT_A), ("authToken", TOKEN_A)],
                )
                .await;
        }
        fixture
    }

    /// Creates or replaces Secret `name` with string data.
    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let string_data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name},
            "stringData": string_data,
        }))
        .expect("a Secret");
        match self.secrets.get_opt(name).await.expect("read the Secret") {
            None => {
                self.secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .unwrap_or_else(|e| panic!("create Secret {name}: {e}"));
            }
            Some(_) => {
                // Replace the data wholesale: keys not given are dropped.
                let patch = json!({"data": null, "stringData": string_data});
                self.secrets
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap_or_else(|e| panic!("update Secret {name}: {e}"));
            }
        }
    }

    pub async fn delete_secret(&self, name: &str) {
        self.secrets
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete Secret {name}: {e}"));
    }

    /// Applies a sender (server-side apply, as `kubectl apply --server-side` would).
    pub async fn apply(&self, name: &str, spec: Value) {
        let labels = match &self.label {
            Some((key, value)) => json!({ key: value }),
            None => json!({}),
        };
        self.apply_labelled(name, spec, labels).await;
    }

    /// [`Fixture::apply`] with `labels` (an object) on the sender instead of the fixture's own.
    pub async fn apply_labelled(&self, name: &str, spec: Value, labels: Value) {
        let mut manifest = json!({
            "apiVersion": "messaging.senderops.io/v1alpha1",
            "kind": "WhatsAppSender",
            "metadata": {"name": name},
            "spec": spec,
        });
        if labels.as_object().is_some_and(|l| !l.is_empty()) {
            manifest["metadata"]["labels"] = labels;
        }
        self.senders
            .patch(
                name,
                &PatchParams::apply("senderops-tests").force(),
                &Patch::Apply(&manifest),
            )
            .await
            .unwrap_or_else(|e| panic!("apply WhatsAppSender {name}: {e}"));
    }

    /// Merge-patches a sender (`null` removes a field).
    pub async fn patch(&self, name: &str, patch: Value) {
        self.senders
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch WhatsAppSender {name}: {e}"));
    }

    pub async fn delete(&self, name: &str) {
        self.senders
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete WhatsAppSender {name}: {e}"));
    }

    pub async fn get(&self, name: &str) -> Option<WhatsAppSender> {
        self.senders
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("read WhatsAppSender {name}: {e}"))
    }

    /// Sets `senderops.io/reconcile-requested-at` to `value`: a reconcile now, whatever the
    /// resync interval.
    pub async fn request_reconcile(&self, name: &str, value: &str) {
        self.patch(
            name,
            json!({"metadata": {"annotations": {"senderops.io/reconcile-requested-at": value}}}),
        )
        .await;
    }

    /// How many reconciles the operator has finished, whatever their outcome
    /// (`senderops_reconciles_total`).
    pub async fn reconciles(&self) -> f64 {
        metrics::sum(
            &metrics::scrape(&self.operator).await,
            "senderops_reconciles_total",
            &[],
        )
    }

    /// [`Fixture::request_reconcile`], then waits for proof that this very reconcile ran to its
    /// end: `.status.lastHandledReconcileAt` carries `value`, which only the conclusion of a
    /// reconcile that saw the annotation writes (an unrelated poll or backoff cannot). A check
    /// that nothing was sent follows this, never a fixed sleep, which would pass if the
    /// reconcile never ran.
    pub async fn reconcile_and_wait(&self, name: &str, value: &str) {
        self.request_reconcile(name, value).await;
        self.wait_for(
            name,
            &format!("reconciled for the request {value:?}"),
            |s| {
                s.status
                    .as_ref()
                    .and_then(|st| st.last_handled_reconcile_at.as_deref())
                    == Some(value)
            },
        )
        .await;
    }

    /// Applies sender `name` for `phone` (auto-verified) while every create fails, waits for a
    /// failed reconcile to show (`Synced=False`), then lets the creates through: what the
    /// reconcile-error metrics and panels need to have a sample.
    pub async fn apply_after_failed_creates(&self, name: &str, phone: &str) {
        self.sim
            .faults(json!({"error_rate": 1.0, "only": "POST /v2/Channels/Senders"}))
            .await;
        self.sim.number(phone, "auto_verify").await;
        self.apply(name, spec(phone, json!({}))).await;
        self.wait_for(name, "Synced=False after failed creates", |s| {
            condition(s, "Synced").is_some_and(|c| c.status == "False")
        })
        .await;
        self.sim.faults(json!({})).await;
    }

    /// Polls `name` until `done` holds, or panics after [`DEADLINE`] with what it last saw.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&WhatsAppSender) -> bool,
    ) -> WhatsAppSender {
        self.wait_for_within(name, what, DEADLINE, done).await
    }

    pub async fn wait_for_within(
        &self,
        name: &str,
        what: &str,
        deadline: Duration,
        done: impl Fn(&WhatsAppSender) -> bool,
    ) -> WhatsAppSender {
        Wait::until(format!("{}/{name} to become {what}", self.ns))
            .within(deadline)
            .context(|| format!("operator log:\n{}", self.operator.log_tail(40)))
            .poll_ok(async || match self.get(name).await {
                Some(sender) if done(&sender) => Ok(sender),
                Some(sender) => Err(format!(
                    "status {}",
                    serde_json::to_string_pretty(&sender.status).unwrap()
                )),
                None => Err("(object gone)".to_string()),
            })
            .await
    }

    /// Waits until `name` has condition `type_` with `status` and `reason`.
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> WhatsAppSender {
        self.wait_for(name, &format!("{type_}={status} ({reason})"), |s| {
            condition(s, type_).is_some_and(|c| c.status == status && c.reason == reason)
        })
        .await
    }

    pub async fn wait_ready(&self, name: &str) -> WhatsAppSender {
        self.wait_condition(name, "Ready", "True", "Online").await
    }

    pub async fn wait_gone(&self, name: &str) {
        Wait::until(format!("{}/{name} to be released", self.ns))
            .within(DEADLINE)
            .context(|| format!("operator log:\n{}", self.operator.log_tail(40)))
            .poll_ok(async || match self.get(name).await {
                None => Ok(()),
                Some(sender) => Err(format!("status {:?}", sender.status)),
            })
            .await
    }

    /// The Events about `name`, oldest first, as (type, reason, note).
    pub async fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
            .into_iter()
            .filter(|e| {
                e.regarding
                    .as_ref()
                    .is_some_and(|r| r.name.as_deref() == Some(name))
            })
            .collect();
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
            .into_iter()
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits for an Event with `reason` about `name` and returns its note.
    pub async fn wait_event(&self, name: &str, reason: &str) -> String {
        Wait::until(format!("a {reason} Event for {}/{name}", self.ns))
            .within(DEADLINE)
            .context(|| format!("operator log:\n{}", self.operator.log_tail(40)))
            .poll_ok(async || {
                let events = self.events(name).await;
                match events.iter().find(|(_, r, _)| r == reason) {
                    Some((_, _, note)) => Ok(note.clone()),
                    None => Err(format!("Events {events:#?}")),
                }
            })
            .await
    }

    /// Waits until the simulator has a sender for `phone`: the create arrived (its answer may
    /// still be held).
    pub async fn wait_create_at_twilio(&self, phone: &str) {
        Wait::until(format!("the create for {phone} to arrive at Twilio"))
            .within(DEADLINE)
            .every(Duration::from_millis(20))
            .context(|| format!("operator log:\n{}", self.operator.log_tail(30)))
            .poll(
                async || self.sim_senders_for(phone).await,
                |senders| !senders.is_empty(),
            )
            .await;
    }

    /// The simulator's senders for `phone` (any account).
    pub async fn sim_senders_for(&self, phone: &str) -> Vec<Value> {
        let sender_id = format!("whatsapp:{phone}");
        self.sim
            .all_senders()
            .await
            .into_iter()
            .filter(|s| s["sender_id"] == sender_id)
            .collect()
    }

    /// The one simulator sender for `phone`, asserting there is exactly one.
    pub async fn sim_sender(&self, phone: &str) -> Value {
        let mut senders = self.sim_senders_for(phone).await;
        assert_eq!(senders.len(), 1, "senders for {phone}: {senders:#?}");
        senders.remove(0)
    }
}

/// `status.sid`, asserting it is set.
pub fn sid_of(sender: &WhatsAppSender) -> String {
    sender
        .status
        .as_ref()
        .and_then(|s| s.sid.clone())
        .expect("status.sid is set")
}

/// Registers `phone` at Twilio directly, as someone would by hand, with display name `name`.
pub async fn register_by_hand(client: &TwilioClient, phone: &str, name: &str) -> Sender {
    client
        .create(&CreateSenderRequest {
            sender_id: sender_id_for(phone),
            profile: Some(Profile {
                name: FieldUpdate::Set(name.into()),
                ..Profile::default()
            }),
            ..CreateSenderRequest::default()
        })
        .await
        .unwrap_or_else(|e| panic!("register {phone} by hand: {e}"))
}

/// Condition `type_` of a sender.
pub fn condition(sender: &WhatsAppSender, type_: &str) -> Option<Condition> {
    sender
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// A spec for `phone` with credentials Secret `twilio` and display name `Acme`, plus `extra`
/// merged in.
pub fn spec(phone: &str, extra: Value) -> Value {
    let mut spec = json!({
        "phoneNumber": phone,
        "credentialsRef": {"name": "twilio"},
        "profile": {"name": "Acme"},
    });
    merge(&mut spec, extra);
    spec
}

/// [`spec`] for a number that needs a code, read from Secret `secret` key `code`.
pub fn spec_with_code(phone: &str, secret: &str) -> Value {
    spec(
        phone,
        json!({"verification": {"codeSecretRef": {"name": secret, "key": "code"}}}),
    )
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, extra) => *base = extra,
    }
}

/// Creates Secret `twilio` in `ns` with account A's credentials, as every fixture's namespace
/// has.
pub async fn create_credentials(client: &kube::Client, ns: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "twilio"},
        "stringData": {"accountSid": ACCOUNT_A, "authToken": TOKEN_A},
    }))
    .expect("a Secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("create Secret {ns}/twilio: {e}"));
}
