/* The embedded server (issue 11) from C: "the server test recipe" of
 * .notes/server-api.md, the same program as core/tests/server.rs. This program:
 *   1. starts the echo server and a manager with server.listen=127.0.0.1:0,
 *      server.token, the manual clock, registry.heartbeat_interval=30s and
 *      registry.connection_timeout=90s;
 *   2. makes pool `echo` on the echo server and registers session key (telemetry, race-1);
 *   3. installs the registry auth hook (sb_registry_set_authenticator): token `tok-<user>`
 *      is user <user>, anything else "unknown token"; topic `forbidden` is refused
 *      ("topic forbidden is closed"); the hub calls it from switchboard's threads;
 *   4. checks that server.listen=0.0.0.0:0 with no token is SB_INVALID_ARGUMENT;
 *   5. runs $SB_TEST_PYTHON tests/fixtures/server_client.py (curl on every admin route,
 *      promtool, gRPC, 100 WebSocket clients), polling waitpid(WNOHANG) while it pulls
 *      hub messages (sb_hub_recv, 100 ms) and answers the driver's commands:
 *      "broadcast" (an envelope to topics t0..t3, then a fence to everyone) and
 *      "advance" (sb_manager_advance_clock; the driver then runs the registry's pass
 *      through POST /registry/cleanup, see cmd_advance);
 *   6. checks that the driver exited 0, then closes the manager.
 * Plus the C-only checks: the addresses into the caller's buffer (size asked first, too
 * small, exact), SB_NOT_FOUND / SB_TIMEOUT / SB_UNAVAILABLE with the server off and
 * after close, and a hub message freed twice (SB_INVALID_HANDLE).
 * Run under valgrind and ASan by `make test-c`. */
#include "harness.h"

#include <fcntl.h>
#include <stdatomic.h>

#define TOKEN "secret-token"
#define DRIVER_LIMIT_MS 240000

/* ---- the recipe's auth hook ------------------------------------------------------ */

static atomic_int authenticated;
static atomic_int refused;

static int auth_token(void *ud, const char *token, sb_grant *grant, char *why, size_t why_len) {
    (void)ud;
    if (strncmp(token, "tok-", 4) != 0 || token[4] == '\0') {
        snprintf(why, why_len, "unknown token");
        atomic_fetch_add(&refused, 1);
        return 1;
    }
    if (sb_grant_set_user(grant, token + 4) != SB_OK ||
        sb_grant_add_meta(grant, "auth", "token") != SB_OK) {
        snprintf(why, why_len, "the grant could not be filled: %s", last_error());
        return 1;
    }
    atomic_fetch_add(&authenticated, 1);
    return 0;
}

static int auth_topic(void *ud, uint64_t id, const char *user, const char *topic, char *why,
                      size_t why_len) {
    (void)ud;
    (void)id;
    (void)user;
    if (strcmp(topic, "forbidden") == 0) {
        snprintf(why, why_len, "topic forbidden is closed");
        return 1;
    }
    return 0;
}

/* ---- reading the driver's commands -------------------------------------------------- */

/* The JSON value after `"key":` in `json` (a flat look-up, enough for the driver's
 * `{"cmd":"advance","seconds":30}`), or NULL. */
static const char *json_value(const char *json, const char *key) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *p = strstr(json, quoted);
    if (p == NULL) return NULL;
    p += strlen(quoted);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Whether `"key":"want"` is in `json`. */
static int json_is(const char *json, const char *key, const char *want) {
    const char *v = json_value(json, key);
    if (v == NULL || *v != '"') return 0;
    size_t n = strlen(want);
    return strncmp(v + 1, want, n) == 0 && v[1 + n] == '"';
}

/* Encodes an envelope into `buf` (cap bytes). */
static sb_status envelope(const char *type, const char *topic, const char *data, char *buf,
                          size_t cap, size_t *len) {
    size_t need = 0;
    sb_status st = sb_envelope_encode(type, topic, data, NULL, buf, cap, &need);
    *len = need > 0 ? need - 1 : 0;
    return st;
}

