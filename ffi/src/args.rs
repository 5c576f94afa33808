//! Checking the raw arguments C passes in: strings, buffers and out-pointers.

use std::ffi::{CStr, c_char};

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
