//! Sizing, lifetimes, validation, upkeep and operations on live pools. Time moves
//! through an injected clock, not sleeps.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{EchoServer, Ping, cfg, wait_until};
use switchboard_core::clock::ManualClock;
use switchboard_core::{AcquireOptions, Code, Config, Endpoint, FnConnector, Manager};

fn manual() -> (Manager, ManualClock) {
    let clock = ManualClock::new();
    let m = Manager::with_clock(&Config::new(), Arc::new(clock.clone())).unwrap();
    (m, clock)
}

const NOW: AcquireOptions = AcquireOptions {
    timeout: None,
    priority: 0,
};

#[test]
fn a_connection_past_its_lifetime_is_replaced() {
    let server = EchoServer::start();
    let (m, clock) = manual();
    let pool = m
        .pool("p", &server.target(), &cfg(&[("pool.max_lifetime", "10s")]))
        .unwrap();
    let first = pool.acquire_blocking(NOW).unwrap().id();
    clock.advance(Duration::from_secs(9)); // within even the most jittered lifetime
    assert_eq!(pool.acquire_blocking(NOW).unwrap().id(), first);
    clock.advance(Duration::from_secs(2));
    let second = pool.acquire_blocking(NOW).unwrap().id();
    assert_ne!(second, first);
    assert_eq!(pool.stats().closed_by.lifetime, 1);
}

#[test]
fn idle_connections_beyond_min_idle_time_out() {
    let server = EchoServer::start();
    let (m, clock) = manual();
    let pool = m
        .pool(
            "p",
            &server.target(),
            &cfg(&[
                ("pool.max_size", "3"),
                ("pool.min_idle", "1"),
                ("pool.idle_timeout", "1m"),
            ]),
        )
        .unwrap();
    let leases: Vec<_> = (0..3)
        .map(|_| pool.acquire_blocking(NOW).unwrap())
        .collect();
    drop(leases);
    assert_eq!(pool.stats().idle, 3);
    clock.advance(Duration::from_secs(30));
    pool.run_upkeep_blocking().unwrap();
    assert_eq!(pool.stats().idle, 3, "not idle long enough yet");
    clock.advance(Duration::from_secs(31));
    pool.run_upkeep_blocking().unwrap();
    let s = pool.stats();
    assert_eq!((s.idle, s.size, s.closed_by.idle), (1, 1, 2), "{s:?}");
}

#[test]
fn min_idle_is_kept_warm_and_warm_opens_to_it() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    // In the background, by the pool's own upkeep.
    let pool = m
        .pool("bg", &server.target(), &cfg(&[("pool.min_idle", "2")]))
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || pool.stats().idle == 2));
    // On demand.
    let other = EchoServer::start();
    let pool = m
        .pool(
            "warm",
            &other.target(),
            &cfg(&[("pool.min_idle", "3"), ("pool.max_connecting", "1")]),
        )
        .unwrap();
    let opened = pool.warm_blocking().unwrap();
    let s = pool.stats();
    assert!(s.idle >= 3, "{s:?}");
    assert!(opened <= 3);
    assert!(wait_until(Duration::from_secs(5), || other.accepted() == 3));
    // A broken one is replaced by the upkeep.
    let l = pool.acquire_blocking(NOW).unwrap();
    l.discard();
    pool.run_upkeep_blocking().unwrap();
    assert!(wait_until(Duration::from_secs(10), || pool.stats().idle == 3));
}

#[test]
fn overflow_connections_close_on_return() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "p",
            &server.target(),
            &cfg(&[("pool.max_size", "1"), ("pool.max_overflow", "1")]),
        )
        .unwrap();
    let a = pool.acquire_blocking(NOW).unwrap();
    let b = pool.acquire_blocking(NOW).unwrap();
    assert_eq!(pool.stats().size, 2);
    let err = pool
        .acquire_blocking(AcquireOptions {
            timeout: Some(Duration::from_millis(50)),
            priority: 0,
        })
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Timeout,
        "max_size + max_overflow is the cap"
    );
    drop(a);
    drop(b);
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.closed_by.overflow), (1, 1, 1), "{s:?}");
}

