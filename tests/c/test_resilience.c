/* Breakers, backoff, health and multi-endpoint pools through the C API, under real
 * faults: the loopback echo server behind the fault proxy (tests/fixtures/
 * fault_proxy.py via tests/c/fault_proxy.h), a dead port, and a custom connector whose
 * connects the test holds on a gate. One case per "Checked by" scenario of issue 4:
 * endpoint down at start, blackhole, reset mid-lease, slow calls tripping the breaker,
 * HALF_OPEN admitting exactly its probes, a flapping endpoint, two endpoints with one
 * down, operator commands, health checks. Waits are bounded; nothing asserts how fast
 * something happened, only that it happened within its deadline plus a generous margin
 * (these run under valgrind too). */
#include "harness.h"

#include "fault_proxy.h"

#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

static echo_server server;



static sb_breaker_state breaker_of(sb_pool *pool, const char *endpoint) {
    sb_breaker_state s = -1;
    if (sb_pool_breaker_state(pool, endpoint, &s) != SB_OK) return -1;
    return s;
}

static int endpoint_health(sb_pool *pool, size_t index, sb_endpoint_health *out) {
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    EXPECT_OK(sb_pool_endpoint_health(pool, index, out));
    EXPECT(out->struct_size == sizeof *out);
    return 0;
}

/* Events of `kind` polled within `ms` into `out` (at most `cap`; others skipped). */
static size_t events_of(sb_manager *m, sb_event_kind kind, int ms, sb_event *out, size_t cap) {
    size_t n = 0;
    long long deadline = now_ms() + ms;
    for (int i = 0; i < 100000 && n < cap; i++) {
        long long left = deadline - now_ms();
        sb_event ev;
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, left > 0 ? (uint64_t)left : 0, &ev) != SB_OK) break;
        if (ev.kind == kind) out[n++] = ev;
    }
    return n;
}

/* The lease's endpoint into `buf` (256 bytes), or "" on failure. */
static const char *endpoint_of(sb_lease *lease, char *buf) {
    size_t need = 0;
    if (sb_lease_endpoint(lease, buf, 256, &need) != SB_OK) buf[0] = '\0';
    return buf;
}

/* One echo round trip of "hi\n" on the lease: 0 and the time it took in *took_ms,
 * or the failed call's status. */
static sb_status echo_once(sb_lease *lease, long long *took_ms) {
    char back[8];
    long long t0 = now_ms();
    sb_status st = lease_round_trip(lease, "hi\n", back);
    if (took_ms != NULL) *took_ms = now_ms() - t0;
    if (st == SB_OK && strcmp(back, "hi\n") != 0) return SB_INTERNAL;
    return st;
}


#define START_PROXY(fp)                                                                \
    do {                                                                               \
        if (fault_proxy_start(&(fp), server.port) != 0) FAILF("cannot start the proxy"); \
    } while (0)

#define PROXY(fp, cmd)                                                                 \
    do {                                                                               \
        char reply_[256];                                                              \
        if (fault_proxy_command(&(fp), (cmd), reply_, sizeof reply_) != 0)             \
            FAILF("proxy command \"%s\": %s", (cmd), reply_);                          \
    } while (0)

/* ---- endpoint down at start ---------------------------------------------------- */

