//! One account's senders as a paginated list shows them, shared by every reconcile of that
//! account. Two uses:
//!
//! - Looking a number up before creating it. Senders reconciled around the same time share one
//!   list pass instead of each walking every page.
//! - Refreshing settled senders: when an account has many, one list (a page per 100 senders)
//!   replaces one GET each.
//!
//! A list is only as good as its start time. Each caller says how fresh it needs it: a lookup
//! after a create of unknown fate, or a refresh after an update, needs a list that began after
//! that event. One list runs per account at a time; callers that arrive meanwhile wait for it and
//! reuse it when it is fresh enough for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::onboarding::SenderKey;
use crate::twilio::{Sender, SendersClient, TwilioError, sender_id_for};

/// Every account's view.
#[derive(Debug)]
pub struct AccountViews {
    lookup_reuse: Duration,
    views: Mutex<HashMap<String, Arc<AccountView>>>,
}

impl AccountViews {
    /// `lookup_reuse`: how old a list may be and still answer "is this number registered?"
    /// for a number the operator has not tried to create since.
    pub fn new(lookup_reuse: Duration) -> Self {
        Self {
            lookup_reuse,
            views: Mutex::default(),
        }
    }

    pub fn account(&self, account_sid: &str) -> Arc<AccountView> {
        let mut views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        views
            .entry(account_sid.to_string())
            .or_insert_with(|| Arc::new(AccountView::new(self.lookup_reuse)))
            .clone()
    }
}

/// One list pass: the account's WhatsApp senders as of `started`.
#[derive(Debug)]
pub struct Snapshot {
    pub started: Instant,
    /// Boxed: a `Sender` is most of a kilobyte, and a table keeps up to twice as many slots as
    /// entries; with 10,000 senders the unboxed tables took 13 MiB.
    by_sid: HashMap<String, Box<Sender>>,
    sid_by_number: HashMap<String, String>,
}

impl Snapshot {
    /// Lists the account, indexing each page as it arrives.
    async fn list(client: &SendersClient) -> Result<Self, TwilioError> {
        let mut snapshot = Self {
            started: Instant::now(),
            by_sid: HashMap::new(),
            sid_by_number: HashMap::new(),
        };
        client.list_each(|sender| snapshot.insert(sender)).await?;
        Ok(snapshot)
    }

    fn insert(&mut self, sender: Sender) {
        self.sid_by_number
            .insert(normalize(&sender.sender_id), sender.sid.clone());
        self.by_sid.insert(sender.sid.clone(), Box::new(sender));
    }

    pub fn by_sid(&self, sid: &str) -> Option<&Sender> {
        self.by_sid.get(sid).map(Box::as_ref)
    }

    pub fn by_number(&self, phone_e164: &str) -> Option<&Sender> {
        self.sid_by_number
            .get(&normalize(&sender_id_for(phone_e164)))
            .and_then(|sid| self.by_sid.get(sid))
            .map(Box::as_ref)
    }

    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }
}

fn normalize(sender_id: &str) -> String {
    sender_id.trim().to_ascii_lowercase()
}

/// What a list-backed read found.
#[derive(Debug)]
pub struct Listed {
    pub sender: Option<Sender>,
    /// True when this call made the list (rather than reusing one): the caller may wake the
    /// account's other settled senders to use it.
    pub listed: bool,
}

#[derive(Debug, Default)]
struct Marks {
    /// Numbers whose registration changed in a way an older list may not show: a create whose
    /// fate is unknown, a sender found deleted.
    numbers: HashMap<String, Instant>,
    /// Senders the operator changed (profile, webhook, code): an older list shows stale fields.
    written: HashMap<String, Instant>,
    /// Settled senders of this account (not moving through a Twilio step), by SID.
    settled: HashMap<String, SenderKey>,
}

#[derive(Debug)]
pub struct AccountView {
    lookup_reuse: Duration,
    latest: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    marks: Mutex<Marks>,
}

