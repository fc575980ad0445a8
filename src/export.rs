//! `senderops export`: the senders an account already has, as `WhatsAppSender` manifests, so
//! that a team that registered numbers by hand brings them under management with
//! `kubectl apply` (the operator then adopts each one instead of creating it).
//!
//! A manifest holds what the CRD can express. Anything it cannot (a vertical or webhook method
//! the CRD does not know) is left out with a warning: once applied, the operator would clear
//! it at Twilio, so the user decides before applying.

use kube::api::ObjectMeta;

use crate::api::{
    CredentialsRef, DeletionPolicy, EXPORTED_FROM_ANNOTATION, Profile, Verification, Webhook,
    WhatsAppSender, WhatsAppSenderSpec,
};
use crate::twilio::{
    AccountType, Credentials, MissingPart, Sender, SenderProfile, SenderWebhook,
    VerificationMethod, Vertical, WebhookMethod,
};

/// How exported manifests are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// `metadata.namespace` of every manifest, if set.
    pub namespace: Option<String>,
    /// The credentials Secret each manifest names.
    pub credentials_secret: String,
    /// `Orphan` by default: deleting an adopted object must not deregister a number someone
    /// registered by hand.
    pub deletion_policy: DeletionPolicy,
}

/// One sender's manifest, with what could not be carried over.
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    pub manifest: WhatsAppSender,
    pub warnings: Vec<String>,
}

/// Twilio credentials from the environment, as Twilio's CLI reads them: `TWILIO_ACCOUNT_SID`
/// with `TWILIO_AUTH_TOKEN`, or with `TWILIO_API_KEY` and `TWILIO_API_SECRET`.
pub fn credentials_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Credentials, String> {
    let credentials = Credentials::from_parts(
        var("TWILIO_ACCOUNT_SID"),
        var("TWILIO_AUTH_TOKEN"),
        var("TWILIO_API_KEY"),
        var("TWILIO_API_SECRET"),
    )
    .map_err(|part| {
        match part {
            MissingPart::AccountSid => {
                "set TWILIO_ACCOUNT_SID to the account (or subaccount) SID, AC…"
            }
            MissingPart::AuthTokenOrApiKey => {
                "set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET"
            }
            MissingPart::ApiKeySid | MissingPart::ApiKeySecret => {
                "an API key needs both TWILIO_API_KEY and TWILIO_API_SECRET"
            }
        }
        .to_string()
    })?;
    credentials.validate().map_err(|e| e.to_string())?;
    Ok(credentials)
}

/// The phone number of a `whatsapp:+E164` sender ID, if it is one.
fn phone_of(sender_id: &str) -> Option<&str> {
    sender_id
        .trim()
        .strip_prefix("whatsapp:")
        .filter(|p| p.starts_with('+') && p.len() > 1 && p[1..].bytes().all(|b| b.is_ascii_digit()))
}

/// `wa-15017122661`: unique per number and a valid object name.
pub fn object_name(phone: &str) -> String {
    format!("wa-{}", phone.trim_start_matches('+'))
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.trim().is_empty())
}

