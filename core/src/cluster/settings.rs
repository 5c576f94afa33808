//! The `cluster.*` keys.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};

/// A cluster's settings, read once when the manager starts.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSettings {
    pub(crate) url: String,
    pub(crate) name: String,
    pub(crate) node_id: String,
    pub(crate) heartbeat: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) share_breakers: bool,
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    let tag = (crate::random::unit() * 65536.0) as u32 & 0xFFFF;
    format!("{host}-{}-{tag:04x}", std::process::id())
}

impl ClusterSettings {
    /// `None` when `cluster.redis_url` is empty (no cluster).
    pub(crate) fn from_config(cfg: &Config) -> Result<Option<ClusterSettings>> {
        let url = cfg.get("cluster.redis_url")?.trim().to_string();
        if url.is_empty() {
            return Ok(None);
        }
        if let Err(e) = redis::Client::open(url.as_str()) {
            return Err(Error::invalid_argument(format!(
                "cluster.redis_url must be a Redis URL such as redis://127.0.0.1:6379/0, got \"{}\": {e}",
                url.escape_default()
            )));
        }
        let name = cfg.get("cluster.name")?.to_string();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid_argument(format!(
                "cluster.name must be a non-empty name without spaces, got \"{}\"",
                name.escape_default()
            )));
        }
        let node_id = match cfg.get("cluster.node_id")?.trim() {
            "" => default_node_id(),
            id => id.to_string(),
        };
        let heartbeat = cfg.duration("cluster.heartbeat_interval");
        if heartbeat < Duration::from_millis(10) {
            return Err(Error::invalid_argument(format!(
                "cluster.heartbeat_interval must be at least 10ms, got \"{}\"",
                cfg.get("cluster.heartbeat_interval")?
            )));
        }
        let request_timeout = cfg.duration("cluster.request_timeout");
        if request_timeout.is_zero() {
            return Err(Error::invalid_argument(
                "cluster.request_timeout must be more than 0 (a duration such as 1s), got \"0\"",
            ));
        }
        Ok(Some(ClusterSettings {
            url,
            name,
            node_id,
            heartbeat,
            request_timeout,
            share_breakers: cfg.get("cluster.breakers")? == "shared",
        }))
    }

    /// A key or channel of this cluster: `<name>:<rest>`.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.name)
    }

    /// A member is dropped after three silent heartbeats.
    pub(crate) fn member_ttl(&self) -> Duration {
        self.heartbeat * 3
    }
}
