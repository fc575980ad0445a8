//! The Twilio-facing API: auth, validation, shapes, listing and deletion.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const LIST: &str = "/v2/Channels/Senders";

fn instance(sid: &str) -> String {
    format!("/v2/Channels/Senders/{sid}")
}

#[tokio::test]
async fn auth_failures_api_keys_and_account_isolation() {
    let sim = TestSim::start().await;

    let anonymous = sim
        .api_anonymous(Method::GET, &format!("{LIST}?Channel=whatsapp"))
        .await;
    anonymous.assert_error(401, 20003);
    assert!(anonymous.headers.contains_key("www-authenticate"));
    assert!(anonymous.headers.contains_key("twilio-request-id"));
    sim.api(
        Creds(ACCOUNT_A, "wrong"),
        Method::GET,
        &format!("{LIST}?Channel=whatsapp"),
        None,
    )
    .await
    .assert_error(401, 20003);
    sim.api(
        Creds("AC0000000000000000000000000000dead", TOKEN_A),
        Method::GET,
        &format!("{LIST}?Channel=whatsapp"),
        None,
    )
    .await
    .assert_error(401, 20003);
    // A key's secret is not the account's token, nor the other way round.
    sim.api(
        Creds(KEY_A, TOKEN_A),
        Method::GET,
        &format!("{LIST}?Channel=whatsapp"),
        None,
    )
    .await
    .assert_error(401, 20003);
    let message = sim
        .api(
            Creds(ACCOUNT_A, "wrong"),
            Method::POST,
            LIST,
            Some(json!({"sender_id": "whatsapp:+15005550001"})),
        )
        .await;
    message.assert_error(401, 20003);
    assert!(
        !message.body.to_string().contains("wrong"),
        "secrets are not echoed"
    );

    // An API key acts for its account.
    let created = sim.create_as(A_KEY, "+15005550001", "Acme").await;
    assert_eq!(created.status, 202, "{}", created.body);
    let sid = created.body["sid"].as_str().unwrap().to_string();
    assert_eq!(sim.fetch(&sid).await["sid"], sid.as_str());
    let via_key = sim.api(A_KEY, Method::GET, &instance(&sid), None).await;
    assert_eq!(via_key.status, 200);

    // Account B sees none of it.
    sim.api(B, Method::GET, &instance(&sid), None)
        .await
        .assert_error(404, 20404);
    sim.api(
        B,
        Method::POST,
        &instance(&sid),
        Some(json!({"profile": {"about": "x"}})),
    )
    .await
    .assert_error(404, 20404);
    sim.api(B, Method::DELETE, &instance(&sid), None)
        .await
        .assert_error(404, 20404);
    let listed = sim
        .api(B, Method::GET, &format!("{LIST}?Channel=whatsapp"), None)
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["senders"], json!([]));
    // …and the sender survived B's attempts.
    assert_eq!(sim.fetch(&sid).await["profile"]["about"], Value::Null);
}

