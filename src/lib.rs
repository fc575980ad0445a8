//! SenderOps: a Kubernetes operator for Twilio WhatsApp senders.

pub mod api;
pub mod controllers;
mod error;
pub mod export;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod runtime;
pub mod telemetry;
pub mod twilio;

pub use error::{Error, Result, twilio_message};
