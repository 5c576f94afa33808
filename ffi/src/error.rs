//! Status codes, the calling thread's last error message, and the panic guard that
//! wraps every exported function.

use std::cell::RefCell;
use std::ffi::{c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use switchboard_core::{Code, Error};

/// The result of every fallible switchboard call. `SB_OK` is success; every other
/// value is an error whose details `sb_last_error` returns. The numbers are stable and
/// never reused; new codes may be added.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_status {
    /// Success.
    SB_OK = 0,
    /// A bad configuration key or value, or a bad argument (NULL out-pointer,
    /// string that is not UTF-8, ...).
    SB_INVALID_ARGUMENT = 1,
    /// An unknown id or name.
    SB_NOT_FOUND = 2,
    /// A limit was reached, e.g. the pool's wait queue is full.
    SB_RESOURCE_EXHAUSTED = 3,
    /// The object's state does not allow the call.
    SB_FAILED_PRECONDITION = 4,
    /// The endpoint is down or refused the connection, or the manager/pool is closed.
    SB_UNAVAILABLE = 5,
    /// A deadline passed.
    SB_TIMEOUT = 6,
    /// The call was cancelled.
    SB_CANCELLED = 7,
    /// A NULL, freed, released or wrong-type handle.
    SB_INVALID_HANDLE = 8,
    /// An operating-system error; the message has the errno text.
    SB_IO = 9,
    /// A bug in switchboard (for example a caught panic).
    SB_INTERNAL = 10,
    /// No or bad credentials: the registry's authenticate hook refused the token.
    SB_UNAUTHENTICATED = 11,
    /// Valid credentials, refused action: the authorize hook refused a subscribe.
    SB_PERMISSION_DENIED = 12,
}

impl From<Code> for sb_status {
    fn from(code: Code) -> Self {
        match code {
            Code::InvalidArgument => sb_status::SB_INVALID_ARGUMENT,
            Code::NotFound => sb_status::SB_NOT_FOUND,
            Code::ResourceExhausted => sb_status::SB_RESOURCE_EXHAUSTED,
            Code::FailedPrecondition => sb_status::SB_FAILED_PRECONDITION,
            Code::Unavailable => sb_status::SB_UNAVAILABLE,
            Code::Timeout => sb_status::SB_TIMEOUT,
            Code::Cancelled => sb_status::SB_CANCELLED,
            Code::InvalidHandle => sb_status::SB_INVALID_HANDLE,
            Code::Io => sb_status::SB_IO,
            Code::Internal => sb_status::SB_INTERNAL,
            Code::Unauthenticated => sb_status::SB_UNAUTHENTICATED,
            Code::PermissionDenied => sb_status::SB_PERMISSION_DENIED,
        }
    }
}

impl sb_status {
    /// The core code of an error status; `None` for `SB_OK`.
    pub fn code(self) -> Option<Code> {
        Code::ALL.into_iter().find(|c| *c as i32 == self as i32)
    }
}

fn status_text(status: i32) -> &'static [u8] {
    match status {
        0 => b"success\0",
        1 => b"invalid argument\0",
        2 => b"not found\0",
        3 => b"resource exhausted\0",
        4 => b"failed precondition\0",
        5 => b"unavailable\0",
        6 => b"timed out\0",
        7 => b"cancelled\0",
        8 => b"invalid handle\0",
        9 => b"I/O error\0",
        10 => b"internal error\0",
        11 => b"unauthenticated\0",
        12 => b"permission denied\0",
        _ => b"unknown status\0",
    }
}

/// A short static description of `status` ("timed out", "invalid handle", ...);
/// "unknown status" for a value that is not an `sb_status`. Never NULL; the string
/// must not be freed. The parameter is a plain integer so that any value is safe.
#[unsafe(no_mangle)]
pub extern "C" fn sb_status_str(status: c_int) -> *const c_char {
    let text = catch_unwind(|| status_text(status)).unwrap_or(b"internal error\0");
    text.as_ptr().cast()
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `msg` as the calling thread's last error.
pub(crate) fn set_last_error(msg: String) {
    // try_with: during thread teardown the slot may be gone; then there is no one to
    // read the message anyway.
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut e) = e.try_borrow_mut() {
            *e = msg;
        }
    });
}

/// The calling thread's last error message (for tests).
pub fn last_error() -> String {
    LAST_ERROR
        .try_with(|e| e.borrow().clone())
        .unwrap_or_default()
}

