//! The Redis offset store (`offsets.store = redis`, issue 12) with a real redis-server on
//! a free loopback port and managers in separate processes (this test binary started
//! again as a child, `SB_OFFSETS_CHILD` naming its part):
//!
//! - a session committed and closed on instance A resumes on instance B (another
//!   process) at A's commits, and a third instance sees B's;
//! - a FLUSHALL between commit and resume fails the resume with FailedPrecondition
//!   naming the epoch, instead of starting from zero;
//! - redis-server killed and restarted (append-only file, fsync always): commits
//!   acknowledged with `every_commit` are all there; while it is down a commit fails
//!   with Unavailable or Timeout (never acknowledged); after it returns, commits work
//!   again without the program doing anything;
//! - `offsets.sync = interval` writes its buffered commits in one flush.
//!
//! Needs `redis-server` (`make test-rust` installs it when missing).

mod common;

use std::process::Command;
use std::time::Duration;

use common::redis::Redis;
use common::{cfg, dead_port, wait_until};
use switchboard_core::{Code, Manager, SessionDetails};

const LONG: Duration = Duration::from_secs(20);

fn manager(url: &str, extra: &[(&str, &str)]) -> switchboard_core::Result<Manager> {
    let mut keys = vec![
        ("offsets.store", "redis"),
        ("offsets.redis_url", url),
        ("offsets.prefix", "sbtest"),
        ("offsets.redis_timeout", "2s"),
    ];
    keys.extend_from_slice(extra);
    let m = Manager::new(&cfg(&keys))?;
    m.sessions().register("telemetry", "race-1")?;
    Ok(m)
}

const STREAMS: [&str; 2] = ["engine", "brakes"];

/// The child's parts: `commit:<engine>:<brakes>` opens, commits and closes;
/// `resume:<engine>:<brakes>` resumes and checks the positions, then commits +1 each.
fn child(role: &str, url: &str) {
    let m = manager(url, &[]).expect("the child's manager");
    let parts: Vec<&str> = role.split(':').collect();
    let (e, b): (i64, i64) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
    match parts[0] {
        "commit" => {
            let id = m
                .sessions()
                .open(&SessionDetails::new("telemetry", "race-1").streams(STREAMS))
                .unwrap();
            m.sessions().commit(id, "engine", e).unwrap();
            m.sessions().commit(id, "brakes", b).unwrap();
            m.sessions().close(id).unwrap();
        }
        "resume" => {
            let id = m
                .sessions()
                .resume("telemetry", "race-1", &STREAMS, false)
                .unwrap();
            assert_eq!(m.sessions().position(id, "engine").unwrap(), e);
            assert_eq!(m.sessions().position(id, "brakes").unwrap(), b);
            m.sessions().commit(id, "engine", e + 1).unwrap();
            m.sessions().commit(id, "brakes", b + 1).unwrap();
            m.sessions().close(id).unwrap();
        }
        other => panic!("unknown child role {other}"),
    }
    m.close(Duration::from_secs(5)).unwrap();
}

