//! What every SenderOps controller shares, whatever kind it reconciles. A kind's folder
//! (`src/controllers/<kind>/`) holds only what is about that kind.
//!
//! A kind implements [`driver::Kind`]: its object and status types, its `--controllers` word
//! and finalizer, where its objects live ([`driver::Kind::api`]), its span, what it remembers
//! between reconciles (when one last started, failures in a row, and what a reconcile
//! concluded), and the two things only it knows: [`driver::Kind::apply`] and
//! [`driver::Kind::cleanup`]. Its status implements [`status::ObjectStatus`] (six accessors).
//! It gets, without writing them:
//!
//! - [`driver`]: the finalizer round trip, a span per reconcile, `--reconcile-timeout` with
//!   what the reconcile concluded kept however it ends, `senderops.io/reconcile-requested-at`
//!   paced by `--reconcile-request-interval`, per-object error backoff honouring Twilio's
//!   `Retry-After`, and `senderops_reconcile*` metrics by `controller`;
//! - [`controller`]: the objects' watch in each watched namespace (merged, trimmed, cached),
//!   Secret changes as triggers, a wake-up channel, the liveness probe, graceful shutdown;
//! - [`preflight`]: the CRD-missing, forbidden and bad-selector refusals at start;
//! - [`status`]: status writes by server-side apply (skipped when unchanged), the three kstatus
//!   conditions ([`conditions`]) merged from a verdict, and Warning Events ([`events`]) when one
//!   turns into a problem;
//! - [`credentials`]: a Twilio client from a Secret, its account confirmed by Twilio;
//!   [`secrets`]: the Secrets a controller's objects read, their versions and clients;
//! - [`accounts`]: the registry of Twilio accounts: one request budget and one Error Log pass
//!   ([`alert_log`]) per account, and the clients built from each credentials Secret's version
//!   ([`clients`]), for every controller (Twilio's limit is per account, not per kind);
//! - [`namespaces`], [`backoff`], [`liveness`]: the pieces under them.

pub mod accounts;
pub mod alert_log;
pub mod backoff;
pub mod clients;
pub mod conditions;
pub mod controller;
pub mod credentials;
pub mod driver;
pub mod events;
pub mod liveness;
pub mod namespaces;
pub mod preflight;
pub mod secrets;
pub mod status;
