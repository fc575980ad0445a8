//! Verify: while Twilio reports `PENDING_VERIFICATION`, the one-time code. [`decide`] (pure)
//! reads the spec, the annotations, the status's code bookkeeping, the code Secret's version
//! and the sender's lockout, and returns the step: ask for a new code, wait for the Secret,
//! report a refused code, or submit a Secret version not submitted before. The executors read
//! the Secret and talk to Twilio.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use tokio::time::Instant;

use super::run::{Outcome, Requeue, Run};
use super::shared::{Phase, spaced, stalled, stop};
use crate::api::{SubmittedCode, VerificationStatus, WhatsAppSenderSpec, reason};
use crate::controllers::whatsapp_sender::diff;
use crate::controllers::whatsapp_sender::events::reason as event;
use crate::controllers::whatsapp_sender::otp::{
    self, CodeProblem, CodeSource, CodeStep, RESEND_CODE_ANNOTATION,
};
use crate::controllers::whatsapp_sender::pacing::TOO_MANY_CODES_RETRY;
use crate::controllers::whatsapp_sender::resends::{self, Held};
use crate::controllers::whatsapp_sender::state::{CodeFingerprint, Written};
use crate::error::{Error, Result};
use crate::runtime::conditions::Assessment;
use crate::runtime::events::Note;
use crate::twilio::{
    ErrorClass, Sender, TwilioClient, TwilioError, UpdateSenderRequest, VerificationCode,
};

/// Who waits for the code, for messages.
#[derive(Clone, Copy, Debug)]
pub struct Waiting<'a> {
    pub phone: &'a str,
    pub method: &'a str,
    pub namespace: &'a str,
}

/// Why a new code may not be asked for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotNow {
    /// Twilio refused to send more codes (63114), for about this long still.
    Locked(Duration),
    /// The sender's own limits ([`crate::controllers::whatsapp_sender::resends`]).
    Held(Held),
}

/// What to do about the code.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// The annotation asks for a new code (this value not yet acted on).
    RequestNewCode(String),
    /// Read this Secret version and submit the code.
    Submit {
        source: CodeSource,
        resource_version: String,
        retry: bool,
    },
    /// Twilio answered the last submission with `PENDING_VERIFICATION` again: the code was
    /// refused. Mark it so and say so.
    Refused(Outcome),
    /// Nothing to send: set these conditions.
    Conclude(Outcome),
}

pub fn decide(
    spec: &WhatsAppSenderSpec,
    who: Waiting<'_>,
    annotations: &BTreeMap<String, String>,
    done: Option<&VerificationStatus>,
    secret_version: Option<&str>,
    not_now: Option<NotNow>,
) -> Step {
    let handled = done.and_then(|v| v.resend_code_request.as_deref());
    if let Some(value) = otp::resend_request(annotations, handled) {
        match not_now {
            Some(NotNow::Locked(left)) => {
                // Asking again while Twilio's lockout runs only prolongs it.
                let message = format!(
                    "Twilio refused to send more codes (63114); the request in annotation \
                     {RESEND_CODE_ANNOTATION} is retried in {}",
                    humantime::format_duration(Duration::from_secs(left.as_secs()))
                );
                return Step::Conclude(Outcome::new(
                    Assessment::stalled(reason::TOO_MANY_CODES, message),
                    Requeue::After(left),
                ));
            }
            Some(NotNow::Held(held)) => return Step::Conclude(held_request(value, &held)),
            None => return Step::RequestNewCode(value.to_string()),
        }
    }
    let source = CodeSource::from_spec(spec.verification.as_ref());
    let submitted = done.and_then(|v| v.submitted_code.as_ref());
    match otp::code_step(source, secret_version, submitted) {
        CodeStep::NoSecretConfigured => waiting(format!(
            "Twilio sent a one-time code to {} by {}; set spec.verification.codeSecretRef to a \
             Secret and put the code there",
            who.phone, who.method
        )),
        CodeStep::WaitForSecret(source) => waiting(waiting_for(who, &source)),
        // Twilio answers a submission with VERIFYING; reading PENDING_VERIFICATION after it
        // means the code was refused.
        CodeStep::AwaitVerdict => Step::Refused(rejected(submitted)),
        CodeStep::Rejected(_) => Step::Conclude(rejected(submitted)),
        CodeStep::Submit {
            source,
            resource_version,
            retry,
        } => Step::Submit {
            source,
            resource_version,
            retry,
        },
    }
}

