//! Drives the emulator through the real aws-sdk-bedrockagent client (and plain HTTP for the
//! control endpoints). Everything runs in-process on 127.0.0.1:0 with an in-memory S3, except the
//! `binary` tests, which run the built executable against a minimal fake S3 server.

mod binary;
mod direct_ingestion;
mod documents;
mod faults;
mod harness;
mod jobs;
mod protocol;
mod quotas;
mod start_resilience;
