/* Pool sizing and operations through the C API, against a real loopback echo server:
 * the stats snapshot (every field, and the struct_size versioning), max_overflow,
 * resize (a waiter gets in after growing; surplus closes after shrinking),
 * evict_all, warm and min_idle, idle_timeout and max_lifetime with run_upkeep, and
 * acquire priorities. No timing assertions: every wait is a bounded poll. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

static echo_server server;

/* A manager and one pool to the echo server; settings are key/value pairs. */
static int open_pool(const char *const *settings, sb_manager **manager, sb_pool **pool) {
    return open_pool_to("ops", server.target, settings, manager, pool);
}


/* Every field of the snapshot after a known sequence of calls. */
static int stats_fields(void) {
    const char *settings[] = {"pool.max_size", "2", "pool.max_overflow", "1",
                              "pool.acquire_timeout", "200ms", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool(settings, &m, &pool)) return 1;
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.struct_size == sizeof s);
    EXPECT(s.max_size == 2 && s.min_idle == 0 && s.max_overflow == 1);
    EXPECT(s.size == 0 && s.idle == 0 && s.leased == 0 && s.waiting == 0);
    EXPECT(s.created_total == 0 && s.closed_total == 0 && s.acquired_total == 0);

    sb_lease *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a)); /* nothing idle: waits for a connect */
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.size == 1 && s.leased == 1 && s.idle == 0 && s.created_total == 1);
    EXPECT(s.acquired_total == 1 && s.acquired_waited_total == 1);
    EXPECT_OK(sb_lease_release(a));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a)); /* idle: served at once */
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.acquired_direct_total == 1 && s.acquired_total == 2);
    EXPECT_OK(sb_pool_acquire(pool, 5000, &b));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &c)); /* the overflow connection */
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.size == 3 && s.leased == 3);
    /* Full (2 + 1 overflow): times out. */
    EXPECT_ST(sb_pool_acquire(pool, 50, &d), SB_TIMEOUT);
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.timed_out_total == 1);
    EXPECT_OK(sb_lease_discard(c));
    EXPECT_OK(sb_lease_release(b));
    EXPECT_OK(sb_lease_release(a));
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.closed_discarded_total == 1);
    EXPECT(s.size == 2 && s.idle == 2 && s.leased == 0 && s.connecting == 0);
    EXPECT(s.closed_total == s.closed_broken_total + s.closed_idle_total +
                                 s.closed_lifetime_total + s.closed_overflow_total +
                                 s.closed_evicted_total + s.closed_discarded_total +
                                 s.closed_closed_total);
    EXPECT(s.connect_failed_total == 0 && s.probe_failed_total == 0 &&
           s.rejected_total == 0);
    EXPECT(s.created_total == 3);
    EXPECT(echo_accepted(&server) >= 0);

    /* A closed pool still answers, with its last counts plus the closed ones. */
    EXPECT_OK(sb_manager_close(m, 1000));
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.closed_closed_total == 2 && s.size == 0);
    return close_pool(m, pool);
}