static int endpoint_down_at_start_body(fault_proxy *fp) {
    PROXY(*fp, "refuse");
    const char *settings[] = {"pool.acquire_timeout", "2s", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("down", fp->target, settings, &m, &pool)) return 1; /* builds */

    sb_lease *lease = NULL;
    long long t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, -1, &lease), SB_UNAVAILABLE); /* pool's 2 s timeout */
    EXPECT(now_ms() - t0 < 2000 + 5000);
    EXPECT_ERROR_MENTIONS(fp->target);
    EXPECT_ERROR_MENTIONS("refused");
    EXPECT(lease == NULL);
    /* Backing off now: the next one fails at once, naming the backoff and the cause. */
    t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, -1, &lease), SB_UNAVAILABLE);
    EXPECT(now_ms() - t0 < 1500); /* well before the 2 s timeout */
    EXPECT_ERROR_MENTIONS("backing off");
    EXPECT_ERROR_MENTIONS("refused");

    sb_pool_health h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    EXPECT_OK(sb_pool_get_health(pool, &h));
    EXPECT(h.struct_size == sizeof h && h.endpoint_count == 1);
    EXPECT(h.failures == 1 && h.calls == 1 && h.success_rate == 0.0);
    EXPECT(h.last_success_unix_ns == 0 && h.connected_since_unix_ns == 0);
    sb_endpoint_health e;
    if (endpoint_health(pool, 0, &e)) return 1;
    EXPECT(strcmp(e.endpoint, fp->target) == 0);
    EXPECT(e.state == SB_CONN_RECONNECTING);
    EXPECT(strcmp(sb_conn_state_str(e.state), "reconnecting") == 0);
    EXPECT(e.breaker == SB_BREAKER_CLOSED);
    EXPECT(e.backoff_remaining_ns > 0);
    EXPECT(e.failures == 1 && e.open_connections == 0);
    EXPECT(strstr(e.last_error, "refused") != NULL);
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.endpoint_count == 1 && s.connect_failed_total == 1);

    /* The endpoint's state changes, in order, with the endpoint named. */
    sb_event ev[8];
    size_t n = events_of(m, SB_EVENT_ENDPOINT_STATE, 200, ev, 8);
    EXPECT(n == 2);
    EXPECT(strcmp(ev[0].old_state, "idle") == 0 && strcmp(ev[0].new_state, "connecting") == 0);
    EXPECT(strcmp(ev[1].old_state, "connecting") == 0);
    EXPECT(strcmp(ev[1].new_state, "reconnecting") == 0);
    EXPECT(strcmp(ev[0].endpoint, fp->target) == 0 && strcmp(ev[0].pool, "down") == 0);
    EXPECT(ev[0].session_id == 0 && ev[0].stream[0] == '\0');
    long accepted = -1;
    EXPECT(fault_proxy_stats(fp, &accepted, NULL, NULL, 0) == 0 && accepted == 0);

    /* The server comes back: after reset_backoff the next acquire connects. */
    PROXY(*fp, "pass");
    EXPECT_OK(sb_pool_reset_backoff(pool));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(echo_once(lease, NULL));
    EXPECT_OK(sb_lease_release(lease));
    if (endpoint_health(pool, 0, &e)) return 1;
    EXPECT(e.state == SB_CONN_CONNECTED && e.backoff_remaining_ns == 0);
    EXPECT(e.connected_since_unix_ns > 0 && e.last_success_unix_ns > 0);
    return close_pool(m, pool);
}

static int endpoint_down_at_start(void) {
    fault_proxy fp;
    START_PROXY(fp);
    int failed = endpoint_down_at_start_body(&fp);
    fault_proxy_stop(&fp);
    return failed;
}

/* ---- blackhole ------------------------------------------------------------------ */

static int blackhole_body(fault_proxy *fp) {
    const char *settings[] = {"pool.max_size", "1", "pool.connect_timeout", "300ms", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("bh", fp->target, settings, &m, &pool)) return 1;
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(echo_once(lease, NULL));
    PROXY(*fp, "blackhole");

    /* A recv with a timeout returns SB_TIMEOUT on time. */
    EXPECT_OK(sb_lease_set_timeout(lease, 200));
    EXPECT_OK(sb_lease_send_all(lease, (const uint8_t *)"hi\n", 3));
    uint8_t buf[8];
    size_t n = 99;
    long long t0 = now_ms();
    EXPECT_ST(sb_lease_recv(lease, buf, sizeof buf, &n), SB_TIMEOUT);
    EXPECT(now_ms() - t0 < 200 + 3000);
    EXPECT(n == 99); /* untouched on failure */

    /* The pool is full (one lease): a second caller times out on time. */
    sb_lease *second = NULL;
    t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, 300, &second), SB_TIMEOUT);
    EXPECT(now_ms() - t0 < 300 + 3000);
    EXPECT_OK(sb_lease_discard(lease));

    /* A new connect is accepted by the proxy and never answered: the lease comes back
     * (TCP connects), and its first recv times out on time too. */
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(sb_lease_set_timeout(lease, 200));
    EXPECT_OK(sb_lease_send_all(lease, (const uint8_t *)"hi\n", 3));
    t0 = now_ms();
    EXPECT_ST(sb_lease_recv(lease, buf, sizeof buf, &n), SB_TIMEOUT);
    EXPECT(now_ms() - t0 < 200 + 3000);
    EXPECT_OK(sb_lease_discard(lease));
    return close_pool(m, pool);
}

