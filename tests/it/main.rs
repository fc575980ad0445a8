//! The integration tests, one binary: a module per area, all sharing `support` (one test control
//! plane per run, a namespace per test) and compiled once. `cargo test --test it AREA::` runs one
//! area, e.g. `cargo test --test it operator_lifecycle::`.

mod support;

mod account_fairness;
mod account_verification;
mod adoption;
mod alert_rules;
mod alerts;
mod bench;
mod bulk;
mod checkov;
mod cluster;
mod code_resends;
mod code_shape;
mod conformance;
mod crd;
mod defaults;
mod demo;
mod deploy;
mod deploy_rbac;
mod export;
mod gitops;
mod hostile_manifests;
mod hostile_parsing;
mod hostile_requests;
mod image_push;
mod leader_partition;
mod liveness;
mod monitoring;
mod operator_disruptions;
mod operator_failures;
mod operator_faults;
mod operator_lifecycle;
mod operator_production;
mod operator_scale;
mod operator_startup;
mod ownership;
mod secret_access;
mod secret_leak;
mod serial_onboarding;
mod sharding_default;
mod testplane;
mod twilio_lifecycle;
mod twilio_requests;
mod uninstall;
mod watch_namespaces;
mod workflows;
