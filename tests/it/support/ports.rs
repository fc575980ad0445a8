//! A loopback port for a server a test starts as a separate program (prism, a registry),
//! which is told the port and binds it itself.
//!
//! The port is free when chosen and bound a moment later by the program, so another socket
//! can take it in between. Port 0 picks from the kernel's ephemeral range, which is also where
//! the parallel tests' outgoing connections get their local ports and where every in-process
//! test server listens; choosing below that range leaves only a race between two choosers of
//! the same random port. The control plane (`tests/controlplane/ports.go`) chooses the same way.

use rand::Rng;
use std::net::TcpListener;

/// Ports from here up are chosen; below are the node's own servers (kubelet's 10250 and so on).
const LOWEST: u16 = 20000;
/// NodePorts (30000-32767) and the ephemeral range lie above.
const HIGHEST: u16 = 29999;

/// A loopback port that is free now, below the kernel's ephemeral range.
pub fn unused() -> u16 {
    let highest = HIGHEST.min(ephemeral_low().saturating_sub(1));
    assert!(
        highest >= LOWEST,
        "the kernel's ephemeral ports start at {}: no room below them for test ports",
        highest + 1
    );
    let mut rng = rand::rng();
    for _ in 0..50 {
        let port = rng.random_range(LOWEST..=highest);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOWEST}-{highest} after 50 tries");
}

/// The first port of the kernel's ephemeral range (Linux's default when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}