/* struct_size: an older, smaller struct gets only its fields; 0 is rejected. */
static int stats_struct_size(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    const char *settings[] = {"pool.max_size", "7", NULL};
    if (open_pool(settings, &m, &pool)) return 1;
    sb_pool_stats s;
    memset(&s, 0xAB, sizeof s);
    s.struct_size = offsetof(sb_pool_stats, min_idle); /* room for max_size only */
    EXPECT_OK(sb_pool_get_stats(pool, &s));
    EXPECT(s.struct_size == offsetof(sb_pool_stats, min_idle));
    EXPECT(s.max_size == 7);
    EXPECT(s.min_idle == 0xABABABABABABABABull); /* not written */
    EXPECT(s.probe_failed_total == 0xABABABABABABABABull);
    /* A newer, larger struct: the library fills what it knows and says so. */
    struct {
        sb_pool_stats known;
        uint64_t future_field;
    } bigger;
    memset(&bigger, 0xAB, sizeof bigger);
    bigger.known.struct_size = sizeof bigger;
    EXPECT_OK(sb_pool_get_stats(pool, &bigger.known));
    EXPECT(bigger.known.struct_size == sizeof(sb_pool_stats));
    EXPECT(bigger.future_field == 0xABABABABABABABABull);
    memset(&s, 0, sizeof s);
    EXPECT_ST(sb_pool_get_stats(pool, &s), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("struct_size");
    EXPECT_ST(sb_pool_get_stats(pool, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_get_stats(NULL, &s), SB_INVALID_HANDLE);
    return close_pool(m, pool);
}

/* max_overflow: connections beyond max_size are closed when they come back. */
static int overflow_closes_on_return(void) {
    const char *settings[] = {"pool.max_size", "1", "pool.max_overflow", "2", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool(settings, &m, &pool)) return 1;
    int before = echo_accepted(&server);
    sb_lease *l[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) EXPECT_OK(sb_pool_acquire(pool, 5000, &l[i]));
    /* The server accepts in its own time: poll its count (which includes the
     * earlier STATS query). */
    int accepted = -1;
    EVENTUALLY(10000, accepted = echo_accepted(&server), accepted == before + 1 + 3);
    for (int i = 0; i < 3; i++) EXPECT_OK(sb_lease_release(l[i]));
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.closed_overflow_total == 2);
    EXPECT(s.size == 1 && s.idle == 1);
    return close_pool(m, pool);
}

typedef struct {
    sb_pool *pool;
    int64_t timeout_ms;
    int32_t priority;
    atomic_int *order; /* shared ticket: who got a connection when */
    int got_order;
    long hold_ms;
    sb_status status;
    char error[256];
} acquirer;

static void *acquire_thread(void *arg) {
    acquirer *a = arg;
    sb_lease *lease = NULL;
    a->status = sb_pool_acquire_prio(a->pool, a->timeout_ms, a->priority, &lease);
    if (a->status == SB_OK) {
        a->got_order = atomic_fetch_add(a->order, 1);
        if (a->hold_ms > 0) sleep_ms((int)a->hold_ms);
        sb_lease_release(lease);
    } else {
        sb_last_error(a->error, sizeof a->error, NULL);
    }
    return NULL;
}

/* Growing lets a waiter in at once; shrinking closes the surplus when it returns. */
static int resize_grow_and_shrink(void) {
    const char *settings[] = {"pool.max_size", "1", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool(settings, &m, &pool)) return 1;
    sb_lease *held = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &held));
    atomic_int order = 0;
    acquirer w = {.pool = pool, .timeout_ms = 20000, .order = &order, .hold_ms = 0};
    w.got_order = -1;
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, acquire_thread, &w) == 0);
    sb_pool_stats s;
    EVENTUALLY(10000, EXPECT_OK(get_stats(pool, &s)), s.waiting == 1);
    EXPECT_OK(sb_pool_resize(pool, 2, 0));
    /* The waiter gets a new connection while the first lease is still held. */
    EVENTUALLY(10000, (void)0, atomic_load(&order) == 1);
    pthread_join(t, NULL);
    if (w.status != SB_OK) FAILF("waiter: %s: %s", status_name(w.status), w.error);
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.max_size == 2 && s.size == 2 && s.idle == 1 && s.leased == 1);

    /* Shrink to 1 with one idle and one leased: the idle one closes now... */
    sb_lease *second = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &second));
    EXPECT_OK(sb_pool_resize(pool, 1, 0));
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.max_size == 1 && s.size == 2 && s.leased == 2);
    /* ...and a leased one closes when it comes back; the lease itself stayed valid. */
    char echo[16];
    EXPECT_OK(lease_round_trip(held, "still\n", echo));
    EXPECT(strcmp(echo, "still\n") == 0);
    EXPECT_OK(sb_lease_release(held));
    EXPECT_OK(sb_lease_release(second));
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.closed_overflow_total == 1 && s.size == 1 && s.idle == 1);

    /* Out-of-range sizes change nothing. */
    EXPECT_ST(sb_pool_resize(pool, 0, 0), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("max_size");
    EXPECT_ST(sb_pool_resize(pool, 2, 3), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("min_idle");
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.max_size == 1 && s.min_idle == 0);
    EXPECT_ST(sb_pool_resize(NULL, 1, 0), SB_INVALID_HANDLE);
    return close_pool(m, pool);
}

/* evict_all: idle ones close now, leased ones on return; new ones open on demand. */
static int evict_all_closes_idle_now_and_leased_on_return(void) {
    const char *settings[] = {"pool.max_size", "2", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool(settings, &m, &pool)) return 1;
    sb_lease *a = NULL, *b = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &b));
    EXPECT_OK(sb_lease_release(b));
    EXPECT_OK(sb_pool_evict_all(pool));
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.closed_evicted_total == 1 && s.idle == 0 && s.leased == 1);
    EXPECT_OK(sb_lease_release(a));
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.closed_evicted_total == 2 && s.size == 0);
    int before = echo_accepted(&server);
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
    int accepted = -1;
    EVENTUALLY(10000, accepted = echo_accepted(&server), accepted == before + 1 + 1);
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.created_total == 3);
    EXPECT_OK(sb_lease_release(a));
    EXPECT_ST(sb_pool_evict_all(NULL), SB_INVALID_HANDLE);
    return close_pool(m, pool);
}

