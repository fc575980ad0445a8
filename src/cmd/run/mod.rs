//! `senderops run`: serve the endpoints, reach the API server, lead (or stand by), and run the
//! controller until a signal, or until leadership ends.

mod args;
mod kinds;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use senderops::controllers::whatsapp_sender;
use senderops::health::Liveness;
use senderops::leader::{self, Fence, Leadership};
use senderops::metrics::{self, Metrics};
use senderops::runtime::controller::KubeClients;
use senderops::telemetry;
use senderops::twilio::Product;
use tokio::sync::watch;

pub use args::RunArgs;
use args::Settings;
use kinds::Kind;

/// Resolves on SIGTERM or Ctrl-C.
async fn signalled() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the operator");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A shutdown request that any number of tasks can wait for.
fn shutdown_flag() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        signalled().await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

async fn requested(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

pub async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format);
    if let Err(problem) = args.validate() {
        tracing::error!("{problem}");
        return ExitCode::FAILURE;
    }
    // reqwest and kube both use rustls; the process picks one crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Arc::new(Metrics::new());
    let liveness = Arc::new(Liveness::new(args.progress_deadline));
    let settings = args.settings(&metrics);
    let shutdown = shutdown_flag();
    let Some(server) = serve(&args, &metrics, &liveness, &shutdown).await else {
        return ExitCode::FAILURE;
    };
    let Some((clients, kinds)) = connect(&args, &settings, &metrics).await else {
        return ExitCode::FAILURE;
    };
    let leadership = match stand_by(&args, &clients, &liveness, &shutdown).await {
        Turn::Lead(leadership) => leadership,
        Turn::Stopped => return ExitCode::SUCCESS,
        Turn::Failed => return ExitCode::FAILURE,
    };
    let running = Running {
        kinds,
        clients,
        settings,
        metrics: metrics.clone(),
        liveness: liveness.clone(),
    };
    let exit = lead(running, &shutdown, leadership).await;
    if exit == ExitCode::SUCCESS {
        let _ = server.await;
        tracing::info!("senderops stopped");
    }
    exit
}

/// Serves `/metrics`, `/healthz` and `/readyz` until shutdown; `None` if the address is taken.
async fn serve(
    args: &RunArgs,
    metrics: &Arc<Metrics>,
    liveness: &Arc<Liveness>,
    shutdown: &watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let served = metrics::serve(
        metrics.clone(),
        liveness.clone(),
        args.metrics_addr,
        requested(shutdown.clone()),
    )
    .await;
    match served {
        Ok((addr, task)) => {
            tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
            Some(task)
        }
        Err(err) => {
            tracing::error!(addr = %args.metrics_addr, error = %err, "cannot serve metrics (--metrics-addr)");
            None
        }
    }
}

/// The API server's clients and the kinds to run, once it answers and their CRDs are there;
/// `None` (said why) if not.
async fn connect(
    args: &RunArgs,
    settings: &Settings,
    metrics: &Arc<Metrics>,
) -> Option<(KubeClients, Vec<Kind>)> {
    let clients = match kube_clients(args.kube_timeout).await {
        Ok(clients) => clients,
        Err(err) => {
            tracing::error!(
                error = %err,
                "cannot configure a Kubernetes client: set KUBECONFIG (or ~/.kube/config), or \
                 run in a pod with a service account"
            );
            return None;
        }
    };
    let kinds = kinds::to_run(
        &args.controllers,
        &clients,
        &settings.shared.namespaces,
        settings.shared.selector.as_deref(),
    )
    .await;
    let kinds = match kinds {
        Ok(kinds) => {
            let names: Vec<&str> = kinds.iter().map(|kind| kind.name()).collect();
            tracing::info!(controllers = %names.join(","), "controllers to run");
            kinds
        }
        Err(err) => {
            tracing::error!("{err}");
            return None;
        }
    };
    metrics.set_ready(true);
    // Leader or standby: an uninstall (the CRD deleted) makes every replica unready, not exit.
    tokio::spawn(whatsapp_sender::watch_crd(
        clients.calls.clone(),
        metrics.clone(),
    ));
    Some((clients, kinds))
}

/// What the leader runs: the kinds' controllers, with what they share.
struct Running {
    kinds: Vec<Kind>,
    clients: KubeClients,
    settings: Settings,
    metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
}

