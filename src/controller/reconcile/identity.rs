//! Identity: which Twilio account, and which sender in it. Credentials come from the Secret and
//! are pinned to the account the sender was registered in. The sender is then found by its
//! recorded SID, by the SID the object names (`senderops.io/exported-from`), by its number in
//! the account (adopted), or else created, one number per account at a time, with the SID
//! written to status the moment it is known. The decisions are the pure functions below; the
//! executors around them do the I/O.

use kube::ResourceExt;
use tokio::time::Instant;

use super::run::{Outcome, Requeue, Run};
use super::{Phase, stop, twilio};
use crate::api::{EXPORTED_FROM_ANNOTATION, reason};
use crate::controller::conditions::{self, Assessment};
use crate::controller::credentials::CredentialsProblem;
use crate::controller::diff;
use crate::controller::events::{Note, reason as event};
use crate::controller::pacing::QUEUED_RECHECK;
use crate::controller::state::Busy;
use crate::error::{Error, Result};
use crate::twilio::{ErrorClass, Sender, SendersClient, TwilioError, is_valid_sender_sid};

// -- credentials ----------------------------------------------------------------------------

/// A credentials Secret that is missing or incomplete waits for the user; one that holds
/// unusable credentials stalls.
pub fn credentials_problem(problem: &CredentialsProblem) -> Outcome {
    let assessment = if problem.is_not_found() {
        Assessment::waiting(reason::CREDENTIALS_NOT_FOUND, problem.to_string())
    } else {
        Assessment::stalled(reason::INVALID_CREDENTIALS, problem.to_string())
    };
    Outcome::new(assessment, Requeue::Resync)
}

/// A sender stays in the account it was registered in.
pub fn other_account(
    recorded: Option<&str>,
    sid: Option<&str>,
    secret: &str,
    account: &str,
) -> Option<Outcome> {
    let recorded = recorded.filter(|recorded| *recorded != account)?;
    Some(Outcome::new(
        Assessment::stalled(
            reason::ACCOUNT_CHANGED,
            account_changed(sid, secret, recorded, account),
        ),
        Requeue::Resync,
    ))
}

/// The message of a sender whose Secret now holds another account's credentials.
pub fn account_changed(sid: Option<&str>, secret: &str, recorded: &str, now: &str) -> String {
    format!(
        "the sender {} is registered in Twilio account {recorded}, but Secret {secret} now holds \
         credentials for account {now}; the operator will not register the number in another \
         account: restore credentials for {recorded}, or delete and recreate this \
         WhatsAppSender to move the number",
        sid.unwrap_or("(no SID yet)"),
    )
}

/// The account's client, or the outcome that stops here.
pub async fn credentials(run: &mut Run<'_>) -> Phase<SendersClient> {
    let secret = &run.spec().credentials_ref.name;
    let client = match run.ctx.twilio_client(&run.namespace(), secret).await? {
        Ok(client) => client,
        Err(problem) => return stop(credentials_problem(&problem)),
    };
    let (recorded, sid) = (run.status.account_sid.as_deref(), run.status.sid.as_deref());
    match other_account(recorded, sid, secret, client.account_sid()) {
        Some(outcome) => stop(outcome),
        None => Ok(client),
    }
}

// -- finding the sender ---------------------------------------------------------------------

/// What reading a SID the operator or the object named found.
#[derive(Debug, PartialEq)]
pub enum Named {
    /// This number, in this account.
    Ours(Box<Sender>),
    /// A sender of another number: left alone, the number is looked up instead.
    OtherNumber(Box<Sender>),
    /// Not in this account (any more).
    Missing,
}

pub fn named(phone: &str, read: Option<Sender>) -> Named {
    match read {
        Some(sender) if sender.is_for(phone) => Named::Ours(Box::new(sender)),
        Some(sender) => Named::OtherNumber(Box::new(sender)),
        None => Named::Missing,
    }
}

/// The outcome of a sender queued behind another one's registration.
pub fn queued(account: &str, busy: &Busy) -> Outcome {
    let message = format!(
        "serial onboarding: waiting for {}/{} to finish registering in account {account} ({} \
         more ahead); Twilio advises one registration per account at a time",
        busy.holder.namespace.as_deref().unwrap_or(""),
        busy.holder.name,
        busy.ahead,
    );
    Outcome::new(
        Assessment::waiting(reason::QUEUED, message),
        Requeue::After(QUEUED_RECHECK),
    )
}

