//! `senderops export` lists an account's senders as manifests; applied with the real kubectl,
//! the operator adopts every one: no create, no update, each Ready.

use std::process::Command;

use senderops::twilio::{
    CreateSenderRequest, FieldUpdate, Profile, SenderStatus, Vertical, Webhook, WebhookMethod,
    sender_id_for,
};

use crate::support::operator::Fixture;
use crate::support::sim::{TOKEN_A, wait_for_status};

const NUMBERS: [&str; 3] = ["+15005550001", "+15005550002", "+15005550003"];

#[tokio::test]
async fn exported_senders_are_adopted_without_a_create() {
    let f = Fixture::new("export").await;
    let client = f.sim.client_a();
    for (i, phone) in NUMBERS.iter().enumerate() {
        f.sim.number(phone, "auto_verify").await;
        let mut request = CreateSenderRequest {
            sender_id: sender_id_for(phone),
            profile: Some(Profile {
                name: FieldUpdate::Set(format!("Acme {i}")),
                ..Profile::default()
            }),
            ..CreateSenderRequest::default()
        };
        if i == 0 {
            let profile = request.profile.as_mut().unwrap();
            profile.about = FieldUpdate::Set("Registered by hand".into());
            profile.vertical = FieldUpdate::Set(Vertical::Education);
            profile.emails = FieldUpdate::Set(vec!["help@acme.example.com".into()]);
            request.webhook = Some(Webhook {
                callback_url: FieldUpdate::Set("https://hooks.acme.example.com/in".into()),
                callback_method: FieldUpdate::Set(WebhookMethod::Put),
                ..Webhook::default()
            });
        }
        let sender = client.create(&request).await.expect("register by hand");
        wait_for_status(&client, &sender.sid, SenderStatus::Online).await;
    }

    let output = f.sim.export_a().await;
    let yaml = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("exported 3 of 3 senders"), "{stderr}");
    assert!(!stderr.contains(TOKEN_A) && !yaml.contains(TOKEN_A));
    assert_eq!(yaml.matches("deletionPolicy: Orphan").count(), 3, "{yaml}");

    f.plane
        .kubectl()
        .args(["apply", "-n", &f.ns, "-f", "-"])
        .stdin(yaml.clone())
        .run()
        .expect_success("apply the exported manifests");
    for phone in NUMBERS {
        let name = senderops::export::object_name(phone);
        f.wait_ready(&name).await;
        f.wait_event(&name, "Adopted").await;
        assert_eq!(f.sim_sender(phone).await["create_requests"], 1);
        let events = f.events(&name).await;
        assert!(
            !events.iter().any(|(_, r, _)| r == "Created"),
            "{name}: {events:?}"
        );
    }
    // Every create attempt, refused ones included: a create the operator sent for an exported
    // number would be refused (63110) and the sender adopted all the same.
    for phone in NUMBERS {
        assert_eq!(
            f.sim.create_attempts(phone).await,
            1,
            "{phone}: only the create by hand"
        );
    }
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders", 202).await,
        3,
        "only the hand-made creates"
    );
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders/{Sid}", 202).await,
        0,
        "the manifests match Twilio: nothing to update"
    );
}

#[test]
fn export_without_credentials_says_what_to_set() {
    let output = Command::new(env!("CARGO_BIN_EXE_senderops"))
        .args(["export", "--twilio-api-url", "http://127.0.0.1:9"])
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .output()
        .expect("run senderops export");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TWILIO_ACCOUNT_SID"), "{stderr}");
}
