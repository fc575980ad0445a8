//! `senderops run`'s flags, checked against each other, and the settings they make.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use senderops::controllers::whatsapp_sender::{SenderSettings, pacing::Pacing};
use senderops::leader::LeaseConfig;
use senderops::metrics::Metrics;
use senderops::runtime::accounts::AccountRegistry;
use senderops::runtime::controller;
use senderops::telemetry::LogFormat;
use senderops::twilio::{BudgetConfig, ClientConfig, Observer, RetryPolicy};

use super::kinds::Kind;

/// Later flags win over earlier ones, so wrappers and tests can override a default they pass.
#[derive(Args)]
#[command(args_override_self = true)]
pub struct RunArgs {
    /// One base URL for every Twilio product the operator calls (a proxy or the simulator).
    /// Unset, each product is called at its own Twilio host: the Senders API (messaging) at
    /// https://messaging.twilio.com, the Error Log's alerts (monitor) at
    /// https://monitor.twilio.com, the check of a credentials Secret's account (api v2010) at
    /// https://api.twilio.com.
    #[arg(long, env = "TWILIO_API_URL")]
    pub(super) twilio_api_url: Option<String>,

    /// The kinds to reconcile, comma-separated (default: every kind whose CRD is installed).
    #[arg(
        long,
        env = "SENDEROPS_CONTROLLERS",
        value_delimiter = ',',
        value_name = "KIND[,KIND...]"
    )]
    pub(super) controllers: Vec<Kind>,

    /// Watch only these namespaces: comma-separated, or the flag repeated (default: all
    /// namespaces). Each needs the operator's Role there (deploy/overlays/namespaced).
    #[arg(
        long,
        env = "WATCH_NAMESPACE",
        value_delimiter = ',',
        value_parser = namespace_name,
        value_name = "NS[,NS...]"
    )]
    pub(super) namespace: Vec<String>,

    /// How often settled (e.g. ONLINE) senders are read from Twilio.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub(super) resync_interval: Duration,

    /// First poll of a sender Twilio is working on (CREATING, VERIFYING, …); doubles per poll
    /// up to a minute.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(super) poll_interval: Duration,

    /// First retry after an error; doubles per consecutive error up to 5 minutes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(super) error_backoff: Duration,

    /// Senders reconciled at the same time.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) max_concurrent_reconciles: u16,

    /// Requests per second to Twilio per account; as many may go out at once after a quiet
    /// spell, so no second carries more than twice this.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) twilio_requests_per_second: u32,

    /// Register one number per account at a time, as Twilio advises.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(super) serial_onboarding: bool,

    /// A registration stuck waiting (e.g. for a code nobody provides) yields its account's
    /// turn, and the display-name check it runs, after this long.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub(super) onboarding_timeout: Duration,

    /// Of the unregistered senders of an account that share a display name no ONLINE sender of
    /// the account has, register one first and the others once it is ONLINE (or not at all, if
    /// Meta refuses the name), as Twilio advises before bulk registration.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(super) display_name_check: bool,

    /// The least time between two registrations in one account. Twilio: "Allow several minutes
    /// between Senders API requests"; 0 turns spacing off.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub(super) registration_interval: Duration,

    /// The least time between two new one-time codes asked for one sender
    /// (senderops.io/resend-code); each is an SMS or a call to the number.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub(super) code_resend_interval: Duration,

    /// The most new one-time codes asked for one sender in 24 hours.
    #[arg(long, default_value_t = 5)]
    pub(super) code_resends_per_day: u32,

    /// The least time between two reconciles of one sender forced by new values of
    /// senderops.io/reconcile-requested-at (longer while the sender backs off from errors).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(super) reconcile_request_interval: Duration,

    /// Refresh settled senders with one paginated list per account instead of a GET each.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(super) batched_refresh: bool,

    /// Per-request timeout for Twilio calls. A leader's calls also end at its renew deadline.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub(super) twilio_timeout: Duration,

    /// Per-request timeout for Kubernetes API calls other than watches (reads, status and
    /// finalizer writes, Events, the Lease).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(super) kube_timeout: Duration,

    /// The longest one reconcile may run; past it, it is dropped where it stands and retried
    /// with backoff (every step is safe to repeat).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub(super) reconcile_timeout: Duration,

    /// `/healthz` fails after this long without progress: the active replica's workers not
    /// answering a probe through their queue, or a standby not seeing its Lease.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub(super) progress_deadline: Duration,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(super) log_format: LogFormat,

    /// Only WhatsAppSenders matching this label selector (e.g. `senderops.io/shard=a`), so that
    /// several operators can each own a shard.
    #[arg(long)]
    pub(super) selector: Option<String>,

    /// Where `/metrics` (Prometheus), `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub(super) metrics_addr: SocketAddr,

    /// Reconcile only while holding a Lease, so that one of several replicas is active.
    #[arg(long)]
    pub(super) leader_election: bool,

    /// Name of the Lease for leader election (one per shard).
    #[arg(long, default_value = "senderops")]
    pub(super) lease_name: String,

    /// Namespace of the Lease (default: the pod's namespace from POD_NAMESPACE, else default).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub(super) lease_namespace: String,

    /// A leader that has not renewed its Lease for this long is replaced (whole seconds).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub(super) lease_duration: Duration,

    /// A leader that has not renewed its Lease for this long stops calling Twilio and exits,
    /// before a standby may take over; at least 1s shorter than --lease-duration (default: two
    /// thirds of it, 10s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(super) lease_renew_deadline: Option<Duration>,
}

