//! What several phases use, kept here so that a phase imports no other phase but the next one
//! it hands over to (converge to verify): how a phase ends ([`Phase`], [`Halt`], [`stop`],
//! [`twilio`]), the outcome of a Twilio error only the user
//! can fix, the account's reconcile workers and registration spacing, and the words that
//! identity and cleanup both say about an account change and a deleted number.

use std::time::Duration;

use super::run::{Outcome, Requeue, Run};
use crate::api::reason;
use crate::controllers::whatsapp_sender::conditions::twilio_failure;
use crate::error::Error;
use crate::runtime::conditions::Assessment;
use crate::twilio::{ErrorClass, TwilioClient, TwilioError};

/// Why the phases end before the last: with an outcome (a decision, or a Twilio error only the
/// user can fix), or with a transient failure, which backs off. The first is the one way a
/// phase says "this waits for the user"; errors never do.
#[derive(Debug)]
pub enum Halt {
    Outcome(Box<Outcome>),
    Failed(Error),
}

/// What a phase returns: what it found for the next one, or why the reconcile ends here.
pub type Phase<T> = std::result::Result<T, Halt>;

impl From<Error> for Halt {
    fn from(err: Error) -> Self {
        Halt::Failed(err)
    }
}

/// Ends the phases with `outcome`.
pub fn stop<T>(outcome: Outcome) -> Phase<T> {
    Err(Halt::Outcome(Box::new(outcome)))
}

/// A failed Twilio request to `action`: a Stalled outcome when only the user can fix it,
/// otherwise a failure to back off from.
pub fn twilio(action: &'static str) -> impl FnOnce(TwilioError) -> Halt {
    move |err| match err.class() {
        ErrorClass::NeedsUser => Halt::Outcome(Box::new(stalled(action, &err))),
        _ => Halt::Failed(Error::twilio(action)(err)),
    }
}

/// The outcome of a Twilio error only the user can fix.
pub fn stalled(action: &str, err: &TwilioError) -> Outcome {
    let requeue = if err.problem() == crate::twilio::codes::Problem::TooManyCodes {
        Requeue::After(crate::controllers::whatsapp_sender::pacing::TOO_MANY_CODES_RETRY)
    } else {
        Requeue::Resync
    };
    Outcome::new(twilio_failure(action, err), requeue)
}

/// How soon a reconcile that found its account's workers all busy comes back.
pub const ACCOUNT_BUSY_RECHECK: Duration = Duration::from_secs(2);

/// Takes one of the account's reconcile workers, or ends the reconcile, changing nothing, to
/// come back shortly: an account whose reconciles wait on its request budget holds at most
/// half the workers, and the other accounts keep theirs.
pub fn hold_worker(run: &mut Run<'_>, client: &TwilioClient) -> Phase<()> {
    match run.ctx.state.account_worker(client.scope()) {
        Some(permit) => {
            run.worker = Some(permit);
            Ok(())
        }
        None => {
            tracing::debug!(
                account = client.account_sid(),
                "every reconcile worker this account may hold is busy; back shortly"
            );
            stop(Outcome::new(
                Assessment::unchanged(),
                Requeue::After(ACCOUNT_BUSY_RECHECK),
            ))
        }
    }
}

/// The outcome of a registration held back so that registrations in one account are spaced.
pub fn spaced(account: &str, left: Duration, interval: Duration) -> Outcome {
    let message = format!(
        "the next registration in account {account} goes out in {}: Twilio advises several \
         minutes between Senders API registrations (--registration-interval {})",
        humantime::format_duration(Duration::from_secs(left.as_secs().max(1))),
        humantime::format_duration(interval),
    );
    Outcome::new(
        Assessment::waiting(reason::QUEUED, message),
        Requeue::After(left),
    )
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

/// What deleting a sender costs later (Twilio's Senders API reference).
pub const REREGISTER_HINT: &str = "registering this number again later needs two-step \
                                   verification turned off in WhatsApp Manager";