/* warm opens up to min_idle; the background keeps min_idle idle. */
static int warm_and_min_idle(void) {
    const char *settings[] = {"pool.max_size", "4", "pool.min_idle", "2", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool(settings, &m, &pool)) return 1;
    size_t opened = 99;
    EXPECT_OK(sb_pool_warm(pool, &opened));
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.idle >= 2 && s.min_idle == 2);
    EXPECT(opened <= 2); /* the background upkeep may have opened some first */
    EXPECT_OK(sb_pool_warm(pool, NULL));
    /* Take one: the pool opens another in the background to keep 2 idle. */
    sb_lease *a = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
    EVENTUALLY(10000, EXPECT_OK(get_stats(pool, &s)), s.idle == 2 && s.leased == 1);
    EXPECT(s.size == 3);
    EXPECT_OK(sb_lease_release(a));
    /* Raising min_idle by resize is kept warm too. */
    EXPECT_OK(sb_pool_resize(pool, 4, 4));
    EVENTUALLY(10000, EXPECT_OK(get_stats(pool, &s)), s.idle == 4);
    EXPECT_OK(close_pool(m, pool));

    /* warm on a pool whose server is gone returns the connect error. */
    char target[64];
    snprintf(target, sizeof target, "tcp://127.0.0.1:%d", dead_port());
    EXPECT_OK(sb_manager_new(NULL, &m));
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.min_idle", "1"));
    EXPECT_OK(sb_pool_new(m, "dead", target, cfg, &pool));
    EXPECT_OK(sb_config_free(cfg));
    sb_status st = sb_pool_warm(pool, &opened);
    EXPECT(st == SB_UNAVAILABLE || st == SB_IO);
    EXPECT_ERROR_MENTIONS("127.0.0.1");
    return close_pool(m, pool);
}

/* idle_timeout and max_lifetime, with short real durations and run_upkeep. */
static int idle_timeout_and_lifetime(void) {
    const char *keys[2] = {"pool.idle_timeout", "pool.max_lifetime"};
    for (int k = 0; k < 2; k++) {
        const char *settings[] = {"pool.max_size", "2", keys[k], "200ms", NULL};
        sb_manager *m = NULL;
        sb_pool *pool = NULL;
        if (open_pool(settings, &m, &pool)) return 1;
        sb_lease *a = NULL;
        EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
        EXPECT_OK(sb_lease_release(a));
        sb_pool_stats s;
        EVENTUALLY(10000, {
            EXPECT_OK(sb_pool_run_upkeep(pool));
            EXPECT_OK(get_stats(pool, &s));
        }, s.size == 0);
        if (k == 0) {
            EXPECT(s.closed_idle_total == 1);
        } else {
            EXPECT(s.closed_lifetime_total == 1);
        }
        if (close_pool(m, pool)) return 1;
    }
    return 0;
}

/* Waiters are served by priority, then in arrival order. */
static int priority_then_arrival(void) {
    const char *settings[] = {"pool.max_size", "1", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool(settings, &m, &pool)) return 1;
    sb_lease *held = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &held));
    atomic_int order = 0;
    /* Arrive in this order: low, normal-a, high, normal-b. */
    int32_t prios[4] = {-5, 0, 10, 0};
    acquirer w[4];
    pthread_t t[4];
    sb_pool_stats s;
    for (int i = 0; i < 4; i++) {
        w[i] = (acquirer){.pool = pool, .timeout_ms = 20000, .priority = prios[i],
                          .order = &order, .got_order = -1, .hold_ms = 5};
        EXPECT(pthread_create(&t[i], NULL, acquire_thread, &w[i]) == 0);
        EVENTUALLY(10000, EXPECT_OK(get_stats(pool, &s)), s.waiting == (uint64_t)(i + 1));
    }
    EXPECT_OK(sb_lease_release(held));
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        if (w[i].status != SB_OK) FAILF("waiter %d: %s: %s", i, status_name(w[i].status), w[i].error);
    }
    /* high first, then the two priority-0 ones in arrival order, then low. */
    if (!(w[2].got_order == 0 && w[1].got_order == 1 && w[3].got_order == 2 &&
          w[0].got_order == 3))
        FAILF("served in order high=%d normal-a=%d normal-b=%d low=%d", w[2].got_order,
              w[1].got_order, w[3].got_order, w[0].got_order);
    return close_pool(m, pool);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (echo_start(&server) != 0) {
        fprintf(stderr, "cannot start the echo server\n");
        return 1;
    }
    RUN(stats_fields);
    RUN(stats_struct_size);
    RUN(overflow_closes_on_return);
    RUN(resize_grow_and_shrink);
    RUN(evict_all_closes_idle_now_and_leased_on_return);
    RUN(warm_and_min_idle);
    RUN(idle_timeout_and_lifetime);
    RUN(priority_then_arrival);
    echo_stop(&server);
    return harness_summary();
}
