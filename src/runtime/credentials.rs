//! Twilio credentials from a Secret's data, and the client built from them once Twilio has
//! confirmed their account. Secret values go straight into [`Credentials`] (redacted `Debug`)
//! and are never logged or echoed; problems name keys, never values. The client built from
//! them is kept per Secret version by the controller that read the Secret.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;

use super::accounts::AccountRegistry;
use crate::error::Error;
use crate::twilio::{ClientConfig, Credentials, MissingPart, TwilioClient, TwilioError};

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
    #[error("Secret {secret} (credentialsRef): key {key} must hold UTF-8 text")]
    NotText { secret: String, key: &'static str },
    #[error("Secret {secret} (credentialsRef) holds unusable credentials: {reason}")]
    Unusable { secret: String, reason: String },
    #[error(
        "Twilio refused the credentials in Secret {secret} (credentialsRef) for account \
         {account} ({answer}): check accountSid/authToken (or apiKeySid/apiKeySecret); an API \
         key must have been made in the account accountSid names"
    )]
    Refused {
        secret: String,
        account: String,
        answer: String,
    },
}

/// What Twilio said to a read under the account's own path with these credentials
/// ([`crate::twilio::TwilioClient::verify_account`]).
#[derive(Debug)]
pub enum AccountCheck {
    /// They act for the account.
    Confirmed,
    /// 401: they do not authenticate for the account (a wrong token, another account's key).
    Refused(String),
    /// Any other refusal (a restricted key that may not read v2010, a proxy that routes only
    /// some products): the account is not confirmed, and the credentials get caches of their own.
    Unconfirmed(String),
    /// Twilio did not answer (transport, timeout, 5xx, 429): try again later.
    Failed(TwilioError),
}

pub fn account_check(answer: Result<(), TwilioError>) -> AccountCheck {
    match answer {
        Ok(()) => AccountCheck::Confirmed,
        Err(TwilioError::Api {
            http_status: 401,
            code,
            ..
        }) => AccountCheck::Refused(match code {
            Some(code) => format!("Twilio error {code}, HTTP 401"),
            None => "HTTP 401".to_string(),
        }),
        Err(err @ TwilioError::Api { http_status, .. })
            if (400..500).contains(&http_status) && http_status != 429 =>
        {
            AccountCheck::Unconfirmed(err.to_string())
        }
        Err(err @ (TwilioError::Decode(_) | TwilioError::ResponseTooLarge { .. })) => {
            AccountCheck::Unconfirmed(err.to_string())
        }
        Err(err) => AccountCheck::Failed(err),
    }
}

/// The scope of credentials whose account Twilio did not confirm: theirs alone.
pub fn unverified_scope(account: &str, namespace: &str, secret: &str) -> String {
    format!("{account} (unverified: Secret {namespace}/{secret})")
}

impl CredentialsProblem {
    /// The Secret is missing or incomplete (the user has not provided it yet), as opposed to
    /// holding values that cannot work.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::SecretNotFound(_) | Self::MissingKey { .. })
    }
}

/// The Twilio client for the credentials in Secret `namespace`/`name` (its `data`), spending
/// its account's request budget from `accounts`. A Secret's accountSid is believed only once
/// Twilio has confirmed it: every cache shared per account (lists, the Error Log, onboarding
/// turns, the budget) is keyed by it. Credentials Twilio neither confirms nor refuses get
/// caches of their own ([`unverified_scope`]); Twilio not answering is an error to retry.
pub async fn verified_client(
    namespace: &str,
    name: &str,
    data: BTreeMap<String, ByteString>,
    config: &ClientConfig,
    accounts: &AccountRegistry,
) -> Result<Result<TwilioClient, CredentialsProblem>, Error> {
    let data: BTreeMap<String, Vec<u8>> = data.into_iter().map(|(k, v)| (k, v.0)).collect();
    let credentials = match parse(name, &data) {
        Ok(credentials) => credentials,
        Err(problem) => return Ok(Err(problem)),
    };
    // Unverified credentials still spend the budget of the account they name.
    let budget = accounts.budget(credentials.account_sid());
    let client = match TwilioClient::new(credentials, config, budget) {
        Ok(client) => client,
        Err(e) => {
            return Ok(Err(CredentialsProblem::Unusable {
                secret: name.to_string(),
                reason: e.to_string(),
            }));
        }
    };
    match account_check(client.verify_account().await) {
        AccountCheck::Confirmed => Ok(Ok(client)),
        AccountCheck::Refused(answer) => Ok(Err(CredentialsProblem::Refused {
            secret: name.to_string(),
            account: client.account_sid().to_string(),
            answer,
        })),
        AccountCheck::Unconfirmed(why) => {
            let scope = unverified_scope(client.account_sid(), namespace, name);
            tracing::warn!(
                namespace,
                secret = name,
                account = client.account_sid(),
                reason = %why,
                "Twilio did not confirm the account of these credentials; they get caches of \
                 their own"
            );
            Ok(Ok(client.unconfirmed(&scope, &why)))
        }
        AccountCheck::Failed(err) => Err(Error::twilio("confirm the credentials' account")(err)),
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
            shown.contains("accountSid is not an account SID (34 characters starting with AC)"),
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

    fn api(http_status: u16, code: Option<u32>) -> TwilioError {
        TwilioError::Api {
            http_status,
            code,
            message: "m".into(),
            more_info: None,
            retry_after: None,
        }
    }

    #[test]
    fn twilios_answer_to_the_account_check_decides_how_far_credentials_are_trusted() {
        assert!(matches!(account_check(Ok(())), AccountCheck::Confirmed));
        assert!(matches!(
            account_check(Err(api(401, Some(20003)))),
            AccountCheck::Refused(answer) if answer == "Twilio error 20003, HTTP 401"
        ));
        for refusal in [api(403, Some(20403)), api(404, Some(20404))] {
            assert!(matches!(
                account_check(Err(refusal)),
                AccountCheck::Unconfirmed(_)
            ));
        }
        assert!(matches!(
            account_check(Err(TwilioError::Decode("not a page".into()))),
            AccountCheck::Unconfirmed(_)
        ));
        for passing in [api(429, Some(20429)), api(503, None), TwilioError::Timeout] {
            assert!(matches!(
                account_check(Err(passing)),
                AccountCheck::Failed(_)
            ));
        }
    }

    #[test]
    fn a_refusal_says_what_to_fix_and_names_no_value() {
        let refused = CredentialsProblem::Refused {
            secret: "twilio".into(),
            account: SID.into(),
            answer: "Twilio error 20003, HTTP 401".into(),
        };
        assert!(!refused.is_not_found());
        let shown = refused.to_string();
        assert!(shown.contains("20003") && shown.contains(SID), "{shown}");
        assert!(
            shown.contains("check accountSid/authToken (or apiKeySid/apiKeySecret)"),
            "{shown}"
        );
    }
}
