/* pool.liveness_bypass through the C API: within the window after its return a
 * connection is handed out without the FIN/RST check (so a socket the server reset
 * meanwhile reaches the caller); past it, the check closes the reset socket. Off by
 * default. Time moves by the manual clock; the only real wait lets an RST cross
 * loopback (what follows holds however long it took). */
#include "harness.h"

#include "fault_proxy.h"

static echo_server server;

static int reset_and_settle(fault_proxy *fp) {
    char reply[256];
    EXPECT(fault_proxy_command(fp, "reset_existing", reply, sizeof reply) == 0);
    EXPECT(strncmp(reply, "OK", 2) == 0);
    sleep_ms(100);
    return 0;
}

static int new_pool(sb_manager *m, const char *name, const char *target, const char *bypass,
                    sb_pool **out) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    if (bypass != NULL) EXPECT_OK(sb_config_set(cfg, "pool.liveness_bypass", bypass));
    EXPECT_OK(sb_pool_new(m, name, target, cfg, out));
    EXPECT_OK(sb_config_free(cfg));
    return 0;
}

static int bypass_body(fault_proxy *fp, sb_manager *m) {
    char target[64];
    snprintf(target, sizeof target, "tcp://127.0.0.1:%d", fp->port);
    sb_pool_stats s;
    sb_lease *lease = NULL;
    uint64_t first = 0, again_id = 0;

    /* Default: every checkout checks. */
    sb_pool *checked = NULL;
    if (new_pool(m, "checked", target, NULL, &checked) != 0) return 1;
    EXPECT_OK(sb_pool_acquire(checked, 5000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    if (reset_and_settle(fp) != 0) return 1;
    lease = NULL;
    EXPECT_OK(sb_pool_try_acquire(checked, &lease));
    EXPECT(lease == NULL); /* a reset socket was not handed out */
    EXPECT_OK(get_stats(checked, &s));
    EXPECT(s.closed_broken_total == 1);
    EXPECT_OK(sb_pool_free(checked));

    /* A window: handed out unchecked within it, checked past it. */
    sb_pool *hot = NULL;
    if (new_pool(m, "hot", target, "1s", &hot) != 0) return 1;
    EXPECT_OK(sb_pool_acquire(hot, 5000, &lease));
    EXPECT_OK(sb_lease_id(lease, &first));
    EXPECT_OK(sb_lease_release(lease));
    if (reset_and_settle(fp) != 0) return 1;
    EXPECT_OK(sb_manager_advance_clock(m, 900));
    lease = NULL;
    EXPECT_OK(sb_pool_try_acquire(hot, &lease));
    EXPECT(lease != NULL); /* within the window: no check */
    EXPECT_OK(sb_lease_id(lease, &again_id));
    EXPECT(again_id == first);
    EXPECT_OK(sb_lease_release(lease)); /* returned: its window starts again */
    EXPECT_OK(get_stats(hot, &s));
    EXPECT(s.closed_broken_total == 0);
    EXPECT_OK(sb_manager_advance_clock(m, 1001));
    lease = NULL;
    EXPECT_OK(sb_pool_try_acquire(hot, &lease));
    EXPECT(lease == NULL); /* past the window: checked */
    EXPECT_OK(get_stats(hot, &s));
    EXPECT(s.closed_broken_total == 1);
    EXPECT_OK(sb_pool_free(hot));
    return 0;
}

static int the_check_is_skipped_only_within_the_window(void) {
    fault_proxy fp;
    if (fault_proxy_start(&fp, server.port) != 0) FAILF("cannot start the proxy");
    sb_manager *m = NULL;
    int rc = reg_manager_open(NULL, &m);
    if (rc == 0) rc = bypass_body(&fp, m);
    if (m != NULL && reg_manager_close(m) != 0) rc = 1;
    fault_proxy_stop(&fp);
    return rc;
}

static int a_bad_window_names_the_key(void) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_ERR(sb_config_set(cfg, "pool.liveness_bypass", "soon"), SB_INVALID_ARGUMENT,
               "pool.liveness_bypass");
    EXPECT_ERROR_MENTIONS("duration");
    EXPECT_OK(sb_config_free(cfg));
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (echo_start(&server) != 0) {
        fprintf(stderr, "cannot start the echo server\n");
        return 1;
    }
    RUN(the_check_is_skipped_only_within_the_window);
    RUN(a_bad_window_names_the_key);
    echo_stop(&server);
    return harness_summary();
}
