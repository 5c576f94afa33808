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
//! call was using the value (the usual case) the remover takes it at once
//! ([`Removed::Owned`]); otherwise the same CAS also adds the remover as a user
//! ([`Removed::Shared`]) and whoever drops the last user of the CLOSING slot (the
//! remover, or a call still running on another thread) takes it. Taking the value moves
//! it out, bumps the generation (which invalidates every copy of the handle) and
//! recycles the slot; the value is dropped after that.
//!
//! No call takes a lock: a lookup is one CAS and one atomic subtraction on the
//! handle's own slot. Free slots go on a lock-free (Treiber) stack whose head carries
//! an ABA counter; the lease slab, which is on the acquire/release hot path, first
//! keeps up to 64 free slots per thread ([`LocalFree`]) so that a thread acquiring and
//! releasing in a loop does not touch that shared head at all.
//!
//! Generations are 32 bits: a handle could only be mistaken for a newer one after its
//! slot was reused 2^32 times while the program still held the stale copy.

use std::cell::{RefCell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::thread::LocalKey;

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
#[inline]
fn locate(index: usize) -> (usize, usize) {
    let n = index / SEG0 + 1;
    let seg = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (seg, index - SEG0 * ((1 << seg) - 1))
}

struct Slot<T> {
    state: AtomicU64,
    /// Free-list link: index + 1 of the next free slot, 0 for none.
    next_free: AtomicU32,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    fn vacant() -> Self {
        Slot {
            state: AtomicU64::new(0),
            next_free: AtomicU32::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// A table of values of one C type, addressed by handle.
pub(crate) struct Slab<T> {
    tag: Tag,
    /// Free-list head: `(aba counter << 32) | (index + 1)`; low half 0 = empty.
    free_head: AtomicU64,
    /// Slots handed out at least once; the next fresh index.
    fresh: AtomicU32,
    segments: [AtomicPtr<Slot<T>>; NSEG],
    /// This thread's cache of free slots, for slabs on a hot path (leases).
    local: Option<&'static LocalFreeKey>,
}

/// Most free slots one thread keeps for one slab before it gives half back.
const LOCAL_FREE_MAX: usize = 64;

/// Free slot indices kept by one thread for one `'static` slab, so that a thread that
/// acquires and releases over and over does not touch the slab's shared free-list
/// head. A slot in a cache is vacant and belongs to that cache alone, exactly like a
/// slot on the shared free list; a thread's cache goes back to the shared list (through
/// `give_back`, which calls [`Slab::push_global`] of the owning slab) when the thread
/// exits.
pub(crate) struct LocalFree {
    indices: Vec<u32>,
    give_back: fn(usize),
}

/// The thread-local key of a slab's per-thread free cache.
pub(crate) type LocalFreeKey = LocalKey<RefCell<LocalFree>>;

impl LocalFree {
    /// An empty cache whose slots go back through `give_back` when the thread exits.
    pub(crate) const fn new(give_back: fn(usize)) -> Self {
        LocalFree {
            indices: Vec::new(),
            give_back,
        }
    }
}

impl Drop for LocalFree {
    fn drop(&mut self) {
        for i in self.indices.drain(..) {
            (self.give_back)(i as usize);
        }
    }
}

// SAFETY: the slab hands out `&T` to many threads at once (so `T: Sync`) and moves
// values in and out from any thread (so `T: Send`). Every access to a slot's value is
// ordered by its atomic state word as described in the module docs: the value is
// written only by the thread that popped the vacant slot, before LIVE is published
// with Release; read through `Ref`s only between a successful Acquire CAS and the
// matching subtraction; moved out only by the unique finalizer (CLOSING and no
// users), which then bumps the generation so that no new `Ref` can be made.
unsafe impl<T: Send + Sync> Sync for Slab<T> {}
// SAFETY: as above; the slab owns its values, which are `Send`.
unsafe impl<T: Send> Send for Slab<T> {}

/// One call's use of a handle's value. While it exists the value stays in place.
pub(crate) struct Ref<'a, T> {
    slab: &'a Slab<T>,
    slot: &'a Slot<T>,
    index: usize,
    _not_send: PhantomData<*const T>,
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a `Ref` is one counted user of a LIVE slot; the value was initialised
        // before LIVE was published (Release, observed by our Acquire CAS) and is only
        // moved out once the user count is zero, which cannot happen before this `Ref`
        // is dropped.
        unsafe { (*self.slot.value.get()).assume_init_ref() }
    }
}

impl<T> Drop for Ref<'_, T> {
    #[inline]
    fn drop(&mut self) {
        let prev = self.slot.state.fetch_sub(1, Ordering::AcqRel);
        if prev & CLOSING != 0 && prev & USERS == 1 {
            // The handle was removed and we were its last user.
            self.slab.finalize(self.slot, self.index, prev - 1);
        }
    }
}

/// The value of a removed handle: owned outright when no other call was using it
/// (the usual case, dropped with this), else shared with the calls still using it
/// (dropped by the last of them).
pub(crate) enum Removed<'a, T> {
    Owned(T),
    Shared(Ref<'a, T>),
}

impl<T> Deref for Removed<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match self {
            Removed::Owned(v) => v,
            Removed::Shared(r) => r,
        }
    }
}

