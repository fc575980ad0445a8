//! Reading the operator's `/metrics` (Prometheus text) in tests.

use super::operator::Operator;

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
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}
