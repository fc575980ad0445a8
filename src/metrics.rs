//! Prometheus metrics and the HTTP endpoint that serves them with the health probes.
//!
//! - Reconciles: count by outcome, errors by kind, duration.
//! - Twilio: requests by operation and status code, latency, waits for the request budget;
//!   Error Log entries about managed senders by code.
//! - Senders: by namespace and Twilio status, by quality rating, stalled; read from the
//!   controller's cache at scrape time, so they are never stale and cost nothing between
//!   scrapes.
//! - `senderops_leader`: 1 on the replica that reconciles.
//! - `senderops_state_lock_*`: acquisitions of the controller's state lock, and the time spent
//!   waiting for it and holding it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::WhatsAppSender;
use crate::api::condition_type::STALLED;
use crate::health::Liveness;
use crate::twilio::RequestObserver;

/// Everything the operator measures. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Vec<(&'static str, &'static str)>, Counter>,
    reconcile_errors: Family<Vec<(&'static str, &'static str)>, Counter>,
    reconcile_duration: Family<Vec<(&'static str, &'static str)>, Histogram>,
    twilio_requests: Family<Vec<(&'static str, String)>, Counter>,
    twilio_duration: Family<Vec<(&'static str, &'static str)>, Histogram>,
    budget_wait: Histogram,
    twilio_alerts: Family<Vec<(&'static str, String)>, Counter>,
    leader: Gauge,
    senders: Arc<SendersCollector>,
    state_lock: StateLockCounters,
    ready: AtomicBool,
}

/// How the controller's one state lock holds up, measured in the real workload: acquisitions,
/// seconds spent waiting for it, seconds it was held (`make bench` reports the busy share).
#[derive(Clone, Debug, Default)]
pub struct StateLockCounters {
    pub acquired: Counter,
    pub waited: Counter<f64, AtomicU64>,
    pub held: Counter<f64, AtomicU64>,
}

/// 5 ms to about 80 s: a reconcile or a Twilio call is anywhere from a cache hit to a request
/// waiting out retries.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(latency_buckets),
            twilio_requests: Family::default(),
            twilio_duration: Family::new_with_constructor(latency_buckets),
            budget_wait: latency_buckets(),
            twilio_alerts: Family::default(),
            leader: Gauge::default(),
            senders: Arc::new(SendersCollector::default()),
            state_lock: StateLockCounters::default(),
            ready: AtomicBool::new(false),
        };
        metrics.register();
        metrics
    }

    /// Names and describes every metric in the registry, in the order the exposition lists them.
    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "senderops_reconciles",
            "Reconciles, by controller and outcome",
            self.reconciles.clone(),
        );
        registry.register(
            "senderops_reconcile_errors",
            "Failed reconciles, by controller and kind of failure",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "senderops_reconcile_duration_seconds",
            "Time one reconcile takes, by controller",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "senderops_twilio_requests",
            "Requests to Twilio's Senders API, by operation and HTTP status (or timeout, connect, transport)",
            self.twilio_requests.clone(),
        );
        registry.register(
            "senderops_twilio_request_duration_seconds",
            "Time one request to Twilio takes, by operation",
            self.twilio_duration.clone(),
        );
        registry.register(
            "senderops_twilio_budget_wait_seconds",
            "Time requests waited for their account's request budget (count: throttled requests)",
            self.budget_wait.clone(),
        );
        registry.register(
            "senderops_twilio_alerts",
            "Entries of Twilio's Error Log about managed senders, by error code (each counted once)",
            self.twilio_alerts.clone(),
        );
        registry.register(
            "senderops_leader",
            "1 on the replica that reconciles, 0 on a standby",
            self.leader.clone(),
        );
        registry.register_collector(Box::new(self.senders.clone()));
        registry.register(
            "senderops_state_lock_acquisitions",
            "Times the controller's state lock was taken",
            self.state_lock.acquired.clone(),
        );
        registry.register(
            "senderops_state_lock_wait_seconds",
            "Time spent waiting for the controller's state lock",
            self.state_lock.waited.clone(),
        );
        registry.register(
            "senderops_state_lock_held_seconds",
            "Time the controller's state lock was held",
            self.state_lock.held.clone(),
        );
    }

    /// The counters the controller's state records its lock in.
    pub fn state_lock(&self) -> StateLockCounters {
        self.state_lock.clone()
    }

    /// Records one reconcile of `controller` (its kind, as `--controllers` names it): its
    /// duration and, if it failed, the kind of failure.
    pub fn reconciled(
        &self,
        controller: &'static str,
        duration: Duration,
        error: Option<&'static str>,
    ) {
        let by_controller = vec![("controller", controller)];
        self.reconcile_duration
            .get_or_create(&by_controller)
            .observe(duration.as_secs_f64());
        let outcome = if error.is_some() { "error" } else { "success" };
        self.reconciles
            .get_or_create(&vec![("controller", controller), ("outcome", outcome)])
            .inc();
        if let Some(kind) = error {
            self.reconcile_errors
                .get_or_create(&vec![("controller", controller), ("reason", kind)])
                .inc();
        }
    }

    /// One Error Log entry about a managed sender, seen for the first time.
    pub fn twilio_alert(&self, code: &str) {
        self.twilio_alerts
            .get_or_create(&vec![("code", code.to_string())])
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// From now on, sender gauges are read from this cache.
    pub fn watch_senders(&self, store: Store<WhatsAppSender>) {
        let _ = self.senders.store.set(store);
    }

    /// Whether `/readyz` answers 200: from the first successful list of WhatsAppSenders, and not
    /// while the CRD is being deleted or gone.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl RequestObserver for Metrics {
    fn attempt(&self, operation: &'static str, outcome: &str, elapsed: Duration) {
        self.twilio_requests
            .get_or_create(&vec![
                ("operation", operation.to_string()),
                ("status_code", outcome.to_string()),
            ])
            .inc();
        self.twilio_duration
            .get_or_create(&vec![("operation", operation)])
            .observe(elapsed.as_secs_f64());
    }

    fn budget_wait(&self, waited: Duration) {
        self.budget_wait.observe(waited.as_secs_f64());
    }
}