static int blackhole(void) {
    fault_proxy fp;
    START_PROXY(fp);
    int failed = blackhole_body(&fp);
    fault_proxy_stop(&fp);
    return failed;
}

/* ---- reset mid-lease ------------------------------------------------------------ */

static int reset_mid_lease_body(fault_proxy *fp) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("rst", fp->target, NULL, &m, &pool)) return 1;
    sb_lease *lease = NULL;
    uint64_t id = 0, fresh_id = 0;
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(echo_once(lease, NULL));
    EXPECT_OK(sb_lease_id(lease, &id));
    PROXY(*fp, "reset_existing");

    /* The RST arrives shortly; the next call on the lease fails (not a timeout). */
    EXPECT_OK(sb_lease_set_timeout(lease, 1000));
    sb_status failed = SB_OK;
    long long deadline = now_ms() + 5000;
    for (int i = 0; i < 100 && failed == SB_OK && now_ms() < deadline; i++) {
        failed = sb_lease_send_all(lease, (const uint8_t *)"x\n", 2);
        if (failed != SB_OK) break;
        uint8_t buf[8];
        size_t n = 0;
        failed = sb_lease_recv(lease, buf, sizeof buf, &n);
        if (failed == SB_TIMEOUT) failed = SB_OK;
        if (failed == SB_OK && n == 0) failed = SB_UNAVAILABLE; /* closed: also a failure */
        sleep_ms(10);
    }
    if (failed == SB_OK) FAILF("no call failed after the proxy reset the connection");
    printf("    after the reset: %s: %s\n", status_name(failed), last_error());

    /* Released, not discarded: the pool closes it as broken instead of reusing it. */
    EXPECT_OK(sb_lease_release(lease));
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.closed_broken_total == 1 && s.idle == 0);
    sb_endpoint_health e;
    if (endpoint_health(pool, 0, &e)) return 1;
    EXPECT(e.failures == 1); /* the broken lease counted against the endpoint */

    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(sb_lease_id(lease, &fresh_id));
    EXPECT(fresh_id != id);
    EXPECT_OK(echo_once(lease, NULL));
    EXPECT_OK(sb_lease_release(lease));
    return close_pool(m, pool);
}

static int reset_mid_lease(void) {
    fault_proxy fp;
    START_PROXY(fp);
    int failed = reset_mid_lease_body(&fp);
    fault_proxy_stop(&fp);
    return failed;
}

/* ---- slow calls trip the breaker ------------------------------------------------- */

static int slow_calls_trip_the_breaker_body(fault_proxy *fp) {
    const char *settings[] = {"breaker.failure_threshold",
                              "0",
                              "breaker.slow_call_duration",
                              "50ms",
                              "breaker.slow_call_rate_threshold",
                              "50",
                              "breaker.minimum_calls",
                              "4",
                              "breaker.open_wait",
                              "30s",
                              "health.interval",
                              "0",
                              NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("slow", fp->target, settings, &m, &pool)) return 1;
    PROXY(*fp, "latency 150");
    /* The window holds the (fast) connect and the slow round trips, reported by the
     * program: with a minimum of four calls it opens on the third slow one. */
    int slow_calls = 0;
    while (breaker_of(pool, NULL) == SB_BREAKER_CLOSED && slow_calls < 10) {
        sb_lease *lease = NULL;
        long long took = 0;
        EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
        EXPECT_OK(echo_once(lease, &took));
        EXPECT(took >= 100);
        EXPECT_OK(sb_lease_report(lease, true, (uint64_t)took * 1000000ull));
        EXPECT_OK(sb_lease_release(lease));
        slow_calls++;
    }
    EXPECT(slow_calls == 3);
    EXPECT(breaker_of(pool, NULL) == SB_BREAKER_OPEN);
    EXPECT(strcmp(sb_breaker_state_str(SB_BREAKER_OPEN), "open") == 0);

    sb_lease *lease = NULL;
    long long t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, 2000, &lease), SB_UNAVAILABLE);
    EXPECT(now_ms() - t0 < 1500); /* fast, not at the deadline */
    EXPECT_ERROR_MENTIONS("breaker open");

    sb_event ev[8];
    size_t n = events_of(m, SB_EVENT_BREAKER_STATE, 200, ev, 8);
    EXPECT(n == 1);
    EXPECT(strcmp(ev[0].old_state, "closed") == 0 && strcmp(ev[0].new_state, "open") == 0);
    EXPECT(strstr(ev[0].message, "slow-call rate") != NULL);
    EXPECT(strcmp(ev[0].endpoint, fp->target) == 0 && strcmp(ev[0].pool, "slow") == 0);

    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.idle == 0); /* the open breaker evicted the idle connection */
    sb_endpoint_health e;
    if (endpoint_health(pool, 0, &e)) return 1;
    EXPECT(e.breaker == SB_BREAKER_OPEN && e.breaker_opened == 1);
    EXPECT(e.breaker_rejected >= 1); /* the acquire it refused */
    EXPECT(e.latency_ewma_ns >= 50ull * 1000000);
    size_t healthy = 99;
    EXPECT_OK(sb_pool_healthy_endpoints(pool, NULL, 0, &healthy));
    EXPECT(healthy == 0); /* an open breaker is not healthy */

    char *text = metrics_text(m);
    EXPECT(text != NULL);
    char line[256];
    snprintf(line, sizeof line,
             "switchboard_endpoint_breaker_state{pool=\"slow\",endpoint=\"%s\",state=\"open\"} 1",
             fp->target);
    int found = strstr(text, line) != NULL;
    if (!found) fprintf(stderr, "%s", text);
    free(text);
    EXPECT(found);
    return close_pool(m, pool);
}

