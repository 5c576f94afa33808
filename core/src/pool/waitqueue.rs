//! The order waiters are served in: higher priority first, equal priorities in arrival
//! order. Nearly every caller uses priority 0, so those wait in a plain ring in arrival
//! order (a push, a pop, a binary search to leave; no allocation once it has grown);
//! other priorities in an ordered map beside it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

/// A waiter's place: its priority and its arrival number.
pub(super) type WaiterKey = (Reverse<i32>, u64);

pub(super) struct WaitQueue<T> {
    /// Priority 0, by arrival; a waiter that left early leaves `None` (a tombstone).
    plain: VecDeque<(u64, Option<T>)>,
    /// Live entries in `plain`.
    plain_live: usize,
    /// Every other priority, best first.
    ranked: BTreeMap<WaiterKey, T>,
    seq: u64,
}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        WaitQueue {
            plain: VecDeque::new(),
            plain_live: 0,
            ranked: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<T> WaitQueue<T> {
    pub(super) fn len(&self) -> usize {
        self.plain_live + self.ranked.len()
    }

    /// Adds a waiter at the back of its priority; its key removes it.
    pub(super) fn push(&mut self, priority: i32, v: T) -> WaiterKey {
        self.seq += 1;
        let key = (Reverse(priority), self.seq);
        if priority == 0 {
            self.plain.push_back((self.seq, Some(v)));
            self.plain_live += 1;
        } else {
            self.ranked.insert(key, v);
        }
        key
    }

    /// Removes the waiter at `key` if it is still in the queue.
    pub(super) fn remove(&mut self, key: &WaiterKey) -> Option<T> {
        if key.0 != Reverse(0) {
            return self.ranked.remove(key);
        }
        let i = self.plain.binary_search_by_key(&key.1, |e| e.0).ok()?;
        let v = self.plain.get_mut(i)?.1.take()?;
        self.plain_live -= 1;
        self.tidy();
        Some(v)
    }

    /// The waiter to serve next.
    pub(super) fn pop_first(&mut self) -> Option<T> {
        // A positive priority goes before the plain ones.
        if self
            .ranked
            .first_key_value()
            .is_some_and(|(k, _)| k.0.0 > 0)
        {
            return self.ranked.pop_first().map(|(_, v)| v);
        }
        if self.plain_live > 0 {
            while let Some((_, v)) = self.plain.pop_front() {
                if let Some(v) = v {
                    self.plain_live -= 1;
                    self.tidy();
                    return Some(v);
                }
            }
        }
        self.ranked.pop_first().map(|(_, v)| v)
    }

    /// The waiter that would be served last.
    pub(super) fn pop_last(&mut self) -> Option<T> {
        if self.ranked.last_key_value().is_some_and(|(k, _)| k.0.0 < 0) {
            return self.ranked.pop_last().map(|(_, v)| v);
        }
        if self.plain_live > 0 {
            while let Some((_, v)) = self.plain.pop_back() {
                if let Some(v) = v {
                    self.plain_live -= 1;
                    self.tidy();
                    return Some(v);
                }
            }
        }
        self.ranked.pop_last().map(|(_, v)| v)
    }

    /// Takes out every waiter for which `expired` holds.
    pub(super) fn take_where(&mut self, mut expired: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut out = Vec::new();
        for e in self.plain.iter_mut() {
            if e.1.as_ref().is_some_and(&mut expired) {
                out.extend(e.1.take());
            }
        }
        self.plain_live -= out.len();
        let keys: Vec<WaiterKey> = self
            .ranked
            .iter()
            .filter(|(_, v)| expired(v))
            .map(|(k, _)| *k)
            .collect();
        out.extend(keys.iter().filter_map(|k| self.ranked.remove(k)));
        self.tidy();
        out
    }

    /// The least of `key` over the waiters.
    pub(super) fn min_of<K: Ord>(&self, key: impl Fn(&T) -> K) -> Option<K> {
        let plain = self.plain.iter().filter_map(|e| e.1.as_ref());
        plain.chain(self.ranked.values()).map(key).min()
    }

    /// Every waiter, in the order they would be served.
    pub(super) fn take_all(&mut self) -> Vec<T> {
        let mut all = Vec::with_capacity(self.len());
        while let Some(v) = self.pop_first() {
            all.push(v);
        }
        all
    }

    /// Drops tombstones at the ends, and compacts when they outnumber the living (so
    /// a long wait at the front with many early leavers behind it stays bounded).
    fn tidy(&mut self) {
        while self.plain.front().is_some_and(|e| e.1.is_none()) {
            self.plain.pop_front();
        }
        while self.plain.back().is_some_and(|e| e.1.is_none()) {
            self.plain.pop_back();
        }
        if self.plain.len() > 2 * self.plain_live + 64 {
            self.plain.retain(|e| e.1.is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priorities_first_then_arrival_order() {
        let mut q = WaitQueue::default();
        q.push(0, "a");
        q.push(-1, "low");
        q.push(5, "high");
        q.push(0, "b");
        q.push(1, "mid");
        q.push(0, "c");
        assert_eq!(q.len(), 6);
        let order: Vec<_> = std::iter::from_fn(|| q.pop_first()).collect();
        assert_eq!(order, ["high", "mid", "a", "b", "c", "low"]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn pop_last_takes_the_reverse_order() {
        let mut q = WaitQueue::default();
        for (p, v) in [(0, "a"), (-1, "low"), (5, "high"), (0, "b")] {
            q.push(p, v);
        }
        let order: Vec<_> = std::iter::from_fn(|| q.pop_last()).collect();
        assert_eq!(order, ["low", "b", "a", "high"]);
    }

    #[test]
    fn a_waiter_that_leaves_is_skipped_and_counted_out() {
        let mut q = WaitQueue::default();
        let a = q.push(0, 1);
        let b = q.push(0, 2);
        let c = q.push(0, 3);
        let r = q.push(2, 9);
        assert_eq!(q.remove(&b), Some(2));
        assert_eq!(q.remove(&b), None, "removed twice");
        assert_eq!(q.remove(&r), Some(9));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_first(), Some(1));
        assert_eq!(q.remove(&a), None, "already served");
        assert_eq!(q.pop_first(), Some(3));
        assert_eq!(q.remove(&c), None);
        assert_eq!((q.len(), q.pop_first()), (0, None));
    }

    #[test]
    fn expired_waiters_are_taken_out_wherever_they_are() {
        let mut q = WaitQueue::default();
        for (p, v) in [(0, 5), (0, 1), (3, 2), (0, 7), (-1, 1), (0, 9)] {
            q.push(p, v);
        }
        assert_eq!(q.min_of(|v| *v), Some(1));
        let mut gone = q.take_where(|v| *v < 3);
        gone.sort_unstable();
        assert_eq!(gone, [1, 1, 2]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.min_of(|v| *v), Some(5));
        assert_eq!(q.take_all(), [5, 7, 9]);
        assert_eq!(q.min_of(|v| *v), None);
    }

    #[test]
    fn early_leavers_behind_a_long_wait_stay_bounded() {
        let mut q = WaitQueue::default();
        q.push(0, 0u32); // waits at the front throughout
        let mut last = q.push(0, 1);
        for i in 2..100_000u32 {
            // The one before leaves from the middle: the newest is behind it.
            let k = q.push(0, i);
            assert_eq!(q.remove(&last), Some(i - 1));
            last = k;
        }
        assert_eq!(q.len(), 2);
        assert!(q.plain.len() <= 2 * 2 + 65, "{} kept", q.plain.len());
        assert_eq!(q.take_all(), [0, 99_999]);
    }
}
