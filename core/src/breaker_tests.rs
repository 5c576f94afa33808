//! Tests of `breaker`, beside it so that the module holds one concept.

use super::*;

fn settings(f: impl FnOnce(&mut Config)) -> BreakerSettings {
    let mut c = Config::new();
    f(&mut c);
    BreakerSettings::from_config(&c)
}

fn set(c: &mut Config, k: &str, v: &str) {
    c.set(k, v).expect("valid test setting");
}

const MS: Duration = Duration::from_millis(1);

fn fail(b: &mut Breaker, now: Instant) -> Option<Transition> {
    let p = b.try_acquire(now, &mut Vec::new()).expect("admitted");
    b.on_result(p, false, MS, now)
}

fn succeed(b: &mut Breaker, now: Instant, took: Duration) -> Option<Transition> {
    let p = b.try_acquire(now, &mut Vec::new()).expect("admitted");
    b.on_result(p, true, took, now)
}

#[test]
fn consecutive_failures_open_then_half_open_then_close() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "3");
        set(c, "breaker.open_wait", "10s");
        set(c, "breaker.half_open_probes", "2");
    }));
    let t0 = Instant::now();
    assert!(fail(&mut b, t0).is_none());
    assert!(
        succeed(&mut b, t0, MS).is_none(),
        "a success resets the run"
    );
    assert!(fail(&mut b, t0).is_none());
    assert!(fail(&mut b, t0).is_none());
    let (from, to, why) = fail(&mut b, t0).expect("third failure in a row trips");
    assert_eq!((from, to), (BreakerState::Closed, BreakerState::Open));
    assert!(why.contains("3 consecutive failures"), "{why}");
    // Refused while open, with the time it reopens (8..10 s: 20% jitter down).
    let r = b.try_acquire(t0 + Duration::from_secs(1), &mut Vec::new());
    let until = r
        .expect_err("open refuses")
        .retry_at
        .expect("open says until when");
    assert!(until >= t0 + Duration::from_secs(8) && until <= t0 + Duration::from_secs(10));
    // After the wait: HALF_OPEN admits exactly two probes.
    let t1 = t0 + Duration::from_secs(10);
    let mut tr = Vec::new();
    let p1 = b.try_acquire(t1, &mut tr).expect("probe 1");
    assert_eq!(tr[0].1, BreakerState::HalfOpen);
    let p2 = b.try_acquire(t1, &mut tr).expect("probe 2");
    assert!(p1.probe && p2.probe);
    assert!(
        b.try_acquire(t1, &mut tr).is_err(),
        "a third caller is refused"
    );
    assert!(b.on_result(p1, true, MS, t1).is_none());
    assert!(
        b.try_acquire(t1, &mut tr).is_err(),
        "one success of two: still half-open"
    );
    let (_, to, _) = b.on_result(p2, true, MS, t1).expect("closes");
    assert_eq!(to, BreakerState::Closed);
    assert_eq!(b.counts().opened_total, 1);
}

#[test]
fn a_failed_probe_reopens_with_a_longer_wait_up_to_the_cap() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "1");
        set(c, "breaker.open_wait", "10s");
        set(c, "breaker.open_wait_multiplier", "2");
        set(c, "breaker.max_open_wait", "30s");
        set(c, "breaker.half_open_probes", "1");
    }));
    let mut now = Instant::now();
    fail(&mut b, now);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let until = b.open_until().expect("open");
        waits.push(until - now);
        now = until;
        let p = b
            .try_acquire(now, &mut Vec::new())
            .expect("probe after the wait");
        let (_, to, _) = b.on_result(p, false, MS, now).expect("reopens");
        assert_eq!(to, BreakerState::Open);
    }
    // 10 s, 20 s, then capped at 30 s, each at most 20% shorter.
    let within = |d: Duration, full: u64| {
        d <= Duration::from_secs(full) && d >= Duration::from_secs(full) * 8 / 10
    };
    assert!(within(waits[0], 10), "{waits:?}");
    assert!(within(waits[1], 20), "{waits:?}");
    assert!(within(waits[2], 30), "{waits:?}");
    assert!(within(waits[3], 30), "{waits:?}");
}

