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
//!
//! The files: this one holds the slab (its segments, slot lookup and growth) and the
//! handle encoding; `access` the state-word protocol (inserting, getting and removing
//! values, and finalizing removed ones); `slow` the `#[cold]` paths of those calls,
//! with their error messages; `free` where vacant slots wait (the shared free list and
//! the per-thread cache).

mod access;
mod free;
mod slow;

pub(crate) use access::{Ref, Removed};
pub(crate) use free::{LocalCache, LocalFree, NoCache};

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
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
mod tests;
