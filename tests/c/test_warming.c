/* Connection warming and preemptive scaling through the C API (issue 13 item 8):
 * sb_endpoint_health.warming (SB_WARMING_COLD / WARMING / WARM, named by
 * sb_warming_state_str) while a pool with pool.min_idle warms up over a slow connect
 * callback, and pool.scale_ahead opening the next connection before any caller waits
 * (created_total rising while waiting stays 0), off by default. */
#include "harness.h"

#include <stdatomic.h>

typedef struct {
    atomic_int connects;
    atomic_int closes;
    int delay_ms;
} counters;

static int32_t slow_connect(void *userdata, const char *endpoint, void **out_conn,
                            char *errbuf, size_t errlen) {
    counters *c = userdata;
    (void)endpoint;
    (void)errbuf;
    (void)errlen;
    sleep_ms(c->delay_ms);
    int *obj = malloc(sizeof *obj);
    if (obj == NULL) return SB_INTERNAL;
    *obj = atomic_fetch_add(&c->connects, 1) + 1;
    *out_conn = obj;
    return SB_OK;
}

static void slow_close(void *userdata, void *conn) {
    counters *c = userdata;
    atomic_fetch_add(&c->closes, 1);
    free(conn);
}

static sb_connector connector_for(counters *c, int delay_ms) {
    memset(c, 0, sizeof *c);
    c->delay_ms = delay_ms;
    sb_connector k;
    memset(&k, 0, sizeof k);
    k.connect = slow_connect;
    k.close = slow_close;
    k.userdata = c;
    return k;
}

static int new_pool(sb_manager *m, const char *name, sb_connector *k, const char *const *kv,
                    sb_pool **out) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    for (; kv != NULL && kv[0] != NULL; kv += 2) EXPECT_OK(sb_config_set(cfg, kv[0], kv[1]));
    EXPECT_OK(sb_pool_new_custom(m, name, "db://primary", cfg, k, out));
    EXPECT_OK(sb_config_free(cfg));
    return 0;
}

static sb_status health_of(sb_pool *pool, sb_endpoint_health *e) {
    memset(e, 0, sizeof *e);
    e->struct_size = sizeof *e;
    return sb_pool_endpoint_health(pool, 0, e);
}

static int names_are_stable(void) {
    EXPECT(SB_WARMING_COLD == 0 && SB_WARMING_WARMING == 1 && SB_WARMING_WARM == 2);
    EXPECT(strcmp(sb_warming_state_str(SB_WARMING_COLD), "cold") == 0);
    EXPECT(strcmp(sb_warming_state_str(SB_WARMING_WARMING), "warming") == 0);
    EXPECT(strcmp(sb_warming_state_str(SB_WARMING_WARM), "warm") == 0);
    EXPECT(strcmp(sb_warming_state_str(3), "unknown") == 0);
    EXPECT(strcmp(sb_warming_state_str(-1), "unknown") == 0);
    return 0;
}

/* min_idle 3, one connect at a time, 100 ms each: warming (connects in flight, fewer
 * than 3 open), then warm once 3 are open. */
static int warms_up_to_min_idle(void) {
    static counters c;
    sb_connector k = connector_for(&c, 100);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *kv[] = {"pool.min_idle", "3", "pool.max_connecting", "1", NULL};
    if (new_pool(m, "warming", &k, kv, &pool)) return 1;
    sb_endpoint_health e;
    int saw_warming = 0;
    uint64_t open_when_warm = 0;
    long long deadline = now_ms() + 10000;
    for (;;) {
        EXPECT_OK(health_of(pool, &e));
        EXPECT(e.struct_size == sizeof e);
        if (e.warming == SB_WARMING_WARMING) saw_warming = 1;
        if (e.warming == SB_WARMING_WARM) {
            open_when_warm = e.open_connections;
            break;
        }
        /* Cold only before the upkeep's first connect has started. */
        if (e.warming == SB_WARMING_COLD) EXPECT(!saw_warming);
        if (now_ms() > deadline) FAILF("never warm (last: %s)", sb_warming_state_str(e.warming));
        sleep_ms(5);
    }
    EXPECT(saw_warming);
    EXPECT(open_when_warm == 3);
    EXPECT(atomic_load(&c.connects) == 3);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&c.closes) == 3);
    return 0;
}

