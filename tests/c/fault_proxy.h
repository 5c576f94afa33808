/* The fault proxy (tests/fixtures/fault_proxy.py) for the C tests: a subprocess between
 * a client and a loopback server that refuses, resets, blackholes, delays, closes after
 * N bytes or flaps on command (the script's docstring lists the commands). Header-only,
 * needs nothing but POSIX; works with or without harness.h.
 *
 *     fault_proxy fp;
 *     if (fault_proxy_start(&fp, server.port) != 0) FAILF("no fault proxy");
 *     // point the pool at fp.target ("tcp://127.0.0.1:<fp.port>") ...
 *     char reply[256];
 *     if (fault_proxy_command(&fp, "refuse", reply, sizeof reply) != 0) FAILF("%s", reply);
 *     fault_proxy_stop(&fp);
 *
 * fault_proxy_stop closes the proxy's stdin (it then closes every connection and exits)
 * and waits up to 10 s before killing it; a test that dies takes its proxy with it too.
 *
 * Environment: SB_PYTHON (default python3); SB_FAULT_PROXY, else fault_proxy.py next to
 * SB_ECHO_SERVER, else tests/fixtures/fault_proxy.py (relative to the working directory).
 *
 * fault_proxy_start ignores SIGPIPE for the whole process, so that a command to a proxy
 * that died fails with an error instead of killing the test. */
#ifndef SB_TEST_FAULT_PROXY_H
#define SB_TEST_FAULT_PROXY_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds to wait for the "PORT <n>" line, and for each command's reply
 * (define them before including this header to change them). */
#ifndef FAULT_PROXY_START_MS
#define FAULT_PROXY_START_MS 30000
#endif
#ifndef FAULT_PROXY_REPLY_MS
#define FAULT_PROXY_REPLY_MS 10000
#endif

typedef struct {
    pid_t pid;
    int stdin_fd;    /* commands go here; closing it stops the proxy */
    int stdout_fd;   /* "PORT <n>", then one reply line per command */
    int port;        /* the loopback port the proxy listens on */
    char target[64]; /* "tcp://127.0.0.1:<port>" */
} fault_proxy;

static inline long long fault_proxy_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one line (without its '\n') from the proxy's stdout into `out`, waiting at most
 * `ms`. Returns 0 on a whole line, -1 on timeout, EOF or error (`out` holds a reason). */
