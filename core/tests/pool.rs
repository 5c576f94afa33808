//! The pool against real sockets on loopback.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{EchoServer, cfg, dead_port, wait_until};
use switchboard_core::{AcquireOptions, Code, Config, Manager};

fn round_trip(lease: &switchboard_core::Socket, msg: &[u8]) -> Vec<u8> {
    lease.send_all(msg).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < msg.len() {
        let n = lease.recv(&mut buf).unwrap();
        assert!(n > 0, "server closed early");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn echo_round_trip_and_reuse() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("echo", &server.target(), &Config::new()).unwrap();

    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let first_id = lease.id();
    let fd = lease.fd();
    assert!(fd >= 0);
    assert_eq!(round_trip(&lease, b"hello\n"), b"hello\n");
    lease.release();

    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    assert_eq!(lease.id(), first_id, "the idle connection is reused");
    assert_eq!(lease.fd(), fd);
    assert_eq!(round_trip(&lease, b"again\n"), b"again\n");
    drop(lease); // release on drop

    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.leased, s.created_total), (1, 1, 0, 1));
    assert_eq!(server.accepted(), 1);
    m.close(Duration::from_secs(5)).unwrap();
}

#[test]
fn async_acquire_reuses_too() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("echo", &server.target(), &Config::new()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = rt.block_on(async {
        let l = pool.acquire().await.unwrap();
        let a = l.id();
        drop(l);
        let l = pool.acquire().await.unwrap();
        (a, l.id())
    });
    assert_eq!(a, b);
    assert!(wait_until(Duration::from_secs(5), || server.accepted() == 1));
    assert_eq!(pool.stats().acquired_total, 2);
}

#[test]
fn async_socket_helpers_echo() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("echo", &server.target(), &Config::new()).unwrap();
    let p = pool.clone();
    let out = m
        .runtime()
        .block_on(async move {
            let lease = p.acquire().await?;
            lease.write_all_async(b"async\n").await?;
            let got = lease.read_async(64).await?;
            // Blocking mode is restored for the next user.
            // SAFETY: F_GETFL on an fd the lease owns.
            let flags = unsafe { libc::fcntl(lease.fd(), libc::F_GETFL) };
            Ok::<_, switchboard_core::Error>((got, flags))
        })
        .unwrap()
        .unwrap();
    assert_eq!(out.0, b"async\n");
    assert_eq!(out.1 & libc::O_NONBLOCK, 0, "socket left non-blocking");
}

#[test]
fn max_size_reached_times_out_within_deadline() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("one", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    let held = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let t0 = Instant::now();
    let err = pool
        .acquire_blocking(AcquireOptions {
            timeout: Some(Duration::from_millis(200)),
            priority: 0,
        })
        .unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.code(), Code::Timeout, "{err}");
    assert!(
        took >= Duration::from_millis(200),
        "returned early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "overran its deadline: {took:?}"
    );
    assert!(err.message().contains("pool \"one\""), "{err}");
    assert!(pool.try_acquire().unwrap().is_none());
    drop(held);
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.waiting, s.timed_out_total), (1, 1, 0, 1));
}

#[test]
fn server_down_is_unavailable_naming_the_address() {
    let port = dead_port();
    let m = Manager::new(&Config::new()).unwrap();
    let target = format!("tcp://127.0.0.1:{port}");
    let pool = m.pool("down", &target, &Config::new()).unwrap();
    let err = pool
        .acquire_blocking(AcquireOptions {
            timeout: Some(Duration::from_secs(5)),
            priority: 0,
        })
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains(&target), "{err}");
    // The connect task fails the waiter first, then frees its slot.
    assert!(wait_until(Duration::from_secs(5), || pool.stats().size == 0));
    let s = pool.stats();
    assert_eq!((s.size, s.connecting, s.waiting), (0, 0, 0));
    assert_eq!(s.connect_failed_total, 1);
}

#[test]
fn bad_config_names_the_key() {
    let mut c = Config::new();
    let err = c.set("pool.max_sise", "3").unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("pool.max_sise"));
    let err = c.set("pool.max_size", "lots").unwrap_err();
    assert_eq!(
        err.message(),
        "pool.max_size must be an integer 1..=65535, got \"lots\""
    );
    let m = Manager::new(&Config::new()).unwrap();
    let err = m.pool("x", "http://nope", &Config::new()).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("tcp://host:port"), "{err}");
}

