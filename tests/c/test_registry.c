/* The live-connection registry through the C API (issue 9): registration with user,
 * metadata and topics; broadcast to topic, user, ids and all with exclusions, checked
 * per connection (outboxes and send callbacks); a slow outbox that never drains meets
 * each queue policy while callback clients get every message; a failing send callback
 * removed after registry.max_send_failures; heartbeats and stale cleanup on the manual
 * clock; every limit; the auth hook's success and both refusals with their codes;
 * list with filters and cursor; disconnect by user and topic; events in order; the
 * switchboard_registry_* metrics lines; the envelope helper; misuse. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* Fails unless `call` returns `want` and the last error contains `needle`. */
#define EXPECT_ERR(call, want, needle)                                                 \
    do {                                                                               \
        EXPECT_ST(call, want);                                                         \
        EXPECT_ERROR_MENTIONS(needle);                                                 \
    } while (0)

/* A manager on the manual clock with `settings` (key, value, ..., NULL). */
static int open_manager(const char *const *settings, sb_manager **m) {
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

static int close_manager(sb_manager *m) {
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

static sb_registration reg_of(const char *user, const char **topics, size_t ntopics) {
    sb_registration r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.user = user;
    r.topics = topics;
    r.topics_len = ntopics;
    return r;
}

static sb_target target_none(void) {
    sb_target t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    return t;
}

/* Registers an outbox connection of `user` on `topics`. */
static int outbox(sb_manager *m, const char *user, const char **topics, size_t n, uint64_t *id) {
    sb_registration r = reg_of(user, topics, n);
    EXPECT_OK(sb_registry_register_outbox(m, &r, id));
    return 0;
}

/* Takes every queued item of outbox `id` (no waiting) into `got` as "a|b|" and fails
 * on anything but messages. */
static int drain(uint64_t id, char *got, size_t cap) {
    got[0] = 0;
    for (int i = 0; i < 1000; i++) {
        uint8_t buf[256];
        size_t n = 0;
        sb_item_kind kind = 0;
        sb_status st = sb_registry_next(id, buf, sizeof buf - 1, 0, &n, &kind);
        if (st == SB_TIMEOUT) return 0;
        EXPECT_OK(st);
        EXPECT(kind == SB_ITEM_TEXT || kind == SB_ITEM_BINARY);
        buf[n] = 0;
        EXPECT(strlen(got) + n + 2 < cap);
        strcat(got, (const char *)buf);
        strcat(got, "|");
    }
    FAILF("outbox %llu never ran dry", (unsigned long long)id);
}

static sb_status bcast(sb_manager *m, const sb_target *t, const char *text, sb_broadcast_report *r) {
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    return sb_registry_broadcast(m, t, (const uint8_t *)text, strlen(text), true, r);
}

/* ---- a recording send-callback sink ---- */

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

static int rec_send(void *ud, uint64_t id, const uint8_t *data, size_t len, bool is_text) {
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

static int rec_ping(void *ud, uint64_t id) {
    (void)id;
    recorder *r = ud;
    pthread_mutex_lock(&r->mu);
    r->pings++;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void rec_closed(void *ud, uint64_t id, const char *reason) {
    (void)id;
    recorder *r = ud;
    pthread_mutex_lock(&r->mu);
    r->closed++;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    pthread_mutex_unlock(&r->mu);
}

/* free_userdata: only counts (the case owns the recorder and destroys it after the
 * manager is closed, so it can still read it). */
static void rec_free(void *ud) {
    recorder *r = ud;
    atomic_fetch_add(r->freed, 1);
}

static void rec_destroy(recorder *r) {
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static recorder *rec_new(atomic_int *freed) {
    recorder *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->freed = freed;
    return r;
}

/* Reads one field of a recorder under its lock. */
static int rec_int(recorder *r, const int *field) {
    pthread_mutex_lock(&r->mu);
    int v = *field;
    pthread_mutex_unlock(&r->mu);
    return v;
}

static int rec_got_is(recorder *r, const char *want) {
    pthread_mutex_lock(&r->mu);
    int same = strcmp(r->got, want) == 0;
    pthread_mutex_unlock(&r->mu);
    return same;
}

/* A uint64_t field (at `offset`) of connection `id`'s snapshot; -1 when it is gone. */
static long long conn_field(sb_manager *m, uint64_t id, size_t offset) {
    sb_conn_info *info = NULL;
    if (sb_registry_get(m, id, &info) != SB_OK) return -1;
    uint64_t v = 0;
    memcpy(&v, (const char *)info + offset, sizeof v);
    sb_conn_info_free(info);
    return (long long)v;
}

static int callback(sb_manager *m, const char *user, const char **topics, size_t n, recorder *r,
                    uint64_t *id) {
    sb_registration reg = reg_of(user, topics, n);
    EXPECT_OK(sb_registry_register(m, &reg, rec_send, rec_ping, rec_closed, r, rec_free, id));
    return 0;
}

/* ---- cases ---- */

static int register_with_user_metadata_and_topics(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *keys[] = {"ip", "ip", "agent"};
    const char *values[] = {"10.0.0.1", "10.0.0.2", "curl"};
    const char *topics[] = {"news", "chat", "news"};
    sb_registration r = reg_of("alice", topics, 3);
    r.meta_keys = keys;
    r.meta_values = values;
    r.meta_len = 3;
    uint64_t id = 0;
    EXPECT_OK(sb_registry_register_outbox(m, &r, &id));
    EXPECT(id > 0);
    sb_conn_info *info = NULL;
    EXPECT_OK(sb_registry_get(m, id, &info));
    EXPECT(info->struct_size == sizeof *info);
    EXPECT(info->id == id);
    EXPECT(strcmp(info->user, "alice") == 0);
    EXPECT(info->meta_len == 2);
    EXPECT(strcmp(info->meta_keys[0], "agent") == 0 && strcmp(info->meta_values[0], "curl") == 0);
    EXPECT(strcmp(info->meta_keys[1], "ip") == 0 && strcmp(info->meta_values[1], "10.0.0.2") == 0);
    EXPECT(info->topics_len == 2);
    EXPECT(strcmp(info->topics[0], "chat") == 0 && strcmp(info->topics[1], "news") == 0);
    EXPECT(strcmp(info->state, "active") == 0);
    EXPECT(strcmp(info->sink, "outbox") == 0);
    EXPECT_OK(sb_conn_info_free(info));
    EXPECT_ST(sb_conn_info_free(info), SB_INVALID_HANDLE);

    /* Metadata changes, subscriptions, contains / len. */
    EXPECT_OK(sb_registry_set_metadata(m, id, "agent", NULL));
    EXPECT_OK(sb_registry_set_metadata(m, id, "room", "7"));
    bool added = false, removed = false, yes = false;
    EXPECT_OK(sb_registry_subscribe(m, id, "sport", &added));
    EXPECT(added);
    EXPECT_OK(sb_registry_subscribe(m, id, "sport", &added));
    EXPECT(!added);
    EXPECT_OK(sb_registry_unsubscribe(m, id, "chat", &removed));
    EXPECT(removed);
    EXPECT_OK(sb_registry_unsubscribe(m, id, "chat", &removed));
    EXPECT(!removed);
    EXPECT_OK(sb_registry_get(m, id, &info));
    EXPECT(info->meta_len == 2 && strcmp(info->meta_keys[1], "room") == 0);
    EXPECT(info->topics_len == 2 && strcmp(info->topics[1], "sport") == 0);
    EXPECT_OK(sb_conn_info_free(info));
    size_t len = 0;
    EXPECT_OK(sb_registry_len(m, &len));
    EXPECT(len == 1);
    EXPECT_OK(sb_registry_contains(m, id, &yes));
    EXPECT(yes);

    /* Anonymous (NULL registration), then unregister. */
    uint64_t anon = 0;
    EXPECT_OK(sb_registry_register_outbox(m, NULL, &anon));
    EXPECT_OK(sb_registry_get(m, anon, &info));
    EXPECT(info->user == NULL && info->topics_len == 0 && info->topics == NULL);
    EXPECT_OK(sb_conn_info_free(info));
    EXPECT_OK(sb_registry_unregister(m, anon, NULL));
    EXPECT_OK(sb_registry_contains(m, anon, &yes));
    EXPECT(!yes);
    EXPECT_ERR(sb_registry_unregister(m, anon, NULL), SB_NOT_FOUND,
               "(it left, or was never registered)");
    uint8_t buf[64];
    size_t n = 0;
    sb_item_kind kind = 0;
    EXPECT_OK(sb_registry_next(anon, buf, sizeof buf, 0, &n, &kind));
    EXPECT(kind == SB_ITEM_CLOSED && n == strlen("unregistered") && memcmp(buf, "unregistered", n) == 0);
    EXPECT_OK(sb_registry_next(anon, buf, sizeof buf, 0, &n, &kind));
    EXPECT(kind == SB_ITEM_CLOSED); /* it repeats */
    EXPECT_OK(sb_registry_outbox_free(anon));
    EXPECT_ST(sb_registry_outbox_free(anon), SB_NOT_FOUND);
    EXPECT_ST(sb_registry_next(anon, buf, sizeof buf, 0, &n, &kind), SB_NOT_FOUND);

    /* Bad input, with core's messages. */
    const char *bad_topics[] = {"ok", ""};
    sb_registration bad = reg_of("bob", bad_topics, 2);
    EXPECT_ERR(sb_registry_register_outbox(m, &bad, &anon), SB_INVALID_ARGUMENT,
               "topics[1] must be a non-empty string");
    bad = reg_of("", NULL, 0);
    EXPECT_ERR(sb_registry_register_outbox(m, &bad, &anon), SB_INVALID_ARGUMENT,
               "user must be a non-empty string");
    const char *empty_key[] = {""};
    bad = reg_of(NULL, NULL, 0);
    bad.meta_keys = empty_key;
    bad.meta_values = values;
    bad.meta_len = 1;
    EXPECT_ERR(sb_registry_register_outbox(m, &bad, &anon), SB_INVALID_ARGUMENT,
               "a metadata key must be a non-empty string");
    const char *null_topic[] = {NULL};
    bad = reg_of(NULL, null_topic, 1);
    EXPECT_ERR(sb_registry_register_outbox(m, &bad, &anon), SB_INVALID_ARGUMENT,
               "topics[0] must not be NULL");
    bad.struct_size = 0;
    EXPECT_ERR(sb_registry_register_outbox(m, &bad, &anon), SB_INVALID_ARGUMENT,
               "struct_size must be set");
    EXPECT_ERR(sb_registry_subscribe(m, id, "", NULL), SB_INVALID_ARGUMENT,
               "topic must be a non-empty string");
    EXPECT_ERR(sb_registry_register_outbox(m, NULL, NULL), SB_INVALID_ARGUMENT,
               "id_out must not be NULL");
    EXPECT_ERR(sb_registry_register(m, NULL, NULL, NULL, NULL, NULL, NULL, &anon),
               SB_INVALID_ARGUMENT, "send must not be NULL");
    EXPECT_OK(sb_registry_len(m, &len));
    EXPECT(len == 1);
    EXPECT_OK(sb_registry_outbox_free(id));
    return close_manager(m);
}

static int broadcast_reaches_exactly_the_right_connections(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *news[] = {"news"};
    const char *news_chat[] = {"news", "chat"};
    const char *chat[] = {"chat"};
    uint64_t a = 0, b = 0, c = 0, d = 0;
    if (outbox(m, "alice", news, 1, &a) || outbox(m, "bob", news_chat, 2, &b) ||
        outbox(m, "bob", chat, 1, &c) || outbox(m, NULL, NULL, 0, &d))
        return 1;
    atomic_int freed = 0;
    recorder *rc = rec_new(&freed);
    uint64_t e = 0;
    if (callback(m, "carol", news, 1, rc, &e)) return 1;

    sb_broadcast_report r;
    sb_target t = target_none();
    t.topics = news;
    t.topics_len = 1;
    uint64_t except_b[] = {b};
    t.except = except_b;
    t.except_len = 1;
    EXPECT_OK(bcast(m, &t, "n1", &r));
    EXPECT(r.struct_size == sizeof r && r.recipients == 2 && r.queued == 2 && r.dropped == 0);

    t = target_none();
    const char *bob[] = {"bob"};
    t.users = bob;
    t.users_len = 1;
    EXPECT_OK(bcast(m, &t, "u1", &r));
    EXPECT(r.recipients == 2);

    /* A topic and a user together: bob's b matches twice and is served once. */
    t = target_none();
    t.topics = news;
    t.topics_len = 1;
    t.users = bob;
    t.users_len = 1;
    EXPECT_OK(bcast(m, &t, "tu", &r));
    EXPECT(r.recipients == 4);

    t = target_none();
    t.all = true;
    uint64_t except_ae[] = {a, e};
    t.except = except_ae;
    t.except_len = 2;
    EXPECT_OK(bcast(m, &t, "all", &r));
    EXPECT(r.recipients == 3);

    t = target_none();
    uint64_t ids[] = {d, a};
    t.ids = ids;
    t.ids_len = 2;
    EXPECT_OK(bcast(m, &t, "ids", &r));
    EXPECT(r.recipients == 2);
    /* A binary message, direct. */
    EXPECT_OK(sb_registry_send(m, e, (const uint8_t *)"bin", 3, false, NULL));

    char got[512];
    if (drain(a, got, sizeof got)) return 1;
    EXPECT(strcmp(got, "n1|tu|ids|") == 0);
    if (drain(b, got, sizeof got)) return 1;
    EXPECT(strcmp(got, "u1|tu|all|") == 0);
    if (drain(c, got, sizeof got)) return 1;
    EXPECT(strcmp(got, "u1|tu|all|") == 0);
    if (drain(d, got, sizeof got)) return 1;
    EXPECT(strcmp(got, "all|ids|") == 0);
    EVENTUALLY(5000, (void)0, rec_got_is(rc, "n1|tu|bin#"));

    /* Errors: nobody named, a NULL target, text that is not UTF-8, an unknown id. */
    t = target_none();
    EXPECT_ERR(bcast(m, &t, "x", &r), SB_INVALID_ARGUMENT,
               "a broadcast target must name at least one topic, user or connection id, or all");
    EXPECT_ERR(sb_registry_broadcast(m, NULL, (const uint8_t *)"x", 1, true, NULL),
               SB_INVALID_ARGUMENT, "target must not be NULL");
    t.all = true;
    EXPECT_ERR(sb_registry_broadcast(m, &t, (const uint8_t *)"\xff", 1, true, NULL),
               SB_INVALID_ARGUMENT, "not UTF-8");
    EXPECT_ERR(sb_registry_send(m, 999999999, (const uint8_t *)"x", 1, true, NULL), SB_NOT_FOUND,
               "no registered connection with id 999999999");

    /* A buffer too small: the message stays queued. */
    EXPECT_OK(sb_registry_send(m, a, (const uint8_t *)"0123456789", 10, false, NULL));
    uint8_t small[4];
    size_t n = 0;
    sb_item_kind kind = 0;
    EXPECT_ERR(sb_registry_next(a, small, sizeof small, 0, &n, &kind), SB_INVALID_ARGUMENT,
               "is 10 bytes and the buffer holds 4");
    uint8_t big[16];
    EXPECT_OK(sb_registry_next(a, big, sizeof big, 1000, &n, &kind));
    EXPECT(kind == SB_ITEM_BINARY && n == 10 && memcmp(big, "0123456789", 10) == 0);
    /* Nothing more: a short wait times out. */
    EXPECT_ST(sb_registry_next(a, big, sizeof big, 20, &n, &kind), SB_TIMEOUT);

    EXPECT_OK(close_manager(m));
    EXPECT(atomic_load(&freed) == 1);
    rec_destroy(rc);
    return 0;
}

static int slow_outbox_meets_each_policy(void) {
    const char *policies[] = {"disconnect", "drop_oldest", "drop_new"};
    for (int p = 0; p < 3; p++) {
        sb_manager *m = NULL;
        const char *settings[] = {"registry.queue_max_messages", "4", "registry.queue_full_policy",
                                  policies[p], NULL};
        if (open_manager(settings, &m)) return 1;
        const char *room[] = {"room"};
        uint64_t slow = 0, fast = 0;
        if (outbox(m, "slow", room, 1, &slow)) return 1;
        atomic_int freed = 0;
        recorder *rc = rec_new(&freed);
        if (callback(m, "fast", room, 1, rc, &fast)) return 1;
        sb_target t = target_none();
        t.topics = room;
        t.topics_len = 1;
        char want[256] = "";
        uint64_t dropped = 0, disconnected = 0;
        for (int i = 0; i < 10; i++) {
            char msg[16];
            snprintf(msg, sizeof msg, "m%d", i);
            strcat(want, msg);
            strcat(want, "|");
            sb_broadcast_report r;
            EXPECT_OK(bcast(m, &t, msg, &r));
            dropped += r.dropped;
            disconnected += r.disconnected;
            /* The fast client keeps up, so only the slow one's queue fills. */
            EVENTUALLY(5000, (void)0, rec_int(rc, &rc->messages) == i + 1);
        }
        EXPECT(rec_got_is(rc, want));
        char got[256];
        bool there = false;
        EXPECT_OK(sb_registry_contains(m, slow, &there));
        if (p == 0) {
            EXPECT(disconnected == 1 && !there);
            uint8_t buf[64];
            size_t n = 0;
            sb_item_kind kind = 0;
            EXPECT_OK(sb_registry_next(slow, buf, sizeof buf, 0, &n, &kind));
            EXPECT(kind == SB_ITEM_CLOSED && n == strlen("slow_consumer") &&
                   memcmp(buf, "slow_consumer", n) == 0);
        } else {
            EXPECT(there && dropped == 6 && disconnected == 0);
            if (drain(slow, got, sizeof got)) return 1;
            EXPECT(strcmp(got, p == 1 ? "m6|m7|m8|m9|" : "m0|m1|m2|m3|") == 0);
        }
        /* A slow_consumer event names the policy's outcome. */
        sb_event ev;
        bool seen = false;
        for (int i = 0; i < 200; i++) {
            ev.struct_size = sizeof ev;
            if (sb_manager_poll_event(m, 0, &ev) != SB_OK) break;
            if (ev.kind == SB_EVENT_SLOW_CONSUMER) {
                EXPECT(ev.connection_id == slow);
                EXPECT(strcmp(ev.reason, policies[p]) == 0);
                EXPECT(strcmp(ev.user, "slow") == 0);
                seen = true;
                break;
            }
        }
        EXPECT(seen);
        EXPECT_OK(sb_registry_outbox_free(slow));
        EXPECT_OK(close_manager(m));
        EXPECT(atomic_load(&freed) == 1);
        rec_destroy(rc);
    }
    return 0;
}

static int failing_sink_is_removed_after_max_failures(void) {
    sb_manager *m = NULL;
    const char *settings[] = {"registry.max_send_failures", "3", NULL};
    if (open_manager(settings, &m)) return 1;
    atomic_int freed = 0;
    recorder *bad = rec_new(&freed);
    bad->fail = 7;
    recorder *good = rec_new(&freed);
    uint64_t b = 0, g = 0;
    if (callback(m, NULL, NULL, 0, bad, &b) || callback(m, NULL, NULL, 0, good, &g)) return 1;
    sb_target t = target_none();
    t.all = true;
    sb_broadcast_report r;
    for (int i = 0; i < 2; i++) EXPECT_OK(bcast(m, &t, "x", &r));
    /* Two failures: still there. */
    EVENTUALLY(5000, (void)0, rec_int(good, &good->messages) == 2);
    EVENTUALLY(5000, (void)0, conn_field(m, b, offsetof(sb_conn_info, failed)) == 2);
    EXPECT_OK(bcast(m, &t, "x", &r));
    EVENTUALLY(5000, (void)0, rec_int(bad, &bad->closed) == 1);
    pthread_mutex_lock(&bad->mu);
    int same = strcmp(bad->reason, "send_failed") == 0;
    pthread_mutex_unlock(&bad->mu);
    EXPECT(same);
    bool there = true;
    EXPECT_OK(sb_registry_contains(m, b, &there));
    EXPECT(!there);
    /* Its userdata is let go once the library is done with it. */
    EVENTUALLY(5000, (void)0, atomic_load(&freed) == 1);
    EXPECT_OK(bcast(m, &t, "y", &r));
    EXPECT(r.recipients == 1);
    EVENTUALLY(5000, (void)0, rec_got_is(good, "x|x|x|y|"));
    sb_registry_stats *s = NULL;
    EXPECT_OK(sb_registry_get_stats(m, &s));
    EXPECT(s->messages_failed == 3);
    EXPECT(s->disconnects_len == 1 && strcmp(s->disconnect_reasons[0], "send_failed") == 0 &&
           s->disconnect_counts[0] == 1);
    EXPECT_OK(sb_registry_stats_free(s));
    EXPECT_OK(close_manager(m));
    EXPECT(atomic_load(&freed) == 2);
    rec_destroy(bad);
    rec_destroy(good);
    return 0;
}

static int heartbeats_and_stale_cleanup_on_the_manual_clock(void) {
    sb_manager *m = NULL;
    const char *settings[] = {"registry.heartbeat_interval", "10s", "registry.connection_timeout",
                              "30s", NULL};
    if (open_manager(settings, &m)) return 1;
    uint64_t quiet = 0, chatty = 0, cb = 0;
    if (outbox(m, "q", NULL, 0, &quiet) || outbox(m, "c", NULL, 0, &chatty)) return 1;
    atomic_int freed = 0;
    recorder *rc = rec_new(&freed);
    if (callback(m, "cb", NULL, 0, rc, &cb)) return 1;
    uint64_t removed = 99, pinged = 99;
    EXPECT_OK(sb_registry_cleanup(m, &removed, &pinged));
    EXPECT(removed == 0 && pinged == 0);

    EXPECT_OK(sb_manager_advance_clock(m, 11000));
    EXPECT_OK(sb_registry_cleanup(m, &removed, &pinged));
    EXPECT(removed == 0 && pinged == 3);
    uint8_t buf[64];
    size_t n = 9;
    sb_item_kind kind = 0;
    EXPECT_OK(sb_registry_next(quiet, buf, sizeof buf, 0, &n, &kind));
    EXPECT(kind == SB_ITEM_PING && n == 0);
    EXPECT_OK(sb_registry_next(chatty, buf, sizeof buf, 0, &n, &kind));
    EXPECT(kind == SB_ITEM_PING);
    EVENTUALLY(5000, (void)0, rec_int(rc, &rc->pings) == 1);
    /* Silent past the heartbeat interval: idle; listing by state shows it. */
    sb_list_filter f;
    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    f.state = "idle";
    sb_conn_list *page = NULL;
    EXPECT_OK(sb_registry_list(m, &f, &page));
    EXPECT(page->len == 3);
    EXPECT_OK(sb_conn_list_free(page));

    /* The chatty client answers (touch), the others stay silent. */
    EXPECT_OK(sb_manager_advance_clock(m, 15000));
    EXPECT_OK(sb_registry_touch(m, chatty));
    f.state = "active";
    EXPECT_OK(sb_registry_list(m, &f, &page));
    EXPECT(page->len == 1 && page->connections[0].id == chatty);
    EXPECT_OK(sb_conn_list_free(page));
    EXPECT_OK(sb_manager_advance_clock(m, 5000)); /* 31 s since the quiet ones spoke */
    EXPECT_OK(sb_registry_cleanup(m, &removed, &pinged));
    EXPECT(removed == 2);
    bool there = false;
    EXPECT_OK(sb_registry_contains(m, chatty, &there));
    EXPECT(there);
    EXPECT_OK(sb_registry_contains(m, quiet, &there));
    EXPECT(!there);
    EXPECT_OK(sb_registry_next(quiet, buf, sizeof buf, 0, &n, &kind));
    EXPECT(kind == SB_ITEM_CLOSED && n == 5 && memcmp(buf, "stale", 5) == 0);
    EVENTUALLY(5000, (void)0, rec_int(rc, &rc->closed) == 1);
    pthread_mutex_lock(&rc->mu);
    int stale = strcmp(rc->reason, "stale") == 0;
    pthread_mutex_unlock(&rc->mu);
    EXPECT(stale);
    EVENTUALLY(5000, (void)0, atomic_load(&freed) == 1);
    sb_registry_stats *s = NULL;
    EXPECT_OK(sb_registry_get_stats(m, &s));
    EXPECT(s->cleanup_runs >= 3 && s->connections == 1);
    EXPECT_OK(sb_registry_stats_free(s));
    EXPECT_OK(sb_registry_outbox_free(quiet));
    EXPECT_OK(sb_registry_outbox_free(chatty));
    if (close_manager(m)) return 1;
    rec_destroy(rc);
    return 0;
}

static int every_limit(void) {
    sb_manager *m = NULL;
    const char *settings[] = {"registry.max_total_connections", "3",
                              "registry.max_connections_per_topic", "2",
                              "registry.max_connections_per_user", "1",
                              "registry.max_topics_per_connection", "2", NULL};
    if (open_manager(settings, &m)) return 1;
    const char *t[] = {"t"};
    const char *three[] = {"a", "b", "c"};
    uint64_t a = 0, b = 0, c = 0, x = 0;
    if (outbox(m, "u", t, 1, &a)) return 1;
    sb_registration r = reg_of("u", NULL, 0);
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &x), SB_RESOURCE_EXHAUSTED,
               "registry.max_connections_per_user (1) reached: user \"u\" already has 1 connections");
    if (outbox(m, "v", t, 1, &b)) return 1;
    r = reg_of("w", t, 1);
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &x), SB_RESOURCE_EXHAUSTED,
               "registry.max_connections_per_topic (2) reached: topic \"t\" already has 2 subscribers");
    r = reg_of("w", three, 3);
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &x), SB_RESOURCE_EXHAUSTED,
               "registry.max_topics_per_connection (2) reached");
    if (outbox(m, "w", three, 2, &c)) return 1;
    EXPECT_ERR(sb_registry_subscribe(m, c, "c", NULL), SB_RESOURCE_EXHAUSTED,
               "registry.max_topics_per_connection (2) reached");
    EXPECT_OK(sb_registry_unsubscribe(m, c, "b", NULL));
    EXPECT_ERR(sb_registry_subscribe(m, c, "t", NULL), SB_RESOURCE_EXHAUSTED,
               "registry.max_connections_per_topic (2) reached");
    r = reg_of(NULL, NULL, 0);
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &x), SB_RESOURCE_EXHAUSTED,
               "registry.max_total_connections (3) reached: 3 connections are registered");
    /* Each refusal is a rejected event naming the limit, and counted by key. */
    const char *want[] = {"registry.max_connections_per_user", "registry.max_connections_per_topic",
                          "registry.max_topics_per_connection",
                          "registry.max_topics_per_connection",
                          "registry.max_connections_per_topic", "registry.max_total_connections"};
    size_t next = 0;
    for (int i = 0; i < 200 && next < 6; i++) {
        sb_event ev;
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, 0, &ev) != SB_OK) break;
        if (ev.kind != SB_EVENT_REJECTED) continue;
        if (strcmp(ev.reason, want[next]) != 0) FAILF("rejected %zu: %s", next, ev.reason);
        next++;
    }
    EXPECT(next == 6);
    sb_registry_stats *s = NULL;
    EXPECT_OK(sb_registry_get_stats(m, &s));
    EXPECT(s->rejections_len == 4);
    uint64_t total = 0;
    for (size_t i = 0; i < s->rejections_len; i++) total += s->rejection_counts[i];
    EXPECT(total == 6);
    EXPECT(strcmp(s->rejection_keys[0], "registry.max_connections_per_topic") == 0 &&
           s->rejection_counts[0] == 2);
    EXPECT(s->topic_counts_len == 2 && strcmp(s->topic_names[0], "t") == 0 &&
           s->topic_counts[0] == 2);
    EXPECT_OK(sb_registry_stats_free(s));
    EXPECT_OK(sb_registry_outbox_free(a));
    EXPECT_OK(sb_registry_outbox_free(b));
    EXPECT_OK(sb_registry_outbox_free(c));
    return close_manager(m);
}

