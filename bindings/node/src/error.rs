//! Core errors as JS errors: `err.code` is the `SB_*` name, `err.message` core's message.

use std::panic::{AssertUnwindSafe, catch_unwind};

use napi::Env;
use napi::bindgen_prelude::{JsError, Unknown};
use switchboard_core::{Code, Error};

/// The status type of every fallible native call: napi-rs creates the JS error with
/// `napi_create_error(code, message)`, so the string here becomes `err.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SbStatus(&'static str);

impl AsRef<str> for SbStatus {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// `napi::Result` with `SB_*` codes.
pub type Result<T> = napi::Result<T, SbStatus>;

/// A core error as a napi error with the `SB_*` code.
pub fn to_napi(e: Error) -> napi::Error<SbStatus> {
    napi::Error::new(SbStatus(e.code().sb_name()), e.message())
}

/// Shorthand for an error of `code` with `message`.
pub fn sb_error(code: Code, message: impl Into<String>) -> napi::Error<SbStatus> {
    to_napi(Error::new(code, message))
}

/// Runs a native method body, turning a panic into an `SB_INTERNAL` error so that no
/// panic unwinds into Node.
pub fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(to_napi(Error::from_panic(payload.as_ref()))),
    }
}

/// A JS `Error` object for `e`, as a napi error that holds it by reference, so that a
/// promise can be rejected with an error whose `code` is the `SB_*` name (a rejection
/// through `JsDeferred` only takes `napi::Error<Status>`). Must run on the JS thread.
pub fn js_error(env: Env, e: &Error) -> napi::Error {
    let err = napi::Error::new(SbStatus(e.code().sb_name()), e.message());
    let value: Unknown<'_> = JsError::from(err).into_unknown(env);
    napi::Error::from(value)
}
