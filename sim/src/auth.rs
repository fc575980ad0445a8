//! HTTP Basic auth as Twilio does it: `AccountSid:AuthToken`, or `SK…:secret` of an API key, in
//! which case the request acts for the key's owning account.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::Account;
use crate::errors::ApiError;

/// Username → (secret, account SID it acts for).
#[derive(Debug, Default)]
pub struct Credentials {
    by_username: HashMap<String, (String, String)>,
}

impl Credentials {
    pub fn new(accounts: &[Account]) -> Credentials {
        let mut by_username = HashMap::new();
        for account in accounts {
            by_username.insert(
                account.account_sid.clone(),
                (account.auth_token.clone(), account.account_sid.clone()),
            );
            for key in &account.api_keys {
                by_username.insert(
                    key.sid.clone(),
                    (key.secret.clone(), account.account_sid.clone()),
                );
            }
        }
        Credentials { by_username }
    }

    /// The account SID the request authenticates as, or a 401 (20003).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let (username, password) =
            basic_credentials(headers).ok_or_else(|| ApiError::authentication("Authenticate"))?;
        let (secret, account) = self
            .by_username
            .get(&username)
            .ok_or_else(|| ApiError::authentication("Authentication Error - invalid username"))?;
        if !constant_time_eq(secret.as_bytes(), password.as_bytes()) {
            return Err(ApiError::authentication(
                "Authentication Error - invalid password",
            ));
        }
        Ok(account.clone())
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
        let credentials = Credentials::new(&[account]);

        assert_eq!(
            credentials.authenticate(&headers("AC1", "token")).unwrap(),
            "AC1"
        );
        assert_eq!(
            credentials
                .authenticate(&headers("SK1", "keysecret"))
                .unwrap(),
            "AC1"
        );
        for (user, password) in [("AC1", "wrong"), ("AC2", "token"), ("SK1", "token")] {
            let err = credentials
                .authenticate(&headers(user, password))
                .unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (401, 20003));
        }
        let err = credentials.authenticate(&HeaderMap::new()).unwrap_err();
        assert_eq!(err.code, 20003);
    }
}
