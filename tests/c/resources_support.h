/* Helpers of the resource tests (test_resources.c, test_resources_admin.c,
 * test_resources_redis.c): round trips through a resource's handle and through its
 * fd, the resource_state transitions seen on the event queue, a listener of our own
 * (to see a connection arrive and close), and a unix path longer than the OS allows.
 * Include after harness.h. */
#ifndef SB_TEST_RESOURCES_SUPPORT_H
#define SB_TEST_RESOURCES_SUPPORT_H

/* Waits (up to `ms`) until the resource's current fd is readable; 0 when it is. */
static inline int res_wait_readable(sb_resource *h, int ms) {
    int fd = -1;
    if (sb_resource_fd(h, &fd) != SB_OK) return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/* Waits for the resource to be ready, sends `msg` with sb_resource_send_all and reads
 * the echo back with sb_resource_recv (each read bounded by poll on the fd). */
static inline int res_round_trip(sb_resource *h, const char *msg) {
    size_t len = strlen(msg), got = 0;
    char buf[256];
    if (len >= sizeof buf) FAILF("message too long");
    EXPECT_OK(sb_resource_wait_ready(h, 10000));
    EXPECT_OK(sb_resource_send_all(h, (const uint8_t *)msg, len));
    while (got < len) {
        if (res_wait_readable(h, 10000) != 0) FAILF("no echo within 10 s (%s)", last_error());
        size_t n = 0;
        EXPECT_OK(sb_resource_recv(h, (uint8_t *)buf + got, len - got, &n));
        if (n == 0) FAILF("the echo server closed the connection");
        got += n;
    }
    if (memcmp(buf, msg, len) != 0) FAILF("echo differs: %.*s", (int)len, buf);
    return 0;
}

/* The same with plain send/recv on the current fd, as a C program that polls it
 * would (not counted in the resource's bytes). */
static inline int res_round_trip_fd(sb_resource *h, const char *msg) {
    size_t len = strlen(msg), got = 0;
    char buf[256];
    if (len >= sizeof buf) FAILF("message too long");
    EXPECT_OK(sb_resource_wait_ready(h, 10000));
    int fd = -1;
    EXPECT_OK(sb_resource_fd(h, &fd));
    EXPECT(fd >= 0);
    EXPECT(send(fd, msg, len, 0) == (ssize_t)len);
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        if (poll(&p, 1, 10000) != 1) FAILF("no echo on fd %d within 10 s", fd);
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0) FAILF("recv on fd %d: %zd", fd, n);
        got += (size_t)n;
    }
    if (memcmp(buf, msg, len) != 0) FAILF("echo differs: %.*s", (int)len, buf);
    return 0;
}

/* Replaces `*info` by a fresh snapshot of resource `id` (NULL when there is none). */
static inline void res_refresh(sb_manager *m, const char *id, sb_resource_info **info) {
    sb_resource_info_free(*info);
    *info = NULL;
    if (sb_resource_get(m, id, info) != SB_OK) *info = NULL;
}

/* The resource_state transitions of one resource, as "old->new", with their reasons. */
typedef struct {
    int n;
    char t[16][80];
    char reason[16][SB_EVENT_REASON_LEN];
} res_seen;

/* Takes every queued event; records the resource_state ones of resource `id`. */
static inline void res_collect(sb_manager *m, const char *id, res_seen *seen) {
    sb_event ev;
    for (;;) {
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, 0, &ev) != SB_OK) return;
        if (ev.kind != SB_EVENT_RESOURCE_STATE || strcmp(ev.resource, id) != 0) continue;
        if (seen->n >= 16) continue;
        snprintf(seen->t[seen->n], sizeof seen->t[0], "%s->%s", ev.old_state, ev.new_state);
        memcpy(seen->reason[seen->n], ev.reason, sizeof ev.reason);
        seen->n++;
    }
}

/* "/tmp/xxx...": longer than a unix socket path may be (a configuration error). */
static inline void res_long_unix_path(char *out, size_t len) {
    size_t i = (size_t)snprintf(out, len, "unix:///tmp/");
    for (; i < 212 && i + 1 < len; i++) out[i] = 'x';
    out[i] = '\0';
}

/* A loopback listener of the test's own: sees connections arrive and close. */
typedef struct {
    int fd;
    int port;
    char target[64];
} res_listener;

static inline int res_listen(res_listener *l) {
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (l->fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(l->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(l->fd, 16) != 0 ||
        getsockname(l->fd, (struct sockaddr *)&a, &alen) != 0) {
        close(l->fd);
        return -1;
    }
    l->port = ntohs(a.sin_port);
    snprintf(l->target, sizeof l->target, "tcp://127.0.0.1:%d", l->port);
    return 0;
}

/* Accepts one connection (waiting up to 10 s); its reads time out after 10 s. */
static inline int res_accept(res_listener *l) {
    struct pollfd p = {.fd = l->fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 10000) != 1) return -1;
    int c = accept(l->fd, NULL, NULL);
    if (c < 0) return -1;
    struct timeval tv = {10, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return c;
}

static inline void res_unlisten(res_listener *l) { close(l->fd); }

#endif
