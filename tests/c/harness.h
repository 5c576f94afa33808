/* A tiny test harness for switchboard's C tests: a loopback echo server started as a
 * child process (tests/fixtures/echo_server.py), check macros that print the status
 * name and sb_last_error() on failure, and one result line per case.
 *
 * Each case is a function returning 0 on success; the EXPECT macros return 1 from it
 * on the first failed check. main() calls RUN(case) for each and ends with
 * `return harness_summary();`, which prints "N passed, M failed" and returns non-zero
 * on any failure.
 *
 * Environment: SB_PYTHON (default python3) and SB_ECHO_SERVER (default
 * tests/fixtures/echo_server.py) locate the echo server. */
#ifndef SB_TEST_HARNESS_H
#define SB_TEST_HARNESS_H

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "switchboard.h"

static int harness_passed;
static int harness_failed;

/* Milliseconds on the monotonic clock. */
static inline long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The calling thread's last switchboard error message. */
static const char *last_error(void) {
    static _Thread_local char buf[1024];
    size_t n = 0;
    if (sb_last_error(buf, sizeof buf, &n) != SB_OK) {
        return "<sb_last_error failed>";
    }
    return buf;
}

static const char *status_name(sb_status st) {
    switch (st) {
    case SB_OK: return "SB_OK";
    case SB_INVALID_ARGUMENT: return "SB_INVALID_ARGUMENT";
    case SB_NOT_FOUND: return "SB_NOT_FOUND";
    case SB_RESOURCE_EXHAUSTED: return "SB_RESOURCE_EXHAUSTED";
    case SB_FAILED_PRECONDITION: return "SB_FAILED_PRECONDITION";
    case SB_UNAVAILABLE: return "SB_UNAVAILABLE";
    case SB_TIMEOUT: return "SB_TIMEOUT";
    case SB_CANCELLED: return "SB_CANCELLED";
    case SB_INVALID_HANDLE: return "SB_INVALID_HANDLE";
    case SB_IO: return "SB_IO";
    case SB_INTERNAL: return "SB_INTERNAL";
    case SB_UNAUTHENTICATED: return "SB_UNAUTHENTICATED";
    case SB_PERMISSION_DENIED: return "SB_PERMISSION_DENIED";
    }
    return "<unknown status>";
}

#define FAILF(...)                                                                     \
    do {                                                                               \
        fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);                            \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fputc('\n', stderr);                                                           \
        return 1;                                                                      \
    } while (0)

/* Fails the case unless `cond` holds. */
#define EXPECT(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) FAILF("expected %s", #cond);                                      \
    } while (0)

/* Fails the case unless `call` returns status `want`. */
#define EXPECT_ST(call, want)                                                          \
    do {                                                                               \
        sb_status st_ = (call);                                                        \
        if (st_ != (want))                                                             \
            FAILF("%s returned %s, expected %s (last error: %s)", #call,               \
                  status_name(st_), status_name(want), last_error());                  \
    } while (0)

#define EXPECT_OK(call) EXPECT_ST(call, SB_OK)

/* Fails the case unless the last error message contains `needle`. */
#define EXPECT_ERROR_MENTIONS(needle)                                                  \
    do {                                                                               \
        const char *msg_ = last_error();                                               \
        if (strstr(msg_, (needle)) == NULL)                                            \
            FAILF("last error \"%s\" does not mention \"%s\"", msg_, (needle));        \
    } while (0)

#define RUN(fn) harness_run(#fn, fn)

static inline void harness_run(const char *name, int (*fn)(void)) {
    long long t0 = now_ms();
    int failed = fn();
    if (failed) {
        harness_failed++;
        printf("FAIL %s (%lld ms)\n", name, now_ms() - t0);
    } else {
        harness_passed++;
        printf("ok   %s (%lld ms)\n", name, now_ms() - t0);
    }
    fflush(stdout);
}

static inline int harness_summary(void) {
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    fflush(stdout);
    return harness_failed == 0 ? 0 : 1;
}

/* Sleeps `ms` milliseconds. */
static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* sb_pool_get_stats with struct_size set, the way a program calls it. */
static inline sb_status get_stats(sb_pool *pool, sb_pool_stats *s) {
    memset(s, 0, sizeof *s);
    s->struct_size = sizeof *s;
    return sb_pool_get_stats(pool, s);
}

/* Polls until `cond` holds, running `refresh` before each look, for at most `ms`
 * milliseconds (10 ms apart); fails the case when the time is up. */
#define EVENTUALLY(ms, refresh, cond)                                                  \
    do {                                                                               \
        long long deadline_ = now_ms() + (ms);                                         \
        for (;;) {                                                                     \
            refresh;                                                                   \
            if (cond) break;                                                           \
            if (now_ms() > deadline_)                                                  \
                FAILF("still not %s after %d ms (last error: %s)", #cond, (int)(ms),   \
                      last_error());                                                   \
            sleep_ms(10);                                                              \
        }                                                                              \
    } while (0)