/// A `--namespace` value: a namespace name, or nothing (`--namespace ""`: all namespaces).
fn namespace_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    if !name.is_empty() {
        senderops::runtime::namespaces::check_name(name)?;
    }
    Ok(name.to_string())
}

impl RunArgs {
    /// The Lease this replica competes for.
    pub(super) fn lease(&self) -> LeaseConfig {
        LeaseConfig {
            name: self.lease_name.clone(),
            namespace: self.lease_namespace.clone(),
            identity: lease_identity(),
            duration: self.lease_duration,
            renew_deadline: self
                .lease_renew_deadline
                .unwrap_or_else(|| LeaseConfig::default_renew_deadline(self.lease_duration)),
        }
    }

    /// The flags checked against each other; `Err` names the flag to change.
    pub(super) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--twilio-timeout", self.twilio_timeout),
            ("--kube-timeout", self.kube_timeout),
            ("--reconcile-timeout", self.reconcile_timeout),
        ];
        for (flag, value) in positive {
            if value.is_zero() {
                return Err(format!("{flag} must be longer than 0s"));
            }
        }
        if self.progress_deadline < Duration::from_secs(1) {
            return Err("--progress-deadline must be at least 1s".into());
        }
        if self.leader_election {
            self.lease().validate()?;
        }
        Ok(())
    }

    /// Twilio's hosts, or all of them at `--twilio-api-url`.
    pub(super) fn twilio_hosts(&self) -> ClientConfig {
        match &self.twilio_api_url {
            Some(url) => ClientConfig::default().all_products_at(url),
            None => ClientConfig::default(),
        }
    }

    pub(super) fn settings(&self, metrics: &Arc<Metrics>) -> Settings {
        let per_second =
            NonZeroU32::new(self.twilio_requests_per_second).expect("clap enforces ≥ 1");
        let shared = controller::Settings {
            namespaces: senderops::runtime::namespaces::normalise(self.namespace.iter().cloned()),
            selector: self.selector.clone(),
            twilio: ClientConfig {
                timeout: self.twilio_timeout,
                // Short waits inside a reconcile; anything longer is a requeue, so a worker is
                // never held for long.
                retry: RetryPolicy {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(250),
                    max_delay: Duration::from_secs(5),
                },
                budget: BudgetConfig {
                    per_second,
                    burst: per_second,
                },
                observer: Observer::new(metrics.clone()),
                ..self.twilio_hosts()
            },
            concurrency: self.max_concurrent_reconciles,
            error_backoff: self.error_backoff,
            reconcile_request_interval: self.reconcile_request_interval,
            reconcile_timeout: self.reconcile_timeout,
            // One registry for every controller of the process.
            accounts: Arc::new(AccountRegistry::new(BudgetConfig {
                per_second,
                burst: per_second,
            })),
            instance: Some(identity()),
        };
        let senders = SenderSettings {
            pacing: Pacing {
                poll_interval: self.poll_interval,
                resync_interval: self.resync_interval,
            },
            serial_onboarding: self.serial_onboarding,
            onboarding_max_hold: self.onboarding_timeout,
            batched_refresh: self.batched_refresh,
            display_name_check: self.display_name_check,
            registration_interval: self.registration_interval,
            code_resends: senderops::controllers::whatsapp_sender::resends::ResendLimits {
                interval: self.code_resend_interval,
                per_day: self.code_resends_per_day,
            },
            ..SenderSettings::default()
        };
        Settings { shared, senders }
    }
}

