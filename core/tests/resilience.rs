//! Breakers, backoff, health and multi-endpoint pools under real faults: a loopback
//! echo server behind the fault proxy (tests/fixtures/fault_proxy.py). Waits are
//! bounded; nothing asserts how fast something happened, only that it happened within
//! its deadline plus a generous margin.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::fault_proxy::FaultProxy;
use common::{EchoServer, cfg, dead_port, wait_until};
use switchboard_core::clock::ManualClock;
use switchboard_core::{
    AcquireOptions, BoxFuture, BreakerOp, BreakerState, Code, Config, ConnState, Event, EventKind,
    FnConnector, Manager,
};

fn within(ms: u64) -> AcquireOptions {
    AcquireOptions {
        timeout: Some(Duration::from_millis(ms)),
        priority: 0,
    }
}

/// Events of `kind` polled within `limit` (others are skipped).
fn events_of(m: &Manager, kind: EventKind, limit: Duration) -> Vec<Event> {
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    while let Some(e) = m.poll_event(end.saturating_duration_since(Instant::now())) {
        if e.kind == kind {
            out.push(e);
        }
    }
    out
}

fn echo_once(lease: &switchboard_core::Lease<switchboard_core::TcpConnector>) -> Duration {
    let t = Instant::now();
    lease.send_all(b"hi\n").expect("send");
    let mut buf = [0u8; 8];
    let n = lease.recv(&mut buf).expect("recv");
    assert_eq!(&buf[..n], b"hi\n");
    t.elapsed()
}

#[test]
fn endpoint_down_at_start_fails_within_the_timeout_then_fails_fast() {
    let m = Manager::new(&Config::new()).unwrap();
    let target = format!("tcp://127.0.0.1:{}", dead_port());
    let pool = m.pool("down", &target, &Config::new()).expect("builds");
    let t = Instant::now();
    let err = pool.acquire_blocking(within(2000)).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // Backing off now: the next one fails at once and says why.
    let err = pool.acquire_blocking(within(2000)).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("backing off"), "{err}");
    assert!(err.message().contains("refused"), "{err}");
    let h = pool.health();
    assert_eq!(h.endpoints[0].state, ConnState::Reconnecting);
    assert_eq!(h.failures, 1);
    assert!(h.endpoints[0].backoff_remaining.is_some());
    let states: Vec<(Option<&str>, Option<&str>)> =
        events_of(&m, EventKind::EndpointState, Duration::from_millis(200))
            .iter()
            .map(|e| (e.old_state, e.new_state))
            .collect();
    assert_eq!(
        states,
        vec![
            (Some("idle"), Some("connecting")),
            (Some("connecting"), Some("reconnecting"))
        ]
    );
}

