//! Every default the README, `kubectl explain` and the examples promise, relied on exactly as
//! written there: manifests that leave a field out are applied with the real kubectl, the API
//! server fills in the default (`kubectl get -o yaml` shows it), and the operator acts on it;
//! and every flag default the README names is the one `senderops run --help` prints.

use std::collections::BTreeMap;
use std::process::Command;

use regex::Regex;
use serde_json::Value;

use crate::support::controlplane::repo_root;
use crate::support::operator::{Fixture, condition};

const PHONE: &str = "+15005550201";

/// Applies `yaml` in the fixture's namespace with kubectl and returns the object as the API
/// server stores it (`kubectl get -o json`).
fn apply_and_get(f: &Fixture, yaml: &str, name: &str) -> Value {
    f.plane
        .kubectl()
        .args(["apply", "-n", &f.ns, "-f", "-"])
        .stdin(yaml.to_string())
        .run()
        .expect_success("apply the manifest");
    let stored = f
        .plane
        .kubectl()
        .args(["get", "was", name, "-n", &f.ns, "-o", "json"])
        .run()
        .expect_success("read it back");
    serde_json::from_str(&stored.stdout).expect("kubectl prints JSON")
}

fn manifest(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: messaging.senderops.io/v1alpha1\nkind: WhatsAppSender\nmetadata: {{name: \
         {name}}}\nspec:\n  phoneNumber: \"{PHONE}\"\n  credentialsRef: {{name: twilio}}\n  \
         profile: {{name: Acme}}\n{spec}"
    )
}

#[tokio::test]
async fn a_code_secret_ref_without_a_key_reads_key_code() {
    let f = Fixture::new("default-key").await;
    f.sim.number(PHONE, "needs_code").await;
    // The README's words: the code comes from codeSecretRef, "key `code` by default".
    let yaml = manifest(
        "acme",
        "  verification: {codeSecretRef: {name: acme-otp}}\n",
    );
    let stored = apply_and_get(&f, &yaml, "acme");
    assert_eq!(
        stored["spec"]["verification"]["codeSecretRef"],
        serde_json::json!({"name": "acme-otp", "key": "code"}),
        "the API server fills in the default key"
    );

    let waiting = f
        .wait_condition("acme", "Ready", "False", "WaitingForCode")
        .await;
    let message = condition(&waiting, "Ready").unwrap().message;
    assert!(
        message.contains("create Secret acme-otp with the code under key \"code\""),
        "{message}"
    );
    let sid = f.sim_sender(PHONE).await["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let code = f.sim.otp(&sid).await.expect("the simulator sent a code");
    f.secret("acme-otp", &[("code", &code)]).await;
    let ready = f.wait_ready("acme").await;
    assert_eq!(
        ready.status.unwrap().twilio_status.as_deref(),
        Some("ONLINE")
    );
    assert_eq!(f.sim_sender(PHONE).await["wrong_codes"], 0);
}

#[tokio::test]
async fn the_verification_method_defaults_to_sms() {
    let f = Fixture::new("default-method").await;
    f.sim.number(PHONE, "needs_code").await;
    let yaml = manifest(
        "acme",
        "  verification: {codeSecretRef: {name: acme-otp, key: code}}\n",
    );
    let stored = apply_and_get(&f, &yaml, "acme");
    assert_eq!(stored["spec"]["verification"]["method"], "sms");
    f.wait_condition("acme", "Ready", "False", "WaitingForCode")
        .await;
    let sender = f.sim_sender(PHONE).await;
    assert_eq!(
        sender["configuration"]["verification_method"], "sms",
        "the create asked for an SMS: {sender}"
    );
}

#[tokio::test]
async fn the_deletion_policy_defaults_to_delete() {
    let f = Fixture::new("default-deletion").await;
    f.sim.number(PHONE, "auto_verify").await;
    let stored = apply_and_get(&f, &manifest("acme", ""), "acme");
    assert_eq!(stored["spec"]["deletionPolicy"], "Delete");
    f.wait_ready("acme").await;
    assert_eq!(f.sim_senders_for(PHONE).await.len(), 1);
    f.delete("acme").await;
    f.wait_gone("acme").await;
    assert!(
        f.sim_senders_for(PHONE).await.is_empty(),
        "deleting the object deleted the sender at Twilio"
    );
    let deleted = f.wait_event("acme", "Deleted").await;
    assert!(
        deleted.contains("two-step verification turned off in WhatsApp Manager"),
        "{deleted}"
    );
}

#[tokio::test]
async fn suspend_defaults_to_false() {
    let f = Fixture::new("default-suspend").await;
    f.sim.number(PHONE, "auto_verify").await;
    let stored = apply_and_get(&f, &manifest("acme", ""), "acme");
    assert_eq!(stored["spec"]["suspend"], false);
    let ready = f.wait_ready("acme").await;
    assert_eq!(condition(&ready, "Synced").unwrap().reason, "Applied");
}

/// The flags of the README's `senderops run [...]` block and its sentences that name a flag's
/// default (`--resync-interval` (5m), (`--twilio-requests-per-second`, 5)), by flag.
fn readme_flag_defaults() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let usage = readme
        .split("```sh\n")
        .find(|block| block.starts_with("senderops run ["))
        .expect("the README shows `senderops run [...]`")
        .split("```")
        .next()
        .unwrap();
    let mut defaults = BTreeMap::new();
    let bracket = Regex::new(r"\[(--[a-z-]+) ([^\]\s|]+)\]").unwrap();
    for found in bracket.captures_iter(usage) {
        let value = &found[2];
        // Placeholders (URL, NS, LABELS) name no default.
        if value
            .chars()
            .any(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            defaults.insert(found[1].to_string(), value.to_string());
        }
    }
    let prose =
        Regex::new(r"`(--[a-z-]+)` \(([0-9][^,)\s]*)|\(`(--[a-z-]+)`, ([0-9][^)\s]*)\)").unwrap();
    for found in prose.captures_iter(&readme) {
        let (flag, value) = match (found.get(1), found.get(2), found.get(3), found.get(4)) {
            (Some(flag), Some(value), _, _) | (_, _, Some(flag), Some(value)) => (flag, value),
            _ => continue,
        };
        let earlier = defaults.insert(flag.as_str().to_string(), value.as_str().to_string());
        if let Some(earlier) = earlier {
            assert_eq!(
                earlier,
                value.as_str(),
                "the README names two defaults for {}",
                flag.as_str()
            );
        }
    }
    defaults
}

