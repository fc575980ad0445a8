//! The client of one Twilio account: its [`Transport`] and the hosts of Twilio's products.
//! Each product's routes are in a module of its own (`senders`, `alerts`, `accounts`), as
//! methods of [`TwilioClient`]; a new product is a new module, nothing here.

use std::sync::Arc;
use std::time::Duration;

use super::budget::{BudgetConfig, RequestBudget};
use super::credentials::Credentials;
use super::error::TwilioError;
use super::retry::RetryPolicy;
use super::transport::{Transport, normalize_base_url};
use crate::leader::Fence;

/// Twilio's products the operator calls, each at a host of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    /// The Senders API (`/v2/Channels/Senders`) and Messaging Services.
    Messaging,
    /// The Error Log (`/v1/Alerts`).
    Monitor,
    /// The REST API of `2010-04-01` (Accounts, Keys, IncomingPhoneNumbers).
    Api,
    /// Content templates (`/v1/Content`).
    Content,
}

impl Product {
    pub const ALL: [Product; 4] = [
        Product::Messaging,
        Product::Monitor,
        Product::Api,
        Product::Content,
    ];

    /// Twilio's own host of the product.
    pub fn twilio_url(self) -> &'static str {
        match self {
            Product::Messaging => MESSAGING_URL,
            Product::Monitor => MONITOR_URL,
            Product::Api => API_URL,
            Product::Content => CONTENT_URL,
        }
    }
}

/// Twilio's hosts, one per product.
pub const MESSAGING_URL: &str = "https://messaging.twilio.com";
pub const MONITOR_URL: &str = "https://monitor.twilio.com";
pub const API_URL: &str = "https://api.twilio.com";
pub const CONTENT_URL: &str = "https://content.twilio.com";

/// Where each product is called: Twilio's hosts, or one base URL for all (a proxy, the
/// simulator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    urls: [String; Product::ALL.len()],
}

impl Default for Hosts {
    fn default() -> Self {
        Hosts {
            urls: Product::ALL.map(|p| p.twilio_url().to_string()),
        }
    }
}

impl Hosts {
    /// Every product at `base_url`.
    pub fn all_at(base_url: &str) -> Hosts {
        Hosts {
            urls: Product::ALL.map(|_| base_url.to_string()),
        }
    }

    /// `product` at `base_url`, the others where they were.
    pub fn with(mut self, product: Product, base_url: &str) -> Hosts {
        self.urls[product as usize] = base_url.to_string();
        self
    }

    pub fn url(&self, product: Product) -> &str {
        &self.urls[product as usize]
    }

    /// Each URL checked and without a trailing slash.
    fn normalized(&self) -> Result<Hosts, TwilioError> {
        let mut urls = self.urls.clone();
        for url in &mut urls {
            *url = normalize_base_url(url)?;
        }
        Ok(Hosts { urls })
    }
}

