//! What the benchmark sees of the fleet through the API server: which senders are Ready, when
//! the operator writes status, and which SID each sender got (for the stand-in user).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use senderops::api::WhatsAppSender;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Default)]
struct State {
    ready: HashSet<String>,
    statuses: HashMap<String, serde_json::Value>,
    /// When a status write was first seen after the initial list, in order.
    status_writes: Vec<Instant>,
    sids: HashSet<String>,
}

/// A watch on every `WhatsAppSender`, kept up to date in the background.
pub struct FleetWatch {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FleetWatch {
    /// Starts watching; `(namespace, name, sid)` goes to `new_sids` the first time a sender
    /// shows a SID.
    pub async fn start(
        client: kube::Client,
        new_sids: mpsc::UnboundedSender<(String, String, String)>,
    ) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let api: Api<WhatsAppSender> = Api::all(client);
        let shared = state.clone();
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut synced = Some(synced_tx);
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let (sender, initial) = match event {
                    Ok(watcher::Event::Apply(s)) => (s, false),
                    Ok(watcher::Event::InitApply(s)) => (s, true),
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = synced.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("bench watch: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let key = format!(
                    "{}/{}",
                    sender.metadata.namespace.as_deref().unwrap_or_default(),
                    sender.metadata.name.as_deref().unwrap_or_default()
                );
                let status = serde_json::to_value(&sender.status).unwrap_or_default();
                let mut s = shared.lock().unwrap();
                let changed = s.statuses.get(&key) != Some(&status);
                if changed && !initial && !status.is_null() {
                    s.status_writes.push(Instant::now());
                }
                if is_ready(&sender) {
                    s.ready.insert(key.clone());
                } else {
                    s.ready.remove(&key);
                }
                if let Some(sid) = sender.status.as_ref().and_then(|st| st.sid.clone())
                    && s.sids.insert(key.clone())
                {
                    let ns = sender.metadata.namespace.clone().unwrap_or_default();
                    let name = sender.metadata.name.clone().unwrap_or_default();
                    let _ = new_sids.send((ns, name, sid));
                }
                s.statuses.insert(key, status);
            }
        });
        let _ = synced_rx.await;
        FleetWatch { state, task }
    }

    pub fn ready(&self) -> usize {
        self.state.lock().unwrap().ready.len()
    }

    /// The first status write seen at or after `since`.
    pub fn first_status_write_since(&self, since: Instant) -> Option<Instant> {
        let s = self.state.lock().unwrap();
        s.status_writes.iter().copied().find(|t| *t >= since)
    }

    /// Waits until `count` senders are Ready; panics with `what` after `within`.
    pub async fn wait_ready(&self, count: usize, within: Duration, what: &str) -> Duration {
        let began = Instant::now();
        loop {
            let ready = self.ready();
            if ready >= count {
                return began.elapsed();
            }
            assert!(
                began.elapsed() < within,
                "{what}: {ready}/{count} Ready after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FleetWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_ready(sender: &WhatsAppSender) -> bool {
    sender.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}
