//! Two leaders at once, the way it happens: the leader's connection to the API server is cut
//! (a relay that turns into a black hole) while senders onboard. It can no longer renew its
//! Lease, but its cache and its workers go on; the standby takes the Lease once it has gone
//! unrenewed for its duration. The old leader must stop acting at Twilio at its renew deadline,
//! before the standby leads: it reaches Twilio through a relay too, which timestamps every
//! request it passes on.

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::net::TcpListener;

use crate::support::controlplane::{self, ControlPlane};
use crate::support::fleet::{
    ONBOARDING_DEADLINE, StandInUser, assert_registered_once, fleet, prepare_fleet,
    waiting_for_ready,
};
use crate::support::lease;
use crate::support::operator::{Fixture, Operator};
use crate::support::relay::Relay;
use crate::support::sim::Sim;
use crate::support::wait::Wait;

/// 6 s: the renew deadline is then 4 s (two thirds), renewals every 0.8 s.
const LEASE_SECONDS: u64 = 6;
const RENEW_DEADLINE: Duration = Duration::from_secs(4);

/// A relay in front of `plane`'s API server and a kubeconfig that goes through it.
async fn api_server_relay(plane: &ControlPlane, name: &str) -> (Relay, std::path::PathBuf) {
    let server = plane.server_url();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let relay = Relay::start(listener, server.trim_start_matches("https://").to_string());
    let text = std::fs::read_to_string(plane.kubeconfig()).expect("read the kubeconfig");
    assert!(text.contains(&server), "{server} in:\n{text}");
    let kubeconfig = plane.kubeconfig().with_file_name(name);
    std::fs::write(
        &kubeconfig,
        text.replace(&server, &format!("https://{}", relay.addr())),
    )
    .expect("write the relay's kubeconfig");
    (relay, kubeconfig)
}

