//! Streaming sessions: catalog, validation, offsets, limits, events, metrics, and a
//! durable store that keeps every acknowledged commit through SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchboard_core::{Code, Config, Error, EventKind, Manager, SessionDetails};

fn manager(pairs: &[(&str, &str)]) -> Manager {
    let mut c = Config::new();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    Manager::new(&c).unwrap()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-sessions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

#[track_caller]
fn assert_err(r: Result<impl std::fmt::Debug, Error>, code: Code, contains: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), code, "{}", e.message());
    assert!(
        e.message().contains(contains),
        "message {:?} should contain {contains:?}",
        e.message()
    );
}

fn drain(m: &Manager) -> Vec<(EventKind, Option<u64>, Option<String>)> {
    let mut out = Vec::new();
    while let Some(e) = m.poll_event(Duration::ZERO) {
        out.push((e.kind, e.session_id, e.stream));
    }
    out
}

#[test]
fn validation_errors_name_the_field() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("ds", "k").unwrap();
    let d = |streams: &[&str], offsets: &[i64]| {
        SessionDetails::new("ds", "k")
            .streams(streams.iter().copied())
            .offsets(offsets.iter().copied())
    };
    use Code::InvalidArgument as IA;
    assert_err(
        s.open(&SessionDetails::new("", "k")),
        IA,
        "data_source must be a non-empty string",
    );
    assert_err(
        s.open(&SessionDetails::new("ds", "")),
        IA,
        "session_key must be a non-empty string",
    );
    assert_err(
        s.open(&d(&["a", "b", "a"], &[])),
        IA,
        "streams[2] \"a\" repeats streams[0]",
    );
    assert_err(
        s.open(&d(&["a", ""], &[])),
        IA,
        "streams[1] must be a non-empty",
    );
    assert_err(
        s.open(&d(&["a", "b"], &[1])),
        IA,
        "stream_offsets has 1 entries but streams has 2",
    );
    assert_err(
        s.open(&d(&["a", "b"], &[1, -4])),
        IA,
        "stream_offsets[1] must be a non-negative offset",
    );
    assert_err(s.register("", "k"), IA, "data_source");
    assert_err(s.register("ds", ""), IA, "session_key");
    // Nothing was opened by the failures.
    assert_eq!(s.open_count(), 0);
    assert!(drain(&m).is_empty());

    let id = s.open(&d(&["a"], &[])).unwrap();
    assert_err(s.add_stream(id, "a", 0), IA, "already in session");
    assert_err(s.add_stream(id, "", 0), IA, "stream must be a non-empty");
    assert_err(
        s.add_stream(id, "b", -1),
        IA,
        "offset must be a non-negative",
    );
    assert_err(s.commit(id, "a", -1), IA, "offset must be a non-negative");
    assert_err(s.seek(id, "a", -1), IA, "offset must be a non-negative");
    assert_err(
        s.commit(id, "zz", 1),
        Code::NotFound,
        "no stream named \"zz\"",
    );
    assert_err(
        s.remove_stream(id, "zz"),
        Code::NotFound,
        "no stream named \"zz\"",
    );
    assert_err(
        s.get(id + 1_000_000),
        Code::NotFound,
        "no open session with id",
    );
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn catalog_decides_what_may_be_opened() {
    let m = manager(&[]);
    let s = m.sessions();
    let d = SessionDetails::new("quotes", "eu").streams(["t"]);
    assert_err(
        s.open(&d),
        Code::FailedPrecondition,
        "data source \"quotes\" has no registered session key \"eu\"",
    );
    assert!(s.register("quotes", "eu").unwrap());
    assert!(
        !s.register("quotes", "eu").unwrap(),
        "registering twice is a no-op"
    );
    assert!(s.register("quotes", "us").unwrap());
    assert_eq!(
        s.catalog().unwrap(),
        vec![
            ("quotes".to_string(), "eu".to_string()),
            ("quotes".to_string(), "us".to_string())
        ]
    );
    let id = s.open(&d).unwrap();
    assert_err(
        s.unregister("quotes", "eu"),
        Code::FailedPrecondition,
        "has 1 open session(s)",
    );
    s.close(id).unwrap();
    assert!(s.unregister("quotes", "eu").unwrap());
    assert!(!s.unregister("quotes", "eu").unwrap());
    assert!(!s.is_registered("quotes", "eu").unwrap());
    assert_err(s.open(&d), Code::FailedPrecondition, "register it first");
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn open_get_list_close() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("ds", "a").unwrap();
    s.register("ds", "b").unwrap();
    s.register("other", "a").unwrap();
    let d = SessionDetails::new("ds", "a")
        .streams(["x", "y", "z"])
        .offsets([5, 0, 42])
        .exclude_main_stream(true);
    let id1 = s.open(&d).unwrap();
    let info = s.get(id1).unwrap();
    assert_eq!(info.id, id1);
    assert_eq!(
        info.details(),
        d,
        "get shows the details with their offsets"
    );
    assert_eq!(info.stream("z").unwrap().position, 42);
    assert_eq!(info.stream("z").unwrap().committed, None);

    let id2 = s.open(&SessionDetails::new("ds", "b")).unwrap();
    let id3 = s
        .open(&SessionDetails::new("other", "a").streams(["q"]))
        .unwrap();
    assert!(id1 < id2 && id2 < id3, "ids grow: {id1} {id2} {id3}");
    assert_eq!(
        s.get(id3).unwrap().stream("q").unwrap().position,
        0,
        "no offsets: every stream starts at 0"
    );
    let ids = |ds: Option<&str>, k: Option<&str>| -> Vec<u64> {
        s.list(ds, k).unwrap().iter().map(|i| i.id).collect()
    };
    assert_eq!(ids(None, None), vec![id1, id2, id3]);
    assert_eq!(ids(Some("ds"), None), vec![id1, id2]);
    assert_eq!(ids(None, Some("a")), vec![id1, id3]);
    assert_eq!(ids(Some("ds"), Some("b")), vec![id2]);
    assert_eq!(ids(Some("nope"), None), Vec::<u64>::new());

    s.close(id2).unwrap();
    assert_err(s.close(id2), Code::NotFound, &format!("id {id2}"));
    assert_err(s.get(id2), Code::NotFound, "no open session");
    // Ids are never reused, not even by another manager in the process.
    let m2 = manager(&[]);
    m2.sessions().register("ds", "b").unwrap();
    let id4 = m2.sessions().open(&SessionDetails::new("ds", "b")).unwrap();
    let id5 = s.open(&SessionDetails::new("ds", "b")).unwrap();
    assert!(id4 > id3 && id5 > id4 && id5 != id2);
    m.close(Duration::from_secs(1)).unwrap();
    m2.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn deliver_commit_close_resume() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("feed", "k").unwrap();
    let id = s
        .open(
            &SessionDetails::new("feed", "k")
                .streams(["a", "b"])
                .offsets([100, 0]),
        )
        .unwrap();
    assert_eq!(s.deliver(id, "a", 5, 500, 1).unwrap(), 105);
    assert_eq!(s.deliver(id, "a", 3, 300, 0).unwrap(), 108);
    assert_eq!(s.deliver(id, "b", 2, 20, 2).unwrap(), 2);
    s.commit(id, "a", 105).unwrap();
    s.commit(id, "b", 2).unwrap();
    let info = s.get(id).unwrap();
    let a = info.stream("a").unwrap();
    assert_eq!(
        (a.position, a.committed),
        (108, Some(105)),
        "position vs committed"
    );
    assert_eq!(s.committed("feed", "k", "a").unwrap(), Some(105));
    s.close(id).unwrap();

    let again = s.resume("feed", "k", &["a", "b", "new"], false).unwrap();
    let info = s.get(again).unwrap();
    let pos: Vec<(i64, Option<i64>)> = info
        .streams
        .iter()
        .map(|x| (x.position, x.committed))
        .collect();
    assert_eq!(pos, vec![(105, Some(105)), (2, Some(2)), (0, None)]);
    // The resumed session may not commit below where it resumed.
    assert_err(
        s.commit(again, "a", 104),
        Code::FailedPrecondition,
        "backwards",
    );
    assert_err(
        s.resume("feed", "nope", &["a"], false),
        Code::FailedPrecondition,
        "register it first",
    );
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn commits_never_go_backwards_unless_seek_says_so() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("feed", "k").unwrap();
    let id = s
        .open(
            &SessionDetails::new("feed", "k")
                .streams(["a"])
                .offsets([10]),
        )
        .unwrap();
    drain(&m);
    assert_err(
        s.commit(id, "a", 9),
        Code::FailedPrecondition,
        "commit of stream \"a\" at 9 would go backwards: it started (or was last seeked) at 10",
    );
    s.commit(id, "a", 20).unwrap();
    s.commit(id, "a", 20).unwrap(); // the same offset again is fine
    assert_err(
        s.commit(id, "a", 15),
        Code::FailedPrecondition,
        &format!("the last commit of session {id} on it is 20; call seek(\"a\", 15) first"),
    );
    assert_eq!(
        s.committed("feed", "k", "a").unwrap(),
        Some(20),
        "refused commits store nothing"
    );
    let ev = drain(&m);
    assert_eq!(
        ev,
        vec![
            (EventKind::CommitFailed, Some(id), Some("a".to_string())),
            (EventKind::CommitFailed, Some(id), Some("a".to_string())),
        ]
    );
    s.seek(id, "a", 3).unwrap();
    assert_eq!(s.position(id, "a").unwrap(), 3);
    s.commit(id, "a", 3).unwrap();
    assert_eq!(s.committed("feed", "k", "a").unwrap(), Some(3));
    assert_err(s.commit(id, "a", 2), Code::FailedPrecondition, "backwards");
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn limits_are_resource_exhausted() {
    let m = manager(&[("sessions.max_total", "3"), ("sessions.max_per_key", "2")]);
    let s = m.sessions();
    s.register("ds", "a").unwrap();
    s.register("ds", "b").unwrap();
    let a1 = s.open(&SessionDetails::new("ds", "a")).unwrap();
    s.open(&SessionDetails::new("ds", "a")).unwrap();
    assert_err(
        s.open(&SessionDetails::new("ds", "a")),
        Code::ResourceExhausted,
        "already has 2 open sessions, the most sessions.max_per_key allows",
    );
    s.open(&SessionDetails::new("ds", "b")).unwrap();
    assert_err(
        s.open(&SessionDetails::new("ds", "b")),
        Code::ResourceExhausted,
        "3 sessions are open, the most sessions.max_total allows",
    );
    assert_eq!(s.open_count(), 3);
    s.close(a1).unwrap();
    s.open(&SessionDetails::new("ds", "b")).unwrap();
    assert_eq!(s.open_count(), 3);
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn streams_come_and_go_and_events_arrive_in_order() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("ds", "k").unwrap();
    let id = s
        .open(&SessionDetails::new("ds", "k").streams(["a"]))
        .unwrap();
    s.commit(id, "a", 7).unwrap();
    s.remove_stream(id, "a").unwrap();
    assert!(s.get(id).unwrap().streams.is_empty());
    s.add_stream(id, "b", 4).unwrap();
    s.add_stream(id, "a", 0).unwrap();
    let info = s.get(id).unwrap();
    assert_eq!(info.stream("b").unwrap().position, 4);
    assert_eq!(
        info.stream("a").unwrap().committed,
        Some(7),
        "a re-added stream knows its committed offset"
    );
    s.close(id).unwrap();
    let sa = |x: &str| Some(x.to_string());
    assert_eq!(
        drain(&m),
        vec![
            (EventKind::SessionOpened, Some(id), None),
            (EventKind::StreamRemoved, Some(id), sa("a")),
            (EventKind::StreamAdded, Some(id), sa("b")),
            (EventKind::StreamAdded, Some(id), sa("a")),
            (EventKind::SessionClosed, Some(id), None),
        ]
    );
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_closed_manager_makes_session_calls_unavailable() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("ds", "k").unwrap();
    let id = s
        .open(&SessionDetails::new("ds", "k").streams(["a"]))
        .unwrap();
    m.close(Duration::from_secs(1)).unwrap();
    let u = Code::Unavailable;
    assert_err(
        s.open(&SessionDetails::new("ds", "k")),
        u,
        "manager is closed",
    );
    assert_err(s.get(id), u, "manager is closed");
    assert_err(s.close(id), u, "manager is closed");
    assert_err(s.commit(id, "a", 1), u, "manager is closed");
    assert_err(s.deliver(id, "a", 1, 1, 0), u, "manager is closed");
    assert_err(s.register("ds", "x"), u, "manager is closed");
    assert_err(s.resume("ds", "k", &[], false), u, "manager is closed");
    assert_err(s.list(None, None), u, "manager is closed");
}

#[test]
fn durable_store_with_interval_sync_is_flushed_on_close() {
    let path = temp_path("interval.redb");
    let p = path.to_str().unwrap();
    let m = manager(&[
        ("offsets.path", p),
        ("offsets.sync", "interval"),
        ("offsets.sync_interval", "1h"),
    ]);
    let s = m.sessions();
    assert_eq!(s.store_kind(), "durable");
    s.register("ds", "k").unwrap();
    let id = s
        .open(&SessionDetails::new("ds", "k").streams(["a"]))
        .unwrap();
    s.commit(id, "a", 77).unwrap();
    assert_eq!(
        s.committed("ds", "k", "a").unwrap(),
        Some(77),
        "buffered but visible"
    );
    assert_eq!(s.buffered_commits(), 1, "not written before the interval");
    m.close(Duration::from_secs(1)).unwrap();

    let m = manager(&[("offsets.path", p)]);
    let s = m.sessions();
    s.register("ds", "k").unwrap();
    let id = s.resume("ds", "k", &["a"], false).unwrap();
    assert_eq!(s.get(id).unwrap().stream("a").unwrap().position, 77);
    m.close(Duration::from_secs(1)).unwrap();

    let mut c = Config::new();
    c.set("offsets.path", p).unwrap();
    c.set("offsets.sync", "interval").unwrap();
    c.set("offsets.sync_interval", "0").unwrap();
    assert_err(
        Manager::new(&c),
        Code::InvalidArgument,
        "offsets.sync_interval",
    );
    assert_err(
        Config::new().set("offsets.sync", "sometimes"),
        Code::InvalidArgument,
        "offsets.sync must be one of every_commit | interval",
    );
    let mut c = Config::new();
    c.set("offsets.path", "/nonexistent-sb-dir/offsets.redb")
        .unwrap();
    assert_err(
        Manager::new(&c),
        Code::Io,
        "open the offset store /nonexistent-sb-dir/offsets.redb",
    );
    // One process (and one manager) at a time per file.
    let first = manager(&[("offsets.path", p)]);
    let mut c = Config::new();
    c.set("offsets.path", p).unwrap();
    assert_err(Manager::new(&c), Code::Io, "open the offset store");
    first.close(Duration::from_secs(1)).unwrap();
    Manager::new(&c)
        .unwrap()
        .close(Duration::from_secs(1))
        .unwrap();
}

#[test]
fn prometheus_text_has_the_stream_api_series() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("feed", "k1").unwrap();
    let a = s
        .open(&SessionDetails::new("feed", "k1").streams(["x", "y"]))
        .unwrap();
    let b = s
        .open(&SessionDetails::new("feed", "k1").streams(["x"]))
        .unwrap();
    s.close(b).unwrap();
    s.record_read(a, "x", 10, 1000, 2).unwrap();
    s.record_read(a, "x", 1, 50, 0).unwrap();
    s.deliver(a, "x", 7, 700, 1).unwrap();
    let h = s.stream_handle(a, "y").unwrap();
    h.record_read(4, 40, 4);
    assert_eq!(h.deliver(3, 30, 3), 3);
    s.record_router(a, 3, 300).unwrap();

    let text = m.metrics_text();
    let l = |name: &str, stream: &str, v: u64| {
        format!(
            "{name}{{connection=\"{a}\",data_source=\"feed\",session_key=\"k1\",stream=\"{stream}\"}} {v}"
        )
    };
    let mut want = vec![
        "stream_api_connections_total{data_source=\"feed\",session_key=\"k1\"} 2".to_string(),
        "stream_api_connections_open{data_source=\"feed\",session_key=\"k1\"} 1".to_string(),
        l("stream_api_data_packets_read_total", "x", 11),
        l("stream_api_data_bytes_read_total", "x", 1050),
        l("stream_api_data_packets_delivered_total", "x", 7),
        l("stream_api_data_bytes_delivered_total", "x", 700),
        l("stream_api_essential_packets_read_total", "x", 2),
        l("stream_api_essential_packets_delivered_total", "x", 1),
        l("stream_api_data_packets_read_total", "y", 4),
        l("stream_api_data_packets_delivered_total", "y", 3),
        l("stream_api_essential_packets_delivered_total", "y", 3),
        format!(
            "stream_api_router_messages_received_total{{connection=\"{a}\",data_source=\"feed\",session_key=\"k1\"}} 3"
        ),
        format!(
            "stream_api_router_messages_received_bytes_total{{connection=\"{a}\",data_source=\"feed\",session_key=\"k1\"}} 300"
        ),
        "# TYPE stream_api_connections counter".to_string(),
    ];
    want.push("# EOF".to_string());
    for line in &want {
        assert!(
            text.lines().any(|t| t == line),
            "missing line {line:?} in:\n{text}"
        );
    }
    assert!(
        !text.contains(&format!("connection=\"{b}\"")),
        "a closed session's series are gone"
    );
    assert_eq!(s.get(a).unwrap().stream("x").unwrap().position, 7);
    m.close(Duration::from_secs(1)).unwrap();
}