static int slow_calls_trip_the_breaker(void) {
    fault_proxy fp;
    START_PROXY(fp);
    int failed = slow_calls_trip_the_breaker_body(&fp);
    fault_proxy_stop(&fp);
    return failed;
}

/* ---- HALF_OPEN admits exactly its probes ---------------------------------------- */

/* A custom connector whose connects fail while `fail` is set, and otherwise wait for
 * a pass through `gate` (opened by the test). */
typedef struct {
    atomic_int started;
    atomic_int fail;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int gate; /* passes left, under lock */
} gated;

static int32_t gated_connect(void *userdata, const char *endpoint, void **out_conn,
                             char *errbuf, size_t errlen) {
    gated *g = userdata;
    atomic_fetch_add(&g->started, 1);
    if (atomic_load(&g->fail)) {
        snprintf(errbuf, errlen, "refused (test) by %s", endpoint);
        return SB_UNAVAILABLE;
    }
    pthread_mutex_lock(&g->lock);
    long long deadline = now_ms() + 20000; /* never hang the test */
    while (g->gate == 0 && now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cond, &g->lock, &ts);
    }
    int passed = g->gate > 0;
    if (passed) g->gate--;
    pthread_mutex_unlock(&g->lock);
    if (!passed) {
        snprintf(errbuf, errlen, "the test never opened the gate");
        return SB_TIMEOUT;
    }
    int *conn = malloc(sizeof *conn);
    if (conn == NULL) return SB_INTERNAL;
    *conn = atomic_load(&g->started);
    *out_conn = conn;
    return SB_OK;
}

static void gated_close(void *userdata, void *conn) {
    (void)userdata;
    free(conn);
}

typedef struct {
    sb_pool *pool;
    sb_lease *lease;
    sb_status status;
    char error[512];
    atomic_int done;
} acquirer;

static void *acquire_thread(void *arg) {
    acquirer *a = arg;
    a->status = sb_pool_acquire(a->pool, 10000, &a->lease);
    if (a->status != SB_OK) snprintf(a->error, sizeof a->error, "%s", last_error());
    atomic_store(&a->done, 1);
    return NULL;
}