#[test]
fn blackhole_acquire_and_recv_honour_their_deadlines() {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "bh",
            &proxy.target(),
            &cfg(&[("pool.max_size", "1"), ("pool.connect_timeout", "300ms")]),
        )
        .unwrap();
    let lease = pool.acquire_blocking(within(2000)).unwrap();
    echo_once(&lease);
    proxy.command("blackhole");
    lease.set_timeout(Some(Duration::from_millis(200))).unwrap();
    let t = Instant::now();
    lease.send_all(b"hi\n").unwrap();
    let mut buf = [0u8; 8];
    let err = lease.recv(&mut buf).unwrap_err();
    assert_eq!(err.code(), Code::Timeout, "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The pool is full (one lease): a second caller times out on time.
    let t = Instant::now();
    let err = pool.acquire_blocking(within(300)).unwrap_err();
    assert_eq!(err.code(), Code::Timeout, "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    lease.discard();
    // A new connect is accepted by the proxy but never answered: the lease comes back
    // (TCP connects), and its first recv times out on time too.
    let lease = pool.acquire_blocking(within(2000)).unwrap();
    lease.set_timeout(Some(Duration::from_millis(200))).unwrap();
    lease.send_all(b"hi\n").unwrap();
    let t = Instant::now();
    assert_eq!(lease.recv(&mut buf).unwrap_err().code(), Code::Timeout);
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_reset_mid_lease_fails_the_call_and_the_next_acquire_gets_a_fresh_connection() {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("rst", &proxy.target(), &Config::new()).unwrap();
    let lease = pool.acquire_blocking(within(2000)).unwrap();
    echo_once(&lease);
    let id = lease.id();
    proxy.command("reset_existing");
    let mut buf = [0u8; 8];
    // The RST arrives shortly; the next call on the lease fails.
    let failed = wait_until(Duration::from_secs(5), || {
        lease.send_all(b"x\n").is_err() || lease.recv(&mut buf).is_err()
    });
    assert!(failed, "a call after the reset failed");
    assert!(lease.is_broken());
    drop(lease);
    let s = pool.stats();
    assert_eq!(s.closed_by.broken, 1, "discarded on release, not reused");
    assert_eq!(
        s.endpoints[0].failures, 1,
        "the broken lease counted as a failure"
    );
    let fresh = pool.acquire_blocking(within(2000)).unwrap();
    assert_ne!(fresh.id(), id);
    echo_once(&fresh);
}

#[test]
fn slow_calls_trip_the_breaker_and_acquire_then_fails_fast() {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "slow",
            &proxy.target(),
            &cfg(&[
                ("breaker.failure_threshold", "0"),
                ("breaker.slow_call_duration", "50ms"),
                ("breaker.slow_call_rate_threshold", "50"),
                ("breaker.minimum_calls", "4"),
                ("breaker.open_wait", "30s"),
            ]),
        )
        .unwrap();
    proxy.command("latency 150");
    // The window holds the (fast) connect and the slow round trips: with a minimum of
    // four calls it opens on the third slow one (3 of 4 slow >= 50%).
    let mut slow_calls = 0;
    while pool.breaker_state(None).unwrap() == BreakerState::Closed && slow_calls < 10 {
        let lease = pool.acquire_blocking(within(2000)).unwrap();
        let took = echo_once(&lease);
        assert!(took >= Duration::from_millis(100), "{took:?}");
        lease.report(true, took);
        slow_calls += 1;
    }
    assert_eq!(slow_calls, 3);
    assert_eq!(pool.breaker_state(None).unwrap(), BreakerState::Open);
    let err = pool.acquire_blocking(within(2000)).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("breaker open"), "{err}");
    let ev = events_of(&m, EventKind::BreakerState, Duration::from_millis(200));
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].old_state, ev[0].new_state),
        (Some("closed"), Some("open"))
    );
    assert!(
        ev[0].message.contains("slow-call rate"),
        "{}",
        ev[0].message
    );
    assert_eq!(ev[0].endpoint.as_deref(), Some(proxy.target().as_str()));
    assert_eq!(
        pool.stats().idle,
        0,
        "the open breaker evicted idle connections"
    );
    let text = m.metrics_text();
    let line = format!(
        "switchboard_endpoint_breaker_state{{pool=\"slow\",endpoint=\"{}\",state=\"open\"}} 1",
        proxy.target()
    );
    assert!(text.lines().any(|l| l == line), "{text}");
}

/// A connector whose connects fail while `fail` is set and otherwise wait for `gate`.
struct Gated {
    started: Arc<AtomicUsize>,
    fail: Arc<std::sync::atomic::AtomicBool>,
    gate: Arc<tokio::sync::Semaphore>,
}