#[tokio::test]
async fn create_validates_its_body() {
    let sim = TestSim::start().await;
    let post = |body: Option<Value>| sim.api(A, Method::POST, LIST, body);

    post(None).await.assert_error(400, 20001);
    post(Some(json!({"profile": {"name": "Acme"}})))
        .await
        .assert_error(400, 20001);
    post(Some(json!({"sender_id": null})))
        .await
        .assert_error(400, 20001);
    post(Some(json!(["whatsapp:+15005550001"])))
        .await
        .assert_error(400, 20001);
    post(Some(json!({"sender_id": 15005550001_u64})))
        .await
        .assert_error(400, 20001);
    for bad in [
        "+15005550001",
        "whatsapp:15005550001",
        "whatsapp:+1",
        "sms:+15005550001",
        "whatsapp:+1500555000a",
    ] {
        let reply = post(Some(json!({"sender_id": bad}))).await;
        reply.assert_error(400, 63100);
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("sender_id"),
            "{}",
            reply.body
        );
    }
    let ok = "whatsapp:+15005550001";
    for no_name in [
        json!({"sender_id": ok}),
        json!({"sender_id": ok, "profile": {"about": "x"}}),
    ] {
        let reply = post(Some(no_name)).await;
        reply.assert_error(400, 63100);
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("profile.name is required")
        );
    }
    post(Some(
        json!({"sender_id": ok, "profile": {"name": "Acme", "vertical": "Spaceflight"}}),
    ))
    .await
    .assert_error(400, 63100);
    post(Some(
        json!({"sender_id": ok, "webhook": {"callback_method": "GET"}}),
    ))
    .await
    .assert_error(400, 20001);
    post(Some(
        json!({"sender_id": ok, "configuration": {"verification_method": "pigeon"}}),
    ))
    .await
    .assert_error(400, 20001);

    // Not JSON at all.
    let raw = sim
        .http
        .post(format!("{}{LIST}", sim.base))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A))
        .header("content-type", "application/json")
        .body("{\"sender_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_twilio_error(400, &body);
    assert_eq!(body["code"], 20001);

    // None of the refused requests created anything.
    let listed = sim
        .api(A, Method::GET, &format!("{LIST}?Channel=whatsapp"), None)
        .await;
    assert_eq!(listed.body["senders"], json!([]));
}

#[tokio::test]
async fn create_answers_twilio_shapes() {
    let sim = TestSim::start().await;
    let reply = sim
        .api(
            A,
            Method::POST,
            LIST,
            Some(json!({
                "sender_id": "whatsapp:+15005550001",
                "configuration": {
                    "waba_id": "1234567",
                    "verification_method": "voice",
                    "verification_code": "123456",
                    "voice_application_sid": "AP00000000000000000000000000000001"
                },
                "webhook": {"callback_url": "https://example.com/cb", "callback_method": "POST"},
                "profile": {
                    "name": "Acme",
                    "vertical": "Automotive",
                    "emails": ["help@example.com"],
                    "websites": [{"website": "https://example.com", "label": "Home"}, "https://example.org"]
                }
            })),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let request_id = reply.headers["twilio-request-id"].to_str().unwrap();
    assert!(
        request_id.starts_with("RQ") && request_id.len() == 34,
        "{request_id}"
    );
    let body = &reply.body;
    let sid = body["sid"].as_str().unwrap();
    assert!(sid.starts_with("XE") && sid.len() == 34);
    assert_eq!(body["status"], "CREATING");
    assert_eq!(
        body["url"],
        format!("{}/v2/Channels/Senders/{sid}", sim.base)
    );
    assert_eq!(body["compliance"], Value::Null);
    assert_eq!(body["offline_reasons"], Value::Null);
    assert_eq!(
        body["properties"],
        json!({"quality_rating": null, "messaging_limit": null})
    );
    assert_eq!(
        body["configuration"],
        json!({
            "waba_id": "1234567",
            "verification_method": "voice",
            "verification_code": null,
            "voice_application_sid": "AP00000000000000000000000000000001",
            "account_type": null
        })
    );
    assert_eq!(body["webhook"]["callback_url"], "https://example.com/cb");
    assert_eq!(body["webhook"]["fallback_url"], Value::Null);
    assert_eq!(
        body["profile"]["emails"],
        json!([{"email": "help@example.com", "label": "Email"}])
    );
    assert_eq!(
        body["profile"]["websites"],
        json!([
            {"website": "https://example.com", "label": "Home"},
            {"website": "https://example.org", "label": "Website"}
        ])
    );

    // Twilio's own request example is accepted as-is.
    let mut example = openapi::example("whatsapp_create_request");
    example["sender_id"] = json!("whatsapp:+15005550002");
    let reply = sim.api(A, Method::POST, LIST, Some(example.clone())).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        reply.body["profile"]["emails"],
        example["profile"]["emails"]
    );
    assert_eq!(reply.body["webhook"], example["webhook"]);
}

