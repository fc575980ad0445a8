//! The alerts evaluated by Prometheus itself: promtool (built from the Prometheus Go module by
//! `make promtool`) checks the rules of deploy/monitoring/prometheusrule.yaml, the file users
//! apply; runs each alert's unit tests (tests/alerts/: when it fires, with which labels and text,
//! and that standbys, leader handovers, recovered senders and healthy shards do not fire it); and
//! evaluates the alerts and every query of the Grafana dashboard against a real scrape of the
//! operator running senders through their lifecycle. tests/it/monitoring.rs reads the same files
//! without Prometheus, against the metric names a running operator exports.
//!
//! Each test writes its promtool files to target/alert-rules/NAME/ and leaves them there, so a
//! failure can be rerun by hand (`target/tools/promtool test rules FILE` in that directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::built;
use crate::support::controlplane::{self, repo_root};
use crate::support::deploy::parse_yaml;
use crate::support::metrics::{family_type, parse_exposition, scrape, sum};
use crate::support::operator::{Fixture, Operator, sid_of, spec, spec_with_code};
use crate::support::sim::{ACCOUNT_A, Sim};
use crate::support::wait::Wait;

const RULES: &str = "deploy/monitoring/prometheusrule.yaml";
const DASHBOARD: &str = "deploy/monitoring/senderops-dashboard.json";
const UNIT_TESTS_DIR: &str = "tests/alerts";
/// The PrometheusRule's `spec` as the plain rule file promtool reads, written next to the test
/// files, which name it in `rule_files`.
const RULE_FILE: &str = "senderops.rules.yaml";

/// Every alert the rules define, and the file of its promtool unit tests under tests/alerts/.
const UNIT_TESTS: &[(&str, &str)] = &[
    ("SenderOpsSenderOffline", "sender-offline.test.yaml"),
    ("SenderOpsQualityLow", "quality-low.test.yaml"),
    ("SenderOpsSendersStalled", "senders-stalled.test.yaml"),
    (
        "SenderOpsTwilioErrorRateHigh",
        "twilio-error-rate-high.test.yaml",
    ),
    ("SenderOpsTwilioErrorLog", "twilio-error-log.test.yaml"),
    ("SenderOpsNoLeader", "no-leader.test.yaml"),
];

/// Scrapes and rule evaluations are this far apart: the ServiceMonitor's interval, and
/// kube-prometheus-stack's evaluation interval.
const INTERVAL: &str = "30s";
/// How many more samples each scraped series gets after its first: 35 minutes of them, past the
/// longest `for:` (SenderOpsSendersStalled's 30m).
const SAMPLES: u32 = 70;
/// When the real scrape's alerts and queries are evaluated: every `for:` has passed.
const EVAL_TIME: &str = "31m";
/// `$__rate_interval` in the dashboard's queries: four scrape intervals, as Grafana computes it.
const RATE_INTERVAL: &str = "2m";

/// The ServiceMonitor's scrape: the Service and port it selects (deploy/base/service.yaml), and
/// the operator's container (deploy/operator/deployment.yaml).
const JOB: &str = "senderops-metrics";
const ENDPOINT: &str = "metrics";
const CONTAINER: &str = "senderops";
/// Where the operator runs (the target's `namespace`, for series without one of their own).
const INSTALL_NAMESPACE: &str = "senderops";

/// `target/tools/promtool`, or a failure that says how to build it.
fn promtool() -> PathBuf {
    built(
        "target/tools/promtool",
        "promtool",
        "builds it from the Prometheus Go module",
    )
}