/* ---- the auth hook ---- */

typedef struct {
    atomic_int authenticated;
    atomic_int authorized;
    atomic_int freed;
} auth_state;

static int auth_authenticate(void *ud, const char *token, sb_grant *grant, char *why,
                             size_t why_len) {
    auth_state *s = ud;
    atomic_fetch_add(&s->authenticated, 1);
    if (strncmp(token, "good:", 5) == 0) {
        if (sb_grant_set_user(grant, token + 5) != SB_OK) return 1;
        if (sb_grant_add_meta(grant, "role", "admin") != SB_OK) return 1;
        return 0;
    }
    snprintf(why, why_len, "token %s is expired", token);
    return 1;
}

static int auth_authorize(void *ud, uint64_t id, const char *user, const char *topic, char *why,
                          size_t why_len) {
    (void)id;
    auth_state *s = ud;
    atomic_fetch_add(&s->authorized, 1);
    if (strncmp(topic, "admin.", 6) == 0 && (user == NULL || strcmp(user, "root") != 0)) {
        snprintf(why, why_len, "only root reads %s", topic);
        return 1;
    }
    return 0;
}

static void auth_free(void *ud) {
    auth_state *s = ud;
    atomic_fetch_add(&s->freed, 1);
}

static int auth_hook_success_and_both_refusals(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    uint64_t id = 0;
    sb_registration r = reg_of(NULL, NULL, 0);
    r.token = "good:alice";
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &id), SB_FAILED_PRECONDITION,
               "no authenticate hook is set");
    auth_state st = {0};
    EXPECT_OK(sb_registry_set_authenticator(m, auth_authenticate, auth_authorize, &st, auth_free));
    const char *topics[] = {"news"};
    r = reg_of("ignored", topics, 1);
    r.token = "good:alice";
    EXPECT_OK(sb_registry_register_outbox(m, &r, &id));
    sb_conn_info *info = NULL;
    EXPECT_OK(sb_registry_get(m, id, &info));
    EXPECT(strcmp(info->user, "alice") == 0);
    EXPECT(info->meta_len == 1 && strcmp(info->meta_keys[0], "role") == 0 &&
           strcmp(info->meta_values[0], "admin") == 0);
    EXPECT_OK(sb_conn_info_free(info));

    uint64_t x = 0;
    r.token = "stale-token";
    sb_status got = sb_registry_register_outbox(m, &r, &x);
    EXPECT(got == SB_UNAUTHENTICATED && got == 11);
    EXPECT_ERROR_MENTIONS("the authenticate hook refused the token: token stale-token is expired");
    EXPECT(strcmp(sb_status_str(SB_UNAUTHENTICATED), "unauthenticated") == 0);

    const char *admin[] = {"admin.logs"};
    r = reg_of(NULL, admin, 1);
    r.token = "good:bob";
    got = sb_registry_register_outbox(m, &r, &x);
    EXPECT(got == SB_PERMISSION_DENIED && got == 12);
    EXPECT_ERROR_MENTIONS("the authorize hook refused topic \"admin.logs\": only root reads admin.logs");
    EXPECT(strcmp(sb_status_str(SB_PERMISSION_DENIED), "permission denied") == 0);
    EXPECT_ERR(sb_registry_subscribe(m, id, "admin.keys", NULL), SB_PERMISSION_DENIED,
               "only root reads admin.keys");
    r.token = "good:root";
    EXPECT_OK(sb_registry_register_outbox(m, &r, &x));
    EXPECT(atomic_load(&st.authenticated) == 4);
    EXPECT(atomic_load(&st.authorized) >= 4);
    /* Replacing the hook lets go of the old userdata; removing it too. */
    auth_state st2 = {0};
    EXPECT_OK(sb_registry_set_authenticator(m, auth_authenticate, NULL, &st2, auth_free));
    EXPECT(atomic_load(&st.freed) == 1);
    EXPECT_OK(sb_registry_subscribe(m, id, "admin.keys", NULL)); /* no authorize now */
    EXPECT_OK(sb_registry_set_authenticator(m, NULL, NULL, NULL, NULL));
    EXPECT(atomic_load(&st2.freed) == 1);
    /* A hook left installed is let go by sb_manager_free. */
    auth_state st3 = {0};
    EXPECT_OK(sb_registry_set_authenticator(m, auth_authenticate, auth_authorize, &st3, auth_free));
    EXPECT_OK(sb_registry_outbox_free(id));
    EXPECT_OK(sb_registry_outbox_free(x));
    if (close_manager(m)) return 1;
    EXPECT(atomic_load(&st3.freed) == 1);
    /* On a bad manager, the userdata is freed before the call returns. */
    auth_state st4 = {0};
    EXPECT_ST(sb_registry_set_authenticator(m, auth_authenticate, NULL, &st4, auth_free),
              SB_INVALID_HANDLE);
    EXPECT(atomic_load(&st4.freed) == 1);
    return 0;
}

