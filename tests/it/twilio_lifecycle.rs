//! The operator's Twilio client against the simulator, over HTTP, through every lifecycle path
//! the simulator models.

use std::time::{Duration, Instant};

use senderops::twilio::{
    BudgetConfig, CreateSenderRequest, Credentials, ErrorClass, FieldUpdate, Profile,
    RequestBudget, SenderStatus, TwilioClient, UpdateSenderRequest, VerificationCode, Vertical,
    Webhook, WebhookMethod, sender_id_for,
};
use serde_json::{Value, json};
use twilio_sim::{Account, SimConfig, SimHandle};

use crate::support::sim::*;
use crate::support::wait::Wait;

fn create_request(phone: &str) -> CreateSenderRequest {
    CreateSenderRequest {
        sender_id: sender_id_for(phone),
        configuration: None,
        webhook: Some(Webhook {
            callback_url: FieldUpdate::Set("https://hooks.example.com/in".into()),
            callback_method: FieldUpdate::Set(WebhookMethod::Post),
            ..Webhook::default()
        }),
        profile: Some(Profile {
            name: FieldUpdate::Set("Acme".into()),
            vertical: FieldUpdate::Set(Vertical::Other),
            emails: FieldUpdate::Set(vec!["help@acme.example.com".into()]),
            websites: FieldUpdate::Set(vec!["https://acme.example.com".into()]),
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

/// A simulator with settings `Sim::start` does not use (`tweak` gets account A added), and the
/// operator's client for account A.
struct TunedSim {
    handle: SimHandle,
    client: TwilioClient,
    http: reqwest::Client,
}

impl TunedSim {
    async fn start(tweak: SimConfig) -> TunedSim {
        let config = SimConfig {
            accounts: vec![Account::parse(&format!("{ACCOUNT_A}:{TOKEN_A}")).unwrap()],
            step_delay: STEP,
            ..tweak
        };
        let handle = twilio_sim::spawn("127.0.0.1:0".parse().unwrap(), config)
            .await
            .expect("start the simulator");
        let budget = RequestBudget::new(BudgetConfig::default());
        let client = TwilioClient::new(
            Credentials::auth_token(ACCOUNT_A, TOKEN_A),
            &Sim::client_config(&handle.base_url()),
            budget,
        )
        .expect("build the Twilio client");
        TunedSim {
            handle,
            client,
            http: reqwest::Client::new(),
        }
    }

    async fn control(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.handle.base_url()))
            .send()
            .await
            .expect("reach the control API");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn otp(&self, sid: &str) -> String {
        let (status, body) = self.control(&format!("/_sim/senders/{sid}/otp")).await;
        assert_eq!(status, 200, "read the OTP of {sid}: {body}");
        body["code"].as_str().expect("a code").to_string()
    }

    /// What the simulator knows of the sender (counters included).
    async fn view(&self, sid: &str) -> Value {
        let (status, body) = self.control(&format!("/_sim/senders/{sid}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Every create sent for `phone`, whatever its answer.
    async fn create_attempts(&self, phone: &str) -> u64 {
        let (_, body) = self.control("/_sim/stats").await;
        create_attempts_in(&body, phone)
    }

    /// How many requests of `method` to `route` got `status`.
    async fn count(&self, method: &str, route: &str, status: u16) -> u64 {
        let (_, body) = self.control("/_sim/stats").await;
        body["requests"]
            .as_array()
            .unwrap_or_else(|| panic!("stats: {body}"))
            .iter()
            .filter(|r| r["method"] == method && r["route"] == route && r["status"] == status)
            .map(|r| r["count"].as_u64().unwrap_or(0))
            .sum()
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

    // Any code is answered VERIFYING; a wrong one is rejected only later, on a read.
    let rejected = client
        .update(&sid, &submit_code(&wrong(&code)))
        .await
        .unwrap();
    assert_eq!(rejected.status, SenderStatus::Verifying);
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;

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
    let mut creates = 1;
    for _ in 0..3 {
        creates += 1;
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
    assert_eq!(stale.status, SenderStatus::Verifying);
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    client.update(&sid, &submit_code(&second)).await.unwrap();
    wait_for_status(&client, &sid, SenderStatus::Online).await;
    let all = sim.all_senders().await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        (&all[0]["create_requests"], &all[0]["wrong_codes"]),
        (&json!(creates), &json!(1)),
        "every create was one request, and the old code was wrong: {}",
        all[0]
    );
    assert_eq!(
        sim.create_attempts("+15005550003").await,
        creates,
        "no create was sent twice"
    );
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
async fn wrong_codes_are_never_refused() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    let sid = client
        .create(&create_request("+15005550007"))
        .await
        .unwrap()
        .sid;
    wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    let code = sim.otp(&sid).await.unwrap();
    for attempt in 1..=6 {
        let sender = client
            .update(&sid, &submit_code(&wrong(&code)))
            .await
            .unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        assert_eq!(sender.status, SenderStatus::Verifying, "attempt {attempt}");
        wait_for_status(&client, &sid, SenderStatus::PendingVerification).await;
    }
    client.update(&sid, &submit_code(&code)).await.unwrap();
    wait_for_status(&client, &sid, SenderStatus::Online).await;
    assert_eq!(
        sim.count("POST", "/v2/Channels/Senders/{Sid}", 400).await,
        0
    );
}

/// Short, but long enough that the request right after the lockout starts still sees it.
const CODE_LOCKOUT: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn the_sixth_code_request_gets_63114_until_the_lockout_lifts() {
    let sim = TunedSim::start(SimConfig {
        code_lockout: CODE_LOCKOUT,
        ..SimConfig::default()
    })
    .await;
    let client = &sim.client;
    let request = create_request("+15005550013");
    let sid = client.create(&request).await.unwrap().sid;
    wait_for_status(client, &sid, SenderStatus::PendingVerification).await;
    // The first code came with the create; four more requests make five.
    for send in 2..=5 {
        let again = client
            .create(&request)
            .await
            .unwrap_or_else(|e| panic!("code request {send}: {e}"));
        assert_eq!(again.sid, sid);
    }

    let locking = Instant::now();
    let err = client.create(&request).await.unwrap_err();
    assert_eq!(code_of(&err), 63114);
    assert_eq!(err.class(), ErrorClass::NeedsUser);
    assert!(
        err.advice().to_lowercase().contains("wait"),
        "{}",
        err.advice()
    );
    // Not retried: one request for the refused create.
    assert_eq!(sim.count("POST", "/v2/Channels/Senders", 400).await, 1);
    assert_eq!(
        sim.create_attempts("+15005550013").await,
        6,
        "five code requests and the refused sixth, each sent once"
    );
    let view = sim.view(&sid).await;
    assert_eq!(view["create_requests"], 5, "{view}");
    assert!(view["lockout_remaining_ms"].is_u64(), "locked: {view}");

    // Once the lockout lifts the next request sends a new code, for the same sender.
    let lifted = Wait::until("the lockout to lift")
        .within(CODE_LOCKOUT + Duration::from_secs(10))
        .every(STEP)
        .poll_ok(async || match client.create(&request).await {
            Ok(sender) => Ok(sender),
            Err(err) => {
                assert_eq!(code_of(&err), 63114, "{err}");
                Err(err)
            }
        })
        .await;
    assert!(
        locking.elapsed() >= CODE_LOCKOUT,
        "lifted after {:?}, before the lockout of {CODE_LOCKOUT:?}",
        locking.elapsed()
    );
    assert_eq!(lifted.sid, sid);
    let view = sim.view(&sid).await;
    assert_eq!(
        (&view["create_requests"], &view["codes_sent"]),
        (&json!(6), &json!(6)),
        "{view}"
    );
    let code = sim.otp(&sid).await;
    client.update(&sid, &submit_code(&code)).await.unwrap();
    wait_for_status(client, &sid, SenderStatus::Online).await;
}

#[tokio::test]
async fn a_new_sender_may_read_offline_without_reasons_before_online() {
    // Wide enough that polling sees OFFLINE on a busy machine too.
    let sim = TunedSim::start(SimConfig {
        offline_steps: 20,
        ..SimConfig::default()
    })
    .await;
    let client = &sim.client;
    let (status, body) = {
        let response = sim
            .http
            .post(format!("{}/_sim/numbers", sim.handle.base_url()))
            .json(
                &json!({"phone_number": "+15005550014", "behavior": "offline_after_registration"}),
            )
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 200, "{body}");
    let sid = client
        .create(&create_request("+15005550014"))
        .await
        .unwrap()
        .sid;
    let offline = wait_for_status(client, &sid, SenderStatus::Offline).await;
    assert!(
        offline.offline_reasons.is_empty(),
        "{:?}",
        offline.offline_reasons
    );
    wait_for_status(client, &sid, SenderStatus::Online).await;
}

#[tokio::test]
async fn numbers_meta_refuses_fail_the_create_with_their_code() {
    let sim = Sim::start().await;
    let client = sim.client_a();
    for (number, behavior, code) in [
        ("+15005550015", "waba_full", 63104),
        ("+15005550016", "number_not_found", 63111),
        ("+15005550017", "cannot_verify", 63113),
        ("+15005550018", "code_not_received", 63116),
    ] {
        sim.number(number, behavior).await;
        let err = client.create(&create_request(number)).await.unwrap_err();
        assert_eq!(code_of(&err), code, "{behavior}: {err}");
        assert_eq!(err.class(), ErrorClass::NeedsUser, "{behavior}: {err}");
    }
    assert!(sim.all_senders().await.is_empty(), "nothing was created");
    assert_eq!(
        sim.count("POST", "/v2/Channels/Senders", 400).await,
        4,
        "none was retried"
    );
    for number in [
        "+15005550015",
        "+15005550016",
        "+15005550017",
        "+15005550018",
    ] {
        assert_eq!(
            sim.create_attempts(number).await,
            1,
            "{number}: the refused create was not retried"
        );
    }
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
            name: FieldUpdate::Set("Acme Two".into()),
            ..Profile::default()
        }),
        ..UpdateSenderRequest::default()
    };
    let err = client.update(&sid, &rename).await.unwrap_err();
    assert_eq!(code_of(&err), 63100);
    assert_eq!(err.class(), ErrorClass::NeedsUser);

    let change = UpdateSenderRequest {
        webhook: Some(Webhook {
            callback_url: FieldUpdate::Set("https://hooks.example.com/v2/in".into()),
            callback_method: FieldUpdate::Set(WebhookMethod::Put),
            ..Webhook::default()
        }),
        profile: Some(Profile {
            about: FieldUpdate::Set("Now with more help".into()),
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
