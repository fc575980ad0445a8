//! One account's senders as a paginated list shows them: the latest list pass, shared by every
//! reconcile of that account. One pass runs per account at a time; callers that arrive meanwhile
//! wait for it and reuse it when it is fresh enough for them (the account's record in
//! [`super::state`] says what is fresh enough for a question).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use crate::twilio::{Sender, TwilioClient, TwilioError, sender_id_for};

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
    async fn list(client: &TwilioClient) -> Result<Self, TwilioError> {
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
