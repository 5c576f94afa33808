/* Cost of acquire+release through the C ABI, beside a no-op call into the library
 * and the liveness check's syscall alone. Built and run by bench/run.sh.
 *
 *   c_overhead <tcp://host:port> <iterations> <repetitions> [op]
 *
 * For each op (all of them unless one is named), prints one line:
 *   <op> <iterations> <ns/op of repetition 1> <ns/op of repetition 2> ...
 * Ops:
 *   noop     sb_status_str(0)
 *   try      sb_pool_try_acquire + sb_lease_release   (an idle connection is there)
 *   acquire  sb_pool_acquire(timeout -1) + sb_lease_release
 *   peek     recv(fd, 1, MSG_PEEK | MSG_DONTWAIT) on a connected socket: the syscall
 *            that the pool's liveness check makes on every checkout
 * Exits 0 when every op ran, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "switchboard.h"

static volatile uintptr_t sink;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, sb_status st) {
    char msg[512];
    size_t n = 0;
    msg[0] = '\0';
    sb_last_error(msg, sizeof msg, &n);
    fprintf(stderr, "c_overhead: %s: %s: %s\n", what, sb_status_str(st), msg);
    return 1;
}

static int run_noop(long n) {
    for (long i = 0; i < n; i++) sink += (uintptr_t)sb_status_str(0);
    return 0;
}

static int run_try(sb_pool *pool, long n) {
    for (long i = 0; i < n; i++) {
        sb_lease *lease = NULL;
        sb_status st = sb_pool_try_acquire(pool, &lease);
        if (st != SB_OK) return fail("sb_pool_try_acquire", st);
        if (lease == NULL) {
            fprintf(stderr, "c_overhead: no idle connection\n");
            return 1;
        }
        sink += (uintptr_t)lease;
        st = sb_lease_release(lease);
        if (st != SB_OK) return fail("sb_lease_release", st);
    }
    return 0;
}

static int run_acquire(sb_pool *pool, long n) {
    for (long i = 0; i < n; i++) {
        sb_lease *lease = NULL;
        sb_status st = sb_pool_acquire(pool, -1, &lease);
        if (st != SB_OK) return fail("sb_pool_acquire", st);
        sink += (uintptr_t)lease;
        st = sb_lease_release(lease);
        if (st != SB_OK) return fail("sb_lease_release", st);
    }
    return 0;
}

static int run_peek(int fd, long n) {
    for (long i = 0; i < n; i++) {
        char byte;
        sink += (uintptr_t)recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    }
    return 0;
}

static int connect_to(const char *target) {
    const char *hp = strncmp(target, "tcp://", 6) == 0 ? target + 6 : target;
    const char *colon = strrchr(hp, ':');
    if (colon == NULL) return -1;
    char host[64];
    size_t len = (size_t)(colon - hp);
    if (len >= sizeof host) return -1;
    memcpy(host, hp, len);
    host[len] = '\0';
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s tcp://host:port iterations repetitions [op]\n", argv[0]);
        return 2;
    }
    const char *target = argv[1];
    long n = atol(argv[2]);
    int reps = atoi(argv[3]);
    const char *only = argc > 4 ? argv[4] : NULL;
    if (n <= 0 || reps <= 0 || reps > 100) {
        fprintf(stderr, "c_overhead: iterations must be > 0, repetitions 1..100\n");
        return 2;
    }

    sb_manager *manager = NULL;
    sb_pool *pool = NULL;
    sb_status st = sb_manager_new(NULL, &manager);
    if (st != SB_OK) return fail("sb_manager_new", st);
    st = sb_pool_new(manager, "bench", target, NULL, &pool);
    if (st != SB_OK) return fail("sb_pool_new", st);
    /* Open the one connection every op then reuses. */
    if (run_acquire(pool, 1) != 0) return 1;
    int fd = connect_to(target);
    if (fd < 0) {
        fprintf(stderr, "c_overhead: cannot connect to %s\n", target);
        return 1;
    }

    static const char *const ops[] = {"noop", "try", "acquire", "peek"};
    int status = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const char *op = ops[k];
        if (only != NULL && strcmp(only, op) != 0) continue;
        printf("%s %ld", op, n);
        for (int r = -1; r < reps; r++) {
            long iters = r < 0 ? (n < 1000 ? n : 1000) : n; /* r = -1: warm-up */
            uint64_t t = now_ns();
            int rc = k == 0   ? run_noop(iters)
                     : k == 1 ? run_try(pool, iters)
                     : k == 2 ? run_acquire(pool, iters)
                              : run_peek(fd, iters);
            uint64_t dt = now_ns() - t;
            if (rc != 0) {
                status = 1;
                break;
            }
            if (r >= 0) printf(" %.2f", (double)dt / (double)iters);
        }
        printf("\n");
        fflush(stdout);
    }

    close(fd);
    sb_pool_free(pool);
    sb_manager_close(manager, 5000);
    sb_manager_free(manager);
    return status;
}
