/* A pool of the program's own objects: switchboard sizes, lends, checks and closes
 * them; the program says how to make, check and close one. Here an "object" is a
 * heap-allocated session with a counter; a real program would hold a database client
 * or an RPC stub.
 *
 *   ./custom [target]       (default target: "sessions://main")
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <switchboard.h>

typedef struct {
    int opened; /* how many sessions connect made */
    int closed; /* how many close closed */
} app;

typedef struct {
    int number;
    int uses;
} session;

/* Runs on a switchboard blocking-pool thread; may block (up to pool.connect_timeout). */
static sb_status open_session(void *userdata, const char *endpoint, void **out_conn,
                              char *errbuf, size_t errlen) {
    app *a = userdata;
    session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errbuf, errlen, "out of memory opening a session to %s", endpoint);
        return SB_RESOURCE_EXHAUSTED;
    }
    s->number = ++a->opened; /* connects of one pool may run concurrently in general;
                                this example opens one at a time */
    *out_conn = s;
    return SB_OK;
}

/* Checks a session idle longer than pool.validate_after; non-SB_OK replaces it. */
static sb_status check_session(void *userdata, void *conn) {
    (void)userdata;
    return ((session *)conn)->uses < 1000 ? SB_OK : SB_UNAVAILABLE;
}

/* Runs once per session, on the thread that lets it go. */
static void close_session(void *userdata, void *conn) {
    ((app *)userdata)->closed++;
    free(conn);
}

int main(int argc, char **argv) {
    const char *target = argc > 1 ? argv[1] : "sessions://main";
    app a = {0, 0};
    sb_connector connector = {
        .connect = open_session,
        .check = check_session,
        .close = close_session,
        .userdata = &a,
        .free_userdata = NULL, /* `a` lives on main's stack, nothing to free */
    };
    sb_manager *m = NULL;
    sb_pool *pool = NULL;
    sb_config *cfg = NULL;
    sb_status st = sb_config_new(&cfg);
    if (st == SB_OK) st = sb_config_set(cfg, "pool.max_size", "4");
    if (st == SB_OK) st = sb_manager_new(NULL, &m);
    if (st == SB_OK) st = sb_pool_new_custom(m, "sessions", target, cfg, &connector, &pool);
    for (int i = 0; st == SB_OK && i < 3; i++) {
        sb_lease *lease = NULL;
        void *obj = NULL;
        st = sb_pool_acquire(pool, 1000 /* ms */, &lease);
        if (st == SB_OK) st = sb_lease_conn(lease, &obj);
        if (st == SB_OK) {
            session *s = obj;
            s->uses++;
            printf("use %d: session %d (used %d times)\n", i + 1, s->number, s->uses);
        }
        sb_lease_release(lease); /* back to the pool: the same session next time */
    }
    if (st == SB_OK) {
        sb_pool_stats stats;
        memset(&stats, 0, sizeof stats);
        stats.struct_size = sizeof stats; /* set before the call (versioning) */
        st = sb_pool_get_stats(pool, &stats);
        if (st == SB_OK)
            printf("created %llu, acquired %llu, idle %llu\n",
                   (unsigned long long)stats.created_total,
                   (unsigned long long)stats.acquired_total, (unsigned long long)stats.idle);
    }
    if (st != SB_OK) {
        char err[256];
        sb_last_error(err, sizeof err, NULL);
        fprintf(stderr, "%s: %s\n", sb_status_str(st), err);
    }
    sb_pool_free(pool);   /* closes the idle session: close_session runs here */
    sb_manager_free(m);
    sb_config_free(cfg);
    printf("opened %d, closed %d\n", a.opened, a.closed);
    return st == SB_OK && a.opened == a.closed ? 0 : 1;
}
