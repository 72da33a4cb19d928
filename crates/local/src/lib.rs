//! The local stack, seen from Rust: [`stack::LocalStack`] starts `local/stack.py` (moto, the
//! function host, the Bedrock Agent emulator, everything template.yaml declares) and hands out
//! SDK clients for it; [`emulator`] reads and steers the emulator; [`observe`] reads what the
//! service wrote; [`invariants`] checks the guarantees of the README against all of it;
//! [`up_config`] reads the file `up --config` starts a stack from.

pub mod demo;
pub mod emulator;
pub mod invariants;
pub mod observe;
pub mod operate;
pub mod stack;
pub mod up_config;

pub use stack::{Limits, LocalStack, StackError, StackInfo, StackOptions};
