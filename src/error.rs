//! The operator's error type: the transient failures a reconcile backs off from, how long to
//! back off, and what the user reads in the `Synced` condition meanwhile.

use std::time::Duration;

use crate::runtime::conditions::reason;
use crate::twilio::TwilioError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),

    /// A Twilio request failed in a way worth retrying. Failures only the user can fix are
    /// not errors but Stalled outcomes.
    #[error("could not {action} at Twilio: {source}")]
    Twilio {
        action: &'static str,
        #[source]
        source: TwilioError,
    },

    /// The finalizer could not be handled (an object without a name, a bad finalizer name).
    #[error("finalizer: {0}")]
    Finalizer(String),

    /// The reconcile ran past `--reconcile-timeout` and was dropped where it stood (every step
    /// is safe to repeat).
    #[error(
        "the reconcile did not finish within {}; retrying with backoff",
        humantime::format_duration(*.0)
    )]
    ReconcileTimeout(Duration),
}

impl Error {
    pub fn twilio(action: &'static str) -> impl FnOnce(TwilioError) -> Error {
        move |source| Error::Twilio { action, source }
    }

    /// A short label for metrics and logs, one per kind of failure. A Twilio failure's is its
    /// own (`TwilioError::metric_label`, strum's); the four arms here stay by hand, one of them
    /// passing to a field, which strum's one word per variant cannot say.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kubernetes",
            Self::Twilio { source, .. } => source.metric_label(),
            Self::Finalizer(_) => "finalizer",
            Self::ReconcileTimeout(_) => "reconcile_timeout",
        }
    }

    /// How long Twilio asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Twilio { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// The `Synced` condition's reason and message for this failure.
    pub fn condition(&self) -> (&'static str, String) {
        match self {
            Self::Kube(err) => (
                reason::KUBERNETES_ERROR,
                format!("{err}; retrying with backoff"),
            ),
            Self::Twilio { action, source } => {
                (reason::TWILIO_UNAVAILABLE, twilio_message(action, source))
            }
            Self::Finalizer(message) => (reason::KUBERNETES_ERROR, message.clone()),
            // Most of a reconcile's time is spent waiting on Twilio.
            Self::ReconcileTimeout(_) => (reason::TWILIO_UNAVAILABLE, self.to_string()),
        }
    }
}

/// "could not create the sender (Twilio error 63104, HTTP 400): <advice>". Twilio's own message
/// may appear (the advice quotes it where it helps); request contents never do.
pub fn twilio_message(action: &str, err: &TwilioError) -> String {
    let what = match err {
        TwilioError::Api {
            http_status,
            code: Some(code),
            ..
        } => format!("Twilio error {code}, HTTP {http_status}"),
        TwilioError::Api { http_status, .. } => format!("HTTP {http_status}"),
        TwilioError::Timeout => "timed out".to_string(),
        TwilioError::Fenced => "not sent".to_string(),
        TwilioError::Connect(_) => "connection failed".to_string(),
        TwilioError::Transport(_) => "connection broke".to_string(),
        TwilioError::Decode(_) | TwilioError::Pagination(_) => "unreadable answer".to_string(),
        TwilioError::ResponseTooLarge { .. } => "answer too large".to_string(),
        TwilioError::InvalidConfig(_) | TwilioError::InvalidArgument(_) => "refused locally".into(),
    };
    format!("could not {action} ({what}): {}", err.advice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_failures_carry_code_and_advice() {
        let err = TwilioError::from_response(
            400,
            r#"{"code":63104,"message":"Maximum number reached","status":400}"#,
            None,
        );
        let message = twilio_message("create the sender", &err);
        assert!(
            message.starts_with("could not create the sender (Twilio error 63104, HTTP 400): "),
            "{message}"
        );
        assert!(
            message.contains("maximum number of phone numbers"),
            "{message}"
        );
    }

    #[test]
    fn throttling_keeps_retry_after() {
        let err = Error::Twilio {
            action: "read the sender",
            source: TwilioError::from_response(
                429,
                r#"{"code":20429,"message":"Too Many Requests"}"#,
                Some(Duration::from_secs(9)),
            ),
        };
        assert_eq!(err.retry_after(), Some(Duration::from_secs(9)));
        assert_eq!(err.metric_label(), "twilio_throttled");
        assert_eq!(err.condition().0, reason::TWILIO_UNAVAILABLE);
    }

    #[test]
    fn every_kind_of_failure_has_its_label() {
        let label = |source| Error::twilio("read the sender")(source).metric_label();
        let answer = |status| TwilioError::from_response(status, "{}", None);
        assert_eq!(label(answer(400)), "twilio_api");
        assert_eq!(label(answer(429)), "twilio_throttled");
        assert_eq!(label(TwilioError::Timeout), "twilio_timeout");
        assert_eq!(label(TwilioError::Fenced), "not_leader");
        assert_eq!(label(TwilioError::Connect("x".into())), "twilio_transport");
        assert_eq!(
            label(TwilioError::Transport("x".into())),
            "twilio_transport"
        );
        assert_eq!(label(TwilioError::Decode("x".into())), "twilio_response");
        assert_eq!(
            label(TwilioError::Pagination("x".into())),
            "twilio_response"
        );
        let too_large = TwilioError::ResponseTooLarge { limit: 1 };
        assert_eq!(label(too_large), "twilio_response");
        assert_eq!(
            label(TwilioError::InvalidConfig("x".into())),
            "twilio_config"
        );
        assert_eq!(
            label(TwilioError::InvalidArgument("x".into())),
            "twilio_config"
        );
        let kube = Error::Kube(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert_eq!(kube.metric_label(), "kubernetes");
        assert_eq!(Error::Finalizer("x".into()).metric_label(), "finalizer");
        let timeout = Error::ReconcileTimeout(Duration::from_secs(1));
        assert_eq!(timeout.metric_label(), "reconcile_timeout");
    }
}
