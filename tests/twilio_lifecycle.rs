//! The operator's Twilio client against the simulator, over HTTP, through every lifecycle path
//! the simulator models.

mod support;

use std::time::{Duration, Instant};

use senderops::twilio::{
    CreateSenderRequest, Credentials, ErrorClass, Profile, SenderStatus, UpdateSenderRequest,
    VerificationCode, Vertical, Webhook, WebhookMethod, sender_id_for,
};
use serde_json::json;
use support::sim::*;

fn create_request(phone: &str) -> CreateSenderRequest {
    CreateSenderRequest {
        sender_id: sender_id_for(phone),
        configuration: None,
        webhook: Some(Webhook {
            callback_url: Some("https://hooks.example.com/in".into()),
            callback_method: Some(WebhookMethod::Post),
            ..Webhook::default()
        }),
        profile: Some(Profile {
            name: Some("Acme".into()),
            vertical: Some(Vertical::Other),
            emails: Some(vec!["help@acme.example.com".into()]),
            websites: Some(vec!["https://acme.example.com".into()]),
            ..Profile::default()
        }),
    }
}

fn submit_code(code: &str) -> UpdateSenderRequest {
    UpdateSenderRequest::verification_code(VerificationCode::new(code))
}

/// A six-digit code that is not `code`.
fn wrong(code: &str) -> String {
    if code == "000000" {
        "111111".into()
    } else {
        "000000".into()
    }
}

#[tokio::test]
async fn a_twilio_sms_number_verifies_itself_and_comes_online() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    sim.number("+15005550001", "auto_verify").await;

    let created = client
        .create(&create_request("+15005550001"))
        .await
        .unwrap();
    assert_eq!(created.status, SenderStatus::Creating);
    assert_eq!(created.sender_id, "whatsapp:+15005550001");
    let online = wait_for_status(&client, &created.sid, SenderStatus::Online).await;

    let properties = online.properties.expect("an ONLINE sender has properties");
    assert_eq!(properties.quality_rating.as_deref(), Some("HIGH"));
    assert!(
        properties
            .messaging_limit
            .is_some_and(|l| l.contains("Customers/24hr"))
    );
    let profile = online.profile.expect("profile");
    assert_eq!(profile.name.as_deref(), Some("Acme"));
    assert_eq!(profile.email_addresses(), ["help@acme.example.com"]);
    assert_eq!(profile.website_urls(), ["https://acme.example.com"]);
    assert!(
        sim.otp(&created.sid).await.is_none(),
        "no code is sent to a Twilio SMS number"
    );
}

#[tokio::test]
async fn a_number_with_a_code_goes_pending_then_verifying_then_online() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    let sid = client
        .create(&create_request("+15005550002"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    let code = sim.otp(&sid).await.expect("Meta sent a code");

    let rejected = client
        .update(&sid, &submit_code(&wrong(&code)))
        .await
        .unwrap();
    assert_eq!(
        rejected.status,
        SenderStatus::PendingVerification,
        "a wrong code is not accepted"
    );

    let accepted = client.update(&sid, &submit_code(&code)).await.unwrap();
    assert_eq!(accepted.status, SenderStatus::Verifying);
    let online = wait_for_status(&client, &sid, SenderStatus::Online).await;
    assert!(online.properties.and_then(|p| p.quality_rating).is_some());
}

#[tokio::test]
async fn creating_again_while_pending_sends_a_new_code_for_the_same_sender() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    let sid = client
        .create(&create_request("+15005550003"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    let first = sim.otp(&sid).await.expect("first code");

    // Codes are random; ask until the new one differs, so the old one can be shown dead.
    let mut second = first.clone();
    for _ in 0..3 {
        let again = client
            .create(&create_request("+15005550003"))
            .await
            .unwrap();
        assert_eq!(again.sid, sid, "the same sender, not a second one");
        second = sim.otp(&sid).await.expect("new code");
        if second != first {
            break;
        }
    }
    assert_ne!(first, second);
    let stale = client.update(&sid, &submit_code(&first)).await.unwrap();
    assert_eq!(
        stale.status,
        SenderStatus::PendingVerification,
        "the old code stopped working"
    );
    client.update(&sid, &submit_code(&second)).await.unwrap();
    wait_for_status(&client, &sid, SenderStatus::Online).await;
    assert_eq!(sim.all_senders().await.len(), 1);
}

#[tokio::test]
async fn a_number_registered_elsewhere_goes_offline_with_63110() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    sim.number("+15005550004", "already_registered").await;
    let sid = client
        .create(&create_request("+15005550004"))
        .await
        .unwrap()
        .sid;
    let offline = wait_for_status(&client, &sid, SenderStatus::Offline).await;
    let reason = offline.offline_reasons.first().expect("an offline reason");
    assert_eq!(reason.code.as_deref(), Some("63110"));
    assert!(
        reason
            .more_info
            .as_deref()
            .is_some_and(|u| u.ends_with("/63110"))
    );
}

#[tokio::test]
async fn a_code_that_never_arrives_leaves_the_sender_pending() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    sim.number("+15005550005", "code_never_arrives").await;
    let sid = client
        .create(&create_request("+15005550005"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    tokio::time::sleep(STEP * 4).await;
    assert_eq!(
        client.fetch(&sid).await.unwrap().status,
        SenderStatus::PendingVerification
    );
    assert!(sim.otp(&sid).await.is_none());
}

#[tokio::test]
async fn creating_a_registered_number_is_refused_with_63110_and_advice() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    sim.number("+15005550006", "auto_verify").await;
    let sid = client
        .create(&create_request("+15005550006"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::Online).await;

    let err = client
        .create(&create_request("+15005550006"))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), 63110);
    assert_eq!(err.class(), ErrorClass::NeedsUser);
    assert!(
        err.advice().contains("already registered"),
        "{}",
        err.advice()
    );

    // The same number in another account is registered on WhatsApp too.
    let other = sim.client(Credentials::auth_token(ACCOUNT_B, TOKEN_B));
    assert_eq!(
        code_of(
            &other
                .create(&create_request("+15005550006"))
                .await
                .unwrap_err()
        ),
        63110
    );
    assert_eq!(
        sim.all_senders().await.len(),
        1,
        "no second sender was created"
    );
}

