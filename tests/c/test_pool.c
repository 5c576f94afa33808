/* switchboard's C API against a real loopback echo server: round trip and reuse,
 * timeout when the pool is full, server down, bad config, closed manager, and
 * acquire from several threads at once. Linked both against libswitchboard.so and
 * statically against libswitchboard.a. */
#include "harness.h"

#include <pthread.h>

static echo_server server;



static int version_matches_header(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", SB_VERSION_MAJOR, SB_VERSION_MINOR,
             SB_VERSION_PATCH);
    EXPECT(sb_version() != NULL);
    if (strcmp(sb_version(), want) != 0)
        FAILF("sb_version() is \"%s\", the header says %s", sb_version(), want);
    return 0;
}

/* acquire -> echo round trip -> release -> reacquire gets the same connection. */
static int round_trip_release_and_reuse(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("echo", server.target, NULL, &m, &pool)) return 1;

    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT(lease != NULL);
    int fd1 = -1;
    EXPECT_OK(sb_lease_fd(lease, &fd1));
    EXPECT(fd1 >= 0);
    char echo[32];
    EXPECT_OK(lease_round_trip(lease, "hello\n", echo));
    EXPECT(strcmp(echo, "hello\n") == 0);
    EXPECT_OK(sb_lease_release(lease));

    sb_lease *again = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &again));
    int fd2 = -1;
    EXPECT_OK(sb_lease_fd(again, &fd2));
    if (fd1 != fd2) FAILF("reacquired fd %d, first lease had fd %d", fd2, fd1);
    /* The raw fd works too, in blocking mode, while the lease is held. */
    EXPECT(send(fd2, "raw\n", 4, 0) == 4);
    char raw[8] = {0};
    size_t got = 0;
    while (got < 4) {
        ssize_t n = recv(fd2, raw + got, 4 - got, 0);
        EXPECT(n > 0);
        got += (size_t)n;
    }
    EXPECT(memcmp(raw, "raw\n", 4) == 0);
    /* sb_lease_send sends some bytes and says how many. */
    size_t sent = 0;
    EXPECT_OK(sb_lease_send(again, (const uint8_t *)"x", 1, &sent));
    EXPECT(sent == 1);
    size_t n = 0;
    EXPECT_OK(sb_lease_recv(again, (uint8_t *)raw, sizeof raw, &n));
    EXPECT(n == 1 && raw[0] == 'x');
    EXPECT_OK(sb_lease_release(again));

    int accepted = echo_accepted(&server);
    if (accepted != 1) FAILF("the server accepted %d connections, expected 1", accepted);
    return close_pool(m, pool);
}

static int try_acquire_returns_null_when_none_idle(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("try", server.target, NULL, &m, &pool)) return 1;
    sb_lease *lease = (sb_lease *)&lease; /* any non-NULL value */
    EXPECT_OK(sb_pool_try_acquire(pool, &lease));
    EXPECT(lease == NULL);
    EXPECT_OK(sb_lease_release(lease)); /* NULL is a no-op */
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_try_acquire(pool, &lease));
    EXPECT(lease != NULL);
    EXPECT_OK(sb_lease_discard(lease)); /* closed, not returned */
    EXPECT_OK(sb_pool_try_acquire(pool, &lease));
    EXPECT(lease == NULL);
    return close_pool(m, pool);
}

/* pool.max_size=1, one lease held: a second acquire times out within its deadline. */
static int full_pool_times_out(void) {
    static const char *const settings[] = {"pool.max_size", "1", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("tiny", server.target, settings, &m, &pool)) return 1;
    sb_lease *held = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &held));

    sb_lease *second = NULL;
    long long t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, 200, &second), SB_TIMEOUT);
    long long took = now_ms() - t0;
    /* Generous margin: valgrind makes everything slow. */
    if (took > 200 + 10000) FAILF("the timeout took %lld ms for a 200 ms deadline", took);
    EXPECT(second == NULL); /* out-params are written only on success */
    EXPECT_ERROR_MENTIONS("\"tiny\"");
    EXPECT_ERROR_MENTIONS("sb_pool_acquire");

    /* The pool's default (pool.acquire_timeout) applies for a negative timeout. */
    sb_config *cfg = NULL;
    sb_pool *quick = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.max_size", "1"));
    EXPECT_OK(sb_config_set(cfg, "pool.acquire_timeout", "100ms"));
    EXPECT_OK(sb_pool_new(m, "quick", server.target, cfg, &quick));
    EXPECT_OK(sb_config_free(cfg));
    sb_lease *q1 = NULL, *q2 = NULL;
    EXPECT_OK(sb_pool_acquire(quick, -1, &q1));
    EXPECT_ST(sb_pool_acquire(quick, -1, &q2), SB_TIMEOUT);
    EXPECT_ERROR_MENTIONS("100ms");
    EXPECT_OK(sb_lease_release(q1));
    EXPECT_OK(sb_pool_free(quick));

    EXPECT_OK(sb_lease_release(held));
    EXPECT_OK(sb_pool_acquire(pool, 0, &second)); /* idle again: no wait needed */
    EXPECT_OK(sb_lease_release(second));
    return close_pool(m, pool);
}

