//! `twilio-sim`: a simulator of Twilio's WhatsApp Senders API (`/v2/Channels/Senders`) with a
//! realistic sender lifecycle, the Monitor API's Error Log (`/v1/Alerts`) where registration
//! failures are logged, the REST API v2010's list of incoming phone numbers (the read that tells
//! which account a key belongs to), and a control API under `/_sim/` for tests. See README.md.

mod alerts;
mod auth;
mod behavior;
mod config;
mod control;
mod errors;
mod faults;
mod gmt;
mod guard;
mod lifecycle;
mod model;
mod monitor_api;
mod monitor_model;
mod numbers_api;
mod paging;
mod stats;
mod store;
mod twilio_api;
mod wire_enum;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    Account, ApiKey, DEFAULT_CODE_LOCKOUT, DEFAULT_OFFLINE_STEPS, DEFAULT_STEP_DELAY, SimConfig,
};

use auth::Credentials;
use errors::ApiError;
use faults::Faults;
use lifecycle::Timing;
use stats::Stats;
use store::Store;

/// Shared state behind every handler. Plain mutexes: no lock is held across an `.await`.
struct Sim {
    credentials: Credentials,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    stats: Arc<Mutex<Stats>>,
}

/// A poisoned lock only means a handler panicked; the data is still usable for a simulator.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The whole simulator as an axum router (Senders, Alerts and v2010 APIs, control API, request
/// log and counters).
///
/// # Panics
///
/// If the settings do not fit together ([`SimConfig::check`]); [`spawn`] returns them as an
/// error instead.
pub fn router(config: SimConfig) -> Router {
    if let Err(err) = config.check() {
        panic!("twilio-sim: {err}");
    }
    let stats = Arc::new(Mutex::new(Stats::default()));
    let sim = Arc::new(Sim {
        credentials: Credentials::new(&config.accounts, &config.restricted_api_keys),
        store: Mutex::new(Store::new(Timing {
            step: config.step_delay,
            offline_steps: config.offline_steps,
            code_lockout: config.code_lockout,
        })),
        faults: Mutex::new(Faults::default()),
        stats: stats.clone(),
    });
    Router::new()
        .merge(twilio_api::routes(sim.clone()))
        .merge(monitor_api::routes(sim.clone()))
        .merge(numbers_api::routes(sim.clone()))
        .merge(control::routes(sim))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(stats, stats::track))
        // Outermost, so that the counters and the log still see the status that was lost.
        .layer(axum::middleware::from_fn(faults::lose_marked_answers))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::method_not_allowed(method.as_str())
}

/// A running simulator. Dropping it (or calling [`SimHandle::shutdown`]) stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, with a wildcard bind address replaced by loopback so it can be dialled.
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => tracing::warn!(%err, "server stopped with an error"),
                Ok(Err(err)) => tracing::warn!(%err, "server task failed"),
                Err(_) => {
                    tracing::warn!("graceful shutdown timed out; aborting");
                    task.abort();
                }
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `listen` and serves the simulator in a background task. Settings that do not fit
/// together ([`SimConfig::check`]) are an `InvalidInput` error.
pub async fn spawn(listen: SocketAddr, config: SimConfig) -> std::io::Result<SimHandle> {
    config
        .check()
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(config);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped sender stops the server just like an explicit shutdown.
                let _ = rx.await;
            })
            .await
    });
    Ok(SimHandle {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}