static int list_with_filters_and_cursor(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    uint64_t ids[7];
    const char *news[] = {"news"};
    for (int i = 0; i < 7; i++) {
        const char *keys[] = {"dc"};
        const char *values[] = {i % 2 ? "east" : "west"};
        sb_registration r = reg_of(i < 3 ? "alice" : "bob", i < 5 ? news : NULL, i < 5 ? 1 : 0);
        r.meta_keys = keys;
        r.meta_values = values;
        r.meta_len = 1;
        EXPECT_OK(sb_registry_register_outbox(m, &r, &ids[i]));
    }
    sb_list_filter f;
    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    f.limit = 3;
    uint64_t seen[8];
    size_t nseen = 0;
    for (int pages = 0; pages < 10; pages++) {
        sb_conn_list *page = NULL;
        EXPECT_OK(sb_registry_list(m, &f, &page));
        EXPECT(page->len <= 3);
        for (size_t i = 0; i < page->len && nseen < 8; i++) seen[nseen++] = page->connections[i].id;
        bool more = page->has_next;
        f.cursor = page->next_cursor;
        EXPECT_OK(sb_conn_list_free(page));
        if (!more) break;
    }
    EXPECT(nseen == 7);
    for (int i = 0; i < 7; i++) EXPECT(seen[i] == ids[i]);

    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    f.user = "bob";
    f.topic = "news";
    sb_conn_list *page = NULL;
    EXPECT_OK(sb_registry_list(m, &f, &page));
    EXPECT(page->len == 2 && page->connections[0].id == ids[3] && page->connections[1].id == ids[4]);
    EXPECT(!page->has_next && page->next_cursor == 0);
    EXPECT(strcmp(page->connections[0].user, "bob") == 0);
    EXPECT_OK(sb_conn_list_free(page));
    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    f.meta_key = "dc";
    f.meta_value = "east";
    EXPECT_OK(sb_registry_list(m, &f, &page));
    EXPECT(page->len == 3 && page->connections[2].id == ids[5]);
    EXPECT_OK(sb_conn_list_free(page));
    EXPECT_OK(sb_manager_advance_clock(m, 5000));
    EXPECT_OK(sb_registry_touch(m, ids[6]));
    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    f.min_idle_ms = 4000;
    EXPECT_OK(sb_registry_list(m, &f, &page));
    EXPECT(page->len == 6);
    EXPECT_OK(sb_conn_list_free(page));
    EXPECT_OK(sb_registry_list(m, NULL, &page));
    EXPECT(page->len == 7);
    EXPECT_ST(sb_conn_list_free((sb_conn_list *)page->connections), SB_INVALID_HANDLE);
    EXPECT_OK(sb_conn_list_free(page));
    f.state = "asleep";
    EXPECT_ERR(sb_registry_list(m, &f, &page), SB_INVALID_ARGUMENT,
               "state must be one of active | idle, got \"asleep\"");
    for (int i = 0; i < 7; i++) EXPECT_OK(sb_registry_outbox_free(ids[i]));
    return close_manager(m);
}

