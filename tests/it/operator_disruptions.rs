//! The operator's world breaking around it: the operator killed at random moments while twenty
//! senders onboard, the API server restarted under a running operator, and deletions racing
//! creation, credentials and whole namespaces. Every object ends registered exactly once, or
//! gone from Kubernetes and from Twilio, or says in a condition what the user can do.
//!
//! Random moments come from a seed, printed at the start of each test that uses one; set
//! `SENDEROPS_FAULT_SEED` to replay its schedule.

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::support::controlplane;
use crate::support::fleet::{
    FLEET, Member, StandInUser, apply_fleet, assert_registered_once, delete_fleet, fleet,
    not_ready, onboard, prepare_fleet, wait_all_gone,
};
use crate::support::operator::{Fixture, condition, sid_of, spec, spec_with_code};
use crate::support::sim::Sim;
use crate::support::wait::Wait;

const CLEANUP_DEADLINE: Duration = Duration::from_secs(90);

/// A seeded random source for one test, its seed printed so that a failure can be replayed.
fn rng(test: &str) -> StdRng {
    let seed = std::env::var("SENDEROPS_FAULT_SEED")
        .ok()
        .map(|s| s.parse().expect("SENDEROPS_FAULT_SEED is a number"))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with SENDEROPS_FAULT_SEED={seed})");
    StdRng::seed_from_u64(seed)
}

/// Plays the user for `period`.
async fn play_for(f: &Fixture, fleet: &[Member], user: &mut StandInUser, period: Duration) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        user.play(f, fleet).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_operator_killed_five_times_while_twenty_senders_onboard_registers_each_once() {
    let mut rng = rng("crash");
    let mut f = Fixture::new("crash").await;
    let fleet = fleet("crash", FLEET);
    apply_fleet(&f, &fleet).await;
    let mut user = StandInUser::default();
    for kill in 1..=5 {
        let after = Duration::from_millis(rng.random_range(100..2500));
        play_for(&f, &fleet, &mut user, after).await;
        f.operator.kill();
        let ready = FLEET - not_ready(&f, &fleet).await.len();
        eprintln!("kill {kill}: SIGKILL after {after:?} ({ready} Ready), restarted");
        f.operator.restart();
    }
    let took = onboard(&f, &fleet, &mut user).await;
    eprintln!("all Ready {took:.1?} after the last restart");
    assert_registered_once(&f, &fleet).await;

    // Deleting is interrupted too, and still leaves nothing at Twilio.
    delete_fleet(&f, &fleet).await;
    let after = Duration::from_millis(rng.random_range(50..1000));
    tokio::time::sleep(after).await;
    f.operator.kill();
    eprintln!("kill 6: SIGKILL {after:?} into the deletion, restarted");
    f.operator.restart();
    wait_all_gone(&f, &fleet, CLEANUP_DEADLINE).await;
}

#[tokio::test]
async fn an_api_server_restart_is_ridden_out_by_the_same_operator_process() {
    let plane = controlplane::dedicated("operator_disruptions-restart");
    let ns = plane.namespace("restart").await;
    let mut f = Fixture::on_plane(plane, &ns, Sim::start().await, &[]).await;
    f.sim.number("+15005550001", "auto_verify").await;
    f.sim.number("+15005550002", "needs_code").await;
    f.apply("before", spec("+15005550001", json!({}))).await;
    f.wait_ready("before").await;
    let pid = f.operator.pid();

    plane.stop();
    // Long enough for the operator's watches to fail and back off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let took = plane.start_again();
    let restarted = Instant::now();
    eprintln!("API server down about 3 s, ready again in {took:?}");
    // The test's own connections went down with the server.
    f.client = plane.client().await;
    f.senders = Api::namespaced(f.client.clone(), &ns);
    f.secrets = Api::namespaced(f.client.clone(), &ns);

    // A changed sender, a new one, and its code Secret: each needs a watch event.
    f.patch(
        "before",
        json!({"spec": {"profile": {"about": "after the restart"}}}),
    )
    .await;
    f.apply("after", spec_with_code("+15005550002", "after-otp"))
        .await;
    // Within the usual deadline (30 s): the watches resume within seconds of the restart.
    let sid = sid_of(
        &f.wait_condition("after", "Ready", "False", "WaitingForCode")
            .await,
    );
    eprintln!(
        "a sender applied after the restart was reconciled {:?} after it",
        restarted.elapsed()
    );
    let code = f.sim.otp(&sid).await.expect("a code was sent");
    f.secret("after-otp", &[("code", &code)]).await;
    f.wait_ready("after").await;
    let before = f
        .wait_for("before", "updated at Twilio", |s| {
            s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
                && condition(s, "Ready").is_some_and(|c| c.status == "True")
        })
        .await;
    let twilio = f.sim.sender(&sid_of(&before)).await;
    assert_eq!(twilio["profile"]["about"], "after the restart", "{twilio}");

    assert!(f.operator.is_running(), "{}", f.operator.log_tail(40));
    assert_eq!(f.operator.pid(), pid, "the same operator process");
    assert_eq!(
        f.operator.log().matches("senderops started").count(),
        1,
        "the controller never started over:\n{}",
        f.operator.log_tail(40)
    );
    // The rest of the binary's tests run on; an idle API server would only take CPU from them.
    drop(f);
    plane.stop();
}

