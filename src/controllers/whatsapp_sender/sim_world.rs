//! For unit tests: twilio-sim in-process with one account, and a client of it.

use std::time::Duration;

use serde_json::Value;
use twilio_sim::{Account, SimConfig};

use crate::twilio::{
    ClientConfig, CreateSenderRequest, Credentials, FieldUpdate, Hosts, Product, Profile,
    RequestBudget, Sender, TwilioClient, sender_id_for,
};

pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

pub struct World {
    pub sim: twilio_sim::SimHandle,
    pub client: TwilioClient,
}

impl World {
    /// Lists come two senders per page, so that paging shows.
    pub async fn start() -> World {
        let sim = twilio_sim::spawn(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig {
                accounts: vec![Account::parse(&format!("{ACCOUNT}:token")).unwrap()],
                step_delay: Duration::from_millis(20),
                ..SimConfig::default()
            },
        )
        .await
        .unwrap();
        let config = ClientConfig {
            hosts: Hosts::default().with(Product::Messaging, &sim.base_url()),
            list_page_size: 2,
            ..ClientConfig::default()
        };
        let client = TwilioClient::new(
            Credentials::auth_token(ACCOUNT, "token"),
            &config,
            RequestBudget::new(config.budget),
        )
        .unwrap();
        World { sim, client }
    }

    /// Registers `phone` as another tool (or a person) would.
    pub async fn register(&self, phone: &str) -> Sender {
        self.client
            .create(&CreateSenderRequest {
                sender_id: sender_id_for(phone),
                profile: Some(Profile {
                    name: FieldUpdate::Set("Acme".into()),
                    ..Profile::default()
                }),
                ..CreateSenderRequest::default()
            })
            .await
            .unwrap()
    }

    /// List requests (pages) the simulator answered.
    pub async fn list_requests(&self) -> u64 {
        let stats: Value = reqwest::get(format!("{}/_sim/stats", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "GET" && r["route"] == "/v2/Channels/Senders")
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    }
}
