//! The client and the simulator, held to Twilio's OpenAPI document: a scripted lifecycle runs
//! through Stoplight Prism (`prism proxy --errors`), which validates every request the client
//! sends and every response the simulator returns.

use senderops::twilio::{
    Configuration, CreateSenderRequest, Credentials, FieldUpdate, Profile, SenderStatus,
    UpdateSenderRequest, VerificationCode, Vertical, Webhook, WebhookMethod, sender_id_for,
};
use serde_json::json;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::support::prism::Prism;
use crate::support::sim::*;
use crate::support::wait::Wait;

fn code_update(code: &str) -> UpdateSenderRequest {
    UpdateSenderRequest::verification_code(VerificationCode::new(code))
}

#[tokio::test]
async fn a_scripted_lifecycle_through_prism_has_no_spec_violation() {
    let sim = Sim::start().await;
    let prism = Prism::start(&sim.base_url());
    let client = sim.client_via(prism.url(), Credentials::auth_token(ACCOUNT_A, TOKEN_A));

    // Create with every part of the request filled.
    let phone = "+15005550021";
    let created = client
        .create(&CreateSenderRequest {
            sender_id: sender_id_for(phone),
            configuration: Some(Configuration {
                waba_id: Some("12345678912345".into()),
                verification_method: Some(senderops::twilio::VerificationMethod::Sms),
                ..Configuration::default()
            }),
            webhook: Some(Webhook {
                callback_url: FieldUpdate::Set("https://hooks.example.com/in".into()),
                callback_method: FieldUpdate::Set(WebhookMethod::Post),
                fallback_url: FieldUpdate::Set("https://fallback.example.com/in".into()),
                fallback_method: FieldUpdate::Set(WebhookMethod::Put),
                status_callback_url: FieldUpdate::Set("https://hooks.example.com/status".into()),
                status_callback_method: FieldUpdate::Set(WebhookMethod::Post),
            }),
            profile: Some(Profile {
                name: FieldUpdate::Set("Acme".into()),
                about: FieldUpdate::Set("Help with your orders".into()),
                address: FieldUpdate::Set("101 Spear Street".into()),
                description: FieldUpdate::Set("Acme builds tools.".into()),
                vertical: FieldUpdate::Set(Vertical::ProfessionalServices),
                logo_url: FieldUpdate::Set("https://acme.example.com/logo.png".into()),
                emails: FieldUpdate::Set(vec!["help@acme.example.com".into()]),
                websites: FieldUpdate::Set(vec!["https://acme.example.com".into()]),
                ..Profile::default()
            }),
        })
        .await
        .expect("create through Prism");
    let sid = created.sid;

    // Read the code, submit a wrong one, then the right one.
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    let code = sim.otp(&sid).await.expect("a code was sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let rejected = client
        .update(&sid, &code_update(wrong))
        .await
        .expect("wrong code answered");
    // Rejected only on a later read: VERIFYING first, then back to PENDING_VERIFICATION.
    assert_eq!(rejected.status, SenderStatus::Verifying);
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    client
        .update(&sid, &code_update(&code))
        .await
        .expect("right code accepted");

    // ONLINE with quality rating and messaging limit.
    let online = wait_for_status(&client, &sid, SenderStatus::Online).await;
    let properties = online.properties.expect("properties");
    assert!(properties.quality_rating.is_some() && properties.messaging_limit.is_some());

    // An OFFLINE sender with reasons, as Meta might report it.
    sim.patch_sender(
        &sid,
        json!({"status": "OFFLINE", "offline_reasons": [{"code": "63116", "message": "OTP not received", "more_info": "https://www.twilio.com/docs/errors/63116"}]}),
    )
    .await;
    assert_eq!(client.fetch(&sid).await.unwrap().offline_reasons.len(), 1);
    sim.patch_sender(&sid, json!({"status": "ONLINE"})).await;

    // List across pages (page size 2), following next_page_url back through Prism.
    for i in 0..3 {
        client
            .create(&CreateSenderRequest {
                sender_id: sender_id_for(&format!("+1500555003{i}")),
                profile: Some(Profile {
                    name: FieldUpdate::Set("Acme".into()),
                    ..Profile::default()
                }),
                ..CreateSenderRequest::default()
            })
            .await
            .expect("create another sender");
    }
    assert_eq!(client.list_all().await.expect("list").len(), 4);

    // Update the webhook.
    let updated = client
        .update(
            &sid,
            &UpdateSenderRequest {
                webhook: Some(Webhook {
                    callback_url: FieldUpdate::Set("https://hooks.example.com/v2/in".into()),
                    callback_method: FieldUpdate::Set(WebhookMethod::Put),
                    ..Webhook::default()
                }),
                ..UpdateSenderRequest::default()
            },
        )
        .await
        .expect("update the webhook");
    assert_eq!(
        updated.webhook.and_then(|w| w.callback_url).as_deref(),
        Some("https://hooks.example.com/v2/in")
    );

    // Delete, then 404.
    client.delete(&sid).await.expect("delete");
    assert!(client.fetch(&sid).await.unwrap_err().is_not_found());

    prism.assert_no_violations();
    // The only tolerated warning: Twilio's document declares no error responses, so the 404
    // is "a status code the document does not define".
    for warning in prism.warnings() {
        assert!(
            warning.contains("Unable to match the returned status code"),
            "unexpected Prism warning: {warning}"
        );
    }
}

#[tokio::test]
async fn the_error_log_read_through_prism_has_no_spec_violation() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    // Three registrations that fail after their create: three entries, two pages of two.
    let phones = ["+15005550041", "+15005550042", "+15005550043"];
    for phone in phones {
        sim.number(phone, "waba_full_alert_only").await;
        client
            .create(&CreateSenderRequest {
                sender_id: sender_id_for(phone),
                profile: Some(Profile {
                    name: FieldUpdate::Set("Acme".into()),
                    ..Profile::default()
                }),
                ..CreateSenderRequest::default()
            })
            .await
            .expect("create");
    }
    let since = Timestamp::now() - SignedDuration::from_hours(1);
    let read = async |client: &senderops::twilio::TwilioClient| {
        let mut alerts = Vec::new();
        client
            .alerts_since(since, |alert| alerts.push(alert))
            .await
            .expect("read the Error Log");
        alerts
    };
    Wait::until("three Error Log entries")
        .within(std::time::Duration::from_secs(30))
        .every(std::time::Duration::from_millis(20))
        .poll(async || read(&client).await.len(), |n| *n == 3)
        .await;

    let prism = Prism::start_for("twilio_monitor_v1.json", &sim.base_url());
    let through = sim.client_via(prism.url(), Credentials::auth_token(ACCOUNT_A, TOKEN_A));
    let alerts = read(&through).await;
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert!(
        alerts
            .iter()
            .all(|a| a.error_code.as_deref() == Some("63104"))
    );
    prism.assert_no_violations();
    assert!(
        prism.warnings().is_empty(),
        "{}",
        prism.warnings().join("\n")
    );
    assert!(
        sim.count("GET", "/v1/Alerts", 200).await >= 2,
        "the pages went through Prism to the simulator"
    );
}

