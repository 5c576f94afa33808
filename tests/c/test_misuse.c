/* Misuse of switchboard's C API returns SB_INVALID_HANDLE (or SB_INVALID_ARGUMENT for
 * bad arguments) instead of undefined behaviour: double release, use after free,
 * NULL handles, handles of the wrong type, made-up values, racing releases. Also
 * sb_last_error's truncation and sb_status_str. Run under valgrind by `make test-c`. */
#include "harness.h"

#include <pthread.h>

static echo_server server;
static sb_manager *manager;
static sb_pool *pool;

static int double_release(void) {
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_ST(sb_lease_release(lease), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("no longer valid");
    EXPECT_ST(sb_lease_discard(lease), SB_INVALID_HANDLE);
    int fd = -1;
    EXPECT_ST(sb_lease_fd(lease, &fd), SB_INVALID_HANDLE);
    EXPECT(fd == -1);
    uint8_t buf[8];
    size_t n = 0;
    EXPECT_ST(sb_lease_send(lease, buf, 1, &n), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_send_all(lease, buf, 1), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_recv(lease, buf, sizeof buf, &n), SB_INVALID_HANDLE);
    /* The connection went back once, not twice: it is idle exactly once. */
    sb_lease *a = NULL, *b = NULL;
    EXPECT_OK(sb_pool_try_acquire(pool, &a));
    EXPECT(a != NULL);
    EXPECT_OK(sb_pool_try_acquire(pool, &b));
    EXPECT(b == NULL);
    EXPECT(a != lease); /* a new handle, even for the same connection */
    EXPECT_OK(sb_lease_release(a));
    return 0;
}

static int discarded_lease_is_invalid(void) {
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_discard(lease));
    EXPECT_ST(sb_lease_release(lease), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_discard(lease), SB_INVALID_HANDLE);
    return 0;
}

static int freed_pool_and_config(void) {
    sb_pool *p = NULL;
    EXPECT_OK(sb_pool_new(manager, "short-lived", server.target, NULL, &p));
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(p, 5000, &lease));
    EXPECT_OK(sb_pool_free(p));
    EXPECT_ST(sb_pool_acquire(p, 0, &lease), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("sb_pool handle is no longer valid");
    EXPECT_ST(sb_pool_try_acquire(p, &lease), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_free(p), SB_INVALID_HANDLE);
    /* A lease outlives its freed pool, and its release closes the connection. */
    char echo[8];
    EXPECT_OK(lease_round_trip(lease, "ok\n", echo));
    EXPECT_OK(sb_lease_release(lease));
    /* The name is free again. */
    EXPECT_OK(sb_pool_new(manager, "short-lived", server.target, NULL, &p));
    EXPECT_OK(sb_pool_free(p));

    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_free(cfg));
    EXPECT_ST(sb_config_set(cfg, "pool.max_size", "2"), SB_INVALID_HANDLE);
    EXPECT_ST(sb_config_free(cfg), SB_INVALID_HANDLE);
    sb_manager *m = NULL;
    EXPECT_ST(sb_manager_new(cfg, &m), SB_INVALID_HANDLE);
    EXPECT(m == NULL);
    EXPECT_ST(sb_pool_new(manager, "x", server.target, cfg, &p), SB_INVALID_HANDLE);

    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_manager_free(m));
    EXPECT_ST(sb_manager_free(m), SB_INVALID_HANDLE);
    EXPECT_ST(sb_manager_close(m, 0), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_new(m, "x", server.target, NULL, &p), SB_INVALID_HANDLE);
    return 0;
}

