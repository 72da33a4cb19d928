//! A scenario from a seed: the workload (uploads, overwrites, deletes, races on one key, bursts
//! across data sources and knowledge bases) and the fault plan. Pure: the same seed always gives
//! the same plan, so a failing seed replays.

use std::fmt;

/// The topology every scenario runs on: two data sources of one knowledge base and a second
/// knowledge base, so bursts cross data sources and knowledge bases.
pub const BUCKET: &str = "kb-autosync-scenarios";
pub const SOURCES: [Source; 3] = [
    Source {
        knowledge_base_id: "KBSCNA0001",
        data_source_id: "DSSCNA0001",
        prefix: "a/",
    },
    Source {
        knowledge_base_id: "KBSCNA0001",
        data_source_id: "DSSCNA0002",
        prefix: "b/",
    },
    Source {
        knowledge_base_id: "KBSCNB0001",
        data_source_id: "DSSCNB0001",
        prefix: "c/",
    },
];

/// The topology of the fair-share family (seeds ending in 7): nine data sources over six
/// knowledge bases, the first of them a noisy neighbour that keeps changing, and the last its
/// sibling in the same knowledge base (the two take turns for the knowledge base's one job).
pub const MANY_SOURCES: [Source; 9] = [
    Source {
        knowledge_base_id: "KBSCNM0003",
        data_source_id: "DSSCNM0005",
        prefix: "m5/",
    },
    Source {
        knowledge_base_id: "KBSCNM0001",
        data_source_id: "DSSCNM0002",
        prefix: "m2/",
    },
    Source {
        knowledge_base_id: "KBSCNM0002",
        data_source_id: "DSSCNM0003",
        prefix: "m3/",
    },
    Source {
        knowledge_base_id: "KBSCNM0002",
        data_source_id: "DSSCNM0004",
        prefix: "m4/",
    },
    Source {
        knowledge_base_id: "KBSCNM0001",
        data_source_id: "DSSCNM0001",
        prefix: "m1/",
    },
    Source {
        knowledge_base_id: "KBSCNM0004",
        data_source_id: "DSSCNM0006",
        prefix: "m6/",
    },
    Source {
        knowledge_base_id: "KBSCNM0005",
        data_source_id: "DSSCNM0007",
        prefix: "m7/",
    },
    Source {
        knowledge_base_id: "KBSCNM0006",
        data_source_id: "DSSCNM0008",
        prefix: "m8/",
    },
    Source {
        knowledge_base_id: "KBSCNM0003",
        data_source_id: "DSSCNM0009",
        prefix: "m9/",
    },
];

/// Whether a seed belongs to the fair-share family (many routes and a noisy neighbour). Decided
/// by the seed, not drawn, so the plans of the other seeds stay as they were.
pub fn is_fair_share_seed(seed: u64) -> bool {
    seed % 10 == 7
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub knowledge_base_id: &'static str,
    pub data_source_id: &'static str,
    pub prefix: &'static str,
}

/// The named places inside the functions where a crash can be injected.
pub const CRASH_POINTS: [&str; 5] = [
    "event-processor/after-change-write",
    "sync-processor/after-lease-claim",
    "sync-processor/after-start-execution",
    "start-sync/after-start-ingestion-job",
    "monitor-sync/before-release",
];

/// Crash points inside the execution hand-over; they are only visited by scenarios whose
/// executions hand over (a low history limit).
pub const HAND_OVER_CRASH_POINTS: [&str; 2] = [
    "sync-processor/after-hand-over-move",
    "sync-processor/after-hand-over-start",
];

/// Crash points of the direct way through a round; visited only by `auto`-mode seeds.
pub const DIRECT_CRASH_POINTS: [&str; 2] = [
    "start-sync/after-direct-calls",
    "start-sync/after-direct-notification",
];

