/* A real redis-server (the Debian package) for the C tests, started as a child
 * process on a loopback port, killed with SIGKILL, restarted on the same port.
 * Include after harness.h (it uses dead_port, connect_loopback, now_ms, sleep_ms).
 *
 * SB_REDIS_SERVER names the binary (default: redis-server on PATH). When it cannot be
 * run, redis_start fails loudly: a test never passes without a real server. */
#ifndef SB_TEST_REDIS_SERVER_H
#define SB_TEST_REDIS_SERVER_H

#include <fcntl.h>

typedef struct {
    pid_t pid;
    int port;
    char target[64]; /* tcp://127.0.0.1:PORT, for a pool */
    char url[64];    /* redis://127.0.0.1:PORT/0, for offsets.redis_url */
} redis;

/* Starts redis-server on loopback port `port` (0: a free one), in memory only or, with
 * `aof_dir`, with an append-only file there fsynced on every write (what a restart on
 * the same dir keeps); waits (up to 15 s) until it accepts. */
static inline int redis_start_with(redis *r, int want_port, const char *aof_dir) {
    const char *bin = getenv("SB_REDIS_SERVER");
    if (bin == NULL || *bin == '\0') bin = "redis-server";
    r->pid = 0;
    r->port = want_port > 0 ? want_port : dead_port();
    if (r->port <= 0) return -1;
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    int exec_pipe[2]; /* closed on a successful exec; carries errno otherwise */
    if (pipe(exec_pipe) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(exec_pipe[0]);
        fcntl(exec_pipe[1], F_SETFD, FD_CLOEXEC);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        if (aof_dir != NULL)
            execlp(bin, bin, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                   "--dir", aof_dir, "--bind", "127.0.0.1", "--port", port, "--daemonize",
                   "no", (char *)NULL);
        else
            execlp(bin, bin, "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                   "--port", port, "--daemonize", "no", (char *)NULL);
        int err = errno;
        if (write(exec_pipe[1], &err, sizeof err) < 0) _exit(126);
        _exit(127);
    }
    close(exec_pipe[1]);
    int err = 0;
    ssize_t n = read(exec_pipe[0], &err, sizeof err);
    close(exec_pipe[0]);
    if (n == (ssize_t)sizeof err) {
        waitpid(pid, NULL, 0);
        fprintf(stderr,
                "\n*** cannot run \"%s\": %s.\n"
                "*** Install the Debian package (apt-get install -y redis-server; `make test-c`\n"
                "*** does this when it is missing) or set SB_REDIS_SERVER. FAILING.\n\n",
                bin, strerror(err));
        return -1;
    }
    r->pid = pid;
    snprintf(r->target, sizeof r->target, "tcp://127.0.0.1:%d", r->port);
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    long long deadline = now_ms() + 15000;
    while (now_ms() < deadline) {
        int fd = connect_loopback(r->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) break;
        sleep_ms(20);
    }
    fprintf(stderr, "\n*** redis-server did not accept on port %d. FAILING.\n\n",
            r->port);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static inline int redis_start_on(redis *r, int want_port) {
    return redis_start_with(r, want_port, NULL);
}

static inline int redis_start(redis *r) { return redis_start_on(r, 0); }

static inline void redis_kill(redis *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

#endif