impl<T: Send + Sync> Slab<T> {
    /// An empty slab for handles tagged `tag`.
    pub(crate) const fn new(tag: Tag) -> Self {
        Slab {
            tag,
            free_head: AtomicU64::new(0),
            fresh: AtomicU32::new(0),
            segments: [const { AtomicPtr::new(ptr::null_mut()) }; NSEG],
            local: None,
        }
    }

    /// An empty `'static` slab whose freed slots go to a per-thread cache first.
    pub(crate) const fn with_local_cache(tag: Tag, local: &'static LocalFreeKey) -> Self {
        let mut slab = Self::new(tag);
        slab.local = Some(local);
        slab
    }

    /// Stores `value` and returns its handle. If the slab is full the value is dropped
    /// and ResourceExhausted returned.
    pub(crate) fn insert(&self, value: T) -> Result<usize, Error> {
        let index = match self.pop_free() {
            Some(i) => i,
            None => self.fresh_index()?,
        };
        let slot = self.slot(index).ok_or_else(|| {
            Error::internal(format!("{} slot {index} has no segment", self.tag.c_name()))
        })?;
        let state = slot.state.load(Ordering::Acquire);
        debug_assert_eq!(state & (LIVE | CLOSING | USERS), 0, "popped slot is vacant");
        // SAFETY: the slot is vacant (not LIVE) and was popped from the free list (or
        // freshly allocated) by this thread alone, so no `Ref` reads the value and no
        // other thread writes it until we publish LIVE below.
        unsafe { (*slot.value.get()).write(value) };
        slot.state.store(state | LIVE, Ordering::Release);
        Ok(encode(self.tag, (state >> 32) as u32, index))
    }

    /// Gets the value behind `handle`, or InvalidHandle.
    #[inline]
    pub(crate) fn get(&self, handle: usize) -> Result<Ref<'_, T>, Error> {
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

    /// Removes `handle`: from now on it is invalid everywhere. Of several threads
    /// removing the same handle exactly one succeeds; the others get InvalidHandle.
    /// The value is returned for a last look; it is dropped with the [`Removed`], or,
    /// if calls on other threads still use it, when the last of them returns.
    #[inline]
    pub(crate) fn remove(&self, handle: usize) -> Result<Removed<'_, T>, Error> {
        let (index, generation) = self.decode(handle)?;
        let slot = self.slot(index).ok_or_else(|| self.stale())?;
        let mut s = slot.state.load(Ordering::Relaxed);
        loop {
            self.check_usable(s, generation)?;
            let in_use = s & USERS != 0;
            // Unused: close it with no user and take the value now. In use: close it
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
                Ok(_) => {
                    // SAFETY: our CAS moved the slot from LIVE, unused, to CLOSING,
                    // unused: no `Ref` exists and none can be made, so we are its only
                    // finalizer.
                    return Ok(Removed::Owned(unsafe { self.take(slot, index, next) }));
                }
                Err(now) => s = now,
            }
        }
    }

    #[inline]
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
    fn new_ref<'a>(&'a self, slot: &'a Slot<T>, index: usize) -> Ref<'a, T> {
        Ref {
            slab: self,
            slot,
            index,
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
        let (seg, _) = locate(index);
        if self.segments[seg].load(Ordering::Acquire).is_null() {
            let len = SEG0 << seg;
            let fresh: Box<[Slot<T>]> = (0..len).map(|_| Slot::vacant()).collect();
            let raw = Box::into_raw(fresh) as *mut Slot<T>;
            if self.segments[seg]
                .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Another thread installed this segment first.
                // SAFETY: `raw` came from `Box::into_raw` of a slice of `len` slots just
                // above and was never shared.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(raw, len)) });
            }
        }
        Ok(index)
    }

    #[inline]
    fn pop_free(&self) -> Option<usize> {
        if let Some(local) = self.local {
            let cached = local
                .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.indices.pop()))
                .ok()
                .flatten();
            if let Some(i) = cached {
                return Some(i as usize);
            }
        }
        self.pop_global()
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

