//! The pool's accounting after every kind of exit: a lease dropped, discarded or
//! broken; an acquire timed out, failed or dropped mid-wait; a connect failed; the
//! pool closed with leases out; `evict_all`; a resize down. After each, the books
//! must balance: `size` is the open connections plus the connects in flight, every
//! open connection is idle or leased, the wait queue holds exactly `waiting` callers,
//! and no connect permit (the pool's `connecting`, an endpoint's) is left out.
//!
//! Time that the pool's state machines read (lifetimes, backoff, leak detection) comes
//! from a [`ManualClock`] that never moves here, so no background upkeep can close
//! anything behind the test's back; acquire timeouts are tokio's and real, and short.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{AcquireOptions, Lease, Pool};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::connector::Connector;
use crate::endpoint::Endpoint;
use crate::error::{Code, Error, Result};
use crate::manager::Manager;

/// A connector that opens counted in-memory objects; a test makes connects fail or
/// hang, and marks an object broken so that it cannot be recycled.
#[derive(Clone, Default)]
struct TestConnector {
    opened: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    fail: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
}

struct TestConn {
    broken: bool,
}

impl Connector for TestConnector {
    type Conn = TestConn;

    fn connect(&self, _endpoint: &Endpoint) -> impl Future<Output = Result<TestConn>> + Send {
        let me = self.clone();
        async move {
            if me.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if me.fail.load(Ordering::SeqCst) {
                return Err(Error::unavailable("refused (test)"));
            }
            me.opened.fetch_add(1, Ordering::SeqCst);
            Ok(TestConn { broken: false })
        }
    }

    fn recycle(&self, conn: &mut TestConn) -> bool {
        !conn.broken
    }

    fn close(&self, _conn: TestConn) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Two endpoints (so that the per-endpoint leased counts are kept too), leak
/// detection on (so that the lease map is kept), and `extra` keys over that.
fn pool(extra: &[(&str, &str)]) -> (Manager, Pool<TestConnector>, TestConnector) {
    let mut cfg = Config::new();
    for (k, v) in [
        ("pool.leak_detection_threshold", "1h"),
        ("pool.acquire_timeout", "100ms"),
        ("health.interval", "0"),
        ("breaker.mode", "disabled"),
    ]
    .iter()
    .chain(extra)
    {
        cfg.set(k, v).unwrap();
    }
    let m = Manager::with_manual_clock(&Config::new(), ManualClock::new()).unwrap();
    let conn = TestConnector::default();
    let p = m
        .pool_with(
            "t",
            "tcp://127.0.0.1:1,tcp://127.0.0.1:2",
            &cfg,
            conn.clone(),
        )
        .unwrap();
    (m, p, conn)
}

const NOW: AcquireOptions = AcquireOptions {
    timeout: None,
    priority: 0,
};

/// What the test expects the pool to hold once it has settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Books {
    size: usize,
    idle: usize,
    leased: usize,
    waiting: usize,
}

/// Everything the pool counts, read from its insides.
#[derive(Debug, PartialEq, Eq)]
struct Ledger {
    books: Books,
    queue: usize,
    connecting: usize,
    endpoint_connecting: usize,
    inspecting: usize,
    endpoint_open: usize,
    endpoint_leased: usize,
    lease_records: usize,
    objects_open: usize,
    created_less_closed: u64,
}

fn ledger(p: &Pool<TestConnector>, c: &TestConnector) -> Ledger {
    let inner = &p.inner;
    let s = p.stats();
    let slots = &inner.endpoints.slots;
    let sum = |f: fn(&super::endpoints::Slot) -> usize| slots.iter().map(f).sum::<usize>();
    Ledger {
        books: Books {
            size: s.size,
            idle: s.idle,
            leased: s.leased,
            waiting: s.waiting,
        },
        queue: inner.lock_waiters().queue.len(),
        connecting: inner.connecting.load(Ordering::SeqCst),
        endpoint_connecting: sum(|s| s.connecting.load(Ordering::SeqCst)),
        inspecting: inner.inspecting.load(Ordering::SeqCst),
        endpoint_open: sum(|s| s.open.load(Ordering::SeqCst)),
        endpoint_leased: sum(|s| s.leased.load(Ordering::SeqCst)),
        lease_records: inner
            .leases
            .as_ref()
            .map_or(0, |l| l.lock().unwrap_or_else(|p| p.into_inner()).len()),
        objects_open: c.opened.load(Ordering::SeqCst) - c.closed.load(Ordering::SeqCst),
        created_less_closed: s.created_total - s.closed_total,
    }
}

