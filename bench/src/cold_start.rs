//! Cold start and peak RSS of the release binaries, measured by `bench/cold_start.py` (one
//! measurement, one place: this only runs it and reads its JSON).

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdStart {
    pub cpu_model: String,
    pub runs: u32,
    pub functions: Vec<FunctionColdStart>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionColdStart {
    pub name: String,
    pub size_bytes: u64,
    pub cold_start_ms: Millis,
    pub peak_rss_kib: Rss,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Millis {
    pub min: f64,
    pub median: f64,
    pub p95: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rss {
    pub max: u64,
}

pub fn measure(bin_dir: &Path, runs: u32) -> Result<ColdStart, String> {
    let output = Command::new("python3")
        .arg("bench/cold_start.py")
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--runs")
        .arg(runs.to_string())
        .arg("--json")
        .output()
        .map_err(|e| format!("bench/cold_start.py: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "bench/cold_start.py failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("bench/cold_start.py output: {e}"))
}
