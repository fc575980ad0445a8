//! A Secret's `accountSid` is believed only once Twilio confirms it. An API key authenticates
//! by its own SID, and the Senders API acts for the key's account whatever `accountSid` says,
//! while every cache the operator shares per account (lists, the Error Log, onboarding turns)
//! is keyed by the account. So each credentials Secret version is checked once with a read
//! under the named account's path (`GET /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`):
//! a 401 stalls the sender (`InvalidCredentials`); another refusal (a restricted key) leaves the
//! account unconfirmed, and those credentials get caches of their own.

use serde_json::{Value, json};
use twilio_sim::ApiKey;

use crate::support::operator::{Fixture, condition, register_by_hand, sid_of, spec};
use crate::support::sim::{ACCOUNT_A, ACCOUNT_B, Sim, requests_in};

const VERIFY_ROUTE: &str = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json";
const LIST_ROUTE: &str = "/v2/Channels/Senders";

/// An API key of account B.
const KEY_B: &str = "SKfedcba9876543210fedcba9876543210";
const KEY_SECRET_B: &str = "sim-key-secret-b";
/// A key of account A that may not read api v2010 (the simulator's `restricted_api_keys`).
const RESTRICTED_KEY_A: &str = "SK00000000000000000000000000000a0a";
const RESTRICTED_SECRET_A: &str = "sim-restricted-secret-a";

async fn sim_with_more_keys() -> Sim {
    Sim::start_with(|config| {
        for account in &mut config.accounts {
            if account.account_sid == ACCOUNT_B {
                account.api_keys.push(ApiKey {
                    sid: KEY_B.into(),
                    secret: KEY_SECRET_B.into(),
                });
            }
            if account.account_sid == ACCOUNT_A {
                account.api_keys.push(ApiKey {
                    sid: RESTRICTED_KEY_A.into(),
                    secret: RESTRICTED_SECRET_A.into(),
                });
            }
        }
        config.restricted_api_keys = vec![RESTRICTED_KEY_A.into()];
    })
    .await
}

fn requests(stats: &Value, method: &str, route: &str) -> u64 {
    requests_in(stats, |r| r["method"] == method && r["route"] == route)
}

#[tokio::test]
async fn another_accounts_key_under_this_accounts_sid_stalls_and_sees_nothing_of_it() {
    const PHONE: &str = "+15550600001";
    let f = Fixture::with_sim("verify-foreign", sim_with_more_keys().await, &[]).await;
    f.sim.number(PHONE, "auto_verify").await;
    // The victim's sender, Ready, listed moments ago by its own object.
    f.apply("victim", spec(PHONE, json!({}))).await;
    let sid = sid_of(&f.wait_ready("victim").await);

    // The tenant's Secret: its own key (account B's), the victim's account SID.
    f.secret(
        "tenant",
        &[
            ("accountSid", ACCOUNT_A),
            ("apiKeySid", KEY_B),
            ("apiKeySecret", KEY_SECRET_B),
        ],
    )
    .await;
    let before = f.sim.stats().await;
    f.apply(
        "tenant",
        spec(PHONE, json!({"credentialsRef": {"name": "tenant"}})),
    )
    .await;
    let tenant = f
        .wait_condition("tenant", "Stalled", "True", "InvalidCredentials")
        .await;
    let message = condition(&tenant, "Stalled").unwrap().message;
    assert!(
        message.contains("Secret tenant")
            && message.contains(ACCOUNT_A)
            && message.contains("20003"),
        "{message}"
    );
    assert!(!message.contains(KEY_SECRET_B), "{message}");
    let status = tenant.status.clone().unwrap_or_default();
    assert_eq!(
        (status.sid, status.twilio_status),
        (None, None),
        "nothing of the victim's sender is mirrored"
    );
    let after = f.sim.stats().await;
    assert_eq!(
        requests(&after, "GET", VERIFY_ROUTE) - requests(&before, "GET", VERIFY_ROUTE),
        1,
        "one check of the tenant's Secret"
    );
    assert_eq!(
        requests_in(&after, |r| r["route"] != VERIFY_ROUTE)
            - requests_in(&before, |r| r["route"] != VERIFY_ROUTE),
        0,
        "no other request for the tenant"
    );
    assert_eq!(f.sim.sender(&sid).await["status"], "ONLINE");
}

#[tokio::test]
async fn a_restricted_key_works_but_shares_no_list_and_says_its_account_is_unconfirmed() {
    const BY_HAND: &str = "+15550600002";
    const LISTED_FIRST: &str = "+15550600003";
    let f = Fixture::with_sim("verify-restricted", sim_with_more_keys().await, &[]).await;
    for phone in [BY_HAND, LISTED_FIRST] {
        f.sim.number(phone, "auto_verify").await;
    }
    let by_hand = register_by_hand(&f.sim.client_a(), BY_HAND, "Acme").await;
    // A sender with confirmed credentials lists account A (the list holds BY_HAND).
    f.apply("confirmed", spec(LISTED_FIRST, json!({}))).await;
    f.wait_ready("confirmed").await;

    f.secret(
        "restricted",
        &[
            ("accountSid", ACCOUNT_A),
            ("apiKeySid", RESTRICTED_KEY_A),
            ("apiKeySecret", RESTRICTED_SECRET_A),
        ],
    )
    .await;
    let before = f.sim.stats().await;
    f.apply(
        "restricted",
        spec(BY_HAND, json!({"credentialsRef": {"name": "restricted"}})),
    )
    .await;
    let adopted = f.wait_ready("restricted").await;
    assert_eq!(
        sid_of(&adopted),
        by_hand.sid,
        "it works: the number is adopted"
    );
    let after = f.sim.stats().await;
    assert_eq!(
        requests(&after, "GET", LIST_ROUTE) - requests(&before, "GET", LIST_ROUTE),
        1,
        "it listed with its own credentials instead of reading the confirmed sender's list"
    );
    assert_eq!(
        requests(&after, "GET", VERIFY_ROUTE) - requests(&before, "GET", VERIFY_ROUTE),
        1,
        "one check per Secret version, however many reconciles it took"
    );
    let unverified = condition(&adopted, "AccountVerified").expect("an AccountVerified condition");
    assert_eq!(
        (unverified.status.as_str(), unverified.reason.as_str()),
        ("False", "AccountUnverified")
    );
    assert!(
        unverified.message.contains("Secret restricted") && unverified.message.contains("20403"),
        "{}",
        unverified.message
    );
    f.wait_event("restricted", "AccountUnverified").await;
    let confirmed = f.get("confirmed").await.unwrap();
    assert!(
        condition(&confirmed, "AccountVerified").is_none(),
        "confirmed credentials carry no such condition"
    );
}
