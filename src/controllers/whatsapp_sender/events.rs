//! The sender's Event reasons; publishing is the runtime's ([`crate::runtime::events`]).

/// Event reasons of their own (a condition that becomes a problem publishes one under its
/// condition reason, e.g. `CodeRejected`).
pub mod reason {
    pub const CREATED: &str = "Created";
    pub const ADOPTED: &str = "Adopted";
    pub const CODE_SUBMITTED: &str = "CodeSubmitted";
    pub const CODE_REQUESTED: &str = "CodeRequested";
    pub const ONLINE: &str = "Online";
    pub const OFFLINE: &str = "Offline";
    pub const QUALITY_RATING_CHANGED: &str = "QualityRatingChanged";
    pub const MESSAGING_LIMIT_CHANGED: &str = "MessagingLimitChanged";
    pub const UPDATED: &str = "Updated";
    pub const RECREATED: &str = "Recreated";
    pub const DELETED: &str = "Deleted";
    pub const ORPHANED: &str = "Orphaned";
    pub const SENDER_MISMATCH: &str = "SenderMismatch";
    /// The object let go of a SID another object owns, or was deleted without deleting at
    /// Twilio what it does not own.
    pub const DUPLICATE_SENDER: &str = "DuplicateSender";
    /// The object was let go without a deletion: Twilio does not have its SID as its number
    /// in its account.
    pub const NOT_DELETED: &str = "NotDeleted";
    pub const TWILIO_ALERT: &str = "TwilioAlert";
}
