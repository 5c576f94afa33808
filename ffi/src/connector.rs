//! `sb_connector`: pools of the program's own objects, made, checked and closed by C
//! function pointers.
//!
//! The program's callbacks and `userdata` live in one [`Callbacks`] behind an `Arc`
//! that the pool's connector and every object it made share; whoever lets go of the
//! last one calls `free_userdata`, so it runs exactly once and only after the last
//! `close`. Each object is an [`Object`] behind an `Arc` (the cheap clonable handle
//! core wants); dropping the last clone calls `close`. Core lets go of a connection
//! by dropping it, so `close` runs once per object, on the thread that lets it go,
//! and never while a `check` of the same object is still running (the check holds a
//! clone).

use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use switchboard_core::{Code, Endpoint, Error, FnConnector, Result};

/// The connect callback of an `sb_connector`. Opens one connection to `endpoint` (one
/// entry of the pool's target, NUL-terminated) and stores the program's object for it
/// in `*out_conn` (not NULL). Returns `SB_OK`, or another `sb_status` value on
/// failure after writing a message (NUL-terminated, at most `errlen` bytes including
/// the NUL) into `errbuf`; that message is what the acquirer reads with
/// `sb_last_error`. The return type is `int32_t`, which is what `sb_status` is in C.
#[allow(non_camel_case_types)]
pub type sb_connect_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        endpoint: *const c_char,
        out_conn: *mut *mut c_void,
        errbuf: *mut c_char,
        errlen: usize,
    ) -> i32,
>;

/// The check callback of an `sb_connector`: `SB_OK` when `conn` is still usable,
/// anything else to have it closed and replaced.
#[allow(non_camel_case_types)]
pub type sb_check_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut c_void) -> i32>;

/// The close callback of an `sb_connector`: releases `conn`. Called exactly once for
/// every object `connect` made.
#[allow(non_camel_case_types)]
pub type sb_close_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut c_void)>;

/// Frees the `userdata` of an `sb_connector`.
#[allow(non_camel_case_types)]
pub type sb_free_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// How a custom pool (`sb_pool_new_custom`) makes, checks and closes the program's
/// own connection objects (a database client, an RPC stub, ...). The pool manages them
/// exactly like sockets: sizes, waiting, lifetimes, `pool.validate_after`, eviction
/// and statistics all apply.
///
/// Threads: `connect` and `check` run on one of switchboard's blocking-pool threads
/// (never on the thread that called `sb_pool_acquire`, never on a runtime worker), so
/// they may block for as long as `pool.connect_timeout` / `pool.validation_timeout`
/// allow. `close` runs on whichever thread lets the connection go: the thread calling
/// `sb_lease_release` / `sb_lease_discard` / `sb_pool_free` / `sb_pool_evict_all` /
/// `sb_pool_resize` / `sb_manager_close` / `sb_manager_free`, the thread calling
/// `sb_pool_acquire` (an object that failed its check on checkout), a runtime worker
/// (idle timeout, lifetime, a failed check in the background upkeep), or a
/// blocking-pool thread (a connect that finished after its acquirer gave up, a check
/// that finished after its deadline; the object is then closed as soon as that
/// callback returns, never while it still runs). `free_userdata` runs on whichever
/// thread lets go of the last reference.
///
/// Calls allowed inside callbacks: any non-blocking switchboard call
/// (`sb_pool_get_stats`, `sb_pool_try_acquire`, `sb_lease_release`, `sb_last_error`, ...).
/// Calls that wait on switchboard's runtime (`sb_pool_acquire` when it has to wait,
/// `sb_pool_warm`, `sb_pool_run_upkeep`, `sb_manager_close`) fail at once with
/// `SB_FAILED_PRECONDITION` inside `connect` and `check` (their threads belong to the
/// runtime), and inside `close` when it runs on a runtime or blocking-pool thread.
/// `sb_manager_free` must not be called from a callback. A callback must not throw a
/// C++ exception or `longjmp` out.
///
/// Objects cross threads: the program promises that every object (and `userdata`)
/// may be used and closed from threads other than the one that made it. Each object
/// is used by one lease (or one check) at a time.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct sb_connector {
    /// Required: opens a connection (see `sb_connect_fn`).
    pub connect: sb_connect_fn,
    /// Optional (NULL: none): checks an idle connection before it is handed out when
    /// it was idle longer than `pool.validate_after` (default 500 ms), and in the
    /// background upkeep. Bounded by `pool.validation_timeout`; a failed or late
    /// check closes the connection.
    pub check: sb_check_fn,
    /// Optional (NULL: none): closes a connection the pool lets go.
    pub close: sb_close_fn,
    /// Passed as the first argument of every callback.
    pub userdata: *mut c_void,
    /// Optional (NULL: none): called exactly once with `userdata` when the library no
    /// longer needs it (see `sb_pool_new_custom`).
    pub free_userdata: sb_free_fn,
}

