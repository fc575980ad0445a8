//! `WhatsAppSender.spec`: what the user wants Twilio to hold for one WhatsApp number.
//!
//! Validation lives in the schema so the API server refuses a bad manifest with a message that
//! says what to fix. Strings carry a `maxLength` both because Twilio/Meta cap them and because
//! the API server needs a bound to accept CEL rules on them.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::WhatsAppSenderStatus;
use crate::twilio::{AccountType, VerificationMethod, Vertical, WebhookMethod};

/// CEL for an absolute http(s) URL; `isURL` alone also accepts relative references.
const HTTP_URL_RULE: &str =
    "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''";
const HTTP_URL_MESSAGE: &str = "must be an absolute http:// or https:// URL";

/// A Secret's name is a DNS subdomain. Checked here so that a typo is refused on apply instead
/// of surfacing as a missing Secret, and so that nothing but a name reaches a request path.
const SECRET_NAME_RULE: &str =
    "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
const SECRET_NAME_MESSAGE: &str = "must be the name of a Secret: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

/// Each address or URL once: Twilio keeps a profile's list as a set, so a repeat would be
/// sent again on every reconcile.
const UNIQUE_ITEMS_RULE: &str = "self.all(x, self.exists_one(y, y == x))";

/// A registered number stays in the WhatsApp Business Account it was registered in: Twilio's
/// Senders API has no way to move it, so `wabaId` may be neither added, changed nor removed.
/// The rule sits on the spec because a rule on the field never sees it appear or disappear.
const WABA_ID_IMMUTABLE_RULE: &str = "has(self.wabaId) == has(oldSelf.wabaId) && (!has(self.wabaId) || self.wabaId == oldSelf.wabaId)";
const WABA_ID_IMMUTABLE_MESSAGE: &str = "wabaId is immutable: Twilio cannot move a registered number to another WhatsApp Business Account; delete this WhatsAppSender and create a new one";

/// A WhatsApp sender registered through Twilio's Senders API. The operator creates it, feeds it
/// the one-time code from a Secret, keeps its profile and webhooks as declared here, mirrors
/// Twilio's status into `.status`, and deletes it when this object is deleted.
// clippy reads the repeated `type_ = "string"` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "messaging.senderops.io",
    version = "v1alpha1",
    kind = "WhatsAppSender",
    plural = "whatsappsenders",
    singular = "whatsappsender",
    shortname = "was",
    category = "senderops",
    namespaced,
    status = "WhatsAppSenderStatus",
    // GitOps tools must never prune or delete the CRD: that deletes every WhatsAppSender. (The
    // operator would still deregister nothing, but every object would be gone.)
    annotation("argocd.argoproj.io/sync-options", "Prune=false,Delete=false"),
    annotation("kustomize.toolkit.fluxcd.io/prune", "disabled"),
    derive = "PartialEq",
    doc = "A WhatsApp sender (a phone number registered with WhatsApp Business through Twilio), managed declaratively.",
    printcolumn(name = "Phone", type_ = "string", json_path = ".spec.phoneNumber"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.twilioStatus",
        description = "Twilio's status word"
    ),
    printcolumn(
        name = "Quality",
        type_ = "string",
        json_path = ".status.qualityRating"
    ),
    printcolumn(name = "Limit", type_ = "string", json_path = ".status.messagingLimit"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(WABA_ID_IMMUTABLE_RULE).message(WABA_ID_IMMUTABLE_MESSAGE))]
#[serde(rename_all = "camelCase")]
pub struct WhatsAppSenderSpec {
    /// The phone number to register, in E.164 format: `+`, country code, number (e.g.
    /// `+15017122661`). Twilio addresses the sender as `whatsapp:<phoneNumber>`. Argentina
    /// numbers take `+549…`, Mexico numbers `+521…`. Immutable: delete and recreate to change it.
    #[schemars(length(min = 8, max = 16))]
    #[x_kube(
        validation = Rule::new("self.matches('^[+][1-9][0-9]{6,14}$')").message("phoneNumber must be E.164: a '+', then the country code and the number, digits only, 7 to 15 digits (e.g. +15017122661)"),
        validation = Rule::new("self == oldSelf").message("phoneNumber is immutable: a Twilio sender cannot move to another number; delete this WhatsAppSender and create a new one")
    )]
    pub phone_number: String,

    /// The Secret (same namespace) holding Twilio credentials for the account or subaccount
    /// that owns the sender: `accountSid` with `authToken`, or `accountSid` with `apiKeySid` and
    /// `apiKeySecret`.
    pub credentials_ref: CredentialsRef,

    /// The WhatsApp Business Account (WABA) ID to register the sender in. Leave unset to use the
    /// account's only WABA. Immutable: a registered number cannot move to another WABA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[0-9]+$"))]
    pub waba_id: Option<String>,

    /// The account type Twilio records for ISV account-type migration: `ISV` (the ISV's own
    /// account) or `ISVSubAccount` (a subaccount run for a customer). Sent on creation and
    /// whenever it changes; removing it clears it at Twilio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<AccountType>,

    /// How the number proves it is yours. Numbers Twilio can verify itself (Twilio SMS numbers)
    /// need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,

    /// The WhatsApp Business profile shown to customers.
    pub profile: Profile,

    /// Where Twilio sends incoming messages and status callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,

    /// What happens to the Twilio sender when this object is deleted. `Delete` (default)
    /// deregisters it; `Orphan` leaves it registered. Re-registering a deleted number needs
    /// two-step verification turned off in WhatsApp Manager, so deleting is costly to undo.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// When true the operator neither reads nor changes anything for this sender.
    #[serde(default)]
    pub suspend: bool,
}

