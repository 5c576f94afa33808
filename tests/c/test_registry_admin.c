/* The live-connection registry through the C API (issue 9), its control side: the
 * auth hook's success and both refusals with their codes; list with filters and
 * cursor; disconnect by user and topic; events in order; the switchboard_registry_*
 * metrics lines; the envelope helper; misuse. test_registry.c has the data path; the
 * helpers both use are in harness.h. */
#include "harness.h"

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
    if (reg_manager_open(NULL, &m)) return 1;
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
    if (reg_manager_close(m)) return 1;
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
    if (reg_manager_open(NULL, &m)) return 1;
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
    return reg_manager_close(m);
}

static int disconnect_by_user_and_topic(void) {
    sb_manager *m = NULL;
    if (reg_manager_open(NULL, &m)) return 1;
    atomic_int freed = 0;
    recorder *r1 = rec_new(&freed), *r2 = rec_new(&freed), *r3 = rec_new(&freed);
    const char *news[] = {"news"};
    uint64_t a = 0, b = 0, c = 0;
    if (rec_register(m, "mallory", NULL, 0, r1, &a) ||
        rec_register(m, "mallory", news, 1, r2, &b) || rec_register(m, "alice", news, 1, r3, &c))
        return 1;
    sb_target t = reg_target();
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
    t = reg_target();
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
    if (reg_manager_close(m)) return 1;
    rec_destroy(r1);
    rec_destroy(r2);
    rec_destroy(r3);
    return 0;
}

static int events_in_order(void) {
    sb_manager *m = NULL;
    if (reg_manager_open(NULL, &m)) return 1;
    const char *topics[] = {"b", "a"};
    uint64_t id = 0;
    if (reg_outbox(m, "ann", topics, 2, &id)) return 1;
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
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_CLUSTER_LOST), "cluster_lost") == 0);
    EXPECT(strcmp(sb_event_kind_str(22), "unknown") == 0); /* the first unused number */
    /* An older caller's struct (without topic/user/reason) gets only what fits. */
    EXPECT_OK(sb_registry_register_outbox(m, NULL, &id));
    sb_event old;
    memset(&old, 0x55, sizeof old);
    old.struct_size = offsetof(sb_event, topic);
    EXPECT_OK(sb_manager_poll_event(m, 0, &old));
    EXPECT(old.struct_size == offsetof(sb_event, topic) && old.kind == SB_EVENT_REGISTERED);
    EXPECT((unsigned char)old.topic[0] == 0x55);
    EXPECT_OK(sb_registry_outbox_free(id));
    return reg_manager_close(m);
}

static int metrics_lines(void) {
    sb_manager *m = NULL;
    if (reg_manager_open(NULL, &m)) return 1;
    const char *news[] = {"news"};
    uint64_t a = 0, b = 0;
    if (reg_outbox(m, "u1", news, 1, &a) || reg_outbox(m, "u2", news, 1, &b)) return 1;
    sb_target t = reg_target();
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
    return reg_manager_close(m);
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
    if (reg_manager_open(NULL, &m)) return 1;
    atomic_int freed = 0;
    recorder *rc = rec_new(&freed);
    uint64_t cb = 0, ob = 0;
    if (rec_register(m, NULL, NULL, 0, rc, &cb) || reg_outbox(m, NULL, NULL, 0, &ob)) return 1;
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
    sb_target t = reg_target();
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
    RUN(auth_hook_success_and_both_refusals);
    RUN(list_with_filters_and_cursor);
    RUN(disconnect_by_user_and_topic);
    RUN(events_in_order);
    RUN(metrics_lines);
    RUN(envelope_helper);
    RUN(closed_manager_and_misuse);
    return harness_summary();
}