static int disconnect_by_user_and_topic(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    atomic_int freed = 0;
    recorder *r1 = rec_new(&freed), *r2 = rec_new(&freed), *r3 = rec_new(&freed);
    const char *news[] = {"news"};
    uint64_t a = 0, b = 0, c = 0;
    if (callback(m, "mallory", NULL, 0, r1, &a) || callback(m, "mallory", news, 1, r2, &b) ||
        callback(m, "alice", news, 1, r3, &c))
        return 1;
    sb_target t = target_none();
    const char *mallory[] = {"mallory"};
    t.users = mallory;
    t.users_len = 1;
    uint64_t removed = 0;
    EXPECT_OK(sb_registry_disconnect(m, &t, "banned by an admin", &removed));
    EXPECT(removed == 2);
    EVENTUALLY(5000, (void)0, rec_int(r1, &r1->closed) == 1 && rec_int(r2, &r2->closed) == 1);
    pthread_mutex_lock(&r1->mu);
    int same = strcmp(r1->reason, "banned by an admin") == 0;
    pthread_mutex_unlock(&r1->mu);
    EXPECT(same);
    EXPECT(rec_int(r3, &r3->closed) == 0);
    EVENTUALLY(5000, (void)0, atomic_load(&freed) == 2);
    t = target_none();
    t.topics = news;
    t.topics_len = 1;
    EXPECT_OK(sb_registry_disconnect(m, &t, NULL, &removed));
    EXPECT(removed == 1);
    EVENTUALLY(5000, (void)0, rec_int(r3, &r3->closed) == 1);
    pthread_mutex_lock(&r3->mu);
    same = strcmp(r3->reason, "disconnected") == 0;
    pthread_mutex_unlock(&r3->mu);
    EXPECT(same);
    EVENTUALLY(5000, (void)0, atomic_load(&freed) == 3);
    size_t len = 9;
    EXPECT_OK(sb_registry_len(m, &len));
    EXPECT(len == 0);
    if (close_manager(m)) return 1;
    rec_destroy(r1);
    rec_destroy(r2);
    rec_destroy(r3);
    return 0;
}