#[test]
fn the_probe_keeps_good_connections_and_replaces_bad_ones() {
    let good = EchoServer::start_with(Ping::Pong);
    let m = Manager::new(&Config::new()).unwrap();
    let probe = [
        ("pool.validate_after", "0"),
        ("probe.send", "PING\\r\\n"),
        ("probe.expect", "+PONG"),
    ];
    let pool = m.pool("good", &good.target(), &cfg(&probe)).unwrap();
    let first = pool.acquire_blocking(NOW).unwrap();
    let id = first.id();
    drop(first);
    // Probed on checkout: same connection, and the whole answer line was consumed.
    let l = pool.acquire_blocking(NOW).unwrap();
    assert_eq!(l.id(), id);
    l.send_all(b"hi\n").unwrap();
    let mut buf = [0u8; 16];
    let n = l.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi\n", "no probe bytes left on the stream");
    drop(l);
    assert_eq!(pool.stats().probe_failed_total, 0);

    let bad = EchoServer::start_with(Ping::Err);
    let pool = m.pool("bad", &bad.target(), &cfg(&probe)).unwrap();
    let id = pool.acquire_blocking(NOW).unwrap().id();
    let next = pool.acquire_blocking(NOW).unwrap();
    assert_ne!(
        next.id(),
        id,
        "the connection that failed its probe was closed"
    );
    // Probed on checkout, or by the upkeep's first pass if that ran while it was idle
    // (then the checkout opened a new one while the probe was still running): either
    // way one probe failed and closed it.
    let settled = wait_until(Duration::from_secs(5), || {
        let s = pool.stats();
        (s.probe_failed_total, s.closed_by.broken) == (1, 1)
    });
    assert!(settled, "{:?}", pool.stats());
}

#[test]
fn resize_grows_for_waiters_and_shrinks_surplus() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("p", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    let held = pool.acquire_blocking(NOW).unwrap();
    let p = pool.clone();
    let waiter = std::thread::spawn(move || p.acquire_blocking(NOW).map(|l| l.id()));
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 1));
    pool.resize(3, 0).unwrap();
    let got = waiter.join().unwrap().unwrap();
    assert_ne!(
        got,
        held.id(),
        "the waiter got a new connection, not the held one"
    );
    drop(held);
    let three: Vec<_> = (0..3)
        .map(|_| pool.acquire_blocking(NOW).unwrap())
        .collect();
    drop(three);
    assert_eq!(pool.stats().size, 3);
    pool.resize(1, 0).unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.size, s.max_size, s.closed_by.overflow),
        (1, 1, 2),
        "{s:?}"
    );
    let e = pool.resize(0, 0).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pool.max_size"));
    let e = pool.resize(2, 5).unwrap_err();
    assert!(e.message().contains("pool.min_idle"), "{e}");
}

#[test]
fn evict_all_closes_idle_now_and_leased_on_return() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("p", &server.target(), &Config::new()).unwrap();
    let leases: Vec<_> = (0..3)
        .map(|_| pool.acquire_blocking(NOW).unwrap())
        .collect();
    let ids: Vec<u64> = leases.iter().map(|l| l.id()).collect();
    let mut leases = leases.into_iter();
    let kept = leases.next().unwrap();
    drop(leases.collect::<Vec<_>>());
    pool.evict_all();
    assert_eq!(pool.stats().closed_by.evicted, 2);
    drop(kept);
    let s = pool.stats();
    assert_eq!((s.closed_by.evicted, s.size), (3, 0));
    let fresh = pool.acquire_blocking(NOW).unwrap();
    assert!(!ids.contains(&fresh.id()));
}

