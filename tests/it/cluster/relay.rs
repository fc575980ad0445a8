//! Pods reach twilio-sim through the node's address: the simulator of `support::sim` listens on
//! loopback, so a relay on `NODE_IP:8280` (the URL hack/node/install/local-image gives the operator)
//! copies each connection to it.

use tokio::net::TcpListener;

use super::node::NODE_IP;
use crate::support::relay::Relay;

/// hack/node/install/local-image's `--twilio-api-url` port.
pub const PORT: u16 = 8280;

/// Relays `NODE_IP:PORT` to `target` (`host:port`) until dropped.
pub async fn to_sim(target: &str) -> Relay {
    let listener = TcpListener::bind((NODE_IP, PORT))
        .await
        .unwrap_or_else(|e| panic!("listen on {NODE_IP}:{PORT} for twilio-sim: {e}"));
    Relay::start(listener, target.to_string())
}