#[test]
fn dropped_acquire_future_leaks_nothing() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("one", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    let held = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for _ in 0..20 {
        let r = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(5), pool.acquire()).await
        });
        assert!(r.is_err(), "the acquire was cancelled by the outer timeout");
    }
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 0));
    drop(held);
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.waiting), (1, 1, 0));
    let again = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    assert!(wait_until(Duration::from_secs(5), || server.accepted() == 1));
    drop(again);
}

#[test]
fn a_released_connection_goes_to_the_waiter() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("one", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    let held = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let id = held.id();
    let p = pool.clone();
    let waiter = std::thread::spawn(move || p.acquire_blocking(AcquireOptions::default()));
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 1));
    drop(held);
    let got = waiter.join().unwrap().unwrap();
    assert_eq!(got.id(), id);
    assert!(wait_until(Duration::from_secs(5), || server.accepted() == 1));
}

#[test]
fn a_peer_that_closed_is_never_handed_out() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("p", &server.target(), &Config::new()).unwrap();
    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let first = lease.id();
    lease.send_all(b"CLOSE\n").unwrap();
    let mut b = [0u8; 1];
    assert_eq!(lease.recv(&mut b).unwrap(), 0, "server closed it");
    drop(lease);
    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    assert_ne!(lease.id(), first, "the closed connection was replaced");
    assert_eq!(round_trip(&lease, b"x\n"), b"x\n");
    let s = pool.stats();
    assert_eq!((s.closed_total, s.created_total), (1, 2));
}

#[test]
fn discard_closes_and_the_next_acquire_opens_fresh() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("p", &server.target(), &Config::new()).unwrap();
    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let first = lease.id();
    lease.discard();
    assert_eq!(pool.stats().size, 0);
    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    assert_ne!(lease.id(), first);
    // The server thread counts the accept a moment after the client connected.
    assert!(wait_until(Duration::from_secs(5), || server.accepted() == 2));
}

#[test]
fn wait_queue_is_bounded() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool(
            "p",
            &server.target(),
            &cfg(&[("pool.max_size", "1"), ("pool.max_waiters", "1")]),
        )
        .unwrap();
    let held = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let p = pool.clone();
    let waiter = std::thread::spawn(move || {
        p.acquire_blocking(AcquireOptions {
            timeout: Some(Duration::from_secs(10)),
            priority: 0,
        })
        .map(|l| l.id())
    });
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 1));
    let err = pool
        .acquire_blocking(AcquireOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("pool.max_waiters"));
    drop(held);
    assert!(waiter.join().unwrap().is_ok());
}

#[test]
fn higher_priority_waiters_go_first() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("p", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    let held = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for (i, prio) in [(0, 0), (1, 5), (2, 0), (3, 9)] {
        let p = pool.clone();
        let o = order.clone();
        threads.push(std::thread::spawn(move || {
            let l = p
                .acquire_blocking(AcquireOptions {
                    timeout: Some(Duration::from_secs(20)),
                    priority: prio,
                })
                .unwrap();
            o.lock().unwrap().push(i);
            drop(l);
        }));
        // Register in a known order.
        assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == i + 1));
    }
    drop(held);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![3, 1, 0, 2]);
}

#[test]
fn many_threads_never_exceed_max_size() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("p", &server.target(), &cfg(&[("pool.max_size", "3")]))
        .unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let p = pool.clone();
            let (inside, peak) = (inside.clone(), peak.clone());
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let l = p.acquire_blocking(AcquireOptions::default()).unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    assert!(p.stats().size <= 3);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(l);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= 3);
    let s = pool.stats();
    assert_eq!((s.leased, s.waiting, s.connecting), (0, 0, 0));
    assert!(s.size <= 3 && s.idle == s.size, "{s:?}");
    assert_eq!(s.acquired_total, 8 * 300);
    assert!(server.accepted() <= 3);
}