static int broadcast_text(sb_manager *m, const sb_target *t, const char *text, size_t len) {
    sb_broadcast_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    EXPECT_OK(sb_registry_broadcast(m, t, (const uint8_t *)text, len, true, &r));
    return 0;
}

typedef struct {
    int messages;
    int broadcasts;
    int advances;
} driver_counts;

/* "broadcast": to topic t<k> (k in 0..3) {type:data, topic:t<k>, data:{n:k}}, then a
 * fence to everyone. */
static int cmd_broadcast(sb_manager *m) {
    char text[256];
    size_t len = 0;
    for (int k = 0; k < 4; k++) {
        char topic[8], data[16];
        snprintf(topic, sizeof topic, "t%d", k);
        snprintf(data, sizeof data, "{\"n\":%d}", k);
        EXPECT_OK(envelope("data", topic, data, text, sizeof text, &len));
        const char *topics[] = {topic};
        sb_target t = reg_target();
        t.topics = topics;
        t.topics_len = 1;
        if (broadcast_text(m, &t, text, len)) return 1;
    }
    EXPECT_OK(envelope("fence", NULL, NULL, text, sizeof text, &len));
    sb_target all = reg_target();
    all.all = true;
    return broadcast_text(m, &all, text, len);
}

/* "advance": the clock forward by data.seconds. Only the clock: the driver runs the
 * registry's pass itself (POST /registry/cleanup) once it has seen the clock move, and
 * it first reads the paused clients' idle_ms, so an sb_registry_cleanup here would
 * remove them as stale before it looks (the driver then fails with a 404). */
static int cmd_advance(sb_manager *m, const char *data) {
    const char *v = json_value(data, "seconds");
    if (v == NULL) FAILF("cmd advance without seconds: %s", data);
    char *end = NULL;
    double secs = strtod(v, &end);
    if (end == v || secs < 0 || secs > 1e6) FAILF("cmd advance with bad seconds: %s", data);
    EXPECT_OK(sb_manager_advance_clock(m, (uint64_t)(secs * 1000.0 + 0.5)));
    return 0;
}

/* Acts on one hub message (the driver's `data` messages carry its commands). */
static int act(sb_manager *m, const sb_hub_message *msg, driver_counts *n) {
    n->messages++;
    EXPECT(msg->struct_size >= sizeof *msg);
    EXPECT(msg->type != NULL && msg->text != NULL);
    EXPECT(strlen(msg->text) == msg->text_len);
    if (strcmp(msg->type, "data") != 0) return 0;
    char *data = malloc(msg->text_len + 64);
    EXPECT(data != NULL);
    char type[32];
    sb_status st = sb_envelope_decode(msg->text, type, sizeof type, NULL, 0, data,
                                      msg->text_len + 64);
    if (st != SB_OK) {
        free(data);
        FAILF("a data message the hub handed over does not decode (%s): %s",
              status_name(st), msg->text);
    }
    int rc = 0;
    if (json_is(data, "cmd", "broadcast")) {
        n->broadcasts++;
        rc = cmd_broadcast(m);
    } else if (json_is(data, "cmd", "advance")) {
        n->advances++;
        rc = cmd_advance(m, data);
    }
    free(data);
    return rc;
}

/* ---- the driver process ---------------------------------------------------------- */