static int half_open_admits_exactly_its_probes(void) {
    static gated g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    atomic_store(&g.fail, 1);
    sb_connector k;
    memset(&k, 0, sizeof k);
    k.connect = gated_connect;
    k.close = gated_close;
    k.userdata = &g;
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    const char *settings[] = {"pool.max_size", "8", "pool.max_connecting", "8",
                              "breaker.failure_threshold", "1", "breaker.open_wait", "200ms",
                              "breaker.half_open_probes", "2", "backoff.initial", "10ms",
                              "backoff.max", "20ms", "health.interval", "0", NULL};
    for (size_t i = 0; settings[i] != NULL; i += 2) {
        EXPECT_OK(sb_config_set(cfg, settings[i], settings[i + 1]));
    }
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_pool_new_custom(m, "half", "svc", cfg, &k, &pool));
    EXPECT_OK(sb_config_free(cfg));

    /* One failed connect opens the breaker (failure_threshold 1). */
    sb_lease *lease = NULL;
    EXPECT_ST(sb_pool_acquire(pool, 2000, &lease), SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS("refused (test)");
    EXPECT(breaker_of(pool, NULL) == SB_BREAKER_OPEN);
    /* Still open: refused without a connect. */
    int before = atomic_load(&g.started);
    EXPECT_ST(sb_pool_acquire(pool, 2000, &lease), SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS("breaker open");
    EXPECT(atomic_load(&g.started) == before);

    /* Past the open wait (200 ms; its jitter only shortens it). */
    atomic_store(&g.fail, 0);
    sleep_ms(400);
    acquirer a[5];
    pthread_t t[5];
    memset(a, 0, sizeof a);
    for (int i = 0; i < 5; i++) {
        a[i].pool = pool;
        if (pthread_create(&t[i], NULL, acquire_thread, &a[i]) != 0) FAILF("pthread_create");
    }
    /* Exactly two probes start; the other three are refused at once. */
    int failed = 0;
    long long deadline = now_ms() + 10000;
    int finished = 0;
    while (now_ms() < deadline) {
        finished = 0;
        for (int i = 0; i < 5; i++) finished += atomic_load(&a[i].done);
        if (finished >= 3 && atomic_load(&g.started) >= before + 2) break;
        sleep_ms(10);
    }
    if (atomic_load(&g.started) != before + 2) {
        fprintf(stderr, "    %d connects started, expected 2\n", atomic_load(&g.started) - before);
        failed = 1;
    }
    if (finished != 3) {
        fprintf(stderr, "    %d acquires finished before the gate opened, expected 3\n", finished);
        failed = 1;
    }
    sb_breaker_state during = breaker_of(pool, NULL);
    /* Let the probes through, whatever happened, so the threads end. */
    pthread_mutex_lock(&g.lock);
    g.gate += 2;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < 5; i++) pthread_join(t[i], NULL);
    int ok = 0, refused = 0;
    for (int i = 0; i < 5; i++) {
        if (a[i].status == SB_OK) {
            ok++;
            EXPECT_OK(sb_lease_release(a[i].lease));
        } else if (a[i].status == SB_UNAVAILABLE && strstr(a[i].error, "half_open") != NULL) {
            refused++;
        } else {
            fprintf(stderr, "    acquire %d: %s: %s\n", i, status_name(a[i].status), a[i].error);
        }
    }
    EXPECT(!failed);
    EXPECT(during == SB_BREAKER_HALF_OPEN);
    EXPECT(ok == 2 && refused == 3);
    EXPECT(atomic_load(&g.started) == before + 2); /* no third connect */
    EXPECT(breaker_of(pool, NULL) == SB_BREAKER_CLOSED);

    sb_event ev[8];
    size_t n = events_of(m, SB_EVENT_BREAKER_STATE, 200, ev, 8);
    EXPECT(n == 3);
    EXPECT(strcmp(ev[0].new_state, "open") == 0);
    EXPECT(strcmp(ev[1].new_state, "half_open") == 0);
    EXPECT(strcmp(ev[2].new_state, "closed") == 0);
    EXPECT(strcmp(ev[2].endpoint, "svc") == 0);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_free(m));
    pthread_cond_destroy(&g.cond);
    pthread_mutex_destroy(&g.lock);
    return 0;
}

/* ---- flap ------------------------------------------------------------------------ */