/// Sender gauges, counted from the controller's cache on each scrape.
#[derive(Debug, Default)]
struct SendersCollector {
    store: OnceLock<Store<WhatsAppSender>>,
}

/// The label value for a status field that is not set yet.
const NONE: &str = "none";

impl Collector for SendersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let mut by_status: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut by_quality: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut stalled: BTreeMap<String, i64> = BTreeMap::new();
        for sender in store.state() {
            let namespace = sender.namespace().unwrap_or_default();
            let status = sender.status.as_ref();
            let word = |f: Option<&String>| f.cloned().unwrap_or_else(|| NONE.to_string());
            *by_status
                .entry((
                    namespace.clone(),
                    word(status.and_then(|s| s.twilio_status.as_ref())),
                ))
                .or_default() += 1;
            *by_quality
                .entry((
                    namespace.clone(),
                    word(status.and_then(|s| s.quality_rating.as_ref())),
                ))
                .or_default() += 1;
            let is_stalled = status.is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == STALLED && c.status == "True")
            });
            *stalled.entry(namespace).or_default() += i64::from(is_stalled);
        }
        encode_gauges(
            &mut encoder,
            "senderops_senders",
            "WhatsAppSenders by namespace and Twilio status",
            "twilio_status",
            by_status,
        )?;
        encode_gauges(
            &mut encoder,
            "senderops_senders_by_quality",
            "WhatsAppSenders by namespace and quality rating",
            "quality_rating",
            by_quality,
        )?;
        let mut family = encoder.encode_descriptor(
            "senderops_senders_stalled",
            "WhatsAppSenders whose Stalled condition is True (they need the user)",
            None,
            MetricType::Gauge,
        )?;
        for (namespace, count) in stalled {
            Gauge::<i64>::default()
                .tap_set(count)
                .encode(family.encode_family(&[("namespace", namespace)])?)?;
        }
        Ok(())
    }
}

