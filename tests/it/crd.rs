//! The WhatsAppSender CRD, enforced by a real kube-apiserver: what it accepts, what it refuses
//! and with which message, and what kubectl shows.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use senderops::api::{DeletionPolicy, WhatsAppSender};
use serde_json::{Value, json};

use crate::support;
use crate::support::controlplane;
use crate::support::deploy::{kustomize, parse_yaml};
use crate::support::wait::Wait;

/// The kustomization in examples/ that stamps out many senders from one base.
const MANY_SENDERS: &str = "examples/many-senders";
const MANY_SENDERS_AT_LEAST: usize = 5;

/// Every spec field set.
fn full_manifest(name: &str) -> Value {
    json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": { "name": name },
        "spec": {
            "phoneNumber": "+15017122661",
            "credentialsRef": { "name": "twilio" },
            "wabaId": "12345678912345",
            "verification": {
                "method": "voice",
                "codeSecretRef": { "name": "otp", "key": "code" },
                "voiceApplicationSid": "AP0123456789abcdef0123456789abcdef"
            },
            "profile": {
                "name": "Acme Support",
                "about": "Help with your orders",
                "address": "101 Spear Street, San Francisco, CA",
                "description": "Acme builds tools.",
                "vertical": "Beauty, Spa and Salon",
                "logoUrl": "https://acme.example.com/logo.png",
                "bannerUrl": "https://acme.example.com/banner.png",
                "privacyUrl": "https://acme.example.com/privacy",
                "termsOfServiceUrl": "https://acme.example.com/terms",
                "accentColor": "#1A2B3C",
                "emails": ["support@acme.example.com", "sales@acme.example.com"],
                "websites": ["https://acme.example.com", "http://help.acme.example.com"]
            },
            "webhook": {
                "callbackUrl": "https://hooks.acme.example.com/in",
                "callbackMethod": "POST",
                "fallbackUrl": "https://fallback.acme.example.com/in",
                "fallbackMethod": "PUT",
                "statusCallbackUrl": "https://hooks.acme.example.com/status",
                "statusCallbackMethod": "POST"
            },
            "deletionPolicy": "Orphan",
            "suspend": true
        }
    })
}

fn minimal_manifest(name: &str) -> Value {
    json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": { "name": name },
        "spec": {
            "phoneNumber": "+447700900123",
            "credentialsRef": { "name": "twilio" },
            "profile": { "name": "Acme" }
        }
    })
}

fn apply(ns: &str, manifest: &Value) -> support::kubectl::KubectlOutput {
    controlplane::shared()
        .kubectl()
        .args(["apply", "-n", ns, "-f", "-"])
        .stdin(manifest.to_string())
        .run()
}

/// Sets `pointer` (a JSON pointer into the manifest) to `value`, or removes it when `None`.
fn with(mut manifest: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let parent = manifest
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"));
    match value {
        Some(v) => parent.insert(key.to_string(), v),
        None => parent.remove(key),
    };
    manifest
}

#[test]
fn checked_in_crd_matches_the_rust_types() {
    let checked_in =
        std::fs::read_to_string(controlplane::repo_root().join("crds/whatsappsender.yaml"))
            .expect("read crds/whatsappsender.yaml");
    assert!(
        checked_in == senderops::api::crd_yaml(),
        "crds/whatsappsender.yaml is out of date: run `make manifests` and commit the result"
    );
}

#[tokio::test]
async fn a_manifest_with_every_field_is_accepted_unchanged() {
    let plane = controlplane::shared();
    let ns = plane.namespace("full").await;
    let manifest = full_manifest("full");
    apply(&ns, &manifest).expect_success("apply a manifest with every field");

    let api: Api<WhatsAppSender> = Api::namespaced(plane.client().await, &ns);
    let stored = api.get("full").await.expect("read it back");
    let stored_spec = serde_json::to_value(&stored.spec).unwrap();
    assert_eq!(
        stored_spec, manifest["spec"],
        "the API server kept every field as written"
    );
}