/// What a create's answer calls for.
#[derive(Debug)]
pub enum Created {
    /// Registered: record the SID.
    Sender(Box<Sender>),
    /// Registered already (63110): ours if a fresh list of this account has it.
    LookAgain(TwilioError),
    /// Only the user can fix it.
    Stalled(Outcome),
    /// Failed; retried with backoff. `maybe_registered`: the create may have gone through,
    /// so the next attempt needs a list made after now.
    Failed {
        err: TwilioError,
        maybe_registered: bool,
    },
}

pub fn created(answer: Result<Sender, TwilioError>) -> Created {
    match answer {
        Ok(sender) if is_valid_sender_sid(&sender.sid) => Created::Sender(Box::new(sender)),
        Ok(_) => Created::Failed {
            err: TwilioError::Decode(
                "the answer carries no valid sender SID (XE + 32 hex digits)".into(),
            ),
            maybe_registered: true,
        },
        Err(err) if err.twilio_code() == Some(63110) => Created::LookAgain(err),
        Err(err) if err.class() == ErrorClass::NeedsUser => {
            Created::Stalled(stalled("create the sender", &err))
        }
        Err(err) => Created::Failed {
            maybe_registered: !err.certainly_not_processed(),
            err,
        },
    }
}

/// The outcome of a Twilio error only the user can fix.
pub fn stalled(action: &str, err: &TwilioError) -> Outcome {
    let requeue = if err.stall_reason() == reason::TOO_MANY_CODES {
        Requeue::After(crate::controller::pacing::TOO_MANY_CODES_RETRY)
    } else {
        Requeue::Resync
    };
    Outcome::new(conditions::twilio_failure(action, err), requeue)
}

/// Finds the sender (by SID, by name, by number) or creates it.
pub async fn find(run: &mut Run<'_>, client: &SendersClient) -> Phase<Sender> {
    let account = client.account_sid().to_string();
    if let Some(sid) = run.status.sid.clone() {
        match named(run.phone(), super::converge::read(run, client, &sid).await?) {
            Named::Ours(sender) => return Ok(*sender),
            Named::OtherNumber(sender) => {
                not_this_number(run, "status.sid", &sender).await;
                run.status.sid = None;
                return find_or_create(run, client, &account, false).await;
            }
            Named::Missing => {
                tracing::warn!(
                    sid,
                    "the sender no longer exists at Twilio; registering it again"
                );
                run.conclusion.gone = Some((account.clone(), sid));
                run.conclusion.number_changed =
                    Some((account.clone(), run.phone().to_string(), Instant::now()));
                run.status.sid = None;
                return find_or_create(run, client, &account, true).await;
            }
        }
    }
    if let Some(sender) = adopt_named(run, client, &account).await? {
        return Ok(sender);
    }
    find_or_create(run, client, &account, false).await
}

/// Adopts the sender the object names in [`EXPORTED_FROM_ANNOTATION`] if Twilio has it as
/// this number in this account (a fetch with this account's credentials finds only its own):
/// no list, no create, no onboarding turn.
async fn adopt_named(
    run: &mut Run<'_>,
    client: &SendersClient,
    account: &str,
) -> Phase<Option<Sender>> {
    let Some(sid) = run
        .obj
        .annotations()
        .get(EXPORTED_FROM_ANNOTATION)
        .map(|sid| sid.trim().to_string())
        .filter(|sid| is_valid_sender_sid(sid))
    else {
        return Ok(None);
    };
    let read = match client.fetch(&sid).await {
        Ok(sender) => Some(sender),
        Err(err) if err.is_not_found() => None,
        Err(err) => return Err(twilio("read the exported sender")(err)),
    };
    match named(run.phone(), read) {
        Named::Ours(sender) => {
            adopt(run, account, &sender).await?;
            Ok(Some(*sender))
        }
        Named::OtherNumber(sender) => {
            not_this_number(run, EXPORTED_FROM_ANNOTATION, &sender).await;
            Ok(None)
        }
        Named::Missing => {
            tracing::info!(
                sid,
                "the sender named by {EXPORTED_FROM_ANNOTATION} is not in this account; looking \
                 the number up"
            );
            Ok(None)
        }
    }
}

