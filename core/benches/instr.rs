//! A fixed number of uncontended acquire+release on one kind of pool, for
//! `valgrind --tool=callgrind`: two runs at different counts give instructions per
//! operation as (I2 - I1) / (N2 - N1), setup and teardown cancelling out.
//!
//! ```text
//! instr <kind> <iterations>            one run; prints ns/op (meaningless under valgrind)
//! instr --reps <r> <kind> <iterations> r timed runs, one ns/op per line
//! instr --bench                        (what `cargo bench --bench instr` passes) a quick
//!                                      timed run of every in-process kind
//! ```
//!
//! Kinds on the trivial counter object (see `support`): `switchboard_try`
//! (`try_acquire`), `switchboard` (`acquire().await`), `deadpool`, `bb8`, `r2d2`,
//! `semaphore_vec`, `array_queue`. Kinds on a built-in TCP pool to
//! `$SB_BENCH_TARGET` (`tcp://127.0.0.1:<port>`), the Rust side of the binding
//! comparison: `switchboard_tcp_try` (`try_acquire`), `switchboard_tcp_blocking`
//! (`acquire_blocking`), and `peek`: the liveness check's syscall alone
//! (`recv(MSG_PEEK | MSG_DONTWAIT)` on a connected socket). Contended kinds, 64 tasks
//! on one current-thread runtime sharing a pool of 16, each acquire -> yield -> release
//! (so most acquires wait and every release hands over to a waiter), counted per
//! acquire+release: `switchboard_contended` (`acquire().await`) and `deadpool_contended`.
//! Connect churn, timed only: `connect_churn` (acquire a new connection, discard it) and
//! `tokio_connect` (a bare tokio connect + close), to an in-process Unix socket listener.

mod support;

use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use support::*;
use switchboard_core::{AcquireOptions, Config, Lease, Manager, Pool};
use tokio::runtime::Runtime;

const KINDS: &[&str] = &[
    "switchboard_try",
    "switchboard",
    "deadpool",
    "bb8",
    "r2d2",
    "semaphore_vec",
    "array_queue",
];

