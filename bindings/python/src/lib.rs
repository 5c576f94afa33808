//! `switchboard._native`: the private native module under the `switchboard` Python
//! package. It only translates: Python values into core types, core errors into the
//! package's exception classes, blocking calls into calls that release the GIL, and
//! core futures into callbacks that settle asyncio futures. All behaviour lives in
//! `switchboard-core`; the public API is the pure-Python package around this module.
//!
//! Rules this module keeps (see DESIGN.md):
//! - every call that may wait (acquire, send/recv, close) runs inside `py.detach`, with
//!   its inputs already copied into owned Rust values;
//! - anything whose drop may wait on the manager's runtime (a `Manager`) is dropped with
//!   the GIL released, because a runtime thread may be waiting for the GIL;
//! - runtime threads reach Python only through `Python::try_attach`, so an interpreter
//!   that is shutting down is never waited for.

use pyo3::prelude::*;

mod cluster;
mod config;
mod custom;
mod errors;
mod lease;
mod manager;
mod pool;
mod registry;
mod resources;
mod server;
mod sessions;

/// The native module. Its classes are re-exported (or wrapped) by `switchboard`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", switchboard_core::VERSION)?;
    m.add_class::<manager::PyManager>()?;
    m.add_class::<pool::PyPool>()?;
    m.add_class::<pool::PyAcquireTask>()?;
    m.add_class::<lease::PyLease>()?;
    m.add_class::<sessions::PySessions>()?;
    m.add_class::<registry::PyRegistry>()?;
    m.add_class::<registry::PyOutbox>()?;
    m.add_class::<resources::PyResources>()?;
    m.add_class::<resources::PyResourceHandle>()?;
    m.add_class::<server::PyHub>()?;
    m.add_class::<cluster::PyCluster>()?;
    m.add_function(wrap_pyfunction!(registry::envelope_encode, m)?)?;
    m.add_function(wrap_pyfunction!(registry::envelope_decode, m)?)?;
    Ok(())
}
