//! Which accounts and API keys the simulator accepts, and how fast its lifecycle runs.

use std::time::Duration;

/// Default length of one asynchronous lifecycle step.
pub const DEFAULT_STEP_DELAY: Duration = Duration::from_secs(1);
/// Default number of steps an `offline_after_registration` number reads OFFLINE.
pub const DEFAULT_OFFLINE_STEPS: u32 = 3;
/// Default 63114 lockout: Meta lets a number ask for codes again after a few hours.
pub const DEFAULT_CODE_LOCKOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// Everything the simulator is started with. Build it with `..SimConfig::default()` so that
/// new settings do not break existing callers.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub accounts: Vec<Account>,
    /// How long each asynchronous lifecycle step (CREATING, VERIFYING, ONLINE:UPDATING) takes.
    pub step_delay: Duration,
    /// How many steps an `offline_after_registration` number reads OFFLINE before ONLINE.
    pub offline_steps: u32,
    /// How long a sender stays locked after its 6th code request got 63114.
    pub code_lockout: Duration,
    /// SIDs of API keys that may not read the REST API v2010 (`/2010-04-01/…`), like a Twilio
    /// restricted key without that permission: each must be one of some account's `api_keys`.
    /// Such a key authenticates for the Senders and Alerts APIs as any other, and gets 403
    /// (20403) on v2010 routes.
    pub restricted_api_keys: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            accounts: Vec::new(),
            step_delay: DEFAULT_STEP_DELAY,
            offline_steps: DEFAULT_OFFLINE_STEPS,
            code_lockout: DEFAULT_CODE_LOCKOUT,
            restricted_api_keys: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Whether the settings fit together: every restricted key is a key of some account.
    pub fn check(&self) -> Result<(), String> {
        for sid in &self.restricted_api_keys {
            let known = self
                .accounts
                .iter()
                .any(|account| account.api_keys.iter().any(|key| &key.sid == sid));
            if !known {
                return Err(format!(
                    "restricted API key {sid} is not among any account's api_keys"
                ));
            }
        }
        Ok(())
    }
}

/// A Twilio account: its SID, auth token and the API keys that act on its behalf.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub account_sid: String,
    pub auth_token: String,
    pub api_keys: Vec<ApiKey>,
}

/// An API key (`SK…`) belonging to one account.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub sid: String,
    pub secret: String,
}

// Hand-written so that secrets never reach a log through `{:?}`.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("api_keys", &self.api_keys)
            .finish()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("sid", &self.sid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Account {
    /// Parses `SID:TOKEN` (the token may itself contain colons).
    pub fn parse(s: &str) -> Result<Account, String> {
        let (sid, token) = s
            .split_once(':')
            .ok_or_else(|| "expected ACCOUNT_SID:AUTH_TOKEN".to_string())?;
        if sid.is_empty() || token.is_empty() {
            return Err("expected ACCOUNT_SID:AUTH_TOKEN with both parts non-empty".into());
        }
        Ok(Account {
            account_sid: sid.to_string(),
            auth_token: token.to_string(),
            api_keys: Vec::new(),
        })
    }
}

impl ApiKey {
    /// Parses `ACCOUNT_SID:SK…:SECRET` into the owning account SID and the key.
    pub fn parse_owned(s: &str) -> Result<(String, ApiKey), String> {
        let mut parts = s.splitn(3, ':');
        let (Some(account), Some(sid), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("expected ACCOUNT_SID:API_KEY_SID:SECRET".into());
        };
        if account.is_empty() || sid.is_empty() || secret.is_empty() {
            return Err("expected ACCOUNT_SID:API_KEY_SID:SECRET with all parts non-empty".into());
        }
        Ok((
            account.to_string(),
            ApiKey {
                sid: sid.to_string(),
                secret: secret.to_string(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_account_and_key() {
        let account = Account::parse("AC1:tok:en").unwrap();
        assert_eq!(account.account_sid, "AC1");
        assert_eq!(account.auth_token, "tok:en");
        assert!(Account::parse("AC1").is_err());
        assert!(Account::parse(":tok").is_err());

        let (owner, key) = ApiKey::parse_owned("AC1:SK1:secret").unwrap();
        assert_eq!(
            (owner.as_str(), key.sid.as_str(), key.secret.as_str()),
            ("AC1", "SK1", "secret")
        );
        assert!(ApiKey::parse_owned("AC1:SK1").is_err());
    }

    #[test]
    fn a_restricted_key_must_be_an_accounts_key() {
        let mut account = Account::parse("AC1:token").unwrap();
        account.api_keys.push(ApiKey {
            sid: "SK1".into(),
            secret: "secret".into(),
        });
        let config = |restricted: &str| SimConfig {
            accounts: vec![account.clone()],
            restricted_api_keys: vec![restricted.into()],
            ..SimConfig::default()
        };
        assert_eq!(config("SK1").check(), Ok(()));
        for unknown in ["SK2", "AC1"] {
            let err = config(unknown).check().unwrap_err();
            assert!(err.contains(unknown), "{err}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let mut account = Account::parse("AC1:supersecret").unwrap();
        account.api_keys.push(ApiKey {
            sid: "SK1".into(),
            secret: "keysecret".into(),
        });
        let shown = format!("{account:?}");
        assert!(
            !shown.contains("supersecret") && !shown.contains("keysecret"),
            "{shown}"
        );
    }
}
