//! Crash points: places where a test build can make a function die the way a Lambda sandbox
//! does (process gone between two calls), to prove that every retry path heals.
//!
//! `crash_point!("start-sync/after-start-ingestion-job")` compiles to nothing unless the crate is
//! built with the `crash-points` feature, which only the scenario builds enable: release
//! packages carry neither the code nor the names. With the feature, the point aborts the process
//! when `KB_AUTOSYNC_CRASH_POINTS` names it (`name[@nth],...`, nth defaults to 1). When
//! `KB_AUTOSYNC_CRASH_STATE_DIR` is set, hits are counted across processes in that directory, so
//! a point crashes once per stack rather than in every restarted process.

/// Aborts the process here when the crash plan names this point (test builds only).
#[cfg(feature = "crash-points")]
#[macro_export]
macro_rules! crash_point {
    ($name:expr) => {
        $crate::crash_point::reached($name)
    };
}

/// Without the `crash-points` feature a crash point is nothing at all.
#[cfg(not(feature = "crash-points"))]
#[macro_export]
macro_rules! crash_point {
    ($name:expr) => {};
}

#[cfg(feature = "crash-points")]
pub use enabled::{parse_plan, reached};

#[cfg(feature = "crash-points")]
mod enabled {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};

    pub const PLAN_VAR: &str = "KB_AUTOSYNC_CRASH_POINTS";
    pub const STATE_DIR_VAR: &str = "KB_AUTOSYNC_CRASH_STATE_DIR";

    struct Plan {
        points: HashMap<String, u64>,
        state_dir: Option<PathBuf>,
        hits: Mutex<HashMap<String, u64>>,
    }

    /// `a/b@2,c/d` -> {a/b: 2, c/d: 1}. An unreadable entry is an error: a typo must not
    /// silently turn a crash scenario into a quiet one.
    pub fn parse_plan(text: &str) -> Result<HashMap<String, u64>, String> {
        let mut points = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, nth) = match entry.split_once('@') {
                Some((name, nth)) => (
                    name,
                    nth.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("crash point {entry:?}: @nth must be a positive number")
                    })?,
                ),
                None => (entry, 1),
            };
            points.insert(name.to_string(), nth);
        }
        Ok(points)
    }

    fn plan() -> Option<&'static Plan> {
        static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
        PLAN.get_or_init(|| {
            let text = std::env::var(PLAN_VAR).ok()?;
            let points = parse_plan(&text).unwrap_or_else(|e| panic!("{PLAN_VAR}: {e}"));
            Some(Plan {
                points,
                state_dir: std::env::var_os(STATE_DIR_VAR).map(PathBuf::from),
                hits: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
    }

    /// The number of this hit of `name`: across processes through marker files created with
    /// `create_new` (atomic), else within this process.
    fn count(plan: &Plan, name: &str) -> u64 {
        if let Some(dir) = &plan.state_dir {
            let stem = name.replace('/', "__");
            for n in 1.. {
                let path = dir.join(format!("{stem}.{n}"));
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(_) => return n,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(_) => break,
                }
            }
        }
        let mut hits = plan.hits.lock().unwrap_or_else(|e| e.into_inner());
        let n = hits.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    pub fn reached(name: &str) {
        let Some(plan) = plan() else { return };
        let Some(&nth) = plan.points.get(name) else {
            return;
        };
        let hit = count(plan, name);
        if hit == nth {
            // stderr is unbuffered: the line reaches the function log before the process dies.
            eprintln!("{{\"level\":\"ERROR\",\"message\":\"crash point reached: aborting\",\"crash_point\":\"{name}\",\"hit\":{hit}}}");
            std::process::abort();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn plans_name_points_and_hits() {
            let plan = parse_plan("a/b@2, c/d,").unwrap();
            assert_eq!(plan.get("a/b"), Some(&2));
            assert_eq!(plan.get("c/d"), Some(&1));
            assert!(parse_plan("a/b@0").unwrap_err().contains("positive"));
            assert!(parse_plan("a/b@x").is_err());
        }

        #[test]
        fn hits_are_counted_across_processes_in_the_state_dir() {
            let dir = std::env::temp_dir().join(format!("crash-points-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let plan = Plan {
                points: HashMap::new(),
                state_dir: Some(dir.clone()),
                hits: Mutex::new(HashMap::new()),
            };
            assert_eq!(count(&plan, "x/y"), 1);
            assert_eq!(count(&plan, "x/y"), 2);
            assert_eq!(count(&plan, "x/z"), 1);
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}