/// Copies the message of the calling thread's most recent failed switchboard call
/// into `buf` as a NUL-terminated string, truncated (at a UTF-8 character boundary)
/// to fit `len` bytes including the NUL. The message is empty when no call on this
/// thread has failed yet; successful calls do not clear it (like `errno`).
///
/// `*written` (if `written` is not NULL) receives the number of bytes copied, not
/// counting the NUL. With `len == 0` nothing is copied.
///
/// Returns `SB_OK`, or `SB_INVALID_ARGUMENT` when `buf` is NULL and `len > 0` (the
/// stored message is left unchanged).
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
/// point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_last_error(
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if buf.is_null() && len > 0 {
            return sb_status::SB_INVALID_ARGUMENT;
        }
        let mut n = 0;
        if len > 0 {
            n = LAST_ERROR
                .try_with(|e| {
                    let e = e.borrow();
                    let mut n = e.len().min(len - 1);
                    while !e.is_char_boundary(n) {
                        n -= 1;
                    }
                    // SAFETY: the caller guarantees `buf` has `len` writable bytes and
                    // `n < len`; the source is our own string, which cannot overlap it.
                    unsafe {
                        std::ptr::copy_nonoverlapping(e.as_ptr(), buf.cast::<u8>(), n);
                        *buf.add(n) = 0;
                    }
                    n
                })
                .unwrap_or_else(|_| {
                    // SAFETY: as above, `len >= 1`.
                    unsafe { *buf = 0 };
                    0
                });
        }
        if !written.is_null() {
            // SAFETY: the caller guarantees a non-NULL `written` is writable.
            unsafe { *written = n };
        }
        sb_status::SB_OK
    }));
    r.unwrap_or(sb_status::SB_INTERNAL)
}

/// Runs the body of exported function `func`: maps an error to its status and records
/// its message (prefixed with `func`) as the thread's last error; maps a panic to
/// `SB_INTERNAL`. Every exported function that returns `sb_status` goes through here.
#[inline]
pub(crate) fn guard<F>(func: &'static str, body: F) -> sb_status
where
    F: FnOnce() -> Result<(), Error>,
{
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => sb_status::SB_OK,
        Ok(Err(e)) => fail(func, &e),
        Err(payload) => {
            let e = Error::from_panic(&*payload);
            // Dropping a panic payload can itself panic; never let that escape.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            fail(func, &e)
        }
    }
}

#[cold]
fn fail(func: &'static str, e: &Error) -> sb_status {
    set_last_error(format!("{func}: {}", e.message()));
    e.code().into()
}

/// InvalidArgument for a NULL pointer argument `what`.
pub(crate) fn null_arg(what: &str) -> Error {
    Error::invalid_argument(format!("{what} must not be NULL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_are_the_core_codes() {
        assert_eq!(sb_status::SB_OK as i32, 0);
        for code in Code::ALL {
            let st = sb_status::from(code);
            assert_eq!(st as i32, code as i32);
            assert_eq!(format!("{st:?}"), code.sb_name());
            assert_eq!(st.code(), Some(code));
            let text = status_text(code as i32);
            assert_eq!(&text[..text.len() - 1], code.description().as_bytes());
        }
        assert_eq!(sb_status::SB_OK.code(), None);
    }

    #[test]
    fn guard_maps_errors_and_panics() {
        let st = guard("sb_test", || Err(Error::timeout("too slow")));
        assert_eq!(st, sb_status::SB_TIMEOUT);
        assert_eq!(last_error(), "sb_test: too slow");
        let st = guard("sb_test", || panic!("boom"));
        assert_eq!(st, sb_status::SB_INTERNAL);
        assert!(last_error().contains("boom"), "{}", last_error());
        assert_eq!(guard("sb_test", || Ok(())), sb_status::SB_OK);
        assert!(last_error().contains("boom"), "success does not clear it");
    }

    #[test]
    fn last_error_truncates_at_char_boundary() {
        set_last_error("héllo".to_string());
        let mut buf = [0x55 as c_char; 8];
        let mut n = 99usize;
        // SAFETY: buf has 3 writable bytes of the 8; n is writable.
        let st = unsafe { sb_last_error(buf.as_mut_ptr(), 3, &mut n) };
        assert_eq!(st, sb_status::SB_OK);
        // "h" + first byte of "é" would fit in 2 bytes, but it must not split 'é'.
        assert_eq!(n, 1);
        assert_eq!(buf[0] as u8, b'h');
        assert_eq!(buf[1], 0);
        assert_eq!(buf[3], 0x55, "nothing written past len");
        // SAFETY: NULL buffer with len 0 writes nothing.
        let st = unsafe { sb_last_error(std::ptr::null_mut(), 0, &mut n) };
        assert_eq!((st, n), (sb_status::SB_OK, 0));
        // SAFETY: a NULL buffer with len > 0 is rejected before any write.
        let st = unsafe { sb_last_error(std::ptr::null_mut(), 4, std::ptr::null_mut()) };
        assert_eq!(st, sb_status::SB_INVALID_ARGUMENT);
        assert_eq!(last_error(), "héllo", "a failed read keeps the message");
    }
}
