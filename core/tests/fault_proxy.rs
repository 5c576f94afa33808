//! Self-test of the fault proxy fixture (`tests/fixtures/fault_proxy.py`) through its Rust
//! wrapper (`common::fault_proxy`): plain sockets through the proxy to a loopback echo
//! server, one test per fault.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::EchoServer;
use common::fault_proxy::FaultProxy;

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

/// Sends `data`, reads as many bytes back (fewer if the peer closes first).
fn round_trip(s: &mut TcpStream, data: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(data)?;
    let mut got = vec![0u8; data.len()];
    let mut n = 0;
    for _ in 0..1000 {
        if n == data.len() {
            break;
        }
        match s.read(&mut got[n..])? {
            0 => break,
            k => n += k,
        }
    }
    got.truncate(n);
    Ok(got)
}

fn refused(port: u16) -> bool {
    matches!(TcpStream::connect(("127.0.0.1", port)), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

fn is_reset(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::ConnectionReset
}

fn start() -> (EchoServer, FaultProxy) {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    (server, proxy)
}

#[test]
fn pass_forwards_both_ways_and_stats_count_accepts() {
    let (_server, proxy) = start();
    let s0 = proxy.stats();
    assert_eq!((s0.accepted, s0.active, s0.mode.as_str()), (0, 0, "pass"));
    let mut a = connect(proxy.port).unwrap();
    let mut b = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut a, b"hello\n").unwrap(), b"hello\n");
    assert_eq!(round_trip(&mut b, b"world\n").unwrap(), b"world\n");
    let s = proxy.stats();
    assert_eq!((s.accepted, s.active, s.mode.as_str()), (2, 2, "pass"));
}

#[test]
fn refuse_then_pass_listens_again_on_the_same_port() {
    let (_server, proxy) = start();
    let mut old = connect(proxy.port).unwrap();
    assert!(proxy.command("refuse").starts_with("OK"));
    assert!(refused(proxy.port));
    assert_eq!(round_trip(&mut old, b"still here").unwrap(), b"still here");
    proxy.command("pass");
    let mut new = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut new, b"back").unwrap(), b"back");
}

#[test]
fn reset_resets_existing_and_new_connections_until_pass() {
    let (_server, proxy) = start();
    let mut old = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut old, b"x").unwrap(), b"x");
    proxy.command("reset");
    // The proxy answers after the RST went out, so the next read sees it.
    let err = old.read(&mut [0u8; 1]).expect_err("read after reset");
    assert!(is_reset(&err), "{err:?}");
    // Accepted, then reset at once: the RST may beat the end of connect().
    match connect(proxy.port) {
        Err(e) => assert!(is_reset(&e), "{e:?}"),
        Ok(mut s) => {
            let err = s.read(&mut [0u8; 1]).expect_err("read in reset mode");
            assert!(is_reset(&err), "{err:?}");
        }
    }
    proxy.command("pass");
    let mut again = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut again, b"ok").unwrap(), b"ok");
}

#[test]
fn reset_existing_resets_once_and_keeps_forwarding() {
    let (_server, proxy) = start();
    let mut old = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut old, b"x").unwrap(), b"x");
    assert_eq!(
        proxy.command("reset_existing"),
        "OK reset_existing connections=1"
    );
    let err = old
        .read(&mut [0u8; 1])
        .expect_err("read after reset_existing");
    assert!(is_reset(&err), "{err:?}");
    let mut new = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut new, b"fine").unwrap(), b"fine");
}

#[test]
fn blackhole_answers_nothing_and_holds_existing_connections() {
    let (_server, proxy) = start();
    let mut old = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut old, b"x").unwrap(), b"x");
    proxy.command("blackhole");
    let mut new = connect(proxy.port).expect("a blackhole accepts");
    new.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    new.write_all(b"anyone?").unwrap();
    let t0 = Instant::now();
    match new.read(&mut [0u8; 16]) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a blackhole answered: {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(10));
    old.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    old.write_all(b"held").unwrap();
    assert!(
        old.read(&mut [0u8; 16]).is_err(),
        "existing connection still forwards"
    );
    assert_eq!(proxy.stats().mode, "blackhole");
    proxy.command("pass");
    old.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    let n = old.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"held", "held, not lost");
}

#[test]
fn latency_delays_each_direction() {
    let (_server, proxy) = start();
    let mut s = connect(proxy.port).unwrap();
    proxy.command("latency 200");
    let t0 = Instant::now();
    assert_eq!(round_trip(&mut s, b"slow").unwrap(), b"slow");
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    proxy.command("latency 0");
    assert_eq!(round_trip(&mut s, b"fast").unwrap(), b"fast");
}

#[test]
fn close_after_cuts_the_stream_then_closes() {
    let (_server, proxy) = start();
    proxy.command("close_after 5");
    let mut s = connect(proxy.port).unwrap();
    s.write_all(b"0123456789").unwrap();
    let mut got = Vec::new();
    let mut eof = false;
    for _ in 0..100 {
        let mut buf = [0u8; 100];
        match s.read(&mut buf).unwrap() {
            0 => {
                eof = true;
                break;
            }
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(eof, "no EOF after 100 reads");
    assert_eq!(got, b"01234");
    proxy.command("close_after 0");
    let mut s = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut s, b"0123456789").unwrap(), b"0123456789");
}

#[test]
fn drop_closes_existing_connections_with_fin() {
    let (_server, proxy) = start();
    let mut s = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut s, b"x").unwrap(), b"x");
    assert_eq!(proxy.command("drop"), "OK drop connections=1");
    assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0, "EOF, not a reset");
    assert_eq!(proxy.stats().active, 0);
}

#[test]
fn flap_alternates_refused_and_working() {
    let (_server, proxy) = start();
    proxy.command("flap 100 100");
    let (mut saw_refused, mut saw_echo) = (false, false);
    // 2 s is plenty for a 100/100 schedule; a loaded machine gets more.
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..2000 {
        if (saw_refused && saw_echo) || Instant::now() > deadline {
            break;
        }
        match connect(proxy.port) {
            Ok(mut s) => {
                // A switch to down mid-way resets it: that counts as neither.
                if let Ok(got) = round_trip(&mut s, b"f") {
                    saw_echo |= got == b"f";
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => saw_refused = true,
            Err(e) => assert!(is_reset(&e), "{e:?}"),
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        saw_refused && saw_echo,
        "refused {saw_refused}, echo {saw_echo}"
    );
    assert_eq!(proxy.stats().mode, "flap");
    proxy.command("pass");
    let mut s = connect(proxy.port).unwrap();
    assert_eq!(round_trip(&mut s, b"steady").unwrap(), b"steady");
}

#[test]
fn bad_commands_fail_and_close_stops_the_proxy() {
    let (_server, mut proxy) = start();
    let err = proxy.try_command("explode").unwrap_err();
    assert!(err.contains("unknown command"), "{err}");
    let err = proxy.try_command("latency soon").unwrap_err();
    assert!(err.contains("whole numbers"), "{err}");
    assert!(
        proxy.close(),
        "the proxy exits with 0 when its stdin closes"
    );
    assert!(refused(proxy.port));
    let err = proxy.try_command("pass").unwrap_err();
    assert!(err.contains("closed"), "{err}");
    proxy.close(); // safe twice
}
