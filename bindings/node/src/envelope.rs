//! Seed 004's JSON envelope: core's `envelope::encode` / `decode`.

use napi_derive::napi;
use switchboard_core::envelope;

use crate::error::{Result, guard, to_napi};

/// A decoded envelope; `data_json` is the payload as JSON text.
#[napi(object)]
pub struct NativeEnvelope {
    pub kind: String,
    pub topic: Option<String>,
    pub data_json: Option<String>,
    pub timestamp: Option<String>,
    pub error: Option<String>,
}

/// Encodes an envelope stamped now (core's `envelope::encode`).
#[napi]
pub fn envelope_encode(
    kind: String,
    topic: Option<String>,
    data_json: Option<String>,
    error: Option<String>,
) -> Result<String> {
    guard(|| {
        envelope::encode(
            &kind,
            topic.as_deref(),
            data_json.as_deref(),
            error.as_deref(),
        )
        .map_err(to_napi)
    })
}

/// Decodes an envelope (core's `envelope::decode`).
#[napi]
pub fn envelope_decode(text: String) -> Result<NativeEnvelope> {
    guard(|| {
        let e = envelope::decode(&text).map_err(to_napi)?;
        Ok(NativeEnvelope {
            data_json: e.data_json(),
            kind: e.kind,
            topic: e.topic,
            timestamp: e.timestamp,
            error: e.error,
        })
    })
}
