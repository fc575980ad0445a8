//! Identity: which Twilio account, and which sender in it. Credentials come from the Secret and
//! are pinned to the account the sender was registered in. The sender is then found by its
//! recorded SID (one GET, or a shared list when batched refresh pays), by the SID the object
//! names (`senderops.io/exported-from`), by its number in the account (adopted), or else
//! created, one number per account at a time, with the SID written to status the moment it is
//! known.
//!
//! One file per step, in the order they run: [`account`], [`owner`], [`find`] (which
//! registers through [`register`] when the account has no sender for the number). In each,
//! the decisions are pure functions and the executors around them do the I/O.

mod account;
mod find;
mod owner;
mod register;

pub use account::credentials;
pub use find::find;
pub use owner::owner;

// The decisions the reconcile's tests reach every condition reason through.
#[cfg(test)]
pub use {
    account::{credentials_problem, other_account, unverified_condition},
    owner::duplicate,
    register::{Created, created, name_rejected, queued, waiting_for_name},
};

#[cfg(test)]
mod tests;
