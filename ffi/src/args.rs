//! Checking the raw arguments C passes in: strings, string and number arrays,
//! versioned structs, buffers and out-pointers; and the strings handed back.

use std::ffi::{CStr, CString, c_char};

use switchboard_core::{Error, Result};

use crate::error::null_arg;

/// A NUL-terminated UTF-8 string argument named `what`.
///
/// # Safety
///
/// `p` must be NULL or point to a NUL-terminated string that stays valid and unchanged
/// for `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null_arg(what));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|e| {
        Error::invalid_argument(format!(
            "{what} must be UTF-8; byte {} is not ({:?})",
            e.valid_up_to(),
            s
        ))
    })
}

/// An optional string argument: NULL is `None`.
///
/// # Safety
///
/// `p` must be NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded caller's contract.
        unsafe { str_arg(p, what) }.map(Some)
    }
}

/// `n` strings at `p` (named `what[i]` in messages); `p` may be NULL when `n` is 0.
///
/// # Safety
///
/// `p` must be NULL with `n` 0, or point to `n` pointers that are NULL (rejected) or
/// NUL-terminated strings valid for `'a`.
pub(crate) unsafe fn str_array<'a>(
    p: *const *const c_char,
    n: usize,
    what: &str,
) -> Result<Vec<&'a str>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    let mut out = Vec::with_capacity(n.min(4096));
    for i in 0..n {
        // SAFETY: `n` readable pointers by the caller's contract.
        let s = unsafe { *p.add(i) };
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        out.push(unsafe { str_arg(s, &format!("{what}[{i}]")) }?);
    }
    Ok(out)
}

/// A copy of the `n` numbers at `p` (`uint64_t` ids, `int64_t` offsets, ...); `p` may
/// be NULL when `n` is 0.
///
/// # Safety
///
/// `p` must be NULL with `n` 0, or point to `n` readable, initialised `T`.
pub(crate) unsafe fn num_array<T: Copy>(p: *const T, n: usize, what: &str) -> Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    if n > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Error::invalid_argument(format!(
            "{what} length {n} is too large"
        )));
    }
    // SAFETY: non-NULL, `n` readable values by the caller's contract, and their size
    // in bytes fits in an isize (checked above).
    Ok(unsafe { std::slice::from_raw_parts(p, n) }.to_vec())
}

/// Fails unless out-pointer `out` (named `what`) is non-NULL. Checked before any work,
/// so that a NULL out-pointer has no side effect.
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        Err(null_arg(what))
    } else {
        Ok(())
    }
}

/// Stores `value` through an out-pointer already checked by [`check_out`].
///
/// # Safety
///
/// `out` must be non-NULL, aligned and writable.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: by the caller's contract; `T` is a plain C value (int, size_t, pointer)
    // so there is nothing to drop at the destination.
    unsafe { out.write(value) }
}

/// Writes `value` through an optional out-pointer (NULL: not wanted).
///
/// # Safety
///
/// `out` must be NULL or aligned and writable.
pub(crate) unsafe fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write_out(out, value) };
    }
}

fn check_len(len: usize, what: &str) -> Result<()> {
    if len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!(
            "{what} length {len} is too large"
        )));
    }
    Ok(())
}

/// A read-only byte buffer argument; `p` may be NULL only when `len` is 0.
///
/// # Safety
///
/// A non-NULL `p` must point to `len` readable bytes that nothing writes for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    check_len(len, what)?;
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    // SAFETY: non-NULL, `len` readable bytes by the caller's contract, len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A writable byte buffer argument; `p` may be NULL only when `len` is 0.
///
/// # Safety
///
/// A non-NULL `p` must point to `len` writable bytes that nothing else accesses for
/// `'a`.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut u8, len: usize, what: &str) -> Result<&'a mut [u8]> {
    check_len(len, what)?;
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    // SAFETY: non-NULL, `len` writable bytes, not aliased, by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// Copies `s` and a NUL into the caller's buffer `buf` of `len` bytes, the way every
/// string-returning call does (`sb_manager_metrics`, `sb_lease_endpoint`, ...):
/// `*written` (if `written` is not NULL) always receives the size `s` needs with its
/// NUL, whether or not it fit; when it does not fit, nothing is copied (`buf[0]` is set
/// to NUL when `len > 0`) and the error is ResourceExhausted naming `what`. `buf` may
/// be NULL when `len` is 0, to ask for the size.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
/// point to a writable `size_t`.
pub(crate) unsafe fn copy_str_out(
    s: &str,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
    what: &str,
) -> Result<()> {
    if buf.is_null() && len > 0 {
        return Err(null_arg("buf"));
    }
    // SAFETY: `len` writable bytes at `buf` (checked non-NULL when len > 0) by the
    // caller's contract.
    let dst = unsafe { bytes_mut(buf.cast::<u8>(), len, "buf") }?;
    let needed = s.len() + 1;
    if !written.is_null() {
        // SAFETY: non-NULL, writable by the caller's contract.
        unsafe { write_out(written, needed) };
    }
    if needed > dst.len() {
        if let Some(first) = dst.first_mut() {
            *first = 0;
        }
        return Err(Error::new(
            switchboard_core::Code::ResourceExhausted,
            format!("{what} needs {needed} bytes with its NUL; buf has {len}"),
        ));
    }
    dst[..s.len()].copy_from_slice(s.as_bytes());
    dst[s.len()] = 0;
    Ok(())
}

