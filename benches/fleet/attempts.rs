//! Duplicates by create attempt (`/_sim/stats` `create_attempts`, every `POST` of a number
//! whatever its answer): a number the operator registers gets exactly one, ever, and a
//! number registered before the operator started gets none from it. An attempt refused or
//! lost is still a second registration request Meta may see, so accepted senders alone
//! would undercount.

use std::collections::HashMap;

use serde_json::Value;

use crate::report::AttemptDetails;

/// How many numbers `numbers_with_extra_attempts` lists.
const LISTED: usize = 20;

/// Create attempts by number.
pub type Attempts = HashMap<String, u64>;

pub fn of(stats: &Value) -> Attempts {
    let attempts = stats["create_attempts"]
        .as_object()
        .expect("/_sim/stats has create_attempts (twilio-sim since 9fa82c2)");
    attempts
        .iter()
        .map(|(number, n)| (number.clone(), n.as_u64().unwrap_or(0)))
        .collect()
}

/// `at_end` split into the numbers the operators `registered` and those the bench had
/// registered itself (`adopted`, with `by_bench` its own attempts): the numbers over their
/// allowance, and the totals.
pub fn tally(
    at_end: &Attempts,
    registered: &[&str],
    adopted: &[&str],
    by_bench: &Attempts,
) -> (u64, AttemptDetails) {
    let count = |attempts: &Attempts, number: &str| attempts.get(number).copied().unwrap_or(0);
    let mut over: Vec<String> = Vec::new();
    let mut registered_attempts = 0;
    for number in registered {
        let n = count(at_end, number);
        registered_attempts += n;
        if n > 1 {
            over.push(format!("{number} (registered, {n} attempts)"));
        }
    }
    let mut adopted_attempts_by_operator = 0;
    for number in adopted {
        let n = count(at_end, number).saturating_sub(count(by_bench, number));
        adopted_attempts_by_operator += n;
        if n > 0 {
            over.push(format!("{number} (adopted, {n} attempts by the operator)"));
        }
    }
    let duplicates = over.len() as u64;
    over.sort();
    over.truncate(LISTED);
    let details = AttemptDetails {
        registered_numbers: registered.len(),
        registered_attempts,
        adopted_numbers: adopted.len(),
        adopted_attempts_by_operator,
        numbers_with_extra_attempts: over,
        extra_senders_or_accepted_creates: 0,
    };
    (duplicates, details)
}

/// The earlier check: senders at Twilio beyond one per object, and accepted creates beyond
/// one per sender.
pub fn extra_senders_or_accepted_creates(senders: &[Value], objects: usize) -> u64 {
    let extra_senders = senders.len().saturating_sub(objects) as u64;
    let extra_creates: u64 = senders
        .iter()
        .map(|s| s["create_requests"].as_u64().unwrap_or(1).saturating_sub(1))
        .sum();
    extra_senders + extra_creates
}
