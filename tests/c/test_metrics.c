/* Metrics and events through the C API, against a real loopback echo server: the
 * Prometheus text after a scripted sequence (exact series lines), the buffer-size
 * protocol of sb_manager_metrics, the wait/lease latency summaries in sb_pool_stats
 * (and their struct_size versioning), and leak_suspected events polled with
 * sb_manager_poll_event (fields, truncation, versioning, reported once). No timing
 * assertions beyond "at least as long as we held it": every wait is a bounded poll. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

static echo_server server;

/* A manager and one pool named `name` to the echo server. */
static int open_pool(const char *name, const char *const *settings, sb_manager **manager,
                     sb_pool **pool) {
    return open_pool_to(name, server.target, settings, manager, pool);
}



/* True when `text` has `line` as a whole line. */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) return 1;
    }
    return 0;
}

#define EXPECT_LINE(text, line)                                                        \
    do {                                                                               \
        if (!has_line((text), (line))) {                                               \
            fprintf(stderr, "    metrics text:\n%s\n", (text));                        \
            free(text);                                                                \
            FAILF("no line \"%s\" in the metrics text", (line));                       \
        }                                                                              \
    } while (0)

/* acquire, release, a timed-out acquire, a discard: the exact series lines. */
static int metrics_after_a_scripted_sequence(void) {
    const char *settings[] = {"pool.max_size", "1", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool("x", settings, &m, &pool)) return 1;

    sb_lease *a = NULL, *b = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a)); /* waited for the first connect */
    EXPECT_OK(sb_lease_release(a));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a)); /* idle: direct */
    EXPECT_ST(sb_pool_acquire(pool, 50, &b), SB_TIMEOUT);
    EXPECT(b == NULL);
    EXPECT_OK(sb_lease_discard(a));

    char *text = metrics_text(m);
    EXPECT(text != NULL);
    EXPECT_LINE(text, "switchboard_pool_acquires_total{pool=\"x\",result=\"timed_out\"} 1");
    EXPECT_LINE(text, "switchboard_pool_acquires_total{pool=\"x\",result=\"direct\"} 1");
    EXPECT_LINE(text, "switchboard_pool_acquires_total{pool=\"x\",result=\"waited\"} 1");
    EXPECT_LINE(text, "switchboard_pool_acquires_total{pool=\"x\",result=\"rejected\"} 0");
    EXPECT_LINE(text,
                "switchboard_pool_connections_closed_total{pool=\"x\",reason=\"discarded\"} 1");
    EXPECT_LINE(text, "switchboard_pool_connections_created_total{pool=\"x\"} 1");
    EXPECT_LINE(text, "switchboard_pool_wait_seconds_count{pool=\"x\"} 2");
    EXPECT_LINE(text, "switchboard_pool_lease_seconds_count{pool=\"x\"} 2");
    free(text);
    return close_pool(m, pool);
}

/* The size protocol: *written is the size with the NUL; too small copies nothing. */
static int metrics_buffer_sizes(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool("sizes", NULL, &m, &pool)) return 1;
    size_t need = 0;
    EXPECT_ST(sb_manager_metrics(m, NULL, 0, &need), SB_RESOURCE_EXHAUSTED);
    EXPECT_ERROR_MENTIONS("bytes");
    EXPECT(need > 1);

    char *buf = malloc(need);
    EXPECT(buf != NULL);
    memset(buf, 'Z', need);
    size_t got = 0;
    if (sb_manager_metrics(m, buf, need - 1, &got) != SB_RESOURCE_EXHAUSTED || got != need ||
        buf[0] != '\0' || buf[1] != 'Z') {
        free(buf);
        FAILF("one byte short: expected SB_RESOURCE_EXHAUSTED, *written = %zu, buf empty", need);
    }
    sb_status st = sb_manager_metrics(m, buf, need, &got);
    int ok = st == SB_OK && got == need && strlen(buf) == need - 1 &&
             strstr(buf, "pool=\"sizes\"") != NULL;
    free(buf);
    EXPECT(ok);
    EXPECT_ST(sb_manager_metrics(m, NULL, 10, &got), SB_INVALID_ARGUMENT);
    return close_pool(m, pool);
}

