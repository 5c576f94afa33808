//! String key/value configuration, validated in one place for every language.
//!
//! Like librdkafka's `rd_kafka_conf_set`: C sets keys one by one, Python passes keyword
//! arguments or a dict, Node passes an options object, and all of them end up in
//! [`Config::set`]. Every key is listed in [`KEYS`] with its accepted form, its default
//! and why; an unknown key or a bad value is an [`Code::InvalidArgument`] error that
//! names the key and the accepted form.
//!
//! ```
//! use switchboard_core::Config;
//! let mut cfg = Config::new();
//! cfg.set("pool.max_size", "4").unwrap();
//! cfg.set("pool.acquire_timeout", "250ms").unwrap();
//! let err = cfg.set("pool.max_size", "abc").unwrap_err();
//! assert_eq!(err.message(), "pool.max_size must be an integer 1..=65535, got \"abc\"");
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::error::{Error, Result};

/// The form a key's value must take.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An integer within `min..=max`.
    Int {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A duration: `250ms`, `1.5s`, `2m`, `1h`, or a bare number of milliseconds.
    Duration {
        /// Largest accepted value, in milliseconds.
        max_ms: u64,
    },
    /// A decimal number within `min..=max` (`1.6`, `50`).
    Float {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// Free text (UTF-8) with C escapes: `\\r`, `\\n`, `\\t`, `\\0`, `\\\\`, `\\xNN`.
    Text,
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Int { min, max } => format!("an integer {min}..={max}"),
            Kind::Duration { max_ms } => format!(
                "a duration such as \"250ms\", \"1.5s\" or \"2m\" (a bare number is milliseconds), at most {}",
                fmt_duration(Duration::from_millis(*max_ms))
            ),
            Kind::Float { min, max } => format!("a number {min}..={max}"),
            Kind::Bool => "true or false".to_string(),
            Kind::Enum(words) => format!("one of {}", words.join(" | ")),
            Kind::Text => "text with C escapes (\\r \\n \\t \\0 \\\\ \\xNN)".to_string(),
        }
    }
}

/// One configuration key: its name, form, default and the reason for the default.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Full dotted name, e.g. `pool.max_size`.
    pub key: &'static str,
    /// Accepted form.
    pub kind: Kind,
    /// Default value, in the accepted form.
    pub default: &'static str,
    /// What it does and why the default is what it is.
    pub doc: &'static str,
}

mod keys;

pub use keys::KEYS;

/// The known sections, for short keys such as Python's `pool_max_size=`.
const SECTIONS: &[&str] = &[
    "runtime",
    "pool",
    "tcp",
    "probe",
    "breaker",
    "backoff",
    "retry",
    "health",
    "sessions",
    "offsets",
    "registry",
    "resources",
    "server",
    "cluster",
];

/// Looks up a key's spec.
pub fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.key == key)
}

/// A set of validated key/value settings. Keys that were never set read as their
/// default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
}

impl Config {
    /// An empty config: every key at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` after validating both. On error nothing changes.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let spec = spec(key).ok_or_else(|| unknown_key(key))?;
        // Text keeps its whitespace ("PING\r\n" may be written with real CR LF).
        let value = if matches!(spec.kind, Kind::Text) {
            value
        } else {
            value.trim()
        };
        validate(spec, value)?;
        self.values.insert(spec.key, value.to_string());
        Ok(())
    }

    /// Sets a key given in a language's natural spelling: a full dotted key
    /// (`pool.max_size`), a short key within `default_section` (`max_size`), a key
    /// with its section joined by an underscore (`pool_max_size`), or any of these in
    /// camelCase (`maxSize`, `poolMaxSize`). The Python and Node bindings use this so
    /// that every language shares one key namespace.
    pub fn set_natural(&mut self, key: &str, default_section: &str, value: &str) -> Result<()> {
        let full = resolve_key(key, default_section)?;
        self.set(full, value)
    }

    /// The raw value of `key`: the one set, or the default.
    pub fn get(&self, key: &str) -> Result<&str> {
        let spec = spec(key).ok_or_else(|| unknown_key(key))?;
        Ok(self
            .values
            .get(spec.key)
            .map(String::as_str)
            .unwrap_or(spec.default))
    }

    /// Whether `key` was set explicitly.
    pub fn is_set(&self, key: &str) -> bool {
        self.values.keys().any(|k| *k == key)
    }

    /// A copy of `self` with every key set in `overrides` replacing ours.
    pub fn merged(&self, overrides: &Config) -> Config {
        let mut out = self.clone();
        for (k, v) in &overrides.values {
            out.values.insert(k, v.clone());
        }
        out
    }

    /// The keys set explicitly, with their values.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    pub(crate) fn u64(&self, key: &str) -> u64 {
        // Values were validated on `set` and defaults are valid, so parsing cannot fail.
        self.get(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    pub(crate) fn duration(&self, key: &str) -> Duration {
        self.get(key)
            .ok()
            .and_then(parse_duration)
            .unwrap_or_default()
    }

    pub(crate) fn bytes(&self, key: &str) -> Vec<u8> {
        self.get(key).ok().and_then(unescape).unwrap_or_default()
    }

    pub(crate) fn f64(&self, key: &str) -> f64 {
        self.get(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    pub(crate) fn bool(&self, key: &str) -> bool {
        self.get(key).ok().and_then(parse_bool).unwrap_or_default()
    }
}

fn unknown_key(key: &str) -> Error {
    let mut msg = format!("unknown configuration key \"{key}\"; known keys are: ");
    for (i, k) in KEYS.iter().enumerate() {
        if i > 0 {
            msg.push_str(", ");
        }
        msg.push_str(k.key);
    }
    Error::invalid_argument(msg)
}

fn camel_to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for ch in key.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Resolves a key in a language's natural spelling to its full dotted name; see
/// [`Config::set_natural`].
pub fn resolve_key(key: &str, default_section: &str) -> Result<&'static str> {
    let snake = camel_to_snake(key);
    if let Some(s) = spec(&snake) {
        return Ok(s.key);
    }
    if !snake.contains('.') {
        if let Some(s) = spec(&format!("{default_section}.{snake}")) {
            return Ok(s.key);
        }
        for section in SECTIONS {
            if let Some(rest) = snake
                .strip_prefix(section)
                .and_then(|r| r.strip_prefix('_'))
            {
                if let Some(s) = spec(&format!("{section}.{rest}")) {
                    return Ok(s.key);
                }
            }
        }
    }
    Err(unknown_key(key))
}

fn validate(spec: &KeySpec, value: &str) -> Result<()> {
    let ok = match spec.kind {
        Kind::Int { min, max } => value.parse::<u64>().is_ok_and(|n| (min..=max).contains(&n)),
        Kind::Duration { max_ms } => {
            parse_duration(value).is_some_and(|d| d <= Duration::from_millis(max_ms))
        }
        Kind::Float { min, max } => value
            .parse::<f64>()
            .is_ok_and(|n| n.is_finite() && (min..=max).contains(&n)),
        Kind::Bool => parse_bool(value).is_some(),
        Kind::Enum(words) => words.contains(&value),
        Kind::Text => unescape(value).is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "{} must be {}, got \"{}\"",
            spec.key,
            spec.kind.describe(),
            value.escape_default()
        )))
    }
}

