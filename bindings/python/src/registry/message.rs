//! Messages across the boundary: a Python `str` / bytes-like object as a core
//! message, and a core message as the `str` / `bytes` a callback or an outbox reader
//! gets (one object per broadcast and delivery round, see [`shared_python`]).

use std::cell::RefCell;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PyString};
use switchboard_core::Error;
use switchboard_core::registry::Message;

use crate::errors::OrRaise;

/// A Python message as a core message: `str` is a text message, `bytes` (or any
/// bytes-like object, copied) a binary one.
pub(crate) fn message(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Message> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Message::text(&s.to_cow()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Message::binary(b.as_bytes()));
    }
    if let Ok(view) = PyMemoryView::from(obj) {
        let copy = view.call_method0("tobytes")?;
        if let Ok(b) = copy.cast::<PyBytes>() {
            return Ok(Message::binary(b.as_bytes()));
        }
    }
    let kind = obj
        .get_type()
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string());
    Err(Error::invalid_argument(format!(
        "a message must be str (a text message) or bytes (a binary one), got {kind}"
    )))
    .or_raise(py)
}

/// A core message as the Python object a send callback or an outbox reader gets.
pub(super) fn to_python(py: Python<'_>, msg: &Message) -> Py<PyAny> {
    match msg.as_text() {
        Some(text) => PyString::new(py, text).into_any().unbind(),
        None => PyBytes::new(py, msg.data()).into_any().unbind(),
    }
}

thread_local! {
    /// The last message converted on this delivery thread with its Python object: one
    /// broadcast reaches many connections with the same (shared) bytes, and Python's
    /// `bytes`/`str` are immutable, so one object serves them all. The core message is
    /// kept alongside so its allocation (the key) cannot be reused meanwhile. Cleared at
    /// the end of each round, with the GIL held.
    static LAST: RefCell<Option<(Message, Py<PyAny>)>> = const { RefCell::new(None) };
}

pub(super) fn shared_python(py: Python<'_>, msg: &Message) -> Py<PyAny> {
    LAST.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((m, obj)) = &*slot {
            if m.ptr_eq(msg) {
                return obj.clone_ref(py);
            }
        }
        let obj = to_python(py, msg);
        let old = slot.replace((msg.clone(), obj.clone_ref(py)));
        drop(slot);
        drop(old);
        obj
    })
}

pub(super) fn clear_shared() {
    let old = LAST.with(|cell| cell.borrow_mut().take());
    drop(old);
}