/// `sb_connect_fn` once known not to be NULL.
type ConnectFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, *mut *mut c_void, *mut c_char, usize) -> i32;
/// `sb_check_fn` once known not to be NULL.
type CheckFn = unsafe extern "C" fn(*mut c_void, *mut c_void) -> i32;

/// The program's pointer. The program promises (see `sb_connector`) that what it points
/// to may be used from any thread.
#[derive(Clone, Copy)]
struct UserPtr(*mut c_void);

// SAFETY: the pointer is only passed back to the program's own callbacks; the header
// documents that the program's objects and userdata may be used from other threads
// (one user of an object at a time, which the pool guarantees for objects).
unsafe impl Send for UserPtr {}
// SAFETY: as above; switchboard never dereferences the pointer.
unsafe impl Sync for UserPtr {}

/// The program's callbacks; dropping the last reference frees the userdata.
struct Callbacks {
    connect: sb_connect_fn,
    check: sb_check_fn,
    close: sb_close_fn,
    userdata: UserPtr,
    free_userdata: sb_free_fn,
}

impl Drop for Callbacks {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the program's function, called once (this is the last reference)
            // with the userdata it gave us; an `extern "C"` function cannot unwind.
            unsafe { free(self.userdata.0) }
        }
    }
}

/// One object made by `connect`; dropping it calls `close`.
struct Object {
    ptr: UserPtr,
    cb: Arc<Callbacks>,
}

impl Drop for Object {
    fn drop(&mut self) {
        if let Some(close) = self.cb.close {
            // SAFETY: the program's function, with the userdata and an object its
            // connect made; this is the object's last reference, so once.
            unsafe { close(self.cb.userdata.0, self.ptr.0) }
        }
    }
}

/// A connection of a custom pool: a shared handle to the program's object.
#[derive(Clone)]
pub(crate) struct CConn(Arc<Object>);

impl CConn {
    /// The program's object.
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.0.ptr.0
    }
}

impl std::fmt::Debug for CConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CConn({:p})", self.0.ptr.0)
    }
}

/// Takes over `userdata` of `c` at once, so that `free_userdata` runs exactly once
/// whatever happens next (on a failure, when the returned value is dropped).
pub(crate) struct Taken(Arc<Callbacks>);

/// Reads the program's description; from here on the library owns `userdata`.
pub(crate) fn take(c: &sb_connector) -> Taken {
    Taken(Arc::new(Callbacks {
        connect: c.connect,
        check: c.check,
        close: c.close,
        userdata: UserPtr(c.userdata),
        free_userdata: c.free_userdata,
    }))
}

impl Taken {
    /// The core connector over these callbacks: connect and check run on the
    /// runtime's blocking pool.
    pub(crate) fn into_connector(self) -> Result<FnConnector<CConn>> {
        let cb = self.0;
        let Some(connect) = cb.connect else {
            return Err(Error::invalid_argument(
                "connector->connect must not be NULL",
            ));
        };
        let for_connect = cb.clone();
        let mut f = FnConnector::blocking(move |ep: &Endpoint| {
            guarded("connect", || run_connect(&for_connect, connect, ep))
        });
        if let Some(check) = cb.check {
            let for_check = cb.clone();
            f = f.with_blocking_check(move |conn: CConn| {
                guarded("check", || run_check(&for_check, check, &conn))
            });
        }
        Ok(f)
    }
}

/// Runs a callback wrapper, turning a panic into an error.
fn guarded<T>(what: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            let e = Error::from_panic(&*payload);
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Err(Error::internal(format!("{what} callback: {}", e.message())))
        }
    }
}

/// The core code of a status a callback returned; unknown values count as
/// Unavailable.
fn code_of(status: i32) -> Code {
    Code::ALL
        .into_iter()
        .find(|c| *c as i32 == status)
        .unwrap_or(Code::Unavailable)
}

const ERRBUF_LEN: usize = 512;

fn run_connect(cb: &Arc<Callbacks>, connect: ConnectFn, ep: &Endpoint) -> Result<CConn> {
    let name = ep.to_string();
    let c_name = CString::new(name.as_str())
        .map_err(|_| Error::invalid_argument(format!("endpoint {name:?} contains a NUL byte")))?;
    let mut out: *mut c_void = std::ptr::null_mut();
    let mut errbuf = [0 as c_char; ERRBUF_LEN];
    // SAFETY: the program's function with its userdata, a NUL-terminated endpoint
    // that outlives the call, a writable out-pointer and a zeroed buffer of ERRBUF_LEN
    // bytes; an `extern "C"` function cannot unwind into us.
    let status = unsafe {
        connect(
            cb.userdata.0,
            c_name.as_ptr(),
            &mut out,
            errbuf.as_mut_ptr(),
            ERRBUF_LEN,
        )
    };
    if status == 0 {
        if out.is_null() {
            return Err(Error::internal(format!(
                "connect to {name}: the connect callback returned SB_OK without setting *out_conn"
            )));
        }
        return Ok(CConn(Arc::new(Object {
            ptr: UserPtr(out),
            cb: cb.clone(),
        })));
    }
    // Whatever the callback wrote, the buffer ends in a NUL.
    errbuf[ERRBUF_LEN - 1] = 0;
    // SAFETY: NUL-terminated within the buffer (just ensured).
    let text = unsafe { CStr::from_ptr(errbuf.as_ptr()) }.to_string_lossy();
    let code = code_of(status);
    let message = if text.trim().is_empty() {
        format!(
            "connect to {name}: the connect callback failed with {} (status {status}) and no message",
            code.sb_name()
        )
    } else {
        format!("connect to {name}: {text}")
    };
    Err(Error::new(code, message))
}