fn rt() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `reps` times `n` operations of `kind`; returns ns/op of each.
fn run(kind: &str, n: u64, reps: usize) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(reps);
    let mut time = |f: &mut dyn FnMut(u64)| {
        f(1_000.min(n)); // warm: connections open, caches hot
        for _ in 0..reps {
            let t = Instant::now();
            f(n);
            out.push(t.elapsed().as_nanos() as f64 / n.max(1) as f64);
        }
    };
    match kind {
        "switchboard_try" => {
            let manager = switchboard_manager();
            let pool = switchboard_pool(&manager, "instr", POOL_SIZE);
            rt().block_on(warm_switchboard(&pool));
            time(&mut |n| switchboard_try(&pool, n));
            let _ = manager.close(Duration::from_secs(5));
        }
        "switchboard" => {
            let manager = switchboard_manager();
            let pool = switchboard_pool(&manager, "instr", POOL_SIZE);
            let rt = rt();
            rt.block_on(warm_switchboard(&pool));
            time(&mut |n| rt.block_on(switchboard_async(&pool, n)));
            let _ = manager.close(Duration::from_secs(5));
        }
        "deadpool" => {
            let pool = deadpool_pool(POOL_SIZE);
            let rt = rt();
            rt.block_on(async {
                let mut held = Vec::new();
                for _ in 0..POOL_SIZE {
                    held.push(pool.get().await.map_err(|e| format!("deadpool: {e}"))?);
                }
                drop(held);
                Ok::<(), String>(())
            })?;
            time(&mut |n| rt.block_on(deadpool_loop(&pool, n)));
        }
        "switchboard_contended" => {
            let manager = switchboard_manager();
            let pool = switchboard_pool(&manager, "instr", POOL_SIZE);
            let rt = rt();
            rt.block_on(warm_switchboard(&pool));
            time(&mut |n| {
                let pool = pool.clone();
                rt.block_on(contended(n, move |_| {
                    let pool = pool.clone();
                    async move {
                        let lease = pool.acquire().await.expect("acquire");
                        tokio::task::yield_now().await;
                        black_box(*lease);
                    }
                }))
            });
            let _ = manager.close(Duration::from_secs(5));
        }
        "deadpool_contended" => {
            let pool = deadpool_pool(POOL_SIZE);
            let rt = rt();
            time(&mut |n| {
                let pool = pool.clone();
                rt.block_on(contended(n, move |_| {
                    let pool = pool.clone();
                    async move {
                        let obj = pool.get().await.expect("deadpool get");
                        tokio::task::yield_now().await;
                        black_box(*obj);
                    }
                }))
            });
        }
        "bb8" => {
            let rt = rt();
            let pool = rt.block_on(async { bb8_pool(POOL_SIZE) });
            rt.block_on(async {
                let mut held = Vec::new();
                for _ in 0..POOL_SIZE {
                    held.push(pool.get().await.map_err(|e| format!("bb8: {e:?}"))?);
                }
                drop(held);
                Ok::<(), String>(())
            })?;
            time(&mut |n| rt.block_on(bb8_loop(&pool, n)));
        }
        "r2d2" => {
            let pool = r2d2_pool(POOL_SIZE);
            time(&mut |n| r2d2_loop(&pool, n));
        }
        "semaphore_vec" => {
            let pool = SemPool::new(POOL_SIZE);
            let rt = rt();
            rt.block_on(async {
                let mut held = Vec::new();
                for _ in 0..POOL_SIZE {
                    held.push(pool.get().await);
                }
            });
            time(&mut |n| rt.block_on(sem_loop(&pool, n)));
        }
        "array_queue" => {
            let q = array_queue(POOL_SIZE);
            time(&mut |n| array_queue_loop(&q, n));
        }
        "switchboard_tcp_try" | "switchboard_tcp_blocking" => {
            let target = std::env::var("SB_BENCH_TARGET")
                .map_err(|_| format!("{kind} needs SB_BENCH_TARGET=tcp://host:port"))?;
            let manager = Manager::new(&Config::new()).map_err(|e| e.to_string())?;
            let pool = manager
                .pool("instr-tcp", &target, &Config::new())
                .map_err(|e| e.to_string())?;
            let lease = pool
                .acquire_blocking(AcquireOptions::default())
                .map_err(|e| e.to_string())?;
            drop(lease);
            if kind == "switchboard_tcp_try" {
                time(&mut |n| tcp_try(&pool, n));
            } else {
                time(&mut |n| tcp_blocking(&pool, n));
            }
            let _ = manager.close(Duration::from_secs(5));
        }
        "connect_churn" | "tokio_connect" => {
            // Connect churn: a pool whose connection is discarded after each lease opens
            // a new one per acquire, against a bare tokio connect + close, to the same
            // in-process listener. A Unix socket: a loop of TCP connects on loopback fills
            // the ephemeral ports with TIME_WAIT within seconds and then measures that.
            let path = churn_listener()?;
            let rt = rt();
            if kind == "connect_churn" {
                let manager = Manager::new(&Config::new()).map_err(|e| e.to_string())?;
                let pool = manager
                    .pool(
                        "churn",
                        &format!("unix://{}", path.display()),
                        &Config::new(),
                    )
                    .map_err(|e| e.to_string())?;
                time(&mut |n| {
                    rt.block_on(async {
                        for _ in 0..n {
                            let lease = pool.acquire().await.expect("acquire");
                            black_box(lease.fd());
                            lease.discard();
                        }
                    })
                });
                let _ = manager.close(Duration::from_secs(5));
            } else {
                time(&mut |n| {
                    rt.block_on(async {
                        for _ in 0..n {
                            let s = tokio::net::UnixStream::connect(&path)
                                .await
                                .expect("connect");
                            black_box(s.as_raw_fd());
                        }
                    })
                });
            }
        }
        "peek" => {
            let target = std::env::var("SB_BENCH_TARGET")
                .map_err(|_| "peek needs SB_BENCH_TARGET=tcp://host:port".to_string())?;
            let addr = target.trim_start_matches("tcp://");
            let s = std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
            time(&mut |n| peek_loop(&s, n));
        }
        _ => return Err(format!("unknown kind \"{kind}\"")),
    }
    Ok(out)
}

async fn warm_switchboard(pool: &Pool<CounterConnector>) {
    let mut held = Vec::new();
    for _ in 0..POOL_SIZE {
        held.push(pool.acquire().await.expect("switchboard acquire"));
    }
}

// The measured loops: never inlined, so `callgrind_annotate` shows them by name.

