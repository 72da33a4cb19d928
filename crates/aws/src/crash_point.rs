//! Crash points: places where a test build can make a function die the way a Lambda sandbox
//! does (process gone between two calls), to prove that every retry path heals.
//!
//! `crash_point!("start-sync/after-start-ingestion-job")` compiles to nothing unless the crate is
//! built with the `crash-points` feature, which only the scenario builds enable: release
//! packages carry neither the code nor the names. With the feature, the point aborts the process
//! when `KB_AUTOSYNC_CRASH_POINTS` names it (`name[@nth],...`, nth defaults to 1). When
//! `KB_AUTOSYNC_CRASH_STATE_DIR` is set, hits are counted across processes in that directory, so
//! a point crashes once per stack rather than in every restarted process.
//!
//! `KB_AUTOSYNC_SLOW_POINTS` (`name=millis,...`) makes a point pause instead, on its first visit
//! in each process: a queue message then stays in flight longer than its visibility timeout and
//! is delivered again while the first delivery is still being processed (once, so that messages
//! do not pile up receives until their DLQ).

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
    pub const SLOW_VAR: &str = "KB_AUTOSYNC_SLOW_POINTS";

    struct Plan {
        points: HashMap<String, u64>,
        pauses: HashMap<String, u64>,
        paused: Mutex<std::collections::HashSet<String>>,
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

    /// `a/b=1500,c/d=200` -> {a/b: 1500 ms, c/d: 200 ms}.
    pub fn parse_pauses(text: &str) -> Result<HashMap<String, u64>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                let (name, millis) = entry
                    .split_once('=')
                    .ok_or_else(|| format!("slow point {entry:?}: expected name=millis"))?;
                let millis = millis
                    .parse::<u64>()
                    .map_err(|_| format!("slow point {entry:?}: millis must be a number"))?;
                Ok((name.to_string(), millis))
            })
            .collect()
    }

    fn plan() -> Option<&'static Plan> {
        static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
        PLAN.get_or_init(|| {
            let crashes = std::env::var(PLAN_VAR).ok();
            let pauses = std::env::var(SLOW_VAR).ok();
            if crashes.is_none() && pauses.is_none() {
                return None;
            }
            let points = parse_plan(crashes.as_deref().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{PLAN_VAR}: {e}"));
            let pauses = parse_pauses(pauses.as_deref().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{SLOW_VAR}: {e}"));
            Some(Plan {
                points,
                pauses,
                paused: Mutex::new(Default::default()),
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
        if let Some(&millis) = plan.pauses.get(name) {
            let first = plan
                .paused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string());
            if first {
                // Blocking on purpose: the function handles one invocation at a time, like Lambda.
                std::thread::sleep(std::time::Duration::from_millis(millis));
            }
        }
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
            assert_eq!(parse_pauses("a/b=1500").unwrap().get("a/b"), Some(&1500));
            assert!(parse_pauses("a/b").is_err());
        }

        #[test]
        fn hits_are_counted_across_processes_in_the_state_dir() {
            let dir = std::env::temp_dir().join(format!("crash-points-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let plan = Plan {
                points: HashMap::new(),
                pauses: HashMap::new(),
                paused: Mutex::new(Default::default()),
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