/* Starts the driver on `addr`; its pid, or -1. Its output goes to ours. */
static pid_t driver_start(const char *addr, int echo_port) {
    const char *python = getenv("SB_TEST_PYTHON");
    if (python == NULL || *python == '\0') python = "build/venv/bin/python";
    if (access(python, X_OK) != 0) {
        fprintf(stderr,
                "    SB_TEST_PYTHON=%s cannot be run: `make server-tools` makes build/venv "
                "(websockets, grpcio, grpcio-tools) and build/prometheus\n",
                python);
        return -1;
    }
    char echo[32];
    snprintf(echo, sizeof echo, "127.0.0.1:%d", echo_port);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        execl(python, python, "tests/fixtures/server_client.py", "--addr", addr, "--token",
              TOKEN, "--echo", echo, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Pulls hub messages and answers them until the driver exits (its wait status in
 * *status) or the deadline passes. */
static int drive(sb_manager *m, pid_t pid, int *status, driver_counts *n) {
    long long deadline = now_ms() + DRIVER_LIMIT_MS;
    int freed_twice = 0;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid) return 0;
        if (w < 0 && errno != EINTR) FAILF("waitpid: %s", strerror(errno));
        if (now_ms() > deadline)
            FAILF("the driver still ran after %d s", DRIVER_LIMIT_MS / 1000);
        sb_hub_message *msg = NULL;
        sb_status st = sb_hub_recv(m, 100, &msg);
        if (st == SB_TIMEOUT) {
            EXPECT(msg == NULL);
            continue;
        }
        EXPECT_OK(st);
        EXPECT(msg != NULL);
        int rc = act(m, msg, n);
        EXPECT_OK(sb_hub_message_free(msg));
        if (!freed_twice) {
            /* The snapshot table knows it is gone: no double free. */
            EXPECT_ST(sb_hub_message_free(msg), SB_INVALID_HANDLE);
            EXPECT_ERROR_MENTIONS("sb_hub_message");
            freed_twice = 1;
        }
        if (rc) return rc;
    }
}

static int addr_is_loopback_with_port(const char *addr) {
    const char *prefix = "127.0.0.1:";
    if (strncmp(addr, prefix, strlen(prefix)) != 0) return 0;
    long port = strtol(addr + strlen(prefix), NULL, 10);
    return port > 0 && port < 65536;
}

