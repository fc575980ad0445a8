//! A TCP relay: each connection accepted on its listener is copied to a target, and the bytes
//! coming back from the target are counted. TLS passes through untouched. The node tests use
//! one so that pods reach the loopback simulator; the Secret-access test, to weigh what the API
//! server sends the operator; the namespaces test, to cut the operator off the API server and
//! let it back ([`Relay::cut`], [`Relay::restore`]); the partition tests, to make the API server
//! a black hole for one replica ([`Relay::black_hole`]: connections stay open and nothing goes
//! through, as in a network partition) and to see when a replica's requests reached Twilio
//! ([`Relay::forwarded`]). Dropped, it stops accepting.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    /// Bytes from the target, passed on.
    received: AtomicU64,
    /// When each chunk from a client was passed on to the target (wall clock).
    forwarded: Mutex<Vec<SystemTime>>,
    /// While false, each new connection is closed as it comes.
    open: AtomicBool,
    /// Bumped by each cut: relayed connections end.
    cuts: watch::Sender<u64>,
    /// Nothing passes from now on, either way, and no connection is closed.
    black_hole: AtomicBool,
}

impl Relay {
    /// Relays connections on `listener` to `target` (`host:port`).
    pub fn start(listener: TcpListener, target: String) -> Relay {
        let addr = listener.local_addr().expect("the relay's address");
        let shared = Arc::new(Shared {
            received: AtomicU64::new(0),
            forwarded: Mutex::new(Vec::new()),
            open: AtomicBool::new(true),
            cuts: watch::channel(0).0,
            black_hole: AtomicBool::new(false),
        });
        let relayed = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Subscribed first: a cut from here on ends this connection too.
                let mut cut_off = relayed.cuts.subscribe();
                if !relayed.open.load(Ordering::SeqCst) {
                    continue;
                }
                let (target, shared) = (target.clone(), relayed.clone());
                tokio::spawn(async move {
                    if shared.black_hole.load(Ordering::SeqCst) {
                        return swallow(client).await;
                    }
                    if let Ok(server) = TcpStream::connect(&target).await {
                        tokio::select! {
                            _ = relay(client, server, &shared) => {}
                            _ = cut_off.changed() => {}
                        }
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

    /// Closes every relayed connection, and each new one as it comes, until [`Relay::restore`]:
    /// the client is cut off from the target, and knows it.
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        self.shared.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }

    /// From now on nothing passes, on open connections or new ones, which stay open: the
    /// client sees no error, only silence.
    pub fn black_hole(&self) {
        self.shared.black_hole.store(true, Ordering::SeqCst);
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

/// Copies both ways until each side closes (or, in a black hole, drops what comes), counting
/// what `server` sends and timing what the client sends.
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
        if shared.black_hole.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        passed(n);
    }
    // A black-holed connection stays open on the client's side: silence, not a reset.
    if !shared.black_hole.load(Ordering::SeqCst) {
        let _ = to.shutdown().await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