/* ---- the echo server ---------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int stdin_fd; /* closing it stops the server */
    int port;
    char target[64]; /* "tcp://127.0.0.1:<port>" */
} echo_server;

/* Starts tests/fixtures/echo_server.py and waits (up to 20 s) for its "PORT <n>" line.
 * Returns 0 on success. */
static inline int echo_start(echo_server *srv) {
    const char *python = getenv("SB_PYTHON");
    const char *script = getenv("SB_ECHO_SERVER");
    if (python == NULL || *python == '\0') python = "python3";
    if (script == NULL || *script == '\0') script = "tests/fixtures/echo_server.py";

    int in[2], out[2];
    if (pipe(in) != 0) return -1;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp(python, python, script, (char *)NULL);
        fprintf(stderr, "cannot run %s %s: %s\n", python, script, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    srv->pid = pid;
    srv->stdin_fd = in[1];
    srv->port = 0;

    char line[128];
    size_t used = 0;
    long long deadline = now_ms() + 20000;
    while (used < sizeof line - 1 && now_ms() < deadline) {
        struct pollfd p = {.fd = out[0], .events = POLLIN, .revents = 0};
        int left = (int)(deadline - now_ms());
        if (poll(&p, 1, left > 0 ? left : 0) <= 0) continue;
        ssize_t n = read(out[0], line + used, 1);
        if (n <= 0) break;
        if (line[used] == '\n') break;
        used++;
    }
    line[used] = '\0';
    close(out[0]);
    if (sscanf(line, "PORT %d", &srv->port) != 1 || srv->port <= 0) {
        fprintf(stderr, "echo server did not report its port (got \"%s\")\n", line);
        close(srv->stdin_fd);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    snprintf(srv->target, sizeof srv->target, "tcp://127.0.0.1:%d", srv->port);
    return 0;
}

/* Stops the server (EOF on its stdin; SIGKILL if it is still there after 5 s). */
static inline void echo_stop(echo_server *srv) {
    close(srv->stdin_fd);
    long long deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) return;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
}

/* Connects to 127.0.0.1:port with 5 s send/receive timeouts; -1 on failure. */
static inline int connect_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* How many connections the server accepted (not counting this query); -1 on error. */
static inline int echo_accepted(const echo_server *srv) {
    int fd = connect_loopback(srv->port);
    if (fd < 0) return -1;
    int result = -1;
    if (send(fd, "STATS\n", 6, 0) == 6) {
        char buf[64];
        size_t used = 0;
        while (used < sizeof buf - 1) {
            ssize_t n = recv(fd, buf + used, sizeof buf - 1 - used, 0);
            if (n <= 0) break;
            used += (size_t)n;
            if (buf[used - 1] == '\n') break;
        }
        buf[used] = '\0';
        if (sscanf(buf, "accepted=%d", &result) != 1) result = -1;
    }
    close(fd);
    return result;
}

/* A loopback port with nothing listening on it. */
static inline int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

/* Sends `msg` through the lease and reads the same number of bytes back into `out`
 * (NUL-terminated; `out` must hold strlen(msg) + 1 bytes). */
static inline sb_status lease_round_trip(sb_lease *lease, const char *msg, char *out) {
    size_t len = strlen(msg);
    sb_status st = sb_lease_send_all(lease, (const uint8_t *)msg, len);
    if (st != SB_OK) return st;
    size_t got = 0;
    while (got < len) {
        size_t n = 0;
        st = sb_lease_recv(lease, (uint8_t *)out + got, len - got, &n);
        if (st != SB_OK) return st;
        if (n == 0) break; /* peer closed */
        got += n;
    }
    out[got] = '\0';
    return SB_OK;
}


/* A manager with default settings and one pool named `name` to `target`, configured
 * with `settings` (key, value, ..., NULL; NULL for none). */
static inline int open_pool_to(const char *name, const char *target, const char *const *settings,
                               sb_manager **manager, sb_pool **pool) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i += 2) {
        EXPECT_OK(sb_config_set(cfg, settings[i], settings[i + 1]));
    }
    EXPECT_OK(sb_manager_new(NULL, manager));
    EXPECT_OK(sb_pool_new(*manager, name, target, cfg, pool));
    EXPECT_OK(sb_config_free(cfg));
    return 0;
}

/* Frees the pool, then closes (2 s) and frees the manager. */
static inline int close_pool(sb_manager *manager, sb_pool *pool) {
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_close(manager, 2000));
    EXPECT_OK(sb_manager_free(manager));
    return 0;
}

