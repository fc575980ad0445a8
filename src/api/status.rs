//! `WhatsAppSender.status`: what Twilio reports, and the operator's conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Condition types the operator sets (kstatus-compatible: Flux and Argo CD read them).
pub mod condition_type {
    /// `Ready` (the sender is ONLINE at Twilio and matches the spec), `Synced` (the last
    /// reconcile brought Twilio in line with the spec) and `Stalled` (progress needs the user:
    /// a terminal Twilio error, a rejected code, bad credentials): the runtime's, every kind's.
    pub use crate::runtime::conditions::condition_type::{READY, STALLED, SYNCED};
    /// Present (False) only while Twilio has not confirmed that the credentials act for the
    /// account their Secret names.
    pub const ACCOUNT_VERIFIED: &str = "AccountVerified";
}

/// Condition reasons (`CamelCase`, as Kubernetes conventions ask): what tools and people match
/// on. Which reason a Twilio error code stalls with is in the error table
/// (`twilio::codes`).
pub mod reason {
    use strum::VariantNames;

    /// Every reason, its word the variant's name (strum): [`ALL`] lists them all, and a
    /// constant below names each for matching on a condition's `reason`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr, strum::VariantNames)]
    #[strum(const_into_str)]
    pub enum Reason {
        // Ready
        Online,
        Creating,
        PendingVerification,
        WaitingForCode,
        CodeSubmitted,
        Verifying,
        Updating,
        InReview,
        Offline,
        Queued,
        NotOnline,
        Reconciling,
        // Synced
        Applied,
        Suspended,
        TwilioUnavailable,
        KubernetesError,
        Deleting,
        DeletionBlocked,
        // Stalled (and Ready/Synced when stalled)
        NotStalled,
        CredentialsNotFound,
        InvalidCredentials,
        AccountChanged,
        CodeRejected,
        InvalidCode,
        TooManyCodes,
        DisplayNameMismatch,
        WabaMismatch,
        InvalidSpec,
        WabaFull,
        AlreadyRegistered,
        NumberNotFound,
        CannotVerify,
        CodeNotReceived,
        TwilioRejected,
        Draft,
        Stubbed,
        InvitationNotAccepted,
        DisplayNameRejected,
        /// Another object manages this number in this account.
        DuplicateSender,
        // AccountVerified
        AccountUnverified,
        // Waiting, not stalled
        WaitingForDisplayNameCheck,
    }

    pub const ONLINE: &str = Reason::Online.into_str();
    pub const CREATING: &str = Reason::Creating.into_str();
    pub const PENDING_VERIFICATION: &str = Reason::PendingVerification.into_str();
    pub const WAITING_FOR_CODE: &str = Reason::WaitingForCode.into_str();
    pub const CODE_SUBMITTED: &str = Reason::CodeSubmitted.into_str();
    pub const VERIFYING: &str = Reason::Verifying.into_str();
    pub const UPDATING: &str = Reason::Updating.into_str();
    pub const IN_REVIEW: &str = Reason::InReview.into_str();
    pub const OFFLINE: &str = Reason::Offline.into_str();
    pub const QUEUED: &str = Reason::Queued.into_str();
    pub const NOT_ONLINE: &str = Reason::NotOnline.into_str();
    pub const RECONCILING: &str = Reason::Reconciling.into_str();
    pub const APPLIED: &str = Reason::Applied.into_str();
    pub const SUSPENDED: &str = Reason::Suspended.into_str();
    pub const TWILIO_UNAVAILABLE: &str = Reason::TwilioUnavailable.into_str();
    pub const KUBERNETES_ERROR: &str = Reason::KubernetesError.into_str();
    pub const DELETING: &str = Reason::Deleting.into_str();
    pub const DELETION_BLOCKED: &str = Reason::DeletionBlocked.into_str();
    pub const NOT_STALLED: &str = Reason::NotStalled.into_str();
    pub const CREDENTIALS_NOT_FOUND: &str = Reason::CredentialsNotFound.into_str();
    pub const INVALID_CREDENTIALS: &str = Reason::InvalidCredentials.into_str();
    pub const ACCOUNT_CHANGED: &str = Reason::AccountChanged.into_str();
    pub const CODE_REJECTED: &str = Reason::CodeRejected.into_str();
    pub const INVALID_CODE: &str = Reason::InvalidCode.into_str();
    pub const TOO_MANY_CODES: &str = Reason::TooManyCodes.into_str();
    pub const DISPLAY_NAME_MISMATCH: &str = Reason::DisplayNameMismatch.into_str();
    pub const WABA_MISMATCH: &str = Reason::WabaMismatch.into_str();
    pub const INVALID_SPEC: &str = Reason::InvalidSpec.into_str();
    pub const WABA_FULL: &str = Reason::WabaFull.into_str();
    pub const ALREADY_REGISTERED: &str = Reason::AlreadyRegistered.into_str();
    pub const NUMBER_NOT_FOUND: &str = Reason::NumberNotFound.into_str();
    pub const CANNOT_VERIFY: &str = Reason::CannotVerify.into_str();
    pub const CODE_NOT_RECEIVED: &str = Reason::CodeNotReceived.into_str();
    pub const TWILIO_REJECTED: &str = Reason::TwilioRejected.into_str();
    pub const DRAFT: &str = Reason::Draft.into_str();
    pub const STUBBED: &str = Reason::Stubbed.into_str();
    pub const INVITATION_NOT_ACCEPTED: &str = Reason::InvitationNotAccepted.into_str();
    pub const DISPLAY_NAME_REJECTED: &str = Reason::DisplayNameRejected.into_str();
    pub const DUPLICATE_SENDER: &str = Reason::DuplicateSender.into_str();
    pub const ACCOUNT_UNVERIFIED: &str = Reason::AccountUnverified.into_str();
    pub const WAITING_FOR_DISPLAY_NAME_CHECK: &str = Reason::WaitingForDisplayNameCheck.into_str();

    /// Every reason above.
    pub const ALL: &[&str] = Reason::VARIANTS;
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

#[cfg(test)]
mod tests {
    use super::reason::{self, Reason};

    #[test]
    fn every_reason_is_listed_once_by_its_name() {
        assert_eq!(reason::ALL.len(), 41);
        assert_eq!(reason::ALL[0], reason::ONLINE);
        assert_eq!(reason::DUPLICATE_SENDER, "DuplicateSender");
        assert_eq!(
            reason::ALL.last(),
            Some(&reason::WAITING_FOR_DISPLAY_NAME_CHECK)
        );
        let word: &str = Reason::PendingVerification.into();
        assert_eq!(word, "PendingVerification");
        let mut sorted = reason::ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), reason::ALL.len());
    }

    /// The runtime writes its own reasons on every kind; the sender's CRD lists them.
    #[test]
    fn the_runtime_reasons_are_sender_reasons() {
        use crate::runtime::conditions::reason as runtime;
        for word in [
            runtime::APPLIED,
            runtime::NOT_STALLED,
            runtime::RECONCILING,
            runtime::TWILIO_UNAVAILABLE,
            runtime::KUBERNETES_ERROR,
        ] {
            assert!(reason::ALL.contains(&word), "{word}");
        }
    }
}