static int events_in_order(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *topics[] = {"b", "a"};
    uint64_t id = 0;
    if (outbox(m, "ann", topics, 2, &id)) return 1;
    EXPECT_OK(sb_registry_subscribe(m, id, "c", NULL));
    EXPECT_OK(sb_registry_unsubscribe(m, id, "a", NULL));
    EXPECT_OK(sb_registry_unregister(m, id, "bye"));
    struct {
        sb_event_kind kind;
        const char *topic;
        const char *reason;
    } want[] = {
        {SB_EVENT_REGISTERED, "", ""},     {SB_EVENT_SUBSCRIBED, "a", ""},
        {SB_EVENT_SUBSCRIBED, "b", ""},    {SB_EVENT_SUBSCRIBED, "c", ""},
        {SB_EVENT_UNSUBSCRIBED, "a", ""},
    };
    size_t nwant = sizeof want / sizeof want[0];
    size_t i = 0;
    bool unregistered = false;
    for (int k = 0; k < 100; k++) {
        sb_event ev;
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, 0, &ev) != SB_OK) break;
        EXPECT(ev.struct_size == sizeof ev);
        EXPECT(ev.connection_id == id);
        EXPECT(strcmp(ev.user, "ann") == 0);
        if (i < nwant) {
            if (ev.kind != want[i].kind || strcmp(ev.topic, want[i].topic) != 0)
                FAILF("event %zu: %s topic \"%s\"", i, sb_event_kind_str(ev.kind), ev.topic);
            i++;
        } else if (ev.kind == SB_EVENT_UNREGISTERED) {
            EXPECT(strcmp(ev.reason, "bye") == 0);
            unregistered = true;
        }
    }
    EXPECT(i == nwant && unregistered);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_REGISTERED), "registered") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_UNREGISTERED), "unregistered") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_SUBSCRIBED), "subscribed") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_UNSUBSCRIBED), "unsubscribed") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_SLOW_CONSUMER), "slow_consumer") == 0);
    EXPECT(strcmp(sb_event_kind_str(17), "unknown") == 0);
    /* An older caller's struct (without topic/user/reason) gets only what fits. */
    EXPECT_OK(sb_registry_register_outbox(m, NULL, &id));
    sb_event old;
    memset(&old, 0x55, sizeof old);
    old.struct_size = offsetof(sb_event, topic);
    EXPECT_OK(sb_manager_poll_event(m, 0, &old));
    EXPECT(old.struct_size == offsetof(sb_event, topic) && old.kind == SB_EVENT_REGISTERED);
    EXPECT((unsigned char)old.topic[0] == 0x55);
    EXPECT_OK(sb_registry_outbox_free(id));
    return close_manager(m);
}