/// Parses `250ms`, `1.5s`, `2m`, `1h`, `100us` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let scale_ns = match unit.trim() {
        "" | "ms" => 1e6,
        "us" => 1e3,
        "ns" => 1.0,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    let ns = n * scale_ns;
    if !(0.0..=1e18).contains(&ns) {
        return None;
    }
    Some(Duration::from_nanos(ns as u64))
}

/// Decodes C escapes (`\\r`, `\\n`, `\\t`, `\\0`, `\\\\`, `\\xNN`) into bytes.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next()? {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Formats a duration the way config values are written: `250ms`, `30s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let mut s = String::new();
    if ms % 3_600_000 == 0 && ms > 0 {
        let _ = write!(s, "{}h", ms / 3_600_000);
    } else if ms % 60_000 == 0 && ms > 0 {
        let _ = write!(s, "{}m", ms / 60_000);
    } else if ms % 1000 == 0 {
        let _ = write!(s, "{}s", ms / 1000);
    } else {
        let _ = write!(s, "{ms}ms");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for k in KEYS {
            validate(k, k.default).unwrap();
        }
    }

    #[test]
    fn bad_values_name_key_and_form() {
        let mut c = Config::new();
        let e = c.set("pool.max_size", "0").unwrap_err();
        assert_eq!(e.code(), crate::Code::InvalidArgument);
        assert!(
            e.message()
                .contains("pool.max_size must be an integer 1..=65535")
        );
        let e = c.set("pool.acquire_timeout", "soon").unwrap_err();
        assert!(
            e.message()
                .contains("pool.acquire_timeout must be a duration")
        );
        let e = c.set("pool.nope", "1").unwrap_err();
        assert!(
            e.message()
                .contains("unknown configuration key \"pool.nope\"")
        );
        assert!(e.message().contains("pool.max_size"));
        assert!(c.iter().next().is_none(), "a failed set changes nothing");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("40"), Some(Duration::from_millis(40)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1.s"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("PING\\r\\n").unwrap(), b"PING\r\n");
        assert_eq!(unescape("\\x00\\xff\\\\").unwrap(), b"\0\xff\\");
        assert!(unescape("bad\\q").is_none());
        assert!(unescape("\\x4").is_none());
        let mut c = Config::new();
        let e = c.set("probe.send", "x\\y").unwrap_err();
        assert!(
            e.message()
                .contains("probe.send must be text with C escapes")
        );
    }

    #[test]
    fn natural_spellings() {
        assert_eq!(resolve_key("max_size", "pool").unwrap(), "pool.max_size");
        assert_eq!(resolve_key("maxSize", "pool").unwrap(), "pool.max_size");
        assert_eq!(
            resolve_key("runtime_worker_threads", "pool").unwrap(),
            "runtime.worker_threads"
        );
        assert_eq!(resolve_key("tcpNodelay", "pool").unwrap(), "tcp.nodelay");
        assert!(resolve_key("max_sizes", "pool").is_err());
    }

    #[test]
    fn merge_overrides() {
        let mut a = Config::new();
        a.set("pool.max_size", "3").unwrap();
        let mut b = Config::new();
        b.set("pool.max_size", "5").unwrap();
        assert_eq!(a.merged(&b).u64("pool.max_size"), 5);
        assert_eq!(a.merged(&Config::new()).u64("pool.max_size"), 3);
    }
}