#[tokio::test]
async fn five_wrong_codes_lock_verification_with_63114() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    let sid = client
        .create(&create_request("+15005550007"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    let code = sim.otp(&sid).await.unwrap();
    for attempt in 1..=5 {
        let sender = client
            .update(&sid, &submit_code(&wrong(&code)))
            .await
            .unwrap();
        assert_eq!(
            sender.status,
            SenderStatus::PendingVerification,
            "attempt {attempt}"
        );
    }
    let err = client.update(&sid, &submit_code(&code)).await.unwrap_err();
    assert_eq!(code_of(&err), 63114);
    assert_eq!(err.class(), ErrorClass::NeedsUser);
    assert!(
        err.advice().to_lowercase().contains("wait"),
        "{}",
        err.advice()
    );
    // Not retried: one request for the refused submission.
    assert_eq!(
        sim.count("POST", "/v2/Channels/Senders/{Sid}", 400).await,
        1
    );
}

#[tokio::test]
async fn the_display_name_cannot_change_but_webhooks_and_profile_can() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    sim.number("+15005550008", "auto_verify").await;
    let sid = client
        .create(&create_request("+15005550008"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::Online).await;

    let rename = UpdateSenderRequest {
        profile: Some(Profile {
            name: Some("Acme Two".into()),
            ..Profile::default()
        }),
        ..UpdateSenderRequest::default()
    };
    let err = client.update(&sid, &rename).await.unwrap_err();
    assert_eq!(code_of(&err), 63100);
    assert_eq!(err.class(), ErrorClass::NeedsUser);

    let change = UpdateSenderRequest {
        webhook: Some(Webhook {
            callback_url: Some("https://hooks.example.com/v2/in".into()),
            callback_method: Some(WebhookMethod::Put),
            ..Webhook::default()
        }),
        profile: Some(Profile {
            about: Some("Now with more help".into()),
            ..Profile::default()
        }),
        ..UpdateSenderRequest::default()
    };
    let updating = client.update(&sid, &change).await.unwrap();
    assert_eq!(updating.status, SenderStatus::OnlineUpdating);
    let online = wait_for_status(&client, &sid, SenderStatus::Online).await;
    let webhook = online.webhook.expect("webhook");
    assert_eq!(
        webhook.callback_url.as_deref(),
        Some("https://hooks.example.com/v2/in")
    );
    assert_eq!(webhook.callback_method.as_deref(), Some("PUT"));
    let profile = online.profile.expect("profile");
    assert_eq!(profile.about.as_deref(), Some("Now with more help"));
    assert_eq!(profile.name.as_deref(), Some("Acme"));
}

#[tokio::test]
async fn quality_and_limit_changes_on_metas_side_are_visible() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    sim.number("+15005550009", "auto_verify").await;
    let sid = client
        .create(&create_request("+15005550009"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::Online).await;

    sim.patch_sender(
        &sid,
        json!({"quality_rating": "LOW", "messaging_limit": "10K Customers/24hr"}),
    )
    .await;
    let properties = client.fetch(&sid).await.unwrap().properties.unwrap();
    assert_eq!(properties.quality_rating.as_deref(), Some("LOW"));
    assert_eq!(
        properties.messaging_limit.as_deref(),
        Some("10K Customers/24hr")
    );

    sim.patch_sender(
        &sid,
        json!({"status": "OFFLINE", "offline_reasons": [{"code": "63116", "message": "OTP not received", "more_info": "https://www.twilio.com/docs/errors/63116"}]}),
    )
    .await;
    let offline = client.fetch(&sid).await.unwrap();
    assert_eq!(offline.status, SenderStatus::Offline);
    assert_eq!(offline.offline_reasons[0].code.as_deref(), Some("63116"));
}

#[tokio::test]
async fn listing_follows_every_page_and_finds_a_number() {
    let sim = Sim::start().await;
    let client = sim.client_a(); // page size 2
    let mut sids = Vec::new();
    for i in 0..5 {
        sids.push(
            client
                .create(&create_request(&format!("+1500555010{i}")))
                .await
                .unwrap()
                .sid,
        );
    }
    let other = sim.client(Credentials::auth_token(ACCOUNT_B, TOKEN_B));
    other.create(&create_request("+15005550199")).await.unwrap();

    let listed: Vec<String> = client
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(
        listed, sids,
        "all of account A's senders, in order, none of B's"
    );
    assert_eq!(
        sim.count("GET", "/v2/Channels/Senders", 200).await,
        3,
        "three pages of two"
    );

    let found = client
        .find_by_sender_id("whatsapp:+15005550103")
        .await
        .unwrap();
    assert_eq!(found.map(|s| s.sid), Some(sids[3].clone()));
    assert!(
        client
            .find_by_sender_id("whatsapp:+15005550199")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn delete_removes_the_sender_and_a_second_delete_is_not_found() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    let sid = client
        .create(&create_request("+15005550010"))
        .await
        .unwrap()
        .sid;
    client.delete(&sid).await.unwrap();
    let err = client.fetch(&sid).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert!(client.delete(&sid).await.unwrap_err().is_not_found());
    assert!(sim.all_senders().await.is_empty());
}

#[tokio::test]
async fn credentials_are_checked_and_accounts_are_isolated() {
    let sim = Sim::start().await;
    let sid = sim
        .client_a()
        .create(&create_request("+15005550011"))
        .await
        .unwrap()
        .sid;

    let bad = sim.client(Credentials::auth_token(ACCOUNT_A, "not-the-token"));
    let err = bad.fetch(&sid).await.unwrap_err();
    assert_eq!(code_of(&err), 20003);
    assert_eq!(err.class(), ErrorClass::NeedsUser);
    assert!(!err.to_string().contains("not-the-token") && !err.advice().contains("not-the-token"));

    let with_key = sim.client(Credentials::api_key(ACCOUNT_A, KEY_A, KEY_SECRET_A));
    assert_eq!(with_key.fetch(&sid).await.unwrap().sid, sid);

    let other = sim.client(Credentials::auth_token(ACCOUNT_B, TOKEN_B));
    assert!(other.fetch(&sid).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_through() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    let sid = client
        .create(&create_request("+15005550012"))
        .await
        .unwrap()
        .sid;

    // Every request fails until the outage ends; the fetch started during it retries through.
    sim.faults(json!({"error_rate": 1.0})).await;
    let fetch = tokio::spawn({
        let client = client.clone();
        let sid = sid.clone();
        async move { client.fetch(&sid).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    sim.faults(json!({})).await;
    assert_eq!(
        fetch.await.unwrap().expect("retried past the outage").sid,
        sid
    );
    let failed = sim.count("GET", "/v2/Channels/Senders/{Sid}", 500).await
        + sim.count("GET", "/v2/Channels/Senders/{Sid}", 503).await;
    assert!(
        failed >= 2,
        "the outage answered several attempts with 500/503 ({failed})"
    );

    sim.faults(json!({"rate_limit_per_second": 2})).await;
    let began = Instant::now();
    for _ in 0..6 {
        client.fetch(&sid).await.unwrap();
    }
    assert!(sim.count("GET", "/v2/Channels/Senders/{Sid}", 429).await > 0);
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "429s were waited out (Retry-After: 1), not hammered"
    );
}