#[tokio::test]
async fn list_validates_its_query() {
    let sim = TestSim::start().await;
    let missing = sim.api(A, Method::GET, LIST, None).await;
    missing.assert_error(400, 20001);
    assert!(
        missing.body["message"]
            .as_str()
            .unwrap()
            .contains("Channel")
    );
    for query in [
        "PageSize=0",
        "PageSize=1001",
        "PageSize=two",
        "PageToken=garbage",
        "Page=-1",
    ] {
        sim.api(
            A,
            Method::GET,
            &format!("{LIST}?Channel=whatsapp&{query}"),
            None,
        )
        .await
        .assert_error(400, 20001);
    }
    sim.api(
        A,
        Method::GET,
        &format!("{LIST}?Channel=carrier-pigeon"),
        None,
    )
    .await
    .assert_error(400, 20001);
    let max = sim
        .api(
            A,
            Method::GET,
            &format!("{LIST}?Channel=whatsapp&PageSize=1000"),
            None,
        )
        .await;
    assert_eq!(max.status, 200);
    assert_eq!(max.body["meta"]["page_size"], 1000);
    let default = sim
        .api(A, Method::GET, &format!("{LIST}?Channel=whatsapp"), None)
        .await;
    assert_eq!(default.body["meta"]["page_size"], 50);
    assert_eq!(default.body["meta"]["key"], "senders");
    assert_eq!(default.body["meta"]["next_page_url"], Value::Null);
    assert_eq!(default.body["meta"]["previous_page_url"], Value::Null);
}

