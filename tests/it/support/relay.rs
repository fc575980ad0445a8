//! A TCP relay: each connection accepted on its listener is copied to a target, and the bytes
//! coming back from the target are counted. TLS passes through untouched. The node tests use
//! one so that pods reach the loopback simulator; the Secret-access test, to weigh what the API
//! server sends the operator; the namespaces test, to cut the operator off the API server
//! ([`Relay::cut`]). Dropped, it stops accepting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Relay {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    /// Whether connections are relayed; while cut, each one is closed as it comes.
    open: Arc<AtomicBool>,
    /// Bumped by each cut: relayed connections end.
    cuts: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Relays connections on `listener` to `target` (`host:port`).
    pub fn start(listener: TcpListener, target: String) -> Relay {
        let addr = listener.local_addr().expect("the relay's address");
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0);
        let (accepting, cut) = (open.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Subscribed first: a cut from here on ends this connection too.
                let mut cut_off = cut.subscribe();
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let (target, counter) = (target.clone(), counter.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&target).await {
                        tokio::select! {
                            _ = relay(client, server, &counter) => {}
                            _ = cut_off.changed() => {}
                        }
                    }
                });
            }
        });
        Relay {
            addr,
            received,
            open,
            cuts,
            task,
        }
    }

    /// Closes every relayed connection, and each new one as it comes, until [`Relay::restore`]:
    /// the client is cut off from the target.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes the target has sent back through the relay so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Copies both ways until each side closes, counting what `server` sends.
async fn relay(client: TcpStream, server: TcpStream, counter: &AtomicU64) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    };
    let down = async {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(n) = from_server.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
            if to_client.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
