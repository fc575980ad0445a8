//! Twilio Senders API (`/v2/Channels/Senders`): typed client, models, errors, request budget.

mod enums;

pub use enums::{VerificationMethod, Vertical, WebhookMethod};
