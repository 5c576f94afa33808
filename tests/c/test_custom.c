/* Custom connectors through the C API: the pool manages the program's own objects
 * (here small heap structs) made, checked and closed by C callbacks. Checks connect
 * counts, reuse, a failing check replacing the object, close exactly once per object
 * (each close frees its object: a second close would be a double free under valgrind
 * and ASan), free_userdata exactly once (also when creating the pool fails), the
 * connect error message reaching sb_last_error, the threads callbacks run on, and
 * what blocking calls do inside a callback. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_OBJECTS 64

typedef struct {
    int id;
    char endpoint[64];
} db_conn;

typedef struct {
    atomic_int connects;
    atomic_int checks;
    atomic_int closes;
    atomic_int frees;
    atomic_int fail_check;   /* check returns SB_UNAVAILABLE */
    atomic_int fail_connect; /* connect returns this status (0: succeed) */
    atomic_int connect_delay_ms; /* connect sleeps this long first */
    atomic_int closed[MAX_OBJECTS + 1]; /* closes per object id */
    atomic_int connect_on_caller; /* a connect ran on the test's main thread */
    pthread_t main_thread;
    /* Calls made from inside the connect callback, when set. */
    sb_pool *probe_pool;
    atomic_int probe_acquire_status;
    atomic_int probe_warm_status;
    atomic_int probe_stats_status;
} counters;

static void reset(counters *c) {
    memset(c, 0, sizeof *c);
    c->main_thread = pthread_self();
    c->probe_acquire_status = -1;
    c->probe_warm_status = -1;
    c->probe_stats_status = -1;
}

static int32_t db_connect(void *userdata, const char *endpoint, void **out_conn, char *errbuf,
                          size_t errlen) {
    counters *c = userdata;
    if (pthread_equal(pthread_self(), c->main_thread)) atomic_store(&c->connect_on_caller, 1);
    if (c->probe_pool != NULL) {
        sb_lease *lease = NULL;
        atomic_store(&c->probe_acquire_status, sb_pool_acquire(c->probe_pool, 100, &lease));
        sb_lease_release(lease);
        atomic_store(&c->probe_warm_status, sb_pool_warm(c->probe_pool, NULL));
        sb_pool_stats s;
        memset(&s, 0, sizeof s);
        s.struct_size = sizeof s;
        atomic_store(&c->probe_stats_status, sb_pool_get_stats(c->probe_pool, &s));
    }
    int delay = atomic_load(&c->connect_delay_ms);
    if (delay > 0) sleep_ms(delay);
    int fail = atomic_load(&c->fail_connect);
    if (fail != 0) {
        snprintf(errbuf, errlen, "db at %s refused: auth failed for user \"test\"", endpoint);
        return fail;
    }
    int id = atomic_fetch_add(&c->connects, 1) + 1;
    if (id > MAX_OBJECTS) {
        snprintf(errbuf, errlen, "too many objects in this test");
        return SB_RESOURCE_EXHAUSTED;
    }
    db_conn *conn = malloc(sizeof *conn);
    if (conn == NULL) return SB_INTERNAL;
    conn->id = id;
    snprintf(conn->endpoint, sizeof conn->endpoint, "%s", endpoint);
    *out_conn = conn;
    return SB_OK;
}

static int32_t db_check(void *userdata, void *conn) {
    counters *c = userdata;
    (void)conn;
    atomic_fetch_add(&c->checks, 1);
    return atomic_load(&c->fail_check) ? SB_UNAVAILABLE : SB_OK;
}

static void db_close(void *userdata, void *conn) {
    counters *c = userdata;
    db_conn *d = conn;
    if (d->id >= 1 && d->id <= MAX_OBJECTS) atomic_fetch_add(&c->closed[d->id], 1);
    atomic_fetch_add(&c->closes, 1);
    free(d); /* a second close of the same object would be a double free */
}

static void db_free(void *userdata) {
    counters *c = userdata;
    atomic_fetch_add(&c->frees, 1);
}

static sb_connector connector_for(counters *c) {
    sb_connector k;
    memset(&k, 0, sizeof k);
    k.connect = db_connect;
    k.check = db_check;
    k.close = db_close;
    k.userdata = c;
    k.free_userdata = db_free;
    return k;
}

/* Each object closed exactly once, and as many closes as connects. */
static int closed_once_each(counters *c) {
    int n = atomic_load(&c->connects);
    EXPECT(atomic_load(&c->closes) == n);
    for (int id = 1; id <= n && id <= MAX_OBJECTS; id++) {
        if (atomic_load(&c->closed[id]) != 1)
            FAILF("object %d closed %d times", id, atomic_load(&c->closed[id]));
    }
    return 0;
}