impl AccountView {
    fn new(lookup_reuse: Duration) -> Self {
        Self {
            lookup_reuse,
            latest: tokio::sync::Mutex::default(),
            marks: Mutex::default(),
        }
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sender registered for `phone_e164` in this account, if any. A recent list may say
    /// that the number is registered; only one that began after `seen` (when the operator
    /// first saw the object asking for it) may say that it is not: someone may have
    /// registered it by hand moments before applying the object, and a create for a number
    /// waiting for its code asks Meta for a new one. `fresh` demands a list that starts now
    /// (after a 63110, say); otherwise a recent one is reused unless the number changed since
    /// it began.
    pub async fn lookup(
        &self,
        client: &SendersClient,
        phone_e164: &str,
        fresh: bool,
        seen: Instant,
    ) -> Result<Listed, TwilioError> {
        let now = Instant::now();
        let found_since = if fresh {
            now
        } else {
            let changed = self.marks().numbers.get(&normalize(phone_e164)).copied();
            let recent = now.checked_sub(self.lookup_reuse).unwrap_or(now);
            changed.map_or(recent, |c| c.max(recent))
        };
        let absent_since = found_since.max(seen);
        let (snapshot, listed) = self
            .snapshot_where(client, |snapshot| {
                snapshot.started >= absent_since
                    || (snapshot.started >= found_since && snapshot.by_number(phone_e164).is_some())
            })
            .await?;
        Ok(Listed {
            sender: snapshot.by_number(phone_e164).cloned(),
            listed,
        })
    }

    /// `sid` as a list no older than `max_age` (and younger than the operator's last change to
    /// it) shows it. `sender: None` means the list does not have it: fetch it to tell a deleted
    /// sender from one the list missed.
    pub async fn refresh(
        &self,
        client: &SendersClient,
        sid: &str,
        max_age: Duration,
    ) -> Result<Listed, TwilioError> {
        let now = Instant::now();
        let recent = now.checked_sub(max_age).unwrap_or(now);
        let written = self.marks().written.get(sid).copied();
        let not_before = written.map_or(recent, |w| w.max(recent));
        let (snapshot, listed) = self.snapshot_since(client, not_before).await?;
        Ok(Listed {
            sender: snapshot.by_sid(sid).cloned(),
            listed,
        })
    }

    async fn snapshot_since(
        &self,
        client: &SendersClient,
        not_before: Instant,
    ) -> Result<(Arc<Snapshot>, bool), TwilioError> {
        self.snapshot_where(client, |snapshot| snapshot.started >= not_before)
            .await
    }

    /// The latest list if `usable` accepts it, else a new one.
    async fn snapshot_where(
        &self,
        client: &SendersClient,
        usable: impl Fn(&Snapshot) -> bool,
    ) -> Result<(Arc<Snapshot>, bool), TwilioError> {
        let mut latest = self.latest.lock().await;
        if let Some(snapshot) = latest.as_ref().filter(|s| usable(s)) {
            return Ok((snapshot.clone(), false));
        }
        let snapshot = Arc::new(Snapshot::list(client).await?);
        *latest = Some(snapshot.clone());
        Ok((snapshot, true))
    }

    /// A create for `phone_e164` may have gone through unseen, or its sender vanished: lists
    /// that began before now no longer answer for it.
    pub fn number_changed(&self, phone_e164: &str) {
        let now = Instant::now();
        let mut marks = self.marks();
        let reuse = self.lookup_reuse;
        marks.numbers.retain(|_, at| now - *at < reuse);
        marks.numbers.insert(normalize(phone_e164), now);
    }

    /// The operator just changed `sid` at Twilio.
    pub fn written(&self, sid: &str, forget_after: Duration) {
        let now = Instant::now();
        let mut marks = self.marks();
        marks.written.retain(|_, at| now - *at < forget_after);
        marks.written.insert(sid.to_string(), now);
    }

    /// Records whether `sid` (owned by `key`) is settled, for batched refresh.
    pub fn set_settled(&self, sid: &str, key: &SenderKey, settled: bool) {
        let mut marks = self.marks();
        if settled {
            if marks.settled.get(sid) != Some(key) {
                marks.settled.insert(sid.to_string(), key.clone());
            }
        } else {
            marks.settled.remove(sid);
        }
    }

    /// `sid` no longer belongs to a sender of this operator.
    pub fn forget(&self, sid: &str) {
        let mut marks = self.marks();
        marks.settled.remove(sid);
        marks.written.remove(sid);
    }

    pub fn settled_count(&self) -> usize {
        self.marks().settled.len()
    }

    /// The settled senders other than `except`, to wake after a fresh list.
    pub fn settled_except(&self, except: &str) -> Vec<SenderKey> {
        self.marks()
            .settled
            .iter()
            .filter(|(sid, _)| sid.as_str() != except)
            .map(|(_, key)| key.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;
    use twilio_sim::{Account, SimConfig};

    use super::*;
    use crate::twilio::{
        AccountBudgets, BudgetConfig, ClientConfig, CreateSenderRequest, Credentials, FieldUpdate,
        Profile,
    };

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    struct World {
        sim: twilio_sim::SimHandle,
        client: SendersClient,
    }

    async fn world() -> World {
        let sim = twilio_sim::spawn(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig {
                accounts: vec![Account::parse(&format!("{ACCOUNT}:token")).unwrap()],
                step_delay: Duration::from_millis(20),
                ..SimConfig::default()
            },
        )
        .await
        .unwrap();
        let config = ClientConfig {
            base_url: sim.base_url(),
            list_page_size: 2,
            ..ClientConfig::default()
        };
        let budgets = AccountBudgets::new(BudgetConfig::default());
        let client = SendersClient::new(
            Credentials::auth_token(ACCOUNT, "token"),
            &config,
            budgets.for_account(ACCOUNT),
        )
        .unwrap();
        World { sim, client }
    }

    async fn register(client: &SendersClient, phone: &str) -> Sender {
        client
            .create(&CreateSenderRequest {
                sender_id: sender_id_for(phone),
                profile: Some(Profile {
                    name: FieldUpdate::Set("Acme".into()),
                    ..Profile::default()
                }),
                ..CreateSenderRequest::default()
            })
            .await
            .unwrap()
    }

    async fn list_requests(sim: &twilio_sim::SimHandle) -> u64 {
        let stats: Value = reqwest::get(format!("{}/_sim/stats", sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "GET" && r["route"] == "/v2/Channels/Senders")
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    }

    #[tokio::test]
    async fn lookups_around_the_same_time_share_one_list_pass() {
        let w = world().await;
        for i in 0..5 {
            register(&w.client, &format!("+1500555000{i}")).await;
        }
        let view = AccountView::new(Duration::from_secs(30));
        let seen = Instant::now();
        let phones: Vec<String> = (0..8).map(|i| format!("+1500555000{i}")).collect();
        let lookups = phones
            .iter()
            .map(|phone| view.lookup(&w.client, phone, false, seen));
        let found = futures::future::try_join_all(lookups).await.unwrap();
        assert_eq!(found.iter().filter(|l| l.sender.is_some()).count(), 5);
        assert_eq!(
            found.iter().filter(|l| l.listed).count(),
            1,
            "one caller listed"
        );
        // Five senders at two per page: three pages, one pass.
        assert_eq!(list_requests(&w.sim).await, 3);
    }

    #[tokio::test]
    async fn a_number_that_changed_needs_a_list_made_after_the_change() {
        let w = world().await;
        let view = AccountView::new(Duration::from_secs(30));
        let seen = Instant::now();
        assert!(
            view.lookup(&w.client, "+15005550001", false, seen)
                .await
                .unwrap()
                .sender
                .is_none()
        );
        // A create whose answer was lost: the old list cannot answer for this number.
        register(&w.client, "+15005550001").await;
        view.number_changed("+15005550001");
        let again = view
            .lookup(&w.client, "+15005550001", false, seen)
            .await
            .unwrap();
        assert!(again.listed && again.sender.is_some());
        // Another number may still use that fresh list.
        let other = view
            .lookup(&w.client, "+15005550009", false, seen)
            .await
            .unwrap();
        assert!(!other.listed);
        assert!(
            view.lookup(&w.client, "+15005550009", true, seen)
                .await
                .unwrap()
                .listed,
            "fresh"
        );
    }

    #[tokio::test]
    async fn only_a_list_made_after_the_object_was_seen_says_its_number_is_free() {
        let w = world().await;
        let view = AccountView::new(Duration::from_secs(30));
        let first = view
            .lookup(&w.client, "+15005550001", false, Instant::now())
            .await
            .unwrap();
        assert!(first.listed && first.sender.is_none());
        // Someone registers a second number by hand, then applies an object for it.
        register(&w.client, "+15005550002").await;
        let seen = Instant::now();
        let second = view
            .lookup(&w.client, "+15005550002", false, seen)
            .await
            .unwrap();
        assert!(
            second.listed,
            "a list older than the object must not say its number is free"
        );
        assert!(second.sender.is_some(), "{second:?}");
        // Registered in a list made before the object was seen: that answer stands.
        register(&w.client, "+15005550003").await;
        let third = view
            .lookup(&w.client, "+15005550002", false, Instant::now())
            .await
            .unwrap();
        assert!(!third.listed && third.sender.is_some(), "{third:?}");
        assert_eq!(list_requests(&w.sim).await, 2, "one page per list pass");
    }

    #[tokio::test]
    async fn a_refresh_after_a_write_waits_for_a_newer_list() {
        let w = world().await;
        let sid = register(&w.client, "+15005550001").await.sid;
        let view = AccountView::new(Duration::from_secs(30));
        let max_age = Duration::from_secs(60);
        assert!(view.refresh(&w.client, &sid, max_age).await.unwrap().listed);
        assert!(
            !view.refresh(&w.client, &sid, max_age).await.unwrap().listed,
            "reused"
        );
        view.written(&sid, max_age);
        let after = view.refresh(&w.client, &sid, max_age).await.unwrap();
        assert!(
            after.listed,
            "a list older than the write shows stale fields"
        );
        assert_eq!(after.sender.unwrap().sid, sid);
        assert!(
            view.refresh(&w.client, "XE00000000000000000000000000000000", max_age)
                .await
                .unwrap()
                .sender
                .is_none()
        );
    }

    #[test]
    fn settled_senders_are_tracked_for_waking() {
        let view = AccountView::new(Duration::from_secs(30));
        let key = |n: &str| SenderKey::new(n).within("ns");
        view.set_settled("XE1", &key("a"), true);
        view.set_settled("XE2", &key("b"), true);
        view.set_settled("XE3", &key("c"), false);
        assert_eq!(view.settled_count(), 2);
        assert_eq!(view.settled_except("XE1"), [key("b")]);
        view.set_settled("XE2", &key("b"), false);
        view.forget("XE1");
        assert_eq!(view.settled_count(), 0);
    }
}
