//! One-time codes: where the code comes from, whether it is well formed, whether this Secret
//! version was already submitted, and whether the user asked for a new code. Pure: Secret
//! metadata and status in, decisions out.
//!
//! A code is identified by the Secret version it was read from, never by its value: the status
//! must not hold the code or anything derived from it.

use std::collections::BTreeMap;

use crate::api::{CodeSecretRef, SubmittedCode, Verification};
use crate::twilio::VerificationCode;

/// Annotation whose every new value asks Twilio for a new code.
pub const RESEND_CODE_ANNOTATION: &str = "senderops.io/resend-code";

/// Meta's codes are 6 digits today; 4–8 leaves room without accepting junk.
const CODE_DIGITS: std::ops::RangeInclusive<usize> = 4..=8;

/// Where the code for a sender lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeSource {
    pub secret_name: String,
    pub key: String,
}

impl CodeSource {
    /// From `spec.verification`, or `None` when the spec names no code Secret.
    pub fn from_spec(verification: Option<&Verification>) -> Option<Self> {
        let CodeSecretRef { name, key } = verification?.code_secret_ref.as_ref()?;
        Some(Self {
            secret_name: name.clone(),
            key: key.clone(),
        })
    }

    pub fn is(&self, submitted: &SubmittedCode) -> bool {
        submitted.secret_name == self.secret_name && submitted.key == self.key
    }
}

/// What to do about the code while Twilio reports `PENDING_VERIFICATION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeStep {
    /// The spec names no code Secret.
    NoSecretConfigured,
    /// The Secret does not exist (yet).
    WaitForSecret(CodeSource),
    /// This Secret version was submitted and Twilio has not answered on it yet.
    AwaitVerdict,
    /// This Secret version was submitted and refused; a new value is needed.
    Rejected(CodeSource),
    /// A Secret version not submitted before (or whose last submission may not have reached
    /// Twilio, then `retry`): read it and submit it.
    Submit {
        source: CodeSource,
        resource_version: String,
        retry: bool,
    },
}

/// Decides the code step. `secret_version` is the Secret's `resourceVersion`, `None` when it
/// does not exist; `submitted` is what the status remembers.
pub fn code_step(
    source: Option<CodeSource>,
    secret_version: Option<&str>,
    submitted: Option<&SubmittedCode>,
) -> CodeStep {
    let Some(source) = source else {
        return CodeStep::NoSecretConfigured;
    };
    let Some(version) = secret_version else {
        return CodeStep::WaitForSecret(source);
    };
    match submitted {
        Some(done) if source.is(done) && done.resource_version == version => {
            if done.rejected {
                CodeStep::Rejected(source)
            } else if done.uncertain {
                CodeStep::Submit {
                    source,
                    resource_version: version.to_string(),
                    retry: true,
                }
            } else {
                CodeStep::AwaitVerdict
            }
        }
        _ => CodeStep::Submit {
            source,
            resource_version: version.to_string(),
            retry: false,
        },
    }
}

/// Why a Secret's content is not a usable code. Messages never quote the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeProblem {
    #[error("Secret {secret} has no key {key:?}: put the one-time code under that key")]
    MissingKey { secret: String, key: String },
    /// Says what a code is, never what the value is like: whoever reads the condition may
    /// not be allowed to read the Secret.
    #[error(
        "the value under key {key:?} of Secret {secret} is not a one-time code (4 to 8 digits); \
         put the code exactly as received"
    )]
    Malformed { secret: String, key: String },
}

