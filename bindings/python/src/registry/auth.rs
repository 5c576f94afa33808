//! The authentication hook: the package's normalised Python hooks as core's
//! `Authenticator`, run on the thread that registers or subscribes.

use pyo3::prelude::*;
use switchboard_core::registry::{AuthGrant, Authenticator, ConnId};

use super::{SHUTTING_DOWN, exc_text};

/// The package's normalised hooks: `authenticate(token) -> (user, [(k, v)])` and
/// `authorize(id, user, topic) -> None`, each raising to refuse.
pub(super) struct PyAuth {
    pub(super) authenticate: Py<PyAny>,
    pub(super) authorize: Option<Py<PyAny>>,
}

impl Authenticator for PyAuth {
    fn authenticate(&self, token: &str) -> Result<AuthGrant, String> {
        Python::try_attach(|py| {
            let got = self
                .authenticate
                .call1(py, (token,))
                .map_err(|e| exc_text(py, &e))?;
            let (user, metadata): (Option<String>, Vec<(String, String)>) =
                got.extract(py).map_err(|e: PyErr| exc_text(py, &e))?;
            Ok(AuthGrant { user, metadata })
        })
        .unwrap_or_else(|| Err(SHUTTING_DOWN.to_string()))
    }

    fn authorize_subscribe(
        &self,
        id: ConnId,
        user: Option<&str>,
        topic: &str,
    ) -> Result<(), String> {
        let Some(authorize) = &self.authorize else {
            return Ok(());
        };
        Python::try_attach(|py| {
            authorize
                .call1(py, (id, user, topic))
                .map(drop)
                .map_err(|e| exc_text(py, &e))
        })
        .unwrap_or_else(|| Err(SHUTTING_DOWN.to_string()))
    }
}