/* No min_idle: cold until the first connection, warm with it, cold once it is gone. */
static int cold_with_nothing_open(void) {
    static counters c;
    sb_connector k = connector_for(&c, 10);
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    if (new_pool(m, "cold", &k, NULL, &pool)) return 1;
    sb_endpoint_health e;
    EXPECT_OK(health_of(pool, &e));
    EXPECT(e.warming == SB_WARMING_COLD && e.open_connections == 0);
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(health_of(pool, &e));
    EXPECT(e.warming == SB_WARMING_WARM && e.open_connections == 1);
    EXPECT_OK(sb_lease_discard(lease));
    EXPECT_OK(health_of(pool, &e));
    EXPECT(e.warming == SB_WARMING_COLD);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

/* max_size 4, scale_ahead 0.5: two leased of 4 open a third connection with nobody
 * waiting for it (created_total 3, idle 1, waiting 0 all along); without the key
 * nothing opens. */
static int scale_ahead_opens_before_anyone_waits(void) {
    for (int on = 1; on >= 0; on--) {
        static counters c;
        sb_connector k = connector_for(&c, 30);
        sb_manager *m = NULL;
        sb_pool *pool = NULL;
        EXPECT_OK(sb_manager_new(NULL, &m));
        const char *with[] = {"pool.max_size", "4", "pool.scale_ahead", "0.5", NULL};
        const char *without[] = {"pool.max_size", "4", NULL};
        if (new_pool(m, on ? "ahead" : "on_demand", &k, on ? with : without, &pool)) return 1;
        sb_lease *x = NULL, *y = NULL;
        EXPECT_OK(sb_pool_acquire(pool, 5000, &x));
        sleep_ms(100);
        sb_pool_stats s;
        EXPECT_OK(get_stats(pool, &s));
        EXPECT(s.created_total == 1); /* one leased of 4: below 0.5 */
        EXPECT_OK(sb_pool_acquire(pool, 5000, &y));
        uint64_t max_waiting = 0;
        long long until = now_ms() + (on ? 5000 : 200);
        for (;;) {
            EXPECT_OK(get_stats(pool, &s));
            if (s.waiting > max_waiting) max_waiting = s.waiting;
            if (on && s.created_total == 3 && s.idle == 1) break;
            if (now_ms() > until) break;
            sleep_ms(5);
        }
        if (on && !(s.created_total == 3 && s.idle == 1))
            FAILF("created %llu size %llu idle %llu leased %llu connecting %llu waiting %llu",
                  (unsigned long long)s.created_total, (unsigned long long)s.size,
                  (unsigned long long)s.idle, (unsigned long long)s.leased,
                  (unsigned long long)s.connecting, (unsigned long long)s.waiting);
        EXPECT(max_waiting == 0);
        EXPECT(s.acquired_waited_total == 2);
        if (on) {
            EXPECT(s.created_total == 3 && s.idle == 1 && s.leased == 2);
        } else {
            EXPECT(s.created_total == 2 && s.idle == 0 && s.size == 2);
        }
        EXPECT_OK(sb_lease_release(x));
        EXPECT_OK(sb_lease_release(y));
        EXPECT_OK(sb_pool_free(pool));
        EXPECT_OK(sb_manager_close(m, 2000));
        EXPECT_OK(sb_manager_free(m));
        EXPECT(atomic_load(&c.closes) == atomic_load(&c.connects));
    }
    return 0;
}

int main(void) {
    RUN(names_are_stable);
    RUN(warms_up_to_min_idle);
    RUN(cold_with_nothing_open);
    RUN(scale_ahead_opens_before_anyone_waits);
    return harness_summary();
}