/// A new code asked for too soon: when it goes out, and why not now.
pub fn held_request(value: &str, held: &Held) -> Outcome {
    let left = Duration::from_secs(held.left.as_secs().max(1));
    let message = format!(
        "the new code asked for with {RESEND_CODE_ANNOTATION}={value:?} is asked for in {} \
         (at {}): {}; each one is an SMS or a call to the number",
        humantime::format_duration(left),
        Timestamp::now() + k8s_openapi::jiff::SignedDuration::try_from(left).unwrap_or_default(),
        held.why,
    );
    Outcome::new(
        Assessment::waiting(reason::QUEUED, message),
        Requeue::After(left),
    )
}

fn waiting(message: String) -> Step {
    Step::Conclude(Outcome::new(
        Assessment::progressing(reason::WAITING_FOR_CODE, message),
        Requeue::Resync,
    ))
}

fn waiting_for(who: Waiting<'_>, source: &CodeSource) -> String {
    format!(
        "waiting for the one-time code sent to {} by {}: create Secret {} with the code under \
         key {:?} (kubectl create secret generic {} -n {} --from-literal={}=CODE)",
        who.phone,
        who.method,
        source.secret_name,
        source.key,
        source.secret_name,
        who.namespace,
        source.key,
    )
}

fn rejected(submitted: Option<&SubmittedCode>) -> Outcome {
    let (secret, key) = submitted
        .map(|s| (s.secret_name.as_str(), s.key.as_str()))
        .unwrap_or_default();
    let message = format!(
        "Twilio did not accept the code from Secret {secret} key {key:?} (wrong, expired or not \
         received): put the right code in the Secret, or set the annotation \
         {RESEND_CODE_ANNOTATION}=<any new value> to have a new code sent"
    );
    Outcome::new(
        Assessment::stalled(reason::CODE_REJECTED, message),
        Requeue::Resync,
    )
}

/// A code Secret whose content is not a code yet (no key) waits; one with junk stalls.
pub fn unusable_code(problem: &CodeProblem) -> Outcome {
    let assessment = match problem {
        CodeProblem::MissingKey { .. } => {
            Assessment::progressing(reason::WAITING_FOR_CODE, problem.to_string())
        }
        CodeProblem::Malformed { .. } => {
            Assessment::stalled(reason::INVALID_CODE, problem.to_string())
        }
    };
    Outcome::new(assessment, Requeue::Resync)
}

/// What a code submission's answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Twilio has it; it answers with VERIFYING next.
    Accepted,
    /// Twilio certainly did not get it (429, 503, refused connection): send it again, as if
    /// never sent.
    NotReceived,
    /// Twilio refused it (only the user can fix that): never sent again.
    Refused,
    /// Unknown whether Twilio got it (a timeout, a 500): sent again, with backoff, while
    /// Twilio still waits for a code. Declaring a rejection after two failed submissions once
    /// stalled senders whose code never reached Twilio.
    Uncertain,
}

pub fn submitted(answer: Result<(), &TwilioError>) -> Submitted {
    match answer {
        Ok(()) => Submitted::Accepted,
        Err(err) if err.certainly_not_processed() => Submitted::NotReceived,
        Err(err) if err.class() == ErrorClass::NeedsUser => Submitted::Refused,
        Err(_) => Submitted::Uncertain,
    }
}