/// The ledger that balances with `b` and no connect in flight; `granted` of the
/// leased connections are in flight to a waiter that has not taken them yet (counted
/// leased, but recorded for leak detection only once the waiter takes them).
fn balanced(b: Books, granted: usize) -> Ledger {
    let open = b.size;
    Ledger {
        books: b,
        queue: b.waiting,
        connecting: 0,
        endpoint_connecting: 0,
        inspecting: 0,
        endpoint_open: open,
        endpoint_leased: b.leased,
        lease_records: b.leased - granted,
        objects_open: open,
        created_less_closed: open as u64,
    }
}

/// Waits (briefly: background connects may still be finishing) until the pool's
/// ledger balances with `b`, and fails with both ledgers if it does not.
#[track_caller]
fn check(p: &Pool<TestConnector>, c: &TestConnector, b: Books) {
    check_granted(p, c, b, 0);
}

/// [`check`] with `granted` connections in flight to a waiter.
#[track_caller]
fn check_granted(p: &Pool<TestConnector>, c: &TestConnector, b: Books, granted: usize) {
    let want = balanced(b, granted);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = ledger(p, c);
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!("the books do not balance\n got: {got:#?}\nwant: {want:#?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn books(size: usize, idle: usize, leased: usize, waiting: usize) -> Books {
    Books {
        size,
        idle,
        leased,
        waiting,
    }
}

/// Polls `fut` once from this thread (the pool enters its own runtime to poll).
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

type Acquire<'a> = Pin<Box<dyn Future<Output = Result<Lease<TestConnector>>> + 'a>>;

/// An acquire that has registered as a waiter (polled once, still pending).
fn waiting_acquire(p: &Pool<TestConnector>) -> Acquire<'_> {
    let mut fut: Acquire<'_> = Box::pin(p.acquire_with(AcquireOptions {
        timeout: Some(Duration::from_secs(30)),
        priority: 0,
    }));
    assert!(poll_once(fut.as_mut()).is_pending());
    fut
}

#[test]
fn a_dropped_lease_goes_back_idle() {
    let (_m, p, c) = pool(&[]);
    check(&p, &c, books(0, 0, 0, 0));
    let a = p.acquire_blocking(NOW).unwrap();
    let b = p.acquire_blocking(NOW).unwrap();
    check(&p, &c, books(2, 0, 2, 0));
    drop(a);
    check(&p, &c, books(2, 1, 1, 0));
    b.release();
    check(&p, &c, books(2, 2, 0, 0));
    // Served from idle at once, on both fast paths.
    let a = p.try_acquire().unwrap().expect("an idle connection");
    let b = p.try_acquire_ready().unwrap().expect("an idle connection");
    check(&p, &c, books(2, 0, 2, 0));
    assert!(p.try_acquire().unwrap().is_none());
    drop((a, b));
    check(&p, &c, books(2, 2, 0, 0));
    assert_eq!(p.stats().closed_total, 0);
}

#[test]
fn a_discarded_or_broken_lease_closes_and_frees_its_slot() {
    let (_m, p, c) = pool(&[]);
    let a = p.acquire_blocking(NOW).unwrap();
    let mut b = p.acquire_blocking(NOW).unwrap();
    check(&p, &c, books(2, 0, 2, 0));
    a.discard();
    check(&p, &c, books(1, 0, 1, 0));
    b.broken = true;
    drop(b);
    check(&p, &c, books(0, 0, 0, 0));
    let s = p.stats();
    assert_eq!((s.closed_by.discarded, s.closed_by.broken), (1, 1));
}

