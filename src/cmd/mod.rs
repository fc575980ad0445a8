//! The subcommands that do more than print.

pub mod export;
pub mod run;