static int metrics_lines(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *news[] = {"news"};
    uint64_t a = 0, b = 0;
    if (outbox(m, "u1", news, 1, &a) || outbox(m, "u2", news, 1, &b)) return 1;
    sb_target t = target_none();
    t.topics = news;
    t.topics_len = 1;
    sb_broadcast_report r;
    EXPECT_OK(bcast(m, &t, "hello", &r));
    EXPECT_OK(sb_registry_unregister(m, b, "kicked"));
    char *text = metrics_text(m);
    EXPECT(text != NULL);
    const char *lines[] = {"switchboard_registry_connections 1",
                           "switchboard_registry_topics 1",
                           "switchboard_registry_users 1",
                           "switchboard_registry_registrations_total 2",
                           "switchboard_registry_broadcasts_total 1",
                           "switchboard_registry_topic_connections{topic=\"news\"} 1",
                           "switchboard_registry_disconnects_total{reason=\"kicked\"} 1"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (strstr(text, lines[i]) == NULL) {
            fprintf(stderr, "%s\n", text);
            free(text);
            FAILF("no line %s", lines[i]);
        }
    }
    free(text);
    EXPECT_OK(sb_registry_outbox_free(a));
    EXPECT_OK(sb_registry_outbox_free(b));
    return close_manager(m);
}

