//! The operator's world breaking around it: the operator killed at random moments while twenty
//! senders onboard, the API server restarted under a running operator, and deletions racing
//! creation, credentials and whole namespaces. Every object ends registered exactly once, or
//! gone from Kubernetes and from Twilio, or says in a condition what the user can do. Each test
//! first asserts that its disruption fell where its name says (during onboarding, before the
//! deletion finished, with a create under way…), waiting for that state where a random moment
//! could miss it.
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
    last_coded, not_ready, onboard, prepare_fleet, wait_all_gone,
};
use crate::support::operator::{Fixture, condition, sid_of, spec, spec_with_code};
use crate::support::sim::{Sim, create_attempts_in};
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
    // The last coded member's code is withheld until the fifth kill: onboarding cannot end
    // before it, however the random moments fall.
    let last = last_coded(&fleet);
    let mut user = StandInUser::withholding(last);
    for kill in 1..=5 {
        let after = Duration::from_millis(rng.random_range(100..2500));
        play_for(&f, &fleet, &mut user, after).await;
        f.operator.kill();
        let waiting = not_ready(&f, &fleet).await;
        let at_twilio = f.sim.all_senders().await.len();
        eprintln!(
            "kill {kill}: SIGKILL after {after:?} ({} Ready, {at_twilio} at Twilio), restarted",
            FLEET - waiting.len()
        );
        assert!(
            waiting
                .iter()
                .any(|w| w.starts_with(&format!("{}:", last.name))),
            "kill {kill} fell after onboarding: {} is Ready although its code was withheld; \
             not Ready: {waiting:?}",
            last.name
        );
        f.operator.restart();
    }
    user.release();
    let took = onboard(&f, &fleet, &mut user).await;
    eprintln!("all Ready {took:.1?} after the last restart");
    assert_registered_once(&f, &fleet).await;

    // Deleting is interrupted too, and still leaves nothing at Twilio. The kill falls at a
    // random moment, but before the last few senders are deleted at Twilio (each delete goes
    // through the request budget, so they go one at a time).
    delete_fleet(&f, &fleet).await;
    let after = Duration::from_millis(rng.random_range(50..1000));
    let deleting = Instant::now();
    while deleting.elapsed() < after && f.sim.all_senders().await.len() > FLEET / 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_after = deleting.elapsed();
    f.operator.kill();
    let at_twilio = f.sim.all_senders().await.len();
    let mut in_kubernetes = Vec::new();
    for member in &fleet {
        if let Some(sender) = f.get(&member.name).await {
            assert!(
                sender.metadata.deletion_timestamp.is_some(),
                "{} is not being deleted",
                member.name
            );
            in_kubernetes.push(member.name.clone());
        }
    }
    eprintln!(
        "kill 6: SIGKILL {:?} into the deletion ({at_twilio} senders left at Twilio, {} objects \
         in Kubernetes), restarted",
        killed_after,
        in_kubernetes.len()
    );
    assert!(
        at_twilio > 0 && !in_kubernetes.is_empty(),
        "kill 6 fell after the deletion finished: {at_twilio} senders at Twilio, objects left: \
         {in_kubernetes:?}"
    );
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

    let log_before = f.operator.log().len();
    plane.stop();
    let stopped = Instant::now();
    // The operator's watches fail, and back off while the API server stays down (3 s).
    Wait::until("the operator to see its watches fail while the API server is down")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(100))
        .poll_ok(async || {
            let log = f.operator.log();
            let since = log.get(log_before..).unwrap_or_default();
            if since.contains("watching Secrets failed") {
                Ok(())
            } else {
                Err(format!("its log since the stop:\n{since}"))
            }
        })
        .await;
    if let Some(rest) = Duration::from_secs(3).checked_sub(stopped.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let took = plane.start_again();
    let restarted = Instant::now();
    eprintln!(
        "API server down {:?} (the operator's watches failed), ready again in {took:?}",
        stopped.elapsed() - took
    );
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

/// README: "a failed status write never produces a second registration". The API server
/// goes down while Twilio holds the create's answer, so the write of the SID it returns fails;
/// once the server is back the same process must find the number it registered, not create it
/// again.
#[tokio::test]
async fn a_failed_status_write_after_a_create_registers_the_number_once() {
    const HELD: Duration = Duration::from_secs(3);
    let plane = controlplane::dedicated("operator_disruptions-status-write");
    let ns = plane.namespace("status-write").await;
    let mut f = Fixture::on_plane(plane, &ns, Sim::start().await, &[]).await;
    f.sim.number("+15005550001", "auto_verify").await;
    f.sim
        .faults(json!({"answer_delay_ms": HELD.as_millis() as u64, "only": "POST /v2/Channels/Senders"}))
        .await;
    f.apply("acme", spec("+15005550001", json!({}))).await;
    f.wait_create_at_twilio("+15005550001").await;
    let log_before = f.operator.log().len();
    plane.stop();
    // The fault: the answer came, and the SID it carried could not be written.
    Wait::until("the operator to fail to write the created sender's status")
        .within(HELD + Duration::from_secs(10))
        .every(Duration::from_millis(100))
        .poll_ok(async || {
            let log = f.operator.log();
            let since = log.get(log_before..).unwrap_or_default();
            // The create's answer, then that reconcile failing on Kubernetes (the SID write).
            let created = since.lines().position(|l| {
                l.contains("http.method=POST route=\"/v2/Channels/Senders\"")
                    && l.contains("status=202")
            });
            let failed = created.and_then(|at| {
                since.lines().skip(at).find(|l| {
                    l.contains("reconcile failed") && l.contains("error_kind=\"kubernetes\"")
                })
            });
            if failed.is_some() {
                Ok(())
            } else {
                Err(format!("its log since the stop:\n{since}"))
            }
        })
        .await;
    f.sim.faults(json!({})).await;
    plane.start_again();
    f.client = plane.client().await;
    f.senders = Api::namespaced(f.client.clone(), &ns);
    f.secrets = Api::namespaced(f.client.clone(), &ns);

    let ready = f.wait_ready("acme").await;
    assert_eq!(
        f.sim.create_attempts("+15005550001").await,
        1,
        "one create, whatever the failed write:\n{}",
        f.operator.log_tail(40)
    );
    let at_twilio = f.sim_senders_for("+15005550001").await;
    assert_eq!(at_twilio.len(), 1, "{at_twilio:?}");
    assert_eq!(
        at_twilio[0]["sid"],
        sid_of(&ready),
        "the status names the one sender"
    );
    drop(f);
    plane.stop();
}

/// How long a create's answer is held in the deletion tests: time to delete the object while
/// Twilio holds it.
const HELD_CREATE: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn senders_deleted_right_after_apply_leave_nothing_behind() {
    let f = Fixture::new("hasty").await;
    let fleet = fleet("hasty", 10);
    prepare_fleet(&f, &fleet).await;
    let held = HELD_CREATE.as_millis() as u64;
    f.sim
        .faults(json!({"answer_delay_ms": held, "only": "POST /v2/Channels/Senders"}))
        .await;
    // Each moment is waited for, then the sender is deleted: at once (most likely before the
    // finalizer), queued behind another registration (finalizer on, no create yet), while its
    // create is under way (at Twilio, its answer held), just after (SID in status), and waiting
    // for its code. In account A a sender whose code never comes holds the display name
    // "Acme" unconfirmed, so the others there queue; account B registers freely.
    let blocker = &fleet[1];
    f.apply(&blocker.name, blocker.spec()).await;
    f.wait_condition(&blocker.name, "Ready", "False", "WaitingForCode")
        .await;
    let moments = [
        (0, "at once"),
        (2, "queued"),
        (3, "queued"),
        (4, "queued"),
        (5, "at once"),
        (6, "create under way"),
        (7, "create under way"),
        (8, "just created"),
        (9, "just created"),
    ];
    let mut at_once_without_finalizer = 0;
    for (i, moment) in moments {
        let member = &fleet[i];
        f.apply(&member.name, member.spec()).await;
        match moment {
            "at once" => {}
            "queued" => {
                f.wait_for(&member.name, "queued for its turn", |s| {
                    condition(s, "Ready").is_some_and(|c| {
                        ["Queued", "WaitingForDisplayNameCheck"].contains(&c.reason.as_str())
                    })
                })
                .await;
            }
            "create under way" => f.wait_create_at_twilio(&member.phone).await,
            "just created" => {
                f.wait_for(&member.name, "given its SID", |s| {
                    s.status.as_ref().is_some_and(|st| st.sid.is_some())
                })
                .await;
            }
            other => unreachable!("{other}"),
        }
        let before = f.get(&member.name).await;
        let attempts = f.sim.create_attempts(&member.phone).await;
        let deleted = f
            .senders
            .delete(&member.name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {}: {e}", member.name));
        let sid = before.as_ref().and_then(|s| s.status.as_ref()?.sid.clone());
        match moment {
            "at once" => at_once_without_finalizer += deleted.is_right() as usize,
            "queued" => assert_eq!(
                (attempts, &sid),
                (0, &None),
                "{}: deleted while queued, before any create",
                member.name
            ),
            "create under way" => assert_eq!(
                (attempts, &sid),
                (1, &None),
                "{}: deleted with its create at Twilio and its SID not yet known",
                member.name
            ),
            _ => assert!(
                attempts == 1 && sid.is_some(),
                "{}: deleted just after its create ({attempts} attempts, SID {sid:?})",
                member.name
            ),
        }
    }
    f.delete(&blocker.name).await;
    wait_all_gone(&f, &fleet, CLEANUP_DEADLINE).await;
    let stats = f.sim.stats().await;
    for member in &fleet {
        let attempts = create_attempts_in(&stats, &member.phone);
        assert!(
            attempts <= 1,
            "{}: a deleted sender was created again ({attempts} create attempts)",
            member.name
        );
    }
    eprintln!(
        "{} of {} got as far as a create at Twilio before their deletion; \
         {at_once_without_finalizer} of 2 deleted at once were gone before the operator put its \
         finalizer on",
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
    let arrived = Instant::now();
    f.delete("acme").await;
    let waiting = f.get("acme").await.expect("the finalizer holds the object");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    // The create was under way when the object was deleted: Twilio had it, its answer was still
    // held (a request is counted once answered), and the operator had no SID.
    let answered = f.sim.count("POST", "/v2/Channels/Senders", 202).await;
    assert!(
        answered == 0 && arrived.elapsed() < Duration::from_secs(3),
        "the create's answer came back before the deletion ({answered} answered, {:?} after \
         it arrived)",
        arrived.elapsed()
    );
    assert_eq!(
        waiting.status.as_ref().and_then(|s| s.sid.as_deref()),
        None,
        "the SID was not known yet"
    );

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
    assert_eq!(
        f.sim.create_attempts(PHONE).await,
        1,
        "one create attempt, ever"
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
    // Some Ready, some registering, some still queued for their turn. The last coded
    // member's code is never written, so onboarding is certainly not over.
    let last = last_coded(&fleet);
    let mut user = StandInUser::withholding(last);
    let waiting = Wait::until("six senders to be Ready")
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(50))
        .context(|| format!("operator log:\n{}", f.operator.log_tail(40)))
        .poll_ok(async || {
            let waiting = not_ready(&f, &fleet).await;
            if waiting.len() <= FLEET - 6 {
                return Ok(waiting);
            }
            user.play(&f, &fleet).await;
            Err(format!(
                "{} not Ready:\n{}",
                waiting.len(),
                waiting.join("\n")
            ))
        })
        .await;
    assert!(
        waiting
            .iter()
            .any(|w| w.starts_with(&format!("{}:", last.name))),
        "{} was Ready before the namespace was deleted: {waiting:?}",
        last.name
    );
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
