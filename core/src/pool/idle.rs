//! Where idle connections wait: a lock-free FIFO queue or a lock-free LIFO stack
//! (`pool.queue_mode`). Neither takes a lock that every caller shares.
//!
//! The FIFO queue is a ring preallocated for `max_size + max_overflow` entries, so a
//! checkout and a return move one pointer and allocate nothing; after a resize that
//! grows the pool past it, the extra entries wait in an unbounded spill queue (which
//! allocates a block per 31 entries) until the ring has room again.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_epoch::{self as epoch, Atomic, Owned};
use crossbeam_queue::{ArrayQueue, SegQueue};

/// The idle store of a pool.
// One per pool, made once: its size does not matter, and boxing the larger variant
// would add a pointer hop to every acquire and release.
#[allow(clippy::large_enum_variant)]
pub(crate) enum IdleQueue<T> {
    /// Oldest idle first: spreads use over all connections.
    Fifo(Ring<T>),
    /// Most recently used first: keeps hot connections hot and lets the rest reach
    /// `idle_timeout`, so the pool shrinks after a spike.
    Lifo(Stack<T>),
}

impl<T> IdleQueue<T> {
    /// An idle store for a pool of up to `capacity` connections (more fit, at a cost).
    pub(crate) fn new(lifo: bool, capacity: usize) -> Self {
        if lifo {
            IdleQueue::Lifo(Stack::new())
        } else {
            IdleQueue::Fifo(Ring {
                ring: ArrayQueue::new(capacity.max(1)),
                spill: SegQueue::new(),
                spilled: AtomicUsize::new(0),
            })
        }
    }

    #[inline]
    pub(crate) fn push(&self, v: T) {
        match self {
            IdleQueue::Fifo(q) => q.push(v),
            IdleQueue::Lifo(s) => s.push(v),
        }
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        match self {
            IdleQueue::Fifo(q) => q.pop(),
            IdleQueue::Lifo(s) => s.pop(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            IdleQueue::Fifo(q) => q.len(),
            IdleQueue::Lifo(s) => s.len(),
        }
    }
}

/// The FIFO store: a preallocated ring, and a spill queue for what does not fit.
pub(crate) struct Ring<T> {
    ring: ArrayQueue<T>,
    spill: SegQueue<T>,
    /// Entries in `spill` (read on every pop that finds the ring empty).
    spilled: AtomicUsize,
}

impl<T> Ring<T> {
    #[inline]
    fn push(&self, v: T) {
        if let Err(v) = self.ring.push(v) {
            self.spill_push(v);
        }
    }

    #[cold]
    fn spill_push(&self, v: T) {
        self.spilled.fetch_add(1, Ordering::SeqCst);
        self.spill.push(v);
    }

    #[inline]
    fn pop(&self) -> Option<T> {
        match self.ring.pop() {
            Some(v) => Some(v),
            None if self.spilled.load(Ordering::SeqCst) != 0 => self.spill_pop(),
            None => None,
        }
    }

    #[cold]
    fn spill_pop(&self) -> Option<T> {
        let v = self.spill.pop()?;
        self.spilled.fetch_sub(1, Ordering::SeqCst);
        Some(v)
    }

    fn len(&self) -> usize {
        self.ring.len() + self.spill.len()
    }
}

struct Node<T> {
    value: ManuallyDrop<T>,
    next: Atomic<Node<T>>,
}

/// A Treiber stack: push and pop are one compare-and-swap on the head; popped nodes
/// are freed by epoch-based reclamation once no thread can still be reading them.
pub(crate) struct Stack<T> {
    head: Atomic<Node<T>>,
    len: AtomicUsize,
}

// SAFETY: values are only moved in (push) and out (pop, by the one thread whose CAS
// won); no thread ever holds a reference to another thread's value, so `T: Send`
// suffices. Nodes themselves are shared only through atomics.
unsafe impl<T: Send> Send for Stack<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Stack<T> {}

impl<T> Stack<T> {
    fn new() -> Self {
        Stack {
            head: Atomic::null(),
            len: AtomicUsize::new(0),
        }
    }

    fn push(&self, v: T) {
        let mut node = Owned::new(Node {
            value: ManuallyDrop::new(v),
            next: Atomic::null(),
        });
        let guard = epoch::pin();
        loop {
            let head = self.head.load(Ordering::Relaxed, &guard);
            node.next.store(head, Ordering::Relaxed);
            match self.head.compare_exchange(
                head,
                node,
                Ordering::Release,
                Ordering::Relaxed,
                &guard,
            ) {
                Ok(_) => break,
                Err(e) => node = e.new,
            }
        }
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    fn pop(&self) -> Option<T> {
        let guard = epoch::pin();
        loop {
            let head = self.head.load(Ordering::Acquire, &guard);
            // SAFETY: `head` was loaded under `guard`, so its node is not freed while
            // the guard lives (nodes are only freed through defer_destroy).
            let node = unsafe { head.as_ref() }?;
            let next = node.next.load(Ordering::Relaxed, &guard);
            if self
                .head
                .compare_exchange(head, next, Ordering::Relaxed, Ordering::Relaxed, &guard)
                .is_ok()
            {
                self.len.fetch_sub(1, Ordering::Relaxed);
                // SAFETY: our CAS unlinked the node, so no other pop can take its
                // value; we move the value out exactly once (it is ManuallyDrop, so
                // freeing the node later does not drop it again), and the node is
                // freed only after every thread that may still read it unpins.
                unsafe {
                    let value = std::ptr::read(&node.value);
                    guard.defer_destroy(head);
                    return Some(ManuallyDrop::into_inner(value));
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

impl<T> Drop for Stack<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lifo_and_fifo_orders() {
        let s = IdleQueue::new(true, 8);
        let q = IdleQueue::new(false, 8);
        for i in 0..3 {
            s.push(i);
            q.push(i);
        }
        assert_eq!((s.pop(), q.pop()), (Some(2), Some(0)));
        assert_eq!((s.len(), q.len()), (2, 2));
    }

    #[test]
    fn the_stack_loses_and_duplicates_nothing_under_threads() {
        let s = Arc::new(IdleQueue::new(true, 8));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..20_000u64 {
                        s.push(t * 1_000_000 + i);
                        if let Some(v) = s.pop() {
                            got.push(v);
                        }
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        while let Some(v) = s.pop() {
            all.push(v);
        }
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(all.len(), before, "a value was popped twice");
        assert_eq!(all.len(), 80_000, "a value was lost");
    }

    #[test]
    fn the_ring_spills_past_its_capacity_in_order() {
        let q = IdleQueue::new(false, 2);
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.len(), 5);
        // The ring's two first, then the spill's three, each in order.
        let got: Vec<i32> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn the_ring_loses_and_duplicates_nothing_under_threads() {
        let q = Arc::new(IdleQueue::new(false, 16));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..20_000u64 {
                        q.push(t * 1_000_000 + i);
                        if i % 3 != 0 {
                            if let Some(v) = q.pop() {
                                got.push(v);
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        while let Some(v) = q.pop() {
            all.push(v);
        }
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(all.len(), before, "a value was popped twice");
        assert_eq!(all.len(), 80_000, "a value was lost");
    }

    #[test]
    fn dropping_the_stack_drops_its_values() {
        let witness = Arc::new(());
        let s = IdleQueue::new(true, 8);
        for _ in 0..10 {
            s.push(witness.clone());
        }
        drop(s);
        assert_eq!(Arc::strong_count(&witness), 1);
    }
}
