//! The Rust example: pool connections to an echo server and show reuse.
//!
//! `cargo run -p switchboard-core --example echo -- tcp://127.0.0.1:7000`

use std::time::Duration;

use switchboard_core::{AcquireOptions, Config, Manager};

fn main() -> Result<(), switchboard_core::Error> {
    let target = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:7000".to_string());

    let manager = Manager::new(&Config::new())?;
    let mut pool_cfg = Config::new();
    pool_cfg.set("pool.max_size", "4")?;
    pool_cfg.set("pool.acquire_timeout", "2s")?;
    let pool = manager.pool("echo", &target, &pool_cfg)?;

    let lease = pool.acquire_blocking(AcquireOptions::default())?;
    lease.send_all(b"hello from Rust\n")?;
    let mut buf = [0u8; 64];
    let n = lease.recv(&mut buf)?;
    println!(
        "rust: connection #{} echoed {:?}",
        lease.id(),
        String::from_utf8_lossy(&buf[..n]).trim_end()
    );
    let first = lease.id();
    lease.release();

    let lease = pool.acquire_blocking(AcquireOptions::default())?;
    println!(
        "rust: reacquired connection #{} (reused: {})",
        lease.id(),
        lease.id() == first
    );
    drop(lease);

    let s = pool.stats();
    println!(
        "rust: pool \"{}\": {} open, {} idle, {} acquires",
        s.name, s.size, s.idle, s.acquired_total
    );
    manager.close(Duration::from_secs(2))?;
    println!("rust: manager closed");
    Ok(())
}