impl<T> Slab<T> {
    #[inline]
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        if index >= MAX_SLOTS {
            return None;
        }
        let (seg, off) = locate(index);
        let base = self.segments[seg].load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY: a non-null segment pointer came from `Box::into_raw` of a slice of
        // exactly `SEG0 << seg` slots (published with Release, loaded with Acquire), is
        // never freed while the slab lives, and `off < SEG0 << seg` by `locate`.
        Some(unsafe { &*base.add(off) })
    }

    /// Puts a vacant slot (owned by the caller) on this thread's cache, or the shared
    /// free list.
    #[inline]
    fn push_free(&self, index: usize) {
        if let Some(local) = self.local {
            let cached = local
                .try_with(|c| {
                    let Ok(mut c) = c.try_borrow_mut() else {
                        return false;
                    };
                    if c.indices.len() >= LOCAL_FREE_MAX {
                        // Give half back, so that a thread that only releases (leases
                        // acquired elsewhere) does not hoard slots.
                        let keep = LOCAL_FREE_MAX / 2;
                        for i in c.indices.drain(keep..) {
                            self.push_global(i as usize);
                        }
                    }
                    c.indices.push(index as u32);
                    true
                })
                .unwrap_or(false);
            if cached {
                return;
            }
        }
        self.push_global(index);
    }

    /// Puts a vacant slot (owned by the caller) on the shared free list.
    pub(crate) fn push_global(&self, index: usize) {
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

    /// Moves the value out of a closed slot, recycles the slot under the next
    /// generation (which invalidates every copy of its handles) and returns the value.
    ///
    /// # Safety
    ///
    /// `state` is the slot's current state: LIVE | CLOSING with no users, and the
    /// caller is the slot's only finalizer (it made the state so by its own CAS or
    /// subtraction).
    #[inline]
    unsafe fn take(&self, slot: &Slot<T>, index: usize, state: u64) -> T {
        debug_assert!(state & LIVE != 0 && state & CLOSING != 0 && state & USERS == 0);
        // SAFETY: LIVE means initialised; CLOSING with no users means no `Ref` exists
        // or can be made, and the caller is the only finalizer, so nobody else reads
        // or moves the value.
        let value = unsafe { (*slot.value.get()).assume_init_read() };
        let next_gen = ((state >> 32) as u32).wrapping_add(1);
        slot.state.store((next_gen as u64) << 32, Ordering::Release);
        self.push_free(index);
        value
    }

    /// Called by the last user of a removed handle: takes the value and drops it.
    #[inline]
    fn finalize(&self, slot: &Slot<T>, index: usize, state: u64) {
        // SAFETY: the caller's subtraction left the slot CLOSING with no users, which
        // makes it the only finalizer.
        drop(unsafe { self.take(slot, index, state) });
    }
}

impl<T> Drop for Slab<T> {
    fn drop(&mut self) {
        // Only slabs that are not statics (tests) are ever dropped; `&mut self` means
        // no `Ref` exists.
        for (seg, p) in self.segments.iter_mut().enumerate() {
            let base = *p.get_mut();
            if base.is_null() {
                continue;
            }
            let len = SEG0 << seg;
            // SAFETY: see `slot()`: a segment of `len` slots from `Box::into_raw`.
            let mut slots = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, len)) };
            for slot in slots.iter_mut() {
                if *slot.state.get_mut() & LIVE != 0 {
                    // SAFETY: LIVE means the value is initialised and not moved out.
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