/// Runs the verify step.
pub async fn run(run: &mut Run<'_>, client: &TwilioClient, sender: &Sender) -> Phase<Outcome> {
    let source = CodeSource::from_spec(run.spec().verification.as_ref());
    let (version, fetched) = match &source {
        Some(source) => code_secret_version(run, &source.secret_name).await?,
        None => (None, None),
    };
    let namespace = run.namespace();
    let who = Waiting {
        phone: run.phone(),
        method: run.method(),
        namespace: &namespace,
    };
    let step = decide(
        run.spec(),
        who,
        run.obj.annotations(),
        run.status.verification.as_ref(),
        version.as_deref(),
        not_now(run),
    );
    match step {
        Step::Conclude(outcome) => Ok(outcome),
        Step::Refused(outcome) => {
            if let Some(done) = run
                .status
                .verification
                .as_mut()
                .and_then(|v| v.submitted_code.as_mut())
            {
                done.rejected = true;
            }
            // Its Event comes with the Stalled condition it sets (`Run::conclude`).
            Ok(outcome)
        }
        Step::RequestNewCode(value) => request_new_code(run, client, &value).await,
        Step::Submit {
            source,
            resource_version,
            retry,
        } => {
            let secret = match fetched {
                Some(secret) => Some(secret),
                None => run.ctx.secret(&namespace, &source.secret_name).await?,
            };
            let Some(secret) = secret else {
                return Ok(Outcome::new(
                    Assessment::progressing(reason::WAITING_FOR_CODE, waiting_for(who, &source)),
                    Requeue::Resync,
                ));
            };
            submit(run, client, sender, source, secret, resource_version, retry).await
        }
    }
}

/// The code Secret's `resourceVersion` as last seen or, when the state does not have it
/// (yet), from the API server; then the Secret read is returned too, so that a submission
/// does not read it again.
async fn code_secret_version(
    run: &Run<'_>,
    name: &str,
) -> Result<(Option<String>, Option<Secret>)> {
    let namespace = run.namespace();
    if let Some(version) = run
        .ctx
        .state
        .secret_version(&(namespace.clone(), name.to_string()))
    {
        return Ok((Some(version), None));
    }
    let secret = run.ctx.secret(&namespace, name).await?;
    let version = secret
        .as_ref()
        .and_then(|s| s.metadata.resource_version.clone());
    Ok((version, secret))
}

/// Submits the code in `secret` (version `resource_version` as the decision saw it), unless
/// it is the code last submitted.
async fn submit(
    run: &mut Run<'_>,
    client: &TwilioClient,
    sender: &Sender,
    source: CodeSource,
    secret: Secret,
    resource_version: String,
    retry: bool,
) -> Phase<Outcome> {
    let version = secret
        .metadata
        .resource_version
        .clone()
        .unwrap_or(resource_version);
    let code = match code_in(&source, secret) {
        Ok(code) => code,
        Err(problem) => return Ok(unusable_code(&problem)),
    };
    let fingerprint = CodeFingerprint {
        secret_name: source.secret_name.clone(),
        key: source.key.clone(),
        hash: run.ctx.state.code_fingerprint(code.expose()),
    };
    if !retry && let Some(outcome) = same_code(run, &source, &fingerprint, &version) {
        return Ok(outcome);
    }
    if retry {
        tracing::info!(
            "submitting the code again: the last submission of this Secret version may not have \
             reached Twilio"
        );
    }
    let answer = client
        .update(&sender.sid, &UpdateSenderRequest::verification_code(code))
        .await
        .map(|_| ());
    let verdict = submitted(answer.as_ref().map(|_| ()));
    let failure = match (&verdict, answer.err()) {
        (Submitted::NotReceived, Some(err)) => {
            return Err(Error::twilio("submit the code")(err).into());
        }
        (_, failure) => failure,
    };
    run.conclusion.submitted_fingerprint = Some(fingerprint);
    record_submission(run, client, sender, &source, &version, &verdict);
    run.save().await?;
    match (verdict, failure) {
        (Submitted::Refused, Some(err)) => return stop(stalled("submit the code", &err)),
        (_, Some(err)) => return Err(Error::twilio("submit the code")(err).into()),
        (_, None) => {}
    }
    run.note(Note::normal(
        event::CODE_SUBMITTED,
        format!(
            "submitted the one-time code from Secret {} key {:?} (resourceVersion {version})",
            source.secret_name, source.key
        ),
    ))
    .await;
    Ok(accepted(run.ctx.settings.pacing.poll_interval))
}

/// The code under `source`'s key in `secret`, checked; the Secret's data goes with it.
fn code_in(
    source: &CodeSource,
    secret: Secret,
) -> std::result::Result<VerificationCode, CodeProblem> {
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    otp::read_code(source, &data)
}

