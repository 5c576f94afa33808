//! Where vacant slots wait: the shared lock-free (Treiber) free list, whose head
//! carries an ABA counter, and the per-thread cache ([`LocalFree`], reached through a
//! [`LocalCache`]) that a slab on the hot path fills first.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::Ordering;

use super::{Slab, Slot};

/// Where a slab on a hot path keeps each thread's free slots: a `thread_local!`
/// [`LocalFree`] named in the type (not a `&LocalKey` field), so that reaching it is
/// the thread-local access itself, inlined, and not a call through the key.
///
/// # Safety
///
/// An implementation is the cache of exactly one slab (one `Slab<T, L>` value, a
/// `'static`): the cache holds addresses of that slab's slots and gives them back to
/// it, and its `give_back` calls that slab's [`Slab::give_back`].
pub(crate) unsafe trait LocalCache: 'static {
    /// Runs `f` on this thread's cache; `None` when the slab has none, or the thread
    /// is exiting and its cache is gone.
    fn with<R>(f: impl FnOnce(&LocalFree) -> R) -> Option<R>;
}

/// No per-thread cache: freed slots go straight to the shared free list.
pub(crate) struct NoCache;

// SAFETY: it never holds anything.
unsafe impl LocalCache for NoCache {
    #[inline(always)]
    fn with<R>(_: impl FnOnce(&LocalFree) -> R) -> Option<R> {
        None
    }
}

/// Most free slots one thread keeps for one slab before it gives half back.
const LOCAL_FREE_MAX: usize = 64;

/// Free slots kept by one thread for one `'static` slab, so that a thread that
/// acquires and releases over and over does not touch the slab's shared free-list
/// head: the next lease a thread makes reuses the slot of the last one it ended. A
/// slot in a cache is vacant and belongs to that cache alone, exactly like a slot on
/// the shared free list; a thread's cache goes back to the shared list (through
/// `give_back`, which calls [`Slab::give_back`] of the owning slab) when the thread
/// exits.
///
/// It keeps slot addresses (each slot knows its index), so taking one is a length
/// check and a load, with no segment arithmetic. A fixed array behind `Cell`s rather
/// than a `RefCell<Vec>`: no borrow can be left open (nothing is called while the
/// cache is being changed, except `give_back` of half of it, which does not touch
/// the cache).
pub(crate) struct LocalFree {
    len: Cell<usize>,
    slots: [Cell<*const ()>; LOCAL_FREE_MAX],
    give_back: fn(*const ()),
}

impl LocalFree {
    /// An empty cache whose slots go back through `give_back` when the thread exits.
    pub(crate) const fn new(give_back: fn(*const ())) -> Self {
        LocalFree {
            len: Cell::new(0),
            slots: [const { Cell::new(ptr::null()) }; LOCAL_FREE_MAX],
            give_back,
        }
    }

    #[inline(always)]
    fn pop(&self) -> Option<*const ()> {
        let n = self.len.get().checked_sub(1)?;
        let slot = self.slots.get(n)?.get();
        self.len.set(n);
        Some(slot)
    }
}

impl Drop for LocalFree {
    fn drop(&mut self) {
        while let Some(slot) = self.pop() {
            (self.give_back)(slot);
        }
    }
}
impl<T: Send + Sync, L: LocalCache> Slab<T, L> {
    /// A slot from this thread's cache, if the slab has one and it is not empty.
    #[inline(always)]
    pub(super) fn pop_local(&self) -> Option<&Slot<T>> {
        let slot = L::with(LocalFree::pop).flatten()?;
        // SAFETY: `L` is this slab's cache alone (the `LocalCache` contract), and only
        // `push_free` below puts addresses in it: those of this slab's slots, which
        // live as long as the slab.
        Some(unsafe { &*slot.cast::<Slot<T>>() })
    }

    pub(super) fn pop_global(&self) -> Option<usize> {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            let first = (head & 0xffff_ffff) as usize;
            if first == 0 {
                return None;
            }
            let slot = self.slot(first - 1)?;
            // This may read the link of a slot another thread popped meanwhile; the ABA
            // counter in the head then makes our CAS fail, and we retry.
            let next = slot.next_free.load(Ordering::Relaxed) as u64;
            let new = (((head >> 32) + 1) << 32) | next;
            match self.free_head.compare_exchange_weak(
                head,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(first - 1),
                Err(now) => head = now,
            }
        }
    }
}

impl<T, L: LocalCache> Slab<T, L> {
    /// Puts a vacant slot (owned by the caller) on this thread's cache, or the shared
    /// free list.
    #[inline(always)]
    pub(super) fn push_free(&self, slot: &Slot<T>, index: usize) {
        let cached = L::with(|c| {
            let mut n = c.len.get();
            if n >= LOCAL_FREE_MAX {
                // Give half back, so that a thread that only releases (leases acquired
                // elsewhere) does not hoard slots.
                self.give_half_back(c);
                n = c.len.get();
            }
            match c.slots.get(n) {
                Some(cell) => {
                    cell.set(ptr::from_ref(slot).cast());
                    c.len.set(n + 1);
                    true
                }
                None => false,
            }
        });
        if cached != Some(true) {
            self.push_global(index);
        }
    }

    #[cold]
    #[inline(never)]
    fn give_half_back(&self, c: &LocalFree) {
        let keep = LOCAL_FREE_MAX / 2;
        while c.len.get() > keep {
            match c.pop() {
                // SAFETY: an address from this slab's own cache (see `pop_local`).
                Some(slot) => unsafe { self.give_back(slot) },
                None => break,
            }
        }
    }

    /// Puts a slot from this slab's per-thread cache on the shared free list (when
    /// the cache is too full, or its thread exits).
    ///
    /// # Safety
    ///
    /// `slot` is an address taken from this slab's cache `L`.
    pub(crate) unsafe fn give_back(&self, slot: *const ()) {
        // SAFETY: by the caller's contract, the address of one of our slots.
        let index = unsafe { (*slot.cast::<Slot<T>>()).index };
        self.push_global(index as usize);
    }

    /// Puts a vacant slot (owned by the caller) on the shared free list.
    fn push_global(&self, index: usize) {
        let Some(slot) = self.slot(index) else {
            return;
        };
        let mut head = self.free_head.load(Ordering::Relaxed);
        loop {
            slot.next_free
                .store((head & 0xffff_ffff) as u32, Ordering::Relaxed);
            let new = (((head >> 32) + 1) << 32) | (index as u64 + 1);
            match self.free_head.compare_exchange_weak(
                head,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
}