#[test]
fn a_probe_that_never_answers_cannot_keep_it_half_open() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "1");
        set(c, "breaker.open_wait", "1s");
        set(c, "breaker.half_open_probes", "1");
        set(c, "breaker.probe_timeout", "2s");
    }));
    let t0 = Instant::now();
    fail(&mut b, t0);
    let t1 = b.open_until().expect("open");
    let _lost = b.try_acquire(t1, &mut Vec::new()).expect("the one probe");
    assert!(b.try_acquire(t1, &mut Vec::new()).is_err());
    // The probe's caller vanished. Past its deadline the breaker reopens...
    let t2 = t1 + Duration::from_secs(2);
    let mut tr = Vec::new();
    assert!(b.try_acquire(t2, &mut tr).is_err());
    assert_eq!(tr.len(), 1);
    assert_eq!(
        (tr[0].0, tr[0].1),
        (BreakerState::HalfOpen, BreakerState::Open)
    );
    assert!(tr[0].2.contains("breaker.probe_timeout"), "{}", tr[0].2);
    // ...and after the next wait admits a new probe.
    let t3 = b.open_until().expect("open again");
    let p = b.try_acquire(t3, &mut Vec::new()).expect("a fresh probe");
    let (_, to, _) = b.on_result(p, true, MS, t3).expect("closes");
    assert_eq!(to, BreakerState::Closed);
}

#[test]
fn failure_rate_needs_minimum_calls_and_counts_the_window() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "0");
        set(c, "breaker.failure_rate_threshold", "50");
        set(c, "breaker.minimum_calls", "4");
        set(c, "breaker.window_size", "4");
    }));
    let t = Instant::now();
    assert!(fail(&mut b, t).is_none());
    assert!(fail(&mut b, t).is_none());
    assert!(fail(&mut b, t).is_none(), "3 calls < minimum 4");
    let (_, to, why) = succeed(&mut b, t, MS).expect("3 of 4 failed: 75% >= 50%");
    assert_eq!(to, BreakerState::Open);
    assert!(why.contains("failure rate 75%"), "{why}");
}

#[test]
fn count_window_forgets_old_calls() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "0");
        set(c, "breaker.failure_rate_threshold", "50");
        set(c, "breaker.minimum_calls", "4");
        set(c, "breaker.window_size", "4");
    }));
    let t = Instant::now();
    fail(&mut b, t);
    for _ in 0..3 {
        assert!(succeed(&mut b, t, MS).is_none());
    }
    // Window [S S S S] after one more success: the failure slid out.
    assert!(succeed(&mut b, t, MS).is_none());
    assert_eq!(b.counts().window_failures, 0);
    fail(&mut b, t);
    assert!(fail(&mut b, t).is_some(), "[S S F F] is 50%");
}

#[test]
fn time_window_drops_calls_older_than_its_span() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "0");
        set(c, "breaker.failure_rate_threshold", "50");
        set(c, "breaker.minimum_calls", "3");
        set(c, "breaker.window_type", "time");
        set(c, "breaker.window_size", "10");
    }));
    let t = Instant::now();
    fail(&mut b, t);
    fail(&mut b, t);
    // Eleven seconds later those two are gone: one failure of one call.
    let later = t + Duration::from_secs(11);
    assert!(succeed(&mut b, later, MS).is_none());
    assert!(fail(&mut b, later).is_none(), "2 calls < minimum 3");
    assert_eq!(b.counts().window_calls, 2);
    assert!(fail(&mut b, later).is_some(), "2 of 3 failed");
}

#[test]
fn slow_calls_trip_on_their_rate() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.slow_call_duration", "100ms");
        set(c, "breaker.slow_call_rate_threshold", "50");
        set(c, "breaker.minimum_calls", "4");
    }));
    let t = Instant::now();
    let slow = Duration::from_millis(150);
    assert!(succeed(&mut b, t, MS).is_none());
    assert!(succeed(&mut b, t, slow).is_none());
    assert!(succeed(&mut b, t, MS).is_none());
    let (_, to, why) = succeed(&mut b, t, slow).expect("2 of 4 slow");
    assert_eq!(to, BreakerState::Open);
    assert!(why.contains("slow-call rate 50%"), "{why}");
}

