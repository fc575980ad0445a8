//! Reading the operator's `/metrics` (Prometheus text) in tests: one parser of the page, the
//! series names a scrape of it stores, and an operator driven until its page shows every
//! family it has.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::operator::{Fixture, Operator, spec};

/// The operator's `/metrics` page now.
pub async fn scrape(operator: &Operator) -> String {
    let url = format!("{}/metrics", operator.metrics_url().await);
    let response = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("scrape {url}: {e}"));
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.expect("a metrics page")
}

/// The sum of the samples of `name` whose labels include every `(label, value)` of `labels`.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse_exposition(text)
        .1
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(key, value)| key == k && value == v))
        })
        .map(|s| s.value)
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

/// One sample of a metrics page.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The samples of a Prometheus or OpenMetrics text page, and each family's type (`# TYPE`).
pub fn parse_exposition(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if let ["TYPE", family, kind] = words[..] {
                types.insert(family.to_string(), kind.to_string());
            }
            continue;
        }
        samples.push(parse_sample(line));
    }
    (types, samples)
}

/// `name{label="value",…} value [timestamp] [# exemplar]`.
fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("a sample line without a value: {line}"));
    let name = line[..name_end].to_string();
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inside) = rest.strip_prefix('{') {
        let mut chars = inside.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i);
                    break;
                }
                ',' | ' ' => continue,
                _ => {
                    let key_start = i;
                    let mut key_end = i;
                    for (j, c) in chars.by_ref() {
                        if c == '=' {
                            key_end = j;
                            break;
                        }
                    }
                    let key = inside[key_start..key_end].trim().to_string();
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    let mut value = String::new();
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(other) => value.push(other),
                                None => panic!("an unfinished escape: {line}"),
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((key, value));
                }
            }
        }
        let end = end.unwrap_or_else(|| panic!("unclosed labels: {line}"));
        rest = &inside[end + 1..];
    }
    let value = rest
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("a sample without a value: {line}"));
    Sample {
        name,
        labels,
        value: value
            .parse()
            .unwrap_or_else(|e| panic!("value {value:?} of {line}: {e}")),
    }
}

/// The type of the family a sample belongs to (`senderops_reconciles_total` is a sample of
/// counter `senderops_reconciles`, `…_bucket` of a histogram).
pub fn family_type<'a>(types: &'a BTreeMap<String, String>, sample: &str) -> &'a str {
    let family = ["_total", "_bucket", "_sum", "_count", "_created"]
        .iter()
        .filter_map(|suffix| sample.strip_suffix(suffix))
        .chain([sample])
        .find(|family| types.contains_key(*family));
    family.map_or("unknown", |f| types[f].as_str())
}

/// The series names a Prometheus scrape of `text` stores, which are the names PromQL reads:
/// a gauge's family name, a counter's with `_total`, a histogram's `_bucket`, `_sum` and
/// `_count`. Taken from the `# TYPE` lines, so a family declared without samples yet (the
/// sender gauges with no sender) counts too. Panics on a type it has no rule for, and on a
/// sample outside these series: then the rules here are wrong, and so would be the names.
pub fn exported_series(text: &str) -> BTreeSet<String> {
    let (types, samples) = parse_exposition(text);
    let mut series = BTreeSet::new();
    for (family, kind) in &types {
        let suffixes: &[&str] = match kind.as_str() {
            "gauge" => &[""],
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            other => panic!("family {family} is a {other}: which series does a scrape store?"),
        };
        series.extend(suffixes.iter().map(|s| format!("{family}{s}")));
    }
    for sample in &samples {
        assert!(
            series.contains(&sample.name),
            "sample {} is not among the series derived from the # TYPE lines {series:?}",
            sample.name
        );
    }
    series
}

/// The `/metrics` page of a real operator whose every metric family has been sampled.
///
/// A family with labels (reconciles by outcome, reconcile errors by reason, Twilio requests and
/// their latency by operation, Error Log entries by code) is printed only once it has a
/// sample: an idle operator's page lacks them. So one sender registers through create requests
/// that fail at first (a failed reconcile, then successful ones and Twilio requests), and one
/// stalls on an error only the account's Error Log reports (an alert counted). A family added
/// later that this does not reach is missing here: a dashboard or rule reading it then fails
/// the tests that use this page, never passes them unchecked.
pub async fn page_with_every_family() -> String {
    let f = Fixture::new("metric-families").await;
    f.apply_after_failed_creates("flaky", "+15005550801").await;
    // Ready before the next sender is applied: the display-name check holds a second sender
    // with the same name until the first is ONLINE.
    f.wait_ready("flaky").await;
    f.sim
        .number("+15005550802", "waba_full_stays_creating")
        .await;
    f.apply("waba-full", spec("+15005550802", json!({}))).await;
    // The alert is counted in the reconcile that writes this condition, before it is written.
    f.wait_condition("waba-full", "Stalled", "True", "WabaFull")
        .await;
    scrape(&f.operator).await
}
