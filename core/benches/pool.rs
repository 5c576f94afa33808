//! switchboard's pool against deadpool, bb8, r2d2, a hand-written tokio
//! Semaphore + Mutex<Vec> pool and a bare crossbeam ArrayQueue, in one run, each
//! managing the same trivial object (see `support`). `make bench` runs it through
//! `bench/run.sh`, which turns the raw numbers into `bench/RESULTS.md`.
//!
//! - `uncontended/*`: acquire+release on a pre-warmed pool of 16, one caller.
//! - `contended_hold/*`: 64 tasks on a 2-worker tokio runtime share a pool of 16;
//!   each acquires, yields once (`tokio::task::yield_now`) and releases.
//!   `contended_release/*`: the same, released at once. Reported per operation,
//!   so throughput is 1 / time. r2d2 blocks, so it runs on 64 OS threads instead
//!   (`std::thread::yield_now` for the yield). `switchboard_on_runtime` runs the
//!   tasks on the manager's own runtime with `acquire_on_runtime` (no hop between
//!   runtimes), to show what `acquire().await`'s hop costs.
//! - fairness (not criterion): a pool of 1, 64 tasks, each acquire → yield →
//!   release 100 times, `SB_BENCH_REPS` (default 7) repetitions; prints hand-offs/s
//!   and the wait percentiles of every repetition as JSON to `$SB_BENCH_OUT/fairness.json`
//!   (default `target/bench/fairness.json`). `SB_BENCH_FAIRNESS=0` skips it.
//!
//! Every wait is bounded: a repetition that takes longer than 60 s is abandoned and
//! reported as failed.

mod support;

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use support::*;
use switchboard_core::{AcquireOptions, Pool};
use tokio::runtime::{Handle, Runtime};

/// Tasks (or threads) sharing the pool in the contended and fairness runs.
const TASKS: usize = 64;
/// Worker threads of the runtime the tasks run on.
const WORKERS: usize = 2;
/// Acquire+release cycles per task in one fairness repetition.
const FAIRNESS_CYCLES: usize = 100;
/// A repetition that has not finished by then is abandoned.
const REP_LIMIT: Duration = Duration::from_secs(60);

/// An async pool as the contended scenarios use it.
trait AsyncPool: Send + Sync + 'static {
    type Lease<'a>: Send
    where
        Self: 'a;
    fn get(&self) -> impl Future<Output = Self::Lease<'_>> + Send;
}

impl AsyncPool for Pool<CounterConnector> {
    type Lease<'a> = switchboard_core::Lease<CounterConnector>;
    async fn get(&self) -> Self::Lease<'_> {
        self.acquire().await.expect("switchboard acquire")
    }
}

/// switchboard with the acquiring tasks on the manager's own runtime, using
/// `acquire_on_runtime` (no hop to that runtime and back): shows what the hop of
/// `acquire().await` costs under contention.
struct OnRuntime(Pool<CounterConnector>);

impl AsyncPool for OnRuntime {
    type Lease<'a> = switchboard_core::Lease<CounterConnector>;
    async fn get(&self) -> Self::Lease<'_> {
        self.0
            .acquire_on_runtime(AcquireOptions::default())
            .await
            .expect("switchboard acquire_on_runtime")
    }
}

impl AsyncPool for DeadPool {
    type Lease<'a> = deadpool::managed::Object<DeadpoolManager>;
    async fn get(&self) -> Self::Lease<'_> {
        DeadPool::get(self).await.expect("deadpool get")
    }
}

impl AsyncPool for bb8::Pool<Bb8Manager> {
    type Lease<'a> = bb8::PooledConnection<'a, Bb8Manager>;
    async fn get(&self) -> Self::Lease<'_> {
        bb8::Pool::get(self).await.expect("bb8 get")
    }
}

impl AsyncPool for SemPool {
    type Lease<'a> = SemLease;
    async fn get(&self) -> SemLease {
        SemPool::get(self).await
    }
}

/// The floor under contention: pop, or yield and try again (no fairness at all).
struct SpinQueue(crossbeam_queue::ArrayQueue<u64>);

struct SpinLease<'a>(&'a SpinQueue, u64);