static int envelope_helper(void) {
    char buf[512];
    size_t written = 0;
    EXPECT_OK(sb_envelope_encode("notification", "news", "{\"id\":7}", NULL, buf, sizeof buf,
                                 &written));
    EXPECT(written == strlen(buf) + 1);
    EXPECT(strstr(buf, "\"type\":\"notification\"") != NULL);
    EXPECT(strstr(buf, "\"topic\":\"news\"") != NULL);
    EXPECT(strstr(buf, "\"data\":{\"id\":7}") != NULL);
    EXPECT(strstr(buf, "\"timestamp\":\"") != NULL);
    char kind[32], topic[32], data[64];
    EXPECT_OK(sb_envelope_decode(buf, kind, sizeof kind, topic, sizeof topic, data, sizeof data));
    EXPECT(strcmp(kind, "notification") == 0 && strcmp(topic, "news") == 0 &&
           strcmp(data, "{\"id\":7}") == 0);
    size_t need = 0;
    EXPECT_ST(sb_envelope_encode("error", NULL, NULL, "boom", NULL, 0, &need),
              SB_RESOURCE_EXHAUSTED);
    EXPECT(need > 10);
    EXPECT_ERR(sb_envelope_encode("data", NULL, "{nope", NULL, buf, sizeof buf, NULL),
               SB_INVALID_ARGUMENT, "an envelope's data must be JSON text");
    EXPECT_ERR(sb_envelope_encode("", NULL, NULL, NULL, buf, sizeof buf, NULL),
               SB_INVALID_ARGUMENT, "an envelope's type must be a non-empty string");
    EXPECT_ERR(sb_envelope_decode("[1]", kind, sizeof kind, NULL, 0, NULL, 0), SB_INVALID_ARGUMENT,
               "an envelope must be a JSON object");
    return 0;
}