#[tokio::test]
async fn senders_deleted_right_after_apply_leave_nothing_behind() {
    let mut rng = rng("hasty");
    let f = Fixture::new("hasty").await;
    let fleet = fleet("hasty", 10);
    prepare_fleet(&f, &fleet).await;
    // Each deleted 0 to 300 ms after being applied: before the finalizer, before the create,
    // while the create is under way, or just after.
    for member in &fleet {
        f.apply(&member.name, member.spec()).await;
        let after = Duration::from_millis(rng.random_range(0..300));
        tokio::time::sleep(after).await;
        f.delete(&member.name).await;
    }
    wait_all_gone(&f, &fleet, CLEANUP_DEADLINE).await;
    eprintln!(
        "{} of {} got as far as a create at Twilio before their deletion",
        f.sim.count("POST", "/v2/Channels/Senders", 202).await,
        fleet.len()
    );
}

#[tokio::test]
async fn a_sender_deleted_while_twilio_holds_its_create_answer_is_deleted_at_twilio() {
    const PHONE: &str = "+15005550001";
    let f = Fixture::new("held").await;
    f.sim.number(PHONE, "auto_verify").await;
    f.sim
        .faults(json!({"answer_delay_ms": 3000, "only": "POST /v2/Channels/Senders"}))
        .await;
    f.apply("acme", spec(PHONE, json!({}))).await;
    f.wait_create_at_twilio(PHONE).await;
    f.delete("acme").await;
    let waiting = f.get("acme").await.expect("the finalizer holds the object");
    assert!(waiting.metadata.deletion_timestamp.is_some());

    f.wait_gone("acme").await;
    assert!(
        f.sim_senders_for(PHONE).await.is_empty(),
        "deleted at Twilio"
    );
    assert_eq!(
        f.sim.count("POST", "/v2/Channels/Senders", 202).await,
        1,
        "created once"
    );
    f.wait_event("acme", "Deleted").await;
}

#[tokio::test]
async fn senders_whose_credentials_secret_is_gone_are_deleted_with_the_credentials_last_read() {
    let f = Fixture::new("creds-gone").await;
    let fleet = fleet("creds-gone", 4);
    apply_fleet(&f, &fleet).await;
    onboard(&f, &fleet, &mut StandInUser::default()).await;
    assert_registered_once(&f, &fleet).await;

    f.delete_secret("twilio").await;
    f.delete_secret("twilio-b").await;
    delete_fleet(&f, &fleet).await;
    wait_all_gone(&f, &fleet, CLEANUP_DEADLINE).await;
    assert!(
        f.operator
            .log()
            .contains("deleting with the credentials last read from it"),
        "{}",
        f.operator.log_tail(40)
    );
}

#[tokio::test]
async fn a_namespace_deleted_with_twenty_senders_mid_onboarding_is_emptied_at_twilio_too() {
    let f = Fixture::new("doomed").await;
    let fleet = fleet("doomed", FLEET);
    apply_fleet(&f, &fleet).await;
    // Some Ready, some registering, some still queued for their turn.
    let mut user = StandInUser::default();
    Wait::until("six senders to be Ready")
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(50))
        .context(|| format!("operator log:\n{}", f.operator.log_tail(40)))
        .poll_ok(async || {
            let waiting = not_ready(&f, &fleet).await;
            if waiting.len() <= FLEET - 6 {
                return Ok(());
            }
            user.play(&f, &fleet).await;
            Err(format!(
                "{} not Ready:\n{}",
                waiting.len(),
                waiting.join("\n")
            ))
        })
        .await;
    let namespaces: Api<Namespace> = Api::all(f.client.clone());
    namespaces
        .delete(&f.ns, &DeleteParams::default())
        .await
        .expect("delete the namespace");

    // The Secrets go at once; the senders wait on the operator, which still deletes them.
    wait_all_gone(&f, &fleet, CLEANUP_DEADLINE).await;
    Wait::until(format!("namespace {} to be removed", f.ns))
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(200))
        .poll_ok(
            async || match namespaces.get_opt(&f.ns).await.expect("read the namespace") {
                None => Ok(()),
                Some(ns) => Err(format!("status {:?}", ns.status)),
            },
        )
        .await;
}
