//! What resilience costs: a breaker permit and its result (the state machine alone),
//! an acquire refused fast by an open breaker, and a checkout from a pool of two
//! endpoints next to one of one (the per-endpoint bookkeeping on the fast path).
//!
//! `cargo bench -p switchboard-core --bench resilience` prints lines for
//! bench/RESULTS.md (`make bench` runs it).

use std::hint::black_box;
use std::time::{Duration, Instant};

use switchboard_core::breaker::{Breaker, BreakerSettings};
use switchboard_core::{AcquireOptions, BreakerOp, Config, Manager};

fn per_op(n: u32, f: impl FnMut()) -> Duration {
    let mut f = f;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

fn main() {
    let reps: usize = std::env::var("SB_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut breaker_ns = Vec::new();
    let mut refused_ns = Vec::new();
    let mut one_ns = Vec::new();
    let mut two_ns = Vec::new();

    // Two listeners that accept and hold connections (no I/O is done on them).
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = |l: &std::net::TcpListener| l.local_addr().map(|x| x.port()).unwrap_or(0);
    let (pa, pb) = (port(&a), port(&b));

    let m = Manager::new(&Config::new()).expect("manager");
    m.set_event_callback(Some(std::sync::Arc::new(|_e: &switchboard_core::Event| {})));
    let one = m
        .pool("one", &format!("tcp://127.0.0.1:{pa}"), &Config::new())
        .expect("pool");
    let two = m
        .pool(
            "two",
            &format!("tcp://127.0.0.1:{pa},tcp://127.0.0.1:{pb}"),
            &Config::new(),
        )
        .expect("pool");
    let open = m
        .pool("open", &format!("tcp://127.0.0.1:{pa}"), &Config::new())
        .expect("pool");
    open.breaker_op(None, BreakerOp::ForceOpen)
        .expect("force open");
    for p in [&one, &two] {
        drop(
            p.acquire_blocking(AcquireOptions::default())
                .expect("first connect"),
        );
    }

    let n = 1_000_000;
    for _ in 0..reps {
        let mut br = Breaker::new(BreakerSettings::default());
        let now = Instant::now();
        let mut tr = Vec::new();
        breaker_ns.push(per_op(n, || {
            if let Ok(p) = br.try_acquire(now, &mut tr) {
                black_box(br.on_result(p, true, Duration::from_micros(200), now));
            }
        }));
        refused_ns.push(per_op(n / 10, || {
            black_box(open.acquire_blocking(AcquireOptions::default()).is_err());
        }));
        one_ns.push(per_op(n, || {
            black_box(one.try_acquire_ready().ok().flatten());
        }));
        two_ns.push(per_op(n, || {
            black_box(two.try_acquire_ready().ok().flatten());
        }));
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_nanos()
    };
    let (br, rf, o, t) = (
        med(&mut breaker_ns),
        med(&mut refused_ns),
        med(&mut one_ns),
        med(&mut two_ns),
    );
    println!(
        "resilience: breaker permit + result (closed, count window) {br} ns; acquire refused by an open breaker {rf} ns (fails fast, names the reason); try_acquire+release of an idle connection: one endpoint {o} ns, two endpoints {t} ns (median of {reps})"
    );
    let _ = m.close(Duration::from_secs(5));
    drop((a, b));
}
