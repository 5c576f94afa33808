//! Using and removing a handle's value: the state-word protocol. [`Ref`] (one call's
//! use), [`Removed`] and [`Owned`] (a removed handle's value), the inlined fast paths
//! of `insert`, `get`, `remove` and `remove_then`, and finalizing: dropping a value in
//! its slot and recycling the slot under the next generation.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::Ordering;

use switchboard_core::Error;

use super::{CLOSING, LIVE, LocalCache, NoCache, Slab, Slot, USERS, encode};

/// One call's use of a handle's value. While it exists the value stays in place.
pub(crate) struct Ref<'a, T, L: LocalCache = NoCache> {
    slab: &'a Slab<T, L>,
    slot: &'a Slot<T>,
    index: usize,
    _not_send: PhantomData<*const T>,
}

impl<T, L: LocalCache> Deref for Ref<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a `Ref` is one counted user of a LIVE slot; the value was initialised
        // before LIVE was published (Release, observed by our Acquire CAS) and is only
        // dropped once the user count is zero, which cannot happen before this `Ref`
        // is dropped.
        unsafe { (*self.slot.value.get()).assume_init_ref() }
    }
}

impl<T, L: LocalCache> Drop for Ref<'_, T, L> {
    #[inline]
    fn drop(&mut self) {
        let prev = self.slot.state.fetch_sub(1, Ordering::AcqRel);
        if prev & CLOSING != 0 && prev & USERS == 1 {
            // The handle was removed and we were its last user.
            self.slab.finalize(self.slot, self.index, prev - 1);
        }
    }
}

/// The value of a removed handle, for a last look: owned outright when no other call
/// was using it (the usual case; dropped, in its slot, with this), else shared with
/// the calls still using it (dropped by the last of them).
pub(crate) enum Removed<'a, T, L: LocalCache = NoCache> {
    Owned(Owned<'a, T, L>),
    Shared(Ref<'a, T, L>),
}

/// The value of a removed handle that no call uses: the slot is CLOSING with no users
/// and this is its only finalizer. Dropping it drops the value in place and recycles
/// the slot.
pub(crate) struct Owned<'a, T, L: LocalCache = NoCache> {
    slab: &'a Slab<T, L>,
    slot: &'a Slot<T>,
    index: usize,
    state: u64,
    _not_send: PhantomData<*const T>,
}

impl<T, L: LocalCache> Deref for Owned<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the slot is LIVE | CLOSING with no users and we are its only
        // finalizer: the value is initialised and nobody else drops it before we do
        // (in our `drop`).
        unsafe { (*self.slot.value.get()).assume_init_ref() }
    }
}

impl<T, L: LocalCache> Drop for Owned<'_, T, L> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: an `Owned` exists only for a slot that its creator's CAS made
        // CLOSING with no users (see `Slab::remove`), so this is the only finalizer.
        unsafe { self.slab.drop_in_place(self.slot, self.index, self.state) };
    }
}

impl<T, L: LocalCache> Deref for Removed<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match self {
            Removed::Owned(v) => v,
            Removed::Shared(r) => r,
        }
    }
}

/// The state word a live, unused slot of `generation` has; `s ^ live_unused(g)` is
/// below `USERS` exactly when `s` is LIVE, not CLOSING, of generation `g`, and not at
/// the user limit (see [`check_usable`](Slab::check_usable), the slow path's test).
#[inline]
const fn live_unused(generation: u32) -> u64 {
    ((generation as u64) << 32) | LIVE
}
impl<T: Send + Sync, L: LocalCache> Slab<T, L> {
    /// Stores `value` and returns its handle. If the slab is full the value is dropped
    /// and ResourceExhausted returned.
    #[inline(always)]
    pub(crate) fn insert(&self, value: T) -> Result<usize, Error> {
        let (slot, index) = match self.pop_local() {
            Some(slot) => (slot, slot.index as usize),
            None => {
                let index = match self.pop_global() {
                    Some(i) => i,
                    None => self.fresh_index()?,
                };
                match self.slot(index) {
                    Some(slot) => (slot, index),
                    None => return Err(self.no_segment(index)),
                }
            }
        };
        let state = slot.state.load(Ordering::Acquire);
        debug_assert_eq!(state & (LIVE | CLOSING | USERS), 0, "popped slot is vacant");
        // SAFETY: the slot is vacant (not LIVE) and was popped from a free list (or
        // freshly allocated) by this thread alone, so no `Ref` reads the value and no
        // other thread writes it until we publish LIVE below.
        unsafe { (*slot.value.get()).write(value) };
        slot.state.store(state | LIVE, Ordering::Release);
        Ok(encode(self.tag, (state >> 32) as u32, index))
    }