/// `--flag` → its `[default: …]` in `senderops run --help`.
fn help_defaults() -> BTreeMap<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_senderops"))
        .args(["run", "--help"])
        .output()
        .expect("run senderops run --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let option = Regex::new(r"(?m)^\s+(?:-\w, )?(--[a-z-]+)").unwrap();
    let default = Regex::new(r"\[default: ([^\]]+)\]").unwrap();
    let starts: Vec<(usize, String)> = option
        .captures_iter(&help)
        .map(|c| (c.get(0).unwrap().start(), c[1].to_string()))
        .collect();
    let mut defaults = BTreeMap::new();
    for (i, (start, flag)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(help.len(), |(next, _)| *next);
        if let Some(found) = default.captures(&help[*start..end]) {
            defaults.insert(flag.clone(), found[1].to_string());
        }
    }
    defaults
}

#[test]
fn every_flag_default_the_readme_names_is_the_one_run_help_prints() {
    let readme = readme_flag_defaults();
    let help = help_defaults();
    for flag in [
        "--resync-interval",
        "--poll-interval",
        "--max-concurrent-reconciles",
        "--twilio-requests-per-second",
        "--serial-onboarding",
        "--batched-refresh",
        "--metrics-addr",
        "--lease-name",
        "--lease-duration",
        "--registration-interval",
        "--display-name-check",
        "--twilio-timeout",
        "--kube-timeout",
        "--reconcile-timeout",
        "--progress-deadline",
    ] {
        assert!(
            readme.contains_key(flag),
            "the README names no default for {flag}: {readme:?}"
        );
    }
    for (flag, value) in &readme {
        assert_eq!(
            help.get(flag),
            Some(value),
            "README: {flag} {value}; `senderops run --help`: {:?}",
            help.get(flag)
        );
    }
}