/// Copies `s` into the fixed array `dst` as a NUL-terminated string, cut at a UTF-8
/// character boundary so that it fits; the rest of `dst` is zeroed.
pub(crate) fn copy_str<const N: usize>(dst: &mut [c_char; N], s: &str) {
    let mut n = s.len().min(N.saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    dst.fill(0);
    for (d, b) in dst.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = *b as c_char;
    }
}

/// A C string of `s` for a snapshot or a callback; a string with a NUL inside (core
/// accepts any Rust string) is cut at the NUL.
pub(crate) fn c_string(s: &str) -> CString {
    let cut = s.split('\0').next().unwrap_or("");
    CString::new(cut).unwrap_or_default()
}

/// The `struct_size` the caller set in the versioned struct at `out` (already checked
/// non-NULL), named `ty` in the message; InvalidArgument when it is smaller than a
/// `size_t` (not set).
///
/// # Safety
///
/// `out` must be non-NULL and its first `size_t` readable.
pub(crate) unsafe fn struct_room<T>(out: *const T, ty: &str) -> Result<usize> {
    // SAFETY: non-NULL; every versioned struct starts with its `size_t struct_size`,
    // readable by the caller's contract.
    let room = unsafe { out.cast::<usize>().read_unaligned() };
    if room < std::mem::size_of::<usize>() {
        return Err(Error::invalid_argument(format!(
            "struct_size must be set to sizeof({ty}) before the call, got {room}"
        )));
    }
    Ok(room)
}

/// A copy of the caller's input struct `T` at `p` (which starts with its
/// `size_t struct_size`): the first `min(struct_size, sizeof(T))` bytes, the rest
/// zero (NULL pointers, false, 0), so a program built against an older header with a
/// shorter struct works. InvalidArgument when `struct_size` was not set.
///
/// # Safety
///
/// `p` must be non-NULL and point to `struct_size` readable bytes; `T` must be a
/// repr(C) struct of integers, bools and raw pointers (valid when zeroed).
pub(crate) unsafe fn read_versioned<T: Copy>(p: *const T, ty: &str) -> Result<T> {
    // SAFETY: non-NULL; its first size_t is readable by the caller's contract.
    let room = unsafe { struct_room(p, ty) }?;
    let n = room.min(std::mem::size_of::<T>());
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: `n` readable bytes at `p` (the caller's struct_size) and `n` writable in
    // `v`; they cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), v.as_mut_ptr().cast::<u8>(), n) };
    // SAFETY: T is valid zeroed, and the bytes copied are the caller's valid fields.
    Ok(unsafe { v.assume_init() })
}

/// Writes the listed fields of `$src` (a `$ty`) that lie entirely within the first
/// `$room` bytes of `$out: *mut $ty`, field by field (never the padding between them).
/// How versioned structs (`struct_size` first, fields only added at the end) are
/// filled for a caller built against an older or newer header.
macro_rules! write_prefix {
    ($ty:ty, $out:expr, $src:expr, $room:expr, [$($f:ident),* $(,)?]) => {{
        let out: *mut $ty = $out;
        let src: &$ty = $src;
        let room: usize = $room;
        $(
            let end = std::mem::offset_of!($ty, $f) + std::mem::size_of_val(&src.$f);
            if end <= room {
                // SAFETY: the caller guarantees `room` writable bytes at `out`, and
                // this field lies within them; the struct is repr(C).
                unsafe { std::ptr::addr_of_mut!((*out).$f).write_unaligned(src.$f) };
            }
        )*
    }};
}
pub(crate) use write_prefix;
