//! Every account's senders, the per-number behaviours and the Error Log, with the Senders and
//! Alerts API operations on them. Callers pass `now`; each operation first brings the senders
//! it touches up to date, and logs the failures that brings to light.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rand::Rng;

use crate::alerts::{self, Alert, AlertFilter, AlertLog, AlertPage, Cursor, LogLevel, NewAlert};
use crate::behavior::failure_message;
use crate::errors::ApiError;
use crate::gmt::WallClock;
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
    alerts: AlertLog,
    /// The GMT time of the instants the lifecycle runs on, for alert timestamps.
    clock: WallClock,
}

/// An alert the control API logs, as Twilio would about one of the sender's registrations.
#[derive(Debug)]
pub struct AlertRequest {
    pub resource_sid: String,
    pub error_code: String,
    pub alert_text: Option<String>,
    pub log_level: LogLevel,
}

/// Brings a sender up to date and logs the failures that brought to light.
fn settle(sender: &mut Sender, now: Instant, log: &mut AlertLog, clock: &WallClock) {
    sender.advance(now);
    log_failures(sender, log, clock);
}

/// Hands the sender's new failures to the Error Log, each at the time it happened.
fn log_failures(sender: &mut Sender, log: &mut AlertLog, clock: &WallClock) {
    for failure in sender.take_failures() {
        log.log(NewAlert {
            account_sid: sender.account_sid.clone(),
            resource_sid: sender.sid.clone(),
            error_code: failure.code.to_string(),
            alert_text: alerts::text(&failure_message(failure.code), &sender.sender_id()),
            log_level: LogLevel::Error,
            at: clock.at(failure.at),
        });
    }
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
            alerts: AlertLog::default(),
            clock: WallClock::new(),
        }
    }

    /// The wall-clock time of the instants the lifecycle runs on.
    pub fn clock(&self) -> WallClock {
        self.clock
    }

    /// Forgets senders, number behaviours and alerts.
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
        settle(sender, now, &mut self.alerts, &self.clock);
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
            settle(existing, now, &mut self.alerts, &self.clock);
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
            // A 63114 refusal is logged too: it is about this sender.
            let asked = existing.request_code(now);
            log_failures(existing, &mut self.alerts, &self.clock);
            asked?;
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
            settle(sender, now, &mut self.alerts, &self.clock);
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

    // --- Alerts (Monitor API) ------------------------------------------------------------------

    /// Brings every sender of the account up to date, so that a read of the Error Log at `now`
    /// has every failure that happened by then: an alert never shows up later with an earlier
    /// time than a read that missed it.
    fn settle_account(&mut self, account: &str, now: Instant) {
        for sender in self
            .senders
            .values_mut()
            .filter(|s| s.account_sid == account)
        {
            settle(sender, now, &mut self.alerts, &self.clock);
        }
    }

    pub fn alerts_page(
        &mut self,
        account: &str,
        filter: &AlertFilter,
        start: Option<Cursor>,
        size: usize,
        now: Instant,
    ) -> Result<AlertPage, ApiError> {
        self.settle_account(account, now);
        self.alerts
            .page(account, filter, start, size, self.clock.at(now))
    }

    pub fn alert(&mut self, account: &str, sid: &str, now: Instant) -> Result<Alert, ApiError> {
        self.settle_account(account, now);
        self.alerts
            .get(account, sid, self.clock.at(now))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&format!("/v1/Alerts/{sid}")))
    }

    // --- control API -------------------------------------------------------------------------

    /// Logs an alert about a sender, in the account that owns it, at `now`.
    pub fn log_alert(&mut self, request: AlertRequest, now: Instant) -> Result<Alert, ApiError> {
        let Store {
            senders,
            by_sid,
            alerts,
            clock,
            ..
        } = self;
        let sender = by_sid
            .get(&request.resource_sid)
            .and_then(|seq| senders.get_mut(seq))
            .ok_or_else(|| {
                ApiError::not_found(&format!("/_sim/senders/{}", request.resource_sid))
            })?;
        settle(sender, now, alerts, clock);
        let alert_text = request.alert_text.unwrap_or_else(|| {
            let message = request
                .error_code
                .parse::<u32>()
                .map_or_else(|_| format!("Error {}", request.error_code), failure_message);
            alerts::text(&message, &sender.sender_id())
        });
        Ok(alerts.log(NewAlert {
            account_sid: sender.account_sid.clone(),
            resource_sid: sender.sid.clone(),
            error_code: request.error_code,
            alert_text,
            log_level: request.log_level,
            at: clock.at(now),
        }))
    }

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
                settle(s, now, &mut self.alerts, &self.clock);
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
            sender.force_status(status, now);
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

    fn all_alerts(store: &mut Store, account: &str, now: Instant) -> Vec<Alert> {
        store
            .alerts_page(account, &AlertFilter::default(), None, 1000, now)
            .expect("an unfiltered page")
            .alerts
    }

    #[test]
    fn a_read_of_the_error_log_finds_failures_of_senders_nobody_read() {
        let t0 = Instant::now();
        let mut store = Store::new(TIMING);
        store.set_number("+15005550006".into(), Behavior::WabaFullAlertOnly);
        let sid = create(&mut store, "AC1", "+15005550006", t0).unwrap().sid;
        assert_eq!(
            all_alerts(&mut store, "AC1", t0),
            [],
            "nothing before the step"
        );
        let alerts = all_alerts(&mut store, "AC1", t0 + 3 * STEP);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(
            (
                alert.resource_sid.as_str(),
                alert.error_code.as_str(),
                alert.account_sid.as_str()
            ),
            (sid.as_str(), "63104", "AC1"),
            "{alert:?}"
        );
        assert_eq!(
            alert.at,
            store.clock.at(t0 + STEP),
            "stamped when it happened"
        );
        assert_eq!(
            all_alerts(&mut store, "AC2", t0 + 3 * STEP),
            [],
            "AC2 sees none"
        );
        assert_eq!(
            all_alerts(&mut store, "AC1", t0 + 9 * STEP).len(),
            1,
            "logged once"
        );
    }

    #[test]
    fn a_refused_code_request_is_logged_about_the_sender() {
        let t0 = Instant::now();
        let mut store = Store::new(TIMING);
        let sid = create(&mut store, "AC1", "+15005550006", t0).unwrap().sid;
        let t1 = t0 + STEP;
        let refused = loop {
            match create(&mut store, "AC1", "+15005550006", t1) {
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        assert_eq!(refused.code, 63114, "{refused:?}");
        let alerts = all_alerts(&mut store, "AC1", t1);
        let logged: Vec<(&str, &str)> = alerts
            .iter()
            .map(|a| (a.error_code.as_str(), a.resource_sid.as_str()))
            .collect();
        assert_eq!(logged, [("63114", sid.as_str())]);
    }

    #[test]
    fn the_control_api_logs_alerts_for_known_senders_only_and_reset_forgets_them() {
        let t0 = Instant::now();
        let mut store = Store::new(TIMING);
        let sid = create(&mut store, "AC2", "+15005550006", t0).unwrap().sid;
        let request = |resource_sid: &str| AlertRequest {
            resource_sid: resource_sid.into(),
            error_code: "63100".into(),
            alert_text: None,
            log_level: LogLevel::Warning,
        };
        let alert = store.log_alert(request(&sid), t0).unwrap();
        assert_eq!(
            (alert.account_sid.as_str(), alert.log_level),
            ("AC2", LogLevel::Warning)
        );
        assert!(
            alert.alert_text.starts_with("Msg=Validation+error"),
            "{}",
            alert.alert_text
        );
        assert_eq!(store.alert("AC2", &alert.sid, t0).unwrap(), alert);
        assert_eq!(store.alert("AC1", &alert.sid, t0).unwrap_err().code, 20404);
        let unknown = "XE00000000000000000000000000000000";
        assert_eq!(
            store.log_alert(request(unknown), t0).unwrap_err().code,
            20404
        );
        store.reset();
        assert_eq!(all_alerts(&mut store, "AC2", t0), []);
    }
}