/* The manager's metrics text in a malloc'd buffer (sized by a first call), or NULL. */
static inline char *metrics_text(sb_manager *m) {
    size_t need = 0;
    if (sb_manager_metrics(m, NULL, 0, &need) != SB_RESOURCE_EXHAUSTED || need < 2) return NULL;
    for (int tries = 0; tries < 5; tries++) {
        size_t len = need + 1024;
        char *buf = malloc(len);
        if (buf == NULL) return NULL;
        sb_status st = sb_manager_metrics(m, buf, len, &need);
        if (st == SB_OK) return buf;
        free(buf);
        if (st != SB_RESOURCE_EXHAUSTED) return NULL;
    }
    return NULL;
}

/* ---- the registry (test_registry.c and test_registry_admin.c) ---- */

/* Fails unless `call` returns `want` and the last error contains `needle`. */
#define EXPECT_ERR(call, want, needle)                                                 \
    do {                                                                               \
        EXPECT_ST(call, want);                                                         \
        EXPECT_ERROR_MENTIONS(needle);                                                 \
    } while (0)

/* A manager on the manual clock with `settings` (key, value, ..., NULL). */
static inline int reg_manager_open(const char *const *settings, sb_manager **m) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "runtime.clock", "manual"));
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i += 2) {
        EXPECT_OK(sb_config_set(cfg, settings[i], settings[i + 1]));
    }
    EXPECT_OK(sb_manager_new(cfg, m));
    EXPECT_OK(sb_config_free(cfg));
    return 0;
}

/* Closes and frees a manager. */
static inline int reg_manager_close(sb_manager *m) {
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

/* A registration of `user` (NULL: none) on `ntopics` topics. */
static inline sb_registration reg_of(const char *user, const char **topics, size_t ntopics) {
    sb_registration r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.user = user;
    r.topics = topics;
    r.topics_len = ntopics;
    return r;
}

/* An sb_target with only struct_size set: fill in whom it is for. */
static inline sb_target reg_target(void) {
    sb_target t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    return t;
}

/* Registers an outbox connection of `user` on `topics`. */
static inline int reg_outbox(sb_manager *m, const char *user, const char **topics, size_t n,
                             uint64_t *id) {
    sb_registration r = reg_of(user, topics, n);
    EXPECT_OK(sb_registry_register_outbox(m, &r, id));
    return 0;
}

/* Broadcasts `text` (a text message) to `t`, filling `*r`. */
static inline sb_status bcast(sb_manager *m, const sb_target *t, const char *text,
                               sb_broadcast_report *r) {
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    return sb_registry_broadcast(m, t, (const uint8_t *)text, strlen(text), true, r);
}

/* A recording send-callback sink. */
typedef struct {
    pthread_mutex_t mu;
    char got[8192];
    int messages;
    int pings;
    int closed;
    char reason[64];
    int fail; /* send returns this */
    atomic_int *freed;
} recorder;

static inline int rec_send(void *ud, uint64_t id, const uint8_t *data, size_t len, bool is_text) {
    (void)id;
    recorder *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->fail == 0 && strlen(r->got) + len + 2 < sizeof r->got) {
        strncat(r->got, (const char *)data, len);
        strcat(r->got, is_text ? "|" : "#");
        r->messages++;
    }
    int rc = r->fail;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static inline int rec_ping(void *ud, uint64_t id) {
    (void)id;
    recorder *r = ud;
    pthread_mutex_lock(&r->mu);
    r->pings++;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static inline void rec_closed(void *ud, uint64_t id, const char *reason) {
    (void)id;
    recorder *r = ud;
    pthread_mutex_lock(&r->mu);
    r->closed++;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    pthread_mutex_unlock(&r->mu);
}

/* free_userdata: only counts (the case owns the recorder and destroys it after the
 * manager is closed, so it can still read it). */
static inline void rec_free(void *ud) {
    recorder *r = ud;
    atomic_fetch_add(r->freed, 1);
}

static inline void rec_destroy(recorder *r) {
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static inline recorder *rec_new(atomic_int *freed) {
    recorder *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->freed = freed;
    return r;
}

/* Reads one field of a recorder under its lock. */
static inline int rec_int(recorder *r, const int *field) {
    pthread_mutex_lock(&r->mu);
    int v = *field;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* Registers a connection of `user` on `topics` whose sink is recorder `r`. */
static inline int rec_register(sb_manager *m, const char *user, const char **topics, size_t n,
                               recorder *r, uint64_t *id) {
    sb_registration reg = reg_of(user, topics, n);
    EXPECT_OK(sb_registry_register(m, &reg, rec_send, rec_ping, rec_closed, r, rec_free, id));
    return 0;
}

#endif /* SB_TEST_HARNESS_H */