static int lifecycle(void) {
    static counters c;
    reset(&c);
    sb_connector k = connector_for(&c);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.max_size", "2"));
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://primary", cfg, &k, &pool));
    EXPECT_OK(sb_config_free(cfg));
    EXPECT(atomic_load(&c.connects) == 0); /* nothing opened before the first acquire */

    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    void *obj = NULL;
    EXPECT_OK(sb_lease_conn(lease, &obj));
    db_conn *d = obj;
    EXPECT(d != NULL && d->id == 1);
    EXPECT(strcmp(d->endpoint, "db://primary") == 0);
    EXPECT(atomic_load(&c.connect_on_caller) == 0); /* connect ran on another thread */
    int fd = -1;
    EXPECT_ST(sb_lease_fd(lease, &fd), SB_FAILED_PRECONDITION);
    EXPECT_ERROR_MENTIONS("custom");
    size_t sent = 0;
    EXPECT_ST(sb_lease_send(lease, (const uint8_t *)"x", 1, &sent), SB_FAILED_PRECONDITION);
    EXPECT_OK(sb_lease_release(lease));

    /* Reacquire soon after: the same object, no new connect, no check (fresh). */
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_conn(lease, &obj));
    EXPECT(((db_conn *)obj)->id == 1);
    EXPECT(atomic_load(&c.connects) == 1);
    /* A second lease opens a second object. */
    sb_lease *second = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &second));
    EXPECT_OK(sb_lease_conn(second, &obj));
    EXPECT(((db_conn *)obj)->id == 2);
    /* Discard closes it (once), and frees its place. */
    EXPECT_OK(sb_lease_discard(second));
    EXPECT(atomic_load(&c.closed[2]) == 1);
    EXPECT_OK(sb_lease_release(lease));

    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.created_total == 2 && s.closed_discarded_total == 1 && s.idle == 1);

    /* Freeing the pool closes the idle object; userdata is not freed while the pool
     * is alive, and exactly once by the time the manager is freed. */
    EXPECT(atomic_load(&c.frees) == 0);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT(atomic_load(&c.closed[1]) == 1);
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c.frees) == 1);
    return closed_once_each(&c);
}

/* A failing check closes the object and the acquirer gets a fresh one. */
static int failed_check_replaces(void) {
    static counters c;
    reset(&c);
    sb_connector k = connector_for(&c);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.validate_after", "0")); /* check every checkout */
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://primary", cfg, &k, &pool));
    EXPECT_OK(sb_config_free(cfg));
    sb_lease *lease = NULL;
    void *obj = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    /* Passing check: same object, checked once. */
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_conn(lease, &obj));
    EXPECT(((db_conn *)obj)->id == 1);
    EXPECT(atomic_load(&c.checks) >= 1);
    EXPECT_OK(sb_lease_release(lease));
    /* Failing check: object 1 is closed and object 2 handed out. */
    atomic_store(&c.fail_check, 1);
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_conn(lease, &obj));
    EXPECT(((db_conn *)obj)->id == 2);
    EXPECT(atomic_load(&c.closed[1]) == 1);
    atomic_store(&c.fail_check, 0);
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.probe_failed_total >= 1 && s.closed_broken_total >= 1);
    EXPECT(s.created_total == 2 && s.leased == 1);
    EXPECT_OK(sb_lease_release(lease));
    /* evict_all closes the idle object too (through the close callback). */
    EXPECT_OK(sb_pool_evict_all(pool));
    EXPECT(atomic_load(&c.closed[2]) == 1);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c.frees) == 1);
    return closed_once_each(&c);
}

/* The connect callback's status and message reach the acquirer. */
static int connect_error_reaches_last_error(void) {
    static counters c;
    reset(&c);
    sb_connector k = connector_for(&c);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://replica", NULL, &k, &pool));
    atomic_store(&c.fail_connect, SB_UNAVAILABLE);
    sb_lease *lease = NULL;
    long long t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, 5000, &lease), SB_UNAVAILABLE);
    EXPECT(now_ms() - t0 < 5000); /* failed with the connect, not at the deadline */
    EXPECT_ERROR_MENTIONS("auth failed for user \"test\"");
    EXPECT_ERROR_MENTIONS("db://replica");
    EXPECT(lease == NULL);
    /* The endpoint now backs off (backoff.initial, 1 s): the next acquire fails fast
     * without a connect, naming the backoff and the last error. */
    t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, 5000, &lease), SB_UNAVAILABLE);
    EXPECT(now_ms() - t0 < 4000); /* not at the 5 s deadline */
    EXPECT_ERROR_MENTIONS("backing off");
    EXPECT_ERROR_MENTIONS("auth failed");
    /* reset_backoff lets the next acquire connect at once. */
    EXPECT_OK(sb_pool_reset_backoff(pool));
    atomic_store(&c.fail_connect, SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_pool_acquire(pool, 5000, &lease), SB_INVALID_ARGUMENT);
    atomic_store(&c.fail_connect, 0);
    EXPECT_OK(sb_pool_reset_backoff(pool));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.connect_failed_total == 2);
    EXPECT_OK(sb_lease_release(lease));
    /* Manager freed first: it closes the pool (and its idle object), but the pool
     * handle still holds the connector; freeing the handle frees userdata, once. */
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c.closes) == 1);
    EXPECT(atomic_load(&c.frees) == 0);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT(atomic_load(&c.frees) == 1);
    return closed_once_each(&c);
}

