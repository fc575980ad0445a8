//! One number per account registers at a time (`--serial-onboarding`, on by default), as Twilio
//! advises for bulk registration: seen at Twilio, from when each registration's create arrived
//! to when its sender left CREATING, PENDING_VERIFICATION and VERIFYING. The senders have
//! distinct display names, so the display name check holds none of them back: only serial
//! onboarding orders them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::operator::{Fixture, spec};
use crate::support::sim::{ACCOUNT_A, ACCOUNT_B, Sim, TOKEN_B};

/// Each registration spends this long in CREATING: ten times the simulator's usual step, so
/// that registrations started together overlap by far more than the clocks' resolution.
const STEP: Duration = Duration::from_millis(500);

const PER_ACCOUNT: usize = 3;

/// One registration at Twilio, in Unix ms.
#[derive(Debug)]
struct Registration {
    phone: String,
    created: u64,
    left_onboarding: u64,
}

impl Registration {
    fn overlaps(&self, other: &Registration) -> bool {
        self.created < other.left_onboarding && other.created < self.left_onboarding
    }
}

#[tokio::test]
async fn registrations_in_one_account_never_overlap_at_twilio_while_two_accounts_register_at_once()
{
    let sim = Sim::start_with(|config| config.step_delay = STEP).await;
    let f = Fixture::with_sim("serial-onboarding", sim, &[]).await;
    f.secret(
        "twilio-b",
        &[("accountSid", ACCOUNT_B), ("authToken", TOKEN_B)],
    )
    .await;
    let mut names = Vec::new();
    for (account, credentials) in [("a", "twilio"), ("b", "twilio-b")] {
        for i in 0..PER_ACCOUNT {
            let phone = format!("+1500555{}8{i:02}", if account == "a" { 1 } else { 2 });
            let name = format!("{account}-{i}");
            f.sim.number(&phone, "auto_verify").await;
            f.apply(
                &name,
                spec(
                    &phone,
                    json!({
                        "credentialsRef": {"name": credentials},
                        "profile": {"name": format!("Acme {account} {i}")},
                    }),
                ),
            )
            .await;
            names.push(name);
        }
    }
    for name in &names {
        f.wait_ready(name).await;
    }

    let senders = f.sim.all_senders().await;
    let registrations = |account: &str| -> Vec<Registration> {
        let mut of_account: Vec<Registration> = senders
            .iter()
            .filter(|s| s["account_sid"] == account)
            .map(registration)
            .collect();
        of_account.sort_by_key(|r| r.created);
        of_account
    };
    let a = registrations(ACCOUNT_A);
    let b = registrations(ACCOUNT_B);
    eprintln!("registrations at Twilio, in Unix ms: A {a:?}, B {b:?}");
    assert_eq!(
        (a.len(), b.len()),
        (PER_ACCOUNT, PER_ACCOUNT),
        "{senders:#?}"
    );
    for (account, registrations) in [(ACCOUNT_A, &a), (ACCOUNT_B, &b)] {
        for pair in registrations.windows(2) {
            let (first, next) = (&pair[0], &pair[1]);
            assert!(
                next.created >= first.left_onboarding,
                "two registrations of account {account} overlapped at Twilio: {} was created \
                 {} ms before {} left onboarding; all of the account's: {registrations:#?}",
                next.phone,
                first.left_onboarding - next.created,
                first.phone,
            );
        }
    }
    // Serial per account, not across them: the two accounts' first registrations start
    // together, so some registrations of the two overlap.
    assert!(
        a.iter().any(|ra| b.iter().any(|rb| ra.overlaps(rb))),
        "no registration of account A overlapped one of account B: serial onboarding held \
         back another account's registration. A: {a:#?} B: {b:#?}"
    );
}

fn registration(sender: &Value) -> Registration {
    let phone = sender["sender_id"].as_str().unwrap_or("?").to_string();
    assert_eq!(
        sender["create_requests"], 1,
        "{phone} was registered once: {sender:#}"
    );
    Registration {
        created: sender["created_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("created_ms of {phone}: {sender:#}")),
        left_onboarding: sender["left_onboarding_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{phone} has left onboarding: {sender:#}")),
        phone,
    }
}