#[test]
fn close_wakes_waiters_and_is_idempotent() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("p", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    let held = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let p = pool.clone();
    let waiter = std::thread::spawn(move || p.acquire_blocking(AcquireOptions::default()));
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 1));
    let t0 = Instant::now();
    m.close(Duration::from_millis(100)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10));
    let err = waiter.join().unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // The held lease is closed when it comes back, not pooled.
    drop(held);
    assert_eq!(pool.stats().size, 0);
    m.close(Duration::from_millis(100)).unwrap();
    let err = pool
        .acquire_blocking(AcquireOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let err = m.pool("q", &server.target(), &Config::new()).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[test]
fn duplicate_pool_names_are_rejected() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let _a = m.pool("p", &server.target(), &Config::new()).unwrap();
    let err = m.pool("p", &server.target(), &Config::new()).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("\"p\""));
}

#[test]
fn blocking_inside_a_runtime_is_refused() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("p", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    let _held = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    let p = pool.clone();
    let err = m
        .runtime()
        .block_on(async move {
            tokio::spawn(async move { p.acquire_blocking(AcquireOptions::default()) })
                .await
                .unwrap()
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
}

#[test]
fn a_lease_timeout_ends_with_the_lease() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("p", &server.target(), &Config::new()).unwrap();
    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    lease.set_timeout(Some(Duration::from_millis(30))).unwrap();
    let mut b = [0u8; 8];
    let err = lease.recv(&mut b).unwrap_err();
    assert_eq!(err.code(), Code::Timeout, "{err}");
    let id = lease.id();
    drop(lease);
    let lease = pool.acquire_blocking(AcquireOptions::default()).unwrap();
    assert_eq!(lease.id(), id);
    let sock = socket2::SockRef::from(&*lease);
    assert_eq!(sock.read_timeout().unwrap(), None, "timeout carried over");
    assert_eq!(sock.write_timeout().unwrap(), None);
}

#[test]
fn a_forked_child_gets_a_clear_error_even_on_the_fast_path() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("p", &server.target(), &Config::new()).unwrap();
    drop(pool.acquire_blocking(AcquireOptions::default()).unwrap());
    assert_eq!(pool.stats().idle, 1);
    // SAFETY: the child only calls try_acquire (atomics, no locks held across fork
    // by this test) and then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match pool.try_acquire() {
            Err(e) if e.code() == Code::FailedPrecondition => 0,
            _ => 1,
        };
        // SAFETY: _exit ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
    assert!(
        pool.try_acquire().unwrap().is_some(),
        "the parent is unaffected"
    );
}

/// A minimal executor with no tokio in it: parks the thread until woken.
fn plain_block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    for _ in 0..1_000_000 {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    panic!("future never finished");
}

#[test]
fn async_acquire_works_from_an_executor_that_is_not_tokio() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m
        .pool("p", &server.target(), &cfg(&[("pool.max_size", "1")]))
        .unwrap();
    // Slow path with a connect, then a timeout (timers), then a hand-off.
    let held = plain_block_on(pool.acquire()).unwrap();
    let err = plain_block_on(pool.acquire_with(AcquireOptions {
        timeout: Some(Duration::from_millis(50)),
        priority: 0,
    }))
    .unwrap_err();
    assert_eq!(err.code(), Code::Timeout);
    let p = pool.clone();
    let waiter = std::thread::spawn(move || plain_block_on(p.acquire()).map(|l| l.id()));
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 1));
    let id = held.id();
    drop(held);
    assert_eq!(waiter.join().unwrap().unwrap(), id);
}

#[test]
fn the_upkeep_never_hides_an_idle_connection_from_try_acquire() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let pool = m.pool("p", &server.target(), &Config::new()).unwrap();
    drop(pool.acquire_blocking(AcquireOptions::default()).unwrap());
    let p = pool.clone();
    let upkeep = std::thread::spawn(move || {
        for _ in 0..300 {
            p.run_upkeep_blocking().unwrap();
        }
    });
    let mut misses = 0;
    for _ in 0..200_000 {
        match pool.try_acquire().unwrap() {
            Some(l) => drop(l),
            None => misses += 1,
        }
    }
    upkeep.join().unwrap();
    // While the upkeep holds the one connection for a look, try_acquire waits for it.
    assert_eq!(misses, 0);
    assert_eq!(pool.stats().created_total, 1);
}