static int flap_body(fault_proxy *fp) {
    const char *settings[] = {"breaker.failure_threshold", "2",     "breaker.open_wait", "100ms",
                              "breaker.max_open_wait",     "300ms", "breaker.half_open_probes",
                              "1",                         "backoff.initial",   "20ms",
                              "backoff.max",               "50ms",  "health.interval",   "30ms",
                              "pool.connect_timeout",      "1s",    NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("flap", fp->target, settings, &m, &pool)) return 1;
    PROXY(*fp, "flap 150 150");
    int saw_open = 0, rounds = 0;
    long long end = now_ms() + 20000;
    while (now_ms() < end && rounds < 2000) {
        rounds++;
        sb_lease *lease = NULL;
        if (sb_pool_acquire(pool, 300, &lease) == SB_OK) {
            /* Each call is a real round trip; one cut by the proxy breaks the lease. */
            int ok = sb_lease_set_timeout(lease, 300) == SB_OK && echo_once(lease, NULL) == SB_OK;
            if (ok) {
                EXPECT_OK(sb_lease_release(lease));
            } else {
                EXPECT_OK(sb_lease_discard(lease));
            }
        }
        saw_open |= breaker_of(pool, NULL) == SB_BREAKER_OPEN;
        if (saw_open && rounds > 50) break;
        sleep_ms(5);
    }
    EXPECT(saw_open);
    PROXY(*fp, "pass");
    /* Recovers on its own (health checks probe in half-open) within max_open_wait +
     * backoff + a generous margin. */
    int closed = 0;
    long long deadline = now_ms() + 10000;
    while (!closed && now_ms() < deadline) {
        sb_lease *lease = NULL;
        if (breaker_of(pool, NULL) == SB_BREAKER_CLOSED &&
            sb_pool_acquire(pool, 300, &lease) == SB_OK) {
            closed = 1;
            EXPECT_OK(sb_lease_release(lease));
        } else {
            sleep_ms(10);
        }
    }
    if (!closed) {
        sb_endpoint_health e;
        if (endpoint_health(pool, 0, &e)) return 1;
        FAILF("not recovered: breaker %s, state %s, last error %s",
              sb_breaker_state_str(e.breaker), sb_conn_state_str(e.state), e.last_error);
    }
    static sb_event ev[512];
    size_t n = events_of(m, SB_EVENT_BREAKER_STATE, 200, ev, 512);
    EXPECT(n >= 3);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(ev[i - 1].new_state, ev[i].old_state) != 0)
            FAILF("breaker event %zu went %s -> %s after one that ended in %s", i,
                  ev[i].old_state, ev[i].new_state, ev[i - 1].new_state);
        EXPECT(ev[i - 1].time_unix_ns <= ev[i].time_unix_ns);
    }
    EXPECT(strcmp(ev[n - 1].new_state, "closed") == 0);
    printf("    %d rounds, %zu breaker events\n", rounds, n);
    return close_pool(m, pool);
}

static int flap(void) {
    fault_proxy fp;
    START_PROXY(fp);
    int failed = flap_body(&fp);
    fault_proxy_stop(&fp);
    return failed;
}

/* ---- two endpoints, one down ------------------------------------------------------ */

