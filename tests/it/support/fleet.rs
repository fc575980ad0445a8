//! A fleet of senders for fault and load tests: numbers over two accounts, every other one
//! waiting for a code that a stand-in user writes as soon as the simulator "sends" it; and the
//! checks such tests end with: every number registered exactly once, nothing left behind.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::operator::{Fixture, condition, spec};
use super::sim::{ACCOUNT_A, ACCOUNT_B, TOKEN_B, create_attempts_in, requests_in};
use super::wait::Wait;

/// How many senders a fleet test runs.
pub const FLEET: usize = 20;

/// How long a fleet may take to become Ready, faults included.
pub const ONBOARDING_DEADLINE: Duration = Duration::from_secs(150);

pub struct Member {
    pub name: String,
    pub phone: String,
    /// Needs a one-time code (in Secret `NAME-otp`, key `code`).
    pub coded: bool,
    /// The credentials Secret: `twilio` (account A) or `twilio-b` (account B).
    pub credentials: &'static str,
}

impl Member {
    pub fn account(&self) -> &'static str {
        if self.credentials == "twilio" {
            ACCOUNT_A
        } else {
            ACCOUNT_B
        }
    }

    pub fn code_secret(&self) -> String {
        format!("{}-otp", self.name)
    }

    pub fn spec(&self) -> Value {
        let mut extra = json!({"credentialsRef": {"name": self.credentials}});
        if self.coded {
            extra["verification"] =
                json!({"codeSecretRef": {"name": self.code_secret(), "key": "code"}});
        }
        spec(&self.phone, extra)
    }
}

/// `count` senders named `PREFIX-NN`: the first half in account A, the rest in account B, every
/// odd one needing a code.
pub fn fleet(prefix: &str, count: usize) -> Vec<Member> {
    (0..count)
        .map(|i| Member {
            name: format!("{prefix}-{i:02}"),
            phone: format!("+1500555{i:04}"),
            coded: i % 2 == 1,
            credentials: if i < count / 2 { "twilio" } else { "twilio-b" },
        })
        .collect()
}

/// Creates the second account's Secret and tells the simulator how each number verifies.
pub async fn prepare_fleet(f: &Fixture, fleet: &[Member]) {
    f.secret(
        "twilio-b",
        &[("accountSid", ACCOUNT_B), ("authToken", TOKEN_B)],
    )
    .await;
    for member in fleet {
        let behavior = if member.coded {
            "needs_code"
        } else {
            "auto_verify"
        };
        f.sim.number(&member.phone, behavior).await;
    }
}

/// [`prepare_fleet`], then applies every sender.
pub async fn apply_fleet(f: &Fixture, fleet: &[Member]) {
    prepare_fleet(f, fleet).await;
    for member in fleet {
        f.apply(&member.name, member.spec()).await;
    }
}

/// Plays the person who receives the codes: writes each one into its Secret once.
#[derive(Default)]
pub struct StandInUser {
    written: BTreeSet<String>,
    /// Members whose code is not written until [`StandInUser::release`]: work that is
    /// certainly left, so that a disruption is sure to fall during onboarding.
    withheld: BTreeSet<String>,
}

/// The fleet's last member that needs a code: the one to withhold so that onboarding cannot
/// end before the test says.
pub fn last_coded(fleet: &[Member]) -> &Member {
    fleet
        .iter()
        .rev()
        .find(|m| m.coded)
        .expect("a fleet with a coded member")
}

impl StandInUser {
    /// A user who does not write `member`'s code until [`StandInUser::release`]: that member
    /// cannot be Ready before then.
    pub fn withholding(member: &Member) -> StandInUser {
        assert!(member.coded, "{} needs no code to withhold", member.name);
        StandInUser {
            withheld: BTreeSet::from([member.name.clone()]),
            ..StandInUser::default()
        }
    }

    /// Writes withheld codes from now on.
    pub fn release(&mut self) {
        self.withheld.clear();
    }

    /// Writes the code of every coded member the simulator has sent one to, once each.
    pub async fn play(&mut self, f: &Fixture, fleet: &[Member]) {
        for sender in f.sim.all_senders().await {
            if sender["status"] != "PENDING_VERIFICATION" {
                continue;
            }
            let Some(member) = fleet
                .iter()
                .find(|m| m.coded && sender["sender_id"] == format!("whatsapp:{}", m.phone))
            else {
                continue;
            };
            if self.written.contains(&member.name) || self.withheld.contains(&member.name) {
                continue;
            }
            let sid = sender["sid"].as_str().expect("a SID");
            if let Some(code) = f.sim.otp(sid).await {
                f.secret(&member.code_secret(), &[("code", &code)]).await;
                self.written.insert(member.name.clone());
            }
        }
    }
}

/// The members not Ready yet, with their Ready condition (or why there is none).
pub async fn not_ready(f: &Fixture, fleet: &[Member]) -> Vec<String> {
    let mut waiting = Vec::new();
    for member in fleet {
        let sender = f.get(&member.name).await;
        let ready = sender.as_ref().and_then(|s| condition(s, "Ready"));
        match ready {
            Some(c) if c.status == "True" => {}
            Some(c) => waiting.push(format!("{}: {} {}", member.name, c.reason, c.message)),
            None if sender.is_none() => waiting.push(format!("{}: (object gone)", member.name)),
            None => waiting.push(format!("{}: (no Ready condition)", member.name)),
        }
    }
    waiting
}