#[test]
fn operator_states() {
    let mut b = Breaker::new(settings(|c| set(c, "breaker.failure_threshold", "1")));
    let t = Instant::now();
    let (_, to, _) = b.apply(BreakerOp::ForceOpen, t).expect("forced");
    assert_eq!(to, BreakerState::ForcedOpen);
    let r = b.try_acquire(t + Duration::from_secs(3600), &mut Vec::new());
    assert_eq!(r.expect_err("forced open refuses").retry_at, None);
    b.apply(BreakerOp::Disable, t);
    for _ in 0..10 {
        assert!(fail(&mut b, t).is_none(), "disabled never trips");
    }
    assert_eq!(b.counts().window_calls, 0, "disabled records nothing");
    b.apply(BreakerOp::MetricsOnly, t);
    assert!(fail(&mut b, t).is_none(), "metrics only never blocks");
    assert!(b.would_trip(t));
    assert!(b.try_acquire(t, &mut Vec::new()).is_ok());
    let (_, to, _) = b.apply(BreakerOp::Reset, t).expect("reset");
    assert_eq!(to, BreakerState::Closed);
    assert!(fail(&mut b, t).is_some(), "normal again");
    assert!("nonsense".parse::<BreakerOp>().is_err());
    assert_eq!(
        "force_open".parse::<BreakerOp>().ok(),
        Some(BreakerOp::ForceOpen)
    );
}

#[test]
fn late_results_from_before_a_change_decide_nothing() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "1");
        set(c, "breaker.open_wait", "1s");
        set(c, "breaker.half_open_probes", "1");
    }));
    let t = Instant::now();
    let early = b.try_acquire(t, &mut Vec::new()).expect("closed");
    fail(&mut b, t);
    let t1 = b.open_until().expect("open");
    let probe = b.try_acquire(t1, &mut Vec::new()).expect("probe");
    // The call admitted while CLOSED finishes now, failed: it was not a probe.
    assert!(b.on_result(early, false, MS, t1).is_none());
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let (_, to, _) = b.on_result(probe, true, MS, t1).expect("the probe decides");
    assert_eq!(to, BreakerState::Closed);
}

#[test]
fn a_remote_opening_refuses_at_once_and_waits_for_the_openers_verdict() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.failure_threshold", "3");
        set(c, "breaker.probe_timeout", "2s");
    }));
    let t0 = Instant::now();
    let (from, to, _) = b.remote_open(t0, Duration::from_secs(5)).expect("opens");
    assert_eq!((from, to), (BreakerState::Closed, BreakerState::Open));
    assert!(b.is_remote());
    assert!(b.try_acquire(t0, &mut Vec::new()).is_err(), "fails fast");
    // Still open past the opener's wait, for its probe's deadline.
    assert!(
        b.try_acquire(t0 + Duration::from_secs(6), &mut Vec::new())
            .is_err()
    );
    assert_eq!(b.counts().opened_total, 0, "not an opening of its own");
    // The opener's close verdict closes it.
    let (_, to, _) = b.remote_close().expect("closes");
    assert_eq!(to, BreakerState::Closed);
    assert!(!b.is_remote());
    assert!(
        b.try_acquire(t0 + Duration::from_secs(6), &mut Vec::new())
            .is_ok()
    );
}

#[test]
fn with_no_verdict_a_remote_opening_probes_by_itself_and_a_later_opening_extends_it() {
    let mut b = Breaker::new(settings(|c| {
        set(c, "breaker.probe_timeout", "1s");
        set(c, "breaker.half_open_probes", "1");
    }));
    let t0 = Instant::now();
    b.remote_open(t0, Duration::from_secs(2)).expect("opens");
    assert!(
        b.remote_open(t0, Duration::from_secs(9)).is_none(),
        "extends"
    );
    assert!(
        b.try_acquire(t0 + Duration::from_secs(5), &mut Vec::new())
            .is_err()
    );
    let mut ts = Vec::new();
    let p = b
        .try_acquire(t0 + Duration::from_secs(10), &mut ts)
        .expect("its own probe after the wait and the probe deadline");
    assert!(p.probe);
    assert_eq!(ts[0].1, BreakerState::HalfOpen);
    assert!(
        b.on_result(p, true, MS, t0 + Duration::from_secs(10))
            .is_some()
    );
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn remote_verdicts_leave_operator_states_and_own_openings_alone() {
    let mut b = Breaker::new(settings(|c| set(c, "breaker.failure_threshold", "1")));
    let t0 = Instant::now();
    b.apply(BreakerOp::ForceOpen, t0);
    assert!(b.remote_open(t0, Duration::from_secs(1)).is_none());
    b.apply(BreakerOp::Reset, t0);
    fail(&mut b, t0).expect("opens by its own count");
    assert!(!b.is_remote());
    assert!(
        b.remote_close().is_none(),
        "its own opening keeps its course"
    );
    assert_eq!(b.state(), BreakerState::Open);
}
