//! The catalog: which data sources and session keys may be opened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{KeyEntry, Sessions, non_empty};
use crate::error::{Error, Result};

impl Sessions {
    /// Registers the session key `session_key` of `data_source`, so that sessions may
    /// be opened on it. Returns `true` if it was new, `false` if it was already there.
    pub fn register(&self, data_source: &str, session_key: &str) -> Result<bool> {
        self.check_open()?;
        non_empty("data_source", data_source)?;
        non_empty("session_key", session_key)?;
        let mut cat = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        let keys = cat.entry(Arc::from(data_source)).or_default();
        if keys.contains_key(session_key) {
            return Ok(false);
        }
        let ds = keys
            .values()
            .next()
            .map(|e| e.data_source.clone())
            .unwrap_or_else(|| Arc::from(data_source));
        let sk: Arc<str> = Arc::from(session_key);
        keys.insert(
            sk.clone(),
            Arc::new(KeyEntry {
                data_source: ds,
                session_key: sk,
                open: AtomicUsize::new(0),
                opened_total: AtomicU64::new(0),
            }),
        );
        Ok(true)
    }

    /// Removes a session key from the catalog. Returns `true` if it was registered,
    /// `false` if not. Fails with FailedPrecondition while sessions are open on it
    /// (close them first: [`Sessions::list`] finds them).
    pub fn unregister(&self, data_source: &str, session_key: &str) -> Result<bool> {
        self.check_open()?;
        non_empty("data_source", data_source)?;
        non_empty("session_key", session_key)?;
        let mut cat = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        let Some(keys) = cat.get_mut(data_source) else {
            return Ok(false);
        };
        let Some(entry) = keys.get(session_key) else {
            return Ok(false);
        };
        let open = entry.open.load(Ordering::Acquire);
        if open > 0 {
            return Err(Error::failed_precondition(format!(
                "session key \"{session_key}\" of data source \"{data_source}\" has {open} open session(s); close them before unregistering it"
            )));
        }
        keys.remove(session_key);
        if keys.is_empty() {
            cat.remove(data_source);
        }
        Ok(true)
    }

    /// Whether `session_key` of `data_source` is registered.
    pub fn is_registered(&self, data_source: &str, session_key: &str) -> Result<bool> {
        self.check_open()?;
        let cat = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        Ok(cat
            .get(data_source)
            .is_some_and(|k| k.contains_key(session_key)))
    }

    /// Every registered `(data_source, session_key)`, sorted.
    pub fn catalog(&self) -> Result<Vec<(String, String)>> {
        self.check_open()?;
        let cat = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, String)> = cat
            .values()
            .flat_map(|k| k.values())
            .map(|e| (e.data_source.to_string(), e.session_key.to_string()))
            .collect();
        out.sort();
        Ok(out)
    }
}
