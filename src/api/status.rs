//! `WhatsAppSender.status`: what Twilio reports, and the operator's conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
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
    /// Present (False) only while Twilio has not confirmed that the credentials act for the
    /// account their Secret names.
    pub const ACCOUNT_VERIFIED: &str = "AccountVerified";
}

/// Condition reasons (`CamelCase`, as Kubernetes conventions ask): what tools and people match
/// on. Which reason a Twilio error code stalls with is in the error table
/// (`twilio::codes`).
pub mod reason {
    // Ready
    pub const ONLINE: &str = "Online";
    pub const CREATING: &str = "Creating";
    pub const PENDING_VERIFICATION: &str = "PendingVerification";
    pub const WAITING_FOR_CODE: &str = "WaitingForCode";
    pub const CODE_SUBMITTED: &str = "CodeSubmitted";
    pub const VERIFYING: &str = "Verifying";
    pub const UPDATING: &str = "Updating";
    pub const IN_REVIEW: &str = "InReview";
    pub const OFFLINE: &str = "Offline";
    pub const QUEUED: &str = "Queued";
    pub const NOT_ONLINE: &str = "NotOnline";
    pub const RECONCILING: &str = "Reconciling";
    // Synced
    pub const APPLIED: &str = "Applied";
    pub const SUSPENDED: &str = "Suspended";
    pub const TWILIO_UNAVAILABLE: &str = "TwilioUnavailable";
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    pub const DELETING: &str = "Deleting";
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
    // Stalled (and Ready/Synced when stalled)
    pub const NOT_STALLED: &str = "NotStalled";
    pub const CREDENTIALS_NOT_FOUND: &str = "CredentialsNotFound";
    pub const INVALID_CREDENTIALS: &str = "InvalidCredentials";
    pub const ACCOUNT_CHANGED: &str = "AccountChanged";
    pub const CODE_REJECTED: &str = "CodeRejected";
    pub const INVALID_CODE: &str = "InvalidCode";
    pub const TOO_MANY_CODES: &str = "TooManyCodes";
    pub const DISPLAY_NAME_MISMATCH: &str = "DisplayNameMismatch";
    pub const WABA_MISMATCH: &str = "WabaMismatch";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const WABA_FULL: &str = "WabaFull";
    pub const ALREADY_REGISTERED: &str = "AlreadyRegistered";
    pub const NUMBER_NOT_FOUND: &str = "NumberNotFound";
    pub const CANNOT_VERIFY: &str = "CannotVerify";
    pub const CODE_NOT_RECEIVED: &str = "CodeNotReceived";
    pub const TWILIO_REJECTED: &str = "TwilioRejected";
    pub const DRAFT: &str = "Draft";
    pub const STUBBED: &str = "Stubbed";
    pub const INVITATION_NOT_ACCEPTED: &str = "InvitationNotAccepted";
    pub const DISPLAY_NAME_REJECTED: &str = "DisplayNameRejected";
    /// Another object manages this number in this account.
    pub const DUPLICATE_SENDER: &str = "DuplicateSender";
    // AccountVerified
    pub const ACCOUNT_UNVERIFIED: &str = "AccountUnverified";
    // Waiting, not stalled
    pub const WAITING_FOR_DISPLAY_NAME_CHECK: &str = "WaitingForDisplayNameCheck";

    /// Every reason above.
    pub const ALL: &[&str] = &[
        ONLINE,
        CREATING,
        PENDING_VERIFICATION,
        WAITING_FOR_CODE,
        CODE_SUBMITTED,
        VERIFYING,
        UPDATING,
        IN_REVIEW,
        OFFLINE,
        QUEUED,
        NOT_ONLINE,
        RECONCILING,
        APPLIED,
        SUSPENDED,
        TWILIO_UNAVAILABLE,
        KUBERNETES_ERROR,
        DELETING,
        DELETION_BLOCKED,
        NOT_STALLED,
        CREDENTIALS_NOT_FOUND,
        INVALID_CREDENTIALS,
        ACCOUNT_CHANGED,
        CODE_REJECTED,
        INVALID_CODE,
        TOO_MANY_CODES,
        DISPLAY_NAME_MISMATCH,
        WABA_MISMATCH,
        INVALID_SPEC,
        WABA_FULL,
        ALREADY_REGISTERED,
        NUMBER_NOT_FOUND,
        CANNOT_VERIFY,
        CODE_NOT_RECEIVED,
        TWILIO_REJECTED,
        DRAFT,
        STUBBED,
        INVITATION_NOT_ACCEPTED,
        DISPLAY_NAME_REJECTED,
        DUPLICATE_SENDER,
        ACCOUNT_UNVERIFIED,
        WAITING_FOR_DISPLAY_NAME_CHECK,
    ];
}

/// Observed state of the sender, mirrored from Twilio.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WhatsAppSenderStatus {
    /// Twilio's SID of the sender (`XE…`), recorded the moment Twilio returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,

    /// The Twilio account (or subaccount) that holds the sender, recorded with the SID. The
    /// operator never creates the number in another account, even if `credentialsRef` later
    /// points at one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<String>,

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

    /// The last entries of Twilio's Error Log about this sender, newest first: registration
    /// failures Twilio records only there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<TwilioAlert>,

    /// Bookkeeping of the one-time code: which Secret version was submitted, never the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationStatus>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The value of the `senderops.io/reconcile-requested-at` annotation that the last finished
    /// reconcile saw (Flux's `lastHandledReconcileAt`): once it equals the value you set, the
    /// reconcile you asked for has run and written its conclusions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// `Ready`, `Synced` and `Stalled`, in the standard Kubernetes condition shape; also
    /// `AccountVerified=False` while Twilio has not confirmed the credentials' account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One entry of Twilio's Error Log (the Monitor API's alerts) about the sender.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TwilioAlert {
    /// The entry's SID (`NO…`).
    pub sid: String,
    /// Twilio error code (e.g. `63104`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// When Twilio logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// Twilio's text, shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Link to Twilio's documentation of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_info: Option<String>,
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

/// What the operator did with one-time codes, so that a code is submitted once and a rejected
/// one is reported instead of being sent again. It names Secret versions only: neither a code
/// nor a hash of one (a 6-digit code's hash is as good as the code) is ever stored.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationStatus {
    /// The code Secret version that was last submitted to Twilio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_code: Option<SubmittedCode>,

    /// The last value of the `senderops.io/resend-code` annotation that was acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_code_request: Option<String>,

    /// When new codes were asked for in the last 24 hours: the spacing and the daily cap of
    /// `senderops.io/resend-code` hold across restarts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_requests: Vec<Time>,

    /// Twilio refused to send more codes (63114); no new one is asked for before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes_locked_until: Option<Time>,
}

/// One submission of a one-time code, identified by where the code was read.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedCode {
    /// The Secret the code was read from.
    pub secret_name: String,
    /// The key within that Secret.
    pub key: String,
    /// The Secret's `metadata.resourceVersion` when the code was read.
    pub resource_version: String,
    /// When the code was submitted.
    pub submitted_at: Time,
    /// True once Twilio was seen to refuse this code. Put a new code in the Secret to retry.
    #[serde(default)]
    pub rejected: bool,
    /// The submission failed in a way that leaves unknown whether Twilio got it (a timeout, a
    /// 500): if Twilio still waits for a code, this version is sent once more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
}
