//! `sb_registry_*`: the live-connection registry of a manager (issue 9). Connections
//! are named by `uint64_t` ids (unique in the process, never reused), not handles: an
//! unknown id is `SB_NOT_FOUND`. Every check, message and error code comes from core's
//! `Registry`; these modules only translate arguments, the program's callbacks, the
//! outbox table and the snapshots:
//!
//! - `auth`: the authentication hook (`sb_registry_set_authenticator`) and `sb_grant`;
//! - `register`: `sb_registration` and registering with send callbacks (the sink);
//! - `outbox`: outbox connections the program drains (`sb_registry_next`);
//! - `conn`: the per-connection calls (unregister, touch, subscribe, metadata, ...);
//! - `broadcast`: `sb_target`, broadcast, send, disconnect and the cleanup pass;
//! - `snapshots`: `sb_conn_info`, `sb_conn_list`, `sb_registry_stats` (the only
//!   things here the library allocates for the caller).
//!
//! The translations of `sb_target`, a message and `sb_list_filter` in, and of
//! `sb_conn_info` and `sb_registry_stats` out, are `pub(crate)` for the cluster's
//! calls (`crate::cluster`), which take and give the same types: one translation per
//! C type.

use std::ffi::c_void;

// In the order of their functions in the header (blank lines keep rustfmt from
// sorting them).
mod auth;

mod register;

mod outbox;

mod conn;

mod broadcast;

mod snapshots;

use crate::resilience::ns;

pub use auth::{
    SB_AUTH_WHY_LEN, sb_authenticate_fn, sb_authorize_fn, sb_grant, sb_grant_add_meta,
    sb_grant_set_user, sb_registry_set_authenticator,
};
pub(crate) use broadcast::{message, report as broadcast_report, target};
pub use broadcast::{
    sb_broadcast_report, sb_registry_broadcast, sb_registry_cleanup, sb_registry_disconnect,
    sb_registry_send, sb_target,
};
pub use conn::{
    sb_registry_contains, sb_registry_len, sb_registry_set_metadata, sb_registry_subscribe,
    sb_registry_touch, sb_registry_unregister, sb_registry_unsubscribe,
};
pub(crate) use outbox::forget_manager;
pub use outbox::{
    sb_item_kind, sb_registry_next, sb_registry_outbox_free, sb_registry_register_outbox,
};
pub use register::{sb_closed_fn, sb_ping_fn, sb_registration, sb_registry_register, sb_send_fn};
pub(crate) use snapshots::{conn_info, list_filter, registry_stats};
pub use snapshots::{
    sb_conn_info, sb_conn_info_free, sb_conn_list, sb_conn_list_free, sb_list_filter,
    sb_registry_get, sb_registry_get_stats, sb_registry_list, sb_registry_stats,
    sb_registry_stats_free,
};

/// The program's userdata pointer, promised (see `sb_registry_register`) usable from
/// any thread.
struct UserPtr(*mut c_void);

// SAFETY: switchboard never dereferences it; it only passes it back to the program's
// functions, which the header documents run on switchboard's threads.
unsafe impl Send for UserPtr {}
// SAFETY: as above.
unsafe impl Sync for UserPtr {}
