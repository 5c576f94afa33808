//! The registry's authentication hook: a token in, a user and metadata out, or a
//! refusal (Unauthenticated); and a subscribe allowed or refused (PermissionDenied).

use std::sync::Arc;

use super::Registry;
use super::types::{AuthGrant, ConnId};

/// An installed authentication hook.
pub type SharedAuthenticator = Arc<dyn Authenticator + Send + Sync>;

/// The authentication hook (optional). Called on the caller's thread, with no
/// registry lock held, by `register` when given a token and by every subscribe.
/// Installed for the whole registry with [`Registry::set_authenticator`] (then it
/// must be `Send + Sync`), or passed to one call with the `*_with_auth` methods (a
/// binding whose hooks live on one thread, like Node's JS functions, does that).
pub trait Authenticator {
    /// Checks `token`: the user and metadata to record, or the reason for a refusal
    /// (the register then fails with Unauthenticated).
    fn authenticate(&self, token: &str) -> std::result::Result<AuthGrant, String>;

    /// Whether the connection may subscribe to `topic` (also for the topics named at
    /// register); a refusal fails with PermissionDenied. The default allows all.
    fn authorize_subscribe(
        &self,
        id: ConnId,
        user: Option<&str>,
        topic: &str,
    ) -> std::result::Result<(), String> {
        let _ = (id, user, topic);
        Ok(())
    }
}

impl Registry {
    /// Sets (or with `None` clears) the authentication hook.
    pub fn set_authenticator(
        &self,
        auth: Option<SharedAuthenticator>,
    ) -> Option<SharedAuthenticator> {
        let mut slot = self.inner.auth.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, auth)
    }

    pub(crate) fn authenticator(&self) -> Option<SharedAuthenticator> {
        self.inner
            .auth
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
