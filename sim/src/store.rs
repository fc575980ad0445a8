//! Every account's senders and the per-number behaviours, with the Senders API operations on
//! them. Callers pass `now`; each operation first brings the senders it touches up to date.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rand::Rng;

use crate::errors::ApiError;
use crate::lifecycle::{Behavior, Sender, Timing};
use crate::model::{
    CreateRequest, Field, OfflineReason, ProfilePatch, Status, UpdateRequest, parse_sender_id,
};

/// One page of an account's senders, in creation order.
#[derive(Debug)]
pub struct Page {
    pub senders: Vec<Sender>,
    /// Where the next page starts, if there is one.
    pub next: Option<u64>,
    /// `None`: no previous page; `Some(None)`: it is the first page; `Some(Some(s))`: starts at `s`.
    pub previous: Option<Option<u64>>,
}

/// Meta-side changes made through the control API.
#[derive(Debug, Default)]
pub struct SenderPatch {
    pub status: Option<Status>,
    pub quality_rating: Field<String>,
    pub messaging_limit: Field<String>,
    pub offline_reasons: Field<Vec<OfflineReason>>,
}

#[derive(Debug)]
pub struct Store {
    timing: Timing,
    /// Keyed by a creation sequence number: gives stable list order and page tokens that
    /// survive deletions.
    senders: BTreeMap<u64, Sender>,
    by_sid: HashMap<String, u64>,
    numbers: BTreeMap<String, Behavior>,
    next_seq: u64,
}

fn sender_path(sid: &str) -> String {
    format!("/v2/Channels/Senders/{sid}")
}