/// An empty directory for one test's promtool files, target/alert-rules/NAME, left in place
/// after the run.
fn work_dir(name: &str) -> PathBuf {
    let dir = repo_root().join("target/alert-rules").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("empty {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The `spec` of the PrometheusRule users apply: its rule groups, which is what a plain
/// Prometheus rule file holds.
fn rule_spec() -> Value {
    let text = std::fs::read_to_string(repo_root().join(RULES))
        .unwrap_or_else(|e| panic!("read {RULES}: {e}"));
    let objects = parse_yaml(&text);
    assert_eq!(objects.len(), 1, "{RULES} holds one object");
    assert_eq!(objects[0]["kind"], "PrometheusRule", "{RULES}");
    let spec = objects[0]["spec"].clone();
    assert!(spec["groups"].is_array(), "{RULES} has spec.groups");
    spec
}

/// Every rule of every group.
fn rules(spec: &Value) -> Vec<&Value> {
    spec["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .collect()
}

fn alert_rule<'a>(spec: &'a Value, alert: &str) -> &'a Value {
    rules(spec)
        .into_iter()
        .find(|r| r["alert"] == alert)
        .unwrap_or_else(|| panic!("{RULES} has no alert {alert}"))
}

fn to_yaml(value: &Value) -> String {
    serde_norway::to_string(value).expect("JSON values are YAML")
}

/// Writes the rules to `dir`/[`RULE_FILE`].
fn write_rules(dir: &Path, spec: &Value) {
    std::fs::write(dir.join(RULE_FILE), to_yaml(spec)).expect("write the rule file");
}

/// Runs promtool with `args` in `dir`: its output, `Ok` if it exited 0.
fn run_promtool(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn assert_promtool(dir: &Path, args: &[&str]) -> String {
    run_promtool(dir, args).unwrap_or_else(|output| {
        panic!(
            "promtool {} failed in {}:\n{output}",
            args.join(" "),
            dir.display()
        )
    })
}

/// Runs `alert`'s unit tests (tests/alerts/) against the rules users apply.
fn run_unit_tests(alert: &str) {
    let (_, file) = UNIT_TESTS
        .iter()
        .find(|(a, _)| *a == alert)
        .unwrap_or_else(|| panic!("{alert} is not in UNIT_TESTS"));
    let dir = work_dir(alert);
    write_rules(&dir, &rule_spec());
    let fixture = repo_root().join(UNIT_TESTS_DIR).join(file);
    std::fs::copy(&fixture, dir.join(file))
        .unwrap_or_else(|e| panic!("copy {}: {e}", fixture.display()));
    let output = assert_promtool(&dir, &["test", "rules", file]);
    assert!(output.contains("SUCCESS"), "{output}");
}

#[test]
fn promtool_accepts_the_rules_users_apply() {
    let spec = rule_spec();
    let dir = work_dir("check");
    write_rules(&dir, &spec);
    let output = assert_promtool(&dir, &["check", "rules", RULE_FILE]);
    let count = rules(&spec).len();
    assert!(
        output.contains(&format!("SUCCESS: {count} rules found")),
        "{output}"
    );
}

#[test]
fn every_alert_has_unit_tests_of_its_own_that_fire_it_and_keep_it_quiet() {
    let spec = rule_spec();
    let alerts: Vec<&str> = rules(&spec)
        .iter()
        .map(|r| r["alert"].as_str().expect("every rule is an alert"))
        .collect();
    let tested: Vec<&str> = UNIT_TESTS.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        alerts, tested,
        "the alerts of {RULES}, and their unit tests"
    );
    for (alert, file) in UNIT_TESTS {
        let text = std::fs::read_to_string(repo_root().join(UNIT_TESTS_DIR).join(file))
            .unwrap_or_else(|e| panic!("read {UNIT_TESTS_DIR}/{file}: {e}"));
        let tests = &parse_yaml(&text)[0];
        assert_eq!(tests["rule_files"], json!([RULE_FILE]), "{file}");
        let checks: Vec<&Value> = tests["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("{file} has tests"))
            .iter()
            .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
            .collect();
        assert!(
            checks.iter().all(|c| c["alertname"] == *alert),
            "{file} checks {alert} alone"
        );
        let firing = checks
            .iter()
            .filter(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
            .count();
        assert!(
            firing >= 2 && checks.len() > firing,
            "{file}: {firing} checks that {alert} fires, {} that it does not",
            checks.len() - firing
        );
    }
}

#[test]
fn sender_offline_fires_after_15_minutes_for_the_leaders_view_of_each_namespace() {
    run_unit_tests("SenderOpsSenderOffline");
}

#[test]
fn quality_low_fires_after_5_minutes_for_the_leaders_view_of_each_namespace() {
    run_unit_tests("SenderOpsQualityLow");
}

#[test]
fn senders_stalled_fires_after_30_minutes_for_the_leaders_view_of_each_namespace() {
    run_unit_tests("SenderOpsSendersStalled");
}

#[test]
fn twilio_error_rate_high_fires_after_10_minutes_for_the_replica_whose_requests_fail() {
    run_unit_tests("SenderOpsTwilioErrorRateHigh");
}

#[test]
fn twilio_error_log_fires_for_each_new_entry_from_the_first_one_on() {
    run_unit_tests("SenderOpsTwilioErrorLog");
}

#[test]
fn no_leader_fires_after_5_minutes_for_the_leaderless_shard_only() {
    run_unit_tests("SenderOpsNoLeader");
}

/// A series as promtool's `input_series` writes it: `name{label="value", …}`.
fn series_name(name: &str, labels: &[(String, String)]) -> String {
    let escape = |v: &str| {
        v.replace('\\', r"\\")
            .replace('"', r#"\""#)
            .replace('\n', r"\n")
    };
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{name}{{{}}}", labels.join(", "))
}

/// One replica of the operator as the ServiceMonitor's scrape sees it.
struct Target {
    pod: &'static str,
    pod_ip: &'static str,
    page: String,
}

impl Target {
    /// What the Prometheus Operator's scrape adds to each series, unless the series has that label
    /// itself (honorLabels: true): its own `namespace`, the sender's, wins.
    fn labels(&self) -> [(&'static str, String); 7] {
        [
            ("job", JOB.to_string()),
            ("instance", format!("{}:8080", self.pod_ip)),
            ("namespace", INSTALL_NAMESPACE.to_string()),
            ("pod", self.pod.to_string()),
            ("service", JOB.to_string()),
            ("endpoint", ENDPOINT.to_string()),
            ("container", CONTAINER.to_string()),
        ]
    }
}

/// Every sample of every target as promtool input: gauges hold their scraped value for
/// [`SAMPLES`] scrapes; counters and histograms climb from 0 to it, so their rates are the
/// scraped totals spread over the run.
fn input_series(targets: &[Target]) -> Vec<Value> {
    let mut series = Vec::new();
    for target in targets {
        let (types, samples) = parse_exposition(&target.page);
        for sample in samples {
            let values = match family_type(&types, &sample.name) {
                "counter" | "histogram" => {
                    format!("0+{}x{SAMPLES}", sample.value / f64::from(SAMPLES))
                }
                _ => format!("{}x{SAMPLES}", sample.value),
            };
            let mut labels = sample.labels.clone();
            for (key, value) in target.labels() {
                if !labels.iter().any(|(k, _)| k == key) {
                    labels.push((key.to_string(), value));
                }
            }
            series.push(json!({"series": series_name(&sample.name, &labels), "values": values}));
        }
    }
    series
}

/// `template` with `{{ $value }}` and `{{ $labels.NAME }}` filled in, as Prometheus renders
/// the annotations this test checks (it refuses templates that use anything else).
fn render(template: &str, value: f64, labels: &BTreeMap<String, String>) -> String {
    let mut text = template.replace("{{ $value }}", &value.to_string());
    for (key, label) in labels {
        text = text.replace(&format!("{{{{ $labels.{key} }}}}"), label);
    }
    assert!(
        !text.contains("{{"),
        "this test renders only {{{{ $value }}}} and {{{{ $labels.NAME }}}}: {template}"
    );
    text
}

/// promtool's `alert_rule_test`: `alert` at [`EVAL_TIME`] fires once per `(labels, value)`,
/// with the rule's labels and its annotations rendered for them.
fn expect_alerts(spec: &Value, alert: &str, fired: &[(BTreeMap<String, String>, f64)]) -> Value {
    let rule = alert_rule(spec, alert);
    let exp_alerts: Vec<Value> = fired
        .iter()
        .map(|(labels, value)| {
            let mut exp_labels = rule["labels"].clone();
            for (key, label) in labels {
                exp_labels[key] = json!(label);
            }
            let annotations: serde_json::Map<String, Value> = rule["annotations"]
                .as_object()
                .expect("annotations")
                .iter()
                .map(|(key, template)| {
                    let template = template.as_str().expect("an annotation is text");
                    (key.clone(), json!(render(template, *value, labels)))
                })
                .collect();
            json!({"exp_labels": exp_labels, "exp_annotations": annotations})
        })
        .collect();
    json!({"eval_time": EVAL_TIME, "alertname": alert, "exp_alerts": exp_alerts})
}

/// promtool's `promql_expr_test`: `alert`'s own expression at [`EVAL_TIME`] gives one sample per
/// namespace of `by_namespace`, with its count.
fn expect_alert_values(spec: &Value, alert: &str, by_namespace: &BTreeMap<String, f64>) -> Value {
    let expr = alert_rule(spec, alert)["expr"].as_str().expect("an expr");
    let samples: Vec<Value> = by_namespace
        .iter()
        .map(|(ns, count)| json!({"labels": format!("{{namespace=\"{ns}\"}}"), "value": count}))
        .collect();
    json!({"expr": expr, "eval_time": EVAL_TIME, "exp_samples": samples})
}

/// Every query of the dashboard (panel targets, rows' panels included) with its variables set:
/// `$namespace` to `namespaces` (a regex, as Grafana's multi-value variable sends it) and
/// `$__rate_interval` to [`RATE_INTERVAL`]. Panics on a variable it does not know.
fn dashboard_queries(namespaces: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join(DASHBOARD))
        .unwrap_or_else(|e| panic!("read {DASHBOARD}: {e}"));
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut panels: Vec<&Value> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let variables = [
        ("${namespace}", namespaces),
        ("$namespace", namespaces),
        ("${__rate_interval}", RATE_INTERVAL),
        ("$__rate_interval", RATE_INTERVAL),
    ];
    let mut queries = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let mut query = expr.to_string();
            for (variable, value) in variables {
                query = query.replace(variable, value);
            }
            // `$1` in a label_replace is PromQL's own; `$name` and `${name}` are Grafana's.
            let unknown = query.match_indices('$').find(|(i, _)| {
                query[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|c| c == '{' || c == '_' || c.is_ascii_alphabetic())
            });
            assert!(
                unknown.is_none(),
                "panel {}: a dashboard variable this test does not set: {expr}",
                panel["title"]
            );
            queries.push((panel["title"].as_str().unwrap_or("").to_string(), query));
        }
    }
    assert!(queries.len() >= 10, "{queries:#?}");
    queries
}

/// What the test's own senders make the alerts say, by namespace.
#[derive(Default)]
struct Expected {
    offline: BTreeMap<String, f64>,
    stalled: BTreeMap<String, f64>,
}

impl Expected {
    fn offline(&mut self, ns: &str) {
        *self.offline.entry(ns.to_string()).or_default() += 1.0;
    }

    fn stalled(&mut self, ns: &str) {
        *self.stalled.entry(ns.to_string()).or_default() += 1.0;
    }

    fn alerts(counts: &BTreeMap<String, f64>) -> Vec<(BTreeMap<String, String>, f64)> {
        counts
            .iter()
            .map(|(ns, count)| {
                (
                    BTreeMap::from([("namespace".to_string(), ns.clone())]),
                    *count,
                )
            })
            .collect()
    }
}

/// `exp_samples` of one sample per namespace, of value 1.
fn namespace_samples(namespaces: &[&str]) -> Vec<Value> {
    namespaces
        .iter()
        .map(|ns| json!({"labels": format!("{{namespace=\"{ns}\"}}"), "value": 1}))
        .collect()
}

/// The senders share a display name, and the OFFLINE one may be the first of its shard to
/// register: the display-name check would then hold the others until it is ONLINE, which it
/// never is. Which sender registers first is not what this test is about.
const NO_DISPLAY_NAME_CHECK: &str = "--display-name-check=false";

/// The flags of a replica of a Deployment with leader election, its Lease in `ns`.
fn replica_args(ns: &str) -> Vec<String> {
    [
        "--leader-election",
        "--lease-namespace",
        ns,
        "--lease-duration",
        "3s",
        NO_DISPLAY_NAME_CHECK,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn a_real_scrape_fires_the_offline_and_stalled_alerts_and_answers_every_dashboard_query() {
    promtool();
    let plane = controlplane::shared();
    let mut expected = Expected::default();

    // Shard a: two replicas with leader election. A number Twilio verifies itself, one that
    // needs a code, and one that reads OFFLINE (without a reason: not stalled) for as long as
    // the test runs.
    let ns_a = plane.namespace("promscrape-a").await;
    let sim_a = Sim::start_with(|config| config.offline_steps = 1_000_000).await;
    let args = replica_args(&ns_a);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Fixture::with_sim_in(&ns_a, sim_a, &args).await;
    let a_standby = Operator::start(&ns_a, &a.sim.base_url(), &args);
    a.sim.number("+15005550701", "auto_verify").await;
    a.apply("auto", spec("+15005550701", json!({}))).await;
    a.sim.number("+15005550702", "needs_code").await;
    a.apply("coded", spec_with_code("+15005550702", "coded-otp"))
        .await;
    a.sim
        .number("+15005550703", "offline_after_registration")
        .await;
    a.apply("offline", spec("+15005550703", json!({}))).await;
    expected.offline(&ns_a);

    // Shard b: one replica. Create requests fail until its first reconcile has failed (the
    // reconcile errors panel needs one); then a code Twilio rejects and a token it refuses
    // stall two senders.
    let b = Fixture::with_args("promscrape-b", &[NO_DISPLAY_NAME_CHECK]).await;
    let ns_b = b.ns.clone();
    b.apply_after_failed_creates("flaky", "+15005550711").await;
    b.sim.number("+15005550712", "needs_code").await;
    b.apply("rejected", spec_with_code("+15005550712", "rejected-otp"))
        .await;
    b.secret(
        "wrong-token",
        &[("accountSid", ACCOUNT_A), ("authToken", "not-the-token")],
    )
    .await;
    b.sim.number("+15005550713", "auto_verify").await;
    b.apply(
        "badcreds",
        spec(
            "+15005550713",
            json!({"credentialsRef": {"name": "wrong-token"}}),
        ),
    )
    .await;

    let waiting = a
        .wait_condition("coded", "Ready", "False", "WaitingForCode")
        .await;
    let code = a.sim.otp(&sid_of(&waiting)).await.expect("a code was sent");
    a.secret("coded-otp", &[("code", &code)]).await;
    let waiting = b
        .wait_condition("rejected", "Ready", "False", "WaitingForCode")
        .await;
    let code = b.sim.otp(&sid_of(&waiting)).await.expect("a code was sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    b.secret("rejected-otp", &[("code", wrong)]).await;

    a.wait_ready("auto").await;
    a.wait_ready("coded").await;
    a.wait_for("offline", "OFFLINE", |s| {
        s.status
            .as_ref()
            .is_some_and(|s| s.twilio_status.as_deref() == Some("OFFLINE"))
    })
    .await;
    b.wait_ready("flaky").await;
    b.wait_condition("rejected", "Stalled", "True", "CodeRejected")
        .await;
    expected.stalled(&ns_b);
    b.wait_condition("badcreds", "Stalled", "True", "InvalidCredentials")
        .await;
    expected.stalled(&ns_b);

    // The operators' caches follow the API within moments; wait for the scrape to say what the
    // senders do, but leave the verdict to promtool (a renamed metric fails there, not here).
    let replicas = [&a.operator, &a_standby, &b.operator];
    let _ = Wait::until("the scrapes to show one leader per shard and the senders' states")
        .within(Duration::from_secs(15))
        .every(Duration::from_millis(200))
        .try_poll_ok(async || {
            let pages = [
                scrape(replicas[0]).await,
                scrape(replicas[1]).await,
                scrape(replicas[2]).await,
            ];
            let total = |name: &str, labels: &[(&str, &str)]| -> f64 {
                pages.iter().map(|p| sum(p, name, labels)).sum()
            };
            let leaders =
                sum(&pages[0], "senderops_leader", &[]) + sum(&pages[1], "senderops_leader", &[]);
            let offline = total(
                "senderops_senders",
                &[("namespace", &ns_a), ("twilio_status", "OFFLINE")],
            );
            let stalled = total("senderops_senders_stalled", &[("namespace", &ns_b)]);
            if leaders == 1.0
                && offline == expected.offline[&ns_a]
                && stalled == expected.stalled[&ns_b]
            {
                Ok(())
            } else {
                Err(format!(
                    "shard a leaders {leaders}, OFFLINE {offline}, stalled {stalled}"
                ))
            }
        })
        .await;
    let targets = [
        Target {
            pod: "senderops-shard-a-7c9f8d6b4-k2m5p",
            pod_ip: "10.42.1.21",
            page: scrape(&a.operator).await,
        },
        Target {
            pod: "senderops-shard-a-7c9f8d6b4-w8z3t",
            pod_ip: "10.42.1.22",
            page: scrape(&a_standby).await,
        },
        Target {
            pod: "senderops-shard-b-5b7d9f8c6-h3j6n",
            pod_ip: "10.42.2.31",
            page: scrape(&b.operator).await,
        },
    ];
    drop(a_standby);
    drop(a);
    drop(b);

    let spec = rule_spec();
    let series = input_series(&targets);
    let alert_tests = vec![
        expect_alerts(
            &spec,
            "SenderOpsSenderOffline",
            &Expected::alerts(&expected.offline),
        ),
        expect_alerts(
            &spec,
            "SenderOpsSendersStalled",
            &Expected::alerts(&expected.stalled),
        ),
        // No sender is rated LOW, and each shard has its leader.
        expect_alerts(&spec, "SenderOpsQualityLow", &[]),
        expect_alerts(&spec, "SenderOpsNoLeader", &[]),
    ];
    let mut expr_tests = vec![
        expect_alert_values(&spec, "SenderOpsSenderOffline", &expected.offline),
        expect_alert_values(&spec, "SenderOpsSendersStalled", &expected.stalled),
        // The dashboard's namespace variable, label_values(senderops_senders, namespace):
        // the senders' namespaces, not the operator's.
        json!({
            "expr": "group by (namespace) (senderops_senders)",
            "eval_time": EVAL_TIME,
            "exp_samples": namespace_samples(&[&ns_a, &ns_b]),
        }),
    ];
    // A query answers with at least one series (a NaN too: a ratio of zero rates, a quantile
    // of no observations) exactly when absent() of it answers nothing: promql_expr_test needs
    // exact samples, and this is the one exact answer every non-empty result shares. A query
    // that promtool cannot parse or evaluate fails the test too.
    let queries = dashboard_queries(&format!("{ns_a}|{ns_b}"));
    for (_, query) in &queries {
        expr_tests.push(json!({
            "expr": format!("absent({query})"),
            "eval_time": EVAL_TIME,
            "exp_samples": [],
        }));
    }
    let test_file = |series: &[Value]| {
        to_yaml(&json!({
            "rule_files": [RULE_FILE],
            "evaluation_interval": INTERVAL,
            "tests": [{
                "interval": INTERVAL,
                "input_series": series,
                "alert_rule_test": alert_tests,
                "promql_expr_test": expr_tests,
            }],
        }))
    };
    let dir = work_dir("real-scrape");
    write_rules(&dir, &spec);
    std::fs::write(dir.join("scrape.test.yaml"), test_file(&series)).expect("write the test");
    for target in &targets {
        std::fs::write(dir.join(format!("{}.metrics", target.pod)), &target.page)
            .expect("write the scrape");
    }
    let output = assert_promtool(&dir, &["test", "rules", "scrape.test.yaml"]);
    assert!(output.contains("SUCCESS"), "{output}");
    eprintln!(
        "promtool: {} series scraped from 3 replicas, {} dashboard queries answered",
        series.len(),
        queries.len()
    );

    // The same check fails on a scrape whose metric or label is renamed: it can fail.
    for (what, from, to, alert) in [
        (
            "label",
            "twilio_status=",
            "status=",
            "SenderOpsSenderOffline",
        ),
        (
            "metric",
            "senderops_senders_stalled{",
            "senderops_stalled_senders{",
            "SenderOpsSendersStalled",
        ),
    ] {
        let renamed: Vec<Value> = series
            .iter()
            .map(|s| {
                let name = s["series"].as_str().expect("a series").replace(from, to);
                json!({"series": name, "values": s["values"]})
            })
            .collect();
        let file = format!("renamed-{what}.test.yaml");
        std::fs::write(dir.join(&file), test_file(&renamed)).expect("write the test");
        match run_promtool(&dir, &["test", "rules", &file]) {
            Ok(output) => panic!("a renamed {what} ({from} to {to}) still passes:\n{output}"),
            Err(output) => assert!(
                output.contains(&format!("alertname: {alert}")),
                "a renamed {what} fails, but not on {alert}:\n{output}"
            ),
        }
    }
}