/// HikariCP's spike test: many callers at once against a slow connect end with few
/// connections, because returned connections serve waiters while a few new ones open.
#[test]
fn a_demand_spike_opens_only_what_demand_needs() {
    let opened = Arc::new(AtomicUsize::new(0));
    let o = opened.clone();
    let connector = FnConnector::new(move |_ep: &Endpoint| {
        let o = o.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok(o.fetch_add(1, Ordering::SeqCst))
        })
    });
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool_with(
            "spike",
            "slow://db",
            &cfg(&[("pool.max_size", "50"), ("pool.min_idle", "5")]),
            connector,
        )
        .unwrap();
    // The upkeep starts warming at once too; warm() returns when min_idle is reached.
    assert!(pool.warm_blocking().unwrap() <= 5);
    assert_eq!(pool.stats().idle, 5);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let p = pool.clone();
            std::thread::spawn(move || {
                let l = p.acquire_blocking(NOW).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                drop(l);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let created = pool.stats().created_total;
    assert!(created < 25, "a spike of 50 opened {created} connections");
    assert_eq!(pool.stats().acquired_total, 50);
}

#[test]
fn a_custom_connector_manages_program_objects() {
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    let next = Arc::new(AtomicUsize::new(100));
    let connector = FnConnector::blocking(move |ep: &Endpoint| {
        assert_eq!(ep.to_string(), "db://primary");
        Ok(next.fetch_add(1, Ordering::SeqCst))
    })
    .with_blocking_check(|conn: usize| {
        if conn % 2 == 0 {
            Ok(())
        } else {
            Err(switchboard_core::Error::unavailable("odd connections fail"))
        }
    })
    .with_close(move |_conn| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool_with(
            "db",
            "db://primary",
            &cfg(&[("pool.validate_after", "0")]),
            connector,
        )
        .unwrap();
    let l = pool.acquire_blocking(NOW).unwrap();
    assert_eq!(*l, 100);
    drop(l);
    // 100 passes its check and is reused.
    assert_eq!(*pool.acquire_blocking(NOW).unwrap(), 100);
    pool.evict_all();
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    let l = pool.acquire_blocking(NOW).unwrap();
    assert_eq!(*l, 101);
    drop(l);
    // 101 fails its check on the next checkout: closed and replaced by 102.
    assert_eq!(*pool.acquire_blocking(NOW).unwrap(), 102);
    assert_eq!(closed.load(Ordering::SeqCst), 2);
    m.close(Duration::from_secs(1)).unwrap();
    assert_eq!(
        closed.load(Ordering::SeqCst),
        3,
        "close closes every connection"
    );
}

#[test]
fn one_pool_type_serves_sockets_and_program_objects() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let sockets = m
        .pool_any::<u32>("s", &server.target(), &Config::new(), None)
        .unwrap();
    let l = sockets.acquire_blocking(NOW).unwrap();
    l.socket().unwrap().send_all(b"x\n").unwrap();
    let e = l.custom().unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = m
        .pool_any::<u32>("bad", "db://x", &Config::new(), None)
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let objects = m
        .pool_any(
            "o",
            "db://x",
            &Config::new(),
            Some(FnConnector::blocking(|_ep: &Endpoint| Ok(7u32))),
        )
        .unwrap();
    let l = objects.acquire_blocking(NOW).unwrap();
    assert_eq!(*l.custom().unwrap(), 7);
    assert!(l.socket().is_err());
}

/// The next leak event, skipping the others (connection and endpoint states).
fn leak_event(m: &Manager, timeout: Duration) -> Option<switchboard_core::Event> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let e = m.poll_event(left)?;
        if e.kind == switchboard_core::EventKind::LeakSuspected {
            return Some(e);
        }
    }
}

#[test]
fn a_lease_held_too_long_is_reported_once_with_its_age() {
    let server = EchoServer::start();
    let (m, clock) = manual();
    let pool = m
        .pool(
            "leaky",
            &server.target(),
            &cfg(&[("pool.leak_detection_threshold", "2s")]),
        )
        .unwrap();
    let held = pool.acquire_blocking(NOW).unwrap();
    let quick = pool.acquire_blocking(NOW).unwrap();
    drop(quick);
    clock.advance(Duration::from_secs(1));
    pool.run_upkeep_blocking().unwrap();
    assert!(
        leak_event(&m, Duration::ZERO).is_none(),
        "not held long enough yet"
    );
    clock.advance(Duration::from_secs(2));
    pool.run_upkeep_blocking().unwrap();
    let ev = leak_event(&m, Duration::from_secs(1)).expect("a leak event");
    assert_eq!(ev.kind, switchboard_core::EventKind::LeakSuspected);
    assert_eq!(ev.pool, "leaky");
    assert_eq!(ev.endpoint.as_deref(), Some(server.target().as_str()));
    assert_eq!(ev.connection_id, Some(held.id()));
    assert_eq!(ev.age, Some(Duration::from_secs(3)));
    assert!(ev.message.contains("leased for 3s"), "{}", ev.message);
    clock.advance(Duration::from_secs(5));
    pool.run_upkeep_blocking().unwrap();
    assert!(leak_event(&m, Duration::ZERO).is_none(), "reported once");

    // The callback receives them instead of the queue once set.
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    m.set_event_callback(Some(Arc::new(move |e: &switchboard_core::Event| {
        if e.kind == switchboard_core::EventKind::LeakSuspected {
            s.fetch_add(1, Ordering::SeqCst);
        }
    })));
    drop(held);
    let again = pool.acquire_blocking(NOW).unwrap();
    clock.advance(Duration::from_secs(3));
    pool.run_upkeep_blocking().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(m.poll_event(Duration::ZERO).is_none());
    drop(again);
}

