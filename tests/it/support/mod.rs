//! Shared helpers for the integration tests (`tests/it`), compiled once into their binary;
//! `benches/fleet` includes them too, with `#[path]`.

pub mod controlplane;
pub mod deploy;
pub mod fleet;
pub mod json_paths;
pub mod kubectl;
pub mod lease;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod prism;
pub mod sim;
pub mod wait;
