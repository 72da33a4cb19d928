//! Emulator of the Amazon Bedrock Agent knowledge base ingestion API, serving the REST protocol of
//! aws-sdk-bedrockagent on loopback for local stacks and tests.
//!
//! Jobs really list their data source's S3 scope (through [`s3_scope::ObjectLister`]), diff it
//! against what the data source has indexed and report true statistics; documents ingested or
//! deleted directly go through their own asynchronous lifecycle; Bedrock's quotas and errors are
//! enforced; faults can be injected through `/_emulator/...` control endpoints.
//! See README.md for the protocol details, the config file and the control endpoints.

pub mod api;
pub mod catalog;
pub mod client_token;
pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
pub mod direct_documents;
pub mod document_detail;
pub mod document_index;
pub mod document_metadata;
pub mod document_rules;
pub mod emulator;
pub mod errors;
pub mod faults;
pub mod inspection;
pub mod jobs;
pub mod key_pattern;
pub mod memory_lister;
pub mod pagination;
pub mod quota;
pub mod ready;
pub mod s3_lister;
pub mod s3_scope;
pub mod server;
pub mod state;
pub mod sync_plan;
pub mod timestamps;

pub use clock::{Clock, ManualClock, SystemClock, TimeScale};
pub use config::EmulatorConfig;
pub use emulator::Emulator;
pub use memory_lister::InMemoryObjectLister;
pub use s3_lister::S3ObjectLister;
pub use s3_scope::{ListedObject, ObjectLister};
pub use server::RunningEmulator;