    /// Gets the value behind `handle`, or InvalidHandle.
    #[inline(always)]
    pub(crate) fn get(&self, handle: usize) -> Result<Ref<'_, T, L>, Error> {
        if let Some((slot, index, generation)) = self.lookup(handle) {
            let s = slot.state.load(Ordering::Relaxed);
            if s ^ live_unused(generation) < USERS
                && slot
                    .state
                    .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Ok(self.new_ref(slot, index));
            }
        }
        self.get_slow(handle)
    }

    /// Removes `handle`: from now on it is invalid everywhere. Of several threads
    /// removing the same handle exactly one succeeds; the others get InvalidHandle.
    /// The value is returned for a last look; it is dropped with the [`Removed`], or,
    /// if calls on other threads still use it, when the last of them returns.
    #[inline]
    pub(crate) fn remove(&self, handle: usize) -> Result<Removed<'_, T, L>, Error> {
        if let Some((slot, index, generation)) = self.lookup(handle) {
            let s = slot.state.load(Ordering::Relaxed);
            // Live, right generation, not closing and unused: close it, ours alone.
            if s == live_unused(generation)
                && slot
                    .state
                    .compare_exchange(s, s | CLOSING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Ok(Removed::Owned(self.new_owned(slot, index, s | CLOSING)));
            }
        }
        self.remove_slow(handle)
    }

    /// Removes `handle` like [`remove`](Self::remove), runs `last_look` on the value,
    /// then lets it go: dropped at once when no other call uses it (the usual case),
    /// else by the last of those calls. The release paths use this rather than
    /// `remove`, so that the usual case is one inlined CAS and an in-place drop.
    /// `last_look` must not panic: if it did, the value would be leaked (never dropped)
    /// and its slot never reused, though nothing unsound would follow.
    #[inline(always)]
    pub(crate) fn remove_then(
        &self,
        handle: usize,
        last_look: impl FnOnce(&T),
    ) -> Result<(), Error> {
        if let Some((slot, index, generation)) = self.lookup(handle) {
            let s = slot.state.load(Ordering::Relaxed);
            if s == live_unused(generation)
                && slot
                    .state
                    .compare_exchange(s, s | CLOSING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: our CAS made the slot LIVE | CLOSING with no users: no `Ref`
                // exists or can be made, the value is initialised, and we are its only
                // finalizer.
                unsafe {
                    last_look((*slot.value.get()).assume_init_ref());
                    self.drop_in_place(slot, index, s | CLOSING);
                }
                return Ok(());
            }
        }
        let removed = self.remove_slow(handle)?;
        last_look(&removed);
        Ok(())
    }
    #[inline]
    pub(super) fn new_ref<'a>(&'a self, slot: &'a Slot<T>, index: usize) -> Ref<'a, T, L> {
        Ref {
            slab: self,
            slot,
            index,
            _not_send: PhantomData,
        }
    }

    /// The finalizer of a slot that the caller's CAS made `state`: LIVE | CLOSING
    /// with no users.
    #[inline]
    pub(super) fn new_owned<'a>(
        &'a self,
        slot: &'a Slot<T>,
        index: usize,
        state: u64,
    ) -> Owned<'a, T, L> {
        debug_assert!(state & LIVE != 0 && state & CLOSING != 0 && state & USERS == 0);
        Owned {
            slab: self,
            slot,
            index,
            state,
            _not_send: PhantomData,
        }
    }
}

impl<T, L: LocalCache> Slab<T, L> {
    /// Drops the value of a closed slot where it lies, then recycles the slot under
    /// the next generation (which invalidates every copy of its handles). The slot is
    /// recycled even if the value's drop panics.
    ///
    /// # Safety
    ///
    /// `state` is the slot's current state: LIVE | CLOSING with no users, and the
    /// caller is the slot's only finalizer (it made the state so by its own CAS or
    /// subtraction).
    #[inline(always)]
    unsafe fn drop_in_place(&self, slot: &Slot<T>, index: usize, state: u64) {
        debug_assert!(state & LIVE != 0 && state & CLOSING != 0 && state & USERS == 0);
        let _recycle = Recycle {
            slab: self,
            slot,
            index,
            next: ((state >> 32) as u32).wrapping_add(1),
        };
        // SAFETY: LIVE means initialised; CLOSING with no users means no `Ref` exists
        // or can be made, and the caller is the only finalizer, so nobody else reads
        // or drops the value. The slot is recycled (by `_recycle`) only after this.
        unsafe { (*slot.value.get()).assume_init_drop() };
    }

    /// Called by the last user of a removed handle: drops the value and recycles the
    /// slot.
    #[cold]
    #[inline(never)]
    fn finalize(&self, slot: &Slot<T>, index: usize, state: u64) {
        // SAFETY: the caller's subtraction left the slot CLOSING with no users, which
        // makes it the only finalizer.
        unsafe { self.drop_in_place(slot, index, state) };
    }
}
/// Recycles a slot whose value was dropped: marks it vacant under generation `next`
/// and puts it on a free list. A guard, so that a value whose drop panics still gives
/// its slot back.
struct Recycle<'a, T, L: LocalCache> {
    slab: &'a Slab<T, L>,
    slot: &'a Slot<T>,
    index: usize,
    next: u32,
}

impl<T, L: LocalCache> Drop for Recycle<'_, T, L> {
    #[inline(always)]
    fn drop(&mut self) {
        self.slot
            .state
            .store((self.next as u64) << 32, Ordering::Release);
        self.slab.push_free(self.slot, self.index);
    }
}
