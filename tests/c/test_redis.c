/* Tried as a new user would: a pool to a real redis-server (the Debian package),
 * started here on a free loopback port, with the built-in probe
 * (probe.send = "PING\r\n", probe.expect = "+PONG") on every checkout
 * (pool.validate_after = 0). Acquire, PING by hand, release, reacquire (probed, the
 * same connection), then kill redis-server: the next acquire fails cleanly with
 * SB_UNAVAILABLE well within its deadline, the one after that fast (backing off);
 * restart it on the same port: after sb_pool_reset_backoff the pool connects again
 * and PING answers +PONG.
 *
 * SB_REDIS_SERVER names the binary (default: redis-server on PATH). When it cannot be
 * run this test FAILS, loudly: it never passes without a real server. */
#include "harness.h"
#include "redis_server.h"

static redis server;

/* Sends PING by hand on the lease's socket and reads the reply line. */
static int ping_by_hand(sb_lease *lease) {
    EXPECT_OK(sb_lease_send_all(lease, (const uint8_t *)"PING\r\n", 6));
    char reply[64];
    size_t got = 0;
    while (got < sizeof reply - 1 && (got < 2 || memcmp(reply + got - 2, "\r\n", 2) != 0)) {
        size_t n = 0;
        EXPECT_OK(sb_lease_recv(lease, (uint8_t *)reply + got, sizeof reply - 1 - got, &n));
        if (n == 0) FAILF("redis closed the connection");
        got += n;
    }
    reply[got] = '\0';
    if (strcmp(reply, "+PONG\r\n") != 0) FAILF("PING answered \"%s\"", reply);
    return 0;
}

/* How many PING commands redis-server has run (INFO commandstats, on a connection of
 * our own); -1 on error. */
static int redis_ping_calls(void) {
    int fd = connect_loopback(server.port);
    if (fd < 0) return -1;
    const char *cmd = "INFO commandstats\r\n";
    if (send(fd, cmd, strlen(cmd), 0) != (ssize_t)strlen(cmd)) {
        close(fd);
        return -1;
    }
    char buf[8192];
    size_t used = 0;
    int calls = -1;
    long long deadline = now_ms() + 5000;
    while (used < sizeof buf - 1 && now_ms() < deadline) {
        ssize_t n = recv(fd, buf + used, sizeof buf - 1 - used, 0);
        if (n <= 0) break;
        used += (size_t)n;
        buf[used] = '\0';
        /* A bulk reply: "$<len>\r\n<text>\r\n"; done once the whole text is here. */
        long len = 0;
        char *body = strstr(buf, "\r\n");
        if (buf[0] == '$' && body != NULL && sscanf(buf, "$%ld", &len) == 1 &&
            (size_t)(body + 2 - buf) + (size_t)len + 2 <= used)
            break;
    }
    close(fd);
    const char *p = strstr(buf, "cmdstat_ping:calls=");
    if (p == NULL) return 0; /* no PING yet */
    if (sscanf(p, "cmdstat_ping:calls=%d", &calls) != 1) return -1;
    return calls;
}

static int redis_with_probe(void) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    /* The C string "PING\\r\\n" is the text PING\r\n with C escapes, as documented. */
    EXPECT_OK(sb_config_set(cfg, "probe.send", "PING\\r\\n"));
    EXPECT_OK(sb_config_set(cfg, "probe.expect", "+PONG"));
    EXPECT_OK(sb_config_set(cfg, "pool.validate_after", "0"));
    EXPECT_OK(sb_config_set(cfg, "pool.max_size", "2"));
    EXPECT_OK(sb_config_set(cfg, "pool.connect_timeout", "2s"));
    EXPECT_OK(sb_config_set(cfg, "pool.validation_timeout", "2s"));
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new(m, "redis", server.target, cfg, &pool));
    EXPECT_OK(sb_config_free(cfg));

    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    if (ping_by_hand(lease)) return 1;
    EXPECT_OK(sb_lease_release(lease));

    /* Reacquire: probed (PING/+PONG by the pool), the same connection, no failure. */
    EXPECT(redis_ping_calls() == 1);
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT(redis_ping_calls() == 2); /* the pool's probe */
    if (ping_by_hand(lease)) return 1;
    EXPECT(redis_ping_calls() == 3);
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.created_total == 1 && s.closed_total == 0);
    EXPECT(s.probe_failed_total == 0 && s.acquired_total == 2);
    EXPECT_OK(sb_lease_release(lease));

    /* redis-server goes away: the next acquire fails cleanly and in bounded time,
     * with SB_UNAVAILABLE (the probe fails, the reconnect is refused). */
    int port = server.port;
    redis_kill(&server);
    long long t0 = now_ms();
    sb_status st = sb_pool_acquire(pool, 3000, &lease);
    long long took = now_ms() - t0;
    if (st == SB_OK) FAILF("acquire succeeded after redis-server was killed");
    const char *msg = last_error();
    printf("    after kill: %s in %lld ms: %s\n", status_name(st), took, msg);
    EXPECT(st == SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS(server.target);
    EXPECT(took < 3000 + 5000); /* the deadline plus a generous margin */
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.leased == 0);
    EXPECT(s.closed_broken_total == 1); /* the dead connection was not handed out */
    /* Backing off now: the next acquire fails fast and says why. */
    t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, 3000, &lease), SB_UNAVAILABLE);
    took = now_ms() - t0;
    printf("    again: %lld ms: %s\n", took, last_error());
    EXPECT(took < 2000); /* well before the 3 s deadline */
    EXPECT_ERROR_MENTIONS("backing off");
    sb_endpoint_health e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    EXPECT_OK(sb_pool_endpoint_health(pool, 0, &e));
    EXPECT(e.state == SB_CONN_RECONNECTING && e.backoff_remaining_ns > 0);

    /* redis-server comes back on the same port: after reset_backoff the next acquire
     * connects again, and PING answers +PONG. */
    if (redis_start_on(&server, port) != 0) FAILF("redis-server did not restart on %d", port);
    EXPECT_OK(sb_pool_reset_backoff(pool));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    if (ping_by_hand(lease)) return 1;
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_endpoint_health(pool, 0, &e));
    EXPECT(e.state == SB_CONN_CONNECTED && e.last_success_unix_ns > 0);
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.created_total == 2);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (redis_start(&server) != 0) {
        printf("FAIL redis_with_probe (redis-server could not be started)\n");
        return 1;
    }
    RUN(redis_with_probe);
    redis_kill(&server);
    return harness_summary();
}