/* A connect that finishes after pool.connect_timeout: the acquirer gets SB_TIMEOUT
 * and the late object is still closed (once), not leaked. */
static int late_connect_is_closed(void) {
    static counters c;
    reset(&c);
    sb_connector k = connector_for(&c);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.connect_timeout", "100ms"));
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://slow", cfg, &k, &pool));
    EXPECT_OK(sb_config_free(cfg));
    atomic_store(&c.connect_delay_ms, 400);
    sb_lease *lease = NULL;
    EXPECT_ST(sb_pool_acquire(pool, 5000, &lease), SB_TIMEOUT);
    EXPECT_ERROR_MENTIONS("connect_timeout");
    EVENTUALLY(10000, (void)0, atomic_load(&c.connects) == 1 && atomic_load(&c.closes) == 1);
    atomic_store(&c.connect_delay_ms, 0);
    EXPECT_OK(sb_pool_reset_backoff(pool)); /* the timed-out connect counts as failed */
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c.frees) == 1);
    return closed_once_each(&c);
}

/* A lease that outlives its pool and manager: its object is closed on release, and
 * userdata freed after that close. */
static int lease_outlives_manager(void) {
    static counters c;
    reset(&c);
    sb_connector k = connector_for(&c);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://primary", NULL, &k, &pool));
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_free(m));
    void *obj = NULL;
    EXPECT_OK(sb_lease_conn(lease, &obj)); /* still usable */
    EXPECT(((db_conn *)obj)->id == 1);
    EXPECT(atomic_load(&c.closes) == 0 && atomic_load(&c.frees) == 0);
    EXPECT_OK(sb_lease_release(lease));
    EXPECT(atomic_load(&c.closes) == 1 && atomic_load(&c.frees) == 1);
    return closed_once_each(&c);
}

/* free_userdata runs exactly once even when creating the pool fails. */
static int userdata_freed_when_creation_fails(void) {
    static counters c;
    reset(&c);
    sb_manager *m = NULL;
    sb_pool *pool = NULL, *dup = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    sb_connector k = connector_for(&c);
    k.connect = NULL;
    EXPECT_ST(sb_pool_new_custom(m, "db", "db://x", NULL, &k, &pool), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("connect");
    EXPECT(atomic_load(&c.frees) == 1);

    static counters c2;
    reset(&c2);
    sb_connector k2 = connector_for(&c2);
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://x", NULL, &k2, &pool));
    static counters c3;
    reset(&c3);
    sb_connector k3 = connector_for(&c3);
    EXPECT_ST(sb_pool_new_custom(m, "db", "db://x", NULL, &k3, &dup), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("already exists");
    EXPECT(atomic_load(&c3.frees) == 1 && atomic_load(&c2.frees) == 0);
    EXPECT_ST(sb_pool_new_custom(m, "db2", "db://x", NULL, NULL, &dup), SB_INVALID_ARGUMENT);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c2.frees) == 1);
    return 0;
}

/* Inside a connect callback (a blocking-pool thread of the runtime), a call that
 * would wait on the runtime fails with SB_FAILED_PRECONDITION; a non-blocking one
 * works. */
static int blocking_calls_inside_callbacks(void) {
    static counters other_c, c;
    reset(&other_c);
    reset(&c);
    sb_manager *m = NULL;
    sb_pool *other = NULL, *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    sb_connector ko = connector_for(&other_c);
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.min_idle", "0"));
    EXPECT_OK(sb_pool_new_custom(m, "other", "db://other", cfg, &ko, &other));
    EXPECT_OK(sb_config_free(cfg));
    c.probe_pool = other;
    sb_connector k = connector_for(&c);
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://primary", NULL, &k, &pool));
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT(atomic_load(&c.probe_acquire_status) == SB_FAILED_PRECONDITION);
    EXPECT(atomic_load(&c.probe_warm_status) == SB_FAILED_PRECONDITION);
    EXPECT(atomic_load(&c.probe_stats_status) == SB_OK);
    EXPECT(atomic_load(&other_c.connects) == 0);
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_pool_free(other));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c.frees) == 1 && atomic_load(&other_c.frees) == 1);
    return closed_once_each(&c);
}

