//! The observability assets under deploy/monitoring/: the Grafana dashboard is importable JSON,
//! the alerts are well-formed PrometheusRules, and every PromQL expression in either names only
//! series a running `senderops run` exports, read from its own `/metrics` (a renamed metric
//! breaks this test, not a dashboard at 3 am).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::support::controlplane::repo_root;
use crate::support::deploy::{INSTALL_NAMESPACE, helm_template, kustomize, one_of, parse_yaml};
use crate::support::metrics::{exported_series, page_with_every_family};

const DASHBOARD: &str = "deploy/monitoring/senderops-dashboard.json";
const RULES: &str = "deploy/monitoring/prometheusrule.yaml";

/// PromQL functions and aggregations the assets may call.
const FUNCTIONS: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "increase",
    "histogram_quantile",
    "label_replace",
    "absent",
    "clamp_min",
    "vector",
];
/// Words of PromQL that are neither metrics nor functions.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset"];
/// Modifiers followed by a list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The alerts the operator's users are promised: name, `for`, severity.
const ALERTS: &[(&str, &str, &str)] = &[
    ("SenderOpsSenderOffline", "15m", "critical"),
    ("SenderOpsQualityLow", "5m", "warning"),
    ("SenderOpsSendersStalled", "30m", "warning"),
    ("SenderOpsTwilioErrorRateHigh", "10m", "warning"),
    ("SenderOpsTwilioErrorLog", "1m", "warning"),
    ("SenderOpsNoLeader", "5m", "critical"),
];

/// Panels the dashboard must have (by title).
const PANELS: &[&str] = &[
    "Reconciles by outcome",
    "Reconcile errors by reason",
    "Reconcile duration",
    "Twilio requests by operation and status",
    "Twilio latency p99",
    "Requests waiting for the budget",
    "Senders by Twilio status",
    "Senders by quality rating",
    "Stalled senders",
    "Leader",
];

/// The series a real operator exports (its `/metrics` with every family sampled), read once
/// for all the tests of this file. Its own runtime: the operator's simulator serves on the
/// runtime that started it, so that one must outlive the wait, not any one test.
fn exported() -> &'static BTreeSet<String> {
    static EXPORTED: OnceLock<BTreeSet<String>> = OnceLock::new();
    EXPORTED.get_or_init(|| {
        let page = tokio::runtime::Runtime::new()
            .expect("a runtime")
            .block_on(page_with_every_family());
        exported_series(&page)
    })
}

/// The series the assets may read: those the operator exports, and those the rules record.
fn allowed_series() -> BTreeSet<String> {
    let recorded = rules()
        .iter()
        .filter_map(|r| r["record"].as_str().map(str::to_string))
        .collect::<Vec<_>>();
    exported().iter().cloned().chain(recorded).collect()
}

/// The index just past the string literal that opens at `chars[i]`.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    let quote = chars[i];
    i += 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The index just past the `close` that ends the group opening at `chars[i]`, strings inside