fn gated() -> (Gated, FnConnector<u64>) {
    let g = Gated {
        started: Arc::new(AtomicUsize::new(0)),
        fail: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        gate: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    let (started, fail, gate) = (g.started.clone(), g.fail.clone(), g.gate.clone());
    let c = FnConnector::new(move |_ep| -> BoxFuture<switchboard_core::Result<u64>> {
        let n = started.fetch_add(1, Ordering::SeqCst) as u64;
        let (fail, gate) = (fail.clone(), gate.clone());
        Box::pin(async move {
            if fail.load(Ordering::SeqCst) {
                return Err(switchboard_core::Error::unavailable("refused (test)"));
            }
            let _permit = gate.acquire().await;
            Ok(n)
        })
    });
    (g, c)
}

#[test]
fn half_open_admits_exactly_the_configured_probes_then_closes() {
    let clock = ManualClock::new();
    let m = Manager::with_clock(&Config::new(), Arc::new(clock.clone())).unwrap();
    let (g, connector) = gated();
    let pool = m
        .pool_any(
            "half",
            "svc",
            &cfg(&[
                ("pool.max_size", "8"),
                ("pool.max_connecting", "8"),
                ("breaker.failure_threshold", "1"),
                ("breaker.open_wait", "10s"),
                ("breaker.half_open_probes", "2"),
                ("health.interval", "0"),
            ]),
            Some(connector),
        )
        .unwrap();
    let err = pool.acquire_blocking(within(2000)).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(pool.breaker_state(None).unwrap(), BreakerState::Open);
    // Still open before the wait: refused without a connect.
    let before = g.started.load(Ordering::SeqCst);
    assert_eq!(
        pool.acquire_blocking(within(2000)).unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(g.started.load(Ordering::SeqCst), before);
    // Past the open wait (the manual clock moves; the backoff's 1 s is long gone too).
    clock.advance(Duration::from_secs(10));
    g.fail.store(false, Ordering::SeqCst);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|_| {
                let p = pool.clone();
                s.spawn(move || p.acquire_blocking(within(10_000)))
            })
            .collect();
        // Exactly two probes start; the other three are refused at once.
        assert!(wait_until(Duration::from_secs(5), || g
            .started
            .load(Ordering::SeqCst)
            == before + 2));
        let refused = wait_until(Duration::from_secs(5), || {
            handles.iter().filter(|h| h.is_finished()).count() == 3
        });
        assert!(refused, "three callers refused while the probes run");
        assert_eq!(pool.breaker_state(None).unwrap(), BreakerState::HalfOpen);
        g.gate.add_permits(2);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(ok, 2);
    assert_eq!(refused.len(), 3);
    for e in refused {
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(e.message().contains("half_open"), "{e}");
    }
    assert_eq!(
        g.started.load(Ordering::SeqCst),
        before + 2,
        "no third connect"
    );
    assert_eq!(pool.breaker_state(None).unwrap(), BreakerState::Closed);
    let states: Vec<_> = events_of(&m, EventKind::BreakerState, Duration::from_millis(200))
        .into_iter()
        .map(|e| e.new_state.unwrap_or_default())
        .collect();
    assert_eq!(states, vec!["open", "half_open", "closed"]);
}

#[test]
fn a_flapping_endpoint_opens_the_breaker_and_recovers_with_events_in_order() {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "flap",
            &proxy.target(),
            &cfg(&[
                ("breaker.failure_threshold", "2"),
                ("breaker.open_wait", "100ms"),
                ("breaker.max_open_wait", "300ms"),
                ("breaker.half_open_probes", "1"),
                ("backoff.initial", "20ms"),
                ("backoff.max", "50ms"),
                ("health.interval", "30ms"),
                ("pool.connect_timeout", "1s"),
            ]),
        )
        .unwrap();
    proxy.command("flap 150 150");
    let mut saw_open = false;
    let end = Instant::now() + Duration::from_secs(20);
    let mut rounds = 0;
    while Instant::now() < end && rounds < 2000 {
        rounds += 1;
        if let Ok(lease) = pool.acquire_blocking(within(300)) {
            // Each call is a real round trip; one cut by the proxy breaks the lease.
            lease.set_timeout(Some(Duration::from_millis(300))).unwrap();
            let mut buf = [0u8; 4];
            let ok = lease.send_all(b"hi\n").is_ok() && lease.recv(&mut buf).is_ok_and(|n| n > 0);
            if !ok {
                lease.discard();
            }
        }
        saw_open |= pool.breaker_state(None).unwrap() == BreakerState::Open;
        if saw_open && rounds > 50 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(saw_open, "the breaker opened while the endpoint flapped");
    proxy.command("pass");
    // Recovers on its own (health checks probe in half-open) within max_open_wait +
    // backoff + generous margin.
    let closed = wait_until(Duration::from_secs(10), || {
        pool.breaker_state(None).unwrap() == BreakerState::Closed
            && pool.acquire_blocking(within(300)).is_ok()
    });
    assert!(closed, "recovered: {:?}", pool.health().endpoints[0]);
    let ev = events_of(&m, EventKind::BreakerState, Duration::from_millis(200));
    assert!(ev.len() >= 3, "{ev:?}");
    for w in ev.windows(2) {
        assert_eq!(w[0].new_state, w[1].old_state, "in order: {ev:?}");
        assert!(w[0].time <= w[1].time);
    }
    assert_eq!(ev.last().and_then(|e| e.new_state), Some("closed"));
}

#[test]
fn with_one_of_two_endpoints_down_every_acquire_goes_to_the_healthy_one() {
    let server = EchoServer::start();
    let good = server.target();
    let bad = format!("tcp://127.0.0.1:{}", dead_port());
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "two",
            &format!("{bad},{good}"),
            &cfg(&[("pool.max_size", "20")]),
        )
        .unwrap();
    // Asking which endpoint the pool would pick changes nothing.
    let before = pool.health();
    for _ in 0..10 {
        pool.select_best(&[]).unwrap();
    }
    assert_eq!(pool.health().endpoints[0].state, ConnState::Idle);
    assert_eq!(pool.health().endpoints[1].state, ConnState::Idle);
    assert_eq!(pool.health().reconnects, before.reconnects);
    let leases: Vec<_> = (0..20)
        .map(|_| {
            pool.acquire_blocking(within(3000))
                .expect("served by the healthy one")
        })
        .collect();
    assert!(leases.iter().all(|l| l.endpoint() == good));
    for l in &leases {
        echo_once(l);
    }
    drop(leases);
    let best = pool.healthy_endpoints();
    assert_eq!(best[0].endpoint, good);
    assert!(best.iter().all(|e| e.endpoint != bad), "{best:?}");
    assert_eq!(pool.select_best(&[]).unwrap(), good);
    assert_eq!(
        pool.select_best(&[bad.as_str()]).unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(
        pool.select_best(&["tcp://nowhere:1"]).unwrap_err().code(),
        Code::NotFound
    );
    let h = pool.health();
    assert_eq!(h.endpoints[0].state, ConnState::Reconnecting);
    assert_eq!(h.endpoints[1].state, ConnState::Connected);
    assert_eq!(h.endpoints[1].open_connections, 20);
    assert!(h.endpoints[1].quality > h.endpoints[0].quality);
    // Several endpoints: breaker_state needs a name.
    assert_eq!(
        pool.breaker_state(None).unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        pool.breaker_state(Some(&good)).unwrap(),
        BreakerState::Closed
    );
}

#[test]
fn operators_force_open_disable_and_reset_the_breaker() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("ops", &server.target(), &Config::new()).unwrap();
    drop(pool.acquire_blocking(within(2000)).unwrap());
    pool.breaker_op(None, BreakerOp::ForceOpen).unwrap();
    assert_eq!(pool.stats().idle, 0, "forcing open evicts idle connections");
    let err = pool.acquire_blocking(within(2000)).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("forced_open"), "{err}");
    assert_eq!(pool.health().endpoints[0].breaker_rejected, 1);
    pool.breaker_op(None, BreakerOp::Reset).unwrap();
    let lease = pool.acquire_blocking(within(2000)).unwrap();
    echo_once(&lease);
    assert_eq!(
        pool.health().endpoints[0].in_flight,
        1,
        "a pool of one counts its lease"
    );
    drop(lease);
    assert_eq!(pool.health().endpoints[0].in_flight, 0);
    pool.breaker_op(Some(&server.target()), BreakerOp::Disable)
        .unwrap();
    assert_eq!(pool.breaker_state(None).unwrap(), BreakerState::Disabled);
    assert_eq!(
        "open-ish".parse::<BreakerOp>().unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        pool.breaker_op(Some("tcp://127.0.0.1:1"), BreakerOp::Reset)
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

#[test]
fn health_checks_probe_idle_connections_and_reconnect_a_recovered_endpoint() {
    let server = EchoServer::start_with(common::Ping::Pong);
    let proxy = FaultProxy::start(server.port);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "hc",
            &proxy.target(),
            &cfg(&[
                ("probe.send", "PING\\r\\n"),
                ("probe.expect", "+PONG"),
                ("health.interval", "0"),
                ("backoff.initial", "10ms"),
                ("backoff.max", "20ms"),
            ]),
        )
        .unwrap();
    drop(pool.acquire_blocking(within(2000)).unwrap());
    pool.run_health_checks_blocking().unwrap();
    let h = pool.health().endpoints[0].clone();
    assert_eq!((h.checks, h.checks_failed), (1, 0));
    assert!(h.latency_ewma.is_some());
    let ev = events_of(&m, EventKind::HealthCheck, Duration::from_millis(100));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].new_state, Some("ok"));
    // The endpoint goes away: the probe fails and the connection is replaced later.
    proxy.command("refuse");
    proxy.command("reset_existing");
    assert!(wait_until(Duration::from_secs(5), || {
        pool.run_health_checks_blocking().unwrap();
        pool.health().endpoints[0].checks_failed >= 1
    }));
    assert!(pool.acquire_blocking(within(500)).is_err());
    // It comes back: a health check reconnects it on its own (auto-recovery).
    proxy.command("pass");
    assert!(wait_until(Duration::from_secs(5), || {
        pool.run_health_checks_blocking().unwrap();
        pool.stats().idle == 1
    }));
    assert_eq!(pool.health().endpoints[0].state, ConnState::Connected);
    assert!(pool.health().reconnects >= 1);
}

