//! Send-callback sinks: a connection's Python callbacks as core's `Sink`, and the
//! round hook that takes the GIL once per delivery round.

use std::sync::Arc;

use pyo3::prelude::*;
use switchboard_core::Manager;
use switchboard_core::registry::{ConnId, Message, RoundHook, SendOutcome, Sink};

use super::message::{clear_shared, shared_python};
use super::{SHUTTING_DOWN, exc_text};

/// Takes the GIL once around each delivery round (installed on every Python manager).
pub(crate) struct GilRound;

impl RoundHook for GilRound {
    fn run(&self, round: &mut dyn FnMut()) {
        let ran = Python::try_attach(|_py| {
            round();
            clear_shared();
        });
        if ran.is_none() {
            // The interpreter is going away: run the round anyway, so the queues drain
            // (each callback fails without Python, and the close callbacks are skipped).
            round();
        }
    }
}

/// Installs [`GilRound`] on `manager`'s registry.
pub(crate) fn install_round_hook(manager: &Manager) {
    drop(manager.registry().set_round_hook(Some(Arc::new(GilRound))));
}

// ---- send-callback sinks -----------------------------------------------------------

/// What the package's lane reports for a scheduled awaitable.
const REPORT_ALL: u8 = 1;
const REPORT_FAILURE: u8 = 2;
const REPORT_NONE: u8 = 0;

/// A connection's Python callbacks.
pub(super) struct PySink {
    pub(super) send: Py<PyAny>,
    pub(super) ping: Option<Py<PyAny>>,
    pub(super) closed: Option<Py<PyAny>>,
    /// `schedule(id, awaitable, report)`: runs an awaitable a callback returned on the
    /// event loop, after the connection's earlier ones; `None` when register was
    /// called with no running loop.
    pub(super) schedule: Option<Py<PyAny>>,
}

impl PySink {
    /// What a callback's return value means: an awaitable is scheduled (Pending when
    /// its result is reported), anything else is done.
    fn outcome(
        &self,
        py: Python<'_>,
        id: ConnId,
        value: Bound<'_, PyAny>,
        report: u8,
    ) -> SendOutcome {
        if value.is_none() || !value.hasattr("__await__").unwrap_or(false) {
            return SendOutcome::Sent;
        }
        let Some(schedule) = &self.schedule else {
            let _ = value.call_method0("close");
            return SendOutcome::Failed(
                "the callback returned an awaitable, but the connection was registered with no running event loop to run it on: register inside the event loop (in an async def), or use a plain function".to_string(),
            );
        };
        match schedule.call1(py, (id, value, report)) {
            Ok(_) if report == REPORT_ALL => SendOutcome::Pending,
            Ok(_) => SendOutcome::Sent,
            Err(e) => SendOutcome::Failed(exc_text(py, &e)),
        }
    }
}

impl Sink for PySink {
    /// An `async def` callback's coroutine runs on the event loop's thread, which may
    /// report it (with the GIL, which the round lets go of between bytecodes) before
    /// `send` has returned Pending: core must be ready for that.
    fn may_pend(&self) -> bool {
        self.schedule.is_some()
    }

    fn send(&self, id: ConnId, msg: &Message) -> SendOutcome {
        Python::try_attach(|py| {
            let m = shared_python(py, msg);
            match self.send.call1(py, (m,)) {
                Ok(r) => self.outcome(py, id, r.into_bound(py), REPORT_ALL),
                Err(e) => SendOutcome::Failed(exc_text(py, &e)),
            }
        })
        .unwrap_or_else(|| SendOutcome::Failed(SHUTTING_DOWN.to_string()))
    }

    fn ping(&self, id: ConnId) -> SendOutcome {
        let Some(ping) = &self.ping else {
            return SendOutcome::Sent;
        };
        Python::try_attach(|py| match ping.call0(py) {
            Ok(r) => self.outcome(py, id, r.into_bound(py), REPORT_FAILURE),
            Err(e) => SendOutcome::Failed(exc_text(py, &e)),
        })
        .unwrap_or_else(|| SendOutcome::Failed(SHUTTING_DOWN.to_string()))
    }

    fn closed(&self, id: ConnId, reason: &str) {
        let Some(closed) = &self.closed else {
            return;
        };
        let _ = Python::try_attach(|py| match closed.call1(py, (reason,)) {
            Ok(r) => {
                // Fails only when no loop can run an awaitable (then it was closed).
                let _ = self.outcome(py, id, r.into_bound(py), REPORT_NONE);
            }
            Err(e) => e.write_unraisable(py, Some(closed.bind(py))),
        });
    }
}