#[test]
fn min_idle_above_max_size_is_rejected_at_creation() {
    let m = Manager::new(&Config::new()).unwrap();
    let e = m
        .pool(
            "p",
            "tcp://127.0.0.1:9",
            &cfg(&[("pool.max_size", "2"), ("pool.min_idle", "3")]),
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pool.min_idle"), "{e}");
}

#[test]
fn warm_counts_connects_in_flight_and_does_not_overshoot() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    for i in 0..10 {
        let pool = m
            .pool(
                &format!("w{i}"),
                &server.target(),
                &cfg(&[("pool.max_size", "5"), ("pool.min_idle", "3")]),
            )
            .unwrap();
        pool.warm_blocking().unwrap();
        // The upkeep's connects and warm's together stop at min_idle.
        assert!(wait_until(Duration::from_secs(5), || pool
            .stats()
            .connecting
            == 0));
        let s = pool.stats();
        assert_eq!((s.idle, s.size), (3, 3), "{s:?}");
    }
}

#[test]
fn try_acquire_ready_never_probes() {
    let good = EchoServer::start_with(Ping::Pong);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "p",
            &good.target(),
            &cfg(&[
                ("pool.validate_after", "0"),
                ("probe.send", "PING\\r\\n"),
                ("probe.expect", "+PONG"),
            ]),
        )
        .unwrap();
    drop(pool.acquire_blocking(NOW).unwrap());
    assert!(
        pool.try_acquire_ready().unwrap().is_none(),
        "it needs a probe"
    );
    assert_eq!(pool.stats().idle, 1, "left in the pool");
    assert!(
        pool.try_acquire().unwrap().is_some(),
        "try_acquire probes it"
    );
}

