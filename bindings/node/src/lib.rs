//! The Node addon of switchboard (`switchboard.node`), wrapped by `index.js`.
//!
//! This crate only translates: JS options become core `Config` keys, core errors become
//! JS `Error`s whose `code` is the `SB_*` name, and every call that may wait runs on the
//! manager's own tokio runtime and settles a promise from there, so the event loop never
//! blocks. Nothing here keeps the process alive except a promise that is still pending.
//!
//! The native classes are private (`NativeManager`, `NativePool`, `NativeLease`);
//! `index.js` wraps them in the public `Manager`, `Pool` and `Lease` classes.

mod cluster;
mod custom;
mod envelope;
mod error;
mod events;
mod health;
mod lease;
mod manager;
mod pool;
mod registry;
mod resources;
mod server;
mod sessions;
mod settle;

use napi_derive::napi;

pub use custom::settle_call;
pub use envelope::{NativeEnvelope, envelope_decode, envelope_encode};
pub use error::SbStatus;

/// The library version (core's Cargo version).
#[napi]
pub fn version() -> String {
    switchboard_core::VERSION.to_string()
}

/// Every error code a JS error can carry, as `[name, code]` pairs in numeric order
/// (`["Timeout", "SB_TIMEOUT"]`). `index.js` turns them into the `ErrorCode` constants.
#[napi]
pub fn error_codes() -> Vec<Vec<String>> {
    switchboard_core::Code::ALL
        .iter()
        .map(|c| vec![c.name().to_string(), c.sb_name().to_string()])
        .collect()
}
