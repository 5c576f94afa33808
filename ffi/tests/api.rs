//! The C ABI driven from Rust: the same calls a C program makes, against a loopback
//! echo server started by the test. The C programs in tests/c cover the same ground
//! from C (and under valgrind); these run with `cargo test`.

use std::ffi::{CStr, CString, c_char};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::ptr::{self, null, null_mut};
use std::time::{Duration, Instant};

use switchboard::*;

use sb_status::*;

fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn last() -> String {
    let mut buf = [0 as c_char; 512];
    let mut n = 0usize;
    // SAFETY: buf has 512 writable bytes; n is writable.
    let st = unsafe { sb_last_error(buf.as_mut_ptr(), buf.len(), &mut n) };
    assert_eq!(st, SB_OK);
    // SAFETY: sb_last_error NUL-terminates within the buffer.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(s.len(), n);
    s
}

struct Fixture {
    manager: *mut sb_manager,
    pool: *mut sb_pool,
}

impl Fixture {
    fn new(name: &str, target: &str, settings: &[(&str, &str)]) -> Fixture {
        let mut cfg = null_mut();
        let mut manager = null_mut();
        let mut pool = null_mut();
        // SAFETY: every pointer passed is valid for the call; strings are CStrings
        // that outlive the calls.
        unsafe {
            assert_eq!(sb_config_new(&mut cfg), SB_OK);
            for (k, v) in settings {
                assert_eq!(sb_config_set(cfg, c(k).as_ptr(), c(v).as_ptr()), SB_OK);
            }
            assert_eq!(sb_manager_new(null(), &mut manager), SB_OK);
            let st = sb_pool_new(
                manager,
                c(name).as_ptr(),
                c(target).as_ptr(),
                cfg,
                &mut pool,
            );
            assert_eq!(st, SB_OK, "{}", last());
            assert_eq!(sb_config_free(cfg), SB_OK);
        }
        Fixture { manager, pool }
    }