static int server_down_is_unavailable(void) {
    int port = dead_port();
    EXPECT(port > 0);
    char target[64], addr[32];
    snprintf(target, sizeof target, "tcp://127.0.0.1:%d", port);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("down", target, NULL, &m, &pool)) return 1;
    sb_lease *lease = NULL;
    sb_status st = sb_pool_acquire(pool, 5000, &lease);
    if (st != SB_UNAVAILABLE && st != SB_IO)
        FAILF("acquire returned %s, expected SB_UNAVAILABLE or SB_IO", status_name(st));
    EXPECT(lease == NULL);
    EXPECT_ERROR_MENTIONS(addr);
    return close_pool(m, pool);
}

static int bad_config_names_the_key(void) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_ST(sb_config_set(cfg, "pool.max_sise", "4"), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("pool.max_sise");
    EXPECT_ST(sb_config_set(cfg, "pool.max_size", "lots"), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("pool.max_size must be an integer");
    EXPECT_ST(sb_config_set(cfg, "pool.acquire_timeout", "soon"), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("pool.acquire_timeout");
    EXPECT_ST(sb_config_set(cfg, NULL, "4"), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_config_set(cfg, "pool.max_size", NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_config_set(cfg, "pool.max_size", "\xff"), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("UTF-8");
    /* A bad target is an invalid argument too. */
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(cfg, &m));
    EXPECT_ST(sb_pool_new(m, "bad", "tcp://127.0.0.1", NULL, &pool), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("has no port");
    EXPECT(pool == NULL);
    EXPECT_ST(sb_pool_new(m, "", server.target, NULL, &pool), SB_INVALID_ARGUMENT);
    EXPECT_OK(sb_manager_free(m));
    EXPECT_OK(sb_config_free(cfg));
    return 0;
}

/* After sb_manager_close, calls fail with SB_UNAVAILABLE; handles still free cleanly. */
static int closed_manager_fails_cleanly(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("closing", server.target, NULL, &m, &pool)) return 1;
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease)); /* held across the close */

    EXPECT_OK(sb_manager_close(m, 100));
    EXPECT_OK(sb_manager_close(m, 100)); /* closing twice is a no-op */
    sb_lease *late = NULL;
    EXPECT_ST(sb_pool_acquire(pool, 1000, &late), SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS("closed");
    EXPECT_ST(sb_pool_try_acquire(pool, &late), SB_UNAVAILABLE);
    sb_pool *other = NULL;
    EXPECT_ST(sb_pool_new(m, "late", server.target, NULL, &other), SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS("closed");
    /* The held lease's socket still works until it is released. */
    char echo[16];
    EXPECT_OK(lease_round_trip(lease, "still\n", echo));
    EXPECT(strcmp(echo, "still\n") == 0);
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

/* Freeing a manager that was never closed closes it (and joins its threads). */
static int free_without_close(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("unclosed", server.target, NULL, &m, &pool)) return 1;
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_manager_free(m));
    EXPECT_OK(sb_lease_release(lease)); /* closes the connection */
    EXPECT_ST(sb_pool_acquire(pool, 0, &lease), SB_UNAVAILABLE);
    EXPECT_OK(sb_pool_free(pool));
    return 0;
}

#define THREADS 4
#define ROUNDS 50

struct worker {
    sb_pool *pool;
    int failures;
    char error[256];
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        sb_lease *lease = NULL;
        sb_status st = sb_pool_acquire(w->pool, 10000, &lease);
        if (st != SB_OK) {
            w->failures++;
            snprintf(w->error, sizeof w->error, "acquire: %s: %s", status_name(st),
                     last_error());
            continue;
        }
        char msg[32], echo[32];
        snprintf(msg, sizeof msg, "%p/%d\n", (void *)w, i);
        st = lease_round_trip(lease, msg, echo);
        if (st != SB_OK || strcmp(msg, echo) != 0) {
            w->failures++;
            snprintf(w->error, sizeof w->error, "round trip: %s", status_name(st));
            sb_lease_discard(lease);
            continue;
        }
        if (sb_lease_release(lease) != SB_OK) w->failures++;
    }
    return NULL;
}

/* Several threads acquire from one pool at once; the pool never opens more than
 * max_size connections. */
static int threads_share_a_pool(void) {
    static const char *const settings[] = {"pool.max_size", "2", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    int before = echo_accepted(&server);
    if (open_pool_to("shared", server.target, settings, &m, &pool)) return 1;
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i].pool = pool;
        workers[i].failures = 0;
        workers[i].error[0] = '\0';
        EXPECT(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        failures += workers[i].failures;
        if (workers[i].failures) fprintf(stderr, "    thread %d: %s\n", i, workers[i].error);
    }
    EXPECT(failures == 0);
    int opened = echo_accepted(&server) - before - 1; /* minus the first STATS query */
    if (opened < 1 || opened > 2) FAILF("%d connections opened for max_size 2", opened);
    return close_pool(m, pool);
}

int main(void) {
    alarm(600); /* a hung test fails instead of hanging the build */
    if (echo_start(&server) != 0) {
        printf("FAIL start echo server\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(version_matches_header);
    RUN(round_trip_release_and_reuse);
    RUN(try_acquire_returns_null_when_none_idle);
    RUN(full_pool_times_out);
    RUN(server_down_is_unavailable);
    RUN(bad_config_names_the_key);
    RUN(closed_manager_fails_cleanly);
    RUN(free_without_close);
    RUN(threads_share_a_pool);
    echo_stop(&server);
    return harness_summary();
}