impl Drop for SpinLease<'_> {
    fn drop(&mut self) {
        let _ = self.0.0.push(self.1);
    }
}

impl AsyncPool for SpinQueue {
    type Lease<'a> = SpinLease<'a>;
    async fn get(&self) -> SpinLease<'_> {
        loop {
            if let Some(v) = self.0.pop() {
                return SpinLease(self, v);
            }
            tokio::task::yield_now().await;
        }
    }
}

fn multi_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn current_thread_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Opens all `size` connections of the pool and returns them, so that every run
/// starts warm.
async fn warm<P: AsyncPool>(pool: &P, size: usize) {
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.get().await);
    }
    drop(held);
}

/// `TASKS` tasks each doing `cycles` acquire → (yield) → release. Returns the
/// elapsed time and, when `record`, every acquire's wait in nanoseconds.
async fn storm<P: AsyncPool>(
    pool: &Arc<P>,
    cycles: usize,
    hold: bool,
    record: bool,
) -> Option<(Duration, Vec<u64>)> {
    storm_on(&Handle::current(), pool, cycles, hold, record).await
}

/// [`storm`] with the tasks spawned on the runtime of `on`.
async fn storm_on<P: AsyncPool>(
    on: &Handle,
    pool: &Arc<P>,
    cycles: usize,
    hold: bool,
    record: bool,
) -> Option<(Duration, Vec<u64>)> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let pool = pool.clone();
        handles.push(on.spawn(async move {
            let mut waits = Vec::with_capacity(if record { cycles } else { 0 });
            for _ in 0..cycles {
                let t = record.then(Instant::now);
                let lease = pool.get().await;
                if let Some(t) = t {
                    waits.push(t.elapsed().as_nanos() as u64);
                }
                if hold {
                    tokio::task::yield_now().await;
                }
                drop(black_box(lease));
            }
            waits
        }));
    }
    let mut all = Vec::with_capacity(if record { TASKS * cycles } else { 0 });
    let joined = tokio::time::timeout(REP_LIMIT, async {
        for h in &mut handles {
            all.extend(h.await.expect("bench task"));
        }
    })
    .await;
    if joined.is_err() {
        for h in &handles {
            h.abort();
        }
        eprintln!("a contended repetition took longer than {REP_LIMIT:?}: abandoned");
        return None;
    }
    Some((start.elapsed(), all))
}

/// r2d2 is a blocking pool: the same storm on `TASKS` OS threads.
fn storm_r2d2(
    pool: &r2d2::Pool<R2d2Manager>,
    cycles: usize,
    hold: bool,
    record: bool,
) -> (Duration, Vec<u64>) {
    let start = Instant::now();
    let mut all = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                s.spawn(|| {
                    let mut waits = Vec::with_capacity(if record { cycles } else { 0 });
                    for _ in 0..cycles {
                        let t = record.then(Instant::now);
                        // Bounded by r2d2's connection_timeout (30 s by default).
                        let conn = pool.get().expect("r2d2 get");
                        if let Some(t) = t {
                            waits.push(t.elapsed().as_nanos() as u64);
                        }
                        if hold {
                            std::thread::yield_now();
                        }
                        drop(black_box(conn));
                    }
                    waits
                })
            })
            .collect();
        for h in handles {
            all.extend(h.join().expect("bench thread"));
        }
    });
    (start.elapsed(), all)
}

/// The time criterion sees for `iters` operations when `TASKS` tasks share them.
fn per_iters(elapsed: Duration, iters: u64, cycles: usize) -> Duration {
    let done = (TASKS * cycles) as f64;
    elapsed.mul_f64(iters as f64 / done)
}

fn cycles_for(iters: u64) -> usize {
    (iters as usize).div_ceil(TASKS).max(1)
}