/* sb_lease_conn on a socket lease is a precondition failure. */
static int socket_lease_has_no_object(void) {
    echo_server server;
    if (echo_start(&server) != 0) FAILF("cannot start the echo server");
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new(m, "echo", server.target, NULL, &pool));
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    void *obj = (void *)&server;
    EXPECT_ST(sb_lease_conn(lease, &obj), SB_FAILED_PRECONDITION);
    EXPECT_ERROR_MENTIONS("socket");
    EXPECT(obj == (void *)&server); /* untouched */
    EXPECT_ST(sb_lease_conn(lease, NULL), SB_INVALID_ARGUMENT);
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_ST(sb_lease_conn(lease, &obj), SB_INVALID_HANDLE);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_free(m));
    echo_stop(&server);
    return 0;
}

/* Many threads through a custom pool of 2 with a check on every checkout. */
typedef struct {
    sb_pool *pool;
    int ok;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        sb_lease *lease = NULL;
        if (sb_pool_acquire(w->pool, 10000, &lease) != SB_OK) return NULL;
        void *obj = NULL;
        if (sb_lease_conn(lease, &obj) == SB_OK && obj != NULL) w->ok++;
        if (i % 10 == 9) {
            sb_lease_discard(lease);
        } else {
            sb_lease_release(lease);
        }
    }
    return NULL;
}

static int threads_share_a_custom_pool(void) {
    static counters c;
    reset(&c);
    sb_connector k = connector_for(&c);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.max_size", "2"));
    EXPECT_OK(sb_config_set(cfg, "pool.validate_after", "0"));
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "db", "db://primary", cfg, &k, &pool));
    EXPECT_OK(sb_config_free(cfg));
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.pool = pool, .ok = 0};
        EXPECT(pthread_create(&t[i], NULL, work, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) EXPECT(w[i].ok == 50);
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.size <= 2 && s.leased == 0 && s.closed_discarded_total == 20);
    EXPECT(atomic_load(&c.connects) <= MAX_OBJECTS);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c.frees) == 1);
    return closed_once_each(&c);
}

/* HikariCP's spike test through the C boundary: 50 threads at once against a 150 ms
 * connect, each holding its lease 20 ms (more than 5 warm objects can absorb), end
 * with far fewer than 50 objects: returned objects serve waiters while only a few new
 * ones open (pool.max_connecting). Uncapped, all 50 would open. */
static sb_pool *spike_pool;
static atomic_int spike_errors;

static void *spike_user(void *arg) {
    (void)arg;
    sb_lease *lease = NULL;
    if (sb_pool_acquire(spike_pool, 30000, &lease) != SB_OK) {
        atomic_fetch_add(&spike_errors, 1);
        return NULL;
    }
    sleep_ms(20);
    if (sb_lease_release(lease) != SB_OK) atomic_fetch_add(&spike_errors, 1);
    return NULL;
}

static int demand_spike_opens_only_what_it_needs(void) {
    static counters c;
    reset(&c);
    atomic_store(&c.connect_delay_ms, 150);
    sb_connector k = connector_for(&c);
    sb_manager *m = NULL;
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "pool.max_size", "50"));
    EXPECT_OK(sb_config_set(cfg, "pool.min_idle", "5"));
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "spike", "db://x", cfg, &k, &spike_pool));
    EXPECT_OK(sb_config_free(cfg));
    EXPECT_OK(sb_pool_warm(spike_pool, NULL));
    atomic_store(&spike_errors, 0);
    pthread_t threads[50];
    for (int i = 0; i < 50; i++) EXPECT(pthread_create(&threads[i], NULL, spike_user, NULL) == 0);
    for (int i = 0; i < 50; i++) pthread_join(threads[i], NULL);
    EXPECT(atomic_load(&spike_errors) == 0);
    sb_pool_stats s;
    EXPECT_OK(get_stats(spike_pool, &s));
    if (s.acquired_total != 50) FAILF("acquired %llu, want 50", (unsigned long long)s.acquired_total);
    if (s.created_total >= 25)
        FAILF("a spike of 50 opened %llu objects", (unsigned long long)s.created_total);
    EXPECT_OK(sb_pool_free(spike_pool));
    EXPECT_OK(sb_manager_free(m));
    return closed_once_each(&c);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(lifecycle);
    RUN(failed_check_replaces);
    RUN(connect_error_reaches_last_error);
    RUN(late_connect_is_closed);
    RUN(lease_outlives_manager);
    RUN(userdata_freed_when_creation_fails);
    RUN(blocking_calls_inside_callbacks);
    RUN(socket_lease_has_no_object);
    RUN(threads_share_a_custom_pool);
    RUN(demand_spike_opens_only_what_it_needs);
    return harness_summary();
}
