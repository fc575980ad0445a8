//! Leader election with a Lease: of several replicas, only the holder of the Lease reconciles;
//! the others stand by, watching the Lease, and take it the moment its holder releases it, or
//! once it has gone unrenewed for its duration (see [`view`]), with one conditional write.
//!
//! The holder renews the Lease every fifth of its renew deadline. One that has not renewed
//! within the deadline (cut off from the API server, or frozen) stops acting before any standby
//! may take over: the [`Fence`] the Twilio client checks passes at (last renewal sent) + renew
//! deadline, and the replica exits to restart as a standby. The renew deadline is shorter than
//! the Lease duration by at least a second, so that what was cut off at the deadline is gone
//! before the standby starts. A leader that finds the Lease taken stops at once.
//!
//! The writes are ours ([`lease`]) rather than kube-lease-manager's: that library backs off and
//! logs when a renewal fails but never reports that the deadline has passed, which is the one
//! thing a leader must act on.

mod fence;
mod lease;
mod view;

use std::fmt;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use fence::{Deadline, Fence, Fenced};
pub use lease::WriteError;

use crate::health::Liveness;
use lease::Held;
use view::{LeaseView, Next, Record};

/// Which Lease, held by whom, for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Unique per process: a restarted container must not mistake its predecessor's Lease for
    /// its own.
    pub identity: String,
    /// A Lease not renewed for this long is free for another replica.
    pub duration: Duration,
    /// A leader that has not renewed its Lease for this long stops acting.
    pub renew_deadline: Duration,
}

/// What is left between a leader's renew deadline and the moment a standby may take over:
/// time for requests cut off at the deadline to be gone.
pub const MIN_DEADLINE_MARGIN: Duration = Duration::from_secs(1);

impl LeaseConfig {
    /// Two thirds of the Lease duration (client-go's 10 s of 15 s), leaving at least
    /// [`MIN_DEADLINE_MARGIN`].
    pub fn default_renew_deadline(duration: Duration) -> Duration {
        (duration * 2 / 3).min(duration.saturating_sub(MIN_DEADLINE_MARGIN))
    }

    /// Checks the durations against each other; `Err` says which flag to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.duration.subsec_nanos() != 0 || self.duration < Duration::from_secs(2) {
            return Err(format!(
                "--lease-duration {} must be whole seconds, at least 2s: a Lease counts its \
                 duration in seconds",
                humantime::format_duration(self.duration)
            ));
        }
        if self.renew_deadline < Duration::from_millis(500) {
            return Err(format!(
                "--lease-renew-deadline {} is too short to renew in: at least 500ms",
                humantime::format_duration(self.renew_deadline)
            ));
        }
        if self.renew_deadline + MIN_DEADLINE_MARGIN > self.duration {
            return Err(format!(
                "--lease-renew-deadline {} must be at least {} shorter than --lease-duration {}: \
                 a leader stops acting at its renew deadline, and what it cut off then must be \
                 gone before a standby may take the Lease",
                humantime::format_duration(self.renew_deadline),
                humantime::format_duration(MIN_DEADLINE_MARGIN),
                humantime::format_duration(self.duration),
            ));
        }
        Ok(())
    }

    /// Between two renewals: five tries before the deadline (client-go's 2 s of 10 s).
    fn renew_every(&self) -> Duration {
        self.renew_deadline / 5
    }

    /// Reads and writes while standing by: one renewal period each.
    fn call_timeout(&self) -> Duration {
        self.renew_every().max(Duration::from_secs(1))
    }
}

/// Why a leader stopped leading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Another replica holds the Lease now (or it was deleted).
    Lost { holder: Option<String> },
    /// No renewal succeeded within the renew deadline.
    Lapsed { unrenewed: Duration },
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Lost {
                holder: Some(holder),
            } => {
                write!(f, "lost the Lease to another replica ({holder})")
            }
            Ending::Lost { holder: None } => {
                write!(f, "lost the Lease (it was deleted or released)")
            }
            Ending::Lapsed { unrenewed } => write!(
                f,
                "could not renew the Lease for {}, past its renew deadline",
                humantime::format_duration(crate::health::round_to_ms(*unrenewed))
            ),
        }
    }
}