/// The verdict on the code last submitted, if the Secret's new version `version` holds that
/// same code.
fn same_code(
    run: &mut Run<'_>,
    source: &CodeSource,
    fingerprint: &CodeFingerprint,
    version: &str,
) -> Option<Outcome> {
    // A new version of the Secret with the code last submitted (a label or an annotation
    // added by External Secrets or Argo CD): the verdict on that code stands. After a
    // restart the fingerprint is gone and the version decides: at most one resubmission.
    if run.facts.submitted_fingerprint.as_ref() != Some(fingerprint) {
        return None;
    }
    let done = run
        .status
        .verification
        .as_mut()
        .and_then(|v| v.submitted_code.as_mut())
        .filter(|done| source.is(done))?;
    done.resource_version = version.to_string();
    let outcome = if done.rejected {
        rejected(Some(done))
    } else {
        accepted(run.ctx.settings.pacing.poll_interval)
    };
    tracing::info!(
        secret = source.secret_name,
        "the code Secret changed but not its code: not submitted again"
    );
    Some(outcome)
}

/// Records a submission whatever came back: refused and accepted versions are never sent
/// again; one of unknown fate is sent again while Twilio still waits for a code.
fn record_submission(
    run: &mut Run<'_>,
    client: &TwilioClient,
    sender: &Sender,
    source: &CodeSource,
    version: &str,
    verdict: &Submitted,
) {
    run.status
        .verification
        .get_or_insert_default()
        .submitted_code = Some(SubmittedCode {
        secret_name: source.secret_name.clone(),
        key: source.key.clone(),
        resource_version: version.to_string(),
        submitted_at: Time(Timestamp::now()),
        rejected: *verdict == Submitted::Refused,
        uncertain: *verdict == Submitted::Uncertain,
    });
    if *verdict != Submitted::Refused {
        run.conclusion.written = Some(Written {
            account: client.scope().to_string(),
            sid: sender.sid.clone(),
            at: Instant::now(),
        });
    }
}

/// A submission Twilio accepted: it verifies the code next.
pub fn accepted(poll: Duration) -> Outcome {
    Outcome::new(
        Assessment::progressing(
            reason::CODE_SUBMITTED,
            "submitted the one-time code; waiting for Twilio to verify it",
        ),
        Requeue::After(poll),
    )
}

/// A new code was asked for: the user puts it in the Secret.
pub fn requested(message: String) -> Outcome {
    Outcome::new(
        Assessment::progressing(reason::PENDING_VERIFICATION, message),
        Requeue::Resync,
    )
}

/// Why a new code may not be asked for now: Twilio's lockout (remembered in memory and in
/// status, so a restart keeps it), or the sender's own spacing and daily cap.
fn not_now(run: &Run<'_>) -> Option<NotNow> {
    let now = Timestamp::now();
    let verification = run.status.verification.as_ref();
    let in_status = verification
        .and_then(|v| v.codes_locked_until.as_ref())
        .and_then(|until| Duration::try_from(until.0.duration_since(now)).ok())
        .filter(|left| !left.is_zero());
    let locked = run.facts.lockout_left(Instant::now()).max(in_status);
    if let Some(left) = locked {
        return Some(NotNow::Locked(left));
    }
    let made: Vec<Timestamp> = verification
        .map(|v| v.code_requests.iter().map(|t| t.0).collect())
        .unwrap_or_default();
    resends::may_request(&made, now, run.ctx.settings.code_resends)
        .err()
        .map(NotNow::Held)
}

