/* switchboard from C: pool connections to an echo server.
 *
 *   cc -std=c11 -Iinclude examples/c/echo.c -Ltarget/release -lswitchboard \
 *      -Wl,-rpath,$PWD/target/release -o echo
 *   ./echo tcp://127.0.0.1:7000
 *
 * Creates a manager and a pool, acquires a connection, sends a line and reads the echo,
 * releases the connection, acquires again (and gets the same connection back), prints
 * the pool's latency summaries and a line of its Prometheus metrics, then frees
 * everything. Every call's status is checked; on failure the message from
 * sb_last_error() says what went wrong. */
#include <stdio.h>
#include <string.h>

#include "switchboard.h"

/* Prints the failed call and the library's message, then jumps to cleanup. */
#define CHECK(call)                                                                    \
    do {                                                                               \
        sb_status st_ = (call);                                                        \
        if (st_ != SB_OK) {                                                            \
            char msg_[512];                                                            \
            sb_last_error(msg_, sizeof msg_, NULL);                                    \
            fprintf(stderr, "c: %s failed: %s (%s)\n", #call, sb_status_str(st_), msg_); \
            goto cleanup;                                                              \
        }                                                                              \
    } while (0)

/* Sends `line` and reads its echo into `reply` (NUL-terminated). */
static sb_status echo_line(sb_lease *lease, const char *line, char *reply, size_t cap) {
    size_t len = strlen(line), got = 0;
    sb_status st = sb_lease_send_all(lease, (const uint8_t *)line, len);
    while (st == SB_OK && got < len && got + 1 < cap) {
        size_t n = 0;
        st = sb_lease_recv(lease, (uint8_t *)reply + got, cap - 1 - got, &n);
        if (n == 0) break; /* the server closed the connection */
        got += n;
    }
    reply[got] = '\0';
    return st;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s tcp://host:port\n", argv[0]);
        return 2;
    }
    const char *target = argv[1];
    int ok = 0;
    sb_config *cfg = NULL;
    sb_manager *manager = NULL;
    sb_pool *pool = NULL;
    sb_lease *lease = NULL;
    char reply[128];
    int fd_first = -1, fd_again = -1;

    printf("c: switchboard %s\n", sb_version());
    CHECK(sb_config_new(&cfg));
    CHECK(sb_config_set(cfg, "pool.max_size", "2"));
    CHECK(sb_config_set(cfg, "pool.acquire_timeout", "2s"));
    CHECK(sb_manager_new(NULL, &manager));
    CHECK(sb_pool_new(manager, "echo", target, cfg, &pool));
    printf("c: pool \"echo\" -> %s (max_size 2)\n", target);

    CHECK(sb_pool_acquire(pool, -1, &lease)); /* -1: the pool's acquire_timeout */
    CHECK(sb_lease_fd(lease, &fd_first));
    CHECK(echo_line(lease, "hello from C\n", reply, sizeof reply));
    printf("c: sent \"hello from C\", echoed \"%.*s\" (fd %d)\n", (int)strcspn(reply, "\n"),
           reply, fd_first);
    CHECK(sb_lease_release(lease));
    lease = NULL;

    CHECK(sb_pool_acquire(pool, -1, &lease));
    CHECK(sb_lease_fd(lease, &fd_again));
    CHECK(echo_line(lease, "hello again\n", reply, sizeof reply));
    printf("c: reacquired fd %d: %s; echoed \"%.*s\"\n", fd_again,
           fd_again == fd_first ? "the same connection, reused" : "a new connection",
           (int)strcspn(reply, "\n"), reply);
    CHECK(sb_lease_release(lease));

    /* Handles are checked: releasing twice is reported, not undefined behaviour. */
    printf("c: releasing the lease again -> %s\n", sb_status_str(sb_lease_release(lease)));
    lease = NULL;

    /* Latency summaries (nanoseconds) and the Prometheus text. */
    sb_pool_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    CHECK(sb_pool_get_stats(pool, &stats));
    printf("c: %llu leases, held avg %.3f ms, peak %.3f ms; waited p99 %.3f ms\n",
           (unsigned long long)stats.lease.count, stats.lease.avg_ns / 1e6,
           stats.lease.peak_ns / 1e6, stats.wait.p99_ns / 1e6);
    /* The endpoint's health and breaker. */
    sb_endpoint_health ep;
    memset(&ep, 0, sizeof ep);
    ep.struct_size = sizeof ep;
    CHECK(sb_pool_endpoint_health(pool, 0, &ep));
    printf("c: endpoint %s: %s, breaker %s, quality %.2f, %llu calls\n", ep.endpoint,
           sb_conn_state_str(ep.state), sb_breaker_state_str(ep.breaker), ep.quality,
           (unsigned long long)ep.calls);
    char metrics[32768];
    size_t need = 0;
    CHECK(sb_manager_metrics(manager, metrics, sizeof metrics, &need));
    const char *line =
        strstr(metrics, "switchboard_pool_acquires_total{pool=\"echo\",result=\"direct\"}");
    if (line != NULL) printf("c: metrics: %.*s\n", (int)strcspn(line, "\n"), line);
    ok = 1;

cleanup:
    /* The release/free functions accept NULL, so cleanup is the same on every path. */
    sb_lease_release(lease);
    sb_pool_free(pool);
    if (manager != NULL) sb_manager_close(manager, 1000);
    sb_manager_free(manager);
    sb_config_free(cfg);
    if (ok) printf("c: done, manager closed\n");
    return ok ? 0 : 1;
}
