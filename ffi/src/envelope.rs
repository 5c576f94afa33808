//! `sb_envelope_*`: seed 004's JSON message envelope (core's `envelope`), encoded
//! into and decoded from the caller's buffers.

use std::ffi::c_char;

use crate::args::{copy_str_out, opt_str, str_arg};
use crate::error::{guard, sb_status};

/// Encodes seed 004's JSON message envelope, stamped now:
/// `{"type":..,"topic":..,"data":..,"timestamp":..,"error":..}` into `buf` as a
/// NUL-terminated string. `type` is required; `topic`, `data_json` (JSON text: an
/// object, array, string, number ...) and `error` may be NULL (left out). `*written`
/// (if not NULL) always receives the size the text needs with its NUL; when it does
/// not fit in `len`, returns `SB_RESOURCE_EXHAUSTED` (`buf` may be NULL with `len` 0
/// to ask). `SB_INVALID_ARGUMENT` for an empty type or `data_json` that is not JSON.
///
/// # Safety
///
/// Strings NULL or NUL-terminated (`type` NULL is rejected); `buf` `len` writable
/// bytes (or NULL with 0); `written` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_envelope_encode(
    r#type: *const c_char,
    topic: *const c_char,
    data_json: *const c_char,
    error: *const c_char,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_envelope_encode", || {
        // SAFETY: NULL or NUL-terminated strings by the caller's contract.
        let (kind, topic, data, err) = unsafe {
            (
                str_arg(r#type, "type")?,
                opt_str(topic, "topic")?,
                opt_str(data_json, "data_json")?,
                opt_str(error, "error")?,
            )
        };
        let text = switchboard_core::envelope::encode(kind, topic, data, err)?;
        // SAFETY: forwarded caller's contract.
        unsafe { copy_str_out(&text, buf, len, written, "the envelope") }
    })
}

/// Decodes an envelope's fields into the caller's buffers: `type_buf` receives its
/// type, `topic_buf` its topic ("" when none), `data_buf` its data as JSON text (""
/// when none), each NUL-terminated (a buffer may be NULL with length 0 when not
/// wanted). `SB_INVALID_ARGUMENT` names what is wrong with `text`;
/// `SB_RESOURCE_EXHAUSTED` when a wanted field does not fit.
///
/// # Safety
///
/// `text` NULL (rejected) or NUL-terminated; each buffer its length in writable bytes
/// (or NULL with 0).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn sb_envelope_decode(
    text: *const c_char,
    type_buf: *mut c_char,
    type_len: usize,
    topic_buf: *mut c_char,
    topic_len: usize,
    data_buf: *mut c_char,
    data_len: usize,
) -> sb_status {
    guard("sb_envelope_decode", || {
        // SAFETY: NUL-terminated by the caller's contract.
        let text = unsafe { str_arg(text, "text") }?;
        let env = switchboard_core::envelope::decode(text)?;
        let data = env.data_json().unwrap_or_default();
        // SAFETY: forwarded caller's contract for each buffer.
        unsafe {
            if type_len > 0 {
                copy_str_out(
                    &env.kind,
                    type_buf,
                    type_len,
                    std::ptr::null_mut(),
                    "the type",
                )?;
            }
            if topic_len > 0 {
                let t = env.topic.as_deref().unwrap_or("");
                copy_str_out(t, topic_buf, topic_len, std::ptr::null_mut(), "the topic")?;
            }
            if data_len > 0 {
                copy_str_out(&data, data_buf, data_len, std::ptr::null_mut(), "the data")?;
            }
        }
        Ok(())
    })
}
