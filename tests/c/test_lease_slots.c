/* Lease handles whose slots are reused (issue 13, item 7): a thread that releases a
 * lease and acquires again gets the same slot back under a new generation, so every
 * copy of the old handle must stay invalid even though its slot is live again; a
 * lease released (or used) on another thread than the one that acquired it, and
 * threads that exit with freed slots in their cache, must neither lose nor share a
 * slot. Built and run by hand (`make build/c/test_lease_slots`, then under valgrind
 * and as test_lease_slots_asan); the misuse guarantees themselves are test_misuse's. */
#include "harness.h"

#include <pthread.h>

static echo_server server;
static sb_manager *manager;
static sb_pool *pool;

/* The same connection, acquired again on the same thread, comes back under a handle
 * that differs from every earlier one, and the earlier ones stay invalid for every
 * call while the slot they named holds the new lease. */
static int reused_slot_rejects_stale_handles(void) {
    enum { ROUNDS = 50 };
    sb_lease *old[ROUNDS];
    uint64_t first_id = 0;
    for (int i = 0; i < ROUNDS; i++) {
        sb_lease *lease = NULL;
        EXPECT_OK(sb_pool_try_acquire(pool, &lease));
        EXPECT(lease != NULL);
        uint64_t id = 0;
        EXPECT_OK(sb_lease_id(lease, &id));
        if (i == 0) first_id = id;
        EXPECT(id == first_id); /* one idle connection: always the same one */
        for (int j = 0; j < i; j++) EXPECT(old[j] != lease);
        /* While this lease lives (in the slot the older handles named), they are
         * all refused, and the live one still works afterwards. */
        for (int j = 0; j < i; j++) {
            int fd = -1;
            EXPECT_ST(sb_lease_fd(old[j], &fd), SB_INVALID_HANDLE);
            EXPECT_ERROR_MENTIONS("no longer valid");
            EXPECT(fd == -1);
            EXPECT_ST(sb_lease_release(old[j]), SB_INVALID_HANDLE);
            EXPECT_ST(sb_lease_discard(old[j]), SB_INVALID_HANDLE);
        }
        char echo[16];
        EXPECT_OK(lease_round_trip(lease, "slot\n", echo));
        old[i] = lease;
        EXPECT_OK(sb_lease_release(lease));
    }
    /* The connection went back every time: it is idle once, never twice. */
    sb_lease *a = NULL, *b = NULL;
    EXPECT_OK(sb_pool_try_acquire(pool, &a));
    EXPECT(a != NULL);
    EXPECT_OK(sb_pool_try_acquire(pool, &b));
    EXPECT(b == NULL);
    EXPECT_OK(sb_lease_release(a));
    return 0;
}

/* A discarded lease's slot is reused too; its handle stays invalid. */
static int discard_then_reuse(void) {
    sb_lease *lease = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &lease));
    EXPECT_OK(sb_lease_discard(lease));
    sb_lease *next = NULL;
    EXPECT_OK(sb_pool_acquire(pool, 5000, &next)); /* a new connection */
    EXPECT(next != lease);
    EXPECT_ST(sb_lease_release(lease), SB_INVALID_HANDLE);
    EXPECT_ST(sb_lease_discard(lease), SB_INVALID_HANDLE);
    char echo[16];
    EXPECT_OK(lease_round_trip(next, "again\n", echo));
    EXPECT_OK(sb_lease_release(next));
    return 0;
}

/* Leases made on one thread and released on another, while each thread also runs
 * its own acquire/release loop: with slots moving between threads' caches, no two
 * live leases ever share a handle, and every handle is valid exactly until its
 * release. Each worker hands half its leases to the next worker to release. */
enum { WORKERS = 4, PER_WORKER = 2000, MAILBOX = 8 };

struct mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sb_lease *items[MAILBOX];
    int count;
    int closed;
};

static struct mailbox boxes[WORKERS];
static atomic_int worker_failures;

