//! The operator CLI of kb-autosync as a library: the `autosync` binary, and the scheduled canary
//! function, which runs the same canary as `autosync canary`.

pub mod cli;
pub mod commands;
pub mod context;
pub mod deployment;
pub mod doctor;
pub mod error;
pub mod output;
pub mod records;
