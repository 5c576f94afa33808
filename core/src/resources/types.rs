//! A named resource's values: its status, its snapshot, and its props.

use std::time::Duration;

use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// Where a resource's one physical connection is (eKuiper's statuses, with its newer
/// `recovering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceStatus {
    /// The first dial is in progress (and retried with backoff while it fails).
    Connecting,
    /// Connected: consumers can use it.
    Connected,
    /// The connection was lost and is being redialled.
    Recovering,
    /// Stopped: a configuration error (no more retries), or deleted.
    Disconnected,
}

impl ResourceStatus {
    /// `connecting`, `connected`, `recovering` or `disconnected`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Connecting => "connecting",
            ResourceStatus::Connected => "connected",
            ResourceStatus::Recovering => "recovering",
            ResourceStatus::Disconnected => "disconnected",
        }
    }

    /// eKuiper's metric encoding: 1 connected, 0 connecting or recovering, -1
    /// disconnected.
    pub const fn metric(self) -> i64 {
        match self {
            ResourceStatus::Connected => 1,
            ResourceStatus::Connecting | ResourceStatus::Recovering => 0,
            ResourceStatus::Disconnected => -1,
        }
    }
}

/// A snapshot of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Its id (anonymous resources get `anonymous-<n>`).
    pub id: String,
    /// `tcp` or `unix`.
    pub kind: String,
    /// The endpoint it connects to, as written (`tcp://host:port`).
    pub endpoint: String,
    /// Whether it was made by `attach_anonymous` (closed with its last consumer).
    pub anonymous: bool,
    /// Where its connection is.
    pub status: ResourceStatus,
    /// The last connect or probe error, if any.
    pub last_error: Option<String>,
    /// Whether it stopped retrying (a configuration error).
    pub stopped: bool,
    /// Its consumers' names, in attach order.
    pub consumers: Vec<String>,
    /// Connections lost and redialled.
    pub reconnects: u64,
    /// Bytes read and written through its consumers' helpers.
    pub bytes_in: u64,
    /// See `bytes_in`.
    pub bytes_out: u64,
    /// How long the current connection has been up (`None` unless connected).
    pub connected_for: Option<Duration>,
}

/// The keys a resource's props may hold besides the pool keys: the endpoint.
pub(crate) const ENDPOINT: &str = "endpoint";

/// Parsed props: the endpoint and the pool keys' config (over the manager's).
#[derive(Debug, Clone)]
pub(crate) struct Props {
    pub(crate) endpoint: Endpoint,
    pub(crate) endpoint_text: String,
    pub(crate) config: Config,
    /// Sorted `key=value` pairs as given: the identity of an anonymous resource.
    pub(crate) canonical: String,
    /// The props as given, for the persistent store.
    pub(crate) raw: Vec<(String, String)>,
}

impl Props {
    /// Validates `props` for a resource of `kind`: `endpoint` (`tcp://host:port` or
    /// `host:port` for tcp, `unix:///path` or `/path` for unix) and any pool keys
    /// (`pool.connect_timeout`, `probe.*`, `backoff.*`, `health.*`, `tcp.*`), each
    /// named in its InvalidArgument.
    /// A registered (`custom`) type takes any non-empty endpoint, which its connector
    /// receives as [`Endpoint::Named`].
    pub(crate) fn parse(
        kind: &str,
        custom: bool,
        props: &[(&str, &str)],
        defaults: &Config,
    ) -> Result<Props> {
        if kind != "tcp" && kind != "unix" && !custom {
            return Err(Error::invalid_argument(format!(
                "resource type \"{}\" is not known; the built-in types are tcp and unix, and a program registers its own with register_type",
                kind.escape_default()
            )));
        }
        let mut endpoint = None;
        let mut config = Config::new();
        let mut pairs: Vec<String> = Vec::with_capacity(props.len());
        for (k, v) in props {
            pairs.push(format!("{k}={v}"));
            if *k == ENDPOINT {
                endpoint = Some(*v);
                continue;
            }
            // Pool keys in their short forms (connect_timeout), then resources.*
            // (on_connect); a key that is neither gets the pool's "unknown key" error.
            if let Err(e) = config.set_natural(k, "pool", v) {
                match crate::config::resolve_key(k, "resources") {
                    Ok(full) if full.starts_with("resources.") => config.set(full, v)?,
                    _ => return Err(e),
                }
            }
        }
        pairs.sort();
        let Some(raw) = endpoint else {
            return Err(Error::invalid_argument(format!(
                "a {kind} resource needs an endpoint prop (\"endpoint\": \"{}\")",
                if kind == "tcp" {
                    "tcp://host:port"
                } else {
                    "unix:///path"
                }
            )));
        };
        if custom {
            if raw.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "a {kind} resource needs a non-empty endpoint prop"
                )));
            }
            return Ok(Props {
                endpoint: Endpoint::Named(raw.to_string()),
                endpoint_text: raw.to_string(),
                config: defaults.merged(&config),
                canonical: format!("{kind}|{}", pairs.join("|")),
                raw: props
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            });
        }
        let text = if raw.contains("://") {
            raw.to_string()
        } else if kind == "unix" {
            format!("unix://{raw}")
        } else {
            format!("tcp://{raw}")
        };
        let endpoint = Endpoint::parse(&text, false)?;
        let matches = matches!(
            (&endpoint, kind),
            (Endpoint::Tcp { .. }, "tcp") | (Endpoint::Unix(_), "unix")
        );
        if !matches {
            return Err(Error::invalid_argument(format!(
                "endpoint \"{text}\" is not a {kind} address; a {kind} resource takes {}",
                if kind == "tcp" {
                    "tcp://host:port"
                } else {
                    "unix:///path"
                }
            )));
        }
        Ok(Props {
            endpoint,
            endpoint_text: text,
            config: defaults.merged(&config),
            canonical: format!("{kind}|{}", pairs.join("|")),
            raw: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }
}
