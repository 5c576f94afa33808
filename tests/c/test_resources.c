/* Named resources (sb_resource_*, issue 10) against real loopback servers: three
 * consumers share one connection through a server-side close (the fault proxy's
 * `drop`), a down endpoint is connecting until it comes up, a configuration error
 * stops with disconnected and the reason, delete is refused while attached unless
 * forced, anonymous resources are shared by equal props and closed by the last
 * detach, update swaps every consumer to the new endpoint, and the status metric
 * lines. Registered types, persistence and misuse are in test_resources_admin.c. */
#include "harness.h"
#include "fault_proxy.h"
#include "resources_support.h"

/* Three consumers, one connection; the server side closes it and every consumer
 * sees recovering, then connected, and works again under the same id. */
static int three_consumers_share_one_connection_through_a_server_close(void) {
    echo_server srv;
    fault_proxy fp;
    if (echo_start(&srv) != 0) FAILF("no echo server");
    if (fault_proxy_start(&fp, srv.port) != 0) FAILF("no fault proxy");
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *keys[] = {"endpoint", "health.interval", "backoff.initial", "backoff.max"};
    const char *values[] = {fp.target, "20ms", "20ms", "100ms"};
    EXPECT_OK(sb_resource_create(m, "bus", "tcp", keys, values, 4));
    sb_resource *a = NULL, *b = NULL, *c = NULL;
    EXPECT_OK(sb_resource_attach(m, "bus", "feed", &a));
    EXPECT_OK(sb_resource_attach(m, "bus", "control", &b));
    EXPECT_OK(sb_resource_attach(m, "bus", "audit", &c));
    if (res_round_trip(a, "one\n")) return 1;
    if (res_round_trip(b, "two\n")) return 1;
    if (res_round_trip_fd(c, "three\n")) return 1;
    EXPECT(echo_accepted(&srv) == 1); /* one physical connection for three consumers */
    sb_resource_info *info = NULL;
    EXPECT_OK(sb_resource_get(m, "bus", &info));
    EXPECT(info->state == SB_RESOURCE_CONNECTED && !info->anonymous);
    EXPECT(strcmp(info->kind, "tcp") == 0 && strcmp(info->endpoint, fp.target) == 0);
    EXPECT(info->consumers_len == 3);
    EXPECT(strcmp(info->consumers[0], "feed") == 0 && strcmp(info->consumers[1], "control") == 0 &&
           strcmp(info->consumers[2], "audit") == 0);
    EXPECT(info->connected_for_ns > 0 && info->reconnects == 0);
    EXPECT_OK(sb_resource_info_free(info));

    /* The server closes it (FIN): recovering, then connected again. */
    char reply[128];
    if (fault_proxy_command(&fp, "drop", reply, sizeof reply) != 0) FAILF("drop: %s", reply);
    res_seen seen = {0};
    EVENTUALLY(10000, res_collect(m, "bus", &seen), seen.n >= 3);
    EXPECT(seen.n == 3);
    EXPECT(strcmp(seen.t[0], "connecting->connected") == 0);
    EXPECT(strcmp(seen.t[1], "connected->recovering") == 0);
    EXPECT(strcmp(seen.t[2], "recovering->connected") == 0);
    sb_resource *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        if (res_round_trip(all[i], "again\n")) return 1;
        char id[32];
        size_t w = 0;
        EXPECT_OK(sb_resource_id(all[i], id, sizeof id, &w));
        EXPECT(strcmp(id, "bus") == 0 && w == 4);
    }
    long accepted = 0, active = 0;
    EXPECT(fault_proxy_stats(&fp, &accepted, &active, NULL, 0) == 0);
    EXPECT(accepted == 2 && active == 1); /* one redial for the three of them */
    EXPECT(echo_accepted(&srv) == 3);     /* the two, and the first STATS query */
    EXPECT_OK(sb_resource_get(m, "bus", &info));
    EXPECT(info->reconnects == 1);
    EXPECT_OK(sb_resource_info_free(info));
    EXPECT_OK(sb_resource_detach(a));
    EXPECT_OK(sb_resource_detach(b));
    EXPECT_OK(sb_resource_detach(c));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    fault_proxy_stop(&fp);
    echo_stop(&srv);
    return 0;
}

