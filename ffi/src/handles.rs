//! Handles: the values C programs hold are generation-checked ids, not addresses.
//!
//! Each C object type has one [`Slab`]: a growable array of slots that is never moved
//! or freed (segments of doubling size are added as needed, so a slot's address is
//! stable for the life of the process). A handle encodes
//!
//! ```text
//!   bits 63..56  type tag (1 = sb_config, 2 = sb_manager, 3 = sb_pool, 4 = sb_lease,
//!                5 = sb_resource)
//!   bits 55..24  generation of the slot when the handle was made
//!   bits 23..0   slot index
//! ```
//!
//! so it is never NULL, and a handle of the wrong type, a stale handle (its slot was
//! freed, and maybe reused with a newer generation) or a made-up value is detected and
//! reported as `SB_INVALID_HANDLE` instead of being dereferenced. The value also is
//! not a canonical x86-64/aarch64 address, so a C program that dereferences the opaque
//! pointer crashes at once instead of corrupting memory.
//!
//! Each slot has one atomic state word:
//!
//! ```text
//!   bits 63..32  generation
//!   bit  31      LIVE     the slot holds a value
//!   bit  30      CLOSING  the value was removed (freed/released); no new users
//!   bits 29..0   number of calls using the value right now
//! ```
//!
//! A call *gets* the value by a compare-and-swap that checks generation, LIVE and
//! !CLOSING and adds one user ([`Ref`]); it gives it back by subtracting one. Removing
//! a handle (`_free`, `_release`) is a compare-and-swap that sets CLOSING, so exactly
//! one of several racing removals wins and the others see an invalid handle. If no
//! call was using the value (the usual case) the remover owns it at once
//! ([`Removed::Owned`]); otherwise the same CAS also adds the remover as a user
//! ([`Removed::Shared`]) and whoever drops the last user of the CLOSING slot (the
//! remover, or a call still running on another thread) finalizes it. Finalizing drops
//! the value where it lies (it is never moved out: a lease is ~100 bytes), then bumps
//! the generation (which invalidates every copy of the handle once more, as CLOSING
//! already did) and recycles the slot. The slot array of each segment is addressed
//! through a pointer biased by the segment's first index, so that finding a slot is a
//! shift, a bit scan, a load and an add.
//!
//! No call takes a lock: a lookup is one CAS and one atomic subtraction on the
//! handle's own slot. Free slots go on a lock-free (Treiber) stack whose head carries
//! an ABA counter; the lease slab, which is on the acquire/release hot path, first
//! keeps up to 64 free slots per thread ([`LocalFree`]) so that a thread acquiring and
//! releasing in a loop does not touch that shared head at all: a lease's slot is
//! reused by the same thread's next lease, generation-checked like any other.
//!
//! The hot calls (`get`, `remove_then`, `insert` from a cached slot) are written as one
//! inlined fast path that decides with a few compares whether everything is as
//! expected (right tag, a live slot of the right generation, not closing, not at the
//! user limit); anything else (NULL, a wrong type, a stale handle, a race on the state
//! word, a full table) goes to the `#[cold]` slow path, which repeats the full checks
//! and makes exactly the same errors as it always did.
//!
//! Generations are 32 bits: a handle could only be mistaken for a newer one after its
//! slot was reused 2^32 times while the program still held the stale copy.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use switchboard_core::{Code, Error};

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "switchboard's C handles encode 64-bit ids in pointers; 32-bit targets are not supported yet"
);

/// The type tag in the top byte of a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    Config = 1,
    Manager = 2,
    Pool = 3,
    Lease = 4,
    Resource = 5,
}

impl Tag {
    /// The C type name, for messages.
    pub(crate) const fn c_name(self) -> &'static str {
        match self {
            Tag::Config => "sb_config",
            Tag::Manager => "sb_manager",
            Tag::Pool => "sb_pool",
            Tag::Lease => "sb_lease",
            Tag::Resource => "sb_resource",
        }
    }

    fn from_bits(b: usize) -> Option<Tag> {
        match b {
            1 => Some(Tag::Config),
            2 => Some(Tag::Manager),
            3 => Some(Tag::Pool),
            4 => Some(Tag::Lease),
            5 => Some(Tag::Resource),
            _ => None,
        }
    }
}

const TAG_SHIFT: u32 = 56;
const GEN_SHIFT: u32 = 24;
const INDEX_BITS: u32 = 24;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

const LIVE: u64 = 1 << 31;
const CLOSING: u64 = 1 << 30;
const USERS: u64 = (1 << 30) - 1;