/// it (label values such as `"a}"`) skipped whole.
fn skip_past(chars: &[char], mut i: usize, close: char) -> usize {
    i += 1;
    while i < chars.len() && chars[i] != close {
        i = if matches!(chars[i], '"' | '\'' | '`') {
            skip_string(chars, i)
        } else {
            i + 1
        };
    }
    i + 1
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The metric names a PromQL expression reads: identifiers outside strings, label matchers,
/// range selectors, label lists and Grafana variables that are neither functions nor keywords.
/// Panics on a function outside [`FUNCTIONS`], so a typo cannot pass as a metric.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_past(&chars, i, '}'),
            '[' => i = skip_past(&chars, i, ']'),
            '$' => {
                // Grafana variables: $name or ${name}.
                i += 1;
                if chars.get(i) == Some(&'{') {
                    i = skip_past(&chars, i, '}');
                } else {
                    while i < chars.len() && is_ident(chars[i]) {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let call = chars.get(next) == Some(&'(');
                if LABEL_LISTS.contains(&word.as_str()) {
                    if call {
                        i = skip_past(&chars, next, ')');
                    }
                } else if call {
                    assert!(
                        FUNCTIONS.contains(&word.as_str()),
                        "unknown PromQL function {word} in: {expr}"
                    );
                } else if !FUNCTIONS.contains(&word.as_str()) && !KEYWORDS.contains(&word.as_str())
                {
                    // (A function word not followed by `(` is an aggregation with its `by`
                    // first, `sum by (x) (…)`: not a metric.)
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Asserts `expr` reads at least one metric and only exported ones.
fn assert_uses_exported_metrics(context: &str, expr: &str) {
    let names = metric_names(expr);
    assert!(!names.is_empty(), "{context}: reads no metric: {expr}");
    let allowed = allowed_series();
    let unknown: Vec<&String> = names.difference(&allowed).collect();
    assert!(
        unknown.is_empty(),
        "{context}: {unknown:?} are not series senderops exports, in: {expr}\nit exports: \
         {allowed:?}"
    );
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_root().join(DASHBOARD))
        .unwrap_or_else(|e| panic!("read {DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel.clone());
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested.iter().cloned());
        }
    }
    all
}

fn rules() -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join(RULES))
        .unwrap_or_else(|e| panic!("read {RULES}: {e}"));
    let rule = parse_yaml(&text);
    assert_eq!(rule.len(), 1, "{RULES} holds one PrometheusRule");
    assert_eq!(rule[0]["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule[0]["kind"], "PrometheusRule");
    rule[0]["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

#[test]
fn the_metric_name_scanner_sees_metrics_and_nothing_else() {
    let expr = r#"histogram_quantile(0.99, sum by (le, operation) (rate(senderops_twilio_request_duration_seconds_bucket{namespace=~"$namespace", x="a{b}"}[$__rate_interval]))) / on (job) group_left () up or absent(foo_bar)"#;
    assert_eq!(
        metric_names(expr),
        [
            "foo_bar",
            "senderops_twilio_request_duration_seconds_bucket",
            "up"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    assert!(
        std::panic::catch_unwind(|| metric_names("sum(rat(senderops_leader[5m]))")).is_err(),
        "a misspelt function is caught"
    );
}

#[test]
fn the_dashboard_is_importable_grafana_json() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "senderops");
    assert!(dashboard["title"].is_string() && dashboard["schemaVersion"].is_number());
    assert!(
        dashboard["id"].is_null(),
        "no database id: Grafana assigns one on import, {}",
        dashboard["id"]
    );
    // The data source is a variable, so the dashboard imports into any Grafana as it is.
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let datasource = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    let panels = panels(&dashboard);
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let id = panel["id"].as_i64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        assert!(
            panel["gridPos"]["w"].is_number(),
            "{} has a place",
            panel["title"]
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"],
            json!({"type": "prometheus", "uid": "${datasource}"}),
            "{} queries the chosen data source",
            panel["title"]
        );
        assert!(
            !panel["targets"].as_array().expect("targets").is_empty(),
            "{} has queries",
            panel["title"]
        );
    }
    let titles: BTreeSet<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for title in PANELS {
        assert!(
            titles.contains(title),
            "a panel titled {title:?}; have {titles:?}"
        );
    }
}

#[test]
fn the_dashboard_queries_only_metrics_the_operator_exports() {
    let dashboard = dashboard();
    let mut queries = 0;
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL expr");
            assert_uses_exported_metrics(&format!("panel {}", panel["title"]), expr);
            queries += 1;
        }
    }
    assert!(queries >= PANELS.len(), "{queries} queries");
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            let query = variable["definition"].as_str().expect("a definition");
            let metric = query
                .strip_prefix("label_values(")
                .and_then(|q| q.split(',').next())
                .unwrap_or_else(|| panic!("variable {}: {query}", variable["name"]));
            assert_uses_exported_metrics(&format!("variable {}", variable["name"]), metric);
        }
    }
}