#[test]
fn a_timed_out_acquire_leaves_no_waiter() {
    let (_m, p, c) = pool(&[("pool.max_size", "1")]);
    let held = p.acquire_blocking(NOW).unwrap();
    let err = p.acquire_blocking(NOW).unwrap_err();
    assert_eq!(err.code(), Code::Timeout);
    check(&p, &c, books(1, 0, 1, 0));
    drop(held);
    check(&p, &c, books(1, 1, 0, 0));
    assert_eq!(p.stats().timed_out_total, 1);
}

#[test]
fn an_acquire_timed_out_behind_a_hanging_connect_frees_the_slot_when_the_connect_gives_up() {
    let (_m, p, c) = pool(&[("pool.connect_timeout", "200ms")]);
    c.hang.store(true, Ordering::SeqCst);
    let err = p.acquire_blocking(NOW).unwrap_err();
    assert_eq!(err.code(), Code::Timeout);
    // The connect outlives the acquire (it has its own timeout), then gives its slot,
    // its permit and its endpoint's count back.
    check(&p, &c, books(0, 0, 0, 0));
    assert!(p.stats().connect_failed_total >= 1);
}

#[test]
fn a_failed_connect_fails_the_waiter_and_frees_everything() {
    let (_m, p, c) = pool(&[]);
    c.fail.store(true, Ordering::SeqCst);
    let err = p.acquire_blocking(NOW).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    check(&p, &c, books(0, 0, 0, 0));
    assert!(p.stats().connect_failed_total >= 1);
    // Once the endpoints may be tried again, the same pool opens normally.
    c.fail.store(false, Ordering::SeqCst);
    p.reset_backoff();
    let l = p.acquire_blocking(NOW).unwrap();
    check(&p, &c, books(1, 0, 1, 0));
    drop(l);
    check(&p, &c, books(1, 1, 0, 0));
}

#[test]
fn an_acquire_dropped_mid_wait_leaves_no_waiter() {
    let (_m, p, c) = pool(&[("pool.max_size", "1")]);
    let held = p.acquire_blocking(NOW).unwrap();
    let fut = waiting_acquire(&p);
    check(&p, &c, books(1, 0, 1, 1));
    drop(fut);
    check(&p, &c, books(1, 0, 1, 0));
    drop(held);
    check(&p, &c, books(1, 1, 0, 0));
}

#[test]
fn a_waiter_takes_the_released_connection() {
    let (_m, p, c) = pool(&[("pool.max_size", "1")]);
    let held = p.acquire_blocking(NOW).unwrap();
    let id = held.id();
    let mut fut = waiting_acquire(&p);
    drop(held);
    check_granted(&p, &c, books(1, 0, 1, 0), 1);
    let lease = match poll_once(fut.as_mut()) {
        Poll::Ready(r) => r.unwrap(),
        Poll::Pending => panic!("the waiter was not woken with the connection"),
    };
    assert_eq!(lease.id(), id);
    check(&p, &c, books(1, 0, 1, 0));
    drop(lease);
    check(&p, &c, books(1, 1, 0, 0));
    // Both acquires waited: the first for the pool's first connect.
    let s = p.stats();
    assert_eq!((s.acquired_waited_total, s.acquired_direct_total), (2, 0));
}

#[test]
fn a_grant_to_an_acquire_dropped_before_it_looked_comes_back() {
    let (_m, p, c) = pool(&[("pool.max_size", "1")]);
    let held = p.acquire_blocking(NOW).unwrap();
    let fut = waiting_acquire(&p);
    // The release hands the connection to the waiter: in flight to it, still leased.
    drop(held);
    check_granted(&p, &c, books(1, 0, 1, 0), 1);
    // The waiter goes away without looking: the grant's drop gives it back.
    drop(fut);
    check(&p, &c, books(1, 1, 0, 0));
    assert_eq!(p.stats().closed_total, 0);
}

#[test]
fn an_acquire_dropped_while_its_connect_hangs_leaves_only_the_connect() {
    let (_m, p, c) = pool(&[("pool.connect_timeout", "200ms")]);
    c.hang.store(true, Ordering::SeqCst);
    let fut = waiting_acquire(&p);
    let l = ledger(&p, &c);
    assert_eq!((l.books.waiting, l.queue), (1, 1), "{l:#?}");
    drop(fut);
    // The connect in flight holds a slot until it times out, then nothing is left.
    check(&p, &c, books(0, 0, 0, 0));
}

