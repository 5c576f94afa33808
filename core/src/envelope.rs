//! The message envelope of seed 004's WebSocket pool, as an optional helper: a JSON
//! object with `type`, and optionally `topic`, `data` (any JSON), `timestamp`
//! (RFC 3339, UTC) and `error`. Built with serde_json so that no program (and no
//! binding) writes its own encoder.
//!
//! ```
//! use switchboard_core::envelope::{self, Envelope};
//! let text = envelope::encode("notification", Some("news"), Some(r#"{"id":7}"#), None)?;
//! let back: Envelope = envelope::decode(&text)?;
//! assert_eq!(back.kind, "notification");
//! assert_eq!(back.topic.as_deref(), Some("news"));
//! assert_eq!(back.data_json().as_deref(), Some(r#"{"id":7}"#));
//! assert!(back.timestamp.as_deref().is_some_and(|t| t.ends_with('Z')));
//! # Ok::<(), switchboard_core::Error>(())
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The message type (`ping`, `subscribe`, `data`, `notification`, ...).
    pub kind: String,
    /// The topic it concerns, if any.
    pub topic: Option<String>,
    /// The payload, any JSON value.
    pub data: Option<Value>,
    /// When it was made, RFC 3339 in UTC.
    pub timestamp: Option<String>,
    /// An error message, for `type: "error"` and replies.
    pub error: Option<String>,
}

impl Envelope {
    /// The payload as JSON text.
    pub fn data_json(&self) -> Option<String> {
        self.data.as_ref().map(Value::to_string)
    }

    /// The envelope as JSON text (fields that are `None` are left out).
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        if let Some(t) = &self.topic {
            m.insert("topic".into(), Value::String(t.clone()));
        }
        if let Some(d) = &self.data {
            m.insert("data".into(), d.clone());
        }
        if let Some(t) = &self.timestamp {
            m.insert("timestamp".into(), Value::String(t.clone()));
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), Value::String(e.clone()));
        }
        Value::Object(m).to_string()
    }
}

/// Encodes an envelope stamped now. `data_json` must be JSON text (an object, array,
/// string, number, ...); InvalidArgument names what is wrong with it.
pub fn encode(
    kind: &str,
    topic: Option<&str>,
    data_json: Option<&str>,
    error: Option<&str>,
) -> Result<String> {
    if kind.is_empty() {
        return Err(Error::invalid_argument(
            "an envelope's type must be a non-empty string, e.g. \"data\" or \"notification\"",
        ));
    }
    let data = match data_json {
        Some(text) => Some(serde_json::from_str::<Value>(text).map_err(|e| {
            Error::invalid_argument(format!("an envelope's data must be JSON text: {e}"))
        })?),
        None => None,
    };
    Ok(Envelope {
        kind: kind.to_string(),
        topic: topic.map(str::to_string),
        data,
        timestamp: Some(rfc3339_now()),
        error: error.map(str::to_string),
    }
    .to_json())
}

/// Decodes an envelope: a JSON object with a string `type`. InvalidArgument says
/// what is wrong (not JSON, not an object, no `type`, a field of the wrong kind).
pub fn decode(text: &str) -> Result<Envelope> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid_argument(format!("an envelope must be JSON text: {e}")))?;
    let Value::Object(mut m) = v else {
        return Err(Error::invalid_argument(
            "an envelope must be a JSON object with a \"type\" field",
        ));
    };
    let text_field = |m: &mut Map<String, Value>, key: &str| -> Result<Option<String>> {
        match m.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::invalid_argument(format!(
                "an envelope's \"{key}\" must be a string, got {other}"
            ))),
        }
    };
    let Some(kind) = text_field(&mut m, "type")? else {
        return Err(Error::invalid_argument(
            "an envelope must have a string \"type\" field",
        ));
    };
    Ok(Envelope {
        kind,
        topic: text_field(&mut m, "topic")?,
        data: m.remove("data").filter(|d| !d.is_null()),
        timestamp: text_field(&mut m, "timestamp")?,
        error: text_field(&mut m, "error")?,
    })
}

/// Now as RFC 3339 in UTC with milliseconds: `2026-12-03T15:42:31.123Z`.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_672_574_400, 5), "2023-01-01T12:00:00.005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn bad_envelopes_say_why() {
        assert!(decode("[1]").unwrap_err().message().contains("JSON object"));
        assert!(decode("{}").unwrap_err().message().contains("\"type\""));
        assert!(
            decode(r#"{"type":1}"#)
                .unwrap_err()
                .message()
                .contains("must be a string")
        );
        assert!(
            encode("x", None, Some("{oops"), None)
                .unwrap_err()
                .message()
                .contains("JSON text")
        );
        assert!(encode("", None, None, None).is_err());
    }
}
