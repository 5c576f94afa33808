/* Benchmark (not a test): broadcast from C to a topic of 10,000 connections, measured
 * the way core/benches/registry.rs measures Rust, so the two compare directly:
 *   - send callbacks (a no-op that counts): the time of one sb_registry_broadcast call,
 *     and the time from its start until all 10,000 callbacks have run (median of reps,
 *     after 5 warm-up rounds; the next broadcast starts once the last is delivered);
 *   - outboxes: the time of the call alone (drained with sb_registry_next between
 *     calls, not timed).
 * Prints one JSON object per line on stdout:
 *   {"lang":"c","op":"broadcast_10k","reps":..,"ns_per_call":..,"call_ns":..,
 *    "all_delivered_ns":..,"recipients_per_s":..,"outbox_call_ns":..}
 * Build (as bench/run.sh builds c_overhead.c) and run:
 *   cargo build --release -p switchboard-ffi
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -g -Iinclude bench/registry_c.c \
 *     -o build/bench/registry_c -Ltarget/release -lswitchboard \
 *     -Wl,-rpath,$PWD/target/release -lpthread
 *   build/bench/registry_c [reps]        (default 200) */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "switchboard.h"

#define FANOUT 10000

static atomic_ullong delivered;

static int noop_send(void *ud, uint64_t id, const uint8_t *data, size_t len, bool is_text) {
    (void)ud;
    (void)id;
    (void)data;
    (void)len;
    (void)is_text;
    atomic_fetch_add_explicit(&delivered, 1, memory_order_relaxed);
    return 0;
}

static void noop_event(void *ud, const sb_event *ev) {
    (void)ud;
    (void)ev;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, sb_status st) {
    char msg[512];
    sb_last_error(msg, sizeof msg, NULL);
    fprintf(stderr, "registry_c: %s: %s: %s\n", what, sb_status_str(st), msg);
    exit(1);
}

#define CHECK(what, call)                                                              \
    do {                                                                               \
        sb_status st_ = (call);                                                        \
        if (st_ != SB_OK) die(what, st_);                                              \
    } while (0)

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static long long median(long long *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_ll);
    return v[n / 2];
}

static sb_manager *unlimited_manager(void) {
    sb_config *cfg = NULL;
    CHECK("config", sb_config_new(&cfg));
    const char *keys[] = {"registry.max_total_connections", "registry.max_connections_per_topic",
                          "registry.max_connections_per_user"};
    for (int i = 0; i < 3; i++) CHECK(keys[i], sb_config_set(cfg, keys[i], "0"));
    sb_manager *m = NULL;
    CHECK("manager", sb_manager_new(cfg, &m));
    CHECK("config free", sb_config_free(cfg));
    /* As the Rust bench: events go to a no-op callback instead of the queue. */
    CHECK("event callback", sb_manager_set_event_callback(m, noop_event, NULL, NULL));
    return m;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 200;
    if (reps < 1) reps = 1;
    const char *topics[] = {"t"};
    sb_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = sizeof reg;
    reg.topics = topics;
    reg.topics_len = 1;
    sb_target target;
    memset(&target, 0, sizeof target);
    target.struct_size = sizeof target;
    target.topics = topics;
    target.topics_len = 1;
    const char *msg = "{\"type\":\"data\",\"data\":42}";
    size_t msg_len = strlen(msg);
    long long *calls = calloc((size_t)reps, sizeof *calls);
    long long *alls = calloc((size_t)reps, sizeof *alls);
    if (calls == NULL || alls == NULL) return 1;

    /* Send callbacks. */
    sb_manager *m = unlimited_manager();
    for (int i = 0; i < FANOUT; i++) {
        uint64_t id;
        CHECK("register", sb_registry_register(m, &reg, noop_send, NULL, NULL, NULL, NULL, &id));
    }
    for (int i = 0; i < reps + 5; i++) {
        unsigned long long want = (unsigned long long)(i + 1) * FANOUT;
        sb_broadcast_report r;
        r.struct_size = sizeof r;
        long long t0 = now_ns();
        CHECK("broadcast",
              sb_registry_broadcast(m, &target, (const uint8_t *)msg, msg_len, true, &r));
        long long call = now_ns() - t0;
        if (r.queued != FANOUT) {
            fprintf(stderr, "registry_c: queued %llu, not %d\n", (unsigned long long)r.queued,
                    FANOUT);
            return 1;
        }
        long long deadline = t0 + 10000000000LL;
        while (atomic_load_explicit(&delivered, memory_order_relaxed) < want) {
            if (now_ns() > deadline) {
                fprintf(stderr, "registry_c: deliveries did not finish\n");
                return 1;
            }
        }
        long long all = now_ns() - t0;
        if (i >= 5) {
            calls[i - 5] = call;
            alls[i - 5] = all;
        }
    }
    CHECK("close", sb_manager_close(m, 5000));
    CHECK("free", sb_manager_free(m));
    long long call_ns = median(calls, reps);
    long long all_ns = median(alls, reps);

    /* Outboxes. */
    m = unlimited_manager();
    uint64_t *boxes = calloc(FANOUT, sizeof *boxes);
    if (boxes == NULL) return 1;
    for (int i = 0; i < FANOUT; i++) {
        CHECK("register outbox", sb_registry_register_outbox(m, &reg, &boxes[i]));
    }
    for (int i = 0; i < reps + 5; i++) {
        long long t0 = now_ns();
        CHECK("broadcast",
              sb_registry_broadcast(m, &target, (const uint8_t *)msg, msg_len, true, NULL));
        long long call = now_ns() - t0;
        for (int b = 0; b < FANOUT; b++) {
            uint8_t buf[64];
            size_t n;
            sb_item_kind kind;
            CHECK("next", sb_registry_next(boxes[b], buf, sizeof buf, 0, &n, &kind));
        }
        if (i >= 5) calls[i - 5] = call;
    }
    long long outbox_ns = median(calls, reps);
    for (int i = 0; i < FANOUT; i++) CHECK("outbox free", sb_registry_outbox_free(boxes[i]));
    CHECK("close", sb_manager_close(m, 5000));
    CHECK("free", sb_manager_free(m));

    printf("{\"lang\":\"c\",\"op\":\"broadcast_10k\",\"reps\":%d,\"ns_per_call\":%lld,"
           "\"call_ns\":%lld,\"all_delivered_ns\":%lld,\"recipients_per_s\":%.0f,"
           "\"outbox_call_ns\":%lld}\n",
           reps, call_ns, call_ns, all_ns, FANOUT / (call_ns / 1e9), outbox_ns);
    free(boxes);
    free(calls);
    free(alls);
    return 0;
}
