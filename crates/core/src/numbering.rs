//! Change numbers for a batch of events. Every recorded change gets a number from its data
//! source's `change_seq` counter (`source_seq` on the change), and a job covers the changes
//! numbered up to the counter value pinned before it started. Numbers are reserved per batch, one
//! `ADD change_seq :n` per data source returning the new value N, and handed out as N-n+1..=N in
//! the order of the batch: the counter is one DynamoDB item (one partition key, about 1,000
//! writes/s), so one write per change would cap the changes per second of a data source.
//!
//! Only new changes take numbers: a redelivered event (already recorded, or repeated within the
//! batch) must not move the counter, or a round that found "nothing recorded since the previous
//! job's pin" would start a job for nothing.

use std::collections::{HashMap, HashSet};

use crate::SourceId;

/// For each entry of a batch, in order: whether it is a new change, i.e. the first occurrence of
/// its id in the batch and not already recorded.
pub fn new_in_batch<S: AsRef<str>>(ids: &[S], recorded: &HashSet<String>) -> Vec<bool> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(ids.len());
    ids.iter()
        .map(|id| {
            let id = id.as_ref();
            seen.insert(id) && !recorded.contains(id)
        })
        .collect()
}

/// How many numbers each data source needs for `sources` (one entry per new change), in order of
/// first appearance: one reservation per data source.
pub fn counts_per_source<'a>(
    sources: impl IntoIterator<Item = &'a SourceId>,
) -> Vec<(SourceId, u64)> {
    let mut counts: Vec<(SourceId, u64)> = Vec::new();
    let mut index: HashMap<&SourceId, usize> = HashMap::new();
    for source in sources {
        match index.get(source) {
            Some(&i) => counts[i].1 += 1,
            None => {
                index.insert(source, counts.len());
                counts.push((source.clone(), 1));
            }
        }
    }
    counts
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("change_seq of {data_source} is {last} after reserving {count} numbers: the counter went backwards or was reset, so the numbers cannot be handed out")]
pub struct NumberingError {
    pub data_source: SourceId,
    pub count: u64,
    pub last: u64,
}

/// Hands out reserved numbers in batch order.
#[derive(Debug, Default)]
pub struct Numbering {
    /// Next number and last number of each data source's reservation.
    ranges: HashMap<SourceId, (u64, u64)>,
}

impl Numbering {
    pub fn new() -> Self {
        Self::default()
    }

    /// `count` numbers of `source` were reserved and the counter is now `last`: they are
    /// `last - count + 1 ..= last`.
    pub fn reserved(
        &mut self,
        source: SourceId,
        count: u64,
        last: u64,
    ) -> Result<(), NumberingError> {
        if count == 0 || last < count {
            return Err(NumberingError {
                data_source: source,
                count,
                last,
            });
        }
        self.ranges.insert(source, (last - count + 1, last));
        Ok(())
    }

    /// The next number of `source`: None when nothing (or too little) was reserved for it.
    pub fn next(&mut self, source: &SourceId) -> Option<u64> {
        let (next, last) = self.ranges.get_mut(source)?;
        if *next > *last {
            return None;
        }
        *next += 1;
        Some(*next - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_first_occurrences_of_unrecorded_ids_are_new() {
        let recorded: HashSet<String> = ["old".to_string()].into();
        assert_eq!(
            new_in_batch(&["a", "old", "b", "a", "old", "c"], &recorded),
            [true, false, true, false, false, true]
        );
        assert!(new_in_batch::<&str>(&[], &recorded).is_empty());
    }

    #[test]
    fn one_reservation_per_data_source_in_order_of_appearance() {
        let a = SourceId::new("KB", "A");
        let b = SourceId::new("KB", "B");
        let batch = [&a, &a, &b, &a, &b, &a, &a, &a, &a, &a];
        assert_eq!(counts_per_source(batch), [(a.clone(), 8), (b.clone(), 2)]);
        assert!(counts_per_source([]).is_empty());
    }

    #[test]
    fn a_batch_of_ten_is_numbered_from_one_reservation_in_batch_order() {
        let a = SourceId::new("KB", "A");
        let mut numbering = Numbering::new();
        // The counter was 40; ADD change_seq :10 returned 50.
        numbering.reserved(a.clone(), 10, 50).unwrap();
        let numbers: Vec<u64> = (0..10).map(|_| numbering.next(&a).unwrap()).collect();
        assert_eq!(numbers, (41..=50).collect::<Vec<_>>());
        assert_eq!(numbering.next(&a), None, "never more numbers than reserved");
    }

    #[test]
    fn sources_are_numbered_independently() {
        let a = SourceId::new("KB", "A");
        let b = SourceId::new("KB", "B");
        let mut numbering = Numbering::new();
        numbering.reserved(a.clone(), 2, 2).unwrap();
        numbering.reserved(b.clone(), 1, 7).unwrap();
        assert_eq!(numbering.next(&a), Some(1));
        assert_eq!(numbering.next(&b), Some(7));
        assert_eq!(numbering.next(&a), Some(2));
        assert_eq!(
            numbering.next(&SourceId::new("KB", "C")),
            None,
            "no reservation"
        );
    }

    #[test]
    fn a_counter_below_the_reservation_is_an_error() {
        let a = SourceId::new("KB", "A");
        let err = Numbering::new().reserved(a.clone(), 3, 2).unwrap_err();
        assert!(err.to_string().contains("KB/A"), "{err}");
        assert!(Numbering::new().reserved(a, 0, 5).is_err());
    }
}
