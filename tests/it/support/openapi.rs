//! Validates JSON bodies against Twilio's OpenAPI documents (`tests/openapi/twilio_messaging_v2.json`,
//! and `twilio_monitor_v1.json` for the Monitor API's Alerts through the `*_in` functions).
//!
//! OpenAPI 3.0 schemas are not quite JSON Schema, so they are converted first:
//! - `#/components/schemas/X` refs become `#/$defs/X`, with every reachable schema copied in;
//! - `nullable: true` becomes an allowed `null` (type list, enum entry, or `if null / else
//!   $ref` around a `$ref`, since 3.0 ignores a `$ref`'s siblings);
//! - OpenAPI-only keywords (`example`, `x-*`, …) are dropped;
//! - for request bodies, objects get `additionalProperties: false`, so a misspelled or invented
//!   field fails instead of being silently ignored by Twilio. Responses stay open: Twilio adds
//!   fields.
//!
//! Self-contained (only `serde_json` and `jsonschema`): the root crate's tests reach it as
//! `support::openapi`, the simulator's tests include it with `#[path]`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";

/// The vendored document, parsed once. Embedded relative to this file, so the root crate's
/// and the simulator's tests find it alike.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(include_str!("../../openapi/twilio_messaging_v2.json"))
            .expect("the vendored OpenAPI document is JSON")
    })
}

/// The vendored Monitor v1 document (`/v1/Alerts`), parsed once.
pub fn monitor_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(include_str!("../../openapi/twilio_monitor_v1.json"))
            .expect("the vendored Monitor OpenAPI document is JSON")
    })
}

/// Whether the document has this operation and it declares this response status.
pub fn declares(path_template: &str, method: &str, status: u16) -> bool {
    declares_in(document(), path_template, method, status)
}

/// [`declares`] for another document.
pub fn declares_in(doc: &Value, path_template: &str, method: &str, status: u16) -> bool {
    doc["paths"][path_template][method.to_ascii_lowercase()]["responses"]
        .get(status.to_string())
        .is_some()
}

/// A named example from `components.examples` (its `value`).
pub fn example(name: &str) -> Value {
    let value = &document()["components"]["examples"][name]["value"];
    assert!(
        !value.is_null(),
        "no example {name:?} in the OpenAPI document"
    );
    value.clone()
}

/// Validates a request body against `components.schemas[schema_name]`, strictly (no unknown
/// fields anywhere).
pub fn validate_request(schema_name: &str, body: &Value) -> Result<(), Vec<String>> {
    let root = json!({ "$ref": format!("{SCHEMA_REF_PREFIX}{schema_name}") });
    validate(document(), &root, true, body)
}

/// The request schema name an operation declares (`paths[path][method].requestBody`).
pub fn request_schema_name(path_template: &str, method: &str) -> String {
    let schema = &operation(document(), path_template, method)["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"];
    schema
        .as_str()
        .and_then(|r| r.strip_prefix(SCHEMA_REF_PREFIX))
        .unwrap_or_else(|| panic!("{method} {path_template} has no JSON request schema ref"))
        .to_string()
}

/// Validates a response body against what the document declares for `status` of the
/// operation. A status the operation does not declare is an error; so is a body on a response
/// that declares none (pass `Value::Null` for "no body").
pub fn validate_response(
    path_template: &str,
    method: &str,
    status: u16,
    body: &Value,
) -> Result<(), Vec<String>> {
    validate_response_in(document(), path_template, method, status, body)
}

/// [`validate_response`] against another document, e.g. [`monitor_document`].
pub fn validate_response_in(
    doc: &'static Value,
    path_template: &str,
    method: &str,
    status: u16,
    body: &Value,
) -> Result<(), Vec<String>> {
    let responses = &operation(doc, path_template, method)["responses"];
    let Some(response) = responses.get(status.to_string()) else {
        let declared: Vec<&String> = responses
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        return Err(vec![format!(
            "{method} {path_template} does not declare status {status} (declares {declared:?})"
        )]);
    };
    match response["content"]["application/json"].get("schema") {
        Some(schema) => validate(doc, schema, false, body),
        None if body.is_null() => Ok(()),
        None => Err(vec![format!(
            "{method} {path_template} {status} declares no body, got {body}"
        )]),
    }
}

