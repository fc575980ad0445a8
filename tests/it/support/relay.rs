//! A TCP relay: each connection accepted on its listener is copied to a target, and the bytes
//! coming back from the target are counted. TLS passes through untouched. The node tests use
//! one so that pods reach the loopback simulator; the Secret-access test, to weigh what the API
//! server sends the operator; the partition test, to cut a replica off from the API server
//! (a black hole: connections stay open and nothing goes through, as in a network partition)
//! and to see when a replica's requests reached Twilio. Dropped, it stops accepting.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// Bytes from the target, passed on.
    received: AtomicU64,
    /// When each chunk from a client was passed on to the target (wall clock).
    forwarded: Mutex<Vec<SystemTime>>,
    /// Nothing passes from now on, either way.
    cut: AtomicBool,
}

impl Relay {
    /// Relays connections on `listener` to `target` (`host:port`).
    pub fn start(listener: TcpListener, target: String) -> Relay {
        let addr = listener.local_addr().expect("the relay's address");
        let shared = Arc::new(Shared::default());
        let relayed = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (target, shared) = (target.clone(), relayed.clone());
                tokio::spawn(async move {
                    if shared.cut.load(Ordering::SeqCst) {
                        return swallow(client).await;
                    }
                    if let Ok(server) = TcpStream::connect(&target).await {
                        relay(client, server, &shared).await;
                    }
                });
            }
        });
        Relay { addr, shared, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes the target has sent back through the relay so far.
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// From now on nothing passes, on open connections or new ones, which stay open: the
    /// client sees no error, only silence.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
    }

    /// When each chunk a client sent was passed on to the target.
    pub fn forwarded(&self) -> Vec<SystemTime> {
        self.shared
            .forwarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Reads and drops whatever the client sends, answering nothing, until it closes.
async fn swallow(mut client: TcpStream) {
    let mut buffer = vec![0; 64 * 1024];
    while matches!(client.read(&mut buffer).await, Ok(n) if n > 0) {}
}

/// Copies both ways until each side closes (or, once cut, drops what comes), counting what
/// `server` sends and timing what the client sends.
async fn relay(client: TcpStream, server: TcpStream, shared: &Shared) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = pass(&mut from_client, &mut to_server, shared, |_| {
        shared
            .forwarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SystemTime::now());
    });
    let down = pass(&mut from_server, &mut to_client, shared, |n| {
        shared.received.fetch_add(n as u64, Ordering::Relaxed);
    });
    tokio::join!(up, down);
}

async fn pass(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    shared: &Shared,
    passed: impl Fn(usize),
) {
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        if shared.cut.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        passed(n);
    }
    // A cut connection stays open on the client's side: silence, not a reset.
    if !shared.cut.load(Ordering::SeqCst) {
        let _ = to.shutdown().await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