/// Plays the user until every member is Ready; returns how long that took.
pub async fn onboard(f: &Fixture, fleet: &[Member], user: &mut StandInUser) -> Duration {
    let started = Instant::now();
    Wait::until(format!("all {} senders to be Ready", fleet.len()))
        .within(ONBOARDING_DEADLINE)
        .every(Duration::from_millis(50))
        .context(|| format!("operator log:\n{}", f.operator.log_tail(40)))
        .poll_ok(async || {
            user.play(f, fleet).await;
            waiting_for_ready(f, fleet).await
        })
        .await;
    started.elapsed()
}

/// `Ok` once every member is Ready, else which are not and why (for [`Wait`]).
pub async fn waiting_for_ready(f: &Fixture, fleet: &[Member]) -> Result<(), String> {
    let waiting = not_ready(f, fleet).await;
    if waiting.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} not Ready:\n{}",
            waiting.len(),
            fleet.len(),
            waiting.join("\n")
        ))
    }
}

/// Creates refused before Twilio handled them: rate limited (429) or failed by an injected
/// fault (500/503). They change nothing, so they are the only create attempts a fleet may make
/// beyond one per number.
pub fn unhandled_creates(stats: &Value) -> u64 {
    requests_in(stats, |r| {
        r["method"] == "POST"
            && r["route"] == "/v2/Channels/Senders"
            && matches!(r["status"].as_u64(), Some(429 | 500 | 503))
    })
}

/// Every number was sent exactly one create that Twilio handled, refused ones (63110 among
/// them) included: each number has at least one attempt, and the attempts beyond one per
/// number are exactly the creates refused before handling ([`unhandled_creates`]). A create
/// that was handled is needed to register a number, so no number can have had two. Returns
/// the attempts per number.
pub async fn assert_one_create_attempt_each(f: &Fixture, fleet: &[Member]) -> Vec<(String, u64)> {
    let stats = f.sim.stats().await;
    let attempts: Vec<(String, u64)> = fleet
        .iter()
        .map(|m| (m.phone.clone(), create_attempts_in(&stats, &m.phone)))
        .collect();
    let never = attempts.iter().filter(|(_, n)| *n == 0).collect::<Vec<_>>();
    assert!(never.is_empty(), "numbers never sent a create: {never:?}");
    let all: u64 = stats["create_attempts"]
        .as_object()
        .expect("stats have create_attempts")
        .values()
        .map(|n| n.as_u64().unwrap_or(0))
        .sum();
    let ours: u64 = attempts.iter().map(|(_, n)| n).sum();
    assert_eq!(
        all, ours,
        "creates for numbers outside the fleet: {}",
        stats["create_attempts"]
    );
    let unhandled = unhandled_creates(&stats);
    assert_eq!(
        ours - fleet.len() as u64,
        unhandled,
        "create attempts beyond one per number ({} for {} numbers) are not all creates refused \
         before Twilio handled them ({unhandled}): some number was sent a second create; per \
         number: {attempts:?}",
        ours,
        fleet.len()
    );
    attempts
}

/// Every member has exactly one sender at Twilio, in its own account, accepted by exactly one
/// create and sent no second create that Twilio handled ([`assert_one_create_attempt_each`]),
/// with at most one code sent; and its `status.sid` names that sender.
pub async fn assert_registered_once(f: &Fixture, fleet: &[Member]) {
    assert_one_create_attempt_each(f, fleet).await;
    let senders = f.sim.all_senders().await;
    assert_eq!(
        senders.len(),
        fleet.len(),
        "one Twilio sender per object: {senders:#?}"
    );
    for member in fleet {
        let sender_id = format!("whatsapp:{}", member.phone);
        let theirs: Vec<&Value> = senders
            .iter()
            .filter(|s| s["sender_id"] == sender_id)
            .collect();
        assert_eq!(theirs.len(), 1, "{}: {theirs:#?}", member.name);
        let twilio = theirs[0];
        assert_eq!(twilio["create_requests"], 1, "{}: {twilio}", member.name);
        assert!(
            twilio["codes_sent"].as_u64().unwrap_or(0) <= 1,
            "{}: a code was requested twice: {twilio}",
            member.name
        );
        assert_eq!(twilio["account_sid"], member.account(), "{}", member.name);
        let sid = f
            .get(&member.name)
            .await
            .and_then(|s| s.status)
            .and_then(|s| s.sid);
        assert_eq!(
            sid.as_deref(),
            twilio["sid"].as_str(),
            "{}: status.sid names the Twilio sender",
            member.name
        );
    }
}

pub async fn delete_fleet(f: &Fixture, fleet: &[Member]) {
    for member in fleet {
        f.delete(&member.name).await;
    }
}

/// Waits until no member is left in Kubernetes and the simulator holds no sender at all.
pub async fn wait_all_gone(f: &Fixture, fleet: &[Member], deadline: Duration) {
    Wait::until("every sender to be cleaned up in Kubernetes and at Twilio")
        .within(deadline)
        .context(|| format!("operator log:\n{}", f.operator.log_tail(40)))
        .poll_ok(async || {
            let mut left = Vec::new();
            for member in fleet {
                if let Some(sender) = f.get(&member.name).await {
                    let synced = condition(&sender, "Synced")
                        .map(|c| format!("{} {}", c.reason, c.message))
                        .unwrap_or_default();
                    left.push(format!("{}: {synced}", member.name));
                }
            }
            let at_twilio = f.sim.all_senders().await;
            if left.is_empty() && at_twilio.is_empty() {
                return Ok(());
            }
            Err(format!(
                "still in Kubernetes:\n{}\nstill at Twilio: {:?}",
                left.join("\n"),
                at_twilio
                    .iter()
                    .map(|s| s["sender_id"].as_str().unwrap_or("?"))
                    .collect::<Vec<_>>()
            ))
        })
        .await
}