#[test]
fn closing_with_leases_out_closes_idle_now_and_each_lease_on_return() {
    let (_m, p, c) = pool(&[("pool.max_size", "3")]);
    let a = p.acquire_blocking(NOW).unwrap();
    let b = p.acquire_blocking(NOW).unwrap();
    p.acquire_blocking(NOW).unwrap().release();
    check(&p, &c, books(3, 1, 2, 0));
    p.close();
    check(&p, &c, books(2, 0, 2, 0));
    assert_eq!(p.try_acquire().unwrap_err().code(), Code::Unavailable);
    assert_eq!(
        p.acquire_blocking(NOW).unwrap_err().code(),
        Code::Unavailable
    );
    drop(a);
    check(&p, &c, books(1, 0, 1, 0));
    b.discard();
    check(&p, &c, books(0, 0, 0, 0));
    let s = p.stats();
    assert_eq!((s.closed_by.closed, s.closed_by.discarded), (2, 1));
}

#[test]
fn closing_fails_the_waiters() {
    let (_m, p, c) = pool(&[("pool.max_size", "1")]);
    let held = p.acquire_blocking(NOW).unwrap();
    let mut fut = waiting_acquire(&p);
    check(&p, &c, books(1, 0, 1, 1));
    p.close();
    check(&p, &c, books(1, 0, 1, 0));
    match poll_once(fut.as_mut()) {
        Poll::Ready(Err(e)) => assert_eq!(e.code(), Code::Unavailable),
        Poll::Ready(Ok(_)) => panic!("a closed pool granted a connection"),
        Poll::Pending => panic!("the waiter of a closed pool still waits"),
    }
    drop(fut);
    drop(held);
    check(&p, &c, books(0, 0, 0, 0));
    assert_eq!(p.stats().closed_by.closed, 1);
}

#[test]
fn evict_all_closes_idle_now_and_leased_on_return() {
    let (_m, p, c) = pool(&[]);
    let a = p.acquire_blocking(NOW).unwrap();
    let b = p.acquire_blocking(NOW).unwrap();
    let l = p.acquire_blocking(NOW).unwrap();
    drop((a, b));
    check(&p, &c, books(3, 2, 1, 0));
    p.evict_all();
    check(&p, &c, books(1, 0, 1, 0));
    drop(l);
    check(&p, &c, books(0, 0, 0, 0));
    assert_eq!(p.stats().closed_by.evicted, 3);
    // New connections belong to the new epoch and stay.
    p.acquire_blocking(NOW).unwrap().release();
    check(&p, &c, books(1, 1, 0, 0));
}

#[test]
fn resizing_down_closes_surplus_idle_now_and_surplus_leased_on_return() {
    let (_m, p, c) = pool(&[("pool.max_size", "4")]);
    let leases: Vec<_> = (0..4).map(|_| p.acquire_blocking(NOW).unwrap()).collect();
    let mut leases = leases.into_iter();
    for l in leases.by_ref().take(2) {
        drop(l);
    }
    check(&p, &c, books(4, 2, 2, 0));
    p.resize(1, 0).unwrap();
    check(&p, &c, books(2, 0, 2, 0));
    assert_eq!(p.stats().closed_by.overflow, 2);
    drop(leases.next());
    check(&p, &c, books(1, 0, 1, 0));
    drop(leases.next());
    check(&p, &c, books(1, 1, 0, 0));
    let s = p.stats();
    assert_eq!((s.max_size, s.closed_by.overflow), (1, 3));
    // Growing again lets a second caller in.
    p.resize(2, 0).unwrap();
    let (a, b) = (
        p.acquire_blocking(NOW).unwrap(),
        p.acquire_blocking(NOW).unwrap(),
    );
    check(&p, &c, books(2, 0, 2, 0));
    drop((a, b));
    check(&p, &c, books(2, 2, 0, 0));
}