/* wait and lease: counts match the acquires and leases; peak covers a ~60 ms hold. */
static int latency_summaries(void) {
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool("lat", NULL, &m, &pool)) return 1;
    sb_pool_stats s;
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.wait.count == 0 && s.lease.count == 0 && s.lease.peak_ns == 0);

    long long t0 = now_ms();
    sb_lease *a = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
    sleep_ms(60);
    EXPECT_OK(sb_lease_release(a));
    long long held_ms = now_ms() - t0;
    for (int i = 0; i < 3; i++) {
        EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
        EXPECT_OK(sb_lease_release(a));
    }
    EXPECT_OK(get_stats(pool, &s));
    EXPECT(s.acquired_total == 4);
    EXPECT(s.wait.count == s.acquired_total);
    EXPECT(s.lease.count == 4);
    EXPECT(s.lease.peak_ns >= 50ull * 1000 * 1000);
    EXPECT(s.lease.peak_ns <= (unsigned long long)(held_ms + 1) * 1000 * 1000 * 100);
    EXPECT(s.lease.avg_ns > 0 && s.lease.avg_ns <= s.lease.peak_ns);
    EXPECT(s.lease.p50_ns <= s.lease.p90_ns && s.lease.p90_ns <= s.lease.p99_ns);
    EXPECT(s.lease.p99_ns <= s.lease.peak_ns);
    EXPECT(s.wait.p50_ns <= s.wait.p90_ns && s.wait.p90_ns <= s.wait.p99_ns);
    EXPECT(s.wait.p99_ns <= s.wait.peak_ns && s.wait.avg_ns <= s.wait.peak_ns);

    /* A caller built before the latency fields gets everything up to them only. */
    sb_pool_stats old;
    memset(&old, 0xAB, sizeof old);
    old.struct_size = offsetof(sb_pool_stats, wait);
    EXPECT_OK(sb_pool_get_stats(pool, &old));
    EXPECT(old.struct_size == offsetof(sb_pool_stats, wait));
    EXPECT(old.acquired_total == 4 && old.probe_failed_total == 0);
    EXPECT(old.wait.count == 0xABABABABABABABABull);
    EXPECT(old.lease.peak_ns == 0xABABABABABABABABull);
    return close_pool(m, pool);
}

/* Polls (running the upkeep each time) until an event of `kind` comes, for at most
 * ~5 s; events of other kinds (connection and endpoint state changes, ...) are
 * skipped. `ev->struct_size` is set to `size` before each poll. */
static sb_status poll_kind_sized(sb_manager *m, sb_pool *pool, sb_event_kind kind, sb_event *ev,
                                 size_t size) {
    sb_status st = SB_TIMEOUT;
    long long deadline = now_ms() + 5000;
    for (int i = 0; i < 500 && now_ms() < deadline; i++) {
        sb_status up = sb_pool_run_upkeep(pool);
        if (up != SB_OK) return up;
        ev->struct_size = size;
        st = sb_manager_poll_event(m, 20, ev);
        if (st == SB_OK && ev->kind != kind) {
            st = SB_TIMEOUT;
            continue;
        }
        if (st != SB_TIMEOUT) return st;
    }
    return st;
}

static sb_status poll_with_upkeep(sb_manager *m, sb_pool *pool, sb_event *ev) {
    return poll_kind_sized(m, pool, SB_EVENT_LEAK_SUSPECTED, ev, sizeof *ev);
}

/* 1 if an event of `kind` is queued within `ms` (others are taken and skipped). */
static int another_of_kind(sb_manager *m, sb_event_kind kind, int ms) {
    long long deadline = now_ms() + ms;
    for (int i = 0; i < 1000 && now_ms() <= deadline; i++) {
        sb_event ev;
        ev.struct_size = sizeof ev;
        sb_status st = sb_manager_poll_event(m, 10, &ev);
        if (st == SB_OK && ev.kind == kind) return 1;
    }
    return 0;
}

/* A lease held past pool.leak_detection_threshold: one leak_suspected event with the
 * pool, the connection id, the age and a message. */
