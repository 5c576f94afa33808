//! `sb_config`: string key/value settings, validated by the core.

use std::ffi::c_char;
use std::sync::Mutex;

use switchboard_core::{Config, Result};

use crate::args::{check_out, str_arg, write_out};
use crate::error::{guard, sb_status};
use crate::handles::{Slab, Tag, addr, to_ptr};

/// A set of configuration settings (`pool.max_size`, `pool.acquire_timeout`, ...).
/// Created by `sb_config_new`, freed by `sb_config_free`. Passing it to
/// `sb_manager_new` or `sb_pool_new` copies it: the config can be changed or freed
/// afterwards without affecting the manager or pool.
#[allow(non_camel_case_types)]
pub struct sb_config {
    _opaque: [u8; 0],
}

/// The settings behind a handle. A mutex because two threads may set keys on the same
/// config; configs are not on any hot path.
pub(crate) struct ConfigObj(Mutex<Config>);

pub(crate) static CONFIGS: Slab<ConfigObj> = Slab::new(Tag::Config);

/// A copy of the settings behind `cfg`, or an empty config (all defaults) for NULL.
pub(crate) fn snapshot(cfg: *const sb_config) -> Result<Config> {
    if cfg.is_null() {
        return Ok(Config::new());
    }
    let obj = CONFIGS.get(addr(cfg))?;
    let c = obj.0.lock().unwrap_or_else(|p| p.into_inner());
    Ok(c.clone())
}

/// Creates an empty config (every key at its default) and stores its handle in
/// `*out`.
///
/// # Safety
///
/// `out` must be NULL (which fails with `SB_INVALID_ARGUMENT`) or point to a writable
/// `sb_config *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_config_new(out: *mut *mut sb_config) -> sb_status {
    guard("sb_config_new", || {
        check_out(out, "out")?;
        let id = CONFIGS.insert(ConfigObj(Mutex::new(Config::new())))?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, to_ptr(id)) };
        Ok(())
    })
}

/// Sets `key` to `value`, both NUL-terminated UTF-8 strings, e.g.
/// `sb_config_set(cfg, "pool.max_size", "4")` or
/// `sb_config_set(cfg, "pool.acquire_timeout", "250ms")`. Durations are `250ms`,
/// `1.5s`, `2m`, or a bare number of milliseconds.
///
/// An unknown key or a bad value returns `SB_INVALID_ARGUMENT` and leaves the config
/// unchanged; `sb_last_error` then names the key and the accepted form.
///
/// # Safety
///
/// `key` and `value` must be NULL (rejected) or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_config_set(
    cfg: *mut sb_config,
    key: *const c_char,
    value: *const c_char,
) -> sb_status {
    guard("sb_config_set", || {
        let obj = CONFIGS.get(addr(cfg))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let key = unsafe { str_arg(key, "key") }?;
        // SAFETY: as above.
        let value = unsafe { str_arg(value, "value") }?;
        obj.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set(key, value)
    })
}

/// Frees a config. NULL is a no-op (`SB_OK`); a config that was already freed returns
/// `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_config_free(cfg: *mut sb_config) -> sb_status {
    guard("sb_config_free", || {
        if !cfg.is_null() {
            drop(CONFIGS.remove(addr(cfg))?);
        }
        Ok(())
    })
}
