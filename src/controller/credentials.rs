//! Twilio credentials from a Secret's data. Secret values go straight into [`Credentials`]
//! (redacted `Debug`) and are never logged or echoed; problems name keys, never values. The
//! client built from them is kept per Secret version in the controller's state.

use std::collections::BTreeMap;

use crate::twilio::{Credentials, MissingPart, TwilioError};

pub const ACCOUNT_SID_KEY: &str = "accountSid";
pub const AUTH_TOKEN_KEY: &str = "authToken";
pub const API_KEY_SID_KEY: &str = "apiKeySid";
pub const API_KEY_SECRET_KEY: &str = "apiKeySecret";

/// What is wrong with a credentials Secret. Messages name keys, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsProblem {
    #[error(
        "Secret {0} (credentialsRef) does not exist: create it with accountSid and authToken, or \
         accountSid, apiKeySid and apiKeySecret"
    )]
    SecretNotFound(String),
    #[error("Secret {secret} (credentialsRef) has no key {missing}: {hint}")]
    MissingKey {
        secret: String,
        missing: String,
        hint: &'static str,
    },
    #[error("Secret {secret} (credentialsRef): key {key} is not UTF-8 text")]
    NotText { secret: String, key: &'static str },
    #[error("Secret {secret} (credentialsRef) holds unusable credentials: {reason}")]
    Unusable { secret: String, reason: String },
}

impl CredentialsProblem {
    /// The Secret is missing or incomplete (the user has not provided it yet), as opposed to
    /// holding values that cannot work.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::SecretNotFound(_) | Self::MissingKey { .. })
    }
}

/// Reads `accountSid` + `authToken`, or `accountSid` + `apiKeySid` + `apiKeySecret` (an API key
/// wins when both are present). Values are trimmed: a trailing newline from `echo` is common.
pub fn parse(
    secret: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Credentials, CredentialsProblem> {
    let text = |key: &'static str| -> Result<Option<String>, CredentialsProblem> {
        match data.get(key) {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|s| Some(s.trim().to_string()).filter(|s| !s.is_empty()))
                .map_err(|_| CredentialsProblem::NotText {
                    secret: secret.to_string(),
                    key,
                }),
        }
    };
    let credentials = Credentials::from_parts(
        text(ACCOUNT_SID_KEY)?,
        text(AUTH_TOKEN_KEY)?,
        text(API_KEY_SID_KEY)?,
        text(API_KEY_SECRET_KEY)?,
    )
    .map_err(|part| {
        let (missing, hint) = match part {
            MissingPart::AccountSid => (
                ACCOUNT_SID_KEY,
                "add the Twilio account (or subaccount) SID, AC…",
            ),
            MissingPart::AuthTokenOrApiKey => (
                "authToken (or apiKeySid and apiKeySecret)",
                "add the account's auth token, or an API key",
            ),
            MissingPart::ApiKeySid => (
                API_KEY_SID_KEY,
                "an API key needs both apiKeySid and apiKeySecret",
            ),
            MissingPart::ApiKeySecret => (
                API_KEY_SECRET_KEY,
                "an API key needs both apiKeySid and apiKeySecret",
            ),
        };
        CredentialsProblem::MissingKey {
            secret: secret.to_string(),
            missing: missing.to_string(),
            hint,
        }
    })?;
    credentials
        .validate()
        .map_err(|e| CredentialsProblem::Unusable {
            secret: secret.to_string(),
            reason: match e {
                TwilioError::InvalidConfig(reason) => reason,
                other => other.to_string(),
            },
        })?;
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn auth_token_or_api_key() {
        let token = parse("t", &data(&[("accountSid", SID), ("authToken", "tok\n")])).unwrap();
        assert!(matches!(token, Credentials::AuthToken { .. }));
        assert_eq!(token.account_sid(), SID);

        let key = parse(
            "t",
            &data(&[
                ("accountSid", SID),
                ("apiKeySid", "SK0123456789abcdef0123456789abcdef"),
                ("apiKeySecret", "s3cret"),
                ("authToken", "tok"),
            ]),
        )
        .unwrap();
        assert!(matches!(key, Credentials::ApiKey { .. }), "an API key wins");
    }

    #[test]
    fn problems_name_the_missing_key() {
        let cases = [
            (data(&[("authToken", "tok")]), "has no key accountSid"),
            (
                data(&[("accountSid", SID)]),
                "has no key authToken (or apiKeySid and apiKeySecret)",
            ),
            (
                data(&[("accountSid", SID), ("apiKeySid", "SKx")]),
                "has no key apiKeySecret",
            ),
            (
                data(&[("accountSid", SID), ("authToken", "  ")]),
                "has no key authToken",
            ),
        ];
        for (secret, needle) in cases {
            let err = parse("twilio", &secret).unwrap_err();
            assert!(err.is_not_found(), "{err}");
            assert!(err.to_string().contains(needle), "{err:?} lacks {needle:?}");
            assert!(err.to_string().contains("Secret twilio"), "{err}");
        }
    }

    #[test]
    fn unusable_values_are_described_without_quoting_them() {
        let err = parse(
            "t",
            &data(&[("accountSid", "XX-not-a-sid"), ("authToken", "tok")]),
        )
        .unwrap_err();
        assert!(!err.is_not_found());
        let shown = err.to_string();
        assert!(
            shown.contains("accountSid must be 34 characters"),
            "{shown}"
        );
        assert!(!shown.contains("XX-not-a-sid"), "{shown}");

        let mut binary = data(&[("accountSid", SID)]);
        binary.insert("authToken".into(), vec![0xff, 0xfe]);
        assert_eq!(
            parse("t", &binary).unwrap_err(),
            CredentialsProblem::NotText {
                secret: "t".into(),
                key: "authToken"
            }
        );
    }
}
