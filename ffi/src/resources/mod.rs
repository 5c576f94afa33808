//! `sb_resource_*`: named shared connections of a manager (issue 10). A resource is
//! created by id (`sb_resource_create`), dialled at once and redialled on its own; each
//! consumer attaches by name and holds an `sb_resource` handle sharing the one
//! physical connection. Every check, message and error code comes from core's
//! `Resources`; these modules only translate:
//!
//! - `admin`: create, update, delete and register a type, by id on the manager;
//! - `handle`: `sb_resource` (attach, detach) and the calls on it (status, wait,
//!   the current fd or object, send and receive, report a failure);
//! - `snapshots`: `sb_resource_state`, `sb_resource_info` and `sb_resource_info_list`
//!   (the only things here the library allocates for the caller).

use switchboard_core::Result;

use crate::args::str_array;

// In the order of their items in the header (blank lines keep rustfmt from sorting
// them).
mod admin;

mod handle;

mod snapshots;

pub use admin::{
    sb_resource_create, sb_resource_delete, sb_resource_register_type, sb_resource_update,
};
pub use handle::{
    sb_resource, sb_resource_attach, sb_resource_attach_anonymous, sb_resource_detach,
    sb_resource_fd, sb_resource_id, sb_resource_object, sb_resource_recv,
    sb_resource_report_failure, sb_resource_send_all, sb_resource_status, sb_resource_wait_ready,
};
pub use snapshots::{
    sb_resource_get, sb_resource_info, sb_resource_info_free, sb_resource_info_list,
    sb_resource_info_list_free, sb_resource_list, sb_resource_state, sb_resource_state_str,
};

/// The `n` props at `keys` / `values` as core's `(key, value)` pairs.
///
/// # Safety
///
/// `keys` and `values` must each be NULL with `n` 0, or point to `n` NUL-terminated
/// strings valid for `'a`.
unsafe fn props<'a>(
    keys: *const *const std::ffi::c_char,
    values: *const *const std::ffi::c_char,
    n: usize,
) -> Result<Vec<(&'a str, &'a str)>> {
    // SAFETY: forwarded caller's contract.
    let k = unsafe { str_array(keys, n, "keys") }?;
    // SAFETY: as above.
    let v = unsafe { str_array(values, n, "values") }?;
    Ok(k.into_iter().zip(v).collect())
}
