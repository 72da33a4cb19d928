//! Ingestion jobs that run on the stack's data sources without holding one of its job slots
//! (started in the console, by a script, by another stack): they count against the account's
//! five jobs all the same. They are counted by a census stored in the SLOTS item, not on every
//! check: Bedrock answers ListIngestionJobs 10 times a second per account, and one call per
//! managed data source on every check made twenty waiting data sources throttle each other
//! (and everything else that lists jobs). A check that finds the census older than
//! [`CENSUS_INTERVAL_MS`] claims the next one (one conditional write, so concurrent checks do
//! not all list) and takes it; every other check reads the stored count.
//!
//! A job started elsewhere after the census is unseen for at most the interval: a start that
//! meets it is refused by Bedrock and waited out like any busy answer. Jobs on the round's own
//! data source and knowledge base are always listed before it starts (see check-quota).

use serde::{Deserialize, Serialize};

use crate::SourceId;

/// How old a census may be before the next check takes a new one.
pub const CENSUS_INTERVAL_MS: i64 = 60_000;

/// The last count, as stored in the SLOTS item (`census`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignJobsCensus {
    /// When the census was claimed (epoch milliseconds).
    pub at_ms: i64,
    /// Jobs running then on managed data sources whose knowledge base held no slot of the stack.
    pub foreign_jobs: u32,
}

impl ForeignJobsCensus {
    /// Whether a check at `now_ms` should take a new census.
    pub fn is_due(census: Option<&Self>, now_ms: i64) -> bool {
        census.is_none_or(|c| now_ms - c.at_ms >= CENSUS_INTERVAL_MS)
    }

    /// The count to use now: the stored one, 0 before the first census.
    pub fn count(census: Option<&Self>) -> u32 {
        census.map_or(0, |c| c.foreign_jobs)
    }
}

/// Which managed data sources the census lists: those whose knowledge base holds no slot of
/// the stack (a job there is not the stack's own).
pub fn to_list<'a>(managed: &'a [SourceId], slot_knowledge_bases: &[&str]) -> Vec<&'a SourceId> {
    managed
        .iter()
        .filter(|s| !slot_knowledge_bases.contains(&s.knowledge_base_id.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_census_is_due_first_and_then_once_per_interval() {
        assert!(ForeignJobsCensus::is_due(None, 0));
        let taken = ForeignJobsCensus {
            at_ms: 1_000,
            foreign_jobs: 2,
        };
        assert!(!ForeignJobsCensus::is_due(
            Some(&taken),
            1_000 + CENSUS_INTERVAL_MS - 1
        ));
        assert!(ForeignJobsCensus::is_due(
            Some(&taken),
            1_000 + CENSUS_INTERVAL_MS
        ));
        assert_eq!(ForeignJobsCensus::count(Some(&taken)), 2);
        assert_eq!(ForeignJobsCensus::count(None), 0);
    }

    #[test]
    fn knowledge_bases_holding_a_slot_of_the_stack_are_not_listed() {
        let managed = [
            SourceId::new("KB1", "A"),
            SourceId::new("KB1", "B"),
            SourceId::new("KB2", "C"),
        ];
        assert_eq!(
            to_list(&managed, &["KB1"]),
            vec![&SourceId::new("KB2", "C")]
        );
    }
}
