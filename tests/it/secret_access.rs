//! How the operator reads Secrets, as the README promises: it "watches Secrets by metadata only
//! and reads one Secret when it needs it". Checked where no client can pretend: on the API
//! server's side, in its audit log of Secret requests (testplane `--audit-log`), for the
//! requests that carry the operator's User-Agent; and, for what the audit log cannot show, by
//! counting the bytes the API server sends the operator.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::controlplane::{self, ControlPlane};
use crate::support::operator::{DEADLINE, Fixture, sid_of, spec};
use crate::support::relay::Relay;
use crate::support::sim::{ACCOUNT_B, Sim, TOKEN_A, TOKEN_B};
use crate::support::wait::Wait;

/// Secrets no sender references, made before the operator starts: a list that carried data
/// would carry theirs.
const UNRELATED: [(&str, &str); 3] = [
    ("unrelated-db", "unrelated-db-password"),
    ("unrelated-tls", "unrelated-tls-key"),
    // Named like the credentials Secrets, referenced by no sender.
    ("twilio-old", "twilio-old-token"),
];

/// An unrelated Secret large enough that a single copy of it outweighs everything else the API
/// server sends the operator in this test: whether the operator was ever sent its data shows in
/// the byte count alone.
const BULKY: &str = "unrelated-bulky";
const BULKY_BYTES: usize = 700 * 1024;

