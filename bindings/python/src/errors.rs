//! Core errors to Python exceptions.
//!
//! The exception classes are defined once, in Python (`switchboard/_errors.py`), because
//! each extends both `SwitchboardError` and the matching built-in (`Timeout` is a
//! `TimeoutError`), which Python classes express directly. This module builds instances
//! through that module's `_from_native(code, message, errno)`, so the classes raised
//! here are exactly the ones users catch.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use switchboard_core::Error;

static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn factory(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    FACTORY
        .get_or_try_init(py, || {
            py.import("switchboard._errors")?
                .getattr("_from_native")
                .map(Bound::unbind)
        })
        .map(|f| f.bind(py))
}

/// The exception instance for `err`: a `switchboard.SwitchboardError` subclass with
/// `.code` set (and `.errno`, when the OS gave one).
pub(crate) fn exception<'py>(py: Python<'py>, err: &Error) -> Bound<'py, PyAny> {
    let made =
        factory(py).and_then(|f| f.call1((err.code().sb_name(), err.message(), err.errno())));
    match made {
        Ok(exc) => exc,
        // Only if the package itself is broken (its _errors module cannot be imported):
        // still report the error rather than lose it.
        Err(import_err) => {
            let exc =
                PyRuntimeError::new_err(format!("{}: {}", err.code().sb_name(), err.message()));
            exc.set_cause(py, Some(import_err));
            exc.into_value(py).into_bound(py).into_any()
        }
    }
}

/// `err` as a `PyErr` to raise.
pub(crate) fn to_pyerr(py: Python<'_>, err: &Error) -> PyErr {
    PyErr::from_value(exception(py, err))
}

/// `result.or_raise(py)`: a core result as a Python result.
pub(crate) trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for Result<T, Error> {
    #[inline]
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_pyerr(py, &e))
    }
}