/// A Step Functions history limit low enough that a scenario's executions hand over to fresh
/// ones several times (AWS: 25,000 events, and a hand-over after 5,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimit {
    /// Events after which the local stack fails an execution, as AWS does at 25,000.
    pub limit_events: u64,
    /// HANDOVER_AFTER_HISTORY_EVENTS of the stack.
    pub hand_over_after: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Upload (or overwrite) `key` with `body`.
    Put {
        key: String,
        body: String,
    },
    Delete {
        key: String,
    },
    /// Several uploads at once, across data sources.
    Burst {
        keys: Vec<String>,
    },
    /// Two uploads of one key at the same time.
    Race {
        key: String,
    },
    Pause {
        millis: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// A function aborts at this point on its `nth` visit (once per stack).
    Crash { point: &'static str, nth: u64 },
    /// An event for an existing object delivered twice.
    DuplicateDelivery,
    /// Two events of one object delivered newest first.
    ReorderedDelivery,
    /// The next StartIngestionJob calls are throttled.
    Throttle { count: u32 },
    /// The next jobs end FAILED (fewer than the attempts a round makes).
    FailJobs { count: u32 },
    /// Bedrock fails documents whose key contains `pattern`.
    FailDocuments { pattern: String },
    /// A job started in the console on this data source.
    ForeignJob { source: usize, seconds: f64 },
    /// A running execution stopped by hand after `after_millis`.
    StopExecution { after_millis: u64 },
    /// Queue visibility of 2 s and consumers pausing 3 s: messages come back while still being
    /// processed.
    VisibilityExpiry,
    /// Malformed messages on both queues; they must reach the DLQs with a logged reason.
    Poison { count: u32 },
    /// The first data source receives an upload every 300 ms during the whole workload and for
    /// `extra_millis` after it: it always has a change pending when its job ends.
    NoisyNeighbour { extra_millis: u64 },
    /// The EventBridge change rule is off while ops `from_op..to_op` play: their S3 events are
    /// dropped, as when notifications are off. The scheduled drift check (invoked once the
    /// scenario settled) must bring every one of them to the index.
    DroppedEvents { from_op: usize, to_op: usize },
}

impl Fault {
    /// The kind, for the summary table.
    pub fn kind(&self) -> String {
        match self {
            Fault::Crash { point, .. } => format!("crash {point}"),
            Fault::DuplicateDelivery => "duplicate delivery".into(),
            Fault::ReorderedDelivery => "reordered delivery".into(),
            Fault::Throttle { .. } => "throttling".into(),
            Fault::FailJobs { .. } => "failed jobs".into(),
            Fault::FailDocuments { .. } => "failed documents".into(),
            Fault::ForeignJob { .. } => "foreign job (conflict)".into(),
            Fault::StopExecution { .. } => "StopExecution".into(),
            Fault::VisibilityExpiry => "visibility expiry".into(),
            Fault::Poison { .. } => "poison message".into(),
            Fault::DroppedEvents { .. } => "dropped events".into(),
            Fault::NoisyNeighbour { .. } => "noisy neighbour".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub ops: Vec<Op>,
    pub faults: Vec<Fault>,
    /// MAX_CONCURRENT_JOBS_PER_ACCOUNT of this stack: 1 makes the two knowledge bases queue.
    pub account_limit: u32,
    /// A low execution history limit (hand-overs in seconds), or AWS's.
    pub history_limit: Option<HistoryLimit>,
    /// IngestionMode of the stack: `auto` (direct ingestion after each data source's first job)
    /// for odd seeds, `job` for even ones, so every fault meets both ways through a round.
    pub ingestion_mode: &'static str,
}

impl Scenario {
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut ops = Vec::new();
        let mut exists: Vec<String> = Vec::new();
        // A few keys per data source, so overwrites, deletes and races hit the same objects.
        let sources = Self::topology(seed);
        let keys: Vec<String> = sources
            .iter()
            .flat_map(|s| (0..3).map(move |i| format!("{}doc-{i}.txt", s.prefix)))
            .collect();
        // Every scenario records at least one change: quiescence is judged on recorded changes.
        let first = keys[rng.usize(..keys.len())].clone();
        ops.push(Op::Put {
            key: first.clone(),
            body: format!("seed {seed} first"),
        });
        exists.push(first);
        let count = rng.usize(4..14);
        for n in 0..count {
            let key = keys[rng.usize(..keys.len())].clone();
            match rng.u8(..100) {
                0..=54 => {
                    ops.push(Op::Put {
                        key: key.clone(),
                        body: format!("seed {seed} op {n}"),
                    });
                    if !exists.contains(&key) {
                        exists.push(key);
                    }
                }
                55..=69 if !exists.is_empty() => {
                    let key = exists.remove(rng.usize(..exists.len()));
                    ops.push(Op::Delete { key });
                }
                70..=79 => {
                    ops.push(Op::Race { key: key.clone() });
                    if !exists.contains(&key) {
                        exists.push(key);
                    }
                }
                80..=89 => {
                    let size = rng.usize(4..16);
                    let burst: Vec<String> = (0..size)
                        .map(|i| format!("{}burst-{n}-{i}.txt", sources[i % sources.len()].prefix))
                        .collect();
                    exists.extend(burst.iter().cloned());
                    ops.push(Op::Burst { keys: burst });
                }
                _ => ops.push(Op::Pause {
                    millis: rng.u64(200..2500),
                }),
            }
        }
        let mut faults = Vec::new();
        if rng.bool() {
            let point = CRASH_POINTS[rng.usize(..CRASH_POINTS.len())];
            faults.push(Fault::Crash {
                point,
                nth: rng.u64(1..3),
            });
        }
        let mut maybe = |percent: u8, fault: Fault| {
            if rng.u8(..100) < percent {
                faults.push(fault);
            }
        };
        maybe(30, Fault::DuplicateDelivery);
        maybe(30, Fault::ReorderedDelivery);
        maybe(25, Fault::Throttle { count: 2 });
        maybe(20, Fault::FailJobs { count: 1 });
        maybe(
            20,
            Fault::FailDocuments {
                pattern: "doc-2".into(),
            },
        );
        maybe(20, Fault::StopExecution { after_millis: 3000 });
        maybe(20, Fault::VisibilityExpiry);
        maybe(20, Fault::Poison { count: 2 });
        let foreign_source = rng.usize(..sources.len());
        if rng.u8(..100) < 25 {
            faults.push(Fault::ForeignJob {
                source: foreign_source,
                seconds: 4.0,
            });
        }
        let account_limit = if rng.u8(..100) < 30 { 1 } else { 2 };
        // Drawn last, so the plans of seeds from before the hand-over stay as they were.
        let history_limit = (rng.u8(..100) < 35).then_some(HistoryLimit {
            limit_events: 1_000,
            // Below one iteration's events: every round that goes again hands over.
            hand_over_after: 20,
        });
        if history_limit.is_some() && rng.bool() {
            faults.push(Fault::Crash {
                point: HAND_OVER_CRASH_POINTS[rng.usize(..HAND_OVER_CRASH_POINTS.len())],
                nth: rng.u64(1..3),
            });
        }
        let ingestion_mode = if seed % 2 == 1 { "auto" } else { "job" };
        if ingestion_mode == "auto" && rng.bool() {
            faults.push(Fault::Crash {
                point: DIRECT_CRASH_POINTS[rng.usize(..DIRECT_CRASH_POINTS.len())],
                nth: rng.u64(1..3),
            });
        }
        // Drawn last, so the plans of earlier seeds stay as they were. Op 0 stays heard: every
        // scenario records at least one change.
        if rng.u8(..100) < 20 && ops.len() > 1 {
            let from_op = rng.usize(1..ops.len());
            let to_op = rng.usize(from_op + 1..=ops.len());
            faults.push(Fault::DroppedEvents { from_op, to_op });
        }
        let mut scenario = Self {
            seed,
            ops,
            faults,
            account_limit,
            history_limit,
            ingestion_mode,
        };
        if is_fair_share_seed(seed) {
            scenario.make_fair_share();
        }
        scenario
    }

    /// The fair-share family: jobs only (the bound is about job slots), faults that do not hold
    /// jobs back on purpose (deliveries, poison; not dropped events, whose window waits for a
    /// quiet moment the noisy neighbour never leaves), and the noisy neighbour.
    fn make_fair_share(&mut self) {
        self.ingestion_mode = "job";
        self.faults.retain(|f| {
            matches!(
                f,
                Fault::DuplicateDelivery | Fault::ReorderedDelivery | Fault::Poison { .. }
            )
        });
        self.faults.push(Fault::NoisyNeighbour {
            extra_millis: 20_000,
        });
    }

    /// The data sources of a seed's stack.
    pub fn topology(seed: u64) -> &'static [Source] {
        if is_fair_share_seed(seed) {
            &MANY_SOURCES
        } else {
            &SOURCES
        }
    }

    pub fn sources(&self) -> &'static [Source] {
        Self::topology(self.seed)
    }

    pub fn has(&self, pick: impl Fn(&Fault) -> bool) -> bool {
        self.faults.iter().any(pick)
    }

    /// The ops played with the change rule off, if any.
    pub fn dropped_events(&self) -> Option<std::ops::Range<usize>> {
        self.faults.iter().find_map(|f| match f {
            Fault::DroppedEvents { from_op, to_op } => Some(*from_op..*to_op),
            _ => None,
        })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self.faults.iter().map(Fault::kind).collect();
        let history = match self.history_limit {
            Some(h) => format!(
                ", history limit {} (hand-over after {})",
                h.limit_events, h.hand_over_after
            ),
            None => String::new(),
        };
        write!(
            f,
            "seed {}: {} ops, {} mode, account limit {}{history}, faults [{}]",
            self.seed,
            self.ops.len(),
            self.ingestion_mode,
            self.account_limit,
            kinds.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_scenario() {
        let a = Scenario::from_seed(42);
        let b = Scenario::from_seed(42);
        assert_eq!(a.ops, b.ops);
        assert_eq!(a.faults, b.faults);
        assert_ne!(Scenario::from_seed(43).ops, a.ops);
    }

    #[test]
    fn a_share_of_seeds_hands_over_and_some_crash_inside_the_hand_over() {
        let scenarios: Vec<Scenario> = (1..=50).map(Scenario::from_seed).collect();
        let low = scenarios
            .iter()
            .filter(|s| s.history_limit.is_some())
            .count();
        assert!((8..=30).contains(&low), "{low} of 50 seeds hand over");
        let crashing = scenarios
            .iter()
            .filter(|s| {
                s.has(|f| matches!(f, Fault::Crash { point, .. } if HAND_OVER_CRASH_POINTS.contains(point)))
            })
            .count();
        assert!(crashing >= 3, "{crashing} of 50 seeds crash in a hand-over");
        for s in &scenarios {
            if let Some(h) = s.history_limit {
                assert!(h.hand_over_after * 10 <= h.limit_events, "seed {}", s.seed);
            }
        }
    }

    #[test]
    fn a_share_of_seeds_drops_events_and_never_the_first_op() {
        let dropping: Vec<Scenario> = (1..=50)
            .map(Scenario::from_seed)
            .filter(|s| s.dropped_events().is_some())
            .collect();
        assert!((5..=20).contains(&dropping.len()), "{}", dropping.len());
        for s in &dropping {
            let range = s.dropped_events().unwrap();
            assert!(range.start >= 1 && range.end <= s.ops.len() && !range.is_empty());
        }
    }

    #[test]
    fn deletes_name_objects_that_exist() {
        for seed in 0..200 {
            let scenario = Scenario::from_seed(seed);
            let mut exists = std::collections::BTreeSet::new();
            for op in &scenario.ops {
                match op {
                    Op::Put { key, .. } | Op::Race { key } => {
                        exists.insert(key.clone());
                    }
                    Op::Burst { keys } => exists.extend(keys.iter().cloned()),
                    Op::Delete { key } => assert!(exists.remove(key), "seed {seed}: {key}"),
                    Op::Pause { .. } => {}
                }
            }
        }
    }
}