/* A refused endpoint: connecting (with the error) until the proxy passes again. */
static int a_down_endpoint_is_connecting_until_it_comes_up(void) {
    echo_server srv;
    fault_proxy fp;
    if (echo_start(&srv) != 0) FAILF("no echo server");
    if (fault_proxy_start(&fp, srv.port) != 0) FAILF("no fault proxy");
    char reply[128];
    if (fault_proxy_command(&fp, "refuse", reply, sizeof reply) != 0) FAILF("%s", reply);
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *keys[] = {"endpoint", "backoff.initial", "backoff.max"};
    const char *values[] = {fp.target, "20ms", "50ms"};
    EXPECT_OK(sb_resource_create(m, "feed", "tcp", keys, values, 3));
    sb_resource *h = NULL;
    EXPECT_OK(sb_resource_attach(m, "feed", "reader", &h));
    sb_resource_info *info = NULL;
    EVENTUALLY(10000, res_refresh(m, "feed", &info),
               info != NULL && info->last_error != NULL);
    EXPECT(info->state == SB_RESOURCE_CONNECTING && !info->stopped);
    if (strstr(info->last_error, "refused") == NULL) FAILF("last_error: %s", info->last_error);
    EXPECT_OK(sb_resource_info_free(info));
    int fd = -1;
    EXPECT_ST(sb_resource_fd(h, &fd), SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS("is connecting");
    EXPECT(fd == -1); /* outputs only on success */
    EXPECT_ST(sb_resource_wait_ready(h, 50), SB_TIMEOUT);
    sb_resource_state st = 0;
    EXPECT_OK(sb_resource_status(h, &st));
    EXPECT(st == SB_RESOURCE_CONNECTING);
    if (fault_proxy_command(&fp, "pass", reply, sizeof reply) != 0) FAILF("%s", reply);
    if (res_round_trip(h, "up\n")) return 1;
    res_seen seen = {0};
    res_collect(m, "feed", &seen);
    EXPECT(seen.n == 1 && strcmp(seen.t[0], "connecting->connected") == 0);
    EXPECT_OK(sb_resource_detach(h));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    fault_proxy_stop(&fp);
    echo_stop(&srv);
    return 0;
}

/* A unix path longer than the OS allows: disconnected, stopped, with the reason;
 * bad props are refused at once, naming them. */
static int a_configuration_error_stops_with_disconnected_and_the_reason(void) {
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    char path[260];
    res_long_unix_path(path, sizeof path);
    const char *keys[] = {"endpoint"};
    const char *values[] = {path};
    EXPECT_OK(sb_resource_create(m, "sock", "unix", keys, values, 1));
    sb_resource_info *info = NULL;
    EVENTUALLY(10000, res_refresh(m, "sock", &info),
               info != NULL && info->state == SB_RESOURCE_DISCONNECTED);
    EXPECT(info->stopped && info->last_error != NULL && info->last_error[0] != '\0');
    EXPECT_OK(sb_resource_info_free(info));
    res_seen seen = {0};
    res_collect(m, "sock", &seen);
    EXPECT(seen.n == 1 && strcmp(seen.t[0], "connecting->disconnected") == 0);
    EXPECT(seen.reason[0][0] != '\0'); /* the event's reason: the error */

    const char *k2[] = {"endpoint", "connect_timeout"};
    const char *v2[] = {"tcp://127.0.0.1:1", "soon"};
    EXPECT_ST(sb_resource_create(m, "x", "tcp", k2, v2, 2), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("pool.connect_timeout");
    const char *v3[] = {"x"};
    EXPECT_ST(sb_resource_create(m, "x", "carrier-pigeon", keys, v3, 1), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("built-in types are tcp and unix");
    EXPECT_ST(sb_resource_create(m, "x", "tcp", NULL, NULL, 0), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("needs an endpoint");
    EXPECT_ST(sb_resource_get(m, "x", &info), SB_NOT_FOUND);
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

static int delete_is_refused_while_attached_unless_forced(void) {
    echo_server srv;
    if (echo_start(&srv) != 0) FAILF("no echo server");
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *keys[] = {"endpoint"};
    const char *values[] = {srv.target};
    EXPECT_OK(sb_resource_create(m, "a", "tcp", keys, values, 1));
    sb_resource *one = NULL, *two = NULL;
    EXPECT_OK(sb_resource_attach(m, "a", "one", &one));
    EXPECT_OK(sb_resource_attach(m, "a", "two", &two));
    EXPECT_ST(sb_resource_delete(m, "a", false), SB_FAILED_PRECONDITION);
    EXPECT_ERROR_MENTIONS("\"one\", \"two\"");
    EXPECT_OK(sb_resource_detach(one));
    EXPECT_ST(sb_resource_detach(one), SB_INVALID_HANDLE); /* a second detach */
    EXPECT_ERROR_MENTIONS("already detached");
    EXPECT_OK(sb_resource_detach(two));
    EXPECT_OK(sb_resource_delete(m, "a", false));
    sb_resource_info *info = NULL;
    EXPECT_ST(sb_resource_get(m, "a", &info), SB_NOT_FOUND);

    EXPECT_OK(sb_resource_create(m, "b", "tcp", keys, values, 1));
    sb_resource *h = NULL;
    EXPECT_OK(sb_resource_attach(m, "b", "stubborn", &h));
    EXPECT_OK(sb_resource_wait_ready(h, 10000));
    EXPECT_OK(sb_resource_delete(m, "b", true));
    int detached = 0;
    sb_event ev;
    for (;;) {
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, 0, &ev) != SB_OK) break;
        if (ev.kind == SB_EVENT_RESOURCE_DETACHED && strcmp(ev.resource, "b") == 0) detached++;
    }
    EXPECT(detached == 1);
    sb_resource_state st = 0;
    EXPECT_OK(sb_resource_status(h, &st));
    EXPECT(st == SB_RESOURCE_DISCONNECTED);
    int fd = -1;
    EXPECT_ST(sb_resource_fd(h, &fd), SB_UNAVAILABLE);
    sb_resource *late = NULL;
    EXPECT_ST(sb_resource_attach(m, "b", "late", &late), SB_NOT_FOUND);
    EXPECT(late == NULL);
    EXPECT_OK(sb_resource_detach(h)); /* still needed after a forced delete */
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    echo_stop(&srv);
    return 0;
}

static int anonymous_resources_are_shared_by_equal_props_and_closed_by_the_last_detach(void) {
    res_listener l;
    if (res_listen(&l) != 0) FAILF("no listener");
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *keys[] = {"endpoint", "tcp.nodelay"};
    const char *values[] = {l.target, "true"};
    sb_resource *x = NULL, *y = NULL, *other = NULL;
    EXPECT_OK(sb_resource_attach_anonymous(m, "tcp", keys, values, 2, "x", &x));
    EXPECT_OK(sb_resource_attach_anonymous(m, "tcp", keys, values, 2, "y", &y));
    char idx[64], idy[64], ido[64];
    EXPECT_OK(sb_resource_id(x, idx, sizeof idx, NULL));
    EXPECT_OK(sb_resource_id(y, idy, sizeof idy, NULL));
    EXPECT(strcmp(idx, idy) == 0 && strncmp(idx, "anonymous-", 10) == 0);
    EXPECT_OK(sb_resource_wait_ready(x, 10000));
    int server_side = res_accept(&l);
    if (server_side < 0) FAILF("no connection reached the listener");
    EXPECT_OK(sb_resource_attach_anonymous(m, "tcp", keys, values, 1, "z", &other));
    EXPECT_OK(sb_resource_id(other, ido, sizeof ido, NULL));
    EXPECT(strcmp(ido, idx) != 0); /* different props, another resource */
    sb_resource_info_list *list = NULL;
    EXPECT_OK(sb_resource_list(m, &list));
    size_t anonymous = 0;
    for (size_t i = 0; i < list->len; i++) anonymous += list->resources[i].anonymous;
    EXPECT(anonymous == 2 && list->len == 2);
    EXPECT_OK(sb_resource_info_list_free(list));
    /* An anonymous resource cannot be updated: its props are its identity. */
    EXPECT_ST(sb_resource_update(m, idx, keys, values, 1), SB_FAILED_PRECONDITION);
    EXPECT_OK(sb_resource_detach(x));
    sb_resource_info *info = NULL;
    EXPECT_OK(sb_resource_get(m, idx, &info)); /* still has y */
    EXPECT_OK(sb_resource_info_free(info));
    EXPECT_OK(sb_resource_detach(y));
    char byte;
    EXPECT(recv(server_side, &byte, 1, 0) == 0); /* the server sees the close */
    EXPECT_ST(sb_resource_get(m, idx, &info), SB_NOT_FOUND);
    close(server_side);
    EXPECT_OK(sb_resource_detach(other));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    res_unlisten(&l);
    return 0;
}

static int update_swaps_every_consumer_to_the_new_endpoint(void) {
    res_listener old_side;
    echo_server fresh;
    if (res_listen(&old_side) != 0) FAILF("no listener");
    if (echo_start(&fresh) != 0) FAILF("no echo server");
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *keys[] = {"endpoint", "health.interval"};
    const char *values[] = {old_side.target, "20ms"};
    EXPECT_OK(sb_resource_create(m, "bus", "tcp", keys, values, 2));
    sb_resource *a = NULL, *b = NULL;
    EXPECT_OK(sb_resource_attach(m, "bus", "a", &a));
    EXPECT_OK(sb_resource_attach(m, "bus", "b", &b));
    EXPECT_OK(sb_resource_wait_ready(a, 10000));
    int old_conn = res_accept(&old_side);
    if (old_conn < 0) FAILF("no connection reached the old endpoint");

    /* An update that cannot connect changes nothing. */
    char dead[64];
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", dead_port());
    const char *dv[] = {dead};
    EXPECT_ST(sb_resource_update(m, "bus", keys, dv, 1), SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS("was not updated");
    sb_resource_info *info = NULL;
    EXPECT_OK(sb_resource_get(m, "bus", &info));
    EXPECT(strcmp(info->endpoint, old_side.target) == 0);
    EXPECT_OK(sb_resource_info_free(info));

    const char *nv[] = {fresh.target, "20ms"};
    EXPECT_OK(sb_resource_update(m, "bus", keys, nv, 2));
    int rebound = 0;
    sb_event ev;
    for (;;) {
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, 0, &ev) != SB_OK) break;
        if (ev.kind == SB_EVENT_RESOURCE_REBOUND && strcmp(ev.resource, "bus") == 0) rebound++;
    }
    EXPECT(rebound == 1);
    if (res_round_trip(a, "on the new one\n")) return 1;
    if (res_round_trip_fd(b, "and the fd too\n")) return 1;
    EXPECT(echo_accepted(&fresh) == 1); /* one new connection for both consumers */
    EXPECT_OK(sb_resource_get(m, "bus", &info));
    EXPECT(strcmp(info->endpoint, fresh.target) == 0 && info->state == SB_RESOURCE_CONNECTED);
    EXPECT_OK(sb_resource_info_free(info));
    /* Nothing holds the old connection any more: it is closed. */
    char byte;
    EXPECT(recv(old_conn, &byte, 1, 0) == 0);
    close(old_conn);
    EXPECT_ST(sb_resource_update(m, "nope", keys, nv, 1), SB_NOT_FOUND);
    EXPECT_OK(sb_resource_detach(a));
    EXPECT_OK(sb_resource_detach(b));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    echo_stop(&fresh);
    res_unlisten(&old_side);
    return 0;
}

static int status_metric_lines_and_a_closed_manager(void) {
    echo_server srv;
    if (echo_start(&srv) != 0) FAILF("no echo server");
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *keys[] = {"endpoint"};
    const char *values[] = {srv.target};
    EXPECT_OK(sb_resource_create(m, "bus", "tcp", keys, values, 1));
    char path[260];
    res_long_unix_path(path, sizeof path);
    const char *dv[] = {path};
    EXPECT_OK(sb_resource_create(m, "dead", "unix", keys, dv, 1));
    sb_resource *h = NULL;
    EXPECT_OK(sb_resource_attach(m, "bus", "feed", &h));
    if (res_round_trip(h, "abc\n")) return 1; /* 4 bytes each way, counted */
    sb_resource_info *info = NULL;
    EVENTUALLY(10000, res_refresh(m, "dead", &info),
               info != NULL && info->state == SB_RESOURCE_DISCONNECTED);
    EXPECT_OK(sb_resource_info_free(info));
    char *text = metrics_text(m);
    EXPECT(text != NULL);
    const char *lines[] = {
        "switchboard_resource_status{resource=\"bus\",type=\"tcp\"} 1\n",
        "switchboard_resource_status{resource=\"dead\",type=\"unix\"} -1\n",
        "switchboard_resource_consumers{resource=\"bus\",type=\"tcp\"} 1\n",
        "switchboard_resource_reconnects_total{resource=\"bus\",type=\"tcp\"} 0\n",
        "switchboard_resource_bytes_total{resource=\"bus\",type=\"tcp\",direction=\"out\"} 4\n",
        "switchboard_resource_bytes_total{resource=\"bus\",type=\"tcp\",direction=\"in\"} 4\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (strstr(text, lines[i]) == NULL) {
            fprintf(stderr, "%s", text);
            free(text);
            FAILF("missing %s", lines[i]);
        }
    }
    free(text);
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_ST(sb_resource_get(m, "bus", &info), SB_UNAVAILABLE);
    sb_resource_state st = 0;
    EXPECT_OK(sb_resource_status(h, &st));
    EXPECT(st == SB_RESOURCE_DISCONNECTED);
    EXPECT_OK(sb_resource_detach(h));
    EXPECT_OK(sb_manager_free(m));
    echo_stop(&srv);
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(three_consumers_share_one_connection_through_a_server_close);
    RUN(a_down_endpoint_is_connecting_until_it_comes_up);
    RUN(a_configuration_error_stops_with_disconnected_and_the_reason);
    RUN(delete_is_refused_while_attached_unless_forced);
    RUN(anonymous_resources_are_shared_by_equal_props_and_closed_by_the_last_detach);
    RUN(update_swaps_every_consumer_to_the_new_endpoint);
    RUN(status_metric_lines_and_a_closed_manager);
    return harness_summary();
}
