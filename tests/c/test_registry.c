/* The live-connection registry through the C API (issue 9), its data path:
 * registration with user, metadata and topics; broadcast to topic, user, ids and all
 * with exclusions, checked per connection (outboxes and send callbacks); a slow outbox
 * that never drains meets each queue policy while callback clients get every message;
 * a failing send callback removed after registry.max_send_failures; heartbeats and
 * stale cleanup on the manual clock; every limit. test_registry_admin.c has the rest
 * (auth, list, disconnect, events, metrics, envelope, misuse); the helpers both use are
 * in harness.h. */
#include "harness.h"

#include <stddef.h>

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

/* ---- cases ---- */

static int register_with_user_metadata_and_topics(void) {
    sb_manager *m = NULL;
    if (reg_manager_open(NULL, &m)) return 1;
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
    return reg_manager_close(m);
}

static int broadcast_reaches_exactly_the_right_connections(void) {
    sb_manager *m = NULL;
    if (reg_manager_open(NULL, &m)) return 1;
    const char *news[] = {"news"};
    const char *news_chat[] = {"news", "chat"};
    const char *chat[] = {"chat"};
    uint64_t a = 0, b = 0, c = 0, d = 0;
    if (reg_outbox(m, "alice", news, 1, &a) || reg_outbox(m, "bob", news_chat, 2, &b) ||
        reg_outbox(m, "bob", chat, 1, &c) || reg_outbox(m, NULL, NULL, 0, &d))
        return 1;
    atomic_int freed = 0;
    recorder *rc = rec_new(&freed);
    uint64_t e = 0;
    if (rec_register(m, "carol", news, 1, rc, &e)) return 1;

    sb_broadcast_report r;
    sb_target t = reg_target();
    t.topics = news;
    t.topics_len = 1;
    uint64_t except_b[] = {b};
    t.except = except_b;
    t.except_len = 1;
    EXPECT_OK(bcast(m, &t, "n1", &r));
    EXPECT(r.struct_size == sizeof r && r.recipients == 2 && r.queued == 2 && r.dropped == 0);

    t = reg_target();
    const char *bob[] = {"bob"};
    t.users = bob;
    t.users_len = 1;
    EXPECT_OK(bcast(m, &t, "u1", &r));
    EXPECT(r.recipients == 2);

    /* A topic and a user together: bob's b matches twice and is served once. */
    t = reg_target();
    t.topics = news;
    t.topics_len = 1;
    t.users = bob;
    t.users_len = 1;
    EXPECT_OK(bcast(m, &t, "tu", &r));
    EXPECT(r.recipients == 4);

    t = reg_target();
    t.all = true;
    uint64_t except_ae[] = {a, e};
    t.except = except_ae;
    t.except_len = 2;
    EXPECT_OK(bcast(m, &t, "all", &r));
    EXPECT(r.recipients == 3);

    t = reg_target();
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
    t = reg_target();
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

    EXPECT_OK(reg_manager_close(m));
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
        if (reg_manager_open(settings, &m)) return 1;
        const char *room[] = {"room"};
        uint64_t slow = 0, fast = 0;
        if (reg_outbox(m, "slow", room, 1, &slow)) return 1;
        atomic_int freed = 0;
        recorder *rc = rec_new(&freed);
        if (rec_register(m, "fast", room, 1, rc, &fast)) return 1;
        sb_target t = reg_target();
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
        EXPECT_OK(reg_manager_close(m));
        EXPECT(atomic_load(&freed) == 1);
        rec_destroy(rc);
    }
    return 0;
}

static int failing_sink_is_removed_after_max_failures(void) {
    sb_manager *m = NULL;
    const char *settings[] = {"registry.max_send_failures", "3", NULL};
    if (reg_manager_open(settings, &m)) return 1;
    atomic_int freed = 0;
    recorder *bad = rec_new(&freed);
    bad->fail = 7;
    recorder *good = rec_new(&freed);
    uint64_t b = 0, g = 0;
    if (rec_register(m, NULL, NULL, 0, bad, &b) || rec_register(m, NULL, NULL, 0, good, &g))
        return 1;
    sb_target t = reg_target();
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
    EXPECT_OK(reg_manager_close(m));
    EXPECT(atomic_load(&freed) == 2);
    rec_destroy(bad);
    rec_destroy(good);
    return 0;
}

static int heartbeats_and_stale_cleanup_on_the_manual_clock(void) {
    sb_manager *m = NULL;
    const char *settings[] = {"registry.heartbeat_interval", "10s", "registry.connection_timeout",
                              "30s", NULL};
    if (reg_manager_open(settings, &m)) return 1;
    uint64_t quiet = 0, chatty = 0, cb = 0;
    if (reg_outbox(m, "q", NULL, 0, &quiet) || reg_outbox(m, "c", NULL, 0, &chatty)) return 1;
    atomic_int freed = 0;
    recorder *rc = rec_new(&freed);
    if (rec_register(m, "cb", NULL, 0, rc, &cb)) return 1;
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
    if (reg_manager_close(m)) return 1;
    rec_destroy(rc);
    return 0;
}

static int every_limit(void) {
    sb_manager *m = NULL;
    const char *settings[] = {"registry.max_total_connections", "3",
                              "registry.max_connections_per_topic", "2",
                              "registry.max_connections_per_user", "1",
                              "registry.max_topics_per_connection", "2", NULL};
    if (reg_manager_open(settings, &m)) return 1;
    const char *t[] = {"t"};
    const char *three[] = {"a", "b", "c"};
    uint64_t a = 0, b = 0, c = 0, x = 0;
    if (reg_outbox(m, "u", t, 1, &a)) return 1;
    sb_registration r = reg_of("u", NULL, 0);
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &x), SB_RESOURCE_EXHAUSTED,
               "registry.max_connections_per_user (1) reached: user \"u\" already has 1 connections");
    if (reg_outbox(m, "v", t, 1, &b)) return 1;
    r = reg_of("w", t, 1);
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &x), SB_RESOURCE_EXHAUSTED,
               "registry.max_connections_per_topic (2) reached: topic \"t\" already has 2 subscribers");
    r = reg_of("w", three, 3);
    EXPECT_ERR(sb_registry_register_outbox(m, &r, &x), SB_RESOURCE_EXHAUSTED,
               "registry.max_topics_per_connection (2) reached");
    if (reg_outbox(m, "w", three, 2, &c)) return 1;
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
    return reg_manager_close(m);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(register_with_user_metadata_and_topics);
    RUN(broadcast_reaches_exactly_the_right_connections);
    RUN(slow_outbox_meets_each_policy);
    RUN(failing_sink_is_removed_after_max_failures);
    RUN(heartbeats_and_stale_cleanup_on_the_manual_clock);
    RUN(every_limit);
    return harness_summary();
}