/// Slots in segment 0; segment `k` holds `SEG0 << k` slots.
const SEG0: usize = 64;
/// Segments: `SEG0 * (2^NSEG - 1)` slots in all, just under 2^24.
const NSEG: usize = 18;
/// Most slots a slab can hold (live handles of one type at once).
const MAX_SLOTS: usize = SEG0 * ((1 << NSEG) - 1);

const _: () = assert!(MAX_SLOTS <= INDEX_MASK + 1);

/// Encodes a handle value.
fn encode(tag: Tag, generation: u32, index: usize) -> usize {
    ((tag as usize) << TAG_SHIFT) | ((generation as usize) << GEN_SHIFT) | index
}

/// Which segment holds `index`, and where in it.
#[cfg(test)]
fn locate(index: usize) -> (usize, usize) {
    let seg = segment_of(index);
    (seg, index - seg_start(seg))
}

/// Which segment holds `index`.
#[inline(always)]
fn segment_of(index: usize) -> usize {
    let n = index / SEG0 + 1;
    (usize::BITS - 1 - n.leading_zeros()) as usize
}

/// The index of segment `seg`'s first slot.
#[inline(always)]
const fn seg_start(seg: usize) -> usize {
    SEG0 * ((1 << seg) - 1)
}

struct Slot<T> {
    state: AtomicU64,
    /// Free-list link: index + 1 of the next free slot, 0 for none.
    next_free: AtomicU32,
    /// This slot's own index (so that a per-thread cache can keep slot addresses).
    index: u32,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    fn vacant(index: usize) -> Self {
        Slot {
            state: AtomicU64::new(0),
            next_free: AtomicU32::new(0),
            index: index as u32,
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// A table of values of one C type, addressed by handle. `L` says where a thread
/// keeps the free slots it has released (see [`LocalCache`]); by default nowhere.
pub(crate) struct Slab<T, L: LocalCache = NoCache> {
    tag: Tag,
    /// Free-list head: `(aba counter << 32) | (index + 1)`; low half 0 = empty.
    free_head: AtomicU64,
    /// Slots handed out at least once; the next fresh index.
    fresh: AtomicU32,
    /// Segment `k`'s slots; null: not allocated yet. Kept (besides `biased`) as the
    /// owning pointer: for `Drop`, and so that leak checkers see the segments as
    /// reachable.
    segments: [AtomicPtr<Slot<T>>; NSEG],
    /// `segments[k]` less `seg_start(k)` slots, so that the slot of `index` is at
    /// `biased[k] + index` (the pointer is out of its allocation, but only ever offset
    /// back into it with wrapping arithmetic); null: not allocated yet (or not
    /// published yet: `fresh_index` publishes it before handing out an index of `k`).
    biased: [AtomicPtr<Slot<T>>; NSEG],
    _cache: PhantomData<fn() -> L>,
}

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

// SAFETY: the slab hands out `&T` to many threads at once (so `T: Sync`) and moves
// values in from any thread and drops them on any thread (so `T: Send`). Every access
// to a slot's value is ordered by its atomic state word as described in the module
// docs: the value is written only by the thread that popped the vacant slot, before
// LIVE is published with Release; read through `Ref`s (and `Removed`) only between a
// successful Acquire CAS and the matching subtraction; dropped only by the unique
// finalizer (CLOSING and no users), which then bumps the generation so that no new
// `Ref` can be made.
unsafe impl<T: Send + Sync, L: LocalCache> Sync for Slab<T, L> {}
// SAFETY: as above; the slab owns its values, which are `Send`.
unsafe impl<T: Send, L: LocalCache> Send for Slab<T, L> {}

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

impl<T: Send + Sync> Slab<T> {
    /// An empty slab for handles tagged `tag`.
    pub(crate) const fn new(tag: Tag) -> Self {
        Self::with_local_cache(tag)
    }
}

impl<T: Send + Sync, L: LocalCache> Slab<T, L> {
    /// An empty slab for handles tagged `tag` whose freed slots go to the per-thread
    /// cache `L` first.
    pub(crate) const fn with_local_cache(tag: Tag) -> Self {
        Slab {
            tag,
            free_head: AtomicU64::new(0),
            fresh: AtomicU32::new(0),
            segments: [const { AtomicPtr::new(ptr::null_mut()) }; NSEG],
            biased: [const { AtomicPtr::new(ptr::null_mut()) }; NSEG],
            _cache: PhantomData,
        }
    }

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

    /// `get` for every case the fast path did not take: errors, and retries after a
    /// concurrent change of the state word.
    #[cold]
    #[inline(never)]
    fn get_slow(&self, handle: usize) -> Result<Ref<'_, T, L>, Error> {
        let (index, generation) = self.decode(handle)?;
        let slot = self.slot(index).ok_or_else(|| self.stale())?;
        let mut s = slot.state.load(Ordering::Relaxed);
        loop {
            self.check_usable(s, generation)?;
            match slot
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(self.new_ref(slot, index)),
                Err(now) => s = now,
            }
        }
    }

    /// `remove` for every case the fast path did not take: errors, a value still in
    /// use by other calls, retries after a concurrent change of the state word.
    #[cold]
    #[inline(never)]
    fn remove_slow(&self, handle: usize) -> Result<Removed<'_, T, L>, Error> {
        let (index, generation) = self.decode(handle)?;
        let slot = self.slot(index).ok_or_else(|| self.stale())?;
        let mut s = slot.state.load(Ordering::Relaxed);
        loop {
            self.check_usable(s, generation)?;
            let in_use = s & USERS != 0;
            // Unused: close it with no user and own the value now. In use: close it
            // as one more user, so that the last user (maybe us) finalizes.
            let next = if in_use {
                (s | CLOSING) + 1
            } else {
                s | CLOSING
            };
            match slot
                .state
                .compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if in_use => return Ok(Removed::Shared(self.new_ref(slot, index))),
                Ok(_) => return Ok(Removed::Owned(self.new_owned(slot, index, next))),
                Err(now) => s = now,
            }
        }
    }

    fn check_usable(&self, s: u64, generation: u32) -> Result<(), Error> {
        if (s >> 32) as u32 != generation || s & LIVE == 0 || s & CLOSING != 0 {
            return Err(self.stale());
        }
        if s & USERS == USERS {
            return Err(Error::new(
                Code::ResourceExhausted,
                format!("too many concurrent calls on one {}", self.tag.c_name()),
            ));
        }
        Ok(())
    }

    #[inline]
    fn new_ref<'a>(&'a self, slot: &'a Slot<T>, index: usize) -> Ref<'a, T, L> {
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
    fn new_owned<'a>(&'a self, slot: &'a Slot<T>, index: usize, state: u64) -> Owned<'a, T, L> {
        debug_assert!(state & LIVE != 0 && state & CLOSING != 0 && state & USERS == 0);
        Owned {
            slab: self,
            slot,
            index,
            state,
            _not_send: PhantomData,
        }
    }

    fn decode(&self, handle: usize) -> Result<(usize, u32), Error> {
        let name = self.tag.c_name();
        if handle == 0 {
            return Err(Error::new(
                Code::InvalidHandle,
                format!("the {name} handle is NULL"),
            ));
        }
        let tag = handle >> TAG_SHIFT;
        if tag != self.tag as usize {
            let msg = match Tag::from_bits(tag) {
                Some(other) => format!(
                    "expected a {name} handle but got a {} handle",
                    other.c_name()
                ),
                None => format!("{handle:#x} is not a switchboard handle (expected a {name})"),
            };
            return Err(Error::new(Code::InvalidHandle, msg));
        }
        let generation = ((handle >> GEN_SHIFT) & 0xffff_ffff) as u32;
        Ok((handle & INDEX_MASK, generation))
    }

    fn stale(&self) -> Error {
        let name = self.tag.c_name();
        Error::new(
            Code::InvalidHandle,
            format!(
                "the {name} handle is no longer valid (already {}, or never returned by switchboard)",
                match self.tag {
                    Tag::Lease => "released or discarded",
                    Tag::Resource => "detached",
                    _ => "freed",
                }
            ),
        )
    }

    #[cold]
    #[inline(never)]
    fn no_segment(&self, index: usize) -> Error {
        Error::internal(format!("{} slot {index} has no segment", self.tag.c_name()))
    }

    #[cold]
    #[inline(never)]
    fn fresh_index(&self) -> Result<usize, Error> {
        let index = self.fresh.fetch_add(1, Ordering::Relaxed) as usize;
        if index >= MAX_SLOTS {
            // Keep the counter from wrapping; the free list still serves later calls.
            self.fresh.store(MAX_SLOTS as u32, Ordering::Relaxed);
            return Err(Error::new(
                Code::ResourceExhausted,
                format!(
                    "too many live {} handles (at most {MAX_SLOTS}); free some first",
                    self.tag.c_name()
                ),
            ));
        }
        let seg = segment_of(index);
        let start = seg_start(seg);
        let mut base = self.segments[seg].load(Ordering::Acquire);
        if base.is_null() {
            let len = SEG0 << seg;
            let new_segment =
                || -> Box<[Slot<T>]> { (start..start + len).map(Slot::vacant).collect() };
            let mut fresh = new_segment();
            if fresh.as_mut_ptr().wrapping_sub(start).is_null() {
                // Its biased address would read as "not allocated": take another one
                // (a different address, the first being still alive), free the first.
                fresh = new_segment();
            }
            let raw = Box::into_raw(fresh) as *mut Slot<T>;
            base = match self.segments[seg].compare_exchange(
                ptr::null_mut(),
                raw,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => raw,
                Err(installed) => {
                    // Another thread installed this segment first.
                    // SAFETY: `raw` came from `Box::into_raw` of a slice of `len` slots
                    // just above and was never shared.
                    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(raw, len)) });
                    installed
                }
            };
        }
        // Publish the lookup pointer before handing out an index in this segment.
        // Every thread that gets here stores the same value, so the race is harmless.
        if self.biased[seg].load(Ordering::Acquire).is_null() {
            self.biased[seg].store(base.wrapping_sub(start), Ordering::Release);
        }
        Ok(index)
    }

    /// A slot from this thread's cache, if the slab has one and it is not empty.
    #[inline(always)]
    fn pop_local(&self) -> Option<&Slot<T>> {
        let slot = L::with(LocalFree::pop).flatten()?;
        // SAFETY: `L` is this slab's cache alone (the `LocalCache` contract), and only
        // `push_free` below puts addresses in it: those of this slab's slots, which
        // live as long as the slab.
        Some(unsafe { &*slot.cast::<Slot<T>>() })
    }

    fn pop_global(&self) -> Option<usize> {
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
    /// The `(slot, index, generation)` a well-formed handle of this slab's type names,
    /// if its slot exists; `None` for anything else (which the slow paths then
    /// diagnose).
    #[inline(always)]
    fn lookup(&self, handle: usize) -> Option<(&Slot<T>, usize, u32)> {
        if handle >> TAG_SHIFT != self.tag as usize {
            return None;
        }
        let index = handle & INDEX_MASK;
        let slot = self.slot(index)?;
        Some((slot, index, (handle >> GEN_SHIFT) as u32))
    }

    #[inline(always)]
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        if index >= MAX_SLOTS {
            return None;
        }
        let seg = segment_of(index);
        let biased = self.biased[seg].load(Ordering::Acquire);
        if biased.is_null() {
            return None;
        }
        // SAFETY: a non-null biased pointer is `base - seg_start(seg)` slots (wrapping)
        // where `base` came from `Box::into_raw` of a slice of exactly `SEG0 << seg`
        // slots (published with Release, loaded with Acquire) and is never freed while
        // the slab lives; `segment_of` puts `index` in `seg_start(seg)..seg_start(seg) +
        // (SEG0 << seg)`, so `biased + index` is `base + (index - seg_start(seg))`, in
        // bounds, with `base`'s provenance (wrapping arithmetic keeps it).
        Some(unsafe { &*biased.wrapping_add(index) })
    }

    /// Puts a vacant slot (owned by the caller) on this thread's cache, or the shared
    /// free list.
    #[inline(always)]
    fn push_free(&self, slot: &Slot<T>, index: usize) {
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

impl<T, L: LocalCache> Drop for Slab<T, L> {
    fn drop(&mut self) {
        // Only slabs that are not statics (tests) are ever dropped; `&mut self` means
        // no `Ref` exists.
        for (seg, p) in self.segments.iter_mut().enumerate() {
            let base = *p.get_mut();
            if base.is_null() {
                continue;
            }
            let len = SEG0 << seg;
            // SAFETY: see `slot()`: `base` is a segment of `len` slots from
            // `Box::into_raw`.
            let mut slots = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, len)) };
            for slot in slots.iter_mut() {
                if *slot.state.get_mut() & LIVE != 0 {
                    // SAFETY: LIVE means the value is initialised and not dropped yet.
                    unsafe { slot.value.get_mut().assume_init_drop() };
                }
            }
        }
    }
}

/// The numeric value of a handle pointer.
#[inline]
pub(crate) fn addr<T>(p: *const T) -> usize {
    p.addr()
}

/// A handle pointer for an id. The pointer has no provenance and is never
/// dereferenced; it only carries the id across the C boundary.
#[inline]
pub(crate) fn to_ptr<T>(id: usize) -> *mut T {
    ptr::without_provenance_mut(id)
}

#[cfg(test)]
#[path = "handles_tests.rs"]
mod tests;