fn uncontended(c: &mut Criterion) {
    let rt = current_thread_runtime();
    let manager = switchboard_manager();
    let sb = switchboard_pool(&manager, "uncontended", POOL_SIZE);
    let dp = deadpool_pool(POOL_SIZE);
    let b8 = rt.block_on(async { bb8_pool(POOL_SIZE) });
    let r2 = r2d2_pool(POOL_SIZE);
    let sem = SemPool::new(POOL_SIZE);
    let aq = array_queue(POOL_SIZE);
    rt.block_on(async {
        warm(&sb, POOL_SIZE).await;
        warm(&dp, POOL_SIZE).await;
        warm(&b8, POOL_SIZE).await;
        warm(&sem, POOL_SIZE).await;
    });

    let mut g = c.benchmark_group("uncontended");
    g.bench_function("switchboard_try", |b| {
        b.iter(|| {
            let lease = sb.try_acquire().expect("try_acquire").expect("idle");
            black_box(*lease);
        })
    });
    g.bench_function("switchboard", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let lease = sb.acquire().await.expect("acquire");
                    black_box(*lease);
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("deadpool", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let obj = dp.get().await.expect("deadpool get");
                    black_box(*obj);
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("bb8", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let conn = b8.get().await.expect("bb8 get");
                    black_box(*conn);
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("r2d2", |b| {
        b.iter(|| {
            let conn = r2.get().expect("r2d2 get");
            black_box(*conn);
        })
    });
    g.bench_function("semaphore_vec", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let lease = sem.get().await;
                    black_box(*lease);
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("array_queue", |b| {
        b.iter(|| {
            let v = aq.pop().expect("pre-filled");
            let _ = aq.push(black_box(v));
        })
    });
    g.finish();
    drop(rt);
    let _ = manager.close(Duration::from_secs(5));
}

fn contended(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let manager = switchboard_manager();
    let sb = Arc::new(switchboard_pool(&manager, "contended", POOL_SIZE));
    let sb_rt = Arc::new(OnRuntime((*sb).clone()));
    let sb_handle = sb.runtime().handle().clone();
    let dp = Arc::new(deadpool_pool(POOL_SIZE));
    let b8 = Arc::new(rt.block_on(async { bb8_pool(POOL_SIZE) }));
    let r2 = r2d2_pool(POOL_SIZE);
    let sem = Arc::new(SemPool::new(POOL_SIZE));
    let aq = Arc::new(SpinQueue(array_queue(POOL_SIZE)));
    rt.block_on(async {
        warm(&*sb, POOL_SIZE).await;
        warm(&*dp, POOL_SIZE).await;
        warm(&*b8, POOL_SIZE).await;
        warm(&*sem, POOL_SIZE).await;
    });

    for (group, hold) in [("contended_hold", true), ("contended_release", false)] {
        let mut g = c.benchmark_group(group);
        g.sampling_mode(SamplingMode::Flat);
        macro_rules! bench_async {
            ($name:literal, $pool:expr) => {
                g.bench_function($name, |b| {
                    b.iter_custom(|iters| {
                        let cycles = cycles_for(iters);
                        let r = rt.block_on(storm($pool, cycles, hold, false));
                        // An abandoned repetition counts as the whole limit.
                        let elapsed = r.map_or(REP_LIMIT, |(d, _)| d);
                        per_iters(elapsed, iters, cycles)
                    })
                });
            };
        }
        bench_async!("switchboard", &sb);
        g.bench_function("switchboard_on_runtime", |b| {
            b.iter_custom(|iters| {
                let cycles = cycles_for(iters);
                let r = rt.block_on(storm_on(&sb_handle, &sb_rt, cycles, hold, false));
                per_iters(r.map_or(REP_LIMIT, |(d, _)| d), iters, cycles)
            })
        });
        bench_async!("deadpool", &dp);
        bench_async!("bb8", &b8);
        bench_async!("semaphore_vec", &sem);
        bench_async!("array_queue", &aq);
        g.bench_function("r2d2_threads", |b| {
            b.iter_custom(|iters| {
                let cycles = cycles_for(iters);
                let (elapsed, _) = storm_r2d2(&r2, cycles, hold, false);
                per_iters(elapsed, iters, cycles)
            })
        });
        g.finish();
    }
    drop(rt);
    let _ = manager.close(Duration::from_secs(5));
}

/// One fairness repetition's numbers.
struct Rep {
    handoffs_per_s: f64,
    p50: u64,
    p99: u64,
    max: u64,
}

fn summarise(elapsed: Duration, mut waits: Vec<u64>) -> Rep {
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    Rep {
        handoffs_per_s: waits.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: *waits.last().unwrap_or(&0),
    }
}

/// Pool of 1, `TASKS` tasks: hand-offs per second and how long each acquire waited.
fn fairness() {
    let reps: usize = std::env::var("SB_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .clamp(1, 100);
    let rt = multi_thread_runtime();
    let manager = switchboard_manager();
    let sb = Arc::new(switchboard_pool(&manager, "fairness", 1));
    let sb_rt = Arc::new(OnRuntime((*sb).clone()));
    let sb_handle = sb.runtime().handle().clone();
    let dp = Arc::new(deadpool_pool(1));
    let b8 = Arc::new(rt.block_on(async { bb8_pool(1) }));
    let r2 = r2d2_pool(1);
    let sem = Arc::new(SemPool::new(1));
    rt.block_on(async {
        warm(&*sb, 1).await;
        warm(&*dp, 1).await;
        warm(&*b8, 1).await;
        warm(&*sem, 1).await;
    });

    let mut out = String::from("{\n");
    out += &format!(
        "  \"tasks\": {TASKS}, \"workers\": {WORKERS}, \"cycles_per_task\": {FAIRNESS_CYCLES}, \"pool_size\": 1,\n  \"pools\": {{\n"
    );
    let mut entries = Vec::new();
    let kinds = [
        "switchboard",
        "switchboard_on_runtime",
        "deadpool",
        "bb8",
        "semaphore_vec",
        "r2d2_threads",
    ];
    for kind in kinds {
        let mut rows = Vec::new();
        for _ in 0..reps {
            let r = match kind {
                "switchboard" => rt.block_on(storm(&sb, FAIRNESS_CYCLES, true, true)),
                "switchboard_on_runtime" => {
                    rt.block_on(storm_on(&sb_handle, &sb_rt, FAIRNESS_CYCLES, true, true))
                }
                "deadpool" => rt.block_on(storm(&dp, FAIRNESS_CYCLES, true, true)),
                "bb8" => rt.block_on(storm(&b8, FAIRNESS_CYCLES, true, true)),
                "semaphore_vec" => rt.block_on(storm(&sem, FAIRNESS_CYCLES, true, true)),
                _ => Some(storm_r2d2(&r2, FAIRNESS_CYCLES, true, true)),
            };
            match r {
                Some((elapsed, waits)) if !waits.is_empty() => {
                    let s = summarise(elapsed, waits);
                    rows.push(format!(
                        "{{\"handoffs_per_s\": {:.1}, \"wait_p50_ns\": {}, \"wait_p99_ns\": {}, \"wait_max_ns\": {}}}",
                        s.handoffs_per_s, s.p50, s.p99, s.max
                    ));
                }
                _ => rows.push("{\"failed\": true}".to_string()),
            }
        }
        eprintln!("fairness/{kind}: {} repetitions", rows.len());
        entries.push(format!(
            "    \"{kind}\": [\n      {}\n    ]",
            rows.join(",\n      ")
        ));
    }
    out += &entries.join(",\n");
    out += "\n  }\n}\n";

    // cargo runs benchmarks in the package's directory: default to the workspace's
    // target/ rather than a stray core/target.
    let dir = std::env::var("SB_BENCH_OUT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench").to_string());
    let path = std::path::Path::new(&dir).join("fairness.json");
    let _ = std::fs::create_dir_all(&dir);
    match std::fs::write(&path, out) {
        Ok(()) => eprintln!("fairness: wrote {}", path.display()),
        Err(e) => eprintln!("fairness: cannot write {}: {e}", path.display()),
    }
    drop(rt);
    let _ = manager.close(Duration::from_secs(5));
}

fn main() {
    // Short enough for `make bench` to stay within minutes on 2 cores; every
    // setting can be overridden on the command line (`-- --measurement-time 5`).
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .nresamples(10_000)
        .configure_from_args();
    uncontended(&mut c);
    contended(&mut c);
    c.final_summary();
    if std::env::var("SB_BENCH_FAIRNESS").as_deref() != Ok("0") {
        fairness();
    }
}