/// What standing by ended with.
enum Turn {
    /// This replica leads (`None`: without leader election, it always does).
    Lead(Option<Leadership>),
    /// Shut down while standing by.
    Stopped,
    Failed,
}

/// With leader election, waits for the Lease.
async fn stand_by(
    args: &RunArgs,
    clients: &KubeClients,
    liveness: &Liveness,
    shutdown: &watch::Receiver<bool>,
) -> Turn {
    if !args.leader_election {
        return Turn::Lead(None);
    }
    let lease = args.lease();
    tokio::select! {
        acquired = leader::acquire(clients.watches.clone(), &lease, liveness) => match acquired {
            Ok(held) => Turn::Lead(Some(held)),
            Err(err) => {
                tracing::error!(error = %err, lease = %lease.name, "leader election failed");
                Turn::Failed
            }
        },
        _ = requested(shutdown.clone()) => {
            tracing::info!("stopped while standing by");
            Turn::Stopped
        }
    }
}

/// Runs the controllers while this replica leads, all under its one Lease. A signal stops
/// them gracefully (in-flight reconciles finish), and the Lease is released. Leadership ending
/// (the Lease taken, or not renewed within its deadline) drops them at once: their reconciles
/// are aborted, and the fence already keeps them from Twilio.
async fn lead(
    running: Running,
    shutdown: &watch::Receiver<bool>,
    mut leadership: Option<Leadership>,
) -> ExitCode {
    let Running {
        kinds,
        clients,
        mut settings,
        metrics,
        liveness,
    } = running;
    // From here on the Twilio client stops at the leader's renew deadline.
    let fence = leadership
        .as_ref()
        .map_or_else(Fence::open, Leadership::fence);
    settings.shared.twilio.fence = fence.clone();
    liveness.leading(fence);
    metrics.set_leader(true);
    log_start(&settings);
    let leadership_ended = async {
        match leadership.as_mut() {
            Some(held) => held.ended().await,
            None => std::future::pending().await,
        }
    };
    let controllers = kinds.into_iter().map(|kind| {
        kind.run(
            clients.clone(),
            &settings,
            metrics.clone(),
            liveness.clone(),
            requested(shutdown.clone()),
        )
    });
    let ended = tokio::select! {
        _ = futures::future::join_all(controllers) => None,
        ending = leadership_ended => Some(ending),
    };
    metrics.set_leader(false);
    if let Some(ending) = ended {
        tracing::error!(
            "stopped leading: {ending}; exiting so that this replica restarts as a standby"
        );
        return ExitCode::FAILURE;
    }
    if let Some(held) = leadership {
        held.release().await;
    }
    ExitCode::SUCCESS
}

fn log_start(settings: &Settings) {
    tracing::info!(
        namespace = match settings.shared.namespaces.join(",").as_str() {
            "" => "(all)".to_string(),
            some => some.to_string(),
        },
        selector = settings.shared.selector.as_deref().unwrap_or("(none)"),
        twilio = %settings.shared.twilio.hosts.url(Product::Messaging),
        twilio_monitor = %settings.shared.twilio.hosts.url(Product::Monitor),
        twilio_api = %settings.shared.twilio.hosts.url(Product::Api),
        "senderops started"
    );
}

/// The API server clients, from the kubeconfig or the in-cluster config as
/// `kube::Client::try_default` makes it, sending a User-Agent that names the operator: kube-rs
/// sends none, and without one an audit log or an API server log cannot tell the operator's
/// requests from those of any other client with the same credentials.
///
/// Two clients: a read timeout would end every watch that stays quiet for that long, so only
/// the watches' client goes without one.
async fn kube_clients(timeout: Duration) -> Result<KubeClients, kube::Error> {
    let mut config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    config.headers.push((
        reqwest::header::USER_AGENT,
        reqwest::header::HeaderValue::from_static(concat!("senderops/", env!("CARGO_PKG_VERSION"))),
    ));
    let watches = kube::Client::try_from(config.clone())?;
    // Each phase of a call (connecting with TLS, sending, every wait for the answer's bytes)
    // within the timeout: a silent API server fails a call instead of holding it for ever.
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    // The timeout counts from the request, not from when its pooled connection went idle.
    config.reset_reader_on_write = true;
    let calls = kube::Client::try_from(config)?;
    Ok(KubeClients { watches, calls })
}
