//! HikariCP's spike test (issue 13's target row): 50 callers at once against a pool
//! with min_idle 5 and max_size 50 whose connects take 150 ms, each lease held 20 ms.
//! Counts the connections opened beyond min_idle and times the spike, with
//! `pool.scale_ahead` off and on (0.1, so that it is at work from the fifth lease).
//!
//! `cargo bench -p switchboard-core --bench spike` prints one line per mode and, when
//! `SB_BENCH_OUT` is set, writes `$SB_BENCH_OUT/spike.json` for bench/summarise.py
//! (`make bench` runs it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_core::{AcquireOptions, Config, Endpoint, FnConnector, Manager};

const CALLERS: usize = 50;
const MIN_IDLE: u64 = 5;
const CONNECT: Duration = Duration::from_millis(150);
const HOLD: Duration = Duration::from_millis(20);

/// One spike: (connections opened beyond min_idle, time until every caller was served).
fn spike(m: &Manager, name: &str, scale_ahead: &str) -> (u64, Duration) {
    let opened = Arc::new(AtomicUsize::new(0));
    let o = opened.clone();
    let connector = FnConnector::new(move |_ep: &Endpoint| {
        let o = o.clone();
        Box::pin(async move {
            tokio::time::sleep(CONNECT).await;
            Ok(o.fetch_add(1, Ordering::SeqCst))
        })
    });
    let mut cfg = Config::new();
    for (k, v) in [
        ("pool.max_size", "50"),
        ("pool.min_idle", "5"),
        ("pool.scale_ahead", scale_ahead),
    ] {
        cfg.set(k, v).expect("config");
    }
    let pool = m
        .pool_with(name, "slow://db", &cfg, connector)
        .expect("pool");
    pool.warm_blocking().expect("warm");
    let settle = |what: &str| {
        let end = Instant::now() + Duration::from_secs(10);
        while pool.stats().connecting != 0 {
            assert!(Instant::now() < end, "{what}: connects never finished");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    settle("warm");
    let before = pool.stats().created_total;
    assert_eq!(before, MIN_IDLE, "warm opened more than min_idle");
    let started = Instant::now();
    let threads: Vec<_> = (0..CALLERS)
        .map(|_| {
            let p = pool.clone();
            std::thread::spawn(move || {
                let l = p
                    .acquire_blocking(AcquireOptions {
                        timeout: Some(Duration::from_secs(30)),
                        priority: 0,
                    })
                    .expect("acquire");
                std::thread::sleep(HOLD);
                drop(l);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("caller");
    }
    let took = started.elapsed();
    settle("spike");
    let s = pool.stats();
    assert_eq!(s.acquired_total, CALLERS as u64);
    (s.created_total - MIN_IDLE, took)
}

fn main() {
    let reps: usize = std::env::var("SB_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1);
    let m = Manager::new(&Config::new()).expect("manager");
    let mut json = Vec::new();
    for (mode, fraction) in [("off", "0"), ("on", "0.1")] {
        let mut beyond = Vec::new();
        let mut ms = Vec::new();
        for r in 0..reps {
            let (b, took) = spike(&m, &format!("spike_{mode}_{r}"), fraction);
            beyond.push(b);
            ms.push(took.as_secs_f64() * 1000.0);
        }
        beyond.sort_unstable();
        ms.sort_by(f64::total_cmp);
        let (med, max) = (beyond[beyond.len() / 2], beyond[beyond.len() - 1]);
        let (ms_med, ms_max) = (ms[ms.len() / 2], ms[ms.len() - 1]);
        println!(
            "spike (HikariCP's: {CALLERS} callers, {} ms connect, min_idle {MIN_IDLE}, max_size 50, scale_ahead {fraction}): {med} connections opened beyond min_idle (median, max {max}); every caller served in {ms_med:.0} ms (median, max {ms_max:.0}) over {reps} runs",
            CONNECT.as_millis()
        );
        json.push(format!(
            "\"{mode}\":{{\"scale_ahead\":{fraction},\"beyond_min_idle_median\":{med},\"beyond_min_idle_max\":{max},\"served_ms_median\":{ms_med:.1},\"served_ms_max\":{ms_max:.1},\"runs\":{reps}}}"
        ));
    }
    if let Some(out) = std::env::var_os("SB_BENCH_OUT") {
        let path = std::path::Path::new(&out).join("spike.json");
        if let Err(e) = std::fs::write(&path, format!("{{{}}}\n", json.join(","))) {
            eprintln!("spike: could not write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let _ = m.close(Duration::from_secs(5));
}
