//! `autosync doctor`: the setup mistakes that break deployments, each checked against the real
//! resources, with a pass/fail line and how to fix it.

pub mod checks;
pub mod foreign_jobs;
pub mod index_drift;
pub mod policy;
pub mod required;

use serde::Serialize;

use crate::commands::Invocation;
use crate::error::CliError;
use crate::output;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: String,
    pub passed: bool,
    pub detail: String,
    /// How to fix it (failed checks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            passed: true,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn fail(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            passed: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

pub async fn run(inv: &Invocation) -> Result<i32, CliError> {
    let findings = {
        let _spinner = output::Spinner::start(inv.style, "checking the deployment");
        checks::all(inv).await
    };
    let failed = findings.iter().filter(|f| !f.passed).count();
    if inv.json {
        output::print_json(&findings);
    } else {
        for f in &findings {
            let mark = if f.passed {
                inv.style.good("PASS")
            } else {
                inv.style.bad("FAIL")
            };
            println!("{mark}  {:<22} {}", f.check, f.detail);
            if let Some(fix) = &f.fix {
                println!("      {} {fix}", inv.style.dim("fix:"));
            }
        }
        println!(
            "\n{} checks, {} failed",
            findings.len(),
            if failed == 0 {
                inv.style.good("0")
            } else {
                inv.style.bad(&failed.to_string())
            }
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
