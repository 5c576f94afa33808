//! Python arguments to core values: config pairs and timeouts in seconds.

use std::time::Duration;

use pyo3::prelude::*;
use switchboard_core::{Config, Error};

use crate::errors::OrRaise;

/// Builds a config from `(key, value)` pairs whose keys may be spelled naturally
/// (`max_size`, `pool_max_size`, `pool.max_size`); the Python package has already
/// turned every value into its string form. Validation is the core's.
pub(crate) fn build(
    py: Python<'_>,
    pairs: Vec<(String, String)>,
    section: &str,
) -> PyResult<Config> {
    let mut cfg = Config::new();
    for (key, value) in pairs {
        cfg.set_natural(&key, section, &value).or_raise(py)?;
    }
    Ok(cfg)
}

/// A timeout given in seconds (the Python convention, as in `socket.settimeout`).
pub(crate) fn seconds(
    py: Python<'_>,
    what: &str,
    value: Option<f64>,
) -> PyResult<Option<Duration>> {
    let Some(v) = value else {
        return Ok(None);
    };
    match Duration::try_from_secs_f64(v) {
        Ok(d) => Ok(Some(d)),
        Err(_) => Err(Error::invalid_argument(format!(
            "{what} must be a non-negative number of seconds or None, got {v}"
        )))
        .or_raise(py),
    }
}
