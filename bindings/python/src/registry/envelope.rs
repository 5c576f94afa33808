//! Seed 004's JSON envelope, encoded and decoded by core.

use pyo3::prelude::*;
use switchboard_core::envelope;

use crate::errors::OrRaise;

/// Encodes seed 004's JSON envelope (`data_json` is JSON text), stamped now.
#[pyfunction]
#[pyo3(signature = (kind, topic, data_json, error))]
pub(crate) fn envelope_encode(
    py: Python<'_>,
    kind: &str,
    topic: Option<&str>,
    data_json: Option<&str>,
    error: Option<&str>,
) -> PyResult<String> {
    envelope::encode(kind, topic, data_json, error).or_raise(py)
}

/// Decodes an envelope: `(type, topic, data_json, timestamp, error)`.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn envelope_decode(
    py: Python<'_>,
    text: &str,
) -> PyResult<(
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
)> {
    let e = envelope::decode(text).or_raise(py)?;
    let data = e.data_json();
    Ok((e.kind, e.topic, data, e.timestamp, e.error))
}
