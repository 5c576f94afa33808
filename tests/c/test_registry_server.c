/* A real TCP server built on the registry, the way a C program would write one: it
 * listens on loopback, and each accepted client says "HELLO <user> <topic>\n"; the
 * server registers the client with a send callback that writes the message (plus
 * '\n') to the client's fd and a close callback that closes the fd. 40 client sockets
 * made by this test then check, reading back from each socket:
 *   - a broadcast to a topic reaches exactly its subscribers (a broadcast to all that
 *     follows is the next line every other client reads);
 *   - a broadcast with an except set skips exactly those clients;
 *   - an admin disconnect by user closes exactly that user's sockets (the client
 *     reads EOF; the others still get the next broadcast);
 *   - a client whose socket is gone is removed after registry.max_send_failures;
 *   - closing the manager closes every remaining socket, and frees every userdata.
 * Run under valgrind and ASan by `make test-c`. */
#include "harness.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>

#define NCLIENTS 40
#define NUSERS 10

static atomic_int conns_freed;
static atomic_int conns_closed;

typedef struct {
    int fd;
} server_conn;

/* Writes all of `len` bytes (and a newline) to the client's socket. */
static int conn_send(void *ud, uint64_t id, const uint8_t *data, size_t len, bool is_text) {
    (void)id;
    (void)is_text;
    server_conn *c = ud;
    const uint8_t *parts[2] = {data, (const uint8_t *)"\n"};
    size_t lens[2] = {len, 1};
    for (int p = 0; p < 2; p++) {
        size_t off = 0;
        while (off < lens[p]) {
            ssize_t n = send(c->fd, parts[p] + off, lens[p] - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return errno ? errno : 1;
            off += (size_t)n;
        }
    }
    return 0;
}

static void conn_closed(void *ud, uint64_t id, const char *reason) {
    (void)id;
    (void)reason;
    server_conn *c = ud;
    close(c->fd);
    c->fd = -1;
    atomic_fetch_add(&conns_closed, 1);
}

static void conn_free(void *ud) {
    free(ud);
    atomic_fetch_add(&conns_freed, 1);
}

/* A listening socket on 127.0.0.1 (any port); its port in *port. */
static int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Reads one '\n'-terminated line from `fd` into `out` (without the newline), waiting
 * up to 5 s in all. Returns 1 for a line, 0 for EOF, -1 for a timeout or error. Reads
 * one byte at a time so that nothing past the line is consumed. */
static int read_line(int fd, char *out, size_t cap) {
    size_t n = 0;
    long long deadline = now_ms() + 5000;
    while (n + 1 < cap) {
        long long left = deadline - now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        char ch;
        ssize_t got = recv(fd, &ch, 1, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -1;
        if (got == 0) {
            out[n] = 0;
            return n == 0 ? 0 : -1;
        }
        if (ch == '\n') {
            out[n] = 0;
            return 1;
        }
        out[n++] = ch;
    }
    return -1;
}

/* Fails unless client `fd`'s next line is `want`. */
#define EXPECT_LINE(fd, want)                                                          \
    do {                                                                               \
        char line_[256];                                                               \
        int r_ = read_line((fd), line_, sizeof line_);                                 \
        if (r_ != 1) FAILF("client fd %d: no line (%d), wanted \"%s\"", (fd), r_, (want)); \
        if (strcmp(line_, (want)) != 0)                                                \
            FAILF("client fd %d read \"%s\", wanted \"%s\"", (fd), line_, (want));     \
    } while (0)

#define EXPECT_EOF(fd)                                                                 \
    do {                                                                               \
        char line_[256];                                                               \
        int r_ = read_line((fd), line_, sizeof line_);                                 \
        if (r_ != 0) FAILF("client fd %d: expected EOF, got %d \"%s\"", (fd), r_,      \
                           r_ == 1 ? line_ : "");                                      \
    } while (0)

static sb_status broadcast(sb_manager *m, const sb_target *t, const char *text, uint64_t *n) {
    sb_broadcast_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    sb_status st = sb_registry_broadcast(m, t, (const uint8_t *)text, strlen(text), true, &r);
    if (n) *n = r.recipients;
    return st;
}

static sb_target target_none(void) {
    sb_target t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    return t;
}

static int tcp_server_on_the_registry(void) {
    atomic_store(&conns_freed, 0);
    atomic_store(&conns_closed, 0);
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "registry.max_send_failures", "2"));
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(cfg, &m));
    EXPECT_OK(sb_config_free(cfg));
    int port = 0;
    int lfd = listen_loopback(&port);
    EXPECT(lfd >= 0);

    int clients[NCLIENTS];
    uint64_t ids[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        clients[i] = connect_loopback(port);
        EXPECT(clients[i] >= 0);
        char hello[64];
        int hl = snprintf(hello, sizeof hello, "HELLO u%d %s\n", i % NUSERS,
                          i % 2 ? "odd" : "even");
        EXPECT(send(clients[i], hello, (size_t)hl, MSG_NOSIGNAL) == hl);
        /* The server side: accept, read the hello, register. */
        int sfd = accept(lfd, NULL, NULL);
        EXPECT(sfd >= 0);
        char line[64], user[16], topic[16];
        EXPECT(read_line(sfd, line, sizeof line) == 1);
        EXPECT(sscanf(line, "HELLO %15s %15s", user, topic) == 2);
        server_conn *c = malloc(sizeof *c);
        EXPECT(c != NULL);
        c->fd = sfd;
        const char *topics[] = {topic};
        sb_registration reg;
        memset(&reg, 0, sizeof reg);
        reg.struct_size = sizeof reg;
        reg.user = user;
        reg.topics = topics;
        reg.topics_len = 1;
        EXPECT_OK(sb_registry_register(m, &reg, conn_send, NULL, conn_closed, c, conn_free,
                                       &ids[i]));
    }
    size_t len = 0;
    EXPECT_OK(sb_registry_len(m, &len));
    EXPECT(len == NCLIENTS);

    /* A topic broadcast reaches exactly its subscribers: the even clients read it
     * first, the odd ones read the broadcast to all that follows as their next line. */
    sb_target t = target_none();
    const char *even[] = {"even"};
    t.topics = even;
    t.topics_len = 1;
    uint64_t n = 0;
    EXPECT_OK(broadcast(m, &t, "to-even", &n));
    EXPECT(n == NCLIENTS / 2);
    t = target_none();
    t.all = true;
    EXPECT_OK(broadcast(m, &t, "to-all", &n));
    EXPECT(n == NCLIENTS);
    for (int i = 0; i < NCLIENTS; i++) {
        if (i % 2 == 0) EXPECT_LINE(clients[i], "to-even");
        EXPECT_LINE(clients[i], "to-all");
    }

    /* Except: all but clients 0 and 5. */
    uint64_t except[] = {ids[0], ids[5]};
    t.except = except;
    t.except_len = 2;
    EXPECT_OK(broadcast(m, &t, "but-0-5", &n));
    EXPECT(n == NCLIENTS - 2);
    t = target_none();
    t.all = true;
    EXPECT_OK(broadcast(m, &t, "mark", &n));
    for (int i = 0; i < NCLIENTS; i++) {
        if (i != 0 && i != 5) EXPECT_LINE(clients[i], "but-0-5");
        EXPECT_LINE(clients[i], "mark");
    }

    /* An admin disconnect by user closes exactly that user's sockets. */
    t = target_none();
    const char *u3[] = {"u3"};
    t.users = u3;
    t.users_len = 1;
    uint64_t removed = 0;
    EXPECT_OK(sb_registry_disconnect(m, &t, "kicked by admin", &removed));
    EXPECT(removed == NCLIENTS / NUSERS);
    t = target_none();
    t.all = true;
    EXPECT_OK(broadcast(m, &t, "after-kick", &n));
    EXPECT(n == NCLIENTS - NCLIENTS / NUSERS);
    for (int i = 0; i < NCLIENTS; i++) {
        if (i % NUSERS == 3) {
            EXPECT_EOF(clients[i]);
        } else {
            EXPECT_LINE(clients[i], "after-kick");
        }
    }
    EVENTUALLY(5000, (void)0, atomic_load(&conns_freed) == NCLIENTS / NUSERS);

    /* A client that went away: its socket is reset, sends fail, and it is removed
     * after registry.max_send_failures (2). */
    struct linger lg = {1, 0};
    EXPECT(setsockopt(clients[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    close(clients[1]); /* RST */
    clients[1] = -1;
    bool there = true;
    /* Bounded by a deadline, not by a count of sleeps: the removal is not timed. */
    long long gone_by = now_ms() + 10000;
    while (there && now_ms() < gone_by) {
        /* SB_NOT_FOUND once it is gone. */
        (void)sb_registry_send(m, ids[1], (const uint8_t *)"anyone?", 7, true, NULL);
        sleep_ms(20);
        EXPECT_OK(sb_registry_contains(m, ids[1], &there));
    }
    EXPECT(!there);
    sb_conn_info *info = NULL;
    EXPECT_ST(sb_registry_get(m, ids[1], &info), SB_NOT_FOUND);

    /* Closing the manager closes every remaining socket. */
    EXPECT_OK(sb_manager_close(m, 2000));
    for (int i = 0; i < NCLIENTS; i++) {
        if (clients[i] < 0 || i % NUSERS == 3) continue;
        EXPECT_EOF(clients[i]);
    }
    EXPECT(atomic_load(&conns_freed) == NCLIENTS);
    EXPECT(atomic_load(&conns_closed) == NCLIENTS);
    EXPECT_OK(sb_manager_free(m));
    for (int i = 0; i < NCLIENTS; i++) {
        if (clients[i] >= 0) close(clients[i]);
    }
    close(lfd);
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(tcp_server_on_the_registry);
    return harness_summary();
}
