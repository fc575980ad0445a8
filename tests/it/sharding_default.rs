//! The default shard of deploy/overlays/sharding (issue 21): next to a named shard
//! (`--selector senderops.io/shard=a`), an operator with `--selector senderops.io/shard notin (a)`
//! takes every sender the named shard does not select. A sender whose label is changed to a value
//! no shard names (a typo) or removed keeps its finalizer; without the default shard nobody would
//! reconcile it and deleting it would hang. With it, the sender is handed over and deleting it
//! deregisters it at Twilio and releases it; a sender never labelled is reconciled to Ready.
//! Both shards run as the overlay runs them: leader election, each with its own Lease.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::support::controlplane;
use crate::support::metrics::{scrape, sum};
use crate::support::operator::{DEADLINE, Fixture, Operator, sid_of, spec};
use crate::support::sim::{Sim, requests_in};
use crate::support::wait::Wait;

const SHARD_LABEL: &str = "senderops.io/shard";
const NAMED_SELECTOR: &str = "senderops.io/shard=a";
/// The complement of the named shards' values, as shard-default/ writes it for a and b.
const DEFAULT_SELECTOR: &str = "senderops.io/shard notin (a)";
const NAMED_LEASE: &str = "senderops-shard-a";
const DEFAULT_LEASE: &str = "senderops-shard-default";

/// `senderops run` flags of one shard, as overlays/sharding gives them.
fn shard_args(ns: &str, lease: &str, selector: &str) -> Vec<String> {
    [
        "--leader-election",
        "--lease-namespace",
        ns,
        "--lease-name",
        lease,
        "--selector",
        selector,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The Events about `name` as (reason, reporting instance). Outside a pod an operator's
/// instance is `HOST-PID`.
async fn reported(f: &Fixture, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(f.client.clone(), &f.ns);
    events
        .list(&ListParams::default().fields(&format!("regarding.name={name}")))
        .await
        .expect("list Events")
        .items
        .into_iter()
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.reporting_instance.unwrap_or_default(),
            )
        })
        .collect()
}

/// Whether `instance` (an Event's reporting instance, a Lease holder) is process `pid`.
fn is_process(instance: &str, pid: u32) -> bool {
    instance.rsplit('-').next() == Some(&pid.to_string())
}

/// Waits until Lease `name` is held by process `pid`.
async fn wait_for_holder(f: &Fixture, name: &str, pid: u32) {
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &f.ns);
    Wait::until(format!("process {pid} to hold Lease {name}"))
        .within(DEADLINE)
        .poll_ok(async || {
            let holder = leases
                .get_opt(name)
                .await
                .expect("read the Lease")
                .and_then(|l| l.spec?.holder_identity);
            match holder {
                Some(h) if is_process(&h, pid) => Ok(()),
                other => Err(format!("holder {other:?}")),
            }
        })
        .await;
}

/// How many senders of the test's namespace `operator` caches (`senderops_senders`): every one
/// its selector lets through, reconciled or not.
async fn cached(f: &Fixture, operator: &Operator) -> f64 {
    sum(
        &scrape(operator).await,
        "senderops_senders",
        &[("namespace", &f.ns)],
    )
}

/// `DELETE /v2/Channels/Senders/{Sid}` requests the simulator answered.
async fn deletes_at_twilio(f: &Fixture) -> u64 {
    requests_in(&f.sim.stats().await, |r| {
        r["method"] == "DELETE" && r["route"] == "/v2/Channels/Senders/{Sid}"
    })
}