impl Store {
    pub fn new(timing: Timing) -> Store {
        Store {
            timing,
            senders: BTreeMap::new(),
            by_sid: HashMap::new(),
            numbers: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Forgets senders and number behaviours.
    pub fn reset(&mut self) {
        *self = Store::new(self.timing);
    }

    fn find_mut(
        &mut self,
        account: Option<&str>,
        sid: &str,
        now: Instant,
    ) -> Result<&mut Sender, ApiError> {
        let sender = self
            .by_sid
            .get(sid)
            .and_then(|seq| self.senders.get_mut(seq))
            .filter(|s| account.is_none_or(|a| s.account_sid == a))
            .ok_or_else(|| ApiError::not_found(&sender_path(sid)))?;
        sender.advance(now);
        Ok(sender)
    }

    pub fn create(
        &mut self,
        account: &str,
        request: CreateRequest,
        now: Instant,
    ) -> Result<Sender, ApiError> {
        let sender_id = match request.sender_id {
            Field::Value(id) => id,
            _ => {
                return Err(ApiError::invalid_parameter(
                    "Missing required parameter sender_id in the post body",
                ));
            }
        };
        let phone = parse_sender_id(&sender_id)?;
        if let Some(c) = &request.configuration {
            c.validate()?;
        }
        if let Some(w) = &request.webhook {
            w.validate()?;
        }
        let profile = request.profile.map(|p| p.into_patch()).transpose()?;

        if let Some(seq) = self.seq_for_phone(&phone) {
            let existing = self.senders.get_mut(&seq).expect("indexed sender exists");
            existing.advance(now);
            if existing.account_sid != account {
                return Err(ApiError::already_registered(format!(
                    "The phone number {phone} is already registered on WhatsApp by another account"
                )));
            }
            if existing.status != Status::PendingVerification {
                return Err(ApiError::already_registered(format!(
                    "The phone number {phone} is already registered as sender {} ({})",
                    existing.sid, existing.status
                )));
            }
            // Creating again while waiting for the code is how one asks Meta for a new code.
            existing.request_code(now)?;
            return Ok(existing.clone());
        }

        // Twilio requires a display name for WhatsApp senders; Meta reviews it after registration.
        if profile.as_ref().and_then(|p| p.name.value()).is_none() {
            return Err(ApiError::validation(
                "profile.name is required for WhatsApp senders: set the display name that follows Meta's display name guidelines",
            ));
        }
        let behavior = self.numbers.get(&phone).copied().unwrap_or_default();
        let mut sender = Sender::new(
            self.new_sid(),
            account.to_string(),
            phone,
            behavior,
            now,
            self.timing,
        )?;
        if let Some(c) = request.configuration {
            c.apply(&mut sender.configuration);
        }
        if let Some(w) = request.webhook {
            w.apply(&mut sender.webhook);
        }
        if let Some(p) = profile {
            p.apply(&mut sender.profile);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_sid.insert(sender.sid.clone(), seq);
        self.senders.insert(seq, sender.clone());
        Ok(sender)
    }

    fn seq_for_phone(&self, phone: &str) -> Option<u64> {
        self.senders
            .iter()
            .find(|(_, s)| s.phone_number == phone)
            .map(|(seq, _)| *seq)
    }

    fn new_sid(&self) -> String {
        let mut rng = rand::rng();
        loop {
            let sid = format!("XE{:032x}", rng.random::<u128>());
            if !self.by_sid.contains_key(&sid) {
                return sid;
            }
        }
    }

    pub fn fetch(&mut self, account: &str, sid: &str, now: Instant) -> Result<Sender, ApiError> {
        self.find_mut(Some(account), sid, now).map(|s| s.clone())
    }

    pub fn update(
        &mut self,
        account: &str,
        sid: &str,
        request: UpdateRequest,
        now: Instant,
    ) -> Result<Sender, ApiError> {
        let sender = self.find_mut(Some(account), sid, now)?;

        if let Some(c) = &request.configuration {
            c.validate()?;
        }
        if let Some(w) = &request.webhook {
            w.validate()?;
        }
        let profile: Option<ProfilePatch> = request.profile.map(|p| p.into_patch()).transpose()?;
        if let Some(new_name) = profile.as_ref().and_then(|p| p.name.value())
            && let Some(current) = &sender.profile.name
            && current != new_name
        {
            return Err(ApiError::validation(format!(
                "profile.name cannot be changed through the API (current display name {current:?}); \
                 display name changes are reviewed by Meta and made in WhatsApp Manager"
            )));
        }
        let code = request
            .configuration
            .as_ref()
            .and_then(|c| c.verification_code.value())
            .filter(|code| !code.is_empty())
            .cloned();

        let touches_profile = profile.is_some() || request.webhook.is_some();
        if let Some(c) = request.configuration {
            c.apply(&mut sender.configuration);
        }
        if let Some(w) = request.webhook {
            w.apply(&mut sender.webhook);
        }
        if let Some(mut p) = profile {
            // A null name is not a request to drop the display name.
            if p.name == Field::Null {
                p.name = Field::Absent;
            }
            p.apply(&mut sender.profile);
        }
        if let Some(code) = code {
            sender.submit_code(&code, now);
        }
        if touches_profile {
            sender.start_updating(now);
        }
        Ok(sender.clone())
    }

    pub fn delete(&mut self, account: &str, sid: &str) -> Result<(), ApiError> {
        match self.by_sid.get(sid) {
            Some(seq) if self.senders[seq].account_sid == account => {
                self.senders.remove(seq);
                self.by_sid.remove(sid);
                Ok(())
            }
            _ => Err(ApiError::not_found(&sender_path(sid))),
        }
    }

    /// Up to `size` of the account's senders starting at sequence number `start`.
    pub fn page(&mut self, account: &str, start: Option<u64>, size: usize, now: Instant) -> Page {
        let start = start.unwrap_or(0);
        let mut after = self
            .senders
            .range_mut(start..)
            .filter(|(_, s)| s.account_sid == account);
        let mut senders = Vec::new();
        for (_, sender) in after.by_ref().take(size) {
            sender.advance(now);
            senders.push(sender.clone());
        }
        let next = after.next().map(|(seq, _)| *seq);

        let before: Vec<u64> = self
            .senders
            .range(..start)
            .filter(|(_, s)| s.account_sid == account)
            .map(|(seq, _)| *seq)
            .collect();
        let previous = match before.len() {
            0 => None,
            n if n <= size => Some(None),
            n => Some(Some(before[n - size])),
        };
        Page {
            senders,
            next,
            previous,
        }
    }

    // --- control API -------------------------------------------------------------------------

    pub fn set_number(&mut self, phone: String, behavior: Behavior) {
        self.numbers.insert(phone, behavior);
    }

    pub fn numbers(&self) -> impl Iterator<Item = (&String, &Behavior)> {
        self.numbers.iter()
    }

    /// Every sender of every account, in creation order.
    pub fn all(&mut self, now: Instant) -> Vec<Sender> {
        self.senders
            .values_mut()
            .map(|s| {
                s.advance(now);
                s.clone()
            })
            .collect()
    }

    /// The last code sent for this sender, if any arrived.
    pub fn otp(&mut self, sid: &str, now: Instant) -> Result<Option<String>, ApiError> {
        Ok(self.find_mut(None, sid, now)?.otp.clone())
    }

    pub fn patch(
        &mut self,
        sid: &str,
        patch: SenderPatch,
        now: Instant,
    ) -> Result<Sender, ApiError> {
        let sender = self.find_mut(None, sid, now)?;
        if let Some(status) = patch.status {
            sender.force_status(status);
        }
        patch
            .quality_rating
            .apply_to(&mut sender.properties.quality_rating);
        patch
            .messaging_limit
            .apply_to(&mut sender.properties.messaging_limit);
        patch.offline_reasons.apply_to(&mut sender.offline_reasons);
        Ok(sender.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const STEP: Duration = Duration::from_secs(1);
    const TIMING: Timing = Timing {
        step: STEP,
        offline_steps: 3,
        code_lockout: Duration::from_secs(60),
    };

    fn create(
        store: &mut Store,
        account: &str,
        number: &str,
        now: Instant,
    ) -> Result<Sender, ApiError> {
        let request = serde_json::from_value(json!({
            "sender_id": format!("whatsapp:{number}"),
            "profile": {"name": "Acme"},
        }))
        .unwrap();
        store.create(account, request, now)
    }

    #[test]
    fn page_tokens_walk_forward_and_back() {
        let t0 = Instant::now();
        let mut store = Store::new(TIMING);
        for i in 0..5 {
            create(&mut store, "AC1", &format!("+1500555000{i}"), t0).unwrap();
            create(&mut store, "AC2", &format!("+1600555000{i}"), t0).unwrap();
        }
        let first = store.page("AC1", None, 2, t0);
        assert_eq!(first.senders.len(), 2);
        assert!(first.previous.is_none());
        let second = store.page("AC1", first.next, 2, t0);
        assert_eq!(second.previous, Some(None));
        let third = store.page("AC1", second.next, 2, t0);
        assert_eq!(third.senders.len(), 1);
        assert!(third.next.is_none());
        assert_eq!(third.previous, Some(first.next));
        let numbers: Vec<_> = [first, second, third]
            .into_iter()
            .flat_map(|p| p.senders)
            .map(|s| s.phone_number)
            .collect();
        assert_eq!(
            numbers,
            (0..5)
                .map(|i| format!("+1500555000{i}"))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn refused_update_changes_nothing() {
        let t0 = Instant::now();
        let mut store = Store::new(TIMING);
        let request = serde_json::from_value(json!({
            "sender_id": "whatsapp:+15005550006",
            "profile": {"name": "Acme", "about": "old"}
        }))
        .unwrap();
        let sid = store.create("AC1", request, t0).unwrap().sid;
        let update =
            serde_json::from_value(json!({"profile": {"name": "Other", "about": "new"}})).unwrap();
        assert_eq!(
            store.update("AC1", &sid, update, t0).unwrap_err().code,
            63100
        );
        let sender = store.fetch("AC1", &sid, t0).unwrap();
        assert_eq!(sender.profile.about.as_deref(), Some("old"));
    }

    #[test]
    fn a_refused_number_stores_nothing() {
        let t0 = Instant::now();
        let mut store = Store::new(TIMING);
        store.set_number("+15005550006".into(), Behavior::WabaFull);
        let err = create(&mut store, "AC1", "+15005550006", t0).unwrap_err();
        assert_eq!(err.code, 63104, "{err:?}");
        assert!(store.all(t0).is_empty(), "{:?}", store.all(t0));
        // The failed create does not hold the number either.
        store.set_number("+15005550006".into(), Behavior::NeedsCode);
        assert!(create(&mut store, "AC1", "+15005550006", t0).is_ok());
    }

    #[test]
    fn re_creates_while_pending_count_as_create_requests() {
        let t0 = Instant::now();
        let mut store = Store::new(TIMING);
        let sid = create(&mut store, "AC1", "+15005550006", t0).unwrap().sid;
        let t1 = t0 + STEP;
        for _ in 0..2 {
            let again = create(&mut store, "AC1", "+15005550006", t1).unwrap();
            assert_eq!(again.sid, sid);
        }
        let sender = store.fetch("AC1", &sid, t1).unwrap();
        assert_eq!((sender.create_requests, sender.codes_sent), (3, 3));
    }
}
