//! checkov, the scanner a security review runs on Kubernetes manifests, on every rendering of the
//! install: `kubectl kustomize deploy/`, each overlay under deploy/overlays/, deploy/monitoring/,
//! and the chart rendered with `helm template … -n senderops` (defaults, every optional object
//! on, and two watched namespaces). A failed check passes only if deploy/README.md's "Security scan (checkov)" table
//! lists it, for that kind, with its reason; a listed check that no rendering fails any more is
//! a failure too. The table is read from the README, so the README and the scan cannot disagree.
//!
//! checkov is the project's own install (`make checkov`: a pinned version in a virtualenv under
//! target/tools); without it the tests fail and say so. It runs offline (`--skip-download`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support;
use crate::support::controlplane::repo_root;
use crate::support::deploy::{
    INSTALL_NAMESPACE, helm_template, kustomize, kustomize_cli, parse_yaml,
};

const README: &str = "deploy/README.md";
const SECTION: &str = "## Security scan (checkov)";
/// The checks an image pinned by digest passes, and the one reason those two are listed.
const IMAGE_CHECKS: &[&str] = &["CKV_K8S_43", "CKV_K8S_15"];
const IMAGE: &str = "ghcr.io/senderops/senderops";

fn checkov_binary() -> PathBuf {
    support::built(
        "target/tools/checkov/bin/checkov",
        "checkov",
        "installs checkov from PyPI into a virtualenv",
    )
}

/// A failed check of one object: (check id, the object's kind).
type Allowed = (String, String);

/// The README's allowlist: each row of the table in [`SECTION`] whose first cell is a check id,
/// as (check, kind) and the reason given.
fn allowlist() -> BTreeMap<Allowed, String> {
    let text = std::fs::read_to_string(repo_root().join(README))
        .unwrap_or_else(|e| panic!("read {README}: {e}"));
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim_end() != SECTION)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    assert!(!section.is_empty(), "{README} has a section {SECTION:?}");
    let mut allowed = BTreeMap::new();
    for row in section.iter().filter(|l| l.starts_with("| `CKV")) {
        let cells: Vec<&str> = row
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let [check, kind, reason] = cells.as_slice() else {
            panic!("{README}: a row of the allowlist is | `check` | kind | reason |, not {row}");
        };
        let check = check.trim_matches('`');
        assert!(
            check.starts_with("CKV")
                && check.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{README}: {check:?} is not a checkov check id"
        );
        assert!(
            !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphabetic()),
            "{README}: {check} names the kind it fails for, not {kind:?}"
        );
        assert!(
            reason.len() >= 40,
            "{README}: {check} on {kind} says why it stays, not {reason:?}"
        );
        let previous = allowed.insert((check.to_string(), kind.to_string()), reason.to_string());
        assert!(previous.is_none(), "{README} lists {check} on {kind} twice");
    }
    assert!(
        !allowed.is_empty(),
        "{README}'s {SECTION:?} has its table of allowed checks"
    );
    allowed
}

/// One failed check as checkov reports it.
#[derive(Debug)]
struct Failure {
    check: String,
    name: String,
    /// `Kind.namespace.name`.
    resource: String,
}

impl Failure {
    fn kind(&self) -> &str {
        self.resource.split('.').next().unwrap_or("")
    }

    fn allowed(&self) -> Allowed {
        (self.check.clone(), self.kind().to_string())
    }
}