const CHILD_ENV: &str = "SB_SESSIONS_CHILD_STORE";

/// Not a test on its own: the SIGKILL test runs this test binary again with
/// `CHILD_ENV` set, and this function then commits until it is killed, printing each
/// acknowledged commit.
#[test]
fn child_commits_until_killed() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let m = manager(&[("offsets.path", &path)]);
    let s = m.sessions();
    s.register("feed", "k").unwrap();
    let id = s
        .open(&SessionDetails::new("feed", "k").streams(["a", "b"]))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 1..=1_000_000i64 {
        if Instant::now() > deadline {
            break;
        }
        s.deliver(id, "a", 1, 10, 0).unwrap();
        s.commit(id, "a", i).unwrap();
        println!("ACK a {i}");
        s.commit(id, "b", 2 * i).unwrap();
        println!("ACK b {}", 2 * i);
    }
}

#[test]
fn durable_commits_survive_sigkill() {
    let path = temp_path("sigkill.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_commits_until_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut last = [0i64; 2];
    let mut acks = 0;
    let take = |line: &str, last: &mut [i64; 2]| {
        let mut it = line.split(' ');
        if it.next() != Some("ACK") {
            return false;
        }
        let stream = it.next().unwrap_or("");
        let v: i64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(-1);
        let i = if stream == "a" { 0 } else { 1 };
        assert!(v > last[i], "acks grow");
        last[i] = v;
        true
    };
    // Let it acknowledge some commits, then kill it in the middle of its loop.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks < 40 && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => acks += take(&line, &mut last) as usize,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(acks >= 40, "the child acknowledged only {acks} commits");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // Lines acknowledged before the kill but not read yet count too.
    reader.join().unwrap();
    while let Ok(line) = rx.try_recv() {
        take(&line, &mut last);
    }

    let m = manager(&[("offsets.path", path.to_str().unwrap())]);
    let s = m.sessions();
    let a = s.committed("feed", "k", "a").unwrap().unwrap();
    let b = s.committed("feed", "k", "b").unwrap().unwrap();
    // Every acknowledged commit is there; at most the one in flight beyond it.
    assert!(
        a == last[0] || a == last[0] + 1,
        "a: stored {a}, acked {}",
        last[0]
    );
    assert!(
        b == last[1] || b == last[1] + 2,
        "b: stored {b}, acked {}",
        last[1]
    );
    s.register("feed", "k").unwrap();
    let id = s.resume("feed", "k", &["a", "b"], false).unwrap();
    let info = s.get(id).unwrap();
    assert_eq!(info.stream("a").unwrap().position, a);
    assert_eq!(info.stream("b").unwrap().position, b);
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn counting_from_many_threads_loses_nothing() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("ds", "k").unwrap();
    let shared = s
        .open(&SessionDetails::new("ds", "k").streams(["a"]))
        .unwrap();
    let threads = 4u64;
    let per = 5_000u64;
    std::thread::scope(|sc| {
        for t in 0..threads {
            let m = m.clone();
            sc.spawn(move || {
                let s = m.sessions();
                let own = s
                    .open(&SessionDetails::new("ds", "k").streams(["a"]))
                    .unwrap();
                let h = s.stream_handle(shared, "a").unwrap();
                for i in 0..per {
                    s.deliver(shared, "a", 1, 10, i % 2).unwrap();
                    h.record_read(1, 10, 0);
                    s.deliver(own, "a", 1, 1, 0).unwrap();
                    s.record_router(shared, 1, 3).unwrap();
                    // Concurrent commits of one stream never go backwards in the store.
                    let _ = s.commit(shared, "a", (t * per + i) as i64);
                }
                assert_eq!(
                    s.get(own).unwrap().stream("a").unwrap().position,
                    per as i64
                );
                s.close(own).unwrap();
            });
        }
    });
    let info = s.get(shared).unwrap();
    let a = info.stream("a").unwrap();
    assert_eq!(a.position, (threads * per) as i64);
    assert_eq!(a.counters.data_packets_delivered, threads * per);
    assert_eq!(a.counters.data_bytes_delivered, threads * per * 10);
    assert_eq!(a.counters.essential_packets_delivered, threads * per / 2);
    assert_eq!(a.counters.data_packets_read, threads * per);
    assert_eq!(info.router_messages_received, threads * per);
    assert_eq!(info.router_bytes_received, threads * per * 3);
    // The highest offset any thread committed always passes the check, and nothing
    // lower may overwrite it afterwards.
    assert_eq!(a.committed, Some((threads * per - 1) as i64));
    assert_eq!(s.committed("ds", "k", "a").unwrap(), a.committed);
    assert_eq!(s.open_count(), 1);
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn limits_hold_under_concurrent_opens() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Four threads, two slots: the limit, not the thread count, bounds the peak.
    let m = manager(&[("sessions.max_per_key", "2")]);
    m.sessions().register("ds", "k").unwrap();
    let held = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                let s = m.sessions();
                for _ in 0..300 {
                    match s.open(&SessionDetails::new("ds", "k").streams(["a"])) {
                        Ok(id) => {
                            let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::yield_now();
                            held.fetch_sub(1, Ordering::SeqCst);
                            s.close(id).unwrap();
                        }
                        Err(e) => {
                            assert_eq!(e.code(), Code::ResourceExhausted);
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    assert!(
        peak.load(Ordering::SeqCst) <= 5,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert_eq!(m.sessions().open_count(), 0, "every slot came back");
    // With every slot back, unregistering is allowed again.
    assert!(m.sessions().unregister("ds", "k").unwrap());
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn interval_sync_writes_in_the_background() {
    let path = temp_path("background.redb");
    let m = manager(&[
        ("offsets.path", path.to_str().unwrap()),
        ("offsets.sync", "interval"),
        ("offsets.sync_interval", "20ms"),
    ]);
    let s = m.sessions();
    s.register("ds", "k").unwrap();
    let id = s
        .open(&SessionDetails::new("ds", "k").streams(["a", "b"]))
        .unwrap();
    s.commit(id, "a", 3).unwrap();
    s.commit(id, "b", 4).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.buffered_commits() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        s.buffered_commits(),
        0,
        "the background flush wrote both commits"
    );
    assert_eq!(s.committed("ds", "k", "b").unwrap(), Some(4));
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_forked_child_gets_a_clear_error() {
    let m = manager(&[]);
    let s = m.sessions();
    s.register("ds", "k").unwrap();
    let id = s
        .open(&SessionDetails::new("ds", "k").streams(["a"]))
        .unwrap();
    // SAFETY: the child only calls get/commit (no lock is held across the fork by
    // this test) and then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = [s.get(id).map(|_| ()), s.commit(id, "a", 1)]
            .iter()
            .all(|r| {
                r.as_ref()
                    .is_err_and(|e| e.code() == Code::FailedPrecondition)
            });
        // SAFETY: _exit ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
    s.commit(id, "a", 1).unwrap();
    assert_eq!(
        s.committed("ds", "k", "a").unwrap(),
        Some(1),
        "the parent is unaffected"
    );
    m.close(Duration::from_secs(1)).unwrap();
}