fn holder_of(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the host name");
    format!("{}-{pid}", host.trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_at_its_deadline_before_the_standby_leads() {
    // Each lifecycle step takes 1.5 s, and an account registers one sender at a time: the
    // leader keeps polling Twilio through the whole test.
    let sim = Sim::start_with(|config| config.step_delay = Duration::from_millis(1500)).await;
    let plane = controlplane::shared();
    let ns = plane.namespace("partition").await;
    let args = [
        "--leader-election",
        "--lease-namespace",
        &ns,
        "--lease-duration",
        &format!("{LEASE_SECONDS}s"),
    ];
    // The leader-to-be reaches the API server and Twilio only through relays.
    let (api_relay, kubeconfig) = api_server_relay(plane, &format!("kubeconfig-{ns}")).await;
    let twilio_relay = Relay::start(
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        sim.base_url().trim_start_matches("http://").to_string(),
    );
    let twilio_via_relay = format!("http://{}", twilio_relay.addr());
    let mut f =
        Fixture::on_plane_through(plane, &kubeconfig, &twilio_via_relay, &ns, sim, &args).await;
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &ns);
    let leader = f.operator.pid().expect("the first replica runs");
    Wait::until("the first replica to take the Lease")
        .within(Duration::from_secs(30))
        .poll(
            async || lease::holder_pid(&leases, "senderops").await,
            |pid| *pid == Some(leader),
        )
        .await;
    let mut standby = Operator::start(&ns, &f.sim.base_url(), &args);

    let fleet = fleet("cut", 8);
    prepare_fleet(&f, &fleet).await;
    for member in &fleet {
        f.apply(&member.name, member.spec()).await;
    }
    let mut user = StandInUser::default();
    Wait::until("the leader to register a sender at Twilio")
        .within(Duration::from_secs(30))
        .poll_ok(async || {
            user.play(&f, &fleet).await;
            match f.sim.all_senders().await.len() {
                0 => Err("none yet".to_string()),
                n => Ok(n),
            }
        })
        .await;
    assert!(
        waiting_for_ready(&f, &fleet).await.is_err(),
        "the fleet was Ready before the cut: nothing left for two leaders to do"
    );

    // The partition, while the standby watches the Lease.
    let handover = {
        let leases = leases.clone();
        let old = holder_of(leader);
        tokio::spawn(async move {
            lease::next_holder(
                &leases,
                "senderops",
                &old,
                Duration::from_secs(60),
                String::new,
            )
            .await
        })
    };
    let cut_wall = SystemTime::now();
    let cut = Instant::now();
    api_relay.black_hole();
    let exit = Wait::until("the cut-off leader to exit")
        .within(Duration::from_secs(LEASE_SECONDS * 3))
        .every(Duration::from_millis(20))
        .poll_ok(async || f.operator.exit_status().ok_or("still running"))
        .await;
    let stopped_after = cut.elapsed();
    let handover = handover.await.expect("the Lease watch");
    assert!(
        !exit.success(),
        "exits with a failure, to restart: {exit:?}"
    );
    let log = f.operator.log();
    assert!(
        log.contains("could not renew the Lease"),
        "the cut was felt as failed renewals:\n{}",
        f.operator.log_tail(30)
    );
    assert!(
        log.contains("stopped leading: could not renew the Lease for"),
        "the leader stopped for its renew deadline:\n{}",
        f.operator.log_tail(30)
    );

    // Its deadline: its last renewal the Lease shows (stamped as it was sent) + the deadline.
    let renewed = handover
        .old_renewed
        .expect("the leader renewed the Lease before the cut");
    let deadline = SystemTime::from(renewed) + RENEW_DEADLINE;
    let forwarded = twilio_relay.forwarded();
    let after_cut = forwarded.iter().filter(|t| **t >= cut_wall).count();
    let after_deadline: Vec<_> = forwarded.iter().filter(|t| **t >= deadline).collect();
    let taken = SystemTime::from(handover.taken_wall);
    eprintln!(
        "cut-off leader: exited {stopped_after:.2?} after the cut; its deadline came {:.2?} \
         after the cut; the standby held the Lease {:.2?} after the deadline; Twilio requests \
         from the old leader: {after_cut} after the cut, {} after its deadline",
        deadline.duration_since(cut_wall).unwrap_or_default(),
        taken.duration_since(deadline).unwrap_or_default(),
        after_deadline.len(),
    );
    assert!(
        after_cut > 0,
        "the leader sent Twilio nothing between the cut and its deadline: the test did not \
         show a cut-off leader at work"
    );
    assert!(
        after_deadline.is_empty(),
        "the old leader reached Twilio after its renew deadline: {after_deadline:?}"
    );
    assert!(
        taken > deadline,
        "the standby led before the old leader's deadline ({taken:?} ≤ {deadline:?})"
    );
    assert_eq!(
        handover.new_holder,
        holder_of(standby.pid().expect("the standby runs")),
        "the standby took over"
    );

    Wait::until("every sender to be Ready under the new leader")
        .within(ONBOARDING_DEADLINE)
        .every(Duration::from_millis(100))
        .poll_ok(async || {
            assert!(standby.is_running(), "{}", standby.log_tail(20));
            user.play(&f, &fleet).await;
            waiting_for_ready(&f, &fleet).await
        })
        .await;
    assert_registered_once(&f, &fleet).await;
    assert_eq!(
        twilio_relay.forwarded().len(),
        forwarded.len(),
        "the old leader, exited, sent nothing more"
    );
}

/// Without a per-call timeout a reconcile that writes status to a silent API server waits for
/// ever, holding its worker; with `--kube-timeout` it fails and backs off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_silent_api_server_time_out_instead_of_hanging() {
    let sim = Sim::start_with(|config| config.step_delay = Duration::from_secs(60)).await;
    let plane = controlplane::shared();
    let ns = plane.namespace("silent-api").await;
    let (api_relay, kubeconfig) = api_server_relay(plane, &format!("kubeconfig-{ns}")).await;
    let f = Fixture::on_plane_via(plane, &kubeconfig, &ns, sim, &["--kube-timeout", "1s"]).await;
    f.sim.number("+15005550911", "auto_verify").await;
    f.apply(
        "silent",
        crate::support::operator::spec("+15005550911", serde_json::json!({})),
    )
    .await;
    // Registered, then polled while CREATING lasts a minute: reconciles keep coming.
    f.wait_create_at_twilio("+15005550911").await;
    let polled = f.sim.requests_total().await;
    Wait::until("the operator to poll the registration")
        .within(Duration::from_secs(10))
        .poll(async || f.sim.requests_total().await, |n| *n > polled)
        .await;

    let before = f.operator.log().len();
    api_relay.black_hole();
    let cut = Instant::now();
    // Meta's verdict arrives: the next poll has a status to write.
    let senders = f.sim.all_senders().await;
    let sid = senders[0]["sid"].as_str().expect("a sid");
    f.sim
        .patch_sender(sid, serde_json::json!({"status": "ONLINE"}))
        .await;
    let failure = Wait::until("a reconcile to fail on the silent API server")
        .within(Duration::from_secs(15))
        .every(Duration::from_millis(50))
        .poll_ok(async || {
            let log = f.operator.log();
            log[before..]
                .lines()
                .find(|l| l.contains("reconcile failed") && l.contains("kubernetes"))
                .map(str::to_string)
                .ok_or("no failed reconcile yet")
        })
        .await;
    eprintln!(
        "a reconcile failed {:.1?} after the API server fell silent: {failure}",
        cut.elapsed()
    );
}
