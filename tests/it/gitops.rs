//! The Argo CD health check (deploy/gitops/argocd-health.lua), run as Argo CD runs it: the
//! WhatsAppSender in the global `obj`, a table with `status` and `message` returned. Argo CD's
//! Lua (gopher-lua) is Lua 5.1 with only the safe standard libraries, so the script runs on
//! Lua 5.1 (mlua's `lua51`) with those only: newer syntax fails to load here as it would there.
//! Also: the argocd-cm snippet carries the same script.

use mlua::{Lua, LuaOptions, StdLib, Table};
use serde_json::{Value, json};

use crate::support::controlplane::repo_root;
use crate::support::deploy::parse_yaml;

const SCRIPT: &str = "deploy/gitops/argocd-health.lua";
const ARGOCD_CM: &str = "deploy/gitops/argocd-cm.yaml";
const HEALTH_KEY: &str = "resource.customizations.health.messaging.senderops.io_WhatsAppSender";

fn script() -> String {
    std::fs::read_to_string(repo_root().join(SCRIPT))
        .unwrap_or_else(|e| panic!("read {SCRIPT}: {e}"))
}

/// JSON to Lua as Argo CD converts it: objects and arrays become tables, `null` becomes nil,
/// whole numbers print without a decimal point.
fn to_lua(lua: &Lua, value: &Value) -> mlua::Value {
    match value {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => mlua::Value::Integer(i),
            None => mlua::Value::Number(n.as_f64().expect("a finite number")),
        },
        Value::String(s) => mlua::Value::String(lua.create_string(s).expect("a Lua string")),
        Value::Array(items) => {
            let table = lua.create_table().expect("a table");
            for (i, item) in items.iter().enumerate() {
                table
                    .raw_set(i + 1, to_lua(lua, item))
                    .expect("set an item");
            }
            mlua::Value::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table().expect("a table");
            for (key, item) in fields {
                table
                    .raw_set(key.as_str(), to_lua(lua, item))
                    .expect("set a field");
            }
            mlua::Value::Table(table)
        }
    }
}

/// (status, message) of the health check for `obj`.
fn health(obj: &Value) -> (String, String) {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .expect("a Lua state");
    lua.globals()
        .set("obj", to_lua(&lua, obj))
        .expect("set obj");
    let result: Table = lua
        .load(script())
        .set_name(SCRIPT)
        .eval()
        .unwrap_or_else(|e| panic!("{SCRIPT} failed on {obj}: {e}"));
    let status: String = result.get("status").expect("a status");
    let message: String = result.get("message").unwrap_or_default();
    (status, message)
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z",
    })
}

/// A sender at `generation` whose status describes `observed`, with `conditions`.
fn sender(generation: i64, observed: Option<i64>, conditions: Vec<Value>) -> Value {
    let mut sender = json!({
        "apiVersion": "messaging.senderops.io/v1alpha1",
        "kind": "WhatsAppSender",
        "metadata": {"name": "acme", "namespace": "team-a", "generation": generation},
        "spec": {
            "phoneNumber": "+15017122661",
            "credentialsRef": {"name": "twilio"},
            "profile": {"name": "Acme"},
            "deletionPolicy": "Delete",
            "suspend": false,
        },
        "status": {"twilioStatus": "ONLINE", "conditions": conditions},
    });
    if let Some(observed) = observed {
        sender["status"]["observedGeneration"] = json!(observed);
    }
    sender
}

fn online(generation: i64) -> Vec<Value> {
    vec![
        condition("Ready", "True", "Online", "ONLINE at Twilio", generation),
        condition("Synced", "True", "Applied", "", generation),
        condition("Stalled", "False", "NotStalled", "", generation),
    ]
}

#[test]
fn an_online_sender_matching_its_spec_is_healthy() {
    assert_eq!(
        health(&sender(3, Some(3), online(3))),
        ("Healthy".into(), "ONLINE at Twilio".into())
    );
}

#[test]
fn a_stalled_sender_is_degraded_with_the_conditions_message() {
    let message = "Twilio refused the one-time code (63134): put the new code in Secret acme-otp";
    let obj = sender(
        2,
        Some(2),
        vec![
            condition("Ready", "False", "CodeRejected", message, 2),
            condition("Synced", "False", "CodeRejected", message, 2),
            condition("Stalled", "True", "CodeRejected", message, 2),
        ],
    );
    assert_eq!(health(&obj), ("Degraded".into(), message.into()));
}

#[test]
fn a_sender_whose_status_is_behind_its_spec_is_progressing_and_says_so() {
    // Ready from the previous generation does not count, nor does Stalled.
    let (status, message) = health(&sender(4, Some(3), online(3)));
    assert_eq!(status, "Progressing");
    assert!(
        message.contains("generation 4") && message.contains("generation 3"),
        "the message names both generations: {message}"
    );
    let mut stalled_before = sender(4, Some(3), online(3));
    stalled_before["status"]["conditions"][2] =
        condition("Stalled", "True", "InvalidCredentials", "fix the Secret", 3);
    assert_eq!(health(&stalled_before).0, "Progressing");
}

#[test]
fn a_sender_without_a_status_is_progressing() {
    let mut obj = sender(1, None, vec![]);
    obj.as_object_mut().unwrap().remove("status");
    let (status, message) = health(&obj);
    assert_eq!(status, "Progressing");
    assert!(message.contains("operator"), "{message}");

    let (status, message) = health(&sender(1, None, vec![]));
    assert_eq!(
        status, "Progressing",
        "a status without observedGeneration: {message}"
    );
}

#[test]
fn a_sender_on_its_way_to_online_is_progressing_with_the_ready_message() {
    let message = "waiting for Meta to verify the number (VERIFYING)";
    let obj = sender(
        1,
        Some(1),
        vec![
            condition("Ready", "False", "Verifying", message, 1),
            condition("Synced", "True", "Applied", "", 1),
            condition("Stalled", "False", "NotStalled", "", 1),
        ],
    );
    assert_eq!(health(&obj), ("Progressing".into(), message.into()));
}

#[test]
fn a_suspended_sender_is_suspended_whatever_its_conditions() {
    for conditions in [online(5), vec![]] {
        let mut obj = sender(5, Some(4), conditions);
        obj["spec"]["suspend"] = json!(true);
        let (status, message) = health(&obj);
        assert_eq!(status, "Suspended", "{message}");
        assert!(message.contains("suspend"), "{message}");
    }
}

#[test]
fn the_argocd_cm_snippet_carries_the_same_script() {
    let text = std::fs::read_to_string(repo_root().join(ARGOCD_CM))
        .unwrap_or_else(|e| panic!("read {ARGOCD_CM}: {e}"));
    let config_map = parse_yaml(&text);
    assert_eq!(config_map.len(), 1, "{ARGOCD_CM} is one ConfigMap");
    assert_eq!(config_map[0]["metadata"]["name"], "argocd-cm");
    let embedded = config_map[0]["data"][HEALTH_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("{ARGOCD_CM} has data.{HEALTH_KEY}"));
    assert!(
        embedded == script(),
        "{ARGOCD_CM} differs from {SCRIPT}: paste the script in again"
    );
}