#[tokio::test]
async fn pagination_follows_next_page_url() {
    let sim = TestSim::start().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(sim.create(&format!("+1500555010{i}")).await);
        // Interleave another account's senders: they must not show up or shift pages.
        assert_eq!(
            sim.create_as(B, &format!("+1500555020{i}"), "Other")
                .await
                .status,
            202
        );
    }

    let mut url = format!("{}{LIST}?Channel=whatsapp&PageSize=2", sim.base);
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let reply = sim.api(A, Method::GET, &url, None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let meta = reply.body["meta"].clone();
        assert_eq!(meta["page"], pages.len());
        assert_eq!(meta["page_size"], 2);
        assert!(
            meta["first_page_url"]
                .as_str()
                .unwrap()
                .starts_with(&sim.base)
        );
        assert_eq!(
            meta["previous_page_url"].is_null(),
            pages.is_empty(),
            "{meta}"
        );
        for sender in reply.body["senders"].as_array().unwrap() {
            seen.push(sender["sid"].as_str().unwrap().to_string());
        }
        pages.push(reply.body["senders"].as_array().unwrap().len());
        match meta["next_page_url"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}{LIST}?", sim.base)),
                    "absolute URL: {next}"
                );
                assert!(next.contains("PageToken="), "{next}");
                url = next.to_string();
            }
            None => break,
        }
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(pages, vec![2, 2, 1]);
    assert_eq!(seen, created, "every sender once, in creation order");

    // The previous page link of the last page leads back to the middle page.
    let last = sim.api(A, Method::GET, &url, None).await;
    let previous = last.body["meta"]["previous_page_url"]
        .as_str()
        .unwrap()
        .to_string();
    let middle = sim.api(A, Method::GET, &previous, None).await;
    let middle_sids: Vec<_> = middle.body["senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].clone())
        .collect();
    assert_eq!(middle_sids, vec![json!(created[2]), json!(created[3])]);

    // A token stays valid when the sender it pointed at is deleted.
    assert_eq!(
        sim.api(A, Method::DELETE, &instance(&created[4]), None)
            .await
            .status,
        204
    );
    let after_delete = sim.api(A, Method::GET, &url, None).await;
    assert_eq!(after_delete.status, 200);
    assert_eq!(after_delete.body["senders"], json!([]));
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    let deleted = sim.api(A, Method::DELETE, &instance(&sid), None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null, "204 has an empty body");
    sim.api(A, Method::GET, &instance(&sid), None)
        .await
        .assert_error(404, 20404);
    sim.api(A, Method::DELETE, &instance(&sid), None)
        .await
        .assert_error(404, 20404);
    sim.api(A, Method::POST, &instance(&sid), Some(json!({})))
        .await
        .assert_error(404, 20404);
    let listed = sim
        .api(A, Method::GET, &format!("{LIST}?Channel=whatsapp"), None)
        .await;
    assert_eq!(listed.body["senders"], json!([]));
    // The number is free again and gets a new sender.
    let again = sim.create("+15005550001").await;
    assert_ne!(again, sid);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_twilio_errors() {
    let sim = TestSim::start().await;
    let sid = sim.create("+15005550001").await;
    sim.api(A, Method::GET, "/v2/Channels/Nothing", None)
        .await
        .assert_error(404, 20404);
    sim.api(
        A,
        Method::GET,
        &instance("XE00000000000000000000000000000000"),
        None,
    )
    .await
    .assert_error(404, 20404);
    sim.api(A, Method::GET, &instance("not-a-sid"), None)
        .await
        .assert_error(404, 20404);
    sim.api(A, Method::PUT, LIST, None)
        .await
        .assert_error(405, 20004);
    sim.api(A, Method::PATCH, &instance(&sid), Some(json!({})))
        .await
        .assert_error(405, 20004);
    sim.api(
        A,
        Method::POST,
        &instance(&sid),
        Some(json!({"profile": 5})),
    )
    .await
    .assert_error(400, 20001);
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn update_answers_carry_only_the_sections_sent() {
    let sim = TestSim::start().await;
    sim.set_behavior("+15005550001", "auto_verify").await;
    // Twilio's profile example keeps this display name, so its request is accepted as it is.
    let created = sim.create_as(A, "+15005550001", "Example Business").await;
    assert_eq!(created.status, 202, "{}", created.body);
    let sid = created.body["sid"].as_str().unwrap().to_string();
    sim.wait_for(&sid, "ONLINE").await;

    let sections = ["configuration", "webhook", "profile"];
    for section in sections {
        let request = openapi::example(&format!("whatsapp_patch_update_{section}_request"));
        let reply = sim.update(&sid, request).await;
        assert_eq!(reply.status, 202, "{section}: {}", reply.body);
        let twilio = openapi::example(&format!("whatsapp_patch_update_{section}_response"));
        assert_eq!(
            keys(&reply.body),
            keys(&twilio),
            "{section}: {}",
            reply.body
        );
        assert_eq!(reply.body["compliance"], Value::Null);
        for other in sections.iter().filter(|s| **s != section) {
            assert_eq!(
                reply.body[*other],
                Value::Null,
                "{section} update answers {other}: {}",
                reply.body
            );
        }
        let current = sim.fetch(&sid).await;
        assert_eq!(
            reply.body[section], current[section],
            "{section}: the whole current section"
        );
    }

    // The configuration comes back without the code, and all sections when all are sent.
    let reply = sim
        .update(
            &sid,
            json!({
                "configuration": {"verification_code": "123456"},
                "webhook": {"callback_url": "https://example.com/in"},
                "profile": {"about": "Hello"}
            }),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        reply.body["configuration"]["verification_code"],
        Value::Null,
        "never echoed: {}",
        reply.body
    );
    assert_eq!(
        reply.body["webhook"]["callback_url"],
        "https://example.com/in"
    );
    assert_eq!(reply.body["profile"]["about"], "Hello");
    assert_eq!(reply.body["profile"]["name"], "Example Business");
    for absent in ["properties", "offline_reasons", "url"] {
        assert!(
            reply.body.get(absent).is_none(),
            "{absent} in an update answer: {}",
            reply.body
        );
    }
    // Reads still answer the whole sender.
    let fetched = sim.fetch(&sid).await;
    for key in ["properties", "offline_reasons", "url"] {
        assert!(fetched.get(key).is_some(), "{key} missing: {fetched}");
    }
}