#[tokio::test]
async fn the_account_check_through_prism_has_no_spec_violation() {
    let sim = Sim::start().await;
    let prism = Prism::start_for("twilio_api_v2010.json", &sim.base_url());
    // Both kinds of credentials the operator checks: an auth token and an API key.
    for credentials in [
        Credentials::auth_token(ACCOUNT_A, TOKEN_A),
        Credentials::api_key(ACCOUNT_A, KEY_A, KEY_SECRET_A),
    ] {
        sim.client_via(prism.url(), credentials)
            .verify_account()
            .await
            .expect("the account is confirmed");
    }
    prism.assert_no_violations();
    assert!(
        prism.warnings().is_empty(),
        "{}",
        prism.warnings().join("\n")
    );
    assert_eq!(
        sim.count(
            "GET",
            "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json",
            200
        )
        .await,
        2,
        "both checks went through Prism to the simulator"
    );
}

#[tokio::test]
async fn prism_catches_an_off_spec_request() {
    // The check above is only worth something if Prism would object: an off-spec body and a
    // malformed SID must both be refused.
    let sim = Sim::start().await;
    let prism = Prism::start(&sim.base_url());
    let http = reqwest::Client::new();
    let bad_body = http
        .post(format!("{}/v2/Channels/Senders", prism.url()))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A))
        .json(&json!({"sender_id": 15005550001_u64}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status().as_u16(), 422);
    let bad_sid = http
        .get(format!("{}/v2/Channels/Senders/XE123", prism.url()))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_sid.status().as_u16(), 422);
    prism.settle();
    assert_eq!(prism.errors().len(), 2, "{}", prism.log());
}

#[tokio::test]
async fn prism_catches_an_off_spec_response() {
    // And an upstream that answers off-spec (a bad SID and an unknown status word) is caught.
    let app = axum::Router::new().route(
        "/v2/Channels/Senders/{sid}",
        axum::routing::get(|| async { axum::Json(json!({"sid": "XE1", "status": "WEIRD"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let prism = Prism::start(&upstream);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/v2/Channels/Senders/XE0123456789abcdef0123456789abcdef",
            prism.url()
        ))
        .basic_auth(ACCOUNT_A, Some(TOKEN_A))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 500);
    let body = answer.text().await.unwrap();
    assert!(
        body.contains("VIOLATIONS") && body.contains("status"),
        "{body}"
    );
    prism.settle();
    assert_eq!(prism.errors().len(), 1, "{}", prism.log());
}
