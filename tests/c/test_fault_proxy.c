/* Self-test of the fault proxy fixture (tests/fixtures/fault_proxy.py) through its C
 * helper (tests/c/fault_proxy.h): plain sockets through the proxy to the echo server,
 * one case per fault. Bounded waits only; the one lower bound (latency) checks that the
 * delay happens, not how fast anything is. */
#include "harness.h"

#include "fault_proxy.h"

static echo_server server;
static fault_proxy fp;

/* A case that runs with a fresh proxy in front of the echo server, stopped afterwards. */
#define PROXY_CASE(name)                                                               \
    static int name##_body(void);                                                      \
    static int name(void) {                                                            \
        if (fault_proxy_start(&fp, server.port) != 0) FAILF("cannot start the proxy"); \
        int failed_ = name##_body();                                                   \
        if (fault_proxy_stop(&fp) != 0 && !failed_)                                    \
            FAILF("the proxy did not exit with 0 when its stdin closed");              \
        return failed_;                                                                \
    }                                                                                  \
    static int name##_body(void)

/* Connects to 127.0.0.1:port with a receive timeout of `rcv_ms`; -1 with *err = errno. */
static int tcp_connect(int port, int rcv_ms, int *err) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    struct timeval tv = {rcv_ms / 1000, (rcv_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct timeval snd = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    *err = 0;
    return fd;
}

static int set_rcv_timeout(int fd, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* Sends `msg`, reads up to strlen(msg) bytes back into `out` (NUL-terminated; stops
 * early at EOF). Returns the number read, or -1 (errno set) on an error. */
static int round_trip(int fd, const char *msg, char *out) {
    size_t len = strlen(msg);
    if (send(fd, msg, len, 0) != (ssize_t)len) return -1;
    size_t got = 0;
    for (int i = 0; i < 1000 && got < len; i++) {
        ssize_t n = recv(fd, out + got, len - got, 0);
        if (n < 0) return -1;
        if (n == 0) break;
        got += (size_t)n;
    }
    out[got] = '\0';
    return (int)got;
}

static int refused(int port) {
    int err = 0;
    int fd = tcp_connect(port, 5000, &err);
    if (fd >= 0) close(fd);
    return fd < 0 && err == ECONNREFUSED;
}

#define EXPECT_ECHO(fd, msg)                                                           \
    do {                                                                               \
        char buf_[64];                                                                 \
        int n_ = round_trip((fd), (msg), buf_);                                        \
        if (n_ < 0 || strcmp(buf_, (msg)) != 0)                                        \
            FAILF("echo of \"%s\": got %d bytes \"%s\" (%s)", (msg), n_,               \
                  n_ < 0 ? "" : buf_, n_ < 0 ? strerror(errno) : "short");             \
    } while (0)

#define EXPECT_CMD(line)                                                               \
    do {                                                                               \
        char reply_[256];                                                              \
        if (fault_proxy_command(&fp, (line), reply_, sizeof reply_) != 0)              \
            FAILF("command \"%s\": %s", (line), reply_);                               \
    } while (0)

PROXY_CASE(pass_forwards_and_stats_count_accepts) {
    long accepted = -1, active = -1;
    char mode[32];
    EXPECT(fault_proxy_stats(&fp, &accepted, &active, mode, sizeof mode) == 0);
    EXPECT(accepted == 0 && active == 0 && strcmp(mode, "pass") == 0);
    EXPECT(strncmp(fp.target, "tcp://127.0.0.1:", 16) == 0);
    int err;
    int a = tcp_connect(fp.port, 10000, &err);
    int b = tcp_connect(fp.port, 10000, &err);
    EXPECT(a >= 0 && b >= 0);
    EXPECT_ECHO(a, "hello\n");
    EXPECT_ECHO(b, "world\n");
    EXPECT(fault_proxy_stats(&fp, &accepted, &active, mode, sizeof mode) == 0);
    EXPECT(accepted == 2 && active == 2 && strcmp(mode, "pass") == 0);
    close(a);
    close(b);
    return 0;
}

PROXY_CASE(refuse_then_pass_listens_on_the_same_port) {
    int err;
    int old = tcp_connect(fp.port, 10000, &err);
    EXPECT(old >= 0);
    EXPECT_CMD("refuse");
    EXPECT(refused(fp.port));
    EXPECT_ECHO(old, "still here"); /* existing ones stay */
    EXPECT_CMD("pass");
    int fresh = tcp_connect(fp.port, 10000, &err);
    EXPECT(fresh >= 0);
    EXPECT_ECHO(fresh, "back");
    close(old);
    close(fresh);
    return 0;
}

PROXY_CASE(reset_resets_existing_and_new_until_pass) {
    int err;
    char c;
    int old = tcp_connect(fp.port, 10000, &err);
    EXPECT(old >= 0);
    EXPECT_ECHO(old, "x");
    EXPECT_CMD("reset");
    /* The proxy answers after the RST went out, so the next read sees it. */
    EXPECT(recv(old, &c, 1, 0) == -1 && errno == ECONNRESET);
    close(old);
    /* Accepted, then reset at once: the RST may beat the end of connect(). */
    int fresh = tcp_connect(fp.port, 10000, &err);
    if (fresh < 0) {
        EXPECT(err == ECONNRESET);
    } else {
        EXPECT(recv(fresh, &c, 1, 0) == -1 && errno == ECONNRESET);
        close(fresh);
    }
    EXPECT_CMD("pass");
    int again = tcp_connect(fp.port, 10000, &err);
    EXPECT(again >= 0);
    EXPECT_ECHO(again, "ok");
    close(again);
    return 0;
}

PROXY_CASE(reset_existing_resets_once) {
    int err;
    char c, reply[256];
    int old = tcp_connect(fp.port, 10000, &err);
    EXPECT(old >= 0);
    EXPECT_ECHO(old, "x");
    EXPECT(fault_proxy_command(&fp, "reset_existing", reply, sizeof reply) == 0);
    EXPECT(strcmp(reply, "OK reset_existing connections=1") == 0);
    EXPECT(recv(old, &c, 1, 0) == -1 && errno == ECONNRESET);
    close(old);
    int fresh = tcp_connect(fp.port, 10000, &err);
    EXPECT(fresh >= 0);
    EXPECT_ECHO(fresh, "fine");
    close(fresh);
    return 0;
}

PROXY_CASE(blackhole_answers_nothing_and_holds_existing) {
    int err;
    char buf[16];
    int old = tcp_connect(fp.port, 10000, &err);
    EXPECT(old >= 0);
    EXPECT_ECHO(old, "x");
    EXPECT_CMD("blackhole");
    int fresh = tcp_connect(fp.port, 300, &err); /* the connect itself succeeds */
    EXPECT(fresh >= 0);
    EXPECT(send(fresh, "anyone?", 7, 0) == 7);
    long long t0 = now_ms();
    ssize_t n = recv(fresh, buf, sizeof buf, 0);
    EXPECT(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)); /* timed out, no data */
    EXPECT(now_ms() - t0 < 10000);
    EXPECT(set_rcv_timeout(old, 300) == 0);
    EXPECT(send(old, "held", 4, 0) == 4);
    n = recv(old, buf, sizeof buf, 0);
    EXPECT(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
    char mode[32];
    EXPECT(fault_proxy_stats(&fp, NULL, NULL, mode, sizeof mode) == 0);
    EXPECT(strcmp(mode, "blackhole") == 0);
    EXPECT_CMD("pass");
    EXPECT(set_rcv_timeout(old, 10000) == 0);
    n = recv(old, buf, sizeof buf, 0);
    EXPECT(n == 4 && memcmp(buf, "held", 4) == 0); /* held, not lost */
    close(old);
    close(fresh);
    return 0;
}

PROXY_CASE(latency_delays_each_direction) {
    int err;
    int fd = tcp_connect(fp.port, 10000, &err);
    EXPECT(fd >= 0);
    EXPECT_CMD("latency 200");
    long long t0 = now_ms();
    EXPECT_ECHO(fd, "slow");
    EXPECT(now_ms() - t0 >= 150);
    EXPECT_CMD("latency 0");
    EXPECT_ECHO(fd, "fast");
    close(fd);
    return 0;
}

PROXY_CASE(close_after_cuts_the_stream_then_closes) {
    int err;
    EXPECT_CMD("close_after 5");
    int fd = tcp_connect(fp.port, 10000, &err);
    EXPECT(fd >= 0);
    EXPECT(send(fd, "0123456789", 10, 0) == 10);
    char got[64];
    size_t used = 0;
    int eof = 0;
    for (int i = 0; i < 100 && used < sizeof got - 1; i++) {
        ssize_t n = recv(fd, got + used, sizeof got - 1 - used, 0);
        EXPECT(n >= 0);
        if (n == 0) {
            eof = 1;
            break;
        }
        used += (size_t)n;
    }
    got[used] = '\0';
    EXPECT(eof);
    EXPECT(strcmp(got, "01234") == 0);
    close(fd);
    EXPECT_CMD("close_after 0");
    fd = tcp_connect(fp.port, 10000, &err);
    EXPECT(fd >= 0);
    EXPECT_ECHO(fd, "0123456789");
    close(fd);
    return 0;
}

PROXY_CASE(drop_closes_existing_with_fin) {
    int err;
    char c, reply[256];
    int fd = tcp_connect(fp.port, 10000, &err);
    EXPECT(fd >= 0);
    EXPECT_ECHO(fd, "x");
    EXPECT(fault_proxy_command(&fp, "drop", reply, sizeof reply) == 0);
    EXPECT(strcmp(reply, "OK drop connections=1") == 0);
    EXPECT(recv(fd, &c, 1, 0) == 0); /* EOF, not a reset */
    long active = -1;
    EXPECT(fault_proxy_stats(&fp, NULL, &active, NULL, 0) == 0);
    EXPECT(active == 0);
    close(fd);
    return 0;
}

PROXY_CASE(flap_alternates_refused_and_working) {
    EXPECT_CMD("flap 100 100");
    int saw_refused = 0, saw_echo = 0;
    long long deadline = now_ms() + 10000; /* 2 s is plenty; a loaded machine gets more */
    for (int i = 0; i < 2000 && !(saw_refused && saw_echo) && now_ms() < deadline; i++) {
        int err;
        int fd = tcp_connect(fp.port, 2000, &err);
        if (fd < 0) {
            if (err == ECONNREFUSED) saw_refused = 1;
            else EXPECT(err == ECONNRESET);
        } else {
            char buf[8];
            /* A switch to down mid-way resets it: that counts as neither. */
            if (round_trip(fd, "f", buf) == 1 && buf[0] == 'f') saw_echo = 1;
            close(fd);
        }
        sleep_ms(10);
    }
    if (!(saw_refused && saw_echo)) FAILF("refused %d, echo %d", saw_refused, saw_echo);
    char mode[32];
    EXPECT(fault_proxy_stats(&fp, NULL, NULL, mode, sizeof mode) == 0);
    EXPECT(strcmp(mode, "flap") == 0);
    EXPECT_CMD("pass");
    int err;
    int fd = tcp_connect(fp.port, 10000, &err);
    EXPECT(fd >= 0);
    EXPECT_ECHO(fd, "steady");
    close(fd);
    return 0;
}

static int bad_commands_fail_and_stop_ends_the_proxy(void) {
    char reply[256];
    EXPECT(fault_proxy_start(&fp, server.port) == 0);
    EXPECT(fault_proxy_command(&fp, "explode", reply, sizeof reply) == -1);
    EXPECT(strstr(reply, "unknown command") != NULL);
    EXPECT(fault_proxy_command(&fp, "latency soon", reply, sizeof reply) == -1);
    EXPECT(strstr(reply, "whole numbers") != NULL);
    EXPECT(fault_proxy_stop(&fp) == 0);
    EXPECT(refused(fp.port));
    EXPECT(fault_proxy_command(&fp, "pass", reply, sizeof reply) == -1);
    EXPECT(strstr(reply, "closed") != NULL);
    EXPECT(fault_proxy_stop(&fp) == 0); /* safe twice */
    return 0;
}

int main(void) {
    (void)last_error; /* harness.h helpers for the switchboard API, unused here */
    (void)status_name;
    signal(SIGPIPE, SIG_IGN);
    if (echo_start(&server) != 0) {
        fprintf(stderr, "cannot start the echo server\n");
        return 1;
    }
    RUN(pass_forwards_and_stats_count_accepts);
    RUN(refuse_then_pass_listens_on_the_same_port);
    RUN(reset_resets_existing_and_new_until_pass);
    RUN(reset_existing_resets_once);
    RUN(blackhole_answers_nothing_and_holds_existing);
    RUN(latency_delays_each_direction);
    RUN(close_after_cuts_the_stream_then_closes);
    RUN(drop_closes_existing_with_fin);
    RUN(flap_alternates_refused_and_working);
    RUN(bad_commands_fail_and_stop_ends_the_proxy);
    fault_proxy_stop(&fp);
    echo_stop(&server);
    return harness_summary();
}
