//! Shared helpers for the integration tests. Each test binary includes this with `mod support;`
//! and uses the parts it needs.
#![allow(dead_code)]

pub mod controlplane;
pub mod deploy;
pub mod fleet;
pub mod json_paths;
pub mod kubectl;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod prism;
pub mod sim;