static int closed_manager_and_misuse(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    atomic_int freed = 0;
    recorder *rc = rec_new(&freed);
    uint64_t cb = 0, ob = 0;
    if (callback(m, NULL, NULL, 0, rc, &cb) || outbox(m, NULL, NULL, 0, &ob)) return 1;
    EXPECT_OK(sb_manager_close(m, 2000));
    /* Closing removed every connection with reason manager_closed. */
    EXPECT(atomic_load(&freed) == 1);
    uint8_t buf[32];
    size_t n = 0;
    sb_item_kind kind = 0;
    EXPECT_OK(sb_registry_next(ob, buf, sizeof buf, 0, &n, &kind));
    EXPECT(kind == SB_ITEM_CLOSED && n == strlen("manager_closed"));
    uint64_t id = 0;
    EXPECT_ERR(sb_registry_register_outbox(m, NULL, &id), SB_UNAVAILABLE,
               "the manager is closed; the registry is no longer available");
    sb_target t = target_none();
    t.all = true;
    EXPECT_ST(sb_registry_broadcast(m, &t, (const uint8_t *)"x", 1, false, NULL), SB_UNAVAILABLE);
    /* Registering a callback on a closed manager frees its userdata at once. */
    atomic_int freed2 = 0;
    recorder *late = rec_new(&freed2);
    EXPECT_ST(sb_registry_register(m, NULL, rec_send, NULL, NULL, late, rec_free, &id),
              SB_UNAVAILABLE);
    EXPECT(atomic_load(&freed2) == 1);
    EXPECT_OK(sb_manager_free(m)); /* lets go of the outbox too */
    EXPECT_ST(sb_registry_next(ob, buf, sizeof buf, 0, &n, &kind), SB_NOT_FOUND);
    EXPECT_ST(sb_registry_touch(m, cb), SB_INVALID_HANDLE);
    EXPECT_ST(sb_registry_get(NULL, cb, NULL), SB_INVALID_HANDLE);
    /* The system clock cannot be moved. */
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_ERR(sb_manager_advance_clock(m, 1), SB_FAILED_PRECONDITION,
               "advance_clock needs a manager created with runtime.clock = manual");
    sb_broadcast_report r;
    memset(&r, 0, sizeof r);
    EXPECT_ERR(sb_registry_broadcast(m, &t, (const uint8_t *)"x", 1, false, &r),
               SB_INVALID_ARGUMENT, "struct_size must be set");
    EXPECT_ERR(sb_registry_next(ob, NULL, 0, 0, NULL, &kind), SB_INVALID_ARGUMENT,
               "n must not be NULL");
    EXPECT_OK(sb_manager_free(m));
    rec_destroy(rc);
    rec_destroy(late);
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(register_with_user_metadata_and_topics);
    RUN(broadcast_reaches_exactly_the_right_connections);
    RUN(slow_outbox_meets_each_policy);
    RUN(failing_sink_is_removed_after_max_failures);
    RUN(heartbeats_and_stale_cleanup_on_the_manual_clock);
    RUN(every_limit);
    RUN(auth_hook_success_and_both_refusals);
    RUN(list_with_filters_and_cursor);
    RUN(disconnect_by_user_and_topic);
    RUN(events_in_order);
    RUN(metrics_lines);
    RUN(envelope_helper);
    RUN(closed_manager_and_misuse);
    return harness_summary();
}
