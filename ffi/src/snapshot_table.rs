//! The table of snapshots handed to C and not yet freed (`sb_session_info`,
//! `sb_catalog`, `sb_conn_info`, `sb_conn_list`, `sb_registry_stats`): each module
//! that allocates them keeps one, keyed by address with the snapshot's kind, so that
//! a double free, a made-up pointer or a pointer of another kind is reported
//! (`SB_INVALID_HANDLE`, see [`not_live`]) instead of being undefined behaviour; and
//! [`Strings`], what a snapshot's strings and arrays point into.

use std::collections::HashMap;
use std::ffi::{CString, c_char};
use std::sync::{Mutex, MutexGuard};

use switchboard_core::{Code, Error};

use crate::args::c_string;

/// Addresses of the live snapshots of one module, with their kind `K` (a small enum
/// of that module's snapshot types).
pub(crate) struct SnapshotTable<K> {
    live: Mutex<Option<HashMap<usize, K>>>,
}

impl<K: Copy + PartialEq> SnapshotTable<K> {
    /// An empty table, for a `static`.
    pub(crate) const fn new() -> Self {
        SnapshotTable {
            live: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashMap<usize, K>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `p` as a live snapshot of `kind` (just made by `Box::into_raw`).
    pub(crate) fn remember(&self, p: usize, kind: K) {
        self.lock().get_or_insert_with(HashMap::new).insert(p, kind);
    }

    /// Takes `p` out of the table if it is a live snapshot of `kind`; false (and the
    /// table unchanged) otherwise.
    pub(crate) fn forget(&self, p: usize, kind: K) -> bool {
        let mut live = self.lock();
        let found = match live.as_mut() {
            Some(l) if l.get(&p) == Some(&kind) => l.remove(&p).is_some(),
            _ => false,
        };
        // With nothing live, let go of the table too: a program that freed everything
        // leaves no allocation of ours behind.
        if live.as_ref().is_some_and(|l| l.is_empty()) {
            *live = None;
        }
        found
    }
}

/// The error of a `_free` given a pointer that is not a live snapshot of type `ty`
/// (made by `maker`).
pub(crate) fn not_live(ty: &str, maker: &str) -> Error {
    Error::new(
        Code::InvalidHandle,
        format!("not a live {ty} (freed already, or not made by {maker})"),
    )
}

/// Owns the strings and number and pointer arrays a snapshot points into (their heap
/// buffers do not move when the vectors are moved); kept in the snapshot's box.
#[derive(Default)]
pub(crate) struct Strings {
    strings: Vec<CString>,
    ptrs: Vec<Vec<*const c_char>>,
    nums: Vec<Vec<u64>>,
}

impl Strings {
    pub(crate) fn add(&mut self, s: &str) -> *const c_char {
        let c = c_string(s);
        let p = c.as_ptr();
        self.strings.push(c);
        p
    }

    pub(crate) fn array<'a>(
        &mut self,
        items: impl Iterator<Item = &'a str>,
    ) -> (*const *const c_char, usize) {
        let v: Vec<*const c_char> = items.map(|s| self.add(s)).collect();
        let n = v.len();
        let p = if v.is_empty() {
            std::ptr::null()
        } else {
            v.as_ptr()
        };
        self.ptrs.push(v);
        (p, n)
    }

    pub(crate) fn nums(&mut self, v: Vec<u64>) -> *const u64 {
        let p = if v.is_empty() {
            std::ptr::null()
        } else {
            v.as_ptr()
        };
        self.nums.push(v);
        p
    }
}