const CODE_SECRET: &str = "a-code-otp";
/// The code Secret of a sender that verifies without one (Twilio never waits for its code):
/// referenced, never needed.
const UNNEEDED_CODE_SECRET: &str = "b-auto-otp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_listed_and_watched_as_metadata_and_read_one_at_a_time_when_needed() {
    let plane = controlplane::dedicated_audited("secret_access-audit");
    let ns = plane.namespace("secret-access").await;
    let secrets: Api<Secret> = Api::namespaced(plane.client().await, &ns);
    for (name, value) in UNRELATED {
        create_secret(&secrets, name, json!({"password": value})).await;
    }
    create_secret(&secrets, BULKY, json!({"blob": bulky_blob()})).await;
    create_secret(&secrets, UNNEEDED_CODE_SECRET, json!({"code": "123456"})).await;

    // The operator reaches the API server through a relay that counts what comes back.
    let (relay, relay_kubeconfig) = relay_to(plane).await;
    let sim = Sim::start().await;
    let f = Fixture::on_plane_via(plane, &relay_kubeconfig, &ns, sim, &[]).await;
    f.secret(
        "twilio-b",
        &[("accountSid", ACCOUNT_B), ("authToken", TOKEN_B)],
    )
    .await;
    f.sim.number("+15005550701", "auto_verify").await;
    f.sim.number("+15005550702", "needs_code").await;
    f.sim.number("+15005550703", "auto_verify").await;
    // Distinct display names: none waits for another's name check.
    f.apply(
        "a-auto",
        spec("+15005550701", json!({"profile": {"name": "Acme One"}})),
    )
    .await;
    f.apply(
        "a-code",
        spec(
            "+15005550702",
            json!({
                "profile": {"name": "Acme Two"},
                "verification": {"codeSecretRef": {"name": CODE_SECRET, "key": "code"}},
            }),
        ),
    )
    .await;
    f.apply(
        "b-auto",
        spec(
            "+15005550703",
            json!({
                "profile": {"name": "Acme Three"},
                "credentialsRef": {"name": "twilio-b"},
                "verification": {"codeSecretRef": {"name": UNNEEDED_CODE_SECRET, "key": "code"}},
            }),
        ),
    )
    .await;
    // The code arrives as a user would give it: in the Secret, once Twilio sent it.
    let waiting = f
        .wait_condition("a-code", "Ready", "False", "WaitingForCode")
        .await;
    let code = f
        .sim
        .otp(&sid_of(&waiting))
        .await
        .expect("the simulator sent a code");
    f.secret(CODE_SECRET, &[("code", &code)]).await;
    for name in ["a-auto", "a-code", "b-auto"] {
        f.wait_ready(name).await;
    }

    // The bulky Secret changes while the operator watches: a watch of full Secrets would send it
    // three more times. A change to a Secret a sender reads comes after them on the same watch,
    // so once the operator has acted on that, it has been sent what the watch had for the bulky
    // one.
    let received_before = relay.received();
    for round in 0..3 {
        let touch = json!({"metadata": {"labels": {"touched": round.to_string()}}});
        secrets
            .patch(BULKY, &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .expect("label the bulky Secret");
    }
    let touched = Timestamp::now();
    let touch = json!({"metadata": {"labels": {"touched": "after-the-bulky-one"}}});
    secrets
        .patch("twilio", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .expect("label the credentials Secret");
    // Evidence that names that change: the operator reads the credentials Secret again, which
    // it does only once its watch reported a new version.
    Wait::until("the operator to read the changed credentials Secret again")
        .within(DEADLINE)
        .context(|| format!("operator log:\n{}", f.operator.log_tail(20)))
        .poll(
            async || operator_reads_since(plane, &ns, "twilio", touched),
            |reads| *reads > 0,
        )
        .await;
    let received_while_touched = relay.received() - received_before;

    // The Secrets the operator needs: credentials, and the code of a sender Twilio waited for.
    let needed = ["twilio", "twilio-b", CODE_SECRET];
    let events = operator_secret_requests(plane, &ns, &needed).await;
    let lists: Vec<&Value> = events.iter().filter(|e| e["verb"] == "list").collect();
    let watches = events.iter().filter(|e| e["verb"] == "watch").count();
    assert!(
        !lists.is_empty() && watches > 0,
        "the operator lists and watches Secrets; its requests: {}",
        summary(&events)
    );
    for list in &lists {
        // The Accept header that asks for metadata is not in an audit event; the answer is.
        assert_eq!(
            list["responseObject"]["kind"],
            "PartialObjectMetadataList",
            "the operator listed Secrets in full ({}), data included: {}",
            list["requestURI"],
            summary(&events)
        );
    }
    for event in &events {
        let name = event["objectRef"]["name"].as_str().unwrap_or("");
        match event["verb"].as_str().unwrap_or("") {
            "list" | "watch" => {}
            "get" => assert!(
                needed.contains(&name),
                "the operator read Secret {name:?}, which {}: {}",
                if name == UNNEEDED_CODE_SECRET {
                    "holds the code of a sender Twilio never waited for"
                } else {
                    "no sender references"
                },
                summary(&events)
            ),
            verb => panic!(
                "the operator did more than read Secrets ({verb} {name:?}): {}",
                summary(&events)
            ),
        }
    }
    // No audit event carries any Secret's data: the operator's lists were metadata, and every
    // other request is logged without its body.
    let log = serde_json::to_string(&plane.audit_events()).unwrap();
    let data = UNRELATED.into_iter().chain([
        (UNNEEDED_CODE_SECRET, "123456"),
        ("twilio", TOKEN_A),
        ("twilio-b", TOKEN_B),
    ]);
    for (name, value) in data {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(
            !log.contains(&encoded),
            "the data of Secret {name} is in the audit log"
        );
    }

    // A watch's events are in no audit event, at any level: what the API server sent the
    // operator tells instead. While the bulky Secret changed three times, a watch of full
    // Secrets would have been sent three copies of it; a watch of metadata, three small events.
    assert!(
        received_while_touched < BULKY_BYTES as u64,
        "the API server sent the operator {received_while_touched} bytes while unrelated Secret \
         {BULKY} ({BULKY_BYTES} bytes of data) changed three times: it watches Secrets with \
         their data"
    );
    // And everything it sent in this test, first list included, weighs less than one copy.
    let received = relay.received();
    assert!(
        received < BULKY_BYTES as u64,
        "the API server sent the operator {received} bytes, more than the {BULKY_BYTES} bytes of \
         unrelated Secret {BULKY}'s data: it listed or read Secrets with their data"
    );
    eprintln!(
        "the API server sent the operator {received} bytes ({received_while_touched} while the \
         bulky Secret changed); the operator's Secret requests: {}",
        summary(&events)
    );
}

async fn create_secret(secrets: &Api<Secret>, name: &str, string_data: Value) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": string_data,
    }))
    .expect("a Secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("create Secret {name}: {e}"));
}