static int null_handles(void) {
    sb_lease *lease = NULL;
    sb_pool *p = NULL;
    int fd = 0;
    size_t n = 0;
    uint8_t buf[4];
    EXPECT_ST(sb_pool_acquire(NULL, 0, &lease), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("NULL");
    EXPECT_ST(sb_pool_try_acquire(NULL, &lease), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_new(NULL, "x", server.target, NULL, &p), SB_INVALID_HANDLE);
    EXPECT_ST(sb_manager_close(NULL, 0), SB_INVALID_HANDLE);
    EXPECT_ST(sb_config_set(NULL, "pool.max_size", "1"), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_fd(NULL, &fd), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_send(NULL, buf, 1, &n), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_send_all(NULL, buf, 1), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_recv(NULL, buf, sizeof buf, &n), SB_INVALID_HANDLE);
    /* The functions that end a handle accept NULL, like free(). */
    EXPECT_OK(sb_lease_release(NULL));
    EXPECT_OK(sb_lease_discard(NULL));
    EXPECT_OK(sb_pool_free(NULL));
    EXPECT_OK(sb_manager_free(NULL));
    EXPECT_OK(sb_config_free(NULL));
    return 0;
}

static int wrong_type_handles(void) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    /* A pool handle where a lease is expected. */
    EXPECT_ST(sb_lease_release((sb_lease *)pool), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("expected a sb_lease handle but got a sb_pool handle");
    EXPECT_ST(sb_lease_discard((sb_lease *)pool), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_free((sb_pool *)manager), SB_INVALID_HANDLE);
    EXPECT_ST(sb_manager_free((sb_manager *)pool), SB_INVALID_HANDLE);
    EXPECT_ST(sb_config_free((sb_config *)manager), SB_INVALID_HANDLE);
    EXPECT_ST(sb_config_set((sb_config *)pool, "pool.max_size", "1"), SB_INVALID_HANDLE);
    sb_lease *lease = NULL;
    EXPECT_ST(sb_pool_acquire((sb_pool *)cfg, 0, &lease), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_acquire((sb_pool *)manager, 0, &lease), SB_INVALID_HANDLE);
    sb_pool *p = NULL;
    EXPECT_ST(sb_pool_new((sb_manager *)pool, "x", server.target, NULL, &p),
              SB_INVALID_HANDLE);
    /* A real pointer, and made-up values. */
    int local = 0;
    EXPECT_ST(sb_lease_release((sb_lease *)&local), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("not a switchboard handle");
    EXPECT_ST(sb_pool_free((sb_pool *)(uintptr_t)1), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_free((sb_pool *)UINTPTR_MAX), SB_INVALID_HANDLE);
    /* Everything still works after the misuse. */
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_config_free(cfg));
    return 0;
}

static int bad_arguments(void) {
    sb_lease *lease = NULL;
    EXPECT_ST(sb_pool_acquire(pool, 0, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("out must not be NULL");
    EXPECT_ST(sb_pool_try_acquire(pool, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_config_new(NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_manager_new(NULL, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_new(manager, NULL, server.target, NULL, NULL), SB_INVALID_ARGUMENT);
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    size_t n = 0;
    uint8_t buf[4];
    EXPECT_ST(sb_lease_fd(lease, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_lease_send(lease, NULL, 4, &n), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_lease_send(lease, buf, 1, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_lease_recv(lease, buf, 0, &n), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_lease_recv(lease, NULL, 4, &n), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_lease_recv(lease, buf, sizeof buf, NULL), SB_INVALID_ARGUMENT);
    EXPECT_OK(sb_lease_send(lease, NULL, 0, &n)); /* nothing to send is fine */
    EXPECT(n == 0);
    EXPECT_OK(sb_lease_send_all(lease, NULL, 0));
    EXPECT_OK(sb_lease_release(lease));
    return 0;
}

struct racer {
    pthread_barrier_t *barrier;
    sb_lease *lease;
    sb_status result;
};

static void *release_racer(void *arg) {
    struct racer *r = arg;
    pthread_barrier_wait(r->barrier);
    r->result = sb_lease_release(r->lease);
    return NULL;
}

/* Two threads release the same lease at once: exactly one wins. */
static int racing_releases(void) {
    for (int round = 0; round < 100; round++) {
        sb_lease *lease = NULL;
        EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, 2);
        struct racer a = {&barrier, lease, SB_INTERNAL}, b = {&barrier, lease, SB_INTERNAL};
        pthread_t ta, tb;
        EXPECT(pthread_create(&ta, NULL, release_racer, &a) == 0);
        EXPECT(pthread_create(&tb, NULL, release_racer, &b) == 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&barrier);
        int ok = (a.result == SB_OK) + (b.result == SB_OK);
        int invalid = (a.result == SB_INVALID_HANDLE) + (b.result == SB_INVALID_HANDLE);
        if (ok != 1 || invalid != 1)
            FAILF("round %d: results %s and %s", round, status_name(a.result),
                  status_name(b.result));
    }
    return 0;
}

static int last_error_truncates(void) {
    EXPECT_ST(sb_pool_acquire(NULL, 0, NULL), SB_INVALID_HANDLE);
    char full[256];
    size_t n = 0;
    EXPECT_OK(sb_last_error(full, sizeof full, &n));
    EXPECT(n == strlen(full) && n > 10);
    char small[8];
    memset(small, 'Z', sizeof small);
    EXPECT_OK(sb_last_error(small, 5, &n));
    EXPECT(n == 4 && small[4] == '\0' && small[5] == 'Z');
    EXPECT(strncmp(small, full, 4) == 0);
    EXPECT_OK(sb_last_error(NULL, 0, &n));
    EXPECT(n == 0);
    EXPECT_OK(sb_last_error(small, sizeof small, NULL));
    EXPECT_ST(sb_last_error(NULL, 10, &n), SB_INVALID_ARGUMENT);
    /* Reading it does not change it. */
    char again[256];
    EXPECT_OK(sb_last_error(again, sizeof again, NULL));
    EXPECT(strcmp(again, full) == 0);
    return 0;
}

/* The resilience calls: bad handles, NULL and unset arguments, unknown endpoints and
 * indexes, bad operation numbers and buffers that are too small each get a status and
 * a message; nothing is written on failure. */
static int resilience_misuse(void) {
    sb_pool_health h;
    sb_endpoint_health e;
    sb_breaker_state bs = -1;
    char name[256];
    size_t n = 77;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;

    /* Bad handles. */
    EXPECT_ST(sb_pool_get_health(NULL, &h), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_get_health((sb_pool *)manager, &h), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("expected a sb_pool handle");
    EXPECT_ST(sb_pool_endpoint_health(NULL, 0, &e), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_healthy_endpoints(NULL, &e, 1, &n), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_select_best(NULL, NULL, 0, name, sizeof name, &n), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_breaker_state(NULL, NULL, &bs), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_breaker_op(NULL, NULL, SB_BREAKER_OP_RESET), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_reset_backoff(NULL), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_drain(NULL, server.target), SB_INVALID_HANDLE);
    EXPECT_ST(sb_pool_run_health_checks((sb_pool *)manager), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_report(NULL, true, 0), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_endpoint(NULL, name, sizeof name, &n), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_set_timeout((sb_lease *)pool, 10), SB_INVALID_HANDLE);
    EXPECT(bs == -1 && n == 77);

    /* NULL or unset out-arguments. */
    EXPECT_ST(sb_pool_get_health(pool, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("out must not be NULL");
    h.struct_size = 0;
    EXPECT_ST(sb_pool_get_health(pool, &h), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("struct_size must be set to sizeof(sb_pool_health)");
    e.struct_size = 0;
    EXPECT_ST(sb_pool_endpoint_health(pool, 0, &e), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("sizeof(sb_endpoint_health)");
    EXPECT_ST(sb_pool_endpoint_health(pool, 0, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_healthy_endpoints(pool, &e, 1, &n), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_healthy_endpoints(pool, NULL, 1, &n), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_healthy_endpoints(pool, NULL, 0, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("count must not be NULL");
    EXPECT_ST(sb_pool_breaker_state(pool, NULL, NULL), SB_INVALID_ARGUMENT);

    /* An index, an endpoint or an operation that does not exist. */
    e.struct_size = sizeof e;
    EXPECT_ST(sb_pool_endpoint_health(pool, 1, &e), SB_NOT_FOUND);
    EXPECT_ERROR_MENTIONS("no endpoint number 1; it has 1");
    EXPECT(e.endpoint[0] == '\0'); /* untouched */
    EXPECT_ST(sb_pool_breaker_state(pool, "tcp://127.0.0.1:1", &bs), SB_NOT_FOUND);
    EXPECT_ERROR_MENTIONS(server.target); /* names the pool's endpoints */
    EXPECT(bs == -1);
    EXPECT_ST(sb_pool_breaker_state(pool, "\xff\xfe", &bs), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("UTF-8");
    EXPECT_ST(sb_pool_breaker_op(pool, "tcp://127.0.0.1:1", SB_BREAKER_OP_RESET), SB_NOT_FOUND);
    EXPECT_ST(sb_pool_breaker_op(pool, NULL, 0), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("not an sb_breaker_op");
    EXPECT_ST(sb_pool_breaker_op(pool, NULL, 99), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_breaker_op(pool, NULL, -1), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_drain(pool, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("endpoint must not be NULL");
    EXPECT_ST(sb_pool_drain(pool, "tcp://127.0.0.1:1"), SB_NOT_FOUND);
    EXPECT_OK(sb_pool_breaker_state(pool, NULL, &bs)); /* one endpoint: NULL names it */
    EXPECT(bs == SB_BREAKER_CLOSED);

    /* select_best: bad candidate lists, unknown names, small buffers. */
    const char *unknown[] = {"tcp://127.0.0.1:1"};
    const char *with_null[] = {server.target, NULL};
    EXPECT_ST(sb_pool_select_best(pool, NULL, 1, name, sizeof name, &n), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("candidates must not be NULL");
    EXPECT_ST(sb_pool_select_best(pool, with_null, 2, name, sizeof name, &n),
              SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("candidates[1] must not be NULL");
    EXPECT_ST(sb_pool_select_best(pool, unknown, 1, name, sizeof name, &n), SB_NOT_FOUND);
    EXPECT_ST(sb_pool_select_best(pool, NULL, 0, NULL, 8, &n), SB_INVALID_ARGUMENT);
    size_t need = strlen(server.target) + 1;
    memset(name, 'Z', sizeof name);
    EXPECT_ST(sb_pool_select_best(pool, NULL, 0, name, 4, &n), SB_RESOURCE_EXHAUSTED);
    EXPECT_ERROR_MENTIONS("buf has 4");
    EXPECT(n == need && name[0] == '\0' && name[1] == 'Z');
    n = 0;
    EXPECT_ST(sb_pool_select_best(pool, NULL, 0, NULL, 0, &n), SB_RESOURCE_EXHAUSTED);
    EXPECT(n == need); /* asking for the size */
    EXPECT_OK(sb_pool_select_best(pool, NULL, 0, name, need, NULL));
    EXPECT(strcmp(name, server.target) == 0);

    /* healthy_endpoints: asking for the count, then an array too small. */
    EXPECT_ST(sb_pool_healthy_endpoints(pool, NULL, 0, &n), SB_RESOURCE_EXHAUSTED);
    EXPECT(n == 1);
    EXPECT_OK(sb_pool_healthy_endpoints(pool, &e, 1, &n));
    EXPECT(n == 1 && strcmp(e.endpoint, server.target) == 0);

    /* A lease: buffers, released handles. */
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    memset(name, 'Z', sizeof name);
    EXPECT_ST(sb_lease_endpoint(lease, name, 3, &n), SB_RESOURCE_EXHAUSTED);
    EXPECT(n == need && name[0] == '\0' && name[3] == 'Z');
    EXPECT_ST(sb_lease_endpoint(lease, NULL, 3, &n), SB_INVALID_ARGUMENT);
    EXPECT_OK(sb_lease_endpoint(lease, name, sizeof name, &n));
    EXPECT(strcmp(name, server.target) == 0 && n == need);
    EXPECT_OK(sb_lease_report(lease, true, 1000));
    EXPECT_OK(sb_lease_set_timeout(lease, 5000));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_ST(sb_lease_report(lease, true, 1000), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_endpoint(lease, name, sizeof name, &n), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_set_timeout(lease, 10), SB_INVALID_HANDLE);

    /* The resilience keys are set like the others; floats as text; bad values name the
     * key and what it accepts. */
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "backoff.multiplier", "1.6"));
    EXPECT_OK(sb_config_set(cfg, "breaker.failure_rate_threshold", "50"));
    EXPECT_OK(sb_config_set(cfg, "breaker.slow_call_rate_threshold", "37.5"));
    EXPECT_OK(sb_config_set(cfg, "backoff.strategy", "decorrelated"));
    EXPECT_OK(sb_config_set(cfg, "health.interval", "0"));
    EXPECT_ST(sb_config_set(cfg, "backoff.jitter", "2"), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("backoff.jitter");
    EXPECT_ST(sb_config_set(cfg, "breaker.mode", "sometimes"), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("forced_open");
    sb_pool *p = NULL;
    EXPECT_OK(sb_pool_new(manager, "resilient", server.target, cfg, &p));
    EXPECT_OK(sb_config_free(cfg));
    EXPECT_OK(sb_pool_free(p));

    /* State names. */
    EXPECT(strcmp(sb_breaker_state_str(SB_BREAKER_HALF_OPEN), "half_open") == 0);
    EXPECT(strcmp(sb_breaker_state_str(SB_BREAKER_METRICS_ONLY), "metrics_only") == 0);
    EXPECT(strcmp(sb_breaker_state_str(6), "unknown") == 0);
    EXPECT(strcmp(sb_breaker_state_str(-1), "unknown") == 0);
    EXPECT(strcmp(sb_conn_state_str(SB_CONN_DISCONNECTING), "disconnecting") == 0);
    EXPECT(strcmp(sb_conn_state_str(7), "unknown") == 0);
    /* The numbers are part of the ABI. */
    EXPECT(SB_BREAKER_CLOSED == 0 && SB_BREAKER_OPEN == 1 && SB_BREAKER_HALF_OPEN == 2);
    EXPECT(SB_BREAKER_FORCED_OPEN == 3 && SB_BREAKER_DISABLED == 4);
    EXPECT(SB_BREAKER_METRICS_ONLY == 5 && SB_CONN_IDLE == 0 && SB_CONN_FAILED == 6);
    EXPECT(SB_BREAKER_OP_FORCE_OPEN == 1 && SB_BREAKER_OP_RESET == 4);
    return 0;
}

static int status_strings(void) {
    EXPECT(strcmp(sb_status_str(SB_OK), "success") == 0);
    EXPECT(strcmp(sb_status_str(SB_TIMEOUT), "timed out") == 0);
    EXPECT(strcmp(sb_status_str(SB_INVALID_HANDLE), "invalid handle") == 0);
    EXPECT(strcmp(sb_status_str(SB_UNAUTHENTICATED), "unauthenticated") == 0);
    EXPECT(strcmp(sb_status_str(SB_PERMISSION_DENIED), "permission denied") == 0);
    for (int s = SB_OK; s <= SB_PERMISSION_DENIED; s++) {
        EXPECT(sb_status_str(s) != NULL);
        EXPECT(strcmp(sb_status_str(s), "unknown status") != 0);
    }
    EXPECT(strcmp(sb_status_str(-1), "unknown status") == 0);
    EXPECT(strcmp(sb_status_str(13), "unknown status") == 0);
    /* The numbers are part of the ABI. */
    EXPECT(SB_OK == 0 && SB_INVALID_ARGUMENT == 1 && SB_NOT_FOUND == 2);
    EXPECT(SB_RESOURCE_EXHAUSTED == 3 && SB_FAILED_PRECONDITION == 4);
    EXPECT(SB_UNAVAILABLE == 5 && SB_TIMEOUT == 6 && SB_CANCELLED == 7);
    EXPECT(SB_INVALID_HANDLE == 8 && SB_IO == 9 && SB_INTERNAL == 10);
    EXPECT(SB_UNAUTHENTICATED == 11 && SB_PERMISSION_DENIED == 12);
    return 0;
}

int main(void) {
    alarm(600);
    if (echo_start(&server) != 0) {
        printf("FAIL start echo server\n0 passed, 1 failed\n");
        return 1;
    }
    if (sb_manager_new(NULL, &manager) != SB_OK ||
        sb_pool_new(manager, "misuse", server.target, NULL, &pool) != SB_OK) {
        printf("FAIL setup: %s\n0 passed, 1 failed\n", last_error());
        echo_stop(&server);
        return 1;
    }
    RUN(double_release);
    RUN(discarded_lease_is_invalid);
    RUN(freed_pool_and_config);
    RUN(null_handles);
    RUN(wrong_type_handles);
    RUN(bad_arguments);
    RUN(racing_releases);
    RUN(last_error_truncates);
    RUN(status_strings);
    RUN(resilience_misuse);
    /* The handles from main are still valid after all that. */
    if (sb_pool_free(pool) != SB_OK || sb_manager_free(manager) != SB_OK) {
        printf("FAIL teardown: %s\n", last_error());
        harness_failed++;
    }
    echo_stop(&server);
    return harness_summary();
}
