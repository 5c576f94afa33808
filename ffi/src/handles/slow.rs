//! The `#[cold]` paths of `get` and `remove`: every case their fast paths do not
//! take (NULL, a wrong type, a stale handle, a race on the state word, the user
//! limit), with the full checks and the error messages they make.

use std::sync::atomic::Ordering;

use switchboard_core::{Code, Error};

use super::{
    CLOSING, GEN_SHIFT, INDEX_MASK, LIVE, LocalCache, Ref, Removed, Slab, TAG_SHIFT, Tag, USERS,
};

impl<T: Send + Sync, L: LocalCache> Slab<T, L> {
    /// `get` for every case the fast path did not take: errors, and retries after a
    /// concurrent change of the state word.
    #[cold]
    #[inline(never)]
    pub(super) fn get_slow(&self, handle: usize) -> Result<Ref<'_, T, L>, Error> {
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
    pub(super) fn remove_slow(&self, handle: usize) -> Result<Removed<'_, T, L>, Error> {
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
    pub(super) fn no_segment(&self, index: usize) -> Error {
        Error::internal(format!("{} slot {index} has no segment", self.tag.c_name()))
    }
}
