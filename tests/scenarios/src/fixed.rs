//! The seeds `make test` runs: a fixed range, plus every seed that once found a defect (kept as
//! a regression, with what it found).

/// Seeds that found a defect, and the defect.
pub const REGRESSIONS: &[(u64, &str)] = &[
    (
        4,
        "a start retried after throttling (SDK retry, or a retried task holding the job slot) \
         skipped the start interval and was throttled because of another knowledge base's start",
    ),
    (
        12,
        "the start interval ran from the job slot's acquisition, not from the StartIngestionJob \
         call: a start delayed after acquiring (a crash, a slow call) reached Bedrock right after \
         another knowledge base's and was throttled; then, in the local stack, two concurrent \
         conditional writes both took one job slot (moto applied them without a lock)",
    ),
    (
        43,
        "an execution stopped after marking its changes and before releasing its lease left the \
         lease held for good when nothing else was pending (the sweep now releases it)",
    ),
    (
        11,
        "a function crash after StartIngestionJob (Runtime.ExitError) failed the round and marked \
         its changes FAILED instead of retrying the task",
    ),
];

/// The fixed list: seeds 1..=50 and the regression seeds.
pub fn seeds() -> Vec<u64> {
    let mut seeds: Vec<u64> = (1..=50).collect();
    for (seed, _) in REGRESSIONS {
        if !seeds.contains(seed) {
            seeds.push(*seed);
        }
    }
    seeds
}