#[test]
fn an_object_made_after_connect_timeout_is_closed_not_lost() {
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    let connector = FnConnector::blocking(|_ep: &Endpoint| {
        std::thread::sleep(Duration::from_millis(150));
        Ok(1u8)
    })
    .with_close(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool_with(
            "slow",
            "db://x",
            &cfg(&[("pool.connect_timeout", "20ms")]),
            connector,
        )
        .unwrap();
    let e = pool.acquire_blocking(NOW).unwrap_err();
    assert_eq!(e.code(), Code::Timeout, "{e}");
    assert!(e.message().contains("pool.connect_timeout"), "{e}");
    assert!(
        wait_until(Duration::from_secs(5), || closed.load(Ordering::SeqCst)
            == 1),
        "the late object was closed"
    );
    assert_eq!(pool.stats().size, 0);
}

#[test]
fn a_closed_pool_lets_go_of_its_connector_when_its_last_lease_returns() {
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    let alive = Arc::new(());
    let witness = alive.clone();
    let connector = FnConnector::blocking(move |_ep: &Endpoint| {
        let _ = &witness; // dropped with the connector
        Ok(5u8)
    })
    .with_close(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool_with("gone", "db://x", &Config::new(), connector)
        .unwrap();
    // An unnamed handle dropped: the manager still holds the pool.
    drop(pool.clone());
    assert_eq!(m.pool_stats().len(), 1);
    let lease = pool.acquire_blocking(NOW).unwrap();
    pool.close();
    drop(pool);
    assert!(m.pool_stats().is_empty(), "the manager forgot it at once");
    assert_eq!(
        Arc::strong_count(&alive),
        2,
        "a lease keeps the connector alive"
    );
    drop(lease);
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    // The upkeep task may hold the pool for a moment; then the connector is dropped.
    assert!(wait_until(Duration::from_secs(5), || Arc::strong_count(
        &alive
    ) == 1));
    // The name is free again.
    let _again = m
        .pool_with(
            "gone",
            "db://x",
            &Config::new(),
            FnConnector::blocking(|_ep: &Endpoint| Ok(1u8)),
        )
        .unwrap();
}

#[test]
fn closing_the_manager_lets_go_of_the_event_callback() {
    let m = Manager::new(&Config::new()).unwrap();
    let witness = Arc::new(());
    let w = witness.clone();
    m.set_event_callback(Some(Arc::new(move |_e: &switchboard_core::Event| {
        let _ = &w;
    })));
    assert_eq!(Arc::strong_count(&witness), 2);
    m.close(Duration::from_secs(1)).unwrap();
    assert_eq!(Arc::strong_count(&witness), 1);
}

#[test]
fn queue_mode_picks_the_oldest_or_the_most_recent_idle_connection() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    for (mode, want_second) in [("fifo", false), ("lifo", true)] {
        let pool = m
            .pool(mode, &server.target(), &cfg(&[("pool.queue_mode", mode)]))
            .unwrap();
        let a = pool.acquire_blocking(NOW).unwrap();
        let b = pool.acquire_blocking(NOW).unwrap();
        let (ida, idb) = (a.id(), b.id());
        drop(a);
        drop(b);
        let next = pool.acquire_blocking(NOW).unwrap().id();
        let want = if want_second { idb } else { ida };
        assert_eq!(next, want, "queue_mode = {mode}");
    }
    let e = Config::new().set("pool.queue_mode", "random").unwrap_err();
    assert!(e.message().contains("one of fifo | lifo"), "{e}");
}

#[test]
fn closing_the_manager_wakes_a_thread_waiting_for_events() {
    let m = Manager::new(&Config::new()).unwrap();
    let m2 = m.clone();
    let poller = std::thread::spawn(move || m2.poll_event(Duration::from_secs(600)));
    std::thread::sleep(Duration::from_millis(50));
    m.close(Duration::from_secs(1)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(poller.join().unwrap());
    });
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the poller woke up");
    assert!(got.is_none());
}

/// A connection popped for a probe must come back even when the call fails before the
/// probe starts (here: a blocking acquire refused on an async runtime thread).
#[test]
fn a_refused_call_returns_the_connection_it_popped_for_a_probe() {
    let good = EchoServer::start_with(Ping::Pong);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "p",
            &good.target(),
            &cfg(&[
                ("pool.validate_after", "0"),
                ("probe.send", "PING\\r\\n"),
                ("probe.expect", "+PONG"),
            ]),
        )
        .unwrap();
    drop(pool.acquire_blocking(NOW).unwrap());
    assert_eq!((pool.stats().size, pool.stats().idle), (1, 1));
    let p = pool.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(async move { p.acquire_blocking(NOW) })
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.leased), (1, 1, 0), "{s:?}");
    assert_eq!(pool.acquire_blocking(NOW).unwrap().id(), 1);
}

/// `pool.liveness_bypass`: within the window after its return a connection is handed
/// out without the FIN/RST check (so a socket the server reset meanwhile reaches the
/// caller); past it, the check runs and closes the reset socket. Off by default.
#[test]
fn the_liveness_check_is_skipped_only_within_the_bypass_window() {
    let server = EchoServer::start();
    let proxy = common::fault_proxy::FaultProxy::start(server.port);
    let (m, clock) = manual();
    let reset_and_settle = || {
        assert!(proxy.command("reset_existing").starts_with("OK"));
        // Let the RST cross loopback (this is not a timing claim: the assertions below
        // hold however long it takes, as long as it has arrived).
        std::thread::sleep(Duration::from_millis(100));
    };
    // Default: every checkout checks.
    let checked = m.pool("checked", &proxy.target(), &Config::new()).unwrap();
    drop(checked.acquire_blocking(NOW).unwrap());
    reset_and_settle();
    assert!(
        checked.try_acquire().unwrap().is_none(),
        "a reset socket was handed out"
    );
    assert_eq!(checked.stats().closed_by.broken, 1);
    // A bypass window: a reset socket returned just now is handed out unchecked ...
    let hot = m
        .pool(
            "hot",
            &proxy.target(),
            &cfg(&[("pool.liveness_bypass", "1s")]),
        )
        .unwrap();
    let first = hot.acquire_blocking(NOW).unwrap();
    let id = first.id();
    drop(first);
    reset_and_settle();
    clock.advance(Duration::from_millis(900));
    let again = hot
        .try_acquire()
        .unwrap()
        .expect("within the window: no check");
    assert_eq!(again.id(), id);
    drop(again); // returned: its window starts again
    assert_eq!(hot.stats().closed_by.broken, 0);
    // ... and checked once the window has passed.
    clock.advance(Duration::from_millis(1001));
    assert!(
        hot.try_acquire().unwrap().is_none(),
        "past the window: checked"
    );
    assert_eq!(hot.stats().closed_by.broken, 1);
    // Bad values name the key and what is accepted.
    let err = Config::new()
        .set("pool.liveness_bypass", "soon")
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("pool.liveness_bypass"), "{err}");
}

