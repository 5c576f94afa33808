//! Cancellation matrix in the style of deadpool's `managed_cancellation.rs`: every
//! combination of {ok, error, slow, never} for connect and check, with acquirers
//! cancelled at random points. After each, no connection or slot is lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::wait_until;
use switchboard_core::random::unit;
use switchboard_core::{Config, Endpoint, Error, FnConnector, Manager};

#[derive(Debug, Clone, Copy)]
enum Hook {
    Ok,
    Fail,
    Slow,
    Never,
}

const HOOKS: [Hook; 4] = [Hook::Ok, Hook::Fail, Hook::Slow, Hook::Never];

async fn run(hook: Hook) -> Result<(), Error> {
    match hook {
        Hook::Ok => Ok(()),
        Hook::Fail => Err(Error::unavailable("hook failed")),
        Hook::Slow => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        }
        Hook::Never => std::future::pending().await,
    }
}

fn ms(max: f64) -> Duration {
    Duration::from_micros((unit() * max * 1000.0) as u64)
}

#[test]
fn every_hook_combination_leaks_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for connect in HOOKS {
        for check in HOOKS {
            let live = Arc::new(AtomicUsize::new(0));
            let (l1, l2) = (live.clone(), live.clone());
            let connector = FnConnector::new(move |_ep: &Endpoint| {
                let live = l1.clone();
                Box::pin(async move {
                    run(connect).await?;
                    live.fetch_add(1, Ordering::SeqCst);
                    Ok(1u8)
                })
            })
            .with_check(move |_c| Box::pin(run(check)))
            .with_close(move |_c| {
                l2.fetch_sub(1, Ordering::SeqCst);
            });
            let mut cfg = Config::new();
            for (k, v) in [
                ("pool.max_size", "3"),
                ("pool.max_overflow", "1"),
                ("pool.validate_after", "0"),
                ("pool.connect_timeout", "100ms"),
                ("pool.validation_timeout", "100ms"),
                ("pool.acquire_timeout", "300ms"),
            ] {
                cfg.set(k, v).unwrap();
            }
            let m = Manager::new(&Config::new()).unwrap();
            let pool = m.pool_with("m", "hooks://x", &cfg, connector).unwrap();

            let over = Arc::new(AtomicBool::new(false));
            let stop = Arc::new(AtomicBool::new(false));
            let sampler = {
                let (p, over, stop) = (pool.clone(), over.clone(), stop.clone());
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if p.stats().size > 4 {
                            over.store(true, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            };
            rt.block_on(async {
                let tasks: Vec<_> = (0..24)
                    .map(|_| {
                        let p = pool.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(ms(10.0)).await;
                            let got = tokio::time::timeout(ms(60.0), p.acquire()).await;
                            if let Ok(Ok(lease)) = got {
                                tokio::time::sleep(ms(5.0)).await;
                                if unit() < 0.2 {
                                    lease.discard();
                                }
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
            let settled = wait_until(Duration::from_secs(5), || {
                let s = pool.stats();
                s.connecting == 0 && s.waiting == 0 && s.leased == 0
            });
            stop.store(true, Ordering::SeqCst);
            sampler.join().unwrap();
            let s = pool.stats();
            let what = format!("connect={connect:?} check={check:?}: {s:?}");
            assert!(settled, "did not settle: {what}");
            assert!(!over.load(Ordering::SeqCst), "size exceeded 4: {what}");
            assert_eq!(s.size, s.idle, "a slot was lost: {what}");
            assert_eq!(
                live.load(Ordering::SeqCst),
                s.size,
                "connections leaked: {what}"
            );
            if matches!(connect, Hook::Ok | Hook::Slow) {
                // Long enough to probe (and close) every idle connection first.
                let l = pool.acquire_blocking(switchboard_core::AcquireOptions {
                    timeout: Some(Duration::from_secs(3)),
                    priority: 0,
                });
                assert!(l.is_ok(), "the pool still works: {what}: {l:?}");
            }
            m.close(Duration::from_secs(1)).unwrap();
            assert_eq!(live.load(Ordering::SeqCst), 0, "close closed all: {what}");
        }
    }
}