// Two workers: two operators and the simulator share this test's runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_shard_reconciles_and_deletes_senders_no_named_shard_selects() {
    let sim = Sim::start().await;
    let ns = controlplane::shared().namespace("shard-default").await;
    let named_args = shard_args(&ns, NAMED_LEASE, NAMED_SELECTOR);
    let named_args: Vec<&str> = named_args.iter().map(String::as_str).collect();
    // f.operator is shard a.
    let f = Fixture::with_sim_in(&ns, sim, &named_args).await;
    let default_args = shard_args(&ns, DEFAULT_LEASE, DEFAULT_SELECTOR);
    let default_args: Vec<&str> = default_args.iter().map(String::as_str).collect();
    let default = Operator::start(&ns, &f.sim.base_url(), &default_args);
    let (named_pid, default_pid) = (
        f.operator.pid().expect("shard a runs"),
        default.pid().expect("the default shard runs"),
    );
    let logs = || {
        format!(
            "shard a's log:\n{}\ndefault shard's log:\n{}",
            f.operator.log_tail(30),
            default.log_tail(30)
        )
    };
    // Each leads through its own Lease: both reconcile, neither stands by for the other.
    wait_for_holder(&f, NAMED_LEASE, named_pid).await;
    wait_for_holder(&f, DEFAULT_LEASE, default_pid).await;

    // Two senders of shard a, Ready through shard a alone.
    let moved = [
        ("relabelled", "+15550210001", Some("typo")),
        ("label-removed", "+15550210002", None),
    ];
    let mut sids = Vec::new();
    for (name, phone, _) in moved {
        f.sim.number(phone, "auto_verify").await;
        f.apply_labelled(name, spec(phone, json!({})), json!({SHARD_LABEL: "a"}))
            .await;
    }
    for (name, _, _) in moved {
        sids.push(sid_of(&f.wait_ready(name).await));
        let events = reported(&f, name).await;
        assert!(
            !events.is_empty() && events.iter().all(|(_, i)| is_process(i, named_pid)),
            "{name}'s Events all come from shard a (pid {named_pid}): {events:?}"
        );
    }
    assert_eq!(cached(&f, &f.operator).await, 2.0, "{}", logs());
    assert_eq!(
        cached(&f, &default).await,
        0.0,
        "the default shard does not see shard a's senders"
    );

    // Out of every named shard: one label changed to a value no shard names, one removed.
    for (name, _, label) in moved {
        f.patch(name, json!({"metadata": {"labels": {SHARD_LABEL: label}}}))
            .await;
    }
    for ((name, _, label), sid) in moved.iter().zip(&sids) {
        let sender = f.get(name).await.expect("the sender");
        let labels = sender.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(SHARD_LABEL).map(String::as_str),
            *label,
            "{name} is out of shard a: {labels:?}"
        );
        assert_eq!(
            sender.metadata.finalizers.as_deref(),
            Some(&["messaging.senderops.io/cleanup".to_string()][..]),
            "{name} keeps the finalizer shard a put on it"
        );
        assert_eq!(&sid_of(&sender), sid, "{name} keeps its Twilio sender");
    }
    // Shard a lets them go, the default shard takes them.
    Wait::until("shard a to drop the moved senders and the default shard to take them")
        .context(logs)
        .poll(
            async || (cached(&f, &f.operator).await, cached(&f, &default).await),
            |caches| *caches == (0.0, 2.0),
        )
        .await;

    // Deleting them deregisters them at Twilio and releases them, through the default shard.
    for (name, _, _) in moved {
        f.delete(name).await;
    }
    for (name, _, _) in moved {
        Wait::until(format!("{ns}/{name} to be released"))
            .context(logs)
            .poll_ok(async || match f.get(name).await {
                None => Ok(()),
                Some(sender) => Err(format!(
                    "finalizers {:?}, status {:?}",
                    sender.metadata.finalizers, sender.status
                )),
            })
            .await;
    }
    assert_eq!(
        deletes_at_twilio(&f).await,
        2,
        "one DELETE per sender at Twilio"
    );
    for ((name, phone, _), sid) in moved.iter().zip(&sids) {
        assert!(
            f.sim_senders_for(phone).await.is_empty(),
            "{name}'s Twilio sender {sid} is gone"
        );
        let events = reported(&f, name).await;
        let deleted: Vec<&String> = events
            .iter()
            .filter(|(reason, _)| reason == "Deleted")
            .map(|(_, instance)| instance)
            .collect();
        assert!(
            deleted.len() == 1 && is_process(deleted[0], default_pid),
            "{name} was deleted at Twilio by the default shard (pid {default_pid}): {events:?}"
        );
        assert_eq!(
            f.sim.create_attempts(phone).await,
            1,
            "{name} was registered once, by shard a: the default shard took its SID over"
        );
    }
    // A sender never labelled: the default shard's from the start.
    f.sim.number("+15550210003", "auto_verify").await;
    f.apply_labelled("never-labelled", spec("+15550210003", json!({})), json!({}))
        .await;
    f.wait_ready("never-labelled").await;
    let events = reported(&f, "never-labelled").await;
    assert!(
        !events.is_empty() && events.iter().all(|(_, i)| is_process(i, default_pid)),
        "never-labelled's Events all come from the default shard (pid {default_pid}): {events:?}"
    );
    assert_eq!(f.sim.create_attempts("+15550210003").await, 1);
    assert_eq!(cached(&f, &f.operator).await, 0.0, "{}", logs());

    // Nobody was stopped to make this happen: shard a ran throughout, beside the default.
    let (mut f, mut default) = (f, default);
    assert!(f.operator.is_running() && default.is_running());
}
