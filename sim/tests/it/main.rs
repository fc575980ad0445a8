//! twilio-sim's integration tests, one binary: the Twilio-facing API, the lifecycle, the `/_sim`
//! control API, the Error Log, the v2010 incoming phone numbers list and the real binary, a
//! module each, sharing `support` (compiled once).

mod support;

mod alerts;
mod api;
mod binary;
mod control;
mod lifecycle;
mod numbers;
