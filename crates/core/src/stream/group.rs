//! Consumer groups: last delivered ID, read counter, the group's pending
//! entries list (PEL) and its consumers.

use super::StreamId;
use std::collections::{BTreeMap, BTreeSet};

/// A pending entry: delivered to a consumer, not yet acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// Last delivery time (ms).
    pub delivery_time: i64,
    /// Number of deliveries.
    pub delivery_count: u64,
    /// The consumer owning it.
    pub consumer: Box<[u8]>,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Consumer {
    /// Last time the consumer was seen (any interaction), ms.
    pub seen_time: i64,
    /// Last successful read or claim, ms (-1 = never).
    pub active_time: i64,
    /// IDs pending for this consumer.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    /// Last ID delivered with `>`.
    pub last_id: StreamId,
    /// Logical read counter (None = unknown).
    pub entries_read: Option<u64>,
    /// All pending entries.
    pub pel: BTreeMap<StreamId, PendingEntry>,
    /// Consumers by name.
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

impl Group {
    /// A group starting after `last_id`.
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Group {
        Group {
            last_id,
            entries_read,
            ..Group::default()
        }
    }

    /// Approximate heap bytes.
    pub fn heap_size(&self) -> usize {
        let pel: usize = self.pel.values().map(|p| 64 + p.consumer.len()).sum();
        let cons: usize = self
            .consumers
            .iter()
            .map(|(k, c)| 64 + k.len() + c.pel.len() * 24)
            .sum();
        pel + cons
    }

    /// The consumer `name`, created when missing; returns whether it was
    /// created.
    pub fn consumer_or_create(&mut self, name: &[u8], now: i64) -> (&mut Consumer, bool) {
        let mut created = false;
        if !self.consumers.contains_key(name) {
            self.consumers.insert(
                name.into(),
                Consumer {
                    seen_time: now,
                    active_time: -1,
                    pel: BTreeSet::new(),
                },
            );
            created = true;
        }
        (self.consumers.get_mut(name).expect("consumer"), created)
    }

    /// A fresh delivery of `id` to `consumer` (which must exist): a new
    /// pending entry with one delivery, or an existing one moved to
    /// `consumer` with its count reset to one (XREADGROUP with `>`).
    pub fn deliver_new(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        if let Some(old) = self.pel.get(&id) {
            let owner = old.consumer.clone();
            if let Some(c) = self.consumers.get_mut(&owner) {
                c.pel.remove(&id);
            }
        }
        self.pel.insert(
            id,
            PendingEntry {
                delivery_time: now,
                delivery_count: 1,
                consumer: consumer.into(),
            },
        );
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Moves the pending entry `id` to `consumer` (which must exist), as
    /// XCLAIM / XAUTOCLAIM do; returns false when `id` is not pending.
    pub fn transfer(&mut self, id: StreamId, consumer: &[u8]) -> bool {
        let Some(pe) = self.pel.get_mut(&id) else {
            return false;
        };
        if *pe.consumer != *consumer {
            let owner = std::mem::replace(&mut pe.consumer, consumer.into());
            if let Some(c) = self.consumers.get_mut(&owner) {
                c.pel.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
        true
    }

    /// Acknowledges `id`; returns whether it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(pe) => {
                if let Some(c) = self.consumers.get_mut(&pe.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Deletes a consumer; returns its number of pending entries, or None
    /// when there was no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every consumer PEL entry is in the group PEL with that owner, and
    /// every group PEL entry is in its owner's PEL.
    fn consistent(g: &Group) -> bool {
        let mut n = 0;
        for (name, c) in &g.consumers {
            for id in &c.pel {
                match g.pel.get(id) {
                    Some(pe) if *pe.consumer == **name => n += 1,
                    _ => return false,
                }
            }
        }
        n == g.pel.len()
    }

    proptest! {
        #[test]
        fn pel_stays_consistent(ops in proptest::collection::vec((0u8..4, 0u8..6, 0u8..3), 1..200)) {
            let mut g = Group::new(StreamId::MIN, None);
            let names: [&[u8]; 3] = [b"a", b"b", b"c"];
            for (op, id, who) in ops {
                let id = StreamId::new(id as u64, 0);
                let name = names[who as usize];
                match op {
                    0 => {
                        g.consumer_or_create(name, 1);
                        g.deliver_new(id, name, 1);
                        prop_assert_eq!(g.pel[&id].delivery_count, 1);
                    }
                    1 => {
                        let was = g.pel.contains_key(&id);
                        prop_assert_eq!(g.ack(id), was);
                        prop_assert!(!g.pel.contains_key(&id));
                    }
                    2 => {
                        let had = g.consumers.get(name).map(|c| c.pel.len());
                        prop_assert_eq!(g.delete_consumer(name), had);
                    }
                    _ => {
                        g.consumer_or_create(name, 1);
                        let was = g.pel.contains_key(&id);
                        prop_assert_eq!(g.transfer(id, name), was);
                    }
                }
                prop_assert!(consistent(&g));
            }
        }
    }
}