fn operation(doc: &'static Value, path_template: &str, method: &str) -> &'static Value {
    let op = &doc["paths"][path_template][method.to_ascii_lowercase()];
    assert!(
        op.is_object(),
        "no operation {method} {path_template} in the OpenAPI document"
    );
    op
}

fn validate(doc: &Value, root: &Value, strict: bool, instance: &Value) -> Result<(), Vec<String>> {
    let schema = to_json_schema_in(doc, root, strict);
    let validator = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("converted schema does not compile: {e}\n{schema:#}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Turns an OpenAPI 3.0 schema (which may `$ref` components) into a self-contained JSON Schema
/// 2020-12 document.
pub fn to_json_schema(root: &Value, strict: bool) -> Value {
    to_json_schema_in(document(), root, strict)
}

/// [`to_json_schema`] with the components of another document.
pub fn to_json_schema_in(doc: &Value, root: &Value, strict: bool) -> Value {
    let schemas = &doc["components"]["schemas"];
    let mut defs = BTreeMap::new();
    let mut pending = Vec::new();
    collect_refs(root, &mut pending);
    while let Some(name) = pending.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        let source = schemas
            .get(&name)
            .unwrap_or_else(|| panic!("unresolved $ref to components.schemas.{name}"));
        collect_refs(source, &mut pending);
        defs.insert(name, convert(source, strict));
    }
    let mut out = match convert(root, strict) {
        Value::Object(map) => map,
        other => panic!("schema root is not an object: {other}"),
    };
    out.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    out.insert(
        "$defs".into(),
        Value::Object(defs.into_iter().collect::<Map<_, _>>()),
    );
    Value::Object(out)
}

fn collect_refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(SCHEMA_REF_PREFIX))
            {
                out.push(name.to_string());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Keywords whose value is one schema.
const SCHEMA_KEYWORDS: &[&str] = &["items", "not", "additionalProperties"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LIST_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf"];
/// OpenAPI-only keywords with no JSON Schema meaning.
const DROPPED: &[&str] = &[
    "nullable",
    "example",
    "discriminator",
    "xml",
    "externalDocs",
];

fn convert(node: &Value, strict: bool) -> Value {
    let Value::Object(map) = node else {
        return node.clone();
    };
    let nullable = map.get("nullable") == Some(&Value::Bool(true));

    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        let target = match reference.strip_prefix(SCHEMA_REF_PREFIX) {
            Some(name) => format!("#/$defs/{name}"),
            None => panic!("unsupported $ref {reference}"),
        };
        let reference = json!({ "$ref": target });
        return if nullable {
            // if/else rather than anyOf, so errors inside the referenced schema are reported
            // at their own path instead of as one opaque "not valid under anyOf".
            json!({ "if": { "type": "null" }, "else": reference })
        } else {
            reference
        };
    }

    let mut out = Map::new();
    for (key, value) in map {
        if DROPPED.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        }
        let converted = if key == "properties" {
            match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, schema)| (name.clone(), convert(schema, strict)))
                        .collect(),
                ),
                other => other.clone(),
            }
        } else if SCHEMA_KEYWORDS.contains(&key.as_str()) && value.is_object() {
            convert(value, strict)
        } else if SCHEMA_LIST_KEYWORDS.contains(&key.as_str()) {
            match value {
                Value::Array(items) => {
                    Value::Array(items.iter().map(|s| convert(s, strict)).collect())
                }
                other => other.clone(),
            }
        } else {
            value.clone()
        };
        out.insert(key.clone(), converted);
    }

    if nullable {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                out.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) if !types.contains(&json!("null")) => {
                types.push(json!("null"))
            }
            _ => {}
        }
        if let Some(Value::Array(values)) = out.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }

    let is_object = match out.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => types.contains(&json!("object")),
        _ => out.contains_key("properties"),
    };
    let composed = SCHEMA_LIST_KEYWORDS.iter().any(|k| out.contains_key(*k));
    if strict && is_object && !composed && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}