/// The manifest for one sender, or why it cannot have one.
pub fn manifest(sender: &Sender, options: &ExportOptions) -> Result<Exported, String> {
    let phone = phone_of(&sender.sender_id).ok_or_else(|| {
        format!(
            "{}: {:?} is not a WhatsApp number",
            sender.sid, sender.sender_id
        )
    })?;
    let empty = SenderProfile::default();
    let profile = sender.profile.as_ref().unwrap_or(&empty);
    let name = non_empty(&profile.name).ok_or_else(|| {
        format!(
            "{} ({phone}): Twilio reports no display name, which the CRD requires",
            sender.sid
        )
    })?;
    let mut warnings = Vec::new();
    let vertical = vertical(phone, profile, &mut warnings);
    let configuration = sender.configuration.as_ref();
    let spec = WhatsAppSenderSpec {
        phone_number: phone.to_string(),
        credentials_ref: CredentialsRef {
            name: options.credentials_secret.clone(),
        },
        waba_id: configuration.and_then(|c| non_empty(&c.waba_id)),
        // Registered already: no code to wait for. The voice application stays as Twilio has
        // it (the operator would clear it otherwise).
        verification: configuration
            .and_then(|c| non_empty(&c.voice_application_sid))
            .map(|sid| Verification {
                method: VerificationMethod::default(),
                code_secret_ref: None,
                voice_application_sid: Some(sid),
            }),
        account_type: configuration
            .and_then(|c| non_empty(&c.account_type))
            .and_then(|t| account_type(phone, &t, &mut warnings)),
        profile: Profile {
            name,
            about: non_empty(&profile.about),
            address: non_empty(&profile.address),
            description: non_empty(&profile.description),
            vertical,
            logo_url: non_empty(&profile.logo_url),
            banner_url: non_empty(&profile.banner_url),
            privacy_url: non_empty(&profile.privacy_url),
            terms_of_service_url: non_empty(&profile.terms_of_service_url),
            accent_color: non_empty(&profile.accent_color),
            emails: profile.email_addresses(),
            websites: profile.website_urls(),
        },
        webhook: sender
            .webhook
            .as_ref()
            .and_then(|w| webhook(phone, w, &mut warnings)),
        deletion_policy: options.deletion_policy,
        suspend: false,
    };
    let mut manifest = WhatsAppSender::new(&object_name(phone), spec);
    manifest.metadata = ObjectMeta {
        name: Some(object_name(phone)),
        namespace: options.namespace.clone(),
        annotations: Some([(EXPORTED_FROM_ANNOTATION.to_string(), sender.sid.clone())].into()),
        ..ObjectMeta::default()
    };
    Ok(Exported { manifest, warnings })
}

/// The profile's vertical, if the CRD knows it; a warning if it does not.
fn vertical(phone: &str, profile: &SenderProfile, warnings: &mut Vec<String>) -> Option<Vertical> {
    let value = profile.vertical.as_deref().filter(|v| !v.is_empty())?;
    value
        .parse()
        .map_err(|_| {
            warnings.push(format!(
                "{phone}: vertical {value:?} is not one the CRD accepts and was left out; once \
                 applied, the operator would clear it at Twilio: set spec.profile.vertical first"
            ))
        })
        .ok()
}

fn account_type(phone: &str, value: &str, warnings: &mut Vec<String>) -> Option<AccountType> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| {
            warnings.push(format!(
                "{phone}: account type {value:?} is not one the CRD accepts and was left out; \
                 once applied, the operator would clear it at Twilio: set spec.accountType first"
            ))
        })
        .ok()
}

fn webhook(phone: &str, w: &SenderWebhook, warnings: &mut Vec<String>) -> Option<Webhook> {
    let mut method = |field: &str, value: &Option<String>| {
        let value = non_empty(value)?;
        serde_json::from_value::<WebhookMethod>(serde_json::Value::String(value.to_uppercase()))
            .map_err(|_| {
                warnings.push(format!(
                    "{phone}: webhook.{field} {value:?} is not POST or PUT and was left out"
                ))
            })
            .ok()
    };
    let webhook = Webhook {
        callback_method: method("callback_method", &w.callback_method),
        fallback_method: method("fallback_method", &w.fallback_method),
        status_callback_method: method("status_callback_method", &w.status_callback_method),
        callback_url: non_empty(&w.callback_url),
        fallback_url: non_empty(&w.fallback_url),
        status_callback_url: non_empty(&w.status_callback_url),
    };
    let empty = webhook.callback_url.is_none()
        && webhook.fallback_url.is_none()
        && webhook.status_callback_url.is_none()
        && webhook.callback_method.is_none()
        && webhook.fallback_method.is_none()
        && webhook.status_callback_method.is_none();
    (!empty).then_some(webhook)
}

/// Every sender as one multi-document YAML stream, in the order given.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub yaml: String,
    /// How many manifests `yaml` holds.
    pub exported: usize,
    /// What was left out, and the senders that could not be exported.
    pub warnings: Vec<String>,
}

