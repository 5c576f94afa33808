//! The registry's `registry.*` settings, read once from the manager's config.

use std::time::Duration;

use crate::config::Config;

/// What a full queue does with a new message (`registry.queue_full_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Remove the connection with reason `slow_consumer`.
    Disconnect,
    /// Discard queued messages, oldest first, until the new one fits.
    DropOldest,
    /// Discard the new message.
    DropNew,
}

impl Policy {
    /// The config word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Policy::Disconnect => "disconnect",
            Policy::DropOldest => "drop_oldest",
            Policy::DropNew => "drop_new",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_total: usize,
    pub(crate) max_per_topic: usize,
    pub(crate) max_per_user: usize,
    pub(crate) max_topics_per_conn: usize,
    pub(crate) queue_max_messages: usize,
    pub(crate) queue_max_bytes: usize,
    pub(crate) policy: Policy,
    pub(crate) max_send_failures: u32,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cleanup: Option<Duration>,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) top_topics: usize,
}

/// A limit of 0 means none.
fn limit(n: u64) -> usize {
    if n == 0 {
        usize::MAX
    } else {
        usize::try_from(n).unwrap_or(usize::MAX)
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl Settings {
    pub(crate) fn from_config(c: &Config) -> Settings {
        Settings {
            max_total: limit(c.u64("registry.max_total_connections")),
            max_per_topic: limit(c.u64("registry.max_connections_per_topic")),
            max_per_user: limit(c.u64("registry.max_connections_per_user")),
            max_topics_per_conn: limit(c.u64("registry.max_topics_per_connection")),
            queue_max_messages: limit(c.u64("registry.queue_max_messages")),
            queue_max_bytes: limit(c.u64("registry.queue_max_bytes")),
            policy: match c.get("registry.queue_full_policy").unwrap_or("disconnect") {
                "drop_oldest" => Policy::DropOldest,
                "drop_new" => Policy::DropNew,
                _ => Policy::Disconnect,
            },
            max_send_failures: u32::try_from(c.u64("registry.max_send_failures"))
                .unwrap_or(u32::MAX)
                .max(1),
            heartbeat: nonzero(c.duration("registry.heartbeat_interval")),
            timeout: nonzero(c.duration("registry.connection_timeout")),
            cleanup: nonzero(c.duration("registry.cleanup_interval")),
            send_timeout: nonzero(c.duration("registry.send_timeout")),
            top_topics: usize::try_from(c.u64("registry.metrics_top_topics")).unwrap_or(10),
        }
    }

    /// Settings that contradict each other: a connection must outlive a heartbeat, or
    /// every client would be removed as stale before it was ever pinged.
    pub(crate) fn check(&self) -> crate::Result<()> {
        if let (Some(hb), Some(t)) = (self.heartbeat, self.timeout) {
            if t <= hb {
                return Err(crate::Error::invalid_argument(format!(
                    "registry.connection_timeout ({}) must be longer than registry.heartbeat_interval ({}): a client is pinged every heartbeat and removed as stale after connection_timeout of silence; set 0 to turn either off",
                    crate::config::fmt_duration(t),
                    crate::config::fmt_duration(hb)
                )));
            }
        }
        Ok(())
    }

    /// The period of the background pass: the shorter of the heartbeat and cleanup
    /// intervals that are on.
    pub(crate) fn pass_period(&self) -> Option<Duration> {
        match (self.heartbeat, self.cleanup) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl super::Registry {
    /// `registry.heartbeat_interval`, if heartbeats are on.
    pub(crate) fn heartbeat_interval(&self) -> Option<Duration> {
        self.inner.settings.heartbeat
    }
}
