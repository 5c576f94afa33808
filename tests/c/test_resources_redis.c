/* Tried as a new user would: a named resource to a real redis-server shared by two
 * consumers, with resources.on_connect = "HELLO 3\r\nSUBSCRIBE news\r\n" (RESP3, so
 * the subscribed connection can still PUBLISH). "reader" reads the pushes, "publisher"
 * publishes on the same connection. redis-server is killed (SIGKILL) and restarted on
 * the same port: both consumers go on (report the failure, wait_ready, publish and read
 * again) without the program reconnecting or resubscribing anything.
 *
 * SB_REDIS_SERVER names the binary; without a real server this test FAILS. */
#include "harness.h"
#include "redis_server.h"
#include "resources_support.h"

static redis server;

/* What the reader has received and not yet matched. */
static char inbox[8192];
static size_t inbox_len;

/* Reads through `reader` until the push of `payload` on channel news arrived (RESP3
 * ">3 message news <payload>"), for at most `ms`. An EOF or an error is reported to the
 * resource and the read goes on once it is ready again. */
static int read_message(sb_resource *reader, const char *payload, int ms) {
    char want[256];
    snprintf(want, sizeof want, ">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$%zu\r\n%s\r\n",
             strlen(payload), payload);
    long long deadline = now_ms() + ms;
    for (;;) {
        inbox[inbox_len] = '\0';
        char *at = strstr(inbox, want);
        if (at != NULL) {
            size_t rest = inbox_len - (size_t)(at + strlen(want) - inbox);
            memmove(inbox, at + strlen(want), rest);
            inbox_len = rest;
            return 0;
        }
        if (now_ms() > deadline) FAILF("no message \"%s\"; got \"%s\"", payload, inbox);
        if (inbox_len >= sizeof inbox - 1) inbox_len = 0; /* not ours: drop it */
        if (res_wait_readable(reader, 100) != 0) continue; /* nothing yet, or no fd now */
        size_t n = 0;
        sb_status st = sb_resource_recv(reader, (uint8_t *)inbox + inbox_len,
                                        sizeof inbox - 1 - inbox_len, &n);
        if (st != SB_OK || n == 0) {
            /* The connection is gone: say so, and wait for the resource to redial. */
            EXPECT_OK(sb_resource_report_failure(reader));
            sb_resource_wait_ready(reader, 200);
            continue;
        }
        inbox_len += n;
    }
}

/* PUBLISH news <payload> through `publisher`. */
static int publish(sb_resource *publisher, const char *payload) {
    char cmd[256];
    int len = snprintf(cmd, sizeof cmd, "PUBLISH news %s\r\n", payload);
    EXPECT_OK(sb_resource_wait_ready(publisher, 10000));
    EXPECT_OK(sb_resource_send_all(publisher, (const uint8_t *)cmd, (size_t)len));
    return 0;
}

static int two_consumers_share_a_subscribed_redis_connection_across_a_restart(void) {
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    const char *keys[] = {"endpoint", "resources.on_connect", "health.interval",
                          "backoff.initial", "backoff.max"};
    const char *values[] = {server.target, "HELLO 3\\r\\nSUBSCRIBE news\\r\\n", "50ms", "20ms",
                            "200ms"};
    EXPECT_OK(sb_resource_create(m, "redis", "tcp", keys, values, 5));
    sb_resource *reader = NULL, *publisher = NULL;
    EXPECT_OK(sb_resource_attach(m, "redis", "reader", &reader));
    EXPECT_OK(sb_resource_attach(m, "redis", "publisher", &publisher));
    EXPECT_OK(sb_resource_wait_ready(reader, 10000));
    if (publish(publisher, "first")) return 1;
    if (read_message(reader, "first", 10000)) return 1;

    /* redis-server dies; the resource notices (the reader's EOF is reported) and
     * recovers once it is back on the same port, subscribing again by itself. */
    int port = server.port;
    redis_kill(&server);
    sb_resource_state st = 0;
    long long deadline = now_ms() + 10000;
    for (;;) {
        EXPECT_OK(sb_resource_status(reader, &st));
        if (st != SB_RESOURCE_CONNECTED) break;
        if (now_ms() > deadline) FAILF("still connected 10 s after redis-server was killed");
        char byte;
        size_t n = 0;
        if (res_wait_readable(reader, 50) == 0 &&
            (sb_resource_recv(reader, (uint8_t *)&byte, 1, &n) != SB_OK || n == 0))
            EXPECT_OK(sb_resource_report_failure(reader));
    }
    EXPECT(st == SB_RESOURCE_RECOVERING);
    EXPECT_ST(sb_resource_wait_ready(publisher, 100), SB_TIMEOUT);
    if (redis_start_on(&server, port) != 0) FAILF("redis-server did not restart on %d", port);
    inbox_len = 0; /* what was read before the kill belongs to the old connection */
    EXPECT_OK(sb_resource_wait_ready(publisher, 15000));
    EXPECT_OK(sb_resource_wait_ready(reader, 15000));
    if (publish(publisher, "second")) return 1;
    if (read_message(reader, "second", 10000)) return 1;

    sb_resource_info *info = NULL;
    EXPECT_OK(sb_resource_get(m, "redis", &info));
    EXPECT(info->state == SB_RESOURCE_CONNECTED && info->reconnects >= 1);
    EXPECT(info->consumers_len == 2 && info->bytes_out > 0 && info->bytes_in > 0);
    EXPECT_OK(sb_resource_info_free(info));
    EXPECT_OK(sb_resource_detach(reader));
    EXPECT_OK(sb_resource_detach(publisher));
    EXPECT_OK(sb_resource_delete(m, "redis", false));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (redis_start(&server) != 0) {
        printf("FAIL two_consumers_share_a_subscribed_redis_connection_across_a_restart "
               "(redis-server could not be started)\n");
        return 1;
    }
    RUN(two_consumers_share_a_subscribed_redis_connection_across_a_restart);
    redis_kill(&server);
    return harness_summary();
}