static inline int fault_proxy_read_line(fault_proxy *fp, char *out, size_t out_len, int ms) {
    size_t used = 0;
    long long deadline = fault_proxy_now_ms() + ms;
    if (out_len == 0) return -1;
    for (;;) {
        long long left = deadline - fault_proxy_now_ms();
        if (left <= 0) {
            snprintf(out, out_len, "no reply within %d ms", ms);
            return -1;
        }
        struct pollfd p = {.fd = fp->stdout_fd, .events = POLLIN, .revents = 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue; /* the deadline check above ends it */
        char c;
        ssize_t n = read(fp->stdout_fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(out, out_len, "the proxy closed its stdout (exited?)");
            return -1;
        }
        if (c == '\n') break;
        if (used + 1 < out_len) out[used++] = c;
    }
    out[used] = '\0';
    return 0;
}

/* Starts the proxy in front of 127.0.0.1:upstream_port and waits for its port.
 * Returns 0 on success (fp->port and fp->target set), -1 with a message on stderr. */
static inline int fault_proxy_start(fault_proxy *fp, int upstream_port) {
    const char *python = getenv("SB_PYTHON");
    const char *script = getenv("SB_FAULT_PROXY");
    const char *echo = getenv("SB_ECHO_SERVER");
    char path[4096];
    if (python == NULL || *python == '\0') python = "python3";
    if ((script == NULL || *script == '\0') && echo != NULL && strrchr(echo, '/') != NULL) {
        int dir = (int)(strrchr(echo, '/') - echo);
        snprintf(path, sizeof path, "%.*s/fault_proxy.py", dir, echo);
        script = path;
    }
    if (script == NULL || *script == '\0') script = "tests/fixtures/fault_proxy.py";
    char upstream[64];
    snprintf(upstream, sizeof upstream, "127.0.0.1:%d", upstream_port);

    signal(SIGPIPE, SIG_IGN);
    memset(fp, 0, sizeof *fp);
    fp->pid = -1;
    int in[2], out[2];
    if (pipe(in) != 0) return -1;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    /* Our ends must not leak into other children (an echo server started later would
     * keep this proxy's stdin open, and the proxy would never see EOF). */
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        for (int fd = 3; fd < 1024; fd++) close(fd); /* nothing else of ours */
        execlp(python, python, script, "--upstream", upstream, (char *)NULL);
        fprintf(stderr, "cannot run %s %s: %s\n", python, script, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fp->pid = pid;
    fp->stdin_fd = in[1];
    fp->stdout_fd = out[0];

    char line[128];
    if (fault_proxy_read_line(fp, line, sizeof line, FAULT_PROXY_START_MS) != 0 ||
        sscanf(line, "PORT %d", &fp->port) != 1 || fp->port <= 0) {
        fprintf(stderr, "fault proxy (%s %s) did not report its port: %s\n", python, script,
                line);
        close(fp->stdin_fd);
        close(fp->stdout_fd);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fp->pid = -1;
        return -1;
    }
    snprintf(fp->target, sizeof fp->target, "tcp://127.0.0.1:%d", fp->port);
    return 0;
}

/* Sends one command line (no '\n' needed) and reads its reply into `reply` (may be NULL).
 * Returns 0 when the proxy answered "OK ...", -1 otherwise: an "ERR ..." reply, no reply
 * within FAULT_PROXY_REPLY_MS (the proxy is then told to exit), or a proxy that is gone
 * (`reply` says which). */
static inline int fault_proxy_command(fault_proxy *fp, const char *line, char *reply,
                                      size_t reply_len) {
    char own[256];
    if (reply == NULL || reply_len == 0) {
        reply = own;
        reply_len = sizeof own;
    }
    if (fp->pid <= 0 || fp->stdin_fd < 0) {
        snprintf(reply, reply_len, "the proxy is closed");
        return -1;
    }
    char buf[256];
    int len = snprintf(buf, sizeof buf, "%s\n", line);
    if (len < 0 || (size_t)len >= sizeof buf) {
        snprintf(reply, reply_len, "command too long");
        return -1;
    }
    for (int off = 0; off < len;) {
        ssize_t n = write(fp->stdin_fd, buf + off, (size_t)(len - off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(reply, reply_len, "the proxy is gone (%s)", strerror(errno));
            return -1;
        }
        off += (int)n;
    }
    if (fault_proxy_read_line(fp, reply, reply_len, FAULT_PROXY_REPLY_MS) != 0) {
        /* A late reply would answer the next command: this proxy is done (EOF on its
         * stdin makes it exit; fault_proxy_stop reaps it). */
        close(fp->stdin_fd);
        fp->stdin_fd = -1;
        return -1;
    }
    return strncmp(reply, "OK", 2) == 0 ? 0 : -1;
}

/* The `stats` answer: connections accepted so far, open now, and the mode's name
 * (any output may be NULL). Returns 0 on success, -1 otherwise. */
static inline int fault_proxy_stats(fault_proxy *fp, long *accepted, long *active, char *mode,
                                    size_t mode_len) {
    char reply[256], m[32] = "";
    long acc = -1, act = -1;
    if (fault_proxy_command(fp, "stats", reply, sizeof reply) != 0) return -1;
    if (sscanf(reply, "OK accepted=%ld active=%ld mode=%31s", &acc, &act, m) != 3) return -1;
    if (accepted != NULL) *accepted = acc;
    if (active != NULL) *active = act;
    if (mode != NULL && mode_len > 0) snprintf(mode, mode_len, "%s", m);
    return 0;
}

/* Closes the proxy's stdin and waits up to 10 s for it to exit, then kills it.
 * Returns 0 if it exited on its own with status 0, -1 otherwise. Safe twice. */
static inline int fault_proxy_stop(fault_proxy *fp) {
    if (fp->pid <= 0) return 0;
    if (fp->stdin_fd >= 0) close(fp->stdin_fd);
    int status = 0, result = -1;
    long long deadline = fault_proxy_now_ms() + 10000;
    for (;;) {
        pid_t r = waitpid(fp->pid, &status, WNOHANG);
        if (r == fp->pid) {
            result = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
            break;
        }
        if (r < 0 || fault_proxy_now_ms() > deadline) {
            kill(fp->pid, SIGKILL);
            waitpid(fp->pid, NULL, 0);
            break;
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    close(fp->stdout_fd);
    fp->pid = -1;
    return result;
}

#endif /* SB_TEST_FAULT_PROXY_H */
