//! The Twilio client built from one credentials Secret, by the Secret's version, shared by every
//! controller that reads the Secret (the registry hands out one [`ClientSlot`] per Secret). A
//! client is built once per version: building one costs a request to Twilio, which confirms
//! the credentials' account. The last client outlives the version it was built from, for
//! deletions whose Secret is gone.

use std::sync::{Mutex, PoisonError};

use crate::twilio::TwilioClient;

/// A credentials Secret by namespace and name.
pub type SecretKey = (String, String);

/// The client built from one version of one Secret.
#[derive(Debug, Default)]
pub struct ClientSlot {
    built: Mutex<Option<(String, TwilioClient)>>,
}

impl ClientSlot {
    /// The client built from `version`, if that is the version it was built from.
    pub fn at(&self, version: &str) -> Option<TwilioClient> {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built
            .as_ref()
            .filter(|(from, _)| from == version)
            .map(|(_, client)| client.clone())
    }

    /// The client last built, whatever version the Secret has now or whether it still exists.
    pub fn last(&self) -> Option<TwilioClient> {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built.as_ref().map(|(_, client)| client.clone())
    }

    /// `client` was built from `version`; it replaces the one before.
    pub fn built(&self, version: &str, client: TwilioClient) {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        *built = Some((version.to_string(), client));
    }
}
