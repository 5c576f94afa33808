//! A pool's settings, read from the `pool.*` keys.

use std::time::Duration;

use crate::config::Config;

/// Settings of one pool, read from the `pool.*` keys. `max_size` and `min_idle` can
/// change on a live pool through [`super::Pool::resize`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// `pool.max_size`
    pub max_size: usize,
    /// `pool.min_idle` (capped at `max_size`)
    pub min_idle: usize,
    /// `pool.max_overflow`
    pub max_overflow: usize,
    /// `pool.acquire_timeout`
    pub acquire_timeout: Duration,
    /// `pool.connect_timeout`
    pub connect_timeout: Duration,
    /// `pool.idle_timeout`; `None`: never
    pub idle_timeout: Option<Duration>,
    /// `pool.max_lifetime`; `None`: no limit
    pub max_lifetime: Option<Duration>,
    /// `pool.validation_timeout`
    pub validation_timeout: Duration,
    /// `pool.validate_after`
    pub validate_after: Duration,
    /// `pool.liveness_bypass`: no FIN/RST check for a connection returned this recently
    pub liveness_bypass: Duration,
    /// `pool.scale_ahead`: open the next connection when leased / max_size reaches it
    /// (0: off)
    pub scale_ahead: f64,
    /// `pool.max_waiters`
    pub max_waiters: usize,
    /// `pool.max_connecting`
    pub max_connecting: usize,
    /// `pool.leak_detection_threshold`; `None`: off
    pub leak_detection: Option<Duration>,
    /// `pool.queue_mode = lifo` (most recently used first)
    pub lifo: bool,
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl PoolSettings {
    /// Reads the `pool.*` keys of `cfg`.
    pub fn from_config(cfg: &Config) -> Self {
        let max_size = cfg.u64("pool.max_size") as usize;
        PoolSettings {
            max_size,
            min_idle: (cfg.u64("pool.min_idle") as usize).min(max_size),
            max_overflow: cfg.u64("pool.max_overflow") as usize,
            acquire_timeout: cfg.duration("pool.acquire_timeout"),
            connect_timeout: cfg.duration("pool.connect_timeout"),
            idle_timeout: nonzero(cfg.duration("pool.idle_timeout")),
            max_lifetime: nonzero(cfg.duration("pool.max_lifetime")),
            validation_timeout: cfg.duration("pool.validation_timeout"),
            validate_after: cfg.duration("pool.validate_after"),
            liveness_bypass: cfg.duration("pool.liveness_bypass"),
            scale_ahead: cfg.f64("pool.scale_ahead"),
            max_waiters: cfg.u64("pool.max_waiters") as usize,
            max_connecting: cfg.u64("pool.max_connecting") as usize,
            leak_detection: nonzero(cfg.duration("pool.leak_detection_threshold")),
            lifo: cfg.get("pool.queue_mode").is_ok_and(|m| m == "lifo"),
        }
    }

    /// How often the background upkeep runs: often enough for the shortest of the
    /// idle timeout and the lifetime, at most once a second, at least every 10 ms.
    pub(crate) fn upkeep_interval(&self) -> Duration {
        let mut every = Duration::from_secs(1);
        let leak = self.leak_detection.map(|d| d * 2);
        for d in [self.idle_timeout, self.max_lifetime, leak]
            .into_iter()
            .flatten()
        {
            every = every.min(d / 4);
        }
        every.max(Duration::from_millis(10))
    }
}