/// A connector whose connects take `delay` and count themselves in `opened`.
fn slow_counting(delay: Duration, opened: &Arc<AtomicUsize>) -> FnConnector<usize> {
    let o = opened.clone();
    FnConnector::new(move |_ep: &Endpoint| {
        let o = o.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(o.fetch_add(1, Ordering::SeqCst))
        })
    })
}

/// HikariCP's spike (as in `a_demand_spike_opens_only_what_demand_needs`): 50 callers
/// at once, a 150 ms connect, min_idle 5, max_size 50, each lease held 20 ms.
/// Returns the connections opened beyond min_idle.
fn spike(extra: &[(&str, &str)]) -> usize {
    let opened = Arc::new(AtomicUsize::new(0));
    let m = Manager::new(&Config::new()).unwrap();
    let mut c = vec![("pool.max_size", "50"), ("pool.min_idle", "5")];
    c.extend_from_slice(extra);
    let pool = m
        .pool_with(
            "spike",
            "slow://db",
            &cfg(&c),
            slow_counting(Duration::from_millis(150), &opened),
        )
        .unwrap();
    assert!(pool.warm_blocking().unwrap() <= 5);
    assert!(wait_until(Duration::from_secs(5), || pool
        .stats()
        .connecting
        == 0));
    assert_eq!(pool.stats().created_total, 5);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let p = pool.clone();
            std::thread::spawn(move || {
                let l = p.acquire_blocking(NOW).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                drop(l);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Connects still in flight when the last caller left count too.
    assert!(wait_until(Duration::from_secs(5), || pool
        .stats()
        .connecting
        == 0));
    let s = pool.stats();
    assert_eq!(s.acquired_total, 50);
    s.created_total as usize - 5
}

/// Issue 13's target: with `pool.scale_ahead` on, HikariCP's spike still ends with at
/// most 5 connections beyond min_idle (HikariCP's own result), because the connection
/// opened ahead takes a place under `max_connecting` like any other.
#[test]
fn a_demand_spike_with_scale_ahead_opens_at_most_five_beyond_min_idle() {
    // 0.1: five leased of 50 already reach it, so it is at work from the first callers.
    let ahead = spike(&[("pool.scale_ahead", "0.1")]);
    let off = spike(&[]);
    eprintln!("spike: opened beyond min_idle: scale_ahead off {off}, on {ahead}");
    assert!(ahead <= 5, "with scale_ahead: {ahead} beyond min_idle");
    assert!(off <= 5, "without scale_ahead: {off} beyond min_idle");
}

/// Takes an idle connection without waiting (the fast path, which scales ahead).
fn take_idle(
    pool: &switchboard_core::Pool<FnConnector<usize>>,
) -> switchboard_core::Lease<FnConnector<usize>> {
    pool.try_acquire().unwrap().expect("an idle connection")
}

/// max_size 4, scale_ahead 0.5: one leased of 4 opens nothing; the second lease
/// reaches 0.5 and the third connection opens with nobody waiting for it; taking that
/// one opens the fourth; then max_size is reached.
#[test]
fn scale_ahead_opens_the_next_connection_before_anyone_waits() {
    let opened = Arc::new(AtomicUsize::new(0));
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool_with(
            "ahead",
            "slow://db",
            &cfg(&[("pool.max_size", "4"), ("pool.scale_ahead", "0.5")]),
            slow_counting(Duration::from_millis(30), &opened),
        )
        .unwrap();
    let a = pool.acquire_blocking(NOW).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pool.stats().created_total, 1, "one leased of 4: below 0.5");
    let b = pool.acquire_blocking(NOW).unwrap();
    // Two leased of 4: the third opens ahead, and nobody waits for it.
    let mut max_waiting = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        let s = pool.stats();
        max_waiting = max_waiting.max(s.waiting);
        s.idle == 1
    }));
    let s = pool.stats();
    assert_eq!((s.created_total, s.size, s.leased), (3, 3, 2), "{s:?}");
    assert_eq!(max_waiting, 0);
    // Taken without waiting; three leased of 4: the fourth opens ahead.
    let c = take_idle(&pool);
    assert!(wait_until(Duration::from_secs(5), || pool.stats().idle == 1));
    // Four leased of 4: max_size reached, nothing more.
    let d = take_idle(&pool);
    std::thread::sleep(Duration::from_millis(100));
    let s = pool.stats();
    assert_eq!(
        (s.created_total, s.size, s.leased, s.waiting),
        (4, 4, 4, 0),
        "{s:?}"
    );
    assert_eq!(s.acquired_waited_total, 2, "only the first two waited");
    drop((a, b, c, d));
}