/// How every controller of the process behaves, and each kind's own settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub shared: controller::Settings,
    pub senders: SenderSettings,
}

/// This replica's name: the pod name in a cluster, host and process elsewhere.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "senderops".into());
        format!("{host}-{}", std::process::id())
    })
}

/// This process's name in the Lease. In a pod, the pod name plus a random suffix: a container
/// restarted in the same pod is a new candidate, which must not mistake the Lease its killed
/// predecessor held for its own (and so lead before the standby that watched it die). Outside a
/// pod, host and process id are unique already.
fn lease_identity() -> String {
    match std::env::var("POD_NAME") {
        Ok(pod) => format!("{pod}_{:08x}", rand::random::<u32>()),
        Err(_) => identity(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;
    use senderops::twilio::Product;

    /// What `senderops run` with no flags runs with: the defaults the README promises.
    #[test]
    fn run_without_flags_uses_the_documented_defaults() {
        let Cli {
            command: Command::Run(args),
        } = Cli::parse_from(["senderops", "run"])
        else {
            panic!("`run` parses as Run");
        };
        let settings = args.settings(&Arc::new(Metrics::new()));
        assert_eq!(
            settings.senders.pacing.resync_interval,
            Duration::from_secs(300)
        );
        assert_eq!(
            settings.senders.pacing.poll_interval,
            Duration::from_secs(5)
        );
        assert_eq!(settings.shared.concurrency, 10);
        assert_eq!(settings.shared.twilio.budget.per_second.get(), 5);
        assert!(settings.senders.serial_onboarding && settings.senders.batched_refresh);
        assert!(settings.senders.display_name_check);
        assert_eq!(
            settings.senders.registration_interval,
            Duration::from_secs(180)
        );
        assert_eq!(
            settings.senders.code_resends,
            senderops::controllers::whatsapp_sender::resends::ResendLimits::default()
        );
        assert_eq!(
            settings.shared.reconcile_request_interval,
            Duration::from_secs(10)
        );
        assert_eq!(
            settings.shared.twilio.hosts.url(Product::Messaging),
            "https://messaging.twilio.com"
        );
        assert_eq!(
            settings.shared.twilio.hosts.url(Product::Monitor),
            "https://monitor.twilio.com"
        );
        assert_eq!(
            settings.shared.twilio.hosts.url(Product::Api),
            "https://api.twilio.com"
        );
        assert!(settings.shared.namespaces.is_empty(), "all namespaces");
        assert_eq!(args.metrics_addr, "0.0.0.0:8080".parse().unwrap());
        assert!(!args.leader_election);
        assert_eq!(args.lease_name, "senderops");
        assert_eq!(args.lease_duration, Duration::from_secs(15));
        assert_eq!(args.lease().renew_deadline, Duration::from_secs(10));
        assert_eq!(args.kube_timeout, Duration::from_secs(10));
        assert_eq!(settings.shared.reconcile_timeout, Duration::from_secs(120));
        assert_eq!(args.progress_deadline, Duration::from_secs(120));
        assert_eq!(args.validate(), Ok(()));
    }

    fn run_args(flags: &[&str]) -> RunArgs {
        let argv = ["senderops", "run"].iter().chain(flags);
        match Cli::parse_from(argv).command {
            Command::Run(args) => *args,
            _ => panic!("`run` parses as Run"),
        }
    }

    #[test]
    fn the_lease_flags_are_checked_against_each_other_with_leader_election_only() {
        let tight = [
            "--lease-duration",
            "15s",
            "--lease-renew-deadline",
            "14500ms",
        ];
        assert_eq!(run_args(&tight).validate(), Ok(()), "no leader election");
        let with_election: Vec<&str> = tight.iter().copied().chain(["--leader-election"]).collect();
        let err = run_args(&with_election).validate().unwrap_err();
        assert!(
            err.contains("--lease-renew-deadline 14s 500ms must be at least 1s shorter"),
            "{err}"
        );
        let short = ["--leader-election", "--lease-duration", "3s"];
        assert_eq!(
            run_args(&short).validate(),
            Ok(()),
            "the default deadline follows"
        );
        assert_eq!(
            run_args(&short).lease().renew_deadline,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn timeouts_of_zero_are_refused() {
        for flag in ["--twilio-timeout", "--kube-timeout", "--reconcile-timeout"] {
            let err = run_args(&[flag, "0s"]).validate().unwrap_err();
            assert!(err.contains(flag), "{err}");
        }
        let err = run_args(&["--progress-deadline", "500ms"])
            .validate()
            .unwrap_err();
        assert!(err.contains("--progress-deadline"), "{err}");
    }

    #[test]
    fn one_twilio_url_sends_every_product_there() {
        let Cli {
            command: Command::Run(args),
        } = Cli::parse_from([
            "senderops",
            "run",
            "--twilio-api-url",
            "http://127.0.0.1:4010",
        ])
        else {
            panic!("`run` parses as Run");
        };
        let settings = args.settings(&Arc::new(Metrics::new()));
        assert_eq!(
            settings.shared.twilio.hosts.url(Product::Messaging),
            "http://127.0.0.1:4010"
        );
        assert_eq!(
            settings.shared.twilio.hosts.url(Product::Monitor),
            "http://127.0.0.1:4010"
        );
        assert_eq!(
            settings.shared.twilio.hosts.url(Product::Api),
            "http://127.0.0.1:4010"
        );
    }

    fn try_run_args(args: &[&str]) -> Result<Box<RunArgs>, clap::Error> {
        let argv = ["senderops", "run"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Run(args) => Ok(args),
            _ => panic!("`run` parses as Run"),
        }
    }

    fn namespaces(args: &[&str]) -> Vec<String> {
        let args = try_run_args(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        args.settings(&Arc::new(Metrics::new())).shared.namespaces
    }

    #[test]
    fn namespace_takes_a_list_comma_separated_or_repeated_each_once() {
        assert_eq!(namespaces(&["--namespace", "team-a"]), ["team-a"]);
        assert_eq!(
            namespaces(&["--namespace", "team-a,team-b"]),
            ["team-a", "team-b"]
        );
        assert_eq!(
            namespaces(&["--namespace", "team-a", "--namespace=team-b,team-c"]),
            ["team-a", "team-b", "team-c"]
        );
        assert_eq!(
            namespaces(&[
                "--namespace",
                "team-b, team-a,team-b",
                "--namespace",
                "team-a"
            ]),
            ["team-b", "team-a"],
            "each once, in the order first given"
        );
        assert!(
            namespaces(&["--namespace", ""]).is_empty(),
            "empty: every namespace"
        );
    }

    #[test]
    fn controllers_are_named_by_kind_and_an_unknown_one_is_refused() {
        assert!(run_args(&[]).controllers.is_empty(), "every installed kind");
        assert_eq!(
            run_args(&["--controllers", "whatsappsender"]).controllers,
            [Kind::WhatsAppSender]
        );
        let err = try_run_args(&["--controllers", "whatsappsender,templates"])
            .err()
            .expect("an unknown kind is refused");
        let err = err.to_string();
        assert!(
            err.contains("templates") && err.contains("whatsappsender"),
            "{err}"
        );
    }

    #[test]
    fn namespace_refuses_what_is_not_a_namespace_name() {
        for bad in ["Team-A", "team_a", "team-a,-b", "a.b", &"x".repeat(64)] {
            let err = try_run_args(&["--namespace", bad])
                .err()
                .unwrap_or_else(|| panic!("--namespace {bad:?} is refused"));
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
            let text = err.to_string();
            assert!(
                text.contains("--namespace") && text.contains("is not a namespace name"),
                "{bad}: {text}"
            );
        }
    }
}