/// Adopts the number's sender if the account has one, else creates it (in turn). `fresh`
/// demands a list made now (the sender was just found deleted).
async fn find_or_create(
    run: &mut Run<'_>,
    client: &SendersClient,
    account: &str,
    fresh: bool,
) -> Phase<Sender> {
    if let Err(busy) = run.ctx.state.claim_turn(account, &run.key) {
        return stop(queued(account, &busy));
    }
    let phone = run.phone();
    let seen = run.facts.first_seen;
    let listed = run
        .ctx
        .state
        .lookup(client, phone, fresh, seen)
        .await
        .map_err(twilio("look up the number"))?;
    if let Some(sender) = listed.sender {
        adopt(run, account, &sender).await?;
        return Ok(sender);
    }

    // If the operator dies between the create and the SID write, cleanup still knows which
    // account to search for the number.
    if run.status.account_sid.is_none() {
        run.status.account_sid = Some(account.to_string());
        run.save().await?;
    }
    match created(client.create(&diff::create_request(run.spec())).await) {
        Created::Sender(sender) => {
            record_sid(run, account, &sender).await?;
            // `fresh` lookups only happen when the sender was found deleted at Twilio.
            let (reason, verb) = if fresh {
                (
                    event::RECREATED,
                    "registered again (it had been deleted at Twilio)",
                )
            } else {
                (event::CREATED, "created")
            };
            run.note(Note::normal(
                reason,
                format!(
                    "{verb} Twilio sender {} for {phone} in account {account}",
                    sender.sid
                ),
            ))
            .await;
            Ok(*sender)
        }
        Created::LookAgain(err) => {
            // Registered already: ours if it is in this account (a create whose answer was
            // lost, another tool), someone else's otherwise.
            let again = run
                .ctx
                .state
                .lookup(client, phone, true, seen)
                .await
                .map_err(twilio("look up the number"))?;
            match again.sender {
                Some(sender) => {
                    adopt(run, account, &sender).await?;
                    Ok(sender)
                }
                None => stop(stalled("create the sender", &err)),
            }
        }
        Created::Stalled(outcome) => stop(outcome),
        Created::Failed {
            err,
            maybe_registered,
        } => {
            // The next attempt looks the number up in a list made after this moment.
            if maybe_registered {
                run.conclusion.number_changed =
                    Some((account.to_string(), phone.to_string(), Instant::now()));
            }
            Err(Error::twilio("create the sender")(err).into())
        }
    }
}

/// Records the SID and account the moment they are known.
async fn record_sid(run: &mut Run<'_>, account: &str, sender: &Sender) -> Result<()> {
    run.status.sid = Some(sender.sid.clone());
    run.status.account_sid = Some(account.to_string());
    if !sender.sender_id.is_empty() {
        run.status.sender_id = Some(sender.sender_id.clone());
    }
    tracing::Span::current().record("sid", sender.sid.as_str());
    run.save().await
}

async fn adopt(run: &mut Run<'_>, account: &str, sender: &Sender) -> Result<()> {
    record_sid(run, account, sender).await?;
    run.note(Note::normal(
        event::ADOPTED,
        format!(
            "adopted the existing Twilio sender {} ({}) for {} in account {account}",
            sender.sid,
            sender.status,
            run.phone()
        ),
    ))
    .await;
    Ok(())
}