static int leak_event_by_polling(void) {
    const char *settings[] = {"pool.leak_detection_threshold", "100ms", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool("leaky", settings, &m, &pool)) return 1;

    sb_event ev;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    EXPECT_ST(sb_manager_poll_event(m, 0, &ev), SB_TIMEOUT);
    EXPECT_ST(sb_manager_poll_event(m, 10, &ev), SB_TIMEOUT);
    EXPECT(ev.kind == 0 && ev.pool[0] == '\0'); /* untouched */

    long long t0 = now_ms();
    sb_lease *a = NULL;
    uint64_t id = 0;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
    EXPECT_OK(sb_lease_id(a, &id));
    EXPECT(id >= 1);
    time_t before = time(NULL);
    EXPECT_OK(poll_with_upkeep(m, pool, &ev));
    long long waited_ms = now_ms() - t0;

    EXPECT(ev.struct_size == sizeof ev);
    EXPECT(ev.kind == SB_EVENT_LEAK_SUSPECTED);
    EXPECT(strcmp(sb_event_kind_str(ev.kind), "leak_suspected") == 0);
    EXPECT(strcmp(ev.pool, "leaky") == 0);
    EXPECT(ev.connection_id == id);
    EXPECT(ev.age_ns >= 100ull * 1000 * 1000);
    EXPECT(ev.age_ns <= (unsigned long long)(waited_ms + 1000) * 1000 * 1000);
    EXPECT(strstr(ev.message, "leaky") != NULL);
    EXPECT(strstr(ev.message, "leak_detection_threshold") != NULL);
    long long secs = (long long)(ev.time_unix_ns / 1000000000ull);
    EXPECT(secs >= (long long)before - 60 && secs <= (long long)time(NULL) + 60);

    /* Reported once, however often the upkeep runs. */
    for (int i = 0; i < 3; i++) EXPECT_OK(sb_pool_run_upkeep(pool));
    EXPECT(!another_of_kind(m, SB_EVENT_LEAK_SUSPECTED, 50));
    ev.struct_size = sizeof ev;
    EXPECT_ST(sb_manager_poll_event(m, 0, &ev), SB_TIMEOUT);
    EXPECT_ERROR_MENTIONS("no event");
    uint64_t dropped = 99;
    EXPECT_OK(sb_manager_events_dropped(m, &dropped));
    EXPECT(dropped == 0);
    EXPECT_OK(sb_lease_release(a));
    return close_pool(m, pool);
}

/* A long pool name and message are cut and NUL-terminated; an older, smaller struct
 * gets only its fields; bad arguments are rejected. */
static int event_truncation_and_versioning(void) {
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    const char *settings[] = {"pool.leak_detection_threshold", "100ms", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool(name, settings, &m, &pool)) return 1;

    sb_lease *a = NULL, *b = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
    EXPECT_OK(sb_pool_acquire(pool, 5000, &b));
    sb_event ev;
    memset(&ev, 0x7F, sizeof ev);
    EXPECT_OK(poll_with_upkeep(m, pool, &ev));
    EXPECT(ev.pool[SB_EVENT_POOL_LEN - 1] == '\0');
    EXPECT(strlen(ev.pool) == SB_EVENT_POOL_LEN - 1);
    EXPECT(strncmp(ev.pool, name, SB_EVENT_POOL_LEN - 1) == 0);
    EXPECT(strlen(ev.message) < SB_EVENT_MESSAGE_LEN); /* "pool \"nnn...\"" is long */
    EXPECT(strlen(ev.message) >= 2 * SB_EVENT_POOL_LEN);

    /* The second lease's event, into a struct that ends before `pool`. */
    memset(&ev, 0x7F, sizeof ev);
    EXPECT_OK(poll_kind_sized(m, pool, SB_EVENT_LEAK_SUSPECTED, &ev, offsetof(sb_event, pool)));
    EXPECT(ev.struct_size == offsetof(sb_event, pool));
    EXPECT(ev.kind == SB_EVENT_LEAK_SUSPECTED && ev.connection_id >= 1);
    EXPECT(ev.pool[0] == 0x7F && ev.message[0] == 0x7F);

    ev.struct_size = 0;
    EXPECT_ST(sb_manager_poll_event(m, 0, &ev), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("struct_size");
    EXPECT_ST(sb_manager_poll_event(m, 0, NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_manager_poll_event(NULL, 0, &ev), SB_INVALID_HANDLE);
    EXPECT_ST(sb_manager_metrics(NULL, NULL, 0, NULL), SB_INVALID_HANDLE);
    EXPECT(strcmp(sb_event_kind_str(12345), "unknown") == 0);
    EXPECT_OK(sb_lease_release(a));
    EXPECT_OK(sb_lease_release(b));
    return close_pool(m, pool);
}

/* ---- the event callback ---- */

typedef struct {
    atomic_int calls;
    atomic_int freed;
    pthread_mutex_t lock;
    sb_event last; /* under lock */
} sink;

/* Keeps the leak events (the pool also reports connection state changes). */
static void on_event(void *userdata, const sb_event *ev) {
    sink *s = userdata;
    if (ev->kind != SB_EVENT_LEAK_SUSPECTED) return;
    pthread_mutex_lock(&s->lock);
    s->last = *ev;
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->calls, 1);
}

static void free_sink(void *userdata) {
    sink *s = userdata;
    atomic_fetch_add(&s->freed, 1);
}

static sink *sink_new(void) {
    sink *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

static void sink_delete(sink *s) {
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* With a callback set, the leak event goes to it (not the queue); clearing it frees
 * the userdata once and sends events to the queue again. */
static int leak_event_by_callback(void) {
    const char *settings[] = {"pool.leak_detection_threshold", "100ms", NULL};
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    if (open_pool("hooked", settings, &m, &pool)) return 1;
    sink *s = sink_new();
    EXPECT(s != NULL);
    EXPECT_OK(sb_manager_set_event_callback(m, on_event, s, free_sink));

    sb_lease *a = NULL;
    uint64_t id = 0;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &a));
    EXPECT_OK(sb_lease_id(a, &id));
    EVENTUALLY(5000, (void)sb_pool_run_upkeep(pool), atomic_load(&s->calls) >= 1);
    pthread_mutex_lock(&s->lock);
    sb_event got = s->last;
    pthread_mutex_unlock(&s->lock);
    EXPECT(got.struct_size == sizeof got && got.kind == SB_EVENT_LEAK_SUSPECTED);
    EXPECT(strcmp(got.pool, "hooked") == 0 && got.connection_id == id);
    EXPECT(got.age_ns >= 100ull * 1000 * 1000 && strstr(got.message, "hooked") != NULL);
    sb_event ev;
    ev.struct_size = sizeof ev;
    EXPECT_ST(sb_manager_poll_event(m, 0, &ev), SB_TIMEOUT); /* nothing queued as well */

    /* Clearing frees the userdata exactly once; the next leak is queued. */
    EXPECT(atomic_load(&s->freed) == 0);
    EXPECT_OK(sb_manager_set_event_callback(m, NULL, NULL, NULL));
    /* Usually freed by that call; if the thread that called on_event has not yet let
     * go of the callback, right after (on that thread). */
    EVENTUALLY(2000, (void)0, atomic_load(&s->freed) == 1);
    sb_lease *b = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &b));
    EXPECT_OK(poll_with_upkeep(m, pool, &ev));
    EXPECT(ev.kind == SB_EVENT_LEAK_SUSPECTED && strcmp(ev.pool, "hooked") == 0);
    EXPECT(atomic_load(&s->calls) == 1 && atomic_load(&s->freed) == 1);
    EXPECT_OK(sb_lease_release(a));
    EXPECT_OK(sb_lease_release(b));
    int st = close_pool(m, pool);
    EXPECT(atomic_load(&s->freed) == 1);
    sink_delete(s);
    return st;
}

