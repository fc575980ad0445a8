//! Credentials for one Twilio account (or subaccount).
//!
//! Secrets are held in `SecretString` so that `Debug` (and therefore logs, panics and error
//! chains) never shows them; only the HTTP client reads them, to build the Basic-auth header.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::error::TwilioError;

/// The part missing from what a user provided (see [`Credentials::from_parts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingPart {
    AccountSid,
    /// Neither an auth token nor an API key.
    AuthTokenOrApiKey,
    /// An API key secret without its SID.
    ApiKeySid,
    /// An API key SID without its secret.
    ApiKeySecret,
}

/// How the operator authenticates to Twilio for one account.
///
/// Subaccounts use their own account SID in both forms: the Senders API scopes every call to
/// the account whose credentials sign it.
#[derive(Clone)]
pub enum Credentials {
    /// `AccountSid:AuthToken`, the account's primary credential.
    AuthToken {
        account_sid: String,
        auth_token: SecretString,
    },
    /// An API key (`SK…` + secret) issued for `account_sid`. Preferred in production: it can be
    /// revoked on its own without rotating the account's auth token.
    ApiKey {
        account_sid: String,
        key_sid: String,
        key_secret: SecretString,
    },
}

impl Credentials {
    /// Credentials from the parts a user provides (a Secret's keys, environment variables):
    /// the account SID with an API key (SID and secret), or else with an auth token. Parts are
    /// trimmed (a trailing newline from `echo` is common); empty ones count as missing.
    pub fn from_parts(
        account_sid: Option<String>,
        auth_token: Option<String>,
        api_key_sid: Option<String>,
        api_key_secret: Option<String>,
    ) -> Result<Self, MissingPart> {
        let given =
            |part: Option<String>| part.map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
        let account_sid = given(account_sid).ok_or(MissingPart::AccountSid)?;
        match (given(api_key_sid), given(api_key_secret), given(auth_token)) {
            (Some(sid), Some(secret), _) => Ok(Self::api_key(account_sid, sid, secret)),
            (Some(_), None, _) => Err(MissingPart::ApiKeySecret),
            (None, Some(_), _) => Err(MissingPart::ApiKeySid),
            (None, None, Some(token)) => Ok(Self::auth_token(account_sid, token)),
            (None, None, None) => Err(MissingPart::AuthTokenOrApiKey),
        }
    }

    /// Account SID + auth token.
    pub fn auth_token(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self::AuthToken {
            account_sid: account_sid.into(),
            auth_token: SecretString::from(auth_token.into()),
        }
    }

    /// API key (`SK…`) + secret, acting on `account_sid`.
    pub fn api_key(
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        key_secret: impl Into<String>,
    ) -> Self {
        Self::ApiKey {
            account_sid: account_sid.into(),
            key_sid: key_sid.into(),
            key_secret: SecretString::from(key_secret.into()),
        }
    }

    /// The account every call is made for; also the key of the shared request budget.
    pub fn account_sid(&self) -> &str {
        match self {
            Self::AuthToken { account_sid, .. } | Self::ApiKey { account_sid, .. } => account_sid,
        }
    }

    /// Rejects credentials that cannot possibly work, before any request is made, so the user
    /// gets a precise message instead of Twilio's generic 20003. Values are never echoed.
    pub fn validate(&self) -> Result<(), TwilioError> {
        let account_sid = self.account_sid();
        if !account_sid.starts_with("AC") || account_sid.len() != 34 {
            // What an account SID is, never what this value is like: whoever reads the
            // condition may not be allowed to read the Secret.
            return Err(TwilioError::InvalidConfig(
                "accountSid is not an account SID (34 characters starting with AC)".into(),
            ));
        }
        match self {
            Self::AuthToken { auth_token, .. } => {
                if auth_token.expose_secret().trim().is_empty() {
                    return Err(TwilioError::InvalidConfig("authToken is empty".into()));
                }
            }
            Self::ApiKey {
                key_sid,
                key_secret,
                ..
            } => {
                if !key_sid.starts_with("SK") {
                    return Err(TwilioError::InvalidConfig(
                        "apiKeySid is not an API key SID (it starts with SK)".into(),
                    ));
                }
                if key_secret.expose_secret().trim().is_empty() {
                    return Err(TwilioError::InvalidConfig("apiKeySecret is empty".into()));
                }
            }
        }
        Ok(())
    }

