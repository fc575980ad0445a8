//! One account's senders as a paginated list shows them: the latest list pass, shared by every
//! reconcile of that account. One pass runs per account at a time; callers that arrive meanwhile
//! wait for it and reuse it when it is fresh enough for them (the account's record in
//! [`super::state`] says what is fresh enough for a question).

use std::cmp::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use crate::twilio::{
    OfflineReason, Sender, SenderConfiguration, SenderProfile, SenderProperties, SenderStatus,
    SenderWebhook, TwilioClient, TwilioError, sender_id_for,
};

/// One list pass: the account's WhatsApp senders as of `started`.
///
/// Every account's latest pass stays in memory, so it is kept compact: a reader gets a whole
/// [`Sender`] back (an adopted sender is mirrored and converged from it, a settled one
/// refreshed), but the pass holds each sender as a [`Listing`] of boxed strings and shared
/// sections, and finds it through two sorted indexes rather than hash maps keyed by copies of
/// its SID and number. With 10,000 senders the boxed `Sender`s and their maps took 12.4 MiB
/// at the peak of an adoption burst (heaptrack, `make bench`).
#[derive(Debug)]
pub struct Snapshot {
    pub started: Instant,
    /// In list order.
    listings: Vec<Listing>,
    /// Positions in `listings` ordered by SID, the last listed first among equal SIDs.
    by_sid: Box<[u32]>,
    /// Positions in `listings` ordered by number (the sender ID in one form), the last listed
    /// first among equal numbers.
    by_number: Box<[u32]>,
}

/// One listed sender. The sections (configuration, webhook, profile, properties) are shared
/// with the senders of the same pass that have equal ones: an account's senders mostly have
/// one business profile and one webhook.
#[derive(Debug)]
struct Listing {
    sid: Box<str>,
    status: SenderStatus,
    sender_id: Box<str>,
    configuration: Option<Arc<SenderConfiguration>>,
    webhook: Option<Arc<SenderWebhook>>,
    profile: Option<Arc<SenderProfile>>,
    properties: Option<Arc<SenderProperties>>,
    offline_reasons: Box<[OfflineReason]>,
    url: Option<Box<str>>,
}

impl Listing {
    fn sender(&self) -> Sender {
        Sender {
            sid: self.sid.to_string(),
            status: self.status.clone(),
            sender_id: self.sender_id.to_string(),
            configuration: self.configuration.as_deref().cloned(),
            webhook: self.webhook.as_deref().cloned(),
            profile: self.profile.as_deref().cloned(),
            properties: self.properties.as_deref().cloned(),
            offline_reasons: self.offline_reasons.to_vec(),
            url: self.url.as_deref().map(str::to_string),
        }
    }
}

/// Makes equal sections one shared value while a pass is built: the distinct values seen
/// last, compared in full (most senders of an account repeat the first few).
#[derive(Debug)]
struct Shared<T> {
    recent: Vec<Arc<T>>,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self { recent: Vec::new() }
    }
}

/// How many distinct values of one section a pass compares a new one with.
const SHARED_RECENT: usize = 8;

impl<T: PartialEq> Shared<T> {
    fn share(&mut self, value: Option<T>) -> Option<Arc<T>> {
        let value = value?;
        if let Some(position) = self.recent.iter().position(|seen| **seen == value) {
            let seen = self.recent.remove(position);
            self.recent.push(seen.clone());
            return Some(seen);
        }
        if self.recent.len() == SHARED_RECENT {
            self.recent.remove(0);
        }
        let value = Arc::new(value);
        self.recent.push(value.clone());
        Some(value)
    }
}

/// A pass being built, page by page.
#[derive(Debug, Default)]
struct Builder {
    listings: Vec<Listing>,
    configurations: Shared<SenderConfiguration>,
    webhooks: Shared<SenderWebhook>,
    profiles: Shared<SenderProfile>,
    properties: Shared<SenderProperties>,
}

