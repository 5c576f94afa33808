//! The Prometheus text and the typed snapshot after a scripted run.

mod common;

use std::time::Duration;

use common::{EchoServer, wait_until};
use switchboard_core::{AcquireOptions, Config, Manager};

#[test]
fn prometheus_text_and_snapshot_after_a_scripted_run() {
    let server = EchoServer::start();
    let m = Manager::new(&Config::new()).unwrap();
    let mut cfg = Config::new();
    cfg.set("pool.max_size", "2").unwrap();
    let pool = m.pool("api", &server.target(), &cfg).unwrap();

    let a = pool.acquire_blocking(AcquireOptions::default()).unwrap(); // waited (connect)
    std::thread::sleep(Duration::from_millis(20));
    drop(a);
    let b = pool.acquire_blocking(AcquireOptions::default()).unwrap(); // direct
    let c = pool.acquire_blocking(AcquireOptions::default()).unwrap(); // waited (connect)
    let e = pool
        .acquire_blocking(AcquireOptions {
            timeout: Some(Duration::from_millis(30)),
            priority: 0,
        })
        .unwrap_err(); // timed out
    assert_eq!(e.code(), switchboard_core::Code::Timeout);
    c.discard();
    drop(b);
    assert!(wait_until(Duration::from_secs(5), || pool.stats().leased == 0));

    let s = pool.stats();
    assert_eq!(
        (
            s.acquired_direct_total,
            s.acquired_waited_total,
            s.timed_out_total
        ),
        (1, 2, 1)
    );
    assert_eq!(
        s.wait.count(),
        3,
        "every successful acquire has a wait time"
    );
    assert_eq!(s.lease.count(), 3);
    assert!(
        s.lease.max() >= Duration::from_millis(20),
        "{:?}",
        s.lease.max()
    );
    assert!(s.lease.quantile(0.99) <= s.lease.max());

    let text = m.metrics_text();
    for line in [
        "switchboard_pool_connections{pool=\"api\",state=\"idle\"} 1",
        "switchboard_pool_connections{pool=\"api\",state=\"leased\"} 0",
        "switchboard_pool_size{pool=\"api\"} 1",
        "switchboard_pool_max_size{pool=\"api\"} 2",
        "switchboard_pool_connections_created_total{pool=\"api\"} 2",
        "switchboard_pool_connections_closed_total{pool=\"api\",reason=\"discarded\"} 1",
        "switchboard_pool_connections_closed_total{pool=\"api\",reason=\"idle\"} 0",
        "switchboard_pool_acquires_total{pool=\"api\",result=\"direct\"} 1",
        "switchboard_pool_acquires_total{pool=\"api\",result=\"waited\"} 2",
        "switchboard_pool_acquires_total{pool=\"api\",result=\"timed_out\"} 1",
        "switchboard_pool_wait_seconds_count{pool=\"api\"} 3",
        "switchboard_pool_lease_seconds_count{pool=\"api\"} 3",
        "switchboard_pool_lease_seconds_bucket{le=\"+Inf\",pool=\"api\"} 3",
        "# TYPE switchboard_pool_wait_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}