static int two_endpoints_one_down(void) {
    char bad[64], target[160];
    snprintf(bad, sizeof bad, "tcp://127.0.0.1:%d", dead_port());
    snprintf(target, sizeof target, "%s,%s", bad, server.target);
    const char *settings[] = {"pool.max_size", "20", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("two", target, settings, &m, &pool)) return 1;
    sb_lease *leases[20];
    char ep[256];
    for (int i = 0; i < 20; i++) {
        EXPECT_OK(sb_pool_acquire(pool, 3000, &leases[i]));
        if (strcmp(endpoint_of(leases[i], ep), server.target) != 0)
            FAILF("acquire %d went to \"%s\", not the healthy %s", i, ep, server.target);
    }
    for (int i = 0; i < 20; i++) EXPECT_OK(echo_once(leases[i], NULL));
    for (int i = 0; i < 20; i++) EXPECT_OK(sb_lease_release(leases[i]));

    sb_endpoint_health best[4];
    memset(best, 0, sizeof best);
    best[0].struct_size = sizeof best[0];
    size_t count = 0;
    EXPECT_OK(sb_pool_healthy_endpoints(pool, best, 4, &count));
    EXPECT(count == 1);
    EXPECT(best[0].struct_size == sizeof best[0]);
    EXPECT(strcmp(best[0].endpoint, server.target) == 0);

    char name[256];
    size_t written = 0;
    EXPECT_OK(sb_pool_select_best(pool, NULL, 0, name, sizeof name, &written));
    EXPECT(strcmp(name, server.target) == 0 && written == strlen(server.target) + 1);
    const char *both[] = {bad, server.target};
    EXPECT_OK(sb_pool_select_best(pool, both, 2, name, sizeof name, &written));
    EXPECT(strcmp(name, server.target) == 0);
    const char *only_bad[] = {bad};
    EXPECT_ST(sb_pool_select_best(pool, only_bad, 1, name, sizeof name, &written),
              SB_UNAVAILABLE);
    EXPECT_ERROR_MENTIONS(bad);
    const char *nowhere[] = {"tcp://nowhere:1"};
    EXPECT_ST(sb_pool_select_best(pool, nowhere, 1, name, sizeof name, &written), SB_NOT_FOUND);
    EXPECT_ERROR_MENTIONS("tcp://nowhere:1");

    sb_pool_health h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    EXPECT_OK(sb_pool_get_health(pool, &h));
    EXPECT(h.endpoint_count == 2);
    sb_endpoint_health e0, e1;
    if (endpoint_health(pool, 0, &e0) || endpoint_health(pool, 1, &e1)) return 1;
    EXPECT(strcmp(e0.endpoint, bad) == 0 && strcmp(e1.endpoint, server.target) == 0);
    EXPECT(e0.state == SB_CONN_RECONNECTING && e1.state == SB_CONN_CONNECTED);
    EXPECT(e1.open_connections == 20 && e1.in_flight == 0);
    EXPECT(e1.quality > e0.quality);
    /* Several endpoints: breaker_state needs a name. */
    sb_breaker_state bs = -1;
    EXPECT_ST(sb_pool_breaker_state(pool, NULL, &bs), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("2 endpoints");
    EXPECT(bs == -1);
    EXPECT_OK(sb_pool_breaker_state(pool, server.target, &bs));
    EXPECT(bs == SB_BREAKER_CLOSED);

    /* Draining the healthy endpoint closes its idle connections. */
    EXPECT_OK(sb_pool_drain(pool, server.target));
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.idle == 0 && s.endpoint_count == 2);
    return close_pool(m, pool);
}

/* ---- operator commands ------------------------------------------------------------ */

static int operator_commands(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("ops", server.target, NULL, &m, &pool)) return 1;
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(sb_lease_release(lease));

    EXPECT_OK(sb_pool_breaker_op(pool, NULL, SB_BREAKER_OP_FORCE_OPEN));
    EXPECT(breaker_of(pool, NULL) == SB_BREAKER_FORCED_OPEN);
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.idle == 0); /* forcing open evicts idle connections */
    long long t0 = now_ms();
    EXPECT_ST(sb_pool_acquire(pool, 2000, &lease), SB_UNAVAILABLE);
    EXPECT(now_ms() - t0 < 1500);
    EXPECT_ERROR_MENTIONS("forced_open");

    EXPECT_OK(sb_pool_breaker_op(pool, NULL, SB_BREAKER_OP_RESET));
    EXPECT(breaker_of(pool, NULL) == SB_BREAKER_CLOSED);
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(echo_once(lease, NULL));
    EXPECT_OK(sb_lease_release(lease));

    EXPECT_OK(sb_pool_breaker_op(pool, server.target, SB_BREAKER_OP_DISABLE));
    EXPECT(breaker_of(pool, NULL) == SB_BREAKER_DISABLED);
    EXPECT_OK(sb_pool_breaker_op(pool, server.target, SB_BREAKER_OP_METRICS_ONLY));
    EXPECT(breaker_of(pool, server.target) == SB_BREAKER_METRICS_ONLY);
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_breaker_op(pool, NULL, SB_BREAKER_OP_RESET));

    /* Each change was an event, in order. */
    sb_event ev[16];
    size_t n = events_of(m, SB_EVENT_BREAKER_STATE, 200, ev, 16);
    EXPECT(n == 5);
    const char *want[][2] = {{"closed", "forced_open"},
                             {"forced_open", "closed"},
                             {"closed", "disabled"},
                             {"disabled", "metrics_only"},
                             {"metrics_only", "closed"}};
    for (size_t i = 0; i < n && i < 5; i++) {
        if (strcmp(ev[i].old_state, want[i][0]) != 0 || strcmp(ev[i].new_state, want[i][1]) != 0)
            FAILF("event %zu: %s -> %s, expected %s -> %s", i, ev[i].old_state, ev[i].new_state,
                  want[i][0], want[i][1]);
    }
    return close_pool(m, pool);
}