/// Told about every attempt a client makes, for metrics. The client knows nothing of how
/// they are kept.
pub trait RequestObserver: Send + Sync {
    /// One attempt of `operation` (create, fetch, update, delete, list) ended with `outcome`:
    /// the HTTP status ("202", "429", …), or "timeout", "connect", "transport" or "too_large"
    /// (a body over [`MAX_RESPONSE_BYTES`]).
    fn attempt(&self, operation: &'static str, outcome: &str, elapsed: Duration);
    /// A request waited this long for the account's request budget.
    fn budget_wait(&self, waited: Duration);
}

/// An optional [`RequestObserver`], shared by every client built with the same config.
#[derive(Clone, Default)]
pub struct Observer(pub(super) Option<Arc<dyn RequestObserver>>);

impl Observer {
    pub fn new(observer: Arc<dyn RequestObserver>) -> Self {
        Self(Some(observer))
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}

impl PartialEq for Observer {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for Observer {}

/// Settings shared by all clients the operator makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Where each product is called.
    pub hosts: Hosts,
    /// Whole-request limit (connect, send, read the answer) for each attempt.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Size of each account's bucket (the account registry keeps one per account).
    pub budget: BudgetConfig,
    /// `PageSize` of every list (senders, alerts).
    pub list_page_size: u32,
    /// Told about every attempt (metrics).
    pub observer: Observer,
    /// No request starts past it, and one in flight is dropped when it is reached: a leader's
    /// renew deadline (open without leader election).
    pub fence: Fence,
}

impl Default for ClientConfig {
    /// 15 s per request: Twilio answers Senders calls in well under a second, but create does
    /// work at Meta before its 202. 5 s to connect. 100 senders per page keeps a full resync of
    /// a large account to a few requests.
    fn default() -> Self {
        Self {
            hosts: Hosts::default(),
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            budget: BudgetConfig::default(),
            list_page_size: 100,
            observer: Observer::default(),
            fence: Fence::open(),
        }
    }
}

impl ClientConfig {
    /// Every Twilio product at one base URL (the simulator, or a proxy that routes by path).
    pub fn all_products_at(mut self, base_url: &str) -> Self {
        self.hosts = Hosts::all_at(base_url);
        self
    }
}

/// One Twilio account's client: its transport, where each product is, and what it learns is
/// shared under. Cheap to clone.
#[derive(Clone)]
pub struct TwilioClient {
    pub(super) transport: Transport,
    pub(super) hosts: Arc<Hosts>,
    /// What its caches are shared under: the account, unless Twilio could not confirm it.
    scope: Arc<str>,
    /// Why Twilio could not confirm the account, if it could not.
    unverified: Option<Arc<str>>,
    pub(super) list_page_size: u32,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("account_sid", &self.account_sid())
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl TwilioClient {
    /// A client for the account of `credentials`. `budget` should be that account's shared
    /// bucket (the account registry keeps one per account).
    pub fn new(
        credentials: Credentials,
        config: &ClientConfig,
        budget: RequestBudget,
    ) -> Result<Self, TwilioError> {
        credentials.validate()?;
        let hosts = config.hosts.normalized()?;
        if config.retry.max_attempts == 0 {
            return Err(TwilioError::InvalidConfig(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        // reqwest is built with `rustls-no-provider`: the process must pick the crypto
        // provider. Installing is idempotent in effect: a second call fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("senderops/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // Twilio's API never redirects. Following one would repeat a create elsewhere, or
            // (307/308) send an OTP body to whatever host a proxy or a wrong base URL names.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TwilioError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self {
            scope: Arc::from(credentials.account_sid()),
            unverified: None,
            transport: Transport {
                http,
                credentials: Arc::new(credentials),
                retry: config.retry,
                budget,
                observer: config.observer.clone(),
                fence: config.fence.clone(),
            },
            hosts: Arc::new(hosts),
            list_page_size: config.list_page_size.clamp(1, 1000),
        })
    }

    pub fn account_sid(&self) -> &str {
        self.transport.account_sid()
    }

    /// Where `product` is called, without a trailing slash.
    pub(super) fn url(&self, product: Product) -> &str {
        self.hosts.url(product)
    }

    /// The key under which what is learnt with this client (lists, marks, the Error Log) may
    /// be shared with other clients: the account SID unless [`TwilioClient::unconfirmed`]
    /// made it one of its own.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Why Twilio could not confirm that these credentials act for `account_sid`, if so.
    pub fn unverified(&self) -> Option<&str> {
        self.unverified.as_deref()
    }

    /// This client, its account not confirmed (`why`): what it learns is kept under `scope`,
    /// shared with no other credentials.
    pub fn unconfirmed(mut self, scope: &str, why: &str) -> Self {
        self.scope = Arc::from(scope);
        self.unverified = Some(Arc::from(why));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_base_urls_without_echoing_credentials() {
        let creds = || Credentials::auth_token("AC0123456789abcdef0123456789abcdef", "t");
        let budget = || RequestBudget::new(BudgetConfig::default());
        for bad in [
            "ftp://example.com",
            "https://user:pw@example.com",
            "not a url",
        ] {
            let config = ClientConfig {
                hosts: Hosts::default().with(Product::Messaging, bad),
                ..ClientConfig::default()
            };
            let err = TwilioClient::new(creds(), &config, budget()).unwrap_err();
            assert!(matches!(err, TwilioError::InvalidConfig(_)), "{bad}: {err}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn one_url_for_all_products_or_one_each() {
        let all = Hosts::all_at("http://127.0.0.1:4010");
        for product in Product::ALL {
            assert_eq!(all.url(product), "http://127.0.0.1:4010");
        }
        let twilio = Hosts::default();
        assert_eq!(twilio.url(Product::Messaging), MESSAGING_URL);
        assert_eq!(twilio.url(Product::Monitor), MONITOR_URL);
        assert_eq!(twilio.url(Product::Api), API_URL);
        assert_eq!(twilio.url(Product::Content), CONTENT_URL);
    }
}
