//! What a hostile (or careless) user can put in a WhatsAppSender, on a real API server: huge
//! strings and lists, invalid URLs, repeats, wrong types, out-of-range numbers, unknown and
//! duplicate fields. Each is refused by the schema with a message that says what to fix, on
//! client-side and server-side apply alike; what is legitimate (any script in a display name)
//! is accepted and reaches Twilio byte for byte. `crd.rs` covers the ordinary mistakes.

use kube::api::Api;
use senderops::api::WhatsAppSender;
use serde_json::{Value, json};

use crate::support::controlplane;
use crate::support::kubectl::KubectlOutput;
use crate::support::operator::{Fixture, spec};

/// A manifest for `phone` with `spec` as given.
fn manifest(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn base() -> Value {
    manifest("hostile", spec("+15017122661", json!({})))
}

/// `manifest` with the value at `pointer` set (parents created as objects).
fn with(mut manifest: Value, pointer: &str, value: Value) -> Value {
    let mut node = &mut manifest;
    let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for key in &keys[..keys.len() - 1] {
        if node.get(*key).is_none() {
            node[*key] = json!({});
        }
        node = &mut node[*key];
    }
    node[keys[keys.len() - 1]] = value;
    manifest
}

fn apply(ns: &str, server_side: bool, body: &str) -> KubectlOutput {
    let mut kubectl = controlplane::shared().kubectl().args(["apply", "-n", ns]);
    if server_side {
        kubectl = kubectl.arg("--server-side");
    }
    kubectl.args(["-f", "-"]).stdin(body.to_string()).run()
}

/// One manifest to refuse, and what the message must say on client-side and on server-side
/// apply (they word type errors differently).
struct Case {
    what: &'static str,
    body: String,
    client_side: &'static str,
    server_side: &'static str,
}

/// Refused alike by client-side and server-side apply.
fn case(what: &'static str, manifest: Value, expected: &'static str) -> Case {
    typed(what, manifest, expected, expected)
}

fn typed(
    what: &'static str,
    manifest: Value,
    client_side: &'static str,
    server_side: &'static str,
) -> Case {
    Case {
        what,
        body: manifest.to_string(),
        client_side,
        server_side,
    }
}

/// Applies each case client-side and server-side; each must be refused with the expected
/// text in the message. Failures are collected so one run reports them all.
fn assert_refused(ns: &str, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for Case {
        what,
        body,
        client_side,
        server_side,
    } in &cases
    {
        for (server_side, expected) in [(false, client_side), (true, server_side)] {
            let how = if server_side {
                "server-side"
            } else {
                "client-side"
            };
            let out = apply(ns, server_side, body);
            if out.success {
                failures.push(format!("{what} ({how}): accepted, expected {expected:?}"));
            } else if !out.stderr.contains(expected) {
                failures.push(format!(
                    "{what} ({how}): refused, but the message lacks {expected:?}:\n{:.2000}",
                    out.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn huge_strings_and_lists_are_refused_with_the_limit_to_respect() {
    let ns = controlplane::shared().namespace("hostile-size").await;
    let urls = |n: usize| -> Value {
        (0..n)
            .map(|i| Value::from(format!("https://s{i}.example.com")))
            .collect()
    };
    let emails = |n: usize| -> Value {
        (0..n)
            .map(|i| Value::from(format!("u{i}@example.com")))
            .collect()
    };
    let cases = vec![
        case(
            "a display name of 100 000 characters",
            with(base(), "/spec/profile/name", json!("A".repeat(100_000))),
            "spec.profile.name: Too long: may not be more than 256",
        ),
        case(
            "a display name of 257 emoji",
            with(base(), "/spec/profile/name", json!("🚀".repeat(257))),
            "spec.profile.name: Too long: may not be more than 256",
        ),
        case(
            "a description of a megabyte",
            with(
                base(),
                "/spec/profile/description",
                json!("d".repeat(1 << 20)),
            ),
            "spec.profile.description: Too long: may not be more than 512",
        ),
        case(
            "an address of 10 000 characters",
            with(base(), "/spec/profile/address", json!("a".repeat(10_000))),
            "spec.profile.address: Too long: may not be more than 256",
        ),
        case(
            "10 000 websites",
            with(base(), "/spec/profile/websites", urls(10_000)),
            "spec.profile.websites: Too many: 10000: must have at most 2 items",
        ),
        case(
            "10 000 e-mail addresses",
            with(base(), "/spec/profile/emails", emails(10_000)),
            "spec.profile.emails: Too many: 10000: must have at most 2 items",
        ),
        case(
            "a website URL of 300 characters",
            with(
                base(),
                "/spec/profile/websites",
                json!([format!("https://example.com/{}", "p".repeat(280))]),
            ),
            "spec.profile.websites[0]: Too long: may not be more than 256",
        ),
        case(
            "a callback URL of 5 000 characters",
            with(
                base(),
                "/spec/webhook/callbackUrl",
                json!(format!("https://example.com/{}", "p".repeat(5_000))),
            ),
            "spec.webhook.callbackUrl: Too long: may not be more than 2048",
        ),
        case(
            "a phone number of 40 digits",
            with(
                base(),
                "/spec/phoneNumber",
                json!(format!("+1{}", "9".repeat(39))),
            ),
            "spec.phoneNumber: Too long: may not be more than 16",
        ),
        case(
            "a WABA ID of 40 digits",
            with(base(), "/spec/wabaId", json!("9".repeat(40))),
            "spec.wabaId: Too long: may not be more than 32",
        ),
        case(
            "a credentials Secret name of 300 characters",
            with(base(), "/spec/credentialsRef/name", json!("s".repeat(300))),
            "spec.credentialsRef.name: Too long: may not be more than 253",
        ),
    ];
    assert_refused(&ns, cases);
}

#[tokio::test]
async fn invalid_urls_repeats_and_bad_names_are_refused_with_what_to_fix() {
    let ns = controlplane::shared().namespace("hostile-values").await;
    let bad_urls = [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://files.example.com/hook",
        "http://",
        "//hooks.example.com/in",
        "hooks.example.com/in",
        "",
    ];
    let url_fields = [
        ("/spec/webhook/callbackUrl", "spec.webhook.callbackUrl"),
        ("/spec/webhook/fallbackUrl", "spec.webhook.fallbackUrl"),
        (
            "/spec/webhook/statusCallbackUrl",
            "spec.webhook.statusCallbackUrl",
        ),
        ("/spec/profile/logoUrl", "spec.profile.logoUrl"),
        ("/spec/profile/bannerUrl", "spec.profile.bannerUrl"),
        ("/spec/profile/privacyUrl", "spec.profile.privacyUrl"),
        (
            "/spec/profile/termsOfServiceUrl",
            "spec.profile.termsOfServiceUrl",
        ),
    ];
    let mut failures = Vec::new();
    for server_side in [false, true] {
        let how = if server_side {
            "server-side"
        } else {
            "client-side"
        };
        for (pointer, field) in url_fields {
            for url in bad_urls {
                let body = with(base(), pointer, json!(url)).to_string();
                let out = apply(&ns, server_side, &body);
                let expected = format!("{field}: Invalid value");
                if out.success
                    || !out.stderr.contains(&expected)
                    || !out
                        .stderr
                        .contains("must be an absolute http:// or https:// URL")
                {
                    failures.push(format!("{field} = {url:?} ({how}): {:?}", out.stderr));
                }
            }
        }
        for url in bad_urls {
            let body = with(base(), "/spec/profile/websites", json!([url])).to_string();
            let out = apply(&ns, server_side, &body);
            if out.success
                || !out
                    .stderr
                    .contains("each website must be an absolute http:// or https:// URL")
            {
                failures.push(format!("websites = [{url:?}] ({how}): {:?}", out.stderr));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let cases = vec![
        case(
            "the same e-mail address twice",
            with(
                base(),
                "/spec/profile/emails",
                json!(["help@example.com", "help@example.com"]),
            ),
            "emails must not list the same address twice",
        ),
        case(
            "the same website twice",
            with(
                base(),
                "/spec/profile/websites",
                json!(["https://example.com", "https://example.com"]),
            ),
            "websites must not list the same URL twice",
        ),
        case(
            "an e-mail address without @",
            with(base(), "/spec/profile/emails", json!(["help.example.com"])),
            "spec.profile.emails[0]: Invalid value: \"help.example.com\": spec.profile.emails[0] in body should match",
        ),
        case(
            "a display name with a newline",
            with(base(), "/spec/profile/name", json!("Acme\nSupport")),
            "profile.name must not contain newlines, tabs or other control characters",
        ),
        case(
            "a display name with a NUL",
            with(base(), "/spec/profile/name", json!("Acme\u{0}")),
            "profile.name must not contain newlines, tabs or other control characters",
        ),
        case(
            "a credentials Secret name that climbs the URL path",
            with(
                base(),
                "/spec/credentialsRef/name",
                json!("../../kube-system/x"),
            ),
            "spec.credentialsRef.name: Invalid value: \"../../kube-system/x\": must be the name of a Secret: lowercase letters, digits, '-' and '.'",
        ),
        case(
            "a code Secret name in capitals",
            with(
                base(),
                "/spec/verification/codeSecretRef",
                json!({"name": "Acme_OTP", "key": "code"}),
            ),
            "spec.verification.codeSecretRef.name: Invalid value: \"Acme_OTP\": must be the name of a Secret",
        ),
        case(
            "a code Secret key with a slash",
            with(
                base(),
                "/spec/verification/codeSecretRef",
                json!({"name": "otp", "key": "../code"}),
            ),
            "spec.verification.codeSecretRef.key: Invalid value: \"../code\"",
        ),
        case(
            "a phone number with a letter",
            with(base(), "/spec/phoneNumber", json!("+1501712266O")),
            "phoneNumber must be E.164",
        ),
        case(
            "a negative WABA ID",
            with(base(), "/spec/wabaId", json!("-12345")),
            "spec.wabaId: Invalid value: \"-12345\": spec.wabaId in body should match '^[0-9]+$'",
        ),
        case(
            "an accent colour by name",
            with(base(), "/spec/profile/accentColor", json!("red")),
            "spec.profile.accentColor: Invalid value: \"red\": spec.profile.accentColor in body should match '^#[0-9A-Fa-f]{6}$'",
        ),
    ];
    assert_refused(&ns, cases);
}

#[tokio::test]
async fn wrong_types_and_numbers_are_refused_naming_the_type_expected() {
    let ns = controlplane::shared().namespace("hostile-types").await;
    let cases = vec![
        typed(
            "a phone number as a JSON number",
            with(base(), "/spec/phoneNumber", json!(15017122661u64)),
            "spec.phoneNumber: Invalid value: \"integer\": spec.phoneNumber in body must be of type string",
            ".spec.phoneNumber: expected string, got",
        ),
        typed(
            "a negative WABA ID as a number",
            with(base(), "/spec/wabaId", json!(-1)),
            "spec.wabaId: Invalid value: \"integer\": spec.wabaId in body must be of type string",
            ".spec.wabaId: expected string, got",
        ),
        typed(
            "a WABA ID past 64 bits",
            with(base(), "/spec/wabaId", json!(1e30)),
            "spec.wabaId in body must be of type string",
            ".spec.wabaId: expected string, got",
        ),
        typed(
            "suspend as a string",
            with(base(), "/spec/suspend", json!("yes")),
            "spec.suspend: Invalid value: \"string\": spec.suspend in body must be of type boolean",
            ".spec.suspend: expected boolean, got",
        ),
        typed(
            "suspend as a number",
            with(base(), "/spec/suspend", json!(1)),
            "spec.suspend in body must be of type boolean",
            ".spec.suspend: expected boolean, got",
        ),
        typed(
            "e-mails as one string",
            with(base(), "/spec/profile/emails", json!("help@example.com")),
            "spec.profile.emails: Invalid value: \"string\": spec.profile.emails in body must be of type array",
            ".spec.profile.emails: expected list, got",
        ),
        typed(
            "the profile as a list",
            with(base(), "/spec/profile", json!(["Acme"])),
            "spec.profile: Invalid value: \"array\": spec.profile in body must be of type object",
            ".spec.profile: expected map, got",
        ),
        typed(
            "a website as an object",
            with(
                base(),
                "/spec/profile/websites",
                json!([{"url": "https://example.com"}]),
            ),
            "unknown field \"spec.profile.websites[0].url\"",
            ".spec.profile.websites[0]: expected string, got",
        ),
        typed(
            "a deletion policy as a boolean",
            with(base(), "/spec/deletionPolicy", json!(false)),
            "spec.deletionPolicy: Invalid value: \"boolean\": spec.deletionPolicy in body must be of type string",
            ".spec.deletionPolicy: expected string, got",
        ),
        typed(
            "a null display name",
            with(base(), "/spec/profile/name", Value::Null),
            // kubectl drops nulls before a client-side apply.
            "spec.profile.name: Required value",
            "spec.profile.name in body must be of type string: \"null\"",
        ),
    ];
    assert_refused(&ns, cases);
}

#[tokio::test]
async fn unknown_and_duplicate_fields_are_refused_on_server_side_apply() {
    let plane = controlplane::shared();
    let ns = plane.namespace("hostile-fields").await;
    let unknown = with(base(), "/spec/webhook/callbackSecret", json!("hunter2"));
    let out = apply(&ns, true, &unknown.to_string()).expect_failure("an unknown field");
    assert!(
        out.stderr
            .contains(".spec.webhook.callbackSecret: field not declared in schema"),
        "{}",
        out.stderr
    );
    let top_level = with(base(), "/spec/adminOverride", json!(true));
    let out = apply(&ns, true, &top_level.to_string()).expect_failure("an unknown spec field");
    assert!(
        out.stderr
            .contains(".spec.adminOverride: field not declared in schema"),
        "{}",
        out.stderr
    );

    // A key given twice: which one wins would depend on the parser, so the API server refuses
    // it. (kubectl collapses keys itself when it reads YAML, so this is a raw request, as any
    // other client may send.)
    let duplicated = r#"{"apiVersion":"messaging.senderops.io/v1alpha1","kind":"WhatsAppSender",
        "metadata":{"name":"duplicated"},"spec":{"phoneNumber":"+15017122661",
        "phoneNumber":"+15017122662","credentialsRef":{"name":"twilio"},"profile":{"name":"Acme"}}}"#;
    let request = axum::http::Request::post(format!(
        "/apis/messaging.senderops.io/v1alpha1/namespaces/{ns}/whatsappsenders?fieldValidation=Strict"
    ))
    .header("Content-Type", "application/json")
    .body(duplicated.as_bytes().to_vec())
    .unwrap();
    let refused = plane
        .client()
        .await
        .request::<Value>(request)
        .await
        .expect_err("a duplicated key is refused");
    assert!(
        refused
            .to_string()
            .contains(r#"duplicate field "spec.phoneNumber""#),
        "{refused}"
    );

    // A status in the manifest is not the user's to write: it is dropped, not stored.
    let with_status = with(
        manifest("with-status", spec("+15017122661", json!({}))),
        "/status",
        json!({"twilioStatus": "ONLINE", "sid": "XEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}),
    );
    apply(&ns, true, &with_status.to_string()).expect_success("apply with a status");
    let api: Api<WhatsAppSender> = Api::namespaced(plane.client().await, &ns);
    let stored = api.get("with-status").await.unwrap();
    assert_eq!(
        stored.status, None,
        "the status in the manifest was dropped"
    );
}

#[tokio::test]
async fn any_script_in_a_display_name_is_accepted_and_reaches_twilio_unchanged() {
    let fixture = Fixture::new("hostile-unicode").await;
    let names = [
        // Emoji with a zero-width joiner sequence and a skin tone, RTL Arabic and Hebrew with
        // an embedding, combining accents (decomposed, so not NFC), CJK.
        "Café 👩‍👩‍👧 👍🏽 متجر أكمي \u{202B}שלום\u{202C} e\u{301}e\u{300} 日本語",
        // The limit counts characters: 256 four-byte emoji are 1 024 bytes, and allowed.
        &"🚀".repeat(256),
    ];
    for (i, name) in names.iter().enumerate() {
        let sender = format!("unicode-{i}");
        let phone = format!("+1501712260{i}");
        fixture.sim.number(&phone, "auto_verify").await;
        let body = manifest(&sender, spec(&phone, json!({"profile": {"name": name}})));
        apply(&fixture.ns, false, &body.to_string()).expect_success("apply a unicode name");
        fixture.wait_ready(&sender).await;
        let at_twilio = fixture.sim_sender(&phone).await;
        assert_eq!(
            at_twilio["profile"]["name"].as_str(),
            Some(*name),
            "the display name reached Twilio byte for byte"
        );
        let stored = fixture.get(&sender).await.unwrap();
        assert_eq!(stored.spec.profile.name, *name);
    }
}