/// The code under `source.key` in a Secret's `data`, checked: 4–8 ASCII digits once
/// surrounding whitespace is trimmed.
pub fn read_code(
    source: &CodeSource,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<VerificationCode, CodeProblem> {
    let raw = data
        .get(&source.key)
        .ok_or_else(|| CodeProblem::MissingKey {
            secret: source.secret_name.clone(),
            key: source.key.clone(),
        })?;
    let malformed = || CodeProblem::Malformed {
        secret: source.secret_name.clone(),
        key: source.key.clone(),
    };
    let code = std::str::from_utf8(raw).map_err(|_| malformed())?.trim();
    if !code.bytes().all(|b| b.is_ascii_digit()) || !CODE_DIGITS.contains(&code.len()) {
        return Err(malformed());
    }
    Ok(VerificationCode::new(code))
}

/// The `senderops.io/resend-code` value to act on: set, non-empty, and different from the last
/// one acted on.
pub fn resend_request<'a>(
    annotations: &'a BTreeMap<String, String>,
    handled: Option<&str>,
) -> Option<&'a str> {
    annotations
        .get(RESEND_CODE_ANNOTATION)
        .map(|v| v.as_str())
        .filter(|v| !v.trim().is_empty() && Some(*v) != handled)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::twilio::VerificationMethod;

    fn source() -> CodeSource {
        CodeSource {
            secret_name: "otp".into(),
            key: "code".into(),
        }
    }

    fn submitted(version: &str, rejected: bool) -> SubmittedCode {
        SubmittedCode {
            secret_name: "otp".into(),
            key: "code".into(),
            resource_version: version.into(),
            submitted_at: Time(Timestamp::UNIX_EPOCH),
            rejected,
            uncertain: false,
        }
    }

    fn data(value: &[u8]) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([("code".to_string(), value.to_vec())])
    }

    #[test]
    fn the_key_defaults_to_code() {
        let verification: Verification =
            serde_json::from_value(serde_json::json!({"codeSecretRef": {"name": "otp"}})).unwrap();
        assert_eq!(verification.method, VerificationMethod::Sms);
        assert_eq!(CodeSource::from_spec(Some(&verification)), Some(source()));
        assert_eq!(CodeSource::from_spec(None), None);
    }

    #[test]
    fn a_secret_version_is_submitted_once() {
        assert_eq!(
            code_step(None, Some("7"), None),
            CodeStep::NoSecretConfigured
        );
        assert_eq!(
            code_step(Some(source()), None, None),
            CodeStep::WaitForSecret(source())
        );
        assert_eq!(
            code_step(Some(source()), Some("7"), None),
            CodeStep::Submit {
                source: source(),
                resource_version: "7".into(),
                retry: false,
            }
        );
        assert_eq!(
            code_step(Some(source()), Some("7"), Some(&submitted("7", false))),
            CodeStep::AwaitVerdict
        );
        assert_eq!(
            code_step(Some(source()), Some("7"), Some(&submitted("7", true))),
            CodeStep::Rejected(source()),
            "a rejected version is not sent again"
        );
        assert_eq!(
            code_step(Some(source()), Some("8"), Some(&submitted("7", true))),
            CodeStep::Submit {
                source: source(),
                resource_version: "8".into(),
                retry: false,
            },
            "a new version is submitted"
        );
        let uncertain = SubmittedCode {
            uncertain: true,
            ..submitted("7", false)
        };
        assert_eq!(
            code_step(Some(source()), Some("7"), Some(&uncertain)),
            CodeStep::Submit {
                source: source(),
                resource_version: "7".into(),
                retry: true,
            },
            "a submission that may not have arrived is sent again"
        );
        let elsewhere = CodeSource {
            secret_name: "other".into(),
            key: "code".into(),
        };
        assert!(
            matches!(
                code_step(Some(elsewhere), Some("7"), Some(&submitted("7", true))),
                CodeStep::Submit { .. }
            ),
            "another Secret with the same resourceVersion is another code"
        );
    }

    #[test]
    fn codes_are_4_to_8_digits() {
        assert_eq!(
            read_code(&source(), &data(b" 123456\n")).unwrap().expose(),
            "123456"
        );
        assert_eq!(
            read_code(&source(), &data(b"1234")).unwrap().expose(),
            "1234"
        );
        assert_eq!(
            read_code(&source(), &data(b"12345678")).unwrap().expose(),
            "12345678"
        );
        for bad in [
            &b"123"[..],
            b"123456789",
            b"12 34 56",
            b"12345a",
            b"",
            b"\xff\xfe",
        ] {
            let err = read_code(&source(), &data(bad)).unwrap_err();
            assert!(
                matches!(err, CodeProblem::Malformed { .. }),
                "{bad:?}: {err}"
            );
        }
        let err = read_code(&source(), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Secret otp has no key \"code\": put the one-time code under that key"
        );
    }

    #[test]
    fn problems_never_quote_or_describe_the_value() {
        let said: Vec<String> = [
            "98765x",
            "987654321",
            "9876 54",
            "12",
            "\u{e9}\u{e9}\u{e9}\u{e9}",
        ]
        .iter()
        .map(|value| {
            read_code(&source(), &data(value.as_bytes()))
                .unwrap_err()
                .to_string()
        })
        .collect();
        for message in &said {
            assert!(!message.contains("9876"), "{message}");
        }
        assert!(
            said.windows(2).all(|pair| pair[0] == pair[1]),
            "one message whatever is wrong with the value (its length, its characters): {said:#?}"
        );
    }

    #[test]
    fn each_new_resend_value_counts_once() {
        let mut annotations = BTreeMap::new();
        assert_eq!(resend_request(&annotations, None), None);
        annotations.insert(RESEND_CODE_ANNOTATION.to_string(), "1".to_string());
        assert_eq!(resend_request(&annotations, None), Some("1"));
        assert_eq!(resend_request(&annotations, Some("1")), None);
        assert_eq!(resend_request(&annotations, Some("0")), Some("1"));
        annotations.insert(RESEND_CODE_ANNOTATION.to_string(), " ".to_string());
        assert_eq!(resend_request(&annotations, None), None);
    }
}