fn run_check(cb: &Arc<Callbacks>, check: CheckFn, conn: &CConn) -> Result<()> {
    // SAFETY: the program's function with its userdata and one of its objects, which
    // stays alive (we hold a clone) for the call.
    let status = unsafe { check(cb.userdata.0, conn.ptr()) };
    if status == 0 {
        Ok(())
    } else {
        Err(Error::new(
            code_of(status),
            format!("the check callback returned {status}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static FREES: AtomicUsize = AtomicUsize::new(0);
    static CLOSES: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn ok_without_object(
        _: *mut c_void,
        _: *const c_char,
        _: *mut *mut c_void,
        _: *mut c_char,
        _: usize,
    ) -> i32 {
        0
    }

    unsafe extern "C" fn fails_silently(
        _: *mut c_void,
        _: *const c_char,
        _: *mut *mut c_void,
        _: *mut c_char,
        _: usize,
    ) -> i32 {
        42 // not an sb_status
    }

    unsafe extern "C" fn fills_errbuf(
        _: *mut c_void,
        _: *const c_char,
        _: *mut *mut c_void,
        errbuf: *mut c_char,
        errlen: usize,
    ) -> i32 {
        // Fills the whole buffer without a NUL: the library must still read safely.
        // SAFETY: errlen writable bytes at errbuf by the contract.
        unsafe { std::ptr::write_bytes(errbuf, b'x', errlen) };
        6
    }

    unsafe extern "C" fn makes_object(
        userdata: *mut c_void,
        _: *const c_char,
        out: *mut *mut c_void,
        _: *mut c_char,
        _: usize,
    ) -> i32 {
        // SAFETY: out is writable by the contract.
        unsafe { *out = userdata };
        0
    }

    unsafe extern "C" fn count_close(_: *mut c_void, _: *mut c_void) {
        CLOSES.fetch_add(1, Ordering::SeqCst);
    }

    unsafe extern "C" fn count_free(_: *mut c_void) {
        FREES.fetch_add(1, Ordering::SeqCst);
    }

    fn callbacks(connect: ConnectFn) -> Arc<Callbacks> {
        Arc::new(Callbacks {
            connect: Some(connect),
            check: None,
            close: Some(count_close),
            userdata: UserPtr(8usize as *mut c_void),
            free_userdata: Some(count_free),
        })
    }

    #[test]
    fn connect_results_become_errors_or_objects() {
        let ep = Endpoint::Named("svc://a".into());
        let e = run_connect(&callbacks(ok_without_object), ok_without_object, &ep).unwrap_err();
        assert_eq!(e.code(), Code::Internal);
        assert!(e.message().contains("without setting *out_conn"), "{e}");

        let e = run_connect(&callbacks(fails_silently), fails_silently, &ep).unwrap_err();
        assert_eq!(
            e.code(),
            Code::Unavailable,
            "unknown statuses count as unavailable"
        );
        assert!(e.message().contains("no message") && e.message().contains("svc://a"));

        let e = run_connect(&callbacks(fills_errbuf), fills_errbuf, &ep).unwrap_err();
        assert_eq!(e.code(), Code::Timeout);
        assert!(e.message().ends_with(&"x".repeat(ERRBUF_LEN - 1)), "{e}");

        let frees = FREES.load(Ordering::SeqCst);
        let closes = CLOSES.load(Ordering::SeqCst);
        let cb = callbacks(makes_object);
        let conn = run_connect(&cb, makes_object, &ep).unwrap();
        assert_eq!(conn.ptr() as usize, 8);
        let copy = conn.clone();
        drop(cb);
        drop(conn);
        assert_eq!(
            CLOSES.load(Ordering::SeqCst),
            closes,
            "a clone is still alive"
        );
        assert_eq!(
            FREES.load(Ordering::SeqCst),
            frees,
            "the object still needs userdata"
        );
        drop(copy);
        assert_eq!(CLOSES.load(Ordering::SeqCst), closes + 1);
        assert_eq!(FREES.load(Ordering::SeqCst), frees + 1);
    }

    #[test]
    fn panics_become_internal_errors() {
        let e = guarded::<()>("connect", || panic!("boom")).unwrap_err();
        assert_eq!(e.code(), Code::Internal);
        assert!(e.message().contains("boom"), "{e}");
        assert_eq!(code_of(5), Code::Unavailable);
        assert_eq!(code_of(1), Code::InvalidArgument);
        assert_eq!(code_of(-1), Code::Unavailable);
    }
}
