//! One operator, several namespaces (`--namespace A,B`): each namespace is watched on its own,
//! and when one relists (its watch expired: here an API server restart while the operator was
//! cut off) only that namespace changes in the operator's cache and memory. A Secret and a
//! sender deleted while it was cut off are noticed by the relist; the other namespace's senders
//! are neither forgotten nor disturbed.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpListener;

use crate::support::controlplane::{self, ControlPlane};
use crate::support::metrics;
use crate::support::operator::create_credentials;
use crate::support::operator::{Fixture, condition, spec};
use crate::support::relay::Relay;
use crate::support::sim::{ACCOUNT_A, Sim, TOKEN_A};
use crate::support::wait::Wait;

const PHONE_A: &str = "+15005550011";
const PHONE_B1: &str = "+15005550012";
const PHONE_B2: &str = "+15005550013";

/// A relay in front of the API server and a kubeconfig that reaches it through the relay.
async fn relay_to(plane: &ControlPlane) -> (Relay, std::path::PathBuf) {
    let server = plane.server_url();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let relay = Relay::start(listener, server.trim_start_matches("https://").to_string());
    let kubeconfig = plane.kubeconfig().with_file_name("kubeconfig-relay");
    let text = std::fs::read_to_string(plane.kubeconfig()).expect("read the kubeconfig");
    assert!(text.contains(&server), "{server} in:\n{text}");
    std::fs::write(
        &kubeconfig,
        text.replace(&server, &format!("https://{}", relay.addr())),
    )
    .expect("write the relay's kubeconfig");
    (relay, kubeconfig)
}

/// `senderops_senders` of `namespace`, whatever their Twilio status: what the operator's cache
/// holds there.
async fn cached(f: &Fixture, namespace: &str) -> f64 {
    metrics::sum(
        &metrics::scrape(&f.operator).await,
        "senderops_senders",
        &[("namespace", namespace)],
    )
}

#[tokio::test]
async fn a_relist_of_one_namespace_changes_that_namespace_only() {
    let plane = controlplane::dedicated("watch_namespaces-relist");
    let ns_a = plane.namespace("relist-a").await;
    let ns_b = plane.namespace("relist-b").await;
    let (relay, kubeconfig) = relay_to(plane).await;
    let sim = Sim::start().await;
    for phone in [PHONE_A, PHONE_B1, PHONE_B2] {
        sim.number(phone, "auto_verify").await;
    }
    // The fixture's operator watches its namespace (a) and, with the flag repeated, b.
    let mut f =
        Fixture::on_plane_via(plane, &kubeconfig, &ns_a, sim, &["--namespace", &ns_b]).await;
    create_credentials(&f.client, &ns_b).await;

    f.apply("a1", spec(PHONE_A, json!({}))).await;
    f.wait_ready("a1").await;
    f.enter(&ns_b);
    f.apply("b1", spec(PHONE_B1, json!({}))).await;
    f.apply("b2", spec(PHONE_B2, json!({}))).await;
    f.wait_ready("b1").await;
    f.wait_ready("b2").await;
    assert_eq!(
        (cached(&f, &ns_a).await, cached(&f, &ns_b).await),
        (1.0, 2.0)
    );
    let log_before = f.operator.log().len();

    // Cut off, the operator misses two deletions: a's credentials Secret, and b2 (its finalizer
    // removed by hand, so it goes at once).
    relay.cut();
    f.patch("b2", json!({"metadata": {"finalizers": null}}))
        .await;
    f.delete("b2").await;
    f.wait_gone("b2").await;
    f.enter(&ns_a);
    f.delete_secret("twilio").await;
    // A restarted API server has no history to resume the operator's watches from: each
    // namespace's watch relists (410 Expired) when it reconnects.
    plane.stop();
    plane.start_again();
    f.client = plane.client().await;
    f.enter(&ns_a);
    let restored = Instant::now();
    relay.restore();

    Wait::until("each namespace's watches to relist")
        .within(Duration::from_secs(60))
        .every(Duration::from_millis(200))
        .poll_ok(async || {
            let log = f.operator.log();
            let since = log.get(log_before..).unwrap_or_default();
            let relisted = |watch: &str, namespace: &str| {
                let fields = [
                    format!("watch=\"{watch}\""),
                    format!("namespace={namespace}"),
                ];
                since.lines().any(|l| {
                    l.contains("relisted a namespace")
                        && fields
                            .iter()
                            .all(|f| l.split_whitespace().any(|word| word == f))
                })
            };
            let all = [
                ("senders", &ns_a),
                ("senders", &ns_b),
                ("Secrets", &ns_a),
                ("Secrets", &ns_b),
            ];
            match all.iter().find(|(w, n)| !relisted(w, n)) {
                None => Ok(()),
                Some((w, n)) => Err(format!(
                    "no relist of {w} in {n} yet; log since the cut:\n{since}"
                )),
            }
        })
        .await;
    eprintln!(
        "relisted {:?} after the relay was restored",
        restored.elapsed()
    );

    // a's relist found its Secret gone: a1 says so (nothing else would wake it: no resync).
    let missing = f
        .wait_for("a1", "Ready=False (CredentialsNotFound)", |s| {
            condition(s, "Ready").is_some_and(|c| c.reason == "CredentialsNotFound")
        })
        .await;
    assert!(missing.metadata.finalizers.is_some(), "a1 is still managed");
    // b's relist found b2 gone, and left a1 in the cache; a's left b1.
    Wait::until("the cache to hold a1 and b1 only")
        .within(Duration::from_secs(30))
        .context(|| f.operator.log_tail(40))
        .poll_ok(
            async || match (cached(&f, &ns_a).await, cached(&f, &ns_b).await) {
                (1.0, 1.0) => Ok(()),
                other => Err(format!("senders cached in (a, b): {other:?}")),
            },
        )
        .await;

    // Both namespaces carry on: a's Secret back, a1 is Ready again (a's Secret watch), and b1
    // answers a reconcile request (b's sender watch and b1 in the cache).
    f.secret(
        "twilio",
        &[("accountSid", ACCOUNT_A), ("authToken", TOKEN_A)],
    )
    .await;
    f.wait_ready("a1").await;
    f.enter(&ns_b);
    f.reconcile_and_wait("b1", "after-the-relist").await;
    let b1 = f.wait_ready("b1").await;
    assert!(b1.metadata.finalizers.is_some());
    assert_eq!(
        f.sim_senders_for(PHONE_B2).await.len(),
        1,
        "b2 went without its finalizer: nothing deleted at Twilio"
    );
    assert_eq!(
        f.operator.log().matches("senderops started").count(),
        1,
        "the same controller throughout:\n{}",
        f.operator.log_tail(40)
    );
    // The rest of the binary's tests run on; an idle API server would only take CPU from them.
    drop(f);
    plane.stop();
}