#[test]
fn scale_ahead_is_off_by_default() {
    let opened = Arc::new(AtomicUsize::new(0));
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool_with(
            "on_demand",
            "slow://db",
            &cfg(&[("pool.max_size", "4")]),
            slow_counting(Duration::from_millis(30), &opened),
        )
        .unwrap();
    assert_eq!(pool.settings().scale_ahead, 0.0);
    let a = pool.acquire_blocking(NOW).unwrap();
    let b = pool.acquire_blocking(NOW).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let s = pool.stats();
    assert_eq!((s.created_total, s.size, s.idle), (2, 2, 0), "{s:?}");
    assert_eq!(opened.load(Ordering::SeqCst), 2);
    assert!(pool.try_acquire().unwrap().is_none());
    drop((a, b));
}

/// The warming state in the health record: a pool keeping min_idle 3 over a slow
/// connect is seen warming (connects in flight, fewer than 3 open), then warm; an
/// endpoint with nothing open and nothing opening is cold.
#[test]
fn an_endpoint_warms_up_to_min_idle_and_is_cold_with_nothing_open() {
    use switchboard_core::Warming;
    let opened = Arc::new(AtomicUsize::new(0));
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool_with(
            "warming",
            "slow://db",
            &cfg(&[("pool.min_idle", "3"), ("pool.max_connecting", "1")]),
            slow_counting(Duration::from_millis(100), &opened),
        )
        .unwrap();
    let mut seen: Vec<(Warming, usize)> = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        let e = &pool.health().endpoints[0];
        if seen.last().map(|s| s.0) != Some(e.warming) {
            seen.push((e.warming, e.open_connections));
        }
        e.warming == Warming::Warm
    }));
    // A first read may come before the upkeep's first connect has started.
    if seen[0].0 == Warming::Cold {
        seen.remove(0);
    }
    let states: Vec<Warming> = seen.iter().map(|s| s.0).collect();
    assert_eq!(states, [Warming::Warming, Warming::Warm], "{seen:?}");
    assert_eq!(seen[1].1, 3, "warm only once min_idle is open: {seen:?}");
    assert_eq!(pool.stats().idle, 3);
    // The same in every face's name.
    assert_eq!(pool.stats().endpoints[0].warming.as_str(), "warm");

    // No min_idle and nothing leased yet: cold; one connection open: warm; its
    // last connection gone: cold again.
    let cold = m
        .pool_with(
            "cold",
            "slow://db",
            &Config::new(),
            slow_counting(Duration::from_millis(10), &opened),
        )
        .unwrap();
    let h = cold.health();
    assert_eq!(h.endpoints[0].warming, Warming::Cold);
    assert_eq!(h.endpoints[0].warming.as_str(), "cold");
    let l = cold.acquire_blocking(NOW).unwrap();
    assert_eq!(cold.health().endpoints[0].warming, Warming::Warm);
    l.discard();
    assert_eq!(cold.health().endpoints[0].warming, Warming::Cold);
}