pub fn render(senders: &[Sender], options: &ExportOptions) -> Rendered {
    let mut yaml = String::from(
        "# Exported by `senderops export`. Review, then `kubectl apply -f` this file: the\n\
         # operator adopts each sender (Event `Adopted`) instead of registering it again.\n",
    );
    let mut warnings = Vec::new();
    let mut count = 0;
    for sender in senders {
        match manifest(sender, options) {
            Ok(exported) => {
                count += 1;
                yaml.push_str("---\n");
                yaml.push_str(
                    &serde_norway::to_string(&exported.manifest)
                        .expect("a WhatsAppSender always serializes"),
                );
                warnings.extend(exported.warnings);
            }
            Err(why) => warnings.push(format!("skipped {why}")),
        }
    }
    Rendered {
        yaml,
        exported: count,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn options() -> ExportOptions {
        ExportOptions {
            namespace: Some("team-a".into()),
            credentials_secret: "twilio".into(),
            deletion_policy: DeletionPolicy::Orphan,
        }
    }

    fn sender(extra: serde_json::Value) -> Sender {
        let mut base = json!({
            "sid": "XE0123456789abcdef0123456789abcdef",
            "status": "ONLINE",
            "sender_id": "whatsapp:+15017122661",
            "configuration": {"waba_id": "123", "verification_method": null},
            "profile": {"name": "Acme", "about": "Hi", "vertical": "Other",
                        "emails": [{"email": "a@acme.example", "label": "Email"}],
                        "websites": [{"website": "https://acme.example", "label": "W"}]},
            "webhook": {"callback_url": "https://h.example/in", "callback_method": "POST",
                        "fallback_url": null},
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_sender_becomes_an_orphan_policy_manifest() {
        let exported = manifest(&sender(json!({})), &options()).unwrap();
        assert!(exported.warnings.is_empty(), "{:?}", exported.warnings);
        let m = serde_json::to_value(&exported.manifest).unwrap();
        assert_eq!(m["metadata"]["name"], "wa-15017122661");
        assert_eq!(m["metadata"]["namespace"], "team-a");
        assert_eq!(
            m["metadata"]["annotations"]["senderops.io/exported-from"],
            "XE0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            m["spec"],
            json!({
                "phoneNumber": "+15017122661",
                "credentialsRef": {"name": "twilio"},
                "wabaId": "123",
                "profile": {"name": "Acme", "about": "Hi", "vertical": "Other",
                            "emails": ["a@acme.example"], "websites": ["https://acme.example"]},
                "webhook": {"callbackUrl": "https://h.example/in", "callbackMethod": "POST"},
                "deletionPolicy": "Orphan",
                "suspend": false,
            })
        );
    }

    #[test]
    fn what_the_crd_cannot_hold_is_left_out_with_a_warning() {
        let odd = sender(json!({
            "profile": {"name": "Acme", "vertical": "Space Tourism"},
            "webhook": {"callback_url": "https://h.example/in", "callback_method": "PATCH"},
        }));
        let exported = manifest(&odd, &options()).unwrap();
        assert_eq!(exported.manifest.spec.profile.vertical, None);
        assert_eq!(exported.warnings.len(), 2, "{:?}", exported.warnings);
        assert!(
            exported.warnings[0].contains("would clear it"),
            "{:?}",
            exported.warnings
        );
    }

    #[test]
    fn senders_without_a_name_or_number_are_skipped_with_a_reason() {
        let nameless = sender(json!({"profile": {"name": null}}));
        let rcs = sender(json!({"sender_id": "rcs:acme_agent"}));
        let Rendered {
            yaml,
            exported,
            warnings,
        } = render(&[nameless, rcs, sender(json!({}))], &options());
        assert_eq!(exported, 1);
        assert_eq!(yaml.matches("kind: WhatsAppSender").count(), 1, "{yaml}");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("no display name"), "{warnings:?}");
        assert!(
            warnings[1].contains("not a WhatsApp number"),
            "{warnings:?}"
        );
    }

    #[test]
    fn credentials_come_from_twilio_cli_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        const SID: &str = "AC0123456789abcdef0123456789abcdef";
        let token = credentials_from_env(env(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_AUTH_TOKEN", "t"),
        ]))
        .unwrap();
        assert!(matches!(token, Credentials::AuthToken { .. }));
        let key = credentials_from_env(env(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_SECRET", "s"),
        ]))
        .unwrap();
        assert!(matches!(key, Credentials::ApiKey { .. }));
        assert!(
            credentials_from_env(env(&[("TWILIO_ACCOUNT_SID", SID)]))
                .unwrap_err()
                .contains("TWILIO_AUTH_TOKEN")
        );
        assert!(
            credentials_from_env(env(&[]))
                .unwrap_err()
                .contains("TWILIO_ACCOUNT_SID")
        );
        assert!(
            credentials_from_env(env(&[
                ("TWILIO_ACCOUNT_SID", SID),
                ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
            ]))
            .unwrap_err()
            .contains("TWILIO_API_SECRET")
        );
    }
}