/* ---- health checks and lease timeouts ----------------------------------------------- */

static int health_checks(void) {
    /* The echo server answers the probe with itself. */
    const char *settings[] = {"probe.send", "hc\\n", "probe.expect", "hc", "health.interval",
                              "0", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool_to("hc", server.target, settings, &m, &pool)) return 1;
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_run_health_checks(pool));
    sb_endpoint_health e;
    if (endpoint_health(pool, 0, &e)) return 1;
    EXPECT(e.checks == 1 && e.checks_failed == 0);
    EXPECT(e.latency_ewma_ns > 0 && e.quality > 0.0 && e.quality <= 1.0);
    EXPECT(e.state == SB_CONN_CONNECTED && e.open_connections == 1);
    sb_event ev[4];
    size_t n = events_of(m, SB_EVENT_HEALTH_CHECK, 100, ev, 4);
    EXPECT(n == 1);
    EXPECT(strcmp(ev[0].new_state, "ok") == 0 && strcmp(ev[0].endpoint, server.target) == 0);
    EXPECT(strcmp(sb_event_kind_str(ev[0].kind), "health_check") == 0);

    /* An old, smaller sb_event gets only its fields: nothing of the appended ones. */
    EXPECT_OK(sb_pool_run_health_checks(pool));
    sb_event small;
    memset(&small, 0x7F, sizeof small);
    size_t old_size = offsetof(sb_event, endpoint);
    sb_status st = SB_TIMEOUT;
    for (int i = 0; i < 100; i++) {
        small.struct_size = old_size;
        st = sb_manager_poll_event(m, 50, &small);
        if (st != SB_OK || small.kind == SB_EVENT_HEALTH_CHECK) break;
    }
    EXPECT_OK(st);
    EXPECT(small.kind == SB_EVENT_HEALTH_CHECK && small.struct_size == old_size);
    EXPECT(small.endpoint[0] == 0x7F && small.stream[0] == 0x7F);
    EXPECT((small.session_id & 0xFF) == 0x7F);

    /* A lease's timeout is its own: the next lease of the same connection has none. */
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    uint64_t id1 = 0, id2 = 0;
    int fd = -1;
    EXPECT_OK(sb_lease_id(lease, &id1));
    EXPECT_OK(sb_lease_fd(lease, &fd));
    EXPECT_OK(sb_lease_set_timeout(lease, 1500));
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    EXPECT(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0);
    EXPECT(tv.tv_sec == 1 && tv.tv_usec == 500000);
    EXPECT_OK(sb_lease_set_timeout(lease, 0)); /* 0: none */
    len = sizeof tv;
    EXPECT(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0);
    EXPECT(tv.tv_sec == 0 && tv.tv_usec == 0);
    EXPECT_OK(sb_lease_set_timeout(lease, 700));
    EXPECT_OK(sb_lease_release(lease));
    EXPECT_OK(sb_pool_acquire(pool, 2000, &lease));
    EXPECT_OK(sb_lease_id(lease, &id2));
    EXPECT_OK(sb_lease_fd(lease, &fd));
    EXPECT(id1 == id2);
    len = sizeof tv;
    EXPECT(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0);
    EXPECT(tv.tv_sec == 0 && tv.tv_usec == 0);
    /* Reported results feed the endpoint's record. */
    uint64_t calls = e.calls;
    EXPECT_OK(sb_lease_report(lease, false, 1000000));
    EXPECT_OK(sb_lease_release(lease));
    if (endpoint_health(pool, 0, &e)) return 1;
    EXPECT(e.calls >= calls + 1 && e.failures >= 1);
    EXPECT(strstr(e.last_error, "reported") != NULL);
    return close_pool(m, pool);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (echo_start(&server) != 0) {
        fprintf(stderr, "cannot start the echo server\n");
        return 1;
    }
    RUN(endpoint_down_at_start);
    RUN(blackhole);
    RUN(reset_mid_lease);
    RUN(slow_calls_trip_the_breaker);
    RUN(half_open_admits_exactly_its_probes);
    RUN(flap);
    RUN(two_endpoints_one_down);
    RUN(operator_commands);
    RUN(health_checks);
    echo_stop(&server);
    return harness_summary();
}
