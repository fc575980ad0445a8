//! The cluster tests' own binary until the integration tests share one (`tests/it/`): it
//! borrows the shared harness and holds the `cluster` module, written as `tests/it` modules are
//! (`crate::support::…`), so moving it there is `git mv tests/cluster tests/it/cluster`, deleting
//! this file and adding `mod cluster;` to `tests/it/main.rs`.

#[path = "../support/mod.rs"]
mod support;

#[path = "mod.rs"]
mod cluster;