#[test]
fn a_thousand_waiters_on_an_endpoint_that_comes_back_open_at_most_max_size() {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    proxy.command("refuse");
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "herd",
            &proxy.target(),
            &cfg(&[
                ("pool.max_size", "4"),
                ("pool.max_waiters", "2000"),
                ("retry.max_attempts", "1000"),
                ("backoff.initial", "50ms"),
                ("backoff.max", "100ms"),
                ("breaker.failure_threshold", "0"),
                ("breaker.failure_rate_threshold", "0"),
                ("health.interval", "0"),
            ]),
        )
        .unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let p = pool.clone();
            let served = served.clone();
            tasks.push(tokio::spawn(async move {
                let l = p.acquire_with(within(20_000)).await?;
                served.fetch_add(1, Ordering::SeqCst);
                drop(l);
                Ok::<(), switchboard_core::Error>(())
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.command("pass");
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
    assert_eq!(served.load(Ordering::SeqCst), 1000);
    let accepted = proxy.stats().accepted;
    assert!(
        (1..=4).contains(&accepted),
        "1000 waiters opened {accepted} connections"
    );
}

#[test]
fn health_checks_run_on_their_own_at_their_interval() {
    let server = EchoServer::start_with(common::Ping::Pong);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "auto",
            &server.target(),
            &cfg(&[
                ("probe.send", "PING\\r\\n"),
                ("probe.expect", "+PONG"),
                ("health.interval", "50ms"),
            ]),
        )
        .unwrap();
    drop(pool.acquire_blocking(within(2000)).unwrap());
    // Ten checks take ~0.5 s at 50 ms; at the upkeep's default 1 s period they would
    // take 10 s, past this bound.
    assert!(
        wait_until(Duration::from_secs(5), || pool.health().endpoints[0].checks
            >= 10),
        "{:?}",
        pool.health().endpoints[0]
    );
    assert_eq!(pool.health().endpoints[0].checks_failed, 0);
}

#[test]
fn async_reads_and_writes_honour_their_deadline_and_leave_the_socket_usable() {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("async", &proxy.target(), &Config::new()).unwrap();
    let lease = pool.acquire_blocking(within(2000)).unwrap();
    let rt = m.runtime().clone();
    let r = rt
        .block_on(async {
            // Nothing to read: the deadline passes.
            let t = Instant::now();
            let err = lease
                .read_async_within(16, Some(Duration::from_millis(100)))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Timeout, "{err}");
            assert!(
                err.message().contains("read timed out after 100 ms"),
                "{err}"
            );
            assert!(t.elapsed() < Duration::from_secs(3));
            // Still usable: a round trip works.
            lease
                .write_all_async_within(b"hi\n", Some(Duration::from_secs(2)))
                .await?;
            lease
                .read_async_within(16, Some(Duration::from_secs(2)))
                .await
        })
        .unwrap()
        .unwrap();
    assert_eq!(r, b"hi\n");
    assert!(!lease.is_broken(), "a timeout does not break the socket");
}