#[test]
fn every_rule_expression_queries_only_metrics_the_operator_exports() {
    for rule in rules() {
        let expr = rule["expr"].as_str().expect("an expr");
        let name = if rule["record"].is_string() {
            format!("recording rule {}", rule["record"])
        } else {
            format!("alert {}", rule["alert"])
        };
        assert_uses_exported_metrics(&name, expr);
    }
}

#[test]
fn every_alert_has_a_summary_a_description_and_a_severity() {
    for rule in rules() {
        let name = rule["alert"].as_str().expect("every rule is an alert");
        for annotation in ["summary", "description"] {
            let text = rule["annotations"][annotation].as_str().unwrap_or("");
            assert!(
                text.len() > 10,
                "{name} has a {annotation} annotation: {:?}",
                rule["annotations"]
            );
        }
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name} has a severity label: {:?}",
            rule["labels"]
        );
    }
}

#[test]
fn the_alerts_fire_on_the_documented_conditions() {
    let rules = rules();
    let found: Vec<(String, String, String)> = rules
        .iter()
        .map(|r| {
            (
                r["alert"].as_str().unwrap_or("").to_string(),
                r["for"].as_str().unwrap_or("").to_string(),
                r["labels"]["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = ALERTS
        .iter()
        .map(|(a, f, s)| (a.to_string(), f.to_string(), s.to_string()))
        .collect();
    assert_eq!(found, expected, "alerts (name, for, severity)");

    let expr = |name: &str| -> String {
        rules
            .iter()
            .find(|r| r["alert"] == name)
            .and_then(|r| r["expr"].as_str())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(expr("SenderOpsSenderOffline").contains(r#"twilio_status="OFFLINE""#));
    assert!(expr("SenderOpsQualityLow").contains(r#"quality_rating="LOW""#));
    let errors = expr("SenderOpsTwilioErrorRateHigh");
    assert!(
        errors.contains(r#"status_code=~"5..|timeout|connect|transport""#)
            && errors.ends_with("> 0.1"),
        "{errors}"
    );
    assert!(expr("SenderOpsNoLeader").contains("absent(senderops_leader)"));
    assert_eq!(
        expr("SenderOpsTwilioErrorLog"),
        "sum by (code) ( (senderops_twilio_alerts_total unless senderops_twilio_alerts_total \
         offset 15m) or increase(senderops_twilio_alerts_total[15m]) ) > 0"
    );
}

#[test]
fn the_monitoring_kustomization_ships_the_dashboard_for_grafanas_sidecar() {
    let objects = parse_yaml(&kustomize("deploy/monitoring"));
    one_of(&objects, "PrometheusRule");
    let config_map = one_of(&objects, "ConfigMap");
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value = serde_json::from_str(
        config_map["data"]["senderops-dashboard.json"]
            .as_str()
            .expect("the dashboard in the ConfigMap"),
    )
    .expect("valid JSON");
    assert_eq!(embedded, dashboard());
    for object in &objects {
        assert_eq!(object["metadata"]["namespace"], INSTALL_NAMESPACE);
    }
}

#[test]
fn the_service_monitor_matches_the_helm_charts() {
    let kustomized = parse_yaml(&kustomize("deploy/monitoring"));
    let helmed = parse_yaml(&helm_template(
        "senderops",
        INSTALL_NAMESPACE,
        &["serviceMonitor.enabled=true"],
        &[],
    ));
    let (k, h) = (
        one_of(&kustomized, "ServiceMonitor"),
        one_of(&helmed, "ServiceMonitor"),
    );
    assert_eq!(k["spec"]["endpoints"], h["spec"]["endpoints"]);
    assert_eq!(
        k["spec"]["namespaceSelector"],
        h["spec"]["namespaceSelector"]
    );
    // The kustomize one selects deploy/base's metrics Service.
    let service = one_of(&parse_yaml(&kustomize("deploy")), "Service").clone();
    for (key, value) in k["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "deploy/monitoring's ServiceMonitor selects Service senderops-metrics"
        );
    }
}