/// This replica's hold on the Lease.
pub struct Leadership {
    fence: Fence,
    ended: watch::Receiver<Option<Ending>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Waits until this replica holds the Lease (creating it if needed). Only an RBAC refusal
/// ends the wait with an error; anything else is retried.
pub async fn acquire(
    client: Client,
    config: &LeaseConfig,
    liveness: &Liveness,
) -> Result<Leadership, WriteError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let mut changes = lease_changes(leases.clone(), &config.name);
    let mut view = LeaseView::new(Instant::now());
    tracing::info!(
        lease = %config.name,
        namespace = %config.namespace,
        identity = %config.identity,
        "waiting for leadership"
    );
    loop {
        let taken = match view.next(&config.identity, config.duration, Instant::now()) {
            Next::Take => {
                take(&leases, config, liveness, |lease| {
                    lease::holder(lease).is_none_or(|h| h == config.identity)
                })
                .await?
            }
            Next::TakeOver(expired) => {
                let taken = take(&leases, config, liveness, |lease| {
                    Record::of(lease) == expired
                })
                .await?;
                if taken.is_some() {
                    tracing::info!(
                        lease = %config.name,
                        previous = expired.holder.as_deref().unwrap_or("-"),
                        "took over a Lease its holder stopped renewing"
                    );
                }
                taken
            }
            Next::TakeIfExpired => {
                take(&leases, config, liveness, |lease| {
                    lease::holder(lease).is_none_or(|h| h == config.identity)
                        || lease::expired_by_timestamps(lease, config.duration)
                })
                .await?
            }
            Next::Wait(until) => {
                let deadline = async {
                    match until {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    change = changes.next() => apply(&mut view, change, liveness),
                    _ = deadline => {}
                }
                continue;
            }
        };
        match taken {
            Some(held) => return Ok(Leadership::hold(leases, config.clone(), held)),
            None => view.lost_race(Instant::now()),
        }
    }
}

/// One attempt to take the Lease, if `may_take` accepts it as read now. `None`: not taken
/// (someone else holds it, or was quicker).
async fn take(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    liveness: &Liveness,
    may_take: impl Fn(&Lease) -> bool,
) -> Result<Option<Held>, WriteError> {
    let timeout = config.call_timeout();
    let attempt = async {
        match lease::read(leases, config, timeout).await? {
            None => lease::create(leases, config, timeout).await.map(Some),
            Some(lease) => {
                liveness.progressed();
                if may_take(&lease) {
                    lease::claim(leases, config, &lease, timeout)
                        .await
                        .map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    };
    match attempt.await {
        Ok(held) => Ok(held),
        Err(WriteError::Conflict) => Ok(None),
        Err(err @ WriteError::Forbidden(_)) => Err(err),
        Err(err) => {
            tracing::warn!(error = %err, lease = %config.name, "could not take the Lease");
            Ok(None)
        }
    }
}

/// The watch of the one Lease, restarted with backoff when it fails.
fn lease_changes(
    leases: Api<Lease>,
    name: &str,
) -> impl Stream<Item = Result<watcher::Event<Lease>, watcher::Error>> + Unpin + use<> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(leases, config).default_backoff().boxed()
}

fn apply(
    view: &mut LeaseView,
    change: Option<Result<watcher::Event<Lease>, watcher::Error>>,
    liveness: &Liveness,
) {
    let now = Instant::now();
    if matches!(change, Some(Ok(_))) {
        liveness.progressed();
    }
    match change {
        Some(Ok(watcher::Event::Init)) => view.list_started(),
        Some(Ok(watcher::Event::InitApply(lease) | watcher::Event::Apply(lease))) => {
            view.observe(Some(Record::of(&lease)), now)
        }
        Some(Ok(watcher::Event::Delete(_))) => view.observe(None, now),
        Some(Ok(watcher::Event::InitDone)) => view.list_done(now),
        Some(Err(err)) => {
            tracing::warn!(
                error = %err,
                "cannot watch the Lease (its Role needs list and watch on leases); standing by on \
                 its timestamps instead"
            );
            view.watch_failed(now);
        }
        // The backoff keeps the watch going for ever; should it end, decide by timestamps.
        None => view.watch_failed(now),
    }
}

impl Leadership {
    /// Keeps the Lease renewed from now on.
    fn hold(leases: Api<Lease>, config: LeaseConfig, held: Held) -> Leadership {
        tracing::info!(identity = %config.identity, "this replica is the leader");
        let fence = Fence::closed();
        fence.extend_to(held.renewed_at + config.renew_deadline);
        let (ended_tx, ended) = watch::channel(None);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(keep(leases, config, held, fence.clone(), ended_tx, stopped));
        Leadership {
            fence,
            ended,
            stop: Some(stop),
            task,
        }
    }

    /// What the Twilio client must check: passed once this replica may no longer lead.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Resolves when this replica stops leading: the Lease taken, or not renewed in time.
    pub async fn ended(&mut self) -> Ending {
        match self.ended.wait_for(Option::is_some).await {
            Ok(ending) => ending.clone().expect("waited for Some"),
            // The renewal task is gone without a word (it panicked): nothing renews any more.
            Err(_) => {
                self.fence.close();
                Ending::Lapsed {
                    unrenewed: Duration::ZERO,
                }
            }
        }
    }

    /// Gives the Lease up, so a standby takes over at once instead of after it expires.
    pub async fn release(mut self) {
        self.fence.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(err) = self.task.await {
            tracing::warn!(error = %err, "the Lease task failed");
        }
    }
}

/// Renews the Lease until told to release it, it is taken, or the renew deadline passes.
async fn keep(
    leases: Api<Lease>,
    config: LeaseConfig,
    mut held: Held,
    fence: Fence,
    ended: watch::Sender<Option<Ending>>,
    mut stop: oneshot::Receiver<()>,
) {
    let end = |ending: Ending| {
        fence.close();
        let _ = ended.send(Some(ending));
    };
    let mut next = held.renewed_at + config.renew_every();
    loop {
        let deadline = held.renewed_at + config.renew_deadline;
        tokio::select! {
            biased;
            _ = &mut stop => {
                release(&leases, &config, &held).await;
                return;
            }
            // A retry never waits past the deadline: the replica stops the moment it passes.
            _ = tokio::time::sleep_until(next.min(deadline).into()) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return end(Ending::Lapsed {
                unrenewed: now - held.renewed_at,
            });
        }
        match renew_once(&leases, &config, &held, deadline).await {
            Renewal::Renewed(renewed) => {
                held = renewed;
                fence.extend_to(held.renewed_at + config.renew_deadline);
                next = held.renewed_at + config.renew_every();
            }
            Renewal::Retry { version, at } => {
                if let Some(version) = version {
                    held.version = version;
                }
                next = at;
            }
            Renewal::Lost { holder } => return end(Ending::Lost { holder }),
        }
    }
}

/// What one renewal attempt came to.
enum Renewal {
    Renewed(Held),
    /// Try again at `at`, conditional on `version` if it is new.
    Retry {
        version: Option<String>,
        at: Instant,
    },
    /// Another replica holds it, or nobody.
    Lost {
        holder: Option<String>,
    },
}

/// One renewal, which never outlives `deadline`: past it this replica has stopped acting.
async fn renew_once(
    leases: &Api<Lease>,
    config: &LeaseConfig,
    held: &Held,
    deadline: Instant,
) -> Renewal {
    let retry_soon = || (Instant::now() + config.renew_every() / 2).min(deadline);
    let left = deadline.saturating_duration_since(Instant::now());
    match lease::renew(leases, config, held, left).await {
        Ok(renewed) => Renewal::Renewed(renewed),
        // Changed since this replica's last write: taken, or an earlier renewal whose answer
        // was lost landed after all.
        Err(WriteError::Conflict) => {
            let left = deadline.saturating_duration_since(Instant::now());
            match lease::read(leases, config, left).await {
                Ok(Some(lease)) if lease::holder(&lease) == Some(config.identity.as_str()) => {
                    Renewal::Retry {
                        version: Some(lease.resource_version().unwrap_or_default()),
                        at: Instant::now(),
                    }
                }
                Ok(lease) => Renewal::Lost {
                    holder: lease.as_ref().and_then(lease::holder).map(str::to_string),
                },
                Err(err) => {
                    tracing::warn!(error = %err, lease = %config.name, "could not read the Lease after a conflict");
                    Renewal::Retry {
                        version: None,
                        at: retry_soon(),
                    }
                }
            }
        }
        Err(err) => {
            tracing::warn!(
                error = %err,
                lease = %config.name,
                unrenewed_ms = held.renewed_at.elapsed().as_millis() as u64,
                deadline_ms = config.renew_deadline.as_millis() as u64,
                "could not renew the Lease; retrying until the renew deadline"
            );
            Renewal::Retry {
                version: None,
                at: retry_soon(),
            }
        }
    }
}

/// Gives the Lease up, if this replica still holds the version it wrote last.
async fn release(leases: &Api<Lease>, config: &LeaseConfig, held: &Held) {
    match lease::release(leases, config, held, config.call_timeout()).await {
        Ok(()) => tracing::info!("released the Lease"),
        Err(WriteError::Conflict) => {
            tracing::info!("did not release the Lease: it changed since this replica renewed it")
        }
        Err(err) => tracing::warn!(error = %err, "could not release the Lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(duration: u64, deadline_ms: u64) -> LeaseConfig {
        LeaseConfig {
            name: "senderops".into(),
            namespace: "default".into(),
            identity: "a".into(),
            duration: Duration::from_secs(duration),
            renew_deadline: Duration::from_millis(deadline_ms),
        }
    }

    #[test]
    fn the_default_deadline_is_two_thirds_leaving_a_second() {
        let deadline = LeaseConfig::default_renew_deadline;
        assert_eq!(deadline(Duration::from_secs(15)), Duration::from_secs(10));
        assert_eq!(deadline(Duration::from_secs(3)), Duration::from_secs(2));
        assert_eq!(deadline(Duration::from_secs(2)), Duration::from_secs(1));
        for seconds in 2..100 {
            let duration = Duration::from_secs(seconds);
            let mut config = config(seconds, 0);
            config.renew_deadline = deadline(duration);
            assert_eq!(config.validate(), Ok(()), "{seconds} s");
        }
    }

    #[test]
    fn durations_that_leave_no_margin_are_refused() {
        assert_eq!(config(15, 10_000).validate(), Ok(()));
        assert_eq!(config(15, 14_000).validate(), Ok(()));
        let err = config(15, 14_500).validate().unwrap_err();
        assert!(
            err.contains("at least 1s shorter than --lease-duration 15s"),
            "{err}"
        );
        let err = config(15, 15_000).validate().unwrap_err();
        assert!(err.contains("--lease-renew-deadline 15s"), "{err}");
        let err = config(15, 400).validate().unwrap_err();
        assert!(err.contains("at least 500ms"), "{err}");
        let mut fractional = config(15, 10_000);
        fractional.duration = Duration::from_millis(15_500);
        assert!(fractional.validate().unwrap_err().contains("whole seconds"));
        assert!(
            config(1, 500)
                .validate()
                .unwrap_err()
                .contains("at least 2s")
        );
    }

    #[test]
    fn an_ending_says_what_happened() {
        assert_eq!(
            Ending::Lost {
                holder: Some("b".into())
            }
            .to_string(),
            "lost the Lease to another replica (b)"
        );
        assert_eq!(
            Ending::Lapsed {
                unrenewed: Duration::from_millis(10_004)
            }
            .to_string(),
            "could not renew the Lease for 10s 4ms, past its renew deadline"
        );
    }
}
