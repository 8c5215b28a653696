//! Which offsets may be committed. Events finish out of order (many API calls in flight), but an offset
//! may only be committed when every event before it in its partition has its prediction acknowledged:
//! committing past an unfinished event would lose it on a crash.
//!
//! Completing an event only moves the tracker's committable offset; one caller at a time takes the
//! offsets that moved ([`OffsetTracker::advanced`]) and hands them to librdkafka. Storing from every
//! completing task instead would race: a slower task could store an older offset after a newer one, and
//! the commit would go backwards.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Proof that an event was registered; hand it back to [`OffsetTracker::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Partition of the event.
    pub partition: i32,
    /// Offset of the event.
    pub offset: i64,
    /// Assignment generation the event belongs to; a ticket from before a rebalance is ignored.
    generation: u64,
}

/// In-flight events of one partition.
#[derive(Debug)]
struct Partition {
    generation: u64,
    in_flight: BTreeSet<i64>,
    highest_seen: i64,
    committable: i64,
    /// The committable offset last handed out by [`OffsetTracker::advanced`].
    taken: i64,
}

/// Per partition: events in flight, and the offset up to which everything is done.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: Mutex<HashMap<i32, Partition>>,
    generations: AtomicU64,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an event as received and not yet done.
    pub fn begin(&self, partition: i32, offset: i64) -> Ticket {
        let mut parts = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        let part = parts.entry(partition).or_insert_with(|| Partition {
            generation: self.generations.fetch_add(1, Ordering::Relaxed),
            in_flight: BTreeSet::new(),
            highest_seen: offset - 1,
            committable: offset,
            taken: offset,
        });
        part.in_flight.insert(offset);
        part.highest_seen = part.highest_seen.max(offset);
        Ticket {
            partition,
            offset,
            generation: part.generation,
        }
    }

    /// Marks an event done; returns whether its partition's committable offset moved forward.
    pub fn complete(&self, ticket: Ticket) -> bool {
        let mut parts = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        let Some(part) = parts.get_mut(&ticket.partition) else {
            return false;
        };
        if part.generation != ticket.generation || !part.in_flight.remove(&ticket.offset) {
            return false;
        }
        let next = part
            .in_flight
            .first()
            .copied()
            .unwrap_or(part.highest_seen + 1);
        let moved = next > part.committable;
        part.committable = part.committable.max(next);
        moved
    }

    /// The partitions whose committable offset (the next offset to read: everything before it is done)
    /// moved since the last call, with that offset.
    pub fn advanced(&self) -> Vec<(i32, i64)> {
        let mut parts = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        parts
            .iter_mut()
            .filter(|(_, part)| part.committable > part.taken)
            .map(|(&p, part)| {
                part.taken = part.committable;
                (p, part.committable)
            })
            .collect()
    }

    /// Forgets partitions taken away by a rebalance: their in-flight events will be read again by the new
    /// owner, and late completions must not count. Returns their committable offsets not yet taken, to be
    /// stored before the revocation commits.
    pub fn revoke(&self, partitions: &[i32]) -> Vec<(i32, i64)> {
        let mut parts = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        partitions
            .iter()
            .filter_map(|p| parts.remove(p).map(|part| (*p, part)))
            .filter(|(_, part)| part.committable > part.taken)
            .map(|(p, part)| (p, part.committable))
            .collect()
    }

    /// Events received and not yet done, all partitions.
    pub fn in_flight(&self) -> usize {
        let parts = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        parts.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_past_a_contiguous_done_prefix() {
        let t = OffsetTracker::new();
        let tickets: Vec<Ticket> = (10..15).map(|o| t.begin(0, o)).collect();
        // 11 and 12 finish first: 10 is still in flight, nothing may be committed.
        assert!(!t.complete(tickets[1]));
        assert!(!t.complete(tickets[2]));
        assert_eq!(t.advanced(), vec![]);
        // 10 finishes: everything up to 12 is done, the next offset to read is 13.
        assert!(t.complete(tickets[0]));
        assert_eq!(t.advanced(), vec![(0, 13)]);
        assert_eq!(t.advanced(), vec![], "taken once");
        assert!(!t.complete(tickets[4]));
        assert!(t.complete(tickets[3]));
        assert_eq!(t.advanced(), vec![(0, 15)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn the_committable_offset_never_goes_back() {
        // Completions in any order: what is taken only ever grows (the race that storing from every
        // task had: an older store landing after a newer one).
        let t = OffsetTracker::new();
        let tickets: Vec<Ticket> = (0..100).map(|o| t.begin(3, o)).collect();
        let mut last = 0;
        for i in (0..100).rev() {
            t.complete(tickets[i]);
            for (_, offset) in t.advanced() {
                assert!(offset > last);
                last = offset;
            }
        }
        assert_eq!(last, 100);
    }

    #[test]
    fn partitions_are_independent() {
        let t = OffsetTracker::new();
        let a = t.begin(0, 5);
        let b = t.begin(1, 100);
        assert!(t.complete(b));
        assert!(t.complete(a));
        let mut advanced = t.advanced();
        advanced.sort_unstable();
        assert_eq!(advanced, vec![(0, 6), (1, 101)]);
    }

    #[test]
    fn a_rebalance_hands_back_what_is_done_and_ignores_stale_tickets() {
        let t = OffsetTracker::new();
        let done = t.begin(3, 6);
        let old = t.begin(3, 7);
        assert!(t.complete(done));
        assert_eq!(
            t.revoke(&[3]),
            vec![(3, 7)],
            "done but not yet stored: store before the commit"
        );
        let new = t.begin(3, 5);
        assert!(!t.complete(old), "stale ticket must not count");
        assert!(t.complete(new));
        assert!(!t.complete(new), "a ticket completes once");
        assert_eq!(t.advanced(), vec![(3, 6)]);
    }
}