/* free_userdata runs once: when the manager is freed with the callback still set,
 * when a callback is replaced, and at once for a NULL callback or a bad handle. */
static int callback_userdata_freed_once(void) {
    sink *s1 = sink_new(), *s2 = sink_new(), *s3 = sink_new(), *s4 = sink_new();
    EXPECT(s1 != NULL && s2 != NULL && s3 != NULL && s4 != NULL);
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_manager_set_event_callback(m, on_event, s1, free_sink));
    EXPECT_OK(sb_manager_set_event_callback(m, on_event, s2, free_sink)); /* replaces */
    EXPECT(atomic_load(&s1->freed) == 1 && atomic_load(&s2->freed) == 0);
    EXPECT_OK(sb_manager_set_event_callback(m, NULL, s3, free_sink)); /* nothing to keep */
    EXPECT(atomic_load(&s2->freed) == 1 && atomic_load(&s3->freed) == 1);
    EXPECT_OK(sb_manager_set_event_callback(m, on_event, s4, free_sink));
    EXPECT_OK(sb_manager_close(m, 1000)); /* closing lets go of the callback */
    EXPECT(atomic_load(&s4->freed) == 1);
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&s4->freed) == 1);

    /* Set after a close, or still set at sb_manager_free: let go by the free. */
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_manager_set_event_callback(m, on_event, s4, free_sink));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&s4->freed) == 2);
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_manager_close(m, 1000));
    EXPECT_OK(sb_manager_set_event_callback(m, on_event, s4, free_sink));
    EXPECT(atomic_load(&s4->freed) == 2);
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&s4->freed) == 3);
    EXPECT_ST(sb_manager_set_event_callback(m, on_event, s1, free_sink), SB_INVALID_HANDLE);
    EXPECT(atomic_load(&s1->freed) == 2); /* ownership passed with the failed call */
    EXPECT(atomic_load(&s1->calls) == 0 && atomic_load(&s4->calls) == 0);
    sink_delete(s1);
    sink_delete(s2);
    sink_delete(s3);
    sink_delete(s4);
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (echo_start(&server) != 0) {
        fprintf(stderr, "cannot start the echo server\n");
        return 1;
    }
    RUN(metrics_after_a_scripted_sequence);
    RUN(metrics_buffer_sizes);
    RUN(latency_summaries);
    RUN(leak_event_by_polling);
    RUN(event_truncation_and_versioning);
    RUN(leak_event_by_callback);
    RUN(callback_userdata_freed_once);
    echo_stop(&server);
    return harness_summary();
}