impl Builder {
    fn insert(&mut self, sender: Sender) {
        let listing = Listing {
            sid: sender.sid.into_boxed_str(),
            status: sender.status,
            sender_id: sender.sender_id.into_boxed_str(),
            configuration: self.configurations.share(sender.configuration),
            webhook: self.webhooks.share(sender.webhook),
            profile: self.profiles.share(sender.profile),
            properties: self.properties.share(sender.properties),
            offline_reasons: sender.offline_reasons.into_boxed_slice(),
            url: sender.url.map(String::into_boxed_str),
        };
        self.listings.push(listing);
    }

    fn finish(self, started: Instant) -> Snapshot {
        let mut listings = self.listings;
        listings.shrink_to_fit();
        let by_sid = sorted(&listings, |a, b| a.sid.cmp(&b.sid));
        let by_number = sorted(&listings, |a, b| number_order(&a.sender_id, &b.sender_id));
        Snapshot {
            started,
            listings,
            by_sid,
            by_number,
        }
    }
}

/// The positions of `listings` ordered by `order`, the later position first among equals: a
/// sender listed twice (a page boundary moving under the list) is found as listed last.
fn sorted(listings: &[Listing], order: impl Fn(&Listing, &Listing) -> Ordering) -> Box<[u32]> {
    let mut positions: Vec<u32> = (0..listings.len())
        .map(|i| u32::try_from(i).expect("fewer than 2^32 senders in an account"))
        .collect();
    positions.sort_unstable_by(|&a, &b| {
        order(&listings[a as usize], &listings[b as usize]).then(b.cmp(&a))
    });
    positions.into_boxed_slice()
}

/// Sender IDs in one form, whatever their case and surrounding spaces, compared without
/// copying.
fn number_order(a: &str, b: &str) -> Ordering {
    a.trim()
        .bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.trim().bytes().map(|c| c.to_ascii_lowercase()))
}

impl Snapshot {
    /// Lists the account, keeping each page as it arrives.
    async fn list(client: &TwilioClient) -> Result<Self, TwilioError> {
        let started = Instant::now();
        let mut builder = Builder::default();
        client.list_each(|sender| builder.insert(sender)).await?;
        Ok(builder.finish(started))
    }

    pub fn by_sid(&self, sid: &str) -> Option<Sender> {
        self.listing_by_sid(sid).map(Listing::sender)
    }

    /// The sender of `phone_e164`, in any form, as listed under its SID.
    pub fn by_number(&self, phone_e164: &str) -> Option<Sender> {
        self.listing_by_number(phone_e164).map(Listing::sender)
    }

    pub fn has_number(&self, phone_e164: &str) -> bool {
        self.listing_by_number(phone_e164).is_some()
    }

    fn listing_by_sid(&self, sid: &str) -> Option<&Listing> {
        let at = self
            .by_sid
            .partition_point(|&i| &*self.listing(i).sid < sid);
        let listing = self.listing(*self.by_sid.get(at)?);
        (&*listing.sid == sid).then_some(listing)
    }

    /// Found by number, then by the SID of the last sender listed with the number (as the
    /// SID index would answer for it).
    fn listing_by_number(&self, phone_e164: &str) -> Option<&Listing> {
        let number = sender_id_for(phone_e164);
        let order = |i: u32| number_order(&self.listing(i).sender_id, &number);
        let at = self
            .by_number
            .partition_point(|&i| order(i) == Ordering::Less);
        let found = *self.by_number.get(at)?;
        if order(found) != Ordering::Equal {
            return None;
        }
        self.listing_by_sid(&self.listing(found).sid)
    }

    fn listing(&self, position: u32) -> &Listing {
        &self.listings[position as usize]
    }
}

/// What a list-backed read found.
#[derive(Debug)]
pub struct Listed {
    pub sender: Option<Sender>,
    /// True when this call made the list (rather than reusing one): the caller may wake the
    /// account's other settled senders to use it.
    pub listed: bool,
}

/// The latest list pass of one account.
#[derive(Debug, Default)]
pub struct Lists {
    latest: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
}