/* The recipe (see the top of this file). */
static int the_shared_driver_against_a_c_program(void) {
    atomic_store(&authenticated, 0);
    atomic_store(&refused, 0);
    echo_server echo;
    EXPECT(echo_start(&echo) == 0);
    /* 1. The manager. */
    const char *settings[] = {"server.listen", "127.0.0.1:0",
                              "server.token", TOKEN,
                              "registry.heartbeat_interval", "30s",
                              "registry.connection_timeout", "90s",
                              NULL};
    sb_manager *m = NULL;
    EXPECT(reg_manager_open(settings, &m) == 0); /* runtime.clock = manual */
    /* 2. The pool and the session key. */
    sb_pool *pool = NULL;
    EXPECT_OK(sb_pool_new(m, "echo", echo.target, NULL, &pool));
    bool added = false;
    EXPECT_OK(sb_session_register(m, "telemetry", "race-1", &added));
    EXPECT(added);
    /* 3. The auth hook. */
    EXPECT_OK(sb_registry_set_authenticator(m, auth_token, auth_topic, NULL, NULL));
    /* 4. A non-loopback bind without a token. */
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "server.listen", "0.0.0.0:0"));
    sb_manager *open_to_all = NULL;
    EXPECT_ST(sb_manager_new(cfg, &open_to_all), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("server.token");
    EXPECT(open_to_all == NULL);
    EXPECT_OK(sb_config_free(cfg));

    /* 5. The driver, answered until it exits. */
    char addr[64], grpc[64];
    EXPECT_OK(sb_manager_server_address(m, addr, sizeof addr, NULL));
    EXPECT_OK(sb_manager_grpc_address(m, grpc, sizeof grpc, NULL));
    EXPECT(addr_is_loopback_with_port(addr));
    EXPECT(strcmp(addr, grpc) == 0); /* gRPC shares server.listen */
    printf("    server on %s\n", addr);
    pid_t pid = driver_start(addr, echo.port);
    EXPECT(pid > 0);
    int status = 0;
    driver_counts n = {0, 0, 0};
    if (drive(m, pid, &status, &n) != 0) {
        if (waitpid(pid, &status, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        FAILF("stopped the driver (see above)");
    }
    /* 6. It passed; close. */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAILF("the driver failed (wait status 0x%x; its output is above)", status);
    printf("    %d hub messages: %d broadcast and %d advance commands; %d tokens accepted, "
           "%d refused by the C hook\n",
           n.messages, n.broadcasts, n.advances, atomic_load(&authenticated),
           atomic_load(&refused));
    EXPECT(n.broadcasts >= 1 && n.advances >= 2);
    EXPECT(atomic_load(&authenticated) >= 100 && atomic_load(&refused) >= 1);
    uint64_t dropped = 1;
    EXPECT_OK(sb_hub_dropped(m, &dropped));
    EXPECT(dropped == 0);
    EXPECT_OK(sb_pool_free(pool));
    EXPECT_OK(sb_manager_close(m, 5000));
    /* After the close: the hub is gone. */
    sb_hub_message *msg = NULL;
    EXPECT_ST(sb_hub_recv(m, 0, &msg), SB_UNAVAILABLE);
    EXPECT(msg == NULL);
    EXPECT_OK(sb_manager_free(m));
    echo_stop(&echo);
    return 0;
}

/* ---- the C-only checks -------------------------------------------------------------- */

/* No server.listen: no addresses, no messages; after the close the hub is gone. */
static int no_server_by_default(void) {
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    char buf[64] = "untouched";
    size_t need = 7;
    EXPECT_ST(sb_manager_server_address(m, buf, sizeof buf, &need), SB_NOT_FOUND);
    EXPECT_ERROR_MENTIONS("server.listen");
    EXPECT(need == 7 && strcmp(buf, "untouched") == 0); /* outputs only on success */
    EXPECT_ST(sb_manager_grpc_address(m, buf, sizeof buf, &need), SB_NOT_FOUND);
    sb_hub_message *msg = NULL;
    EXPECT_ST(sb_hub_recv(m, 10, &msg), SB_TIMEOUT);
    EXPECT(msg == NULL);
    EXPECT_ST(sb_hub_recv(m, 0, &msg), SB_TIMEOUT);
    EXPECT_ST(sb_hub_recv(m, 0, NULL), SB_INVALID_ARGUMENT);
    uint64_t dropped = 1;
    EXPECT_OK(sb_hub_dropped(m, &dropped));
    EXPECT(dropped == 0);
    EXPECT_ST(sb_hub_dropped(m, NULL), SB_INVALID_ARGUMENT);
    EXPECT_OK(sb_manager_close(m, 1000));
    EXPECT_ST(sb_hub_recv(m, 0, &msg), SB_UNAVAILABLE);
    EXPECT_OK(sb_manager_free(m));
    /* A freed manager is no manager. */
    EXPECT_ST(sb_hub_recv(m, 0, &msg), SB_INVALID_HANDLE);
    EXPECT_ST(sb_manager_server_address(m, buf, sizeof buf, NULL), SB_INVALID_HANDLE);
    EXPECT_ST(sb_hub_recv(NULL, 0, &msg), SB_INVALID_HANDLE);
    /* Freeing: NULL is a no-op; a pointer sb_hub_recv did not make is refused. */
    EXPECT_OK(sb_hub_message_free(NULL));
    sb_hub_message fake;
    memset(&fake, 0, sizeof fake);
    EXPECT_ST(sb_hub_message_free(&fake), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("sb_hub_recv");
    return 0;
}

/* The address into the caller's buffer: the size asked first, a buffer too small, an
 * exact fit. A token-less server on loopback is allowed. */
static int the_address_in_the_callers_buffer(void) {
    const char *settings[] = {"server.listen", "127.0.0.1:0", NULL};
    sb_manager *m = NULL;
    EXPECT(reg_manager_open(settings, &m) == 0);
    size_t need = 0;
    EXPECT_ST(sb_manager_server_address(m, NULL, 0, &need), SB_RESOURCE_EXHAUSTED);
    EXPECT(need > strlen("127.0.0.1:") + 1 && need <= 64);
    char *exact = malloc(need);
    EXPECT(exact != NULL);
    size_t again = 0;
    sb_status st = sb_manager_server_address(m, exact, need, &again);
    if (st != SB_OK || again != need || strlen(exact) + 1 != need ||
        !addr_is_loopback_with_port(exact)) {
        free(exact);
        FAILF("an exact buffer (%zu bytes): %s", need, status_name(st));
    }
    char small[4] = "xyz";
    st = sb_manager_server_address(m, small, sizeof small, &again);
    int small_ok = st == SB_RESOURCE_EXHAUSTED && small[0] == '\0' && again == need;
    char grpc[64];
    int grpc_ok = sb_manager_grpc_address(m, grpc, sizeof grpc, NULL) == SB_OK &&
                  strcmp(grpc, exact) == 0;
    free(exact);
    EXPECT(small_ok);
    EXPECT(grpc_ok);
    EXPECT_ST(sb_manager_server_address(m, NULL, 8, NULL), SB_INVALID_ARGUMENT);
    EXPECT(reg_manager_close(m) == 0);
    return 0;
}

/* server.grpc_listen: a second port, reported by sb_manager_grpc_address. */
static int grpc_on_its_own_port(void) {
    const char *settings[] = {"server.listen", "127.0.0.1:0", "server.grpc_listen",
                              "127.0.0.1:0", NULL};
    sb_manager *m = NULL;
    EXPECT(reg_manager_open(settings, &m) == 0);
    char addr[64], grpc[64];
    EXPECT_OK(sb_manager_server_address(m, addr, sizeof addr, NULL));
    EXPECT_OK(sb_manager_grpc_address(m, grpc, sizeof grpc, NULL));
    EXPECT(addr_is_loopback_with_port(addr) && addr_is_loopback_with_port(grpc));
    EXPECT(strcmp(addr, grpc) != 0);
    EXPECT(reg_manager_close(m) == 0);
    return 0;
}

/* The bind errors: not loopback without a token (either listener), a bad address. */
static int bind_errors(void) {
    const char *cases[][4] = {
        {"server.listen", "0.0.0.0:0", NULL, NULL},
        {"server.listen", "[::]:0", NULL, NULL},
        {"server.listen", "127.0.0.1:0", "server.grpc_listen", "0.0.0.0:0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_config *cfg = NULL;
        EXPECT_OK(sb_config_new(&cfg));
        for (size_t k = 0; k < 4 && cases[i][k] != NULL; k += 2)
            EXPECT_OK(sb_config_set(cfg, cases[i][k], cases[i][k + 1]));
        sb_manager *m = NULL;
        sb_status st = sb_manager_new(cfg, &m);
        EXPECT_OK(sb_config_free(cfg));
        if (st != SB_INVALID_ARGUMENT)
            FAILF("case %zu: sb_manager_new returned %s, expected SB_INVALID_ARGUMENT", i,
                  status_name(st));
        EXPECT_ERROR_MENTIONS("server.token");
        EXPECT(m == NULL);
    }
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    sb_status st = sb_config_set(cfg, "server.listen", "not an address");
    sb_manager *m = NULL;
    if (st == SB_OK) st = sb_manager_new(cfg, &m);
    EXPECT_OK(sb_config_free(cfg));
    EXPECT(st == SB_INVALID_ARGUMENT && m == NULL);
    return 0;
}

int main(void) {
    RUN(no_server_by_default);
    RUN(the_address_in_the_callers_buffer);
    RUN(grpc_on_its_own_port);
    RUN(bind_errors);
    RUN(the_shared_driver_against_a_c_program);
    return harness_summary();
}
