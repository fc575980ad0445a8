//! Pods reach twilio-sim through the node's address: the simulator of `support::sim` listens on
//! loopback, so a relay on `NODE_IP:8280` (the URL hack/node/install/local-image gives the operator)
//! copies each connection to it. Dropped, it stops accepting.

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::node::NODE_IP;

/// hack/node/install/local-image's `--twilio-api-url` port.
pub const PORT: u16 = 8280;

pub struct Relay {
    task: JoinHandle<()>,
}

impl Relay {
    /// Relays `NODE_IP:PORT` to `target` (`host:port`).
    pub async fn start(target: &str) -> Relay {
        let listener = TcpListener::bind((NODE_IP, PORT))
            .await
            .unwrap_or_else(|e| panic!("listen on {NODE_IP}:{PORT} for twilio-sim: {e}"));
        let target = target.to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { task }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
