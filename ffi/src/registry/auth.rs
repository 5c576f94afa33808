//! The registry's authentication hook: the program's `authenticate` and `authorize`
//! callbacks (`sb_registry_set_authenticator`) and the `sb_grant` an authenticate
//! callback fills with `sb_grant_set_user` and `sb_grant_add_meta`.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use switchboard_core::Error;
use switchboard_core::registry::{AuthGrant, Authenticator, ConnId, SharedAuthenticator};

use super::UserPtr;
use crate::args::{c_string, str_arg};
use crate::connector::sb_free_fn;
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

/// Size of the `why` buffer the auth callbacks get, NUL included.
pub const SB_AUTH_WHY_LEN: usize = 256;

/// What the authenticate hook grants a token, filled by the callback with
/// `sb_grant_set_user` and `sb_grant_add_meta`. Valid only during the callback.
#[allow(non_camel_case_types)]
pub struct sb_grant {
    _opaque: [u8; 0],
}

/// The Rust side of an `sb_grant *`.
struct GrantBuilder {
    grant: AuthGrant,
    error: Option<Error>,
}

/// Checks `token` (valid only during the call). Return 0 to accept it, after
/// optionally setting the user and metadata on `grant`; non-zero to refuse it, with
/// the reason written NUL-terminated into `why` (`why_len` bytes, zeroed; may be left
/// empty). Runs on the thread calling `sb_registry_register*` with a token or, for
/// clients of the embedded server's hub (`GET /ws`), on one of switchboard's
/// blocking-pool threads, possibly several at once: it must be thread-safe and may
/// block briefly.
#[allow(non_camel_case_types)]
pub type sb_authenticate_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        token: *const c_char,
        grant: *mut sb_grant,
        why: *mut c_char,
        why_len: usize,
    ) -> c_int,
>;

/// Whether connection `id` of `user` (NULL: none) may subscribe to `topic` (at
/// register and on every subscribe). Return 0 to allow; non-zero to refuse, with the
/// reason in `why` as above. Runs on the thread calling register or subscribe, or
/// (hub clients) on switchboard's blocking-pool threads, as the authenticate hook.
#[allow(non_camel_case_types)]
pub type sb_authorize_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        id: u64,
        user: *const c_char,
        topic: *const c_char,
        why: *mut c_char,
        why_len: usize,
    ) -> c_int,
>;

struct CAuth {
    authenticate: sb_authenticate_fn,
    authorize: sb_authorize_fn,
    userdata: UserPtr,
    free_userdata: sb_free_fn,
}

fn why_text(buf: &[c_char; SB_AUTH_WHY_LEN]) -> String {
    // The callback may have filled every byte: never read past the buffer.
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    let s = String::from_utf8_lossy(&bytes).into_owned();
    if s.is_empty() {
        "refused".to_string()
    } else {
        s
    }
}

impl Authenticator for CAuth {
    fn authenticate(&self, token: &str) -> std::result::Result<AuthGrant, String> {
        let Some(f) = self.authenticate else {
            return Err("no authenticate callback was set".to_string());
        };
        let token = c_string(token);
        let mut b = GrantBuilder {
            grant: AuthGrant::default(),
            error: None,
        };
        let mut why = [0 as c_char; SB_AUTH_WHY_LEN];
        let gp = std::ptr::addr_of_mut!(b).cast::<sb_grant>();
        // SAFETY: the program's function with its userdata; token, grant and why are
        // valid for the call; an extern "C" function cannot unwind.
        let rc = unsafe {
            f(
                self.userdata.0,
                token.as_ptr(),
                gp,
                why.as_mut_ptr(),
                SB_AUTH_WHY_LEN - 1,
            )
        };
        if rc != 0 {
            return Err(why_text(&why));
        }
        if let Some(e) = b.error {
            return Err(format!("the grant was filled wrongly: {}", e.message()));
        }
        Ok(b.grant)
    }

    fn authorize_subscribe(
        &self,
        id: ConnId,
        user: Option<&str>,
        topic: &str,
    ) -> std::result::Result<(), String> {
        let Some(f) = self.authorize else {
            return Ok(());
        };
        let user = user.map(c_string);
        let topic = c_string(topic);
        let mut why = [0 as c_char; SB_AUTH_WHY_LEN];
        // SAFETY: as in authenticate.
        let rc = unsafe {
            f(
                self.userdata.0,
                id,
                user.as_ref().map_or(std::ptr::null(), |u| u.as_ptr()),
                topic.as_ptr(),
                why.as_mut_ptr(),
                SB_AUTH_WHY_LEN - 1,
            )
        };
        if rc != 0 {
            return Err(why_text(&why));
        }
        Ok(())
    }
}

