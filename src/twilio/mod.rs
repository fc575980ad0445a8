//! Twilio's REST APIs: one transport per account, typed routes per product over it, models,
//! errors, request budget. Nothing here knows a resource kind of the operator.
//!
//! - [`TwilioClient`]: one account's client, over its transport (`transport`: auth, budget,
//!   retries, timeouts, the leader's fence, body cap, paging, redaction, the observer); its
//!   routes by product: `senders` (create, fetch, update, delete, list), `alerts` (the Error
//!   Log), `accounts` (v2010: the account check).
//! - [`models`]: request bodies (strict, typed) and response bodies (lenient).
//! - [`TwilioError`] with [`ErrorClass`]; [`codes`]: Twilio's error codes, one table (needs the
//!   user or not, the problem named, advice).
//! - [`RequestBudget`]: a token bucket, one per account (the controller's state keeps them), shared
//!   by that account's clients.
//! - [`RetryPolicy`]: exponential backoff with jitter that honours `Retry-After`.

mod accounts;
mod alerts;
mod budget;
mod client;
pub mod codes;
mod credentials;
mod enums;
mod error;
pub mod models;
mod retry;
mod senders;
mod transport;

pub use budget::{BudgetConfig, RequestBudget, WeakBudget};
pub use client::{
    API_URL, CONTENT_URL, ClientConfig, Hosts, MESSAGING_URL, MONITOR_URL, Observer, Product,
    RequestObserver, TwilioClient,
};
pub use credentials::{Credentials, MissingPart};
pub use enums::{AccountType, VerificationMethod, Vertical, WebhookMethod};
pub(crate) use error::quote;
pub use error::{ErrorClass, TwilioError};
pub use models::{
    AccountTypeUpdate, Alert, AlertPage, Configuration, CreateSenderRequest, FieldUpdate,
    OfflineReason, PageMeta, Profile, ProfileEmail, ProfilePhoneNumber, ProfileWebsite, Sender,
    SenderConfiguration, SenderPage, SenderProfile, SenderProperties, SenderStatus, SenderWebhook,
    UpdateSenderRequest, VerificationCode, Webhook, is_valid_sender_sid, sender_id_for,
};
pub use retry::RetryPolicy;
pub use transport::MAX_RESPONSE_BYTES;