fn encode_gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    counts: BTreeMap<(String, String), i64>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for ((namespace, value), count) in counts {
        let labels = [("namespace", namespace), (label, value)];
        Gauge::<i64>::default()
            .tap_set(count)
            .encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

trait TapSet {
    fn tap_set(self, value: i64) -> Self;
}

impl TapSet for Gauge<i64> {
    fn tap_set(self, value: i64) -> Self {
        self.set(value);
        self
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown` resolves. Returns
/// the bound address (port 0 picks a free one).
pub async fn serve(
    metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/readyz", get(readyz))
        .with_state(metrics)
        .merge(
            Router::new()
                .route("/healthz", get(healthz))
                .with_state(liveness),
        );
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "the metrics server stopped");
        }
    });
    Ok((bound, task))
}

async fn metrics_page(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

/// 503 with the reason when the process has stopped making progress (see [`Liveness`]).
async fn healthz(State(liveness): State<Arc<Liveness>>) -> impl IntoResponse {
    match liveness.check() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => {
            tracing::warn!(reason = %why, "failing the liveness probe");
            (StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_with_its_labels() {
        let metrics = Metrics::new();
        metrics.reconciled("whatsappsender", Duration::from_millis(30), None);
        metrics.reconciled(
            "whatsappsender",
            Duration::from_millis(30),
            Some("twilio_api"),
        );
        metrics.attempt("create", "202", Duration::from_millis(80));
        metrics.attempt("fetch", "timeout", Duration::from_secs(15));
        metrics.budget_wait(Duration::from_millis(200));
        metrics.set_leader(true);
        let text = metrics.render();
        for needle in [
            r#"senderops_reconciles_total{controller="whatsappsender",outcome="success"} 1"#,
            r#"senderops_reconciles_total{controller="whatsappsender",outcome="error"} 1"#,
            r#"senderops_reconcile_errors_total{controller="whatsappsender",reason="twilio_api"} 1"#,
            r#"senderops_reconcile_duration_seconds_count{controller="whatsappsender"} 2"#,
            r#"senderops_twilio_requests_total{operation="create",status_code="202"} 1"#,
            r#"senderops_twilio_requests_total{operation="fetch",status_code="timeout"} 1"#,
            r#"senderops_twilio_request_duration_seconds_count{operation="create"} 1"#,
            "senderops_twilio_budget_wait_seconds_count 1",
            "senderops_leader 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn sender_gauges_count_the_cache() {
        use kube::runtime::reflector::store;
        use kube::runtime::watcher::Event;
        use serde_json::json;

        let (reader, mut writer) = store::<WhatsAppSender>();
        let sender = |name: &str, ns: &str, status: serde_json::Value| -> WhatsAppSender {
            serde_json::from_value(json!({
                "apiVersion": "messaging.senderops.io/v1alpha1",
                "kind": "WhatsAppSender",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"phoneNumber": "+15005550001", "credentialsRef": {"name": "t"},
                         "profile": {"name": "A"}},
                "status": status,
            }))
            .unwrap()
        };
        let stalled = json!([{"type": "Stalled", "status": "True", "reason": "WabaFull",
            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        for s in [
            sender(
                "a",
                "team-a",
                json!({"twilioStatus": "ONLINE", "qualityRating": "HIGH"}),
            ),
            sender(
                "b",
                "team-a",
                json!({"twilioStatus": "ONLINE", "qualityRating": "LOW"}),
            ),
            sender("c", "team-b", json!({"conditions": stalled})),
        ] {
            writer.apply_watcher_event(&Event::Apply(s));
        }
        let metrics = Metrics::new();
        assert!(
            !metrics.render().contains("senderops_senders"),
            "no cache yet"
        );
        metrics.watch_senders(reader);
        let text = metrics.render();
        for needle in [
            r#"senderops_senders{namespace="team-a",twilio_status="ONLINE"} 2"#,
            r#"senderops_senders{namespace="team-b",twilio_status="none"} 1"#,
            r#"senderops_senders_by_quality{namespace="team-a",quality_rating="LOW"} 1"#,
            r#"senderops_senders_stalled{namespace="team-a"} 0"#,
            r#"senderops_senders_stalled{namespace="team-b"} 1"#,
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
