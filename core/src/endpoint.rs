//! Endpoints: the addresses a pool connects to.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// One address a pool connects to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `tcp://host:port`
    Tcp {
        /// Host name or IP address (IPv6 in brackets in the URL, bare here).
        host: String,
        /// Port number.
        port: u16,
    },
    /// `unix:///path/to/socket`
    Unix(PathBuf),
    /// Any other `scheme://rest` or bare name, for custom connectors.
    Named(String),
}

const ACCEPTED: &str = "\"tcp://host:port\", \"unix:///path\" or a comma-separated list of them";

impl Endpoint {
    /// Parses one endpoint URL. `allow_named` accepts names a custom connector
    /// understands; the built-in connector accepts only `tcp://` and `unix://`.
    pub fn parse(s: &str, allow_named: bool) -> Result<Endpoint> {
        let s = s.trim();
        let bad = |why: &str| {
            Error::invalid_argument(format!(
                "target \"{}\" {why}; expected {ACCEPTED}",
                s.escape_default()
            ))
        };
        if let Some(rest) = s.strip_prefix("tcp://") {
            let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
                let (h, p) = v6
                    .split_once("]:")
                    .ok_or_else(|| bad("has no port after the IPv6 address"))?;
                (h, p)
            } else {
                rest.rsplit_once(':').ok_or_else(|| bad("has no port"))?
            };
            if host.is_empty() {
                return Err(bad("has no host"));
            }
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("has a port that is not 1..=65535"))?;
            return Ok(Endpoint::Tcp {
                host: host.to_string(),
                port,
            });
        }
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad("has no socket path"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if allow_named && !s.is_empty() {
            return Ok(Endpoint::Named(s.to_string()));
        }
        Err(bad("is not a supported address"))
    }

    /// Parses a comma-separated list of endpoints (at least one).
    pub fn parse_list(s: &str, allow_named: bool) -> Result<Vec<Endpoint>> {
        let list: Vec<Endpoint> = s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| Endpoint::parse(p, allow_named))
            .collect::<Result<_>>()?;
        if list.is_empty() {
            return Err(Error::invalid_argument(format!(
                "target is empty; expected {ACCEPTED}"
            )));
        }
        Ok(list)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Named(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in [
            "tcp://127.0.0.1:6379",
            "tcp://[::1]:80",
            "unix:///tmp/x.sock",
        ] {
            assert_eq!(Endpoint::parse(s, false).unwrap().to_string(), s);
        }
        let list = Endpoint::parse_list("tcp://a:1, tcp://b:2", false).unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn rejects_with_reason() {
        let e = Endpoint::parse("tcp://host", false).unwrap_err();
        assert!(e.message().contains("has no port"), "{}", e.message());
        let e = Endpoint::parse("tcp://host:0", false).unwrap_err();
        assert!(e.message().contains("1..=65535"));
        let e = Endpoint::parse("redis://x", false).unwrap_err();
        assert!(e.message().contains("expected \"tcp://host:port\""));
        assert!(Endpoint::parse("redis://x", true).is_ok());
        assert!(Endpoint::parse_list(" , ", false).is_err());
    }
}
