//! HTTP Basic auth as Twilio does it: `AccountSid:AuthToken`, or `SK…:secret` of an API key, in
//! which case the request acts for the key's owning account.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::Account;
use crate::errors::ApiError;

/// Who a request authenticated as: the account it acts for, and whether its credential may read
/// the REST API v2010 (an account's own token and an unrestricted key may; a restricted key,
/// [`crate::SimConfig::restricted_api_keys`], may not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: String,
    pub may_read_v2010: bool,
}

/// What a username's password must be, and whom it authenticates.
#[derive(Debug)]
struct Credential {
    secret: String,
    principal: Principal,
}

/// Username (account SID or API key SID) → its credential.
#[derive(Debug, Default)]
pub struct Credentials {
    by_username: HashMap<String, Credential>,
}

impl Credentials {
    /// `restricted` names API keys that may not read v2010.
    pub fn new(accounts: &[Account], restricted: &[String]) -> Credentials {
        let mut by_username = HashMap::new();
        for account in accounts {
            by_username.insert(
                account.account_sid.clone(),
                Credential {
                    secret: account.auth_token.clone(),
                    principal: Principal {
                        account: account.account_sid.clone(),
                        may_read_v2010: true,
                    },
                },
            );
            for key in &account.api_keys {
                by_username.insert(
                    key.sid.clone(),
                    Credential {
                        secret: key.secret.clone(),
                        principal: Principal {
                            account: account.account_sid.clone(),
                            may_read_v2010: !restricted.contains(&key.sid),
                        },
                    },
                );
            }
        }
        Credentials { by_username }
    }

    /// Whom the request authenticates as, or a 401 (20003).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let (username, password) =
            basic_credentials(headers).ok_or_else(|| ApiError::authentication("Authenticate"))?;
        let credential = self
            .by_username
            .get(&username)
            .ok_or_else(|| ApiError::authentication("Authentication Error - invalid username"))?;
        if !constant_time_eq(credential.secret.as_bytes(), password.as_bytes()) {
            return Err(ApiError::authentication(
                "Authentication Error - invalid password",
            ));
        }
        Ok(credential.principal.clone())
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

// Not that a simulator needs it, but it costs nothing to avoid a timing oracle.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKey;
    use axum::http::HeaderValue;

    fn headers(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    #[test]
    fn accepts_token_and_key_rejects_others() {
        let mut account = Account::parse("AC1:token").unwrap();
        account.api_keys.push(ApiKey {
            sid: "SK1".into(),
            secret: "keysecret".into(),
        });
        account.api_keys.push(ApiKey {
            sid: "SK2".into(),
            secret: "restricted".into(),
        });
        let credentials = Credentials::new(&[account], &["SK2".to_string()]);

        let principal = |account: &str, may_read_v2010| Principal {
            account: account.into(),
            may_read_v2010,
        };
        assert_eq!(
            credentials.authenticate(&headers("AC1", "token")).unwrap(),
            principal("AC1", true)
        );
        assert_eq!(
            credentials
                .authenticate(&headers("SK1", "keysecret"))
                .unwrap(),
            principal("AC1", true)
        );
        assert_eq!(
            credentials
                .authenticate(&headers("SK2", "restricted"))
                .unwrap(),
            principal("AC1", false),
            "a restricted key authenticates, without v2010"
        );
        for (user, password) in [
            ("AC1", "wrong"),
            ("AC2", "token"),
            ("SK1", "token"),
            ("SK2", "keysecret"),
        ] {
            let err = credentials
                .authenticate(&headers(user, password))
                .unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (401, 20003));
        }
        let err = credentials.authenticate(&HeaderMap::new()).unwrap_err();
        assert_eq!(err.code, 20003);
    }
}