impl Drop for CAuth {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the program's function, once, with its own userdata: the hook's
            // last reference is going.
            unsafe { free(self.userdata.0) };
        }
    }
}

/// Sets the user of the grant being filled (inside an `sb_authenticate_fn`). Returns
/// `SB_INVALID_ARGUMENT` for a NULL grant or user, or a user that is not UTF-8 (the
/// refusal then names it).
///
/// # Safety
///
/// `grant` must be the pointer passed to the running authenticate callback; `user`
/// NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_grant_set_user(grant: *mut sb_grant, user: *const c_char) -> sb_status {
    guard("sb_grant_set_user", || {
        if grant.is_null() {
            return Err(null_arg("grant"));
        }
        // SAFETY: the live builder of the running callback, by the caller's contract.
        let b = unsafe { &mut *grant.cast::<GrantBuilder>() };
        // SAFETY: NUL-terminated by the caller's contract.
        match unsafe { str_arg(user, "user") } {
            Ok(u) => {
                b.grant.user = Some(u.to_string());
                Ok(())
            }
            Err(e) => {
                b.error.get_or_insert(e.clone());
                Err(e)
            }
        }
    })
}

/// Adds one metadata entry to the grant being filled (inside an
/// `sb_authenticate_fn`); merged over the registration's. Errors as
/// `sb_grant_set_user`.
///
/// # Safety
///
/// As `sb_grant_set_user`; `key` and `value` NULL (rejected) or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_grant_add_meta(
    grant: *mut sb_grant,
    key: *const c_char,
    value: *const c_char,
) -> sb_status {
    guard("sb_grant_add_meta", || {
        if grant.is_null() {
            return Err(null_arg("grant"));
        }
        // SAFETY: the live builder of the running callback, by the caller's contract.
        let b = unsafe { &mut *grant.cast::<GrantBuilder>() };
        // SAFETY: NUL-terminated by the caller's contract.
        let kv = unsafe { str_arg(key, "key").and_then(|k| Ok((k, str_arg(value, "value")?))) };
        match kv {
            Ok((k, v)) => {
                b.grant.metadata.push((k.to_string(), v.to_string()));
                Ok(())
            }
            Err(e) => {
                b.error.get_or_insert(e.clone());
                Err(e)
            }
        }
    })
}

/// Installs the registry's authentication hook (both callbacks NULL: removes it).
/// `authenticate` checks the token of a registration (a registration with a token and
/// no hook, or no `authenticate`, fails); `authorize` (NULL: allow all) checks each
/// topic at register and every subscribe. A refused token fails the register with
/// `SB_UNAUTHENTICATED` ("the authenticate hook refused the token: <why>"); a refused
/// topic with `SB_PERMISSION_DENIED` ("the authorize hook refused topic "t": <why>").
///
/// The callbacks run on the thread making the register or subscribe call, with no
/// registry lock held (they may call the registry, e.g. `sb_registry_get`); several
/// threads may run them at once. Ownership of `userdata` passes to the library:
/// `free_userdata` (if not NULL) runs once, when the hook is replaced or removed, or
/// when the manager is freed (with both callbacks NULL: before this returns, and on
/// failure too).
///
/// # Safety
///
/// The callbacks must be safe to call from any thread with `userdata`, which must stay
/// valid until `free_userdata` runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_set_authenticator(
    manager: *mut sb_manager,
    authenticate: sb_authenticate_fn,
    authorize: sb_authorize_fn,
    userdata: *mut c_void,
    free_userdata: sb_free_fn,
) -> sb_status {
    // Owns the userdata from here on: dropped (freed once) on every path below.
    let hook = CAuth {
        authenticate,
        authorize,
        userdata: UserPtr(userdata),
        free_userdata,
    };
    let hook = if authenticate.is_none() && authorize.is_none() {
        drop(hook);
        None
    } else {
        Some(hook)
    };
    guard("sb_registry_set_authenticator", move || {
        let m = MANAGERS.get(addr(manager))?;
        let new = hook.map(|h| Arc::new(h) as SharedAuthenticator);
        // The previous hook goes here, with no registry lock held.
        drop(m.registry().set_authenticator(new));
        Ok(())
    })
}
