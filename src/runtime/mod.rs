//! What every SenderOps controller shares, whatever kind it reconciles.
//!
//! - [`accounts`]: the registry of Twilio accounts: one request budget per account for every
//!   controller (Twilio's limit is per account, not per kind).

pub mod accounts;
pub mod alert_log;
pub mod backoff;
pub mod conditions;
pub mod controller;
pub mod credentials;
pub mod driver;
pub mod events;
pub mod liveness;
pub mod namespaces;
pub mod preflight;
pub mod status;