    /// Basic-auth user name: the account SID, or the key SID for an API key.
    pub(crate) fn basic_auth_username(&self) -> &str {
        match self {
            Self::AuthToken { account_sid, .. } => account_sid,
            Self::ApiKey { key_sid, .. } => key_sid,
        }
    }

    /// Basic-auth password. Only the client calls this, right where it signs a request.
    pub(crate) fn basic_auth_password(&self) -> &str {
        match self {
            Self::AuthToken { auth_token, .. } => auth_token.expose_secret(),
            Self::ApiKey { key_secret, .. } => key_secret.expose_secret(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthToken { account_sid, .. } => f
                .debug_struct("Credentials::AuthToken")
                .field("account_sid", account_sid)
                .field("auth_token", &"[REDACTED]")
                .finish(),
            Self::ApiKey {
                account_sid,
                key_sid,
                ..
            } => f
                .debug_struct("Credentials::ApiKey")
                .field("account_sid", account_sid)
                .field("key_sid", key_sid)
                .field("key_secret", &"[REDACTED]")
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_parts_prefers_an_api_key_and_names_what_is_missing() {
        let some = |s: &str| Some(s.to_string());
        let sid = "AC0123456789abcdef0123456789abcdef";
        let key =
            Credentials::from_parts(some(sid), some("tok"), some("SK1"), some("s\n")).unwrap();
        assert!(matches!(key, Credentials::ApiKey { .. }));
        let token = Credentials::from_parts(some(sid), some(" tok\n"), None, None).unwrap();
        assert_eq!(token.basic_auth_password(), "tok");
        let missing = |a, t, k, s| Credentials::from_parts(a, t, k, s).unwrap_err();
        assert_eq!(
            missing(None, some("t"), None, None),
            MissingPart::AccountSid
        );
        assert_eq!(
            missing(some(sid), some("  "), None, None),
            MissingPart::AuthTokenOrApiKey
        );
        assert_eq!(
            missing(some(sid), None, some("SK1"), None),
            MissingPart::ApiKeySecret
        );
        assert_eq!(
            missing(some(sid), None, None, some("s")),
            MissingPart::ApiKeySid
        );
    }

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "tok-5ecret-value-42";
    const KEY_SECRET: &str = "key-5ecret-value-43";

    #[test]
    fn debug_never_shows_secrets() {
        let token = Credentials::auth_token(ACCOUNT, TOKEN);
        let shown = format!("{token:?} {token:#?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains(ACCOUNT));
        assert!(shown.contains("[REDACTED]"));

        let key = Credentials::api_key(ACCOUNT, "SKabc", KEY_SECRET);
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains(KEY_SECRET), "{shown}");
        assert!(shown.contains("SKabc"));
    }

    #[test]
    fn basic_auth_pair_per_kind() {
        let token = Credentials::auth_token(ACCOUNT, TOKEN);
        assert_eq!(token.basic_auth_username(), ACCOUNT);
        assert_eq!(token.basic_auth_password(), TOKEN);
        assert_eq!(token.account_sid(), ACCOUNT);

        let key = Credentials::api_key(ACCOUNT, "SKabc", KEY_SECRET);
        assert_eq!(key.basic_auth_username(), "SKabc");
        assert_eq!(key.basic_auth_password(), KEY_SECRET);
        assert_eq!(key.account_sid(), ACCOUNT, "the key acts on the account");
    }

    #[test]
    fn validate_rejects_unusable_values_without_echoing_them() {
        assert!(Credentials::auth_token(ACCOUNT, TOKEN).validate().is_ok());
        assert!(
            Credentials::api_key(ACCOUNT, "SKabc", KEY_SECRET)
                .validate()
                .is_ok()
        );

        let bad_sid = Credentials::auth_token("XX123", TOKEN)
            .validate()
            .unwrap_err();
        assert!(bad_sid.to_string().contains("accountSid"), "{bad_sid}");
        let empty = Credentials::auth_token(ACCOUNT, " ")
            .validate()
            .unwrap_err();
        assert!(empty.to_string().contains("authToken"), "{empty}");
        let bad_key = Credentials::api_key(ACCOUNT, "AKabc", KEY_SECRET)
            .validate()
            .unwrap_err();
        assert!(bad_key.to_string().contains("apiKeySid"), "{bad_key}");
        assert!(!bad_key.to_string().contains(KEY_SECRET));
    }
}