    fn acquire(&self, timeout_ms: i64) -> Result<*mut sb_lease, sb_status> {
        let mut lease = null_mut();
        // SAFETY: `lease` is a writable out-pointer.
        match unsafe { sb_pool_acquire(self.pool, timeout_ms, &mut lease) } {
            SB_OK => Ok(lease),
            st => {
                assert!(lease.is_null(), "out written only on success");
                Err(st)
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        assert_eq!(sb_pool_free(self.pool), SB_OK);
        assert_eq!(sb_manager_close(self.manager, 1000), SB_OK);
        assert_eq!(sb_manager_free(self.manager), SB_OK);
    }
}

fn round_trip(lease: *mut sb_lease, msg: &[u8]) -> Vec<u8> {
    // SAFETY: msg/buf are valid for their lengths; out-pointers are writable.
    unsafe {
        assert_eq!(sb_lease_send_all(lease, msg.as_ptr(), msg.len()), SB_OK);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < msg.len() {
            let mut n = 0;
            assert_eq!(
                sb_lease_recv(lease, buf.as_mut_ptr(), buf.len(), &mut n),
                SB_OK
            );
            assert!(n > 0, "peer closed");
            got.extend_from_slice(&buf[..n]);
        }
        got
    }
}

#[test]
fn round_trip_release_and_reuse() {
    let port = echo_server();
    let f = Fixture::new("echo", &format!("tcp://127.0.0.1:{port}"), &[]);
    let lease = f.acquire(5000).unwrap();
    let mut fd1 = -1;
    // SAFETY: fd1 is writable.
    assert_eq!(unsafe { sb_lease_fd(lease, &mut fd1) }, SB_OK);
    assert!(fd1 >= 0);
    assert_eq!(round_trip(lease, b"hello\n"), b"hello\n");
    assert_eq!(sb_lease_release(lease), SB_OK);

    let mut again = null_mut();
    // SAFETY: `again` is writable.
    assert_eq!(unsafe { sb_pool_try_acquire(f.pool, &mut again) }, SB_OK);
    assert!(!again.is_null(), "the released connection is idle");
    let mut fd2 = -1;
    // SAFETY: fd2 is writable.
    assert_eq!(unsafe { sb_lease_fd(again, &mut fd2) }, SB_OK);
    assert_eq!(fd1, fd2, "same connection reused");
    assert_ne!(again, lease, "a new handle for the new lease");
    assert_eq!(round_trip(again, b"again\n"), b"again\n");
    assert_eq!(sb_lease_discard(again), SB_OK);
    // Discarded: nothing idle now.
    let mut none = ptr::dangling_mut();
    // SAFETY: `none` is writable.
    assert_eq!(unsafe { sb_pool_try_acquire(f.pool, &mut none) }, SB_OK);
    assert!(none.is_null());
}

#[test]
fn timeout_when_pool_is_full() {
    let port = echo_server();
    let f = Fixture::new(
        "tiny",
        &format!("tcp://127.0.0.1:{port}"),
        &[("pool.max_size", "1")],
    );
    let held = f.acquire(5000).unwrap();
    let t0 = Instant::now();
    assert_eq!(f.acquire(100), Err(SB_TIMEOUT));
    assert!(t0.elapsed() < Duration::from_secs(10));
    let msg = last();
    assert!(msg.starts_with("sb_pool_acquire: "), "{msg}");
    assert!(msg.contains("\"tiny\""), "{msg}");
    assert_eq!(f.acquire(0), Err(SB_TIMEOUT), "0 means do not wait");
    assert_eq!(sb_lease_release(held), SB_OK);
    let l = f.acquire(0).unwrap();
    assert_eq!(sb_lease_release(l), SB_OK);
}

#[test]
fn server_down_names_the_address() {
    let port = dead_port();
    let target = format!("tcp://127.0.0.1:{port}");
    let f = Fixture::new("down", &target, &[]);
    let st = f.acquire(5000).unwrap_err();
    assert!(st == SB_UNAVAILABLE || st == SB_IO, "{st:?}");
    assert!(last().contains(&format!("127.0.0.1:{port}")), "{}", last());
}

#[test]
fn bad_config_names_the_key() {
    let mut cfg = null_mut();
    // SAFETY: valid out-pointer and C strings.
    unsafe {
        assert_eq!(sb_config_new(&mut cfg), SB_OK);
        let st = sb_config_set(cfg, c"pool.max_sizes".as_ptr(), c"4".as_ptr());
        assert_eq!(st, SB_INVALID_ARGUMENT);
        assert!(last().contains("\"pool.max_sizes\""), "{}", last());
        let st = sb_config_set(cfg, c"pool.max_size".as_ptr(), c"many".as_ptr());
        assert_eq!(st, SB_INVALID_ARGUMENT);
        assert!(
            last().contains("pool.max_size must be an integer"),
            "{}",
            last()
        );
        let st = sb_config_set(cfg, null(), c"4".as_ptr());
        assert_eq!(st, SB_INVALID_ARGUMENT);
        let bad = [0xffu8 as c_char, 0];
        let st = sb_config_set(cfg, bad.as_ptr(), c"4".as_ptr());
        assert_eq!(st, SB_INVALID_ARGUMENT);
        assert!(last().contains("UTF-8"), "{}", last());
        assert_eq!(sb_config_free(cfg), SB_OK);
        assert_eq!(sb_config_free(cfg), SB_INVALID_HANDLE);
        assert_eq!(sb_config_free(null_mut()), SB_OK);
    }
}

#[test]
fn misuse_is_invalid_handle() {
    let port = echo_server();
    let f = Fixture::new("misuse", &format!("tcp://127.0.0.1:{port}"), &[]);
    let lease = f.acquire(5000).unwrap();
    assert_eq!(sb_lease_release(lease), SB_OK);
    assert_eq!(sb_lease_release(lease), SB_INVALID_HANDLE, "double release");
    assert!(last().contains("no longer valid"), "{}", last());
    assert_eq!(sb_lease_discard(lease), SB_INVALID_HANDLE);
    let mut fd = 0;
    let mut n = 0;
    let mut buf = [0u8; 4];
    // SAFETY: all out-pointers and buffers are valid; handles are checked.
    unsafe {
        assert_eq!(sb_lease_fd(lease, &mut fd), SB_INVALID_HANDLE);
        assert_eq!(sb_lease_fd(null(), &mut fd), SB_INVALID_HANDLE);
        assert!(last().contains("NULL"), "{}", last());
        assert_eq!(
            sb_lease_recv(lease, buf.as_mut_ptr(), buf.len(), &mut n),
            SB_INVALID_HANDLE
        );
        // A pool handle where a lease is expected, and the other way round.
        assert_eq!(sb_lease_release(f.pool.cast()), SB_INVALID_HANDLE);
        assert!(last().contains("got a sb_pool handle"), "{}", last());
        let mut l = null_mut();
        assert_eq!(
            sb_pool_acquire(f.manager.cast(), 0, &mut l),
            SB_INVALID_HANDLE
        );
        assert_eq!(sb_pool_acquire(null_mut(), 0, &mut l), SB_INVALID_HANDLE);
        // A made-up pointer value.
        assert_eq!(
            sb_lease_release(0x1234_5678usize as *mut sb_lease),
            SB_INVALID_HANDLE
        );
        // NULL out-pointer: rejected, no lease leaks.
        assert_eq!(sb_pool_acquire(f.pool, 0, null_mut()), SB_INVALID_ARGUMENT);
    }
    // A freed pool.
    let mut p2 = null_mut();
    // SAFETY: valid strings and out-pointer.
    unsafe {
        let st = sb_pool_new(
            f.manager,
            c"second".as_ptr(),
            c(&format!("tcp://127.0.0.1:{port}")).as_ptr(),
            null(),
            &mut p2,
        );
        assert_eq!(st, SB_OK);
        assert_eq!(sb_pool_free(p2), SB_OK);
        let mut l = null_mut();
        assert_eq!(sb_pool_acquire(p2, 0, &mut l), SB_INVALID_HANDLE);
        assert_eq!(sb_pool_free(p2), SB_INVALID_HANDLE);
    }
}

#[test]
fn racing_releases_one_wins() {
    let port = echo_server();
    let f = Fixture::new("race", &format!("tcp://127.0.0.1:{port}"), &[]);
    for _ in 0..200 {
        let lease = f.acquire(5000).unwrap() as usize;
        let results: Vec<sb_status> = std::thread::scope(|s| {
            let a = s.spawn(|| sb_lease_release(lease as *mut sb_lease));
            let b = s.spawn(|| sb_lease_release(lease as *mut sb_lease));
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        let ok = results.iter().filter(|s| **s == SB_OK).count();
        let invalid = results.iter().filter(|s| **s == SB_INVALID_HANDLE).count();
        assert_eq!((ok, invalid), (1, 1), "{results:?}");
    }
}

#[test]
fn closed_manager_fails_cleanly() {
    let port = echo_server();
    let target = c(&format!("tcp://127.0.0.1:{port}"));
    let f = Fixture::new("closing", target.to_str().unwrap(), &[]);
    let lease = f.acquire(5000).unwrap();
    assert_eq!(sb_lease_release(lease), SB_OK);
    assert_eq!(sb_manager_close(f.manager, 1000), SB_OK);
    assert_eq!(sb_manager_close(f.manager, 1000), SB_OK, "idempotent");
    assert_eq!(f.acquire(0), Err(SB_UNAVAILABLE));
    let mut p = null_mut();
    // SAFETY: valid strings and out-pointer.
    let st = unsafe { sb_pool_new(f.manager, c"late".as_ptr(), target.as_ptr(), null(), &mut p) };
    assert_eq!(st, SB_UNAVAILABLE);
    assert!(last().contains("closed"), "{}", last());
}

#[test]
fn status_strings_and_version() {
    // SAFETY: sb_status_str and sb_version return static NUL-terminated strings.
    unsafe {
        assert_eq!(
            CStr::from_ptr(sb_status_str(SB_TIMEOUT as i32)),
            c"timed out"
        );
        assert_eq!(CStr::from_ptr(sb_status_str(0)), c"success");
        assert_eq!(CStr::from_ptr(sb_status_str(-7)), c"unknown status");
        assert_eq!(CStr::from_ptr(sb_status_str(1 << 20)), c"unknown status");
        assert_eq!(
            CStr::from_ptr(sb_version()).to_str().unwrap(),
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// C's event kinds are core's, numbered by position in `EventKind::ALL` from 1, with
/// the same names (the resource kinds, 17-19, included).
#[test]
fn event_kinds_follow_core() {
    use switchboard_core::EventKind;
    for (i, k) in EventKind::ALL.iter().enumerate() {
        let n = i as i32 + 1;
        // SAFETY: a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(sb_event_kind_str(n)) };
        assert_eq!(name.to_str().unwrap(), k.as_str(), "kind {n}");
        assert_eq!(sb_event_kind::from(*k) as i32, n, "{k:?}");
    }
    let next = EventKind::ALL.len() as i32 + 1;
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(sb_event_kind_str(next)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown");
}