/// `source` named a sender of another number: it is left alone and the number looked up.
async fn not_this_number(run: &Run<'_>, source: &str, sender: &Sender) {
    let message = format!(
        "{source} names Twilio sender {}, which is {:?}, not {}: the operator leaves it alone \
         and looks the number up instead",
        sender.sid,
        sender.sender_id,
        run.phone()
    );
    run.note(Note::warning(event::SENDER_MISMATCH, message))
        .await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::condition_type::STALLED;
    use crate::controller::state::SenderKey;

    const A: &str = "AC0123456789abcdef0123456789abcdef";
    const B: &str = "ACfedcba9876543210fedcba9876543210";
    const SID: &str = "XE0123456789abcdef0123456789abcdef";

    fn api_error(http_status: u16, code: Option<u32>) -> TwilioError {
        TwilioError::Api {
            http_status,
            code,
            message: "m".into(),
            more_info: None,
            retry_after: None,
        }
    }

    fn sender(sid: &str, phone: &str) -> Sender {
        Sender {
            sid: sid.into(),
            sender_id: format!("whatsapp:{phone}"),
            ..Sender::default()
        }
    }

    fn reasons(outcome: &Outcome) -> (&'static str, bool) {
        let a = &outcome.assessment;
        (
            a.ready.as_ref().map_or("", |v| v.reason),
            a.get(STALLED)
                .is_some_and(|v| v.status == conditions::Status::True),
        )
    }

    #[test]
    fn credentials_decide_between_waiting_stalling_and_going_on() {
        let missing = CredentialsProblem::SecretNotFound("twilio".into());
        assert_eq!(
            reasons(&credentials_problem(&missing)),
            (reason::CREDENTIALS_NOT_FOUND, false)
        );
        let unusable = CredentialsProblem::Unusable {
            secret: "twilio".into(),
            reason: "accountSid must be 34 characters".into(),
        };
        assert_eq!(
            reasons(&credentials_problem(&unusable)),
            (reason::INVALID_CREDENTIALS, true)
        );
        assert_eq!(
            other_account(None, None, "twilio", A),
            None,
            "first registration"
        );
        assert_eq!(other_account(Some(A), Some(SID), "twilio", A), None);
        let changed = other_account(Some(A), Some(SID), "twilio", B).unwrap();
        assert_eq!(reasons(&changed), (reason::ACCOUNT_CHANGED, true));
        let message = &changed.assessment.ready.unwrap().message;
        assert!(
            message.contains(&format!("registered in Twilio account {A}"))
                && message.contains(&format!("credentials for account {B}"))
                && message.contains("restore credentials"),
            "{message}"
        );
    }

    #[test]
    fn a_named_sid_is_ours_only_for_this_number() {
        let phone = "+15017122661";
        assert!(matches!(
            named(phone, Some(sender(SID, phone))),
            Named::Ours(_)
        ));
        let upper = Sender {
            sender_id: "WhatsApp:+15017122661".into(),
            ..sender(SID, phone)
        };
        assert!(
            matches!(named(phone, Some(upper)), Named::Ours(_)),
            "any case"
        );
        assert!(matches!(
            named(phone, Some(sender(SID, "+15017122662"))),
            Named::OtherNumber(_)
        ));
        assert_eq!(named(phone, None), Named::Missing);
    }

    #[test]
    fn a_queued_sender_waits_without_stalling_and_says_for_whom() {
        let busy = Busy {
            holder: SenderKey::new("first").within("team-a"),
            ahead: 2,
        };
        let outcome = queued(A, &busy);
        assert_eq!(reasons(&outcome), (reason::QUEUED, false));
        assert_eq!(outcome.requeue, Requeue::After(QUEUED_RECHECK));
        let message = &outcome.assessment.ready.unwrap().message;
        assert!(
            message.contains("team-a/first") && message.contains("2 more ahead"),
            "{message}"
        );
    }

    #[test]
    fn each_create_answer_has_its_step() {
        assert!(matches!(
            created(Ok(sender(SID, "+15017122661"))),
            Created::Sender(_)
        ));
        assert!(matches!(
            created(Ok(sender("XE-broken", "+15017122661"))),
            Created::Failed {
                maybe_registered: true,
                ..
            }
        ));
        assert!(matches!(
            created(Err(api_error(400, Some(63110)))),
            Created::LookAgain(_)
        ));
        let stalls = [
            (63104, reason::WABA_FULL),
            (63111, reason::NUMBER_NOT_FOUND),
            (63113, reason::CANNOT_VERIFY),
            (63116, reason::CODE_NOT_RECEIVED),
            (63100, reason::INVALID_SPEC),
            (20003, reason::INVALID_CREDENTIALS),
        ];
        for (code, expected) in stalls {
            match created(Err(api_error(400, Some(code)))) {
                Created::Stalled(outcome) => {
                    assert_eq!(reasons(&outcome), (expected, true), "{code}");
                    assert_eq!(outcome.requeue, Requeue::Resync, "{code}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        for (err, maybe) in [
            (api_error(500, Some(20500)), true),
            (TwilioError::Timeout, true),
            (api_error(503, Some(20503)), false),
            (api_error(429, Some(20429)), false),
            (TwilioError::Connect("refused".into()), false),
        ] {
            let shown = err.to_string();
            match created(Err(err)) {
                Created::Failed {
                    maybe_registered, ..
                } => assert_eq!(maybe_registered, maybe, "{shown}"),
                other => panic!("{shown}: {other:?}"),
            }
        }
    }

    #[test]
    fn too_many_codes_waits_an_hour_before_asking_again() {
        let outcome = stalled("request a new code", &api_error(400, Some(63114)));
        assert_eq!(reasons(&outcome), (reason::TOO_MANY_CODES, true));
        assert_eq!(outcome.requeue, Requeue::After(Duration::from_secs(3600)));
    }
}