impl Lists {
    /// The latest pass if `usable` accepts it, else a new one (which becomes the latest).
    pub async fn latest_where(
        &self,
        client: &TwilioClient,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::whatsapp_sender::sim_world::World;

    fn listed(sid: &str, sender_id: &str, about: &str) -> Sender {
        Sender {
            sid: sid.into(),
            status: SenderStatus::Online,
            sender_id: sender_id.into(),
            profile: Some(SenderProfile {
                name: Some("Acme".into()),
                about: Some(about.into()),
                ..SenderProfile::default()
            }),
            webhook: Some(SenderWebhook::default()),
            offline_reasons: vec![OfflineReason {
                code: Some("63001".into()),
                ..OfflineReason::default()
            }],
            url: Some(format!(
                "https://messaging.twilio.com/v2/Channels/Senders/{sid}"
            )),
            ..Sender::default()
        }
    }

    fn pass(senders: &[Sender]) -> Snapshot {
        let mut builder = Builder::default();
        for sender in senders {
            builder.insert(sender.clone());
        }
        builder.finish(Instant::now())
    }

    #[test]
    fn a_pass_gives_back_each_sender_as_listed_and_shares_equal_sections() {
        let a = listed("XE01", "whatsapp:+15005550001", "same");
        let b = listed("XE02", "WhatsApp:+15005550002 ", "same");
        let c = listed("XE03", "whatsapp:+15005550003", "other");
        let snapshot = pass(&[c.clone(), a.clone(), b.clone()]);
        assert_eq!(snapshot.by_sid("XE01"), Some(a.clone()));
        assert_eq!(snapshot.by_number("+15005550002"), Some(b));
        assert_eq!(snapshot.by_number("15005550003"), Some(c));
        assert!(snapshot.has_number("+15005550001"));
        assert_eq!(snapshot.by_sid("XE04"), None);
        assert!(!snapshot.has_number("+15005550004"));
        let profile = |sid: &str| {
            snapshot
                .listing_by_sid(sid)
                .unwrap()
                .profile
                .clone()
                .unwrap()
        };
        assert!(Arc::ptr_eq(&profile("XE01"), &profile("XE02")));
        assert!(!Arc::ptr_eq(&profile("XE01"), &profile("XE03")));
    }

    #[test]
    fn a_sender_listed_twice_is_found_as_listed_last() {
        let first = listed("XE01", "whatsapp:+15005550001", "first");
        let moved = listed("XE01", "whatsapp:+15005550002", "moved");
        let other = listed("XE02", "whatsapp:+15005550001", "other");
        let snapshot = pass(&[first, moved.clone()]);
        assert_eq!(snapshot.by_sid("XE01"), Some(moved.clone()));
        assert_eq!(
            snapshot.by_number("+15005550001"),
            Some(moved.clone()),
            "the number's SID, as that SID was listed last"
        );
        let snapshot = pass(&[moved.clone(), other.clone()]);
        assert_eq!(snapshot.by_number("+15005550001"), Some(other));
        assert_eq!(snapshot.by_number("+15005550002"), Some(moved));
    }

    #[tokio::test]
    async fn callers_around_the_same_time_share_one_list_pass() {
        let w = World::start().await;
        for i in 0..5 {
            w.register(&format!("+1500555000{i}")).await;
        }
        let lists = Lists::default();
        let since = Instant::now();
        let passes = (0..8).map(|_| lists.latest_where(&w.client, |s| s.started >= since));
        let results = futures::future::try_join_all(passes).await.unwrap();
        assert_eq!(results.iter().filter(|(_, listed)| *listed).count(), 1);
        let (snapshot, _) = &results[0];
        assert!(snapshot.by_number("+15005550003").is_some());
        assert!(
            snapshot.by_number("15005550003").is_some(),
            "any form of the number"
        );
        assert!(snapshot.by_number("+15005550009").is_none());
        // Five senders at two per page: three pages, one pass.
        assert_eq!(w.list_requests().await, 3);
    }
}