static void box_put(struct mailbox *m, sb_lease *l) {
    pthread_mutex_lock(&m->mu);
    while (m->count == MAILBOX) pthread_cond_wait(&m->cv, &m->mu);
    m->items[m->count++] = l;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* Takes one lease, or NULL once the box is closed and empty; waits otherwise unless
 * `wait` is 0. */
static sb_lease *box_take(struct mailbox *m, int wait) {
    sb_lease *l = NULL;
    pthread_mutex_lock(&m->mu);
    while (m->count == 0 && !m->closed && wait) pthread_cond_wait(&m->cv, &m->mu);
    if (m->count > 0) {
        l = m->items[--m->count];
        pthread_cond_broadcast(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    return l;
}

static void release_checked(sb_lease *l) {
    uint64_t id = 0;
    if (sb_lease_id(l, &id) != SB_OK || id == 0) atomic_fetch_add(&worker_failures, 1);
    if (sb_lease_release(l) != SB_OK) atomic_fetch_add(&worker_failures, 1);
    if (sb_lease_release(l) != SB_INVALID_HANDLE) atomic_fetch_add(&worker_failures, 1);
    if (sb_lease_id(l, &id) != SB_INVALID_HANDLE) atomic_fetch_add(&worker_failures, 1);
}

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg;
    struct mailbox *mine = &boxes[me], *next = &boxes[(me + 1) % WORKERS];
    for (int i = 0; i < PER_WORKER; i++) {
        sb_lease *l = NULL;
        if (sb_pool_acquire(pool, 10000, &l) != SB_OK || l == NULL) {
            atomic_fetch_add(&worker_failures, 1);
            break;
        }
        if (i % 2 == 0) {
            box_put(next, l); /* released by the next worker */
        } else {
            release_checked(l);
        }
        sb_lease *theirs = box_take(mine, 0);
        if (theirs != NULL) release_checked(theirs);
    }
    /* Leases still in a box when its worker is done go to that box's drainer. */
    return NULL;
}

static void *drainer(void *arg) {
    struct mailbox *m = arg;
    sb_lease *l;
    while ((l = box_take(m, 1)) != NULL) release_checked(l);
    return NULL;
}

static int cross_thread_release(void) {
    sb_pool *p = NULL;
    const char *settings[] = {"pool.max_size", "16", NULL};
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, settings[0], settings[1]));
    EXPECT_OK(sb_pool_new(manager, "slots-threads", server.target, cfg, &p));
    EXPECT_OK(sb_config_free(cfg));
    sb_pool *saved = pool;
    pool = p;
    atomic_store(&worker_failures, 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < WORKERS; i++) {
            pthread_mutex_init(&boxes[i].mu, NULL);
            pthread_cond_init(&boxes[i].cv, NULL);
            boxes[i].count = 0;
            boxes[i].closed = 0;
        }
        pthread_t w[WORKERS], d[WORKERS];
        for (int i = 0; i < WORKERS; i++) EXPECT(pthread_create(&d[i], NULL, drainer, &boxes[i]) == 0);
        for (int i = 0; i < WORKERS; i++)
            EXPECT(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i) == 0);
        for (int i = 0; i < WORKERS; i++) pthread_join(w[i], NULL);
        for (int i = 0; i < WORKERS; i++) {
            pthread_mutex_lock(&boxes[i].mu);
            boxes[i].closed = 1;
            pthread_cond_broadcast(&boxes[i].cv);
            pthread_mutex_unlock(&boxes[i].mu);
        }
        for (int i = 0; i < WORKERS; i++) pthread_join(d[i], NULL);
        for (int i = 0; i < WORKERS; i++) {
            pthread_mutex_destroy(&boxes[i].mu);
            pthread_cond_destroy(&boxes[i].cv);
        }
    }
    pool = saved;
    EXPECT(atomic_load(&worker_failures) == 0);
    /* Every lease went back: nothing is leased, and the pool still serves. */
    sb_pool_stats s;
    EXPECT_OK(get_stats(p, &s));
    EXPECT(s.leased == 0);
    sb_lease *l = NULL;
    EXPECT_OK(sb_pool_acquire(p, 5000, &l));
    EXPECT_OK(sb_lease_release(l));
    EXPECT_OK(sb_pool_free(p));
    return 0;
}

int main(void) {
    alarm(600);
    if (echo_start(&server) != 0) {
        printf("FAIL start echo server\n0 passed, 1 failed\n");
        return 1;
    }
    if (sb_manager_new(NULL, &manager) != SB_OK ||
        sb_pool_new(manager, "slots", server.target, NULL, &pool) != SB_OK) {
        printf("FAIL setup: %s\n0 passed, 1 failed\n", last_error());
        echo_stop(&server);
        return 1;
    }
    /* One connection, opened and returned, so that try_acquire finds it idle. */
    sb_lease *first = NULL;
    if (sb_pool_acquire(pool, 5000, &first) != SB_OK || sb_lease_release(first) != SB_OK) {
        printf("FAIL warm: %s\n0 passed, 1 failed\n", last_error());
        echo_stop(&server);
        return 1;
    }
    RUN(reused_slot_rejects_stale_handles);
    RUN(discard_then_reuse);
    RUN(cross_thread_release);
    if (sb_pool_free(pool) != SB_OK || sb_manager_free(manager) != SB_OK) {
        printf("FAIL teardown: %s\n", last_error());
        harness_failed++;
    }
    echo_stop(&server);
    return harness_summary();
}
