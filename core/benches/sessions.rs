//! Memory per open session, measured exactly with a counting global allocator, and the
//! cost of the counting and commit calls.
//!
//! `cargo bench -p switchboard-core --bench sessions` prints a line for
//! bench/RESULTS.md. Target: under 1 KiB per session beyond its stream names.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_core::{Config, Manager, SessionDetails};

/// Counts live heap bytes (requested sizes).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SESSIONS: usize = 100_000;
const STREAMS: [&str; 3] = ["trades", "book", "news"];

fn main() {
    let m = Manager::new(&Config::new()).expect("manager");
    // Events go to a callback that drops them, so the event queue holds nothing.
    m.set_event_callback(Some(Arc::new(|_e: &switchboard_core::Event| {})));
    let s = m.sessions();
    s.register("quotes", "eu").expect("register");
    let details = SessionDetails::new("quotes", "eu")
        .streams(STREAMS)
        .offsets([0, 0, 0]);

    let before = LIVE.load(Ordering::Relaxed);
    let blocks_before = LIVE_BLOCKS.load(Ordering::Relaxed);
    let t = Instant::now();
    let mut ids = Vec::with_capacity(SESSIONS);
    let ids_bytes = LIVE.load(Ordering::Relaxed) - before;
    for _ in 0..SESSIONS {
        ids.push(s.open(&details).expect("open"));
    }
    let open_time = t.elapsed();
    let blocks = (LIVE_BLOCKS.load(Ordering::Relaxed) - blocks_before - 1) as f64 / SESSIONS as f64;
    let total = (LIVE.load(Ordering::Relaxed) - before - ids_bytes) as f64;
    let names: usize = STREAMS.iter().map(|n| n.len()).sum();
    let per = total / SESSIONS as f64;
    let beyond = per - names as f64;

    // Counting calls by id (shard lock + stream lookup) and by handle (atomics only).
    let n = 1_000_000u32;
    let t = Instant::now();
    for i in 0..n {
        let id = ids[i as usize % SESSIONS];
        s.deliver(id, "book", 1, 100, 0).expect("deliver");
    }
    let by_id = t.elapsed() / n;
    let h = s.stream_handle(ids[0], "book").expect("handle");
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(h.deliver(1, 100, 0));
    }
    let by_handle = t.elapsed() / n;
    let commits = 100_000u32;
    let t = Instant::now();
    for i in 0..commits {
        s.commit(ids[1], "trades", i64::from(i)).expect("commit");
    }
    let commit_mem = t.elapsed() / commits;

    let t = Instant::now();
    for id in &ids {
        s.close(*id).expect("close");
    }
    let close_time = t.elapsed();
    let left = LIVE.load(Ordering::Relaxed) - before - ids_bytes;

    println!(
        "sessions: {SESSIONS} open sessions with {} streams ({names} bytes of names) take {per:.0} B each, {beyond:.0} B beyond the stream names (target < 1024; requested bytes in {blocks:.1} allocations, malloc adds ~16 B to each); open {:.2} us, close {:.2} us, deliver by id {} ns, by handle {} ns, commit (memory store) {} ns; {left} B left after closing all",
        STREAMS.len(),
        us(open_time / SESSIONS as u32),
        us(close_time / SESSIONS as u32),
        by_id.as_nanos(),
        by_handle.as_nanos(),
        commit_mem.as_nanos(),
    );
    m.close(Duration::from_secs(5)).expect("close manager");
    let (every, interval) = (durable_commit("every_commit"), durable_commit("interval"));
    println!(
        "sessions: commit to the durable store (redb, {}): every_commit {} us (write + fsync), interval {:.1} us",
        std::env::temp_dir().display(),
        every.as_micros(),
        us(interval)
    );
    match redis_commits() {
        Some(((every, p99), interval)) => println!(
            "sessions: commit to the Redis store (offsets.store = redis, a loopback redis-server with appendonly yes, appendfsync always): every_commit {:.0} us per commit ({:.0} commits/s, p99 {:.0} us), interval {:.1} us; redb above, same run",
            us(every),
            1.0 / every.as_secs_f64(),
            us(p99),
            us(interval)
        ),
        None => println!(
            "sessions: commit to the Redis store: not measured (no redis-server on PATH or in SB_REDIS_SERVER)"
        ),
    }
    if beyond >= 1024.0 {
        eprintln!("over the 1 KiB target");
        std::process::exit(1);
    }
}

/// Time per commit to a durable store in `sync` mode.
fn durable_commit(sync: &str) -> Duration {
    let path = std::env::temp_dir().join(format!("sb-bench-{}-{sync}.redb", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut c = Config::new();
    c.set("offsets.path", path.to_str().expect("utf-8 temp dir"))
        .expect("offsets.path");
    c.set("offsets.sync", sync).expect("offsets.sync");
    let m = Manager::new(&c).expect("manager");
    let s = m.sessions();
    s.register("quotes", "eu").expect("register");
    let id = s
        .open(&SessionDetails::new("quotes", "eu").streams(["trades"]))
        .expect("open");
    let n = 200u32;
    let t = Instant::now();
    for i in 0..n {
        s.commit(id, "trades", i64::from(i)).expect("commit");
    }
    let per = t.elapsed() / n;
    m.close(Duration::from_secs(5)).expect("close manager");
    let _ = std::fs::remove_file(&path);
    per
}

/// Commits to a Redis store on a redis-server started here: (mean, p99) with
/// `every_commit`, and the mean with `interval`.
fn redis_commits() -> Option<((Duration, Duration), Duration)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let dir = std::env::temp_dir().join(format!("sb-bench-redis-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let bin = std::env::var("SB_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let mut child = std::process::Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let up = (0..2000).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let run = |sync: &str| -> Option<(Duration, Duration)> {
        let mut c = Config::new();
        c.set("offsets.store", "redis").ok()?;
        c.set("offsets.redis_url", &format!("redis://127.0.0.1:{port}/0"))
            .ok()?;
        c.set("offsets.sync", sync).ok()?;
        let m = Manager::new(&c).ok()?;
        let s = m.sessions();
        s.register("quotes", "eu").ok()?;
        let id = s
            .open(&SessionDetails::new("quotes", "eu").streams(["trades"]))
            .ok()?;
        let mut times = Vec::with_capacity(2000);
        for i in 0..2000 {
            let t = Instant::now();
            s.commit(id, "trades", i).ok()?;
            times.push(t.elapsed());
        }
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        times.sort();
        let p99 = times[times.len() * 99 / 100];
        m.close(Duration::from_secs(5)).ok()?;
        Some((mean, p99))
    };
    let got = if up {
        run("every_commit").zip(run("interval").map(|(mean, _)| mean))
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    got
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