/// Made-up bytes that do not compress, so that their size is what crosses the wire.
fn bulky_blob() -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BULKY_BYTES)
        .map(|_| {
            // xorshift: no pattern a compressor would find.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'!' + (state % 94) as u8)
        })
        .collect()
}

/// The operator's Secret requests in `ns` from the audit log, one event per request (its last
/// stage), once every Secret in `must_read` has been read: their events are written while
/// the request is served, so a test that saw the effect of a read may still find the log a
/// moment behind.
async fn operator_secret_requests(
    plane: &ControlPlane,
    ns: &str,
    must_read: &[&str],
) -> Vec<Value> {
    Wait::until(format!(
        "the audit log to show the operator reading {must_read:?}"
    ))
    .within(Duration::from_secs(10))
    .poll_ok(async || {
        let by_id = operator_secret_events(plane, ns);
        let unread: Vec<&&str> = must_read
            .iter()
            .filter(|name| {
                !by_id
                    .iter()
                    .any(|e| e["verb"] == "get" && e["objectRef"]["name"] == **name)
            })
            .collect();
        if unread.is_empty() {
            Ok(by_id)
        } else {
            Err(format!(
                "no read of {unread:?} by a client with User-Agent senderops/…; its Secret \
                     requests: {}",
                summary(&by_id)
            ))
        }
    })
    .await
}

/// How many times the operator read Secret `name` in `ns` after `since` (the API server's
/// clock is this machine's), by the audit log.
fn operator_reads_since(plane: &ControlPlane, ns: &str, name: &str, since: Timestamp) -> usize {
    operator_secret_events(plane, ns)
        .iter()
        .filter(|e| e["verb"] == "get" && e["objectRef"]["name"] == name)
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|received| received > since)
        })
        .count()
}

/// The operator's requests on Secrets in `ns` in the audit log, one event per request (its
/// last stage).
fn operator_secret_events(plane: &ControlPlane, ns: &str) -> Vec<Value> {
    let mut by_id: Vec<Value> = Vec::new();
    for event in plane.audit_events() {
        let ours = event["userAgent"]
            .as_str()
            .is_some_and(|agent| agent.starts_with("senderops/"));
        if !ours
            || event["objectRef"]["resource"] != "secrets"
            || event["objectRef"]["namespace"] != ns
        {
            continue;
        }
        // ResponseStarted then ResponseComplete for a watch: keep the last.
        by_id.retain(|e| e["auditID"] != event["auditID"]);
        by_id.push(event);
    }
    by_id
}

/// `verb name-or-URI -> kind` per request, for failure messages.
fn summary(events: &[Value]) -> String {
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            let target = e["objectRef"]["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e["requestURI"].as_str().unwrap_or("?").to_string());
            match e["responseObject"]["kind"].as_str() {
                Some(kind) => format!("{} {target} -> {kind}", e["verb"].as_str().unwrap_or("?")),
                None => format!("{} {target}", e["verb"].as_str().unwrap_or("?")),
            }
        })
        .collect();
    format!("[{}]", lines.join(", "))
}

/// A relay in front of the API server (TLS passes through: the serving certificate names
/// 127.0.0.1, whatever the port) and a kubeconfig that reaches the API server through it.
async fn relay_to(plane: &ControlPlane) -> (Relay, PathBuf) {
    let server = plane.server_url();
    let upstream = server.trim_start_matches("https://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let relay = Relay::start(listener, upstream);
    let kubeconfig = plane.kubeconfig().with_file_name("kubeconfig-relay");
    let text = std::fs::read_to_string(plane.kubeconfig()).expect("read the kubeconfig");
    assert!(
        text.contains(&server),
        "{server} in the kubeconfig:\n{text}"
    );
    std::fs::write(
        &kubeconfig,
        text.replace(&server, &format!("https://{}", relay.addr())),
    )
    .expect("write the relay's kubeconfig");
    (relay, kubeconfig)
}
