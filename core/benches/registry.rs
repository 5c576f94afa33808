//! The registry's targets (issue 9): broadcast to a topic of 10,000 connections, and
//! memory per registered connection.
//!
//! `cargo bench -p switchboard-core --bench registry` prints lines for
//! bench/RESULTS.md and one JSON line per measurement to `$SB_BENCH_OUT/registry.jsonl`
//! when that is set (bench/run.sh sets it). Targets: at least 20 million recipient
//! enqueues per second and a report within 1 ms for 10,000 recipients; at most 1 KiB
//! per connection beyond the program's own strings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard_core::registry::{ConnId, Message, Registration, SendOutcome, Sink, Target};
use switchboard_core::{Config, Manager};

/// Counts live heap bytes (requested sizes).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
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

/// A send callback that does nothing but count.
struct Noop(AtomicU64);

impl Sink for Noop {
    fn send(&self, _id: ConnId, _msg: &Message) -> SendOutcome {
        self.0.fetch_add(1, Ordering::Relaxed);
        SendOutcome::Sent
    }
}

fn unlimited() -> Config {
    let mut c = Config::new();
    for k in [
        "registry.max_total_connections",
        "registry.max_connections_per_topic",
        "registry.max_connections_per_user",
    ] {
        c.set(k, "0").expect("limit key");
    }
    c
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn jsonl(line: &str) {
    if let Ok(dir) = std::env::var("SB_BENCH_OUT") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::path::Path::new(&dir).join("registry.jsonl"))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

const FANOUT: usize = 10_000;

/// Broadcasts to 10,000 send callbacks: the call's time, and the time until the
/// delivery tasks have called every callback.
fn broadcast_callbacks(reps: usize) -> (Duration, Duration) {
    let m = Manager::new(&unlimited()).expect("manager");
    m.set_event_callback(Some(Arc::new(|_e: &switchboard_core::Event| {})));
    let r = m.registry();
    let sink = Arc::new(Noop(AtomicU64::new(0)));
    for _ in 0..FANOUT {
        r.register(Registration::new().topics(["t"]), sink.clone())
            .expect("register");
    }
    let msg = Message::text("{\"type\":\"data\",\"data\":42}");
    let target = Target::topic("t");
    let (mut calls, mut all) = (Vec::new(), Vec::new());
    for i in 0..reps + 5 {
        let want = (i as u64 + 1) * FANOUT as u64;
        let t = Instant::now();
        let rep = r.broadcast(&target, msg.clone()).expect("broadcast");
        let call = t.elapsed();
        assert_eq!(rep.queued, FANOUT as u64);
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.0.load(Ordering::Relaxed) < want {
            assert!(Instant::now() < deadline, "deliveries did not finish");
            std::hint::spin_loop();
        }
        if i >= 5 {
            calls.push(call);
            all.push(t.elapsed());
        }
        // Broadcasts come at intervals in a server: let the delivery tasks finish
        // their round and park before the next one, so each call is measured alone.
        std::thread::sleep(Duration::from_millis(2));
    }
    m.close(Duration::from_secs(5)).expect("close");
    (median(calls), median(all))
}

/// Broadcasts to 10,000 outboxes (the enqueue alone; drained between calls).
fn broadcast_outboxes(reps: usize) -> Duration {
    let m = Manager::new(&unlimited()).expect("manager");
    m.set_event_callback(Some(Arc::new(|_e: &switchboard_core::Event| {})));
    let r = m.registry();
    let boxes: Vec<_> = (0..FANOUT)
        .map(|_| {
            r.register_outbox(Registration::new().topics(["t"]))
                .expect("register")
        })
        .collect();
    let msg = Message::text("{\"type\":\"data\",\"data\":42}");
    let target = Target::topic("t");
    let mut calls = Vec::new();
    for i in 0..reps + 5 {
        let t = Instant::now();
        r.broadcast(&target, msg.clone()).expect("broadcast");
        if i >= 5 {
            calls.push(t.elapsed());
        }
        for b in &boxes {
            b.try_next().expect("queued");
        }
    }
    drop(boxes);
    m.close(Duration::from_secs(5)).expect("close");
    median(calls)
}

const CONNS: usize = 100_000;

/// Heap bytes per registered connection (user, 3 metadata entries, 2 topics, a
/// shared send callback), and the program's own string bytes per connection.
fn memory() -> (f64, f64, f64) {
    let m = Manager::new(&unlimited()).expect("manager");
    m.set_event_callback(Some(Arc::new(|_e: &switchboard_core::Event| {})));
    let r = m.registry();
    let sink: Arc<dyn Sink> = Arc::new(Noop(AtomicU64::new(0)));
    // Everything from here on counts: the registrations' strings (which the registry
    // keeps or lets go of) and the registry's own records and indexes.
    let before = LIVE.load(Ordering::Relaxed);
    let regs: Vec<Registration> = (0..CONNS)
        .map(|i| {
            Registration::new()
                .user(format!("user-{i}"))
                .meta(
                    "ip",
                    format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                )
                .meta("agent", "Mozilla/5.0")
                .meta("room", format!("room-{}", i % 100))
                .topics([format!("topic-{}", i % 1000), "all".to_string()])
        })
        .collect();
    let strings: usize = regs
        .iter()
        .map(|g| {
            g.user.as_ref().map_or(0, String::len)
                + g.metadata
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
                + g.topics.iter().map(String::len).sum::<usize>()
        })
        .sum();
    let t = Instant::now();
    for g in regs {
        r.register(g, sink.clone()).expect("register");
    }
    let took = t.elapsed();
    let total = (LIVE.load(Ordering::Relaxed) - before) as f64;
    m.close(Duration::from_secs(5)).expect("close");
    let per = total / CONNS as f64;
    let own = strings as f64 / CONNS as f64;
    (per, own, took.as_secs_f64() * 1e9 / CONNS as f64)
}

/// `instr <outbox|callback> <N>`: N broadcasts to 10,000 connections and nothing
/// else, for callgrind (bench/run.sh runs two N and takes the difference, so the
/// registrations cancel out).
fn instr(kind: &str, n: usize) {
    let m = Manager::new(&unlimited()).expect("manager");
    m.set_event_callback(Some(Arc::new(|_e: &switchboard_core::Event| {})));
    let r = m.registry();
    let msg = Message::text("{\"type\":\"data\",\"data\":42}");
    let target = Target::topic("t");
    if kind == "callback" {
        let sink = Arc::new(Noop(AtomicU64::new(0)));
        for _ in 0..FANOUT {
            r.register(Registration::new().topics(["t"]), sink.clone())
                .expect("register");
        }
        for i in 0..n {
            r.broadcast(&target, msg.clone()).expect("broadcast");
            let want = (i as u64 + 1) * FANOUT as u64;
            while sink.0.load(Ordering::Relaxed) < want {
                std::thread::yield_now();
            }
        }
    } else {
        let boxes: Vec<_> = (0..FANOUT)
            .map(|_| {
                r.register_outbox(Registration::new().topics(["t"]))
                    .expect("register")
            })
            .collect();
        for _ in 0..n {
            r.broadcast(&target, msg.clone()).expect("broadcast");
            for b in &boxes {
                b.try_next().expect("queued");
            }
        }
    }
    m.close(Duration::from_secs(5)).expect("close");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "instr") {
        let kind = args.get(i + 1).map_or("outbox", String::as_str);
        let n = args.get(i + 2).and_then(|v| v.parse().ok()).unwrap_or(10);
        instr(kind, n);
        return;
    }
    let reps: usize = std::env::var("SB_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(200, |n: usize| (n * 30).max(50));
    let (call, all) = broadcast_callbacks(reps);
    let outbox = broadcast_outboxes(reps);
    let rate = |d: Duration| FANOUT as f64 / d.as_secs_f64();
    println!(
        "registry: broadcast to a topic of {FANOUT} send callbacks (no-op): the call {:.0} us ({:.1} M recipient enqueues/s; target >= 20 M/s and a report within 1 ms), all {FANOUT} callbacks run {:.0} us after it began; to {FANOUT} outboxes: {:.0} us ({:.1} M/s); median of {reps}",
        call.as_secs_f64() * 1e6,
        rate(call) / 1e6,
        all.as_secs_f64() * 1e6,
        outbox.as_secs_f64() * 1e6,
        rate(outbox) / 1e6,
    );
    jsonl(&format!(
        "{{\"lang\":\"rust\",\"op\":\"broadcast_10k\",\"call_ns\":{},\"all_delivered_ns\":{},\"outbox_call_ns\":{}}}",
        call.as_nanos(),
        all.as_nanos(),
        outbox.as_nanos()
    ));
    let (per, own, reg_ns) = memory();
    let beyond = per - own;
    println!(
        "registry: {CONNS} connections with a user, 3 metadata entries and 2 topics take {per:.0} B each, {beyond:.0} B beyond the program's own {own:.0} B of strings (target <= 1024); register {:.2} us each",
        reg_ns / 1000.0
    );
    jsonl(&format!(
        "{{\"lang\":\"rust\",\"op\":\"memory_100k\",\"bytes_per_conn\":{per:.0},\"beyond_strings\":{beyond:.0},\"register_ns\":{reg_ns:.0}}}"
    ));
}