/// Runs this binary's `child_process` test as instance `role`.
fn instance(role: &str, url: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SB_OFFSETS_CHILD", role)
        .env("SB_OFFSETS_URL", url)
        .output()
        .expect("the child instance");
    assert!(
        out.status.success(),
        "instance {role} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child's entry point; a no-op when run as a test of its own.
#[test]
fn child_process() {
    if let (Ok(role), Ok(url)) = (
        std::env::var("SB_OFFSETS_CHILD"),
        std::env::var("SB_OFFSETS_URL"),
    ) {
        child(&role, &url);
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_session_resumes_on_another_instance_at_its_commits() {
    let dir = tempdir("offsets-redis-resume");
    let redis = Redis::start(dead_port(), Some(&dir));
    let url = redis.url();
    instance("commit:100:50", &url); // A
    instance("resume:100:50", &url); // B continues at A's commits, commits 101/51
    // C, this process, sees B's.
    let m = manager(&url, &[]).unwrap();
    let id = m
        .sessions()
        .resume("telemetry", "race-1", &STREAMS, false)
        .unwrap();
    assert_eq!(m.sessions().position(id, "engine").unwrap(), 101);
    assert_eq!(m.sessions().position(id, "brakes").unwrap(), 51);
    m.close(Duration::from_secs(5)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flushed_redis_fails_the_resume_naming_the_epoch() {
    let dir = tempdir("offsets-redis-flush");
    let redis = Redis::start(dead_port(), Some(&dir));
    let m = manager(&redis.url(), &[]).unwrap();
    let id = m
        .sessions()
        .open(&SessionDetails::new("telemetry", "race-1").streams(STREAMS))
        .unwrap();
    m.sessions().commit(id, "engine", 7).unwrap();
    m.sessions().close(id).unwrap();
    let live = m
        .sessions()
        .open(&SessionDetails::new("telemetry", "race-1").streams(STREAMS))
        .unwrap();
    let epoch = redis.command(&["GET", "sbtest:epoch"]);
    assert!(redis.command(&["FLUSHALL"]).contains("OK"));
    let e = m
        .sessions()
        .resume("telemetry", "race-1", &STREAMS, false)
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    let epoch = epoch.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        !epoch.is_empty() && e.message().contains(&epoch),
        "the message names the epoch {epoch}: {e}"
    );
    assert!(e.message().contains("now none"), "{e}");
    // A commit fails the same way: nothing is acknowledged into the new, empty Redis.
    let e = m.sessions().commit(live, "engine", 8).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert!(!redis.command(&["EXISTS", "sbtest:offsets"]).contains(":1"));
    m.close(Duration::from_secs(5)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acknowledged_commits_survive_a_redis_restart() {
    let dir = tempdir("offsets-redis-restart");
    let port = dead_port();
    let mut redis = Redis::start(port, Some(&dir));
    let url = redis.url();
    let m = manager(&url, &[]).unwrap();
    let id = m
        .sessions()
        .open(&SessionDetails::new("telemetry", "race-1").streams(STREAMS))
        .unwrap();
    for n in 1..=50 {
        m.sessions().commit(id, "engine", n).unwrap();
    }
    redis.kill();
    let e = m.sessions().commit(id, "engine", 51).unwrap_err();
    assert!(
        matches!(e.code(), Code::Unavailable | Code::Timeout),
        "a commit with Redis down is refused, not acknowledged: {e}"
    );
    let redis = Redis::start(port, Some(&dir));
    // The connection manager reconnects on its own; the next commits go through.
    let ok = wait_until(LONG, || m.sessions().commit(id, "brakes", 9).is_ok());
    assert!(ok, "commits work again after Redis came back");
    m.sessions().close(id).unwrap();
    m.close(Duration::from_secs(5)).unwrap();
    // Another instance sees every acknowledged commit.
    instance("resume:50:9", &redis.url());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn interval_mode_writes_buffered_commits_on_flush() {
    let dir = tempdir("offsets-redis-interval");
    let redis = Redis::start(dead_port(), Some(&dir));
    let url = redis.url();
    let m = manager(
        &url,
        &[
            ("offsets.sync", "interval"),
            ("offsets.sync_interval", "1h"),
        ],
    )
    .unwrap();
    let id = m
        .sessions()
        .open(&SessionDetails::new("telemetry", "race-1").streams(STREAMS))
        .unwrap();
    m.sessions().commit(id, "engine", 300).unwrap();
    m.sessions().commit(id, "brakes", 200).unwrap();
    assert_eq!(m.sessions().buffered_commits(), 2);
    assert_eq!(redis.command(&["HLEN", "sbtest:offsets"]).trim(), ":0");
    m.sessions().flush().unwrap();
    assert_eq!(m.sessions().buffered_commits(), 0);
    assert_eq!(redis.command(&["HLEN", "sbtest:offsets"]).trim(), ":2");
    m.sessions().close(id).unwrap();
    m.close(Duration::from_secs(5)).unwrap();
    instance("resume:300:200", &url);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_settings_are_refused_at_creation() {
    let e = Manager::new(&cfg(&[("offsets.store", "redis")])).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("offsets.redis_url"), "{e}");
    let e = Manager::new(&cfg(&[
        ("offsets.store", "redis"),
        ("offsets.redis_url", "http://nope"),
    ]))
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = Manager::new(&cfg(&[
        ("offsets.store", "redis"),
        (
            "offsets.redis_url",
            &format!("redis://127.0.0.1:{}/0", dead_port()),
        ),
        ("offsets.redis_timeout", "1s"),
    ]))
    .unwrap_err();
    assert!(
        matches!(e.code(), Code::Unavailable | Code::Timeout),
        "no Redis there: {e}"
    );
}