/// A reference to the Secret with Twilio credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CredentialsRef {
    /// Name of a Secret in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    pub name: String,
}

/// Verification of a number Twilio cannot verify itself.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// How Meta sends the one-time code: `sms` (default) or `voice`.
    #[serde(default)]
    pub method: VerificationMethod,

    /// Where the operator reads the one-time code once someone has received it (key `code`
    /// unless set). The operator submits each new value once; put a fresh code here to retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_secret_ref: Option<CodeSecretRef>,

    /// The Twilio Voice application (`AP…`) that receives the verification call, for `voice`
    /// on a Twilio number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(equal = 34), regex(pattern = r"^AP[0-9a-fA-F]{32}$"))]
    pub voice_application_sid: Option<String>,
}

/// The Secret key read when `codeSecretRef.key` is not set.
pub const DEFAULT_CODE_KEY: &str = "code";

fn default_code_key() -> String {
    DEFAULT_CODE_KEY.to_string()
}

/// The Secret (same namespace) and key where the one-time code is put.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CodeSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    pub name: String,
    /// Key within the Secret's data that holds the code: `code` unless set.
    #[serde(default = "default_code_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// The WhatsApp Business profile. Lengths are Meta's business-profile limits.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The display name customers see. Must follow Meta's display name guidelines; Meta reviews
    /// it after registration. Immutable: no API can change it; delete and recreate the sender.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("profile.name is immutable: Twilio's API cannot change a WhatsApp display name (Meta reviews it once); delete this WhatsAppSender and create a new one to use another name"),
        // A display name is one line: a newline or other control character has no place in it
        // and would end up in every condition, Event and log line that quotes the name.
        validation = Rule::new("!self.matches('[\\x00-\\x1f\\x7f]')").message("profile.name must not contain newlines, tabs or other control characters")
    )]
    pub name: String,

    /// The profile's "About" text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 139))]
    pub about: Option<String>,

    /// The business address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub address: Option<String>,

    /// The business description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub description: Option<String>,

    /// The business category, one of Twilio's verticals (e.g. `Other`, `Professional Services`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Option<Vertical>,

    /// URL of the profile picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub logo_url: Option<String>,

    /// URL of the banner image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub banner_url: Option<String>,

    /// URL of the privacy policy; must be publicly reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub privacy_url: Option<String>,

    /// URL of the terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub terms_of_service_url: Option<String>,

    /// Theme colour as `#RRGGBB`, with enough contrast against white.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^#[0-9A-Fa-f]{6}$"))]
    pub accent_color: Option<String>,

    /// Contact e-mail addresses (at most 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 2),
        inner(length(min = 3, max = 128), regex(pattern = r"^[^@\s]+@[^@\s]+$"))
    )]
    #[x_kube(validation = Rule::new(UNIQUE_ITEMS_RULE).message("emails must not list the same address twice"))]
    pub emails: Vec<String>,

    /// Websites (at most 2), absolute http(s) URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2), inner(length(max = 256)))]
    #[x_kube(
        validation = Rule::new("self.all(w, isURL(w) && url(w).getScheme() in ['http', 'https'] && url(w).getHostname() != '')").message("each website must be an absolute http:// or https:// URL"),
        validation = Rule::new(UNIQUE_ITEMS_RULE).message("websites must not list the same URL twice")
    )]
    pub websites: Vec<String>,
}

/// Webhooks Twilio calls for this sender.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// URL Twilio calls for incoming messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub callback_url: Option<String>,

    /// HTTP method for `callbackUrl`: `POST` or `PUT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_method: Option<WebhookMethod>,

    /// URL Twilio calls when `callbackUrl` fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub fallback_url: Option<String>,

    /// HTTP method for `fallbackUrl`: `POST` or `PUT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_method: Option<WebhookMethod>,

    /// URL Twilio calls with message status updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub status_callback_url: Option<String>,

    /// HTTP method for `statusCallbackUrl`: `POST` or `PUT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback_method: Option<WebhookMethod>,
}

/// What deleting the `WhatsAppSender` does to the Twilio sender.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Deregister the sender at Twilio.
    #[default]
    Delete,
    /// Leave the sender registered at Twilio; only the Kubernetes object goes.
    Orphan,
}