/// checkov on `manifests` (a YAML stream): its failed checks. Panics unless it scanned every
/// object, parsed everything and passed some checks: a scan of nothing passes nothing.
fn scan(what: &str, manifests: &str) -> Vec<Failure> {
    let objects = parse_yaml(manifests);
    assert!(!objects.is_empty(), "{what} renders no object");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("manifests.yaml");
    std::fs::write(&file, manifests).expect("write the manifests");
    let output = Command::new(checkov_binary())
        .arg("-f")
        .arg(&file)
        .args([
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--quiet",
            "--skip-download",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run checkov");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "checkov on {what} exited {:?}:\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov on {what} printed no JSON report ({e}):\n{}{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(
        report["check_type"], "kubernetes",
        "checkov on {what} scanned nothing: {report}"
    );
    let summary = &report["summary"];
    assert_eq!(
        summary["parsing_errors"], 0,
        "checkov on {what} could not parse everything: {summary}"
    );
    let resources = summary["resource_count"].as_u64().unwrap_or(0);
    assert!(
        resources >= objects.len() as u64,
        "checkov on {what} scanned {resources} resources of {} objects: {summary}",
        objects.len()
    );
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 0,
        "checkov on {what} passed no check: {summary}"
    );
    let failures: Vec<Failure> = report["results"]["failed_checks"]
        .as_array()
        .unwrap_or_else(|| panic!("checkov on {what}: no failed_checks in {report}"))
        .iter()
        .map(|f| Failure {
            check: f["check_id"].as_str().expect("a check_id").to_string(),
            name: f["check_name"].as_str().unwrap_or("").to_string(),
            resource: f["resource"].as_str().expect("a resource").to_string(),
        })
        .collect();
    assert_eq!(
        summary["failed"].as_u64(),
        Some(failures.len() as u64),
        "checkov on {what}: {summary}"
    );
    assert_eq!(
        code == Some(1),
        !failures.is_empty(),
        "checkov on {what} exits 1 exactly when a check fails"
    );
    eprintln!(
        "checkov {} on {what}: {} passed, {} failed {:?}",
        summary["checkov_version"].as_str().unwrap_or("?"),
        summary["passed"],
        failures.len(),
        failures
            .iter()
            .map(|f| format!("{} {}", f.check, f.resource))
            .collect::<Vec<_>>()
    );
    failures
}

/// Every rendering a user installs: (what, its YAML).
fn renderings() -> Vec<(String, String)> {
    let mut renderings = vec![
        ("kubectl kustomize deploy/".to_string(), kustomize("deploy")),
        (
            "kubectl kustomize deploy/monitoring/".to_string(),
            kustomize("deploy/monitoring"),
        ),
    ];
    let overlays = repo_root().join("deploy/overlays");
    let mut dirs: Vec<String> = std::fs::read_dir(&overlays)
        .expect("read deploy/overlays")
        .filter_map(|e| {
            let path = e.ok()?.path();
            path.join("kustomization.yaml").is_file().then(|| {
                format!(
                    "deploy/overlays/{}",
                    path.file_name().unwrap().to_string_lossy()
                )
            })
        })
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no overlay under deploy/overlays");
    for dir in dirs {
        renderings.push((format!("kubectl kustomize {dir}/"), kustomize(&dir)));
    }
    renderings.push((
        "helm template senderops -n senderops (defaults)".to_string(),
        helm_template("senderops", INSTALL_NAMESPACE, &[], &[]),
    ));
    renderings.push((
        "helm template senderops -n senderops (serviceMonitor, watchNamespace)".to_string(),
        helm_template(
            "senderops",
            INSTALL_NAMESPACE,
            &[
                "serviceMonitor.enabled=true",
                "watchNamespace=acme",
                "selector=senderops.io/shard=a",
            ],
            &[],
        ),
    ));
    renderings.push((
        "helm template senderops -n senderops (watchNamespace={team-a,team-b})".to_string(),
        helm_template(
            "senderops",
            INSTALL_NAMESPACE,
            &["watchNamespace={team-a,team-b}"],
            &[],
        ),
    ));
    renderings
}

#[test]
fn every_rendering_fails_only_the_checks_deploy_readme_explains() {
    let allowed = allowlist();
    let mut unexplained = Vec::new();
    let mut failing = BTreeSet::new();
    for (what, manifests) in renderings() {
        for failure in scan(&what, &manifests) {
            if allowed.contains_key(&failure.allowed()) {
                failing.insert(failure.allowed());
            } else {
                unexplained.push(format!(
                    "{what}: {} ({}) on {}",
                    failure.check, failure.name, failure.resource
                ));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "checkov fails checks that {README}'s {SECTION:?} does not explain: fix the manifests, \
         or list each with its reason:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<&Allowed> = allowed.keys().filter(|a| !failing.contains(*a)).collect();
    assert!(
        stale.is_empty(),
        "{README} explains checks no rendering fails any more: remove them: {stale:?}"
    );
}

/// The image checks' way out, as the README gives it: an image pinned by digest, with Helm's
/// `image.digest` and with `kustomize edit set image NAME=NEW@DIGEST` in an overlay, passes both
/// image checks, which the same rendering by tag fails.
#[test]
fn an_image_pinned_by_digest_passes_the_image_checks() {
    let allowed = allowlist();
    for check in IMAGE_CHECKS {
        assert!(
            allowed.contains_key(&(check.to_string(), "Deployment".to_string())),
            "{README} explains {check} on Deployment"
        );
    }
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));

    // A kustomize overlay written as the README says, under target/ (kustomize loads relative
    // paths only).
    let parent = repo_root().join("target/checkov");
    std::fs::create_dir_all(&parent).expect("create target/checkov");
    let overlay = tempfile::Builder::new()
        .prefix("pinned-")
        .tempdir_in(&parent)
        .expect("a temporary overlay");
    let dir = overlay.path();
    kustomize_cli(
        dir,
        &[
            "create".into(),
            "--resources".into(),
            "../../../deploy".into(),
        ],
    );
    kustomize_cli(
        dir,
        &[
            "edit".into(),
            "set".into(),
            "image".into(),
            format!("{IMAGE}=registry.example.com/senderops@{digest}"),
        ],
    );
    let pinned_kustomize = kustomize_cli(dir, &["build".into(), ".".into()]);
    assert!(
        pinned_kustomize.contains(&format!("image: registry.example.com/senderops@{digest}")),
        "the overlay pins the image:\n{pinned_kustomize}"
    );

    let image_failures = |what: &str, manifests: &str| -> BTreeSet<String> {
        scan(what, manifests)
            .into_iter()
            .filter(|f| IMAGE_CHECKS.contains(&f.check.as_str()))
            .map(|f| f.check)
            .collect()
    };
    let all: BTreeSet<String> = IMAGE_CHECKS.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        image_failures("kubectl kustomize deploy/", &kustomize("deploy")),
        all,
        "by tag, the image checks fail"
    );
    assert_eq!(
        image_failures("an overlay of deploy/ pinned by digest", &pinned_kustomize),
        BTreeSet::new(),
        "pinned by digest, the image checks pass"
    );
    let digest_value = format!("image.digest={digest}");
    assert_eq!(
        image_failures(
            "helm template --set image.digest",
            &helm_template("senderops", INSTALL_NAMESPACE, &[&digest_value], &[]),
        ),
        BTreeSet::new(),
        "pinned by digest, the image checks pass"
    );
}
