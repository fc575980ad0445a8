//! Credentials pinned to the account: the sender's client from its Secret, the account the
//! sender was registered in kept, one of the account's reconcile workers held, and the
//! `AccountVerified` condition while Twilio has not confirmed the credentials' account.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::super::run::{Outcome, Requeue, Run};
use super::super::shared::{Phase, account_changed, hold_worker, stop};
use crate::api::{condition_type, reason};
use crate::runtime::conditions::{self, Assessment};
use crate::runtime::credentials::CredentialsProblem;
use crate::runtime::events::Note;
use crate::twilio::TwilioClient;

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

/// The account's client, or the outcome that stops here.
pub async fn credentials(run: &mut Run<'_>) -> Phase<TwilioClient> {
    let secret = &run.spec().credentials_ref.name;
    let client = match run.ctx.twilio_client(&run.namespace(), secret).await? {
        Ok(client) => client,
        Err(problem) => return stop(credentials_problem(&problem)),
    };
    let (recorded, sid) = (run.status.account_sid.as_deref(), run.status.sid.as_deref());
    if let Some(outcome) = other_account(recorded, sid, secret, client.account_sid()) {
        return stop(outcome);
    }
    run.ctx.state.uses_scope(&run.key, &run.uid, client.scope());
    hold_worker(run, &client)?;
    note_account_check(run, secret, &client).await;
    Ok(client)
}

/// The `AccountVerified` condition of credentials whose account Twilio did not confirm.
pub fn unverified_condition(secret: &str, account: &str, why: &str) -> Condition {
    Condition {
        type_: condition_type::ACCOUNT_VERIFIED.to_string(),
        status: "False".to_string(),
        reason: reason::ACCOUNT_UNVERIFIED.to_string(),
        message: format!(
            "Twilio did not confirm that the credentials in Secret {secret} act for account \
             {account} ({why}): this sender works with them, but what is learnt with them \
             (lists, the Error Log, onboarding turns) is shared with no other Secret; let the \
             API key read the account's IncomingPhoneNumbers (api v2010) to have it confirmed"
        ),
        observed_generation: None,
        last_transition_time: Time(Timestamp::now()),
    }
}

/// Adds the `AccountVerified` condition (and a Warning Event) while the client's account is
/// not confirmed, and removes it once it is.
async fn note_account_check(run: &mut Run<'_>, secret: &str, client: &TwilioClient) {
    let conditions = &mut run.status.conditions;
    let had = conditions::find(conditions, condition_type::ACCOUNT_VERIFIED).cloned();
    conditions.retain(|c| c.type_ != condition_type::ACCOUNT_VERIFIED);
    let Some(why) = client.unverified() else {
        return;
    };
    let mut condition = unverified_condition(secret, client.account_sid(), why);
    condition.observed_generation = run.obj.metadata.generation;
    match had {
        Some(had) if had.message == condition.message => conditions.push(had),
        _ => {
            let message = condition.message.clone();
            conditions.push(condition);
            run.note(Note::warning(reason::ACCOUNT_UNVERIFIED, message))
                .await;
        }
    }
}