#[tokio::test]
async fn a_minimal_manifest_gets_the_defaults() {
    let plane = controlplane::shared();
    let ns = plane.namespace("minimal").await;
    apply(&ns, &minimal_manifest("minimal")).expect_success("apply a minimal manifest");

    let api: Api<WhatsAppSender> = Api::namespaced(plane.client().await, &ns);
    let stored = api.get("minimal").await.expect("read it back");
    assert_eq!(stored.spec.deletion_policy, DeletionPolicy::Delete);
    assert!(!stored.spec.suspend);
    assert!(stored.spec.verification.is_none());
    assert!(stored.status.is_none());
}

/// The manifests at the top of examples/ (what `kubectl apply -f examples/` reads), parsed.
fn example_manifests() -> Vec<Value> {
    let dir = controlplane::repo_root().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("list examples/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            parse_yaml(&text)
        })
        .collect()
}

/// The phone numbers of the WhatsAppSenders in `objects`.
fn phone_numbers(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == "WhatsAppSender")
        .map(|o| {
            o["spec"]["phoneNumber"]
                .as_str()
                .expect("a phone number")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_examples_are_accepted() {
    let plane = controlplane::shared();
    let ns = plane.namespace("examples").await;
    let applied = plane
        .kubectl()
        .args(["apply", "-n", &ns, "-f"])
        .arg(controlplane::repo_root().join("examples"))
        .run()
        .expect_success("apply examples/");
    // Every manifest in every file was applied (subdirectories are kustomizations: below).
    let manifests = example_manifests();
    assert_eq!(
        applied.stdout.lines().count(),
        manifests.len(),
        "kubectl applied one object per manifest in examples/:\n{}",
        applied.stdout
    );
    for kind in ["Secret", "WhatsAppSender"] {
        assert!(
            manifests.iter().any(|m| m["kind"] == kind),
            "examples/ has a {kind}"
        );
    }

    // Applied together, no two examples register the same number.
    let mut phones = phone_numbers(&manifests);
    phones.extend(phone_numbers(&parse_yaml(&kustomize(MANY_SENDERS))));
    let distinct: BTreeSet<&String> = phones.iter().collect();
    assert_eq!(distinct.len(), phones.len(), "phone numbers: {phones:?}");
}

#[tokio::test]
async fn the_many_senders_example_stamps_one_sender_per_entry_with_the_shared_settings() {
    let rendered = kustomize(MANY_SENDERS);
    let senders = parse_yaml(&rendered);
    assert!(
        senders.len() >= MANY_SENDERS_AT_LEAST,
        "{} senders rendered",
        senders.len()
    );
    let mut display_names = BTreeSet::new();
    for sender in &senders {
        let name = sender["metadata"]["name"].as_str().expect("a name");
        assert_eq!(sender["kind"], "WhatsAppSender", "{name}");
        assert!(name.starts_with("acme-"), "namePrefix applied: {name}");
        assert_eq!(
            sender["metadata"]["labels"]["senderops.io/shard"], "a",
            "{name}: labelled for its shard"
        );
        let spec = &sender["spec"];
        assert_eq!(spec["credentialsRef"], json!({"name": "twilio"}), "{name}");
        assert!(spec["webhook"]["callbackUrl"].is_string(), "{name}: {spec}");
        assert_eq!(spec["profile"]["vertical"], "Shopping and Retail", "{name}");
        assert!(
            display_names.insert(spec["profile"]["name"].to_string()),
            "{name} keeps its own display name: {spec}"
        );
    }
    let phones = phone_numbers(&senders);
    assert_eq!(
        phones.iter().collect::<BTreeSet<_>>().len(),
        phones.len(),
        "one number each: {phones:?}"
    );

    let plane = controlplane::shared();
    let ns = plane.namespace("many-senders").await;
    let output = plane
        .kubectl()
        .args([
            "apply",
            "-n",
            &ns,
            "--server-side",
            "--dry-run=server",
            "-f",
            "-",
        ])
        .stdin(rendered)
        .run()
        .expect_success("dry-run examples/many-senders on the API server");
    assert_eq!(
        output.stdout.lines().count(),
        senders.len(),
        "{}",
        output.stdout
    );
}

#[tokio::test]
async fn bad_manifests_are_refused_with_a_message_that_says_what_to_fix() {
    let plane = controlplane::shared();
    let ns = plane.namespace("invalid").await;
    let base = minimal_manifest("bad");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "phone number without +",
            with(
                base.clone(),
                "/spec/phoneNumber",
                Some(json!("15017122661")),
            ),
            "phoneNumber must be E.164: a '+', then the country code",
        ),
        (
            "phone number with spaces",
            with(
                base.clone(),
                "/spec/phoneNumber",
                Some(json!("+1 501 712 2661")),
            ),
            "phoneNumber must be E.164",
        ),
        (
            "unknown vertical",
            with(
                base.clone(),
                "/spec/profile/vertical",
                Some(json!("Spaceships")),
            ),
            "spec.profile.vertical: Unsupported value: \"Spaceships\"",
        ),
        (
            "bad webhook method",
            with(
                base.clone(),
                "/spec/webhook",
                Some(json!({"callbackMethod": "GET"})),
            ),
            "spec.webhook.callbackMethod: Unsupported value: \"GET\"",
        ),
        (
            "missing display name",
            with(base.clone(), "/spec/profile/name", None),
            "spec.profile.name: Required value",
        ),
        (
            "empty display name",
            with(base.clone(), "/spec/profile/name", Some(json!(""))),
            "spec.profile.name: Invalid value: \"\": spec.profile.name in body should be at least 1 chars long",
        ),
        (
            "missing credentials",
            with(base.clone(), "/spec/credentialsRef", None),
            "spec.credentialsRef: Required value",
        ),
        (
            "relative webhook URL",
            with(
                base.clone(),
                "/spec/webhook",
                Some(json!({"callbackUrl": "/inbound"})),
            ),
            "spec.webhook.callbackUrl: Invalid value: \"/inbound\": must be an absolute http:// or https:// URL",
        ),
        (
            "about longer than Meta allows",
            with(
                base.clone(),
                "/spec/profile/about",
                Some(json!("a".repeat(140))),
            ),
            "spec.profile.about: Too long: may not be more than 139 bytes",
        ),
        (
            "three websites",
            with(
                base.clone(),
                "/spec/profile/websites",
                Some(json!([
                    "https://a.example",
                    "https://b.example",
                    "https://c.example"
                ])),
            ),
            "spec.profile.websites: Too many: 3: must have at most 2 items",
        ),
        (
            "unknown deletion policy",
            with(base.clone(), "/spec/deletionPolicy", Some(json!("Keep"))),
            "spec.deletionPolicy: Unsupported value: \"Keep\"",
        ),
        (
            "bad verification method",
            with(
                base.clone(),
                "/spec/verification",
                Some(json!({"method": "email"})),
            ),
            "spec.verification.method: Unsupported value: \"email\"",
        ),
    ];
    let mut failures = Vec::new();
    for (what, manifest, expected) in cases {
        let out = apply(&ns, &manifest);
        if out.success {
            failures.push(format!(
                "{what}: accepted, expected refusal with {expected:?}"
            ));
        } else if !out.stderr.contains(expected) {
            failures.push(format!(
                "{what}: refused, but the message lacks {expected:?}:\n{}",
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn phone_number_display_name_and_waba_are_immutable_but_the_rest_may_change() {
    let plane = controlplane::shared();
    let ns = plane.namespace("immutable").await;
    let original = full_manifest("immutable");
    apply(&ns, &original).expect_success("create the sender");

    let out = apply(
        &ns,
        &with(
            original.clone(),
            "/spec/phoneNumber",
            Some(json!("+15017122999")),
        ),
    )
    .expect_failure("a changed phoneNumber");
    assert!(
        out.stderr.contains("phoneNumber is immutable: a Twilio sender cannot move to another number; delete this WhatsAppSender and create a new one"),
        "{}",
        out.stderr
    );

    let out = apply(
        &ns,
        &with(
            original.clone(),
            "/spec/profile/name",
            Some(json!("Acme Two")),
        ),
    )
    .expect_failure("a changed profile.name");
    assert!(
        out.stderr.contains(
            "profile.name is immutable: Twilio's API cannot change a WhatsApp display name"
        ),
        "{}",
        out.stderr
    );

    for (change, value) in [("changed", Some(json!("99999999"))), ("removed", None)] {
        let out = apply(&ns, &with(original.clone(), "/spec/wabaId", value))
            .expect_failure(&format!("a {change} wabaId"));
        assert!(
            out.stderr.contains("wabaId is immutable: Twilio cannot move a registered number to another WhatsApp Business Account"),
            "{change}: {}",
            out.stderr
        );
    }
    let without_waba = with(minimal_manifest("no-waba"), "/spec/wabaId", None);
    apply(&ns, &without_waba).expect_success("create a sender without wabaId");
    apply(
        &ns,
        &with(without_waba, "/spec/wabaId", Some(json!("12345678912345"))),
    )
    .expect_failure("a wabaId added after creation");

    let changed = with(
        original,
        "/spec/profile/about",
        Some(json!("New about text")),
    );
    let changed = with(
        changed,
        "/spec/webhook/callbackUrl",
        Some(json!("https://new.example.com/in")),
    );
    apply(&ns, &changed).expect_success("change about and the webhook URL");
    let api: Api<WhatsAppSender> = Api::namespaced(plane.client().await, &ns);
    let stored = api.get("immutable").await.unwrap();
    assert_eq!(stored.spec.profile.about.as_deref(), Some("New about text"));
}

#[tokio::test]
async fn unknown_fields_are_rejected_by_kubectl_and_pruned_for_lenient_clients() {
    let plane = controlplane::shared();
    let ns = plane.namespace("unknown").await;
    let manifest = with(
        minimal_manifest("unknown"),
        "/spec/profile/colour",
        Some(json!("teal")),
    );

    // kubectl asks for strict field validation: the typo is refused, naming the field.
    let out = apply(&ns, &manifest).expect_failure("an unknown field");
    assert!(
        out.stderr
            .contains(r#"unknown field "spec.profile.colour""#),
        "{}",
        out.stderr
    );

    // A client that does not ask for strict validation gets the object, with the field pruned by
    // the structural schema.
    let api: Api<DynamicObject> = Api::namespaced_with(
        plane.client().await,
        &ns,
        &ApiResource::erase::<WhatsAppSender>(&()),
    );
    let object: DynamicObject = serde_json::from_value(manifest).unwrap();
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .expect("a lenient create succeeds");
    assert_eq!(
        created.data["spec"]["profile"],
        json!({"name": "Acme"}),
        "colour was pruned"
    );
}

#[tokio::test]
async fn kubectl_explain_teaches_the_resource() {
    let plane = controlplane::shared();
    // The API server publishes a new CRD's OpenAPI shortly after it is established.
    let out = Wait::until("kubectl explain to show the description")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(500))
        .poll(
            async || {
                plane
                    .kubectl()
                    .args(["explain", "whatsappsender.spec.profile.name"])
                    .run()
            },
            |out| out.success && out.stdout.contains("The display name customers see"),
        )
        .await;
    assert!(out.stdout.contains("Immutable"), "{}", out.stdout);
    let out = plane
        .kubectl()
        .args(["explain", "was.spec.phoneNumber"])
        .run()
        .expect_success("explain by short name");
    assert!(out.stdout.contains("E.164"), "{}", out.stdout);
}

#[tokio::test]
async fn kubectl_get_shows_the_printer_columns() {
    let plane = controlplane::shared();
    let ns = plane.namespace("columns").await;
    apply(&ns, &minimal_manifest("columns")).expect_success("create the sender");

    let api: Api<WhatsAppSender> = Api::namespaced(plane.client().await, &ns);
    let status = json!({
        "status": {
            "sid": "XE0123456789abcdef0123456789abcdef",
            "twilioStatus": "ONLINE",
            "qualityRating": "HIGH",
            "messagingLimit": "1K Customers/24hr",
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Online", "message": "sender is ONLINE",
                "lastTransitionTime": "2026-11-23T00:00:00Z"
            }]
        }
    });
    api.patch_status("columns", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("write status through the status subresource");

    let out = plane
        .kubectl()
        .args(["get", "was", "-n", &ns])
        .run()
        .expect_success("list senders");
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "PHONE", "STATUS", "QUALITY", "LIMIT", "READY", "AGE"
        ]
    );
    let row = lines.next().unwrap_or_default();
    for value in [
        "columns",
        "+447700900123",
        "ONLINE",
        "HIGH",
        "1K Customers/24hr",
        "True",
    ] {
        assert!(row.contains(value), "row lacks {value}: {row}");
    }
}