#[test]
fn draining_an_endpoint_goes_through_disconnecting_to_disconnected() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("drain", &server.target(), &Config::new()).unwrap();
    let held = pool.acquire_blocking(within(2000)).unwrap();
    drop(pool.acquire_blocking(within(2000)).unwrap()); // a second one, now idle
    assert_eq!(pool.stats().size, 2);
    pool.drain(&server.target()).unwrap();
    assert_eq!(pool.stats().idle, 0, "the idle one closed at once");
    assert_eq!(pool.health().endpoints[0].state, ConnState::Disconnecting);
    drop(held);
    assert_eq!(pool.stats().size, 0, "the leased one closed on release");
    assert_eq!(pool.health().endpoints[0].state, ConnState::Disconnected);
    assert_eq!(pool.stats().closed_by.evicted, 2);
    // It may serve again.
    echo_once(&pool.acquire_blocking(within(2000)).unwrap());
    assert_eq!(pool.health().endpoints[0].state, ConnState::Connected);
    let states: Vec<_> = events_of(&m, EventKind::EndpointState, Duration::from_millis(200))
        .into_iter()
        .map(|e| e.new_state.unwrap_or_default())
        .collect();
    assert_eq!(
        states,
        vec![
            "connecting",
            "connected",
            "disconnecting",
            "disconnected",
            "connected"
        ]
    );
    assert_eq!(
        pool.drain("tcp://127.0.0.1:1").unwrap_err().code(),
        Code::NotFound
    );
}

#[test]
fn grants_to_abandoned_waiters_leave_the_endpoint_load_balanced() {
    // A connection granted to a waiter that is cancelled before it takes the grant comes
    // back through the lease's drop; the per-endpoint in-flight count must not drift.
    let a = EchoServer::start();
    let b = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "abandon",
            &format!("{},{}", a.target(), b.target()),
            &cfg(&[("pool.max_size", "1")]),
        )
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..300u32 {
            let held = pool.acquire_with(within(2000)).await.unwrap();
            let p = pool.clone();
            let waiter = tokio::spawn(async move { p.acquire_with(within(2000)).await });
            // Let the waiter register, then release and abort it at about the same time.
            for _ in 0..(i % 4) {
                tokio::task::yield_now().await;
            }
            drop(held);
            waiter.abort();
            let _ = waiter.await;
        }
    });
    let h = pool.health();
    let in_flight: Vec<usize> = h.endpoints.iter().map(|e| e.in_flight).collect();
    assert_eq!(in_flight, vec![0, 0], "{:?}", h.endpoints);
    assert_eq!(pool.stats().leased, 0);
}
