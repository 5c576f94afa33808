//! switchboard's C ABI: translation only, all behaviour lives in `switchboard-core`.
//!
//! One module per C object ([`config`], [`manager`], [`connector`], [`pool`], [`lease`], [`events`]) and
//! [`resilience`] (endpoint breakers, backoff and health of a pool) and [`sessions`]
//! (streaming sessions and their offsets, by id on a manager) and [`registry`] (the
//! live-connection registry: send callbacks or outboxes, broadcast, auth hook) and
//! [`envelope`] (the JSON message envelope) and [`resources`] (named shared
//! connections: create, attach by consumer, the current fd or object) and [`server`]
//! (the embedded server's addresses and the messages its hub clients send) and
//! [`cluster`] (the manager's cluster through Redis: its members and the cluster-wide
//! calls), plus [`error`] (status codes, `sb_last_error` and the panic guard every
//! exported function runs in), [`version`] and `handles` (the generation-checked ids
//! that C programs hold instead of pointers). The header `include/switchboard.h` is generated
//! from these modules by cbindgen (see `build.rs` and `cbindgen.toml`); its
//! documentation block states the thread-safety and ownership rules.

// The order of these modules is the order of the header's sections.
pub mod error;

pub mod version;

pub mod config;

pub mod manager;

pub mod connector;

pub mod pool;

pub mod resilience;

pub mod lease;

pub mod events;

pub mod sessions;

pub mod registry;

pub mod envelope;

pub mod resources;

pub mod server;

pub mod cluster;

mod args;
mod handles;
mod snapshot_table;

pub use cluster::{
    sb_cluster_answered, sb_cluster_broadcast, sb_cluster_broadcast_report,
    sb_cluster_broadcast_report_free, sb_cluster_conn_list, sb_cluster_conn_list_free,
    sb_cluster_count, sb_cluster_count_free, sb_cluster_disconnect, sb_cluster_get_stats,
    sb_cluster_is_joined, sb_cluster_list, sb_cluster_member, sb_cluster_member_list,
    sb_cluster_member_list_free, sb_cluster_members, sb_cluster_name, sb_cluster_node_id,
    sb_cluster_node_number, sb_cluster_resource, sb_cluster_resource_free,
    sb_cluster_resource_status, sb_cluster_stats, sb_cluster_stats_free,
};
pub use config::{sb_config, sb_config_free, sb_config_new, sb_config_set};
pub use connector::{sb_check_fn, sb_close_fn, sb_connect_fn, sb_connector, sb_free_fn};
pub use envelope::{sb_envelope_decode, sb_envelope_encode};
pub use error::{last_error, sb_last_error, sb_status, sb_status_str};
pub use events::{
    SB_EVENT_ENDPOINT_LEN, SB_EVENT_MESSAGE_LEN, SB_EVENT_POOL_LEN, SB_EVENT_REASON_LEN,
    SB_EVENT_RESOURCE_LEN, SB_EVENT_STATE_LEN, SB_EVENT_STREAM_LEN, SB_EVENT_TOPIC_LEN,
    SB_EVENT_USER_LEN, sb_event, sb_event_fn, sb_event_kind, sb_event_kind_str,
    sb_manager_events_dropped, sb_manager_metrics, sb_manager_poll_event,
    sb_manager_set_event_callback,
};
pub use lease::{
    sb_lease, sb_lease_conn, sb_lease_discard, sb_lease_endpoint, sb_lease_fd, sb_lease_id,
    sb_lease_recv, sb_lease_release, sb_lease_report, sb_lease_send, sb_lease_send_all,
    sb_lease_set_timeout,
};
pub use manager::{
    sb_manager, sb_manager_advance_clock, sb_manager_close, sb_manager_free, sb_manager_new,
};
pub use pool::{
    sb_latency, sb_pool, sb_pool_acquire, sb_pool_acquire_prio, sb_pool_evict_all, sb_pool_free,
    sb_pool_get_stats, sb_pool_new, sb_pool_new_custom, sb_pool_resize, sb_pool_run_upkeep,
    sb_pool_stats, sb_pool_try_acquire, sb_pool_warm,
};
pub use registry::{
    SB_AUTH_WHY_LEN, sb_authenticate_fn, sb_authorize_fn, sb_broadcast_report, sb_closed_fn,
    sb_conn_info, sb_conn_info_free, sb_conn_list, sb_conn_list_free, sb_grant, sb_grant_add_meta,
    sb_grant_set_user, sb_item_kind, sb_list_filter, sb_ping_fn, sb_registration,
    sb_registry_broadcast, sb_registry_cleanup, sb_registry_contains, sb_registry_disconnect,
    sb_registry_get, sb_registry_get_stats, sb_registry_len, sb_registry_list, sb_registry_next,
    sb_registry_outbox_free, sb_registry_register, sb_registry_register_outbox, sb_registry_send,
    sb_registry_set_authenticator, sb_registry_set_metadata, sb_registry_stats,
    sb_registry_stats_free, sb_registry_subscribe, sb_registry_touch, sb_registry_unregister,
    sb_registry_unsubscribe, sb_send_fn, sb_target,
};
pub use resilience::{
    SB_ENDPOINT_ERROR_LEN, SB_ENDPOINT_LEN, sb_breaker_op, sb_breaker_state, sb_breaker_state_str,
    sb_conn_state, sb_conn_state_str, sb_endpoint_health, sb_pool_breaker_op,
    sb_pool_breaker_state, sb_pool_drain, sb_pool_endpoint_health, sb_pool_get_health,
    sb_pool_health, sb_pool_healthy_endpoints, sb_pool_reset_backoff, sb_pool_run_health_checks,
    sb_pool_select_best,
};
pub use resources::{
    sb_resource, sb_resource_attach, sb_resource_attach_anonymous, sb_resource_create,
    sb_resource_delete, sb_resource_detach, sb_resource_fd, sb_resource_get, sb_resource_id,
    sb_resource_info, sb_resource_info_free, sb_resource_info_list, sb_resource_info_list_free,
    sb_resource_list, sb_resource_object, sb_resource_recv, sb_resource_register_type,
    sb_resource_report_failure, sb_resource_send_all, sb_resource_state, sb_resource_state_str,
    sb_resource_status, sb_resource_update, sb_resource_wait_ready,
};
pub use server::{
    sb_hub_dropped, sb_hub_message, sb_hub_message_free, sb_hub_recv, sb_manager_grpc_address,
    sb_manager_server_address,
};
pub use sessions::{
    sb_catalog, sb_catalog_free, sb_session_add_stream, sb_session_buffered_commits,
    sb_session_catalog, sb_session_close, sb_session_commit, sb_session_committed,
    sb_session_deliver, sb_session_flush, sb_session_get, sb_session_info, sb_session_info_free,
    sb_session_is_registered, sb_session_list, sb_session_open, sb_session_open_count,
    sb_session_position, sb_session_record_read, sb_session_record_router, sb_session_register,
    sb_session_remove_stream, sb_session_resume, sb_session_seek, sb_session_store_kind,
    sb_session_unregister, sb_stream_info,
};
pub use version::{SB_VERSION_MAJOR, SB_VERSION_MINOR, SB_VERSION_PATCH, sb_version};
