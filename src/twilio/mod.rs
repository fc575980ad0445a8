//! Twilio's Senders API (`/v2/Channels/Senders`) and the Error Log's alerts (`/v1/Alerts`):
//! typed client, models, errors, request budget.
//!
//! - [`SendersClient`]: one account's client (create, fetch, update, delete, list).
//! - [`models`]: request bodies (strict, typed) and response bodies (lenient).
//! - [`TwilioError`] with [`ErrorClass`]; [`codes`]: Twilio's error codes, one table (needs the
//!   user or not, condition reason, advice).
//! - [`RequestBudget`]: a token bucket, one per account (the controller's state keeps them), shared
//!   by that account's clients.
//! - [`RetryPolicy`]: exponential backoff with jitter that honours `Retry-After`.

mod budget;
mod client;
pub mod codes;
mod credentials;
mod enums;
mod error;
pub mod models;
mod retry;

pub use budget::{BudgetConfig, RequestBudget};
pub use client::{
    ClientConfig, MAX_RESPONSE_BYTES, MESSAGING_URL, MONITOR_URL, Observer, RequestObserver,
    SendersClient,
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
