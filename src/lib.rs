//! SenderOps: a Kubernetes operator for Twilio WhatsApp senders.

pub mod api;
pub mod twilio;