#[inline(never)]
fn switchboard_try(pool: &Pool<CounterConnector>, n: u64) {
    for _ in 0..n {
        let lease = pool.try_acquire().expect("try_acquire").expect("idle");
        black_box(*lease);
    }
}

#[inline(never)]
async fn switchboard_async(pool: &Pool<CounterConnector>, n: u64) {
    for _ in 0..n {
        let lease = pool.acquire().await.expect("acquire");
        black_box(*lease);
    }
}

/// `n` cycles over 64 tasks on the current runtime, each running `cycle` in turn.
async fn contended<F, Fut>(n: u64, cycle: F)
where
    F: Fn(u64) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    const TASKS: u64 = 64;
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let cycle = cycle.clone();
                    let mine = n / TASKS + u64::from(t < n % TASKS);
                    tokio::task::spawn_local(async move {
                        for i in 0..mine {
                            cycle(i).await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        })
        .await;
}

#[inline(never)]
async fn deadpool_loop(pool: &DeadPool, n: u64) {
    for _ in 0..n {
        let obj = pool.get().await.expect("deadpool get");
        black_box(*obj);
    }
}

#[inline(never)]
async fn bb8_loop(pool: &bb8::Pool<Bb8Manager>, n: u64) {
    for _ in 0..n {
        let conn = pool.get().await.expect("bb8 get");
        black_box(*conn);
    }
}

#[inline(never)]
fn r2d2_loop(pool: &r2d2::Pool<R2d2Manager>, n: u64) {
    for _ in 0..n {
        let conn = pool.get().expect("r2d2 get");
        black_box(*conn);
    }
}

#[inline(never)]
async fn sem_loop(pool: &SemPool, n: u64) {
    for _ in 0..n {
        let lease = pool.get().await;
        black_box(*lease);
    }
}

#[inline(never)]
fn array_queue_loop(q: &crossbeam_queue::ArrayQueue<u64>, n: u64) {
    for _ in 0..n {
        let v = q.pop().expect("pre-filled");
        let _ = q.push(black_box(v));
    }
}

/// A Unix socket listener that accepts every connection and keeps the last 64 open (so
/// the client closes first, as a client does, and the pool's liveness check sees a
/// live peer), on a thread of its own for the rest of the process.
fn churn_listener() -> Result<std::path::PathBuf, String> {
    let path = std::env::temp_dir().join(format!("sb-churn-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = std::os::unix::net::UnixListener::bind(&path).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut open = std::collections::VecDeque::new();
        for s in l.incoming() {
            open.push_back(s);
            if open.len() > 64 {
                open.pop_front();
            }
        }
    });
    Ok(path)
}

#[inline(never)]
fn tcp_try(pool: &Pool<switchboard_core::TcpConnector>, n: u64) {
    for _ in 0..n {
        let lease: Lease<_> = pool.try_acquire().expect("try_acquire").expect("idle");
        black_box(lease.fd());
    }
}

#[inline(never)]
fn tcp_blocking(pool: &Pool<switchboard_core::TcpConnector>, n: u64) {
    for _ in 0..n {
        let lease = pool
            .acquire_blocking(AcquireOptions::default())
            .expect("acquire_blocking");
        black_box(lease.fd());
    }
}

#[inline(never)]
fn peek_loop(s: &std::net::TcpStream, n: u64) {
    let fd = s.as_raw_fd();
    for _ in 0..n {
        let mut byte = 0u8;
        // SAFETY: `fd` is the open socket `s` borrowed for the whole loop; the buffer
        // is one writable byte that outlives the call.
        let r = unsafe {
            libc::recv(
                fd,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        black_box(r);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (reps, rest) = match args.first().map(String::as_str) {
        Some("--reps") => {
            let r = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(7);
            (r, &args[2.min(args.len())..])
        }
        _ => (1, &args[..]),
    };
    let kinds: Vec<&str> = match rest.first().map(String::as_str) {
        None | Some("--bench") => KINDS.to_vec(),
        Some(k) => vec![k],
    };
    let n: u64 = rest
        .get(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut failed = false;
    for kind in kinds {
        match run(kind, n, reps) {
            Ok(v) => {
                let list: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
                println!("{kind} {n} {}", list.join(" "));
            }
            Err(e) => {
                eprintln!("instr: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(2);
    }
}