/// Registering a number that waits for its code again is how Twilio sends a new one. It is a
/// registration like any other: spaced in the account.
async fn request_new_code(run: &mut Run<'_>, client: &TwilioClient, value: &str) -> Phase<Outcome> {
    if let Err(left) = run.ctx.state.claim_registration(client.scope()) {
        let interval = run.ctx.settings.registration_interval;
        return Ok(spaced(client.account_sid(), left, interval));
    }
    let answer = client.create(&diff::create_request(run.spec())).await;
    // Counted whatever the answer: it may have reached the number.
    let verification = run.status.verification.get_or_insert_default();
    let made: Vec<Timestamp> = verification.code_requests.iter().map(|t| t.0).collect();
    verification.code_requests = resends::with_request(&made, Timestamp::now())
        .into_iter()
        .map(Time)
        .collect();
    match answer {
        Ok(_) => {}
        Err(err) if err.class() == ErrorClass::NeedsUser => {
            if err.twilio_code() == Some(63114) {
                run.conclusion.codes_locked_until = Some(Instant::now() + TOO_MANY_CODES_RETRY);
                let until = Timestamp::now()
                    + k8s_openapi::jiff::SignedDuration::try_from(TOO_MANY_CODES_RETRY)
                        .unwrap_or_default();
                run.status
                    .verification
                    .get_or_insert_default()
                    .codes_locked_until = Some(Time(until));
            }
            return stop(stalled("request a new code", &err));
        }
        Err(err) => {
            run.save().await?;
            return Err(Error::twilio("request a new code")(err).into());
        }
    }
    run.status
        .verification
        .get_or_insert_default()
        .resend_code_request = Some(value.to_string());
    run.save().await?;
    let message = match CodeSource::from_spec(run.spec().verification.as_ref()) {
        Some(source) => format!(
            "asked Twilio for a new code for {} by {}: put it in Secret {} key {:?}",
            run.phone(),
            run.method(),
            source.secret_name,
            source.key
        ),
        None => format!("asked Twilio for a new code for {}", run.phone()),
    };
    run.note(Note::normal(event::CODE_REQUESTED, message.clone()))
        .await;
    Ok(requested(message))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::condition_type::{READY, STALLED};
    use crate::runtime::conditions::Status;

    fn spec(code_secret: Option<&str>) -> WhatsAppSenderSpec {
        let mut spec = json!({
            "phoneNumber": "+15017122661",
            "credentialsRef": {"name": "twilio"},
            "profile": {"name": "Acme"},
            "verification": {"method": "voice"},
        });
        if let Some(name) = code_secret {
            spec["verification"]["codeSecretRef"] = json!({"name": name});
        }
        serde_json::from_value(spec).unwrap()
    }

    const WHO: Waiting<'static> = Waiting {
        phone: "+15017122661",
        method: "voice",
        namespace: "team-a",
    };

    fn done(version: &str, rejected: bool, resend: Option<&str>) -> VerificationStatus {
        VerificationStatus {
            submitted_code: Some(SubmittedCode {
                secret_name: "otp".into(),
                key: "code".into(),
                resource_version: version.into(),
                submitted_at: Time(Timestamp::UNIX_EPOCH),
                rejected,
                uncertain: false,
            }),
            resend_code_request: resend.map(str::to_string),
            ..VerificationStatus::default()
        }
    }

    fn resend(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(RESEND_CODE_ANNOTATION.to_string(), value.to_string())])
    }

    fn concluded(step: &Step) -> (&'static str, bool, String) {
        let outcome = match step {
            Step::Conclude(outcome) | Step::Refused(outcome) => outcome,
            other => panic!("expected a conclusion, got {other:?}"),
        };
        let ready = outcome.assessment.get(READY).unwrap();
        let stalled = outcome
            .assessment
            .get(STALLED)
            .is_some_and(|v| v.status == Status::True);
        (ready.reason, stalled, ready.message.clone())
    }

    #[test]
    fn each_state_of_the_code_has_its_step() {
        let none = BTreeMap::new();
        let waits_for_spec = decide(&spec(None), WHO, &none, None, None, None);
        let (reason_, stalls, message) = concluded(&waits_for_spec);
        assert_eq!((reason_, stalls), (reason::WAITING_FOR_CODE, false));
        assert!(
            message.contains("set spec.verification.codeSecretRef"),
            "{message}"
        );

        let waits_for_secret = decide(&spec(Some("otp")), WHO, &none, None, None, None);
        let (reason_, stalls, message) = concluded(&waits_for_secret);
        assert_eq!((reason_, stalls), (reason::WAITING_FOR_CODE, false));
        assert!(
            message
                .contains("kubectl create secret generic otp -n team-a --from-literal=code=CODE"),
            "{message}"
        );
        assert!(
            message.contains("sent to +15017122661 by voice"),
            "{message}"
        );

        assert_eq!(
            decide(&spec(Some("otp")), WHO, &none, None, Some("7"), None),
            Step::Submit {
                source: CodeSource {
                    secret_name: "otp".into(),
                    key: "code".into()
                },
                resource_version: "7".into(),
                retry: false,
            }
        );

        let answered = done("7", false, None);
        let refused = decide(
            &spec(Some("otp")),
            WHO,
            &none,
            Some(&answered),
            Some("7"),
            None,
        );
        assert!(matches!(refused, Step::Refused(_)), "{refused:?}");
        let (reason_, stalls, message) = concluded(&refused);
        assert_eq!((reason_, stalls), (reason::CODE_REJECTED, true));
        assert!(message.contains("Secret otp key \"code\""), "{message}");
        assert!(message.contains(RESEND_CODE_ANNOTATION), "{message}");

        let marked = done("7", true, None);
        let again = decide(
            &spec(Some("otp")),
            WHO,
            &none,
            Some(&marked),
            Some("7"),
            None,
        );
        assert!(
            matches!(again, Step::Conclude(_)),
            "reported, not marked again: {again:?}"
        );
        assert_eq!(concluded(&again).0, reason::CODE_REJECTED);
    }

    #[test]
    fn each_new_resend_value_asks_once_unless_twilio_locked_codes() {
        let marked = done("7", true, Some("1"));
        let spec = spec(Some("otp"));
        assert_eq!(
            decide(&spec, WHO, &resend("2"), Some(&marked), Some("7"), None),
            Step::RequestNewCode("2".into())
        );
        assert!(matches!(
            decide(&spec, WHO, &resend("1"), Some(&marked), Some("7"), None),
            Step::Conclude(_)
        ));
        let locked = decide(
            &spec,
            WHO,
            &resend("2"),
            Some(&marked),
            Some("7"),
            Some(NotNow::Locked(Duration::from_secs(1800))),
        );
        let (reason_, stalls, message) = concluded(&locked);
        assert_eq!((reason_, stalls), (reason::TOO_MANY_CODES, true));
        assert!(message.contains("retried in 30m"), "{message}");
        match locked {
            Step::Conclude(outcome) => {
                assert_eq!(outcome.requeue, Requeue::After(Duration::from_secs(1800)))
            }
            other => panic!("{other:?}"),
        }
        let held = Held {
            left: Duration::from_secs(90),
            why: "at most one new code per 2m (--code-resend-interval)".into(),
        };
        let held = decide(
            &spec,
            WHO,
            &resend("2"),
            Some(&marked),
            Some("7"),
            Some(NotNow::Held(held)),
        );
        let (reason_, stalls, message) = concluded(&held);
        assert_eq!((reason_, stalls), (reason::QUEUED, false));
        assert!(
            message.contains("asked for in 1m 30s") && message.contains("--code-resend-interval"),
            "says when, and why: {message}"
        );
    }

    #[test]
    fn a_code_secret_without_a_code_waits_and_one_with_junk_stalls() {
        let missing = CodeProblem::MissingKey {
            secret: "otp".into(),
            key: "code".into(),
        };
        let outcome = unusable_code(&missing);
        assert!(!outcome.assessment.is_stalled());
        assert_eq!(
            outcome.assessment.ready.unwrap().reason,
            reason::WAITING_FOR_CODE
        );
        let junk = CodeProblem::Malformed {
            secret: "otp".into(),
            key: "code".into(),
        };
        let outcome = unusable_code(&junk);
        assert!(outcome.assessment.is_stalled());
        assert_eq!(
            outcome.assessment.ready.unwrap().reason,
            reason::INVALID_CODE
        );
    }

    #[test]
    fn a_submission_is_sent_again_only_when_twilio_may_not_have_it() {
        let api = |http_status, code| TwilioError::Api {
            http_status,
            code: Some(code),
            message: "m".into(),
            more_info: None,
            retry_after: None,
        };
        assert_eq!(submitted(Ok(())), Submitted::Accepted);
        assert_eq!(submitted(Err(&api(429, 20429))), Submitted::NotReceived);
        assert_eq!(submitted(Err(&api(503, 20503))), Submitted::NotReceived);
        assert_eq!(submitted(Err(&api(400, 63100))), Submitted::Refused);
        assert_eq!(submitted(Err(&api(500, 20500))), Submitted::Uncertain);
        assert_eq!(submitted(Err(&TwilioError::Timeout)), Submitted::Uncertain);
    }
}
