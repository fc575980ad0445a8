//! `WhatsAppSender.status`: what Twilio reports, and the operator's conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Condition types the operator sets (kstatus-compatible: Flux and Argo CD read them).
pub mod condition_type {
    /// The sender is ONLINE at Twilio and matches the spec.
    pub const READY: &str = "Ready";
    /// The last reconcile brought Twilio in line with the spec.
    pub const SYNCED: &str = "Synced";
    /// Progress needs the user: a terminal Twilio error, a rejected code, bad credentials.
    pub const STALLED: &str = "Stalled";
}

/// Observed state of the sender, mirrored from Twilio.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WhatsAppSenderStatus {
    /// Twilio's SID of the sender (`XE…`), recorded the moment Twilio returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,

    /// Twilio's address of the sender, `whatsapp:<phoneNumber>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,

    /// Twilio's status word, verbatim (e.g. `CREATING`, `PENDING_VERIFICATION`, `ONLINE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_status: Option<String>,

    /// Meta's quality rating of the sender (e.g. `HIGH`, `MEDIUM`, `LOW`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<String>,

    /// How many customers the sender may message per 24 hours (e.g. `1K Customers/24hr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_limit: Option<String>,

    /// Why Twilio reports the sender offline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offline_reasons: Vec<OfflineReason>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Synced` and `Stalled`, in the standard Kubernetes condition shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One reason Twilio gives for a sender being offline.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OfflineReason {
    /// Twilio error code (e.g. `63110`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Twilio's explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Link to Twilio's documentation of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_info: Option<String>,
}
