/* Named resources, the rest: a registered type of the program's own objects (the
 * sb_connector of custom pools; its check replaces a failing object, close runs once
 * per object, free_userdata once), persistence across a manager reopen
 * (resources.path), and misuse (bad handles, NULL outputs, double frees). */
#include "harness.h"
#include "resources_support.h"

/* The program's "client" objects, made by its connect callback. */
typedef struct {
    int n;
} client;

typedef struct {
    atomic_int made, closed, freed;
    atomic_int healthy;
    char endpoint[64];
} client_type;

static int client_connect(void *ud, const char *endpoint, void **out, char *errbuf,
                          size_t errlen) {
    client_type *t = ud;
    if (strcmp(endpoint, t->endpoint) != 0) {
        snprintf(errbuf, errlen, "unexpected endpoint %s", endpoint);
        return SB_INVALID_ARGUMENT;
    }
    client *c = malloc(sizeof *c);
    if (c == NULL) return SB_RESOURCE_EXHAUSTED;
    c->n = atomic_fetch_add(&t->made, 1) + 1;
    *out = c;
    return SB_OK;
}

static int client_check(void *ud, void *conn) {
    (void)conn;
    return atomic_load(&((client_type *)ud)->healthy) ? SB_OK : SB_UNAVAILABLE;
}

static void client_close(void *ud, void *conn) {
    free(conn);
    atomic_fetch_add(&((client_type *)ud)->closed, 1);
}

static void client_free(void *ud) { atomic_fetch_add(&((client_type *)ud)->freed, 1); }

static sb_connector client_connector(client_type *t, const char *endpoint) {
    atomic_init(&t->made, 0);
    atomic_init(&t->closed, 0);
    atomic_init(&t->freed, 0);
    atomic_init(&t->healthy, 1);
    snprintf(t->endpoint, sizeof t->endpoint, "%s", endpoint);
    sb_connector c = {client_connect, client_check, client_close, t, client_free};
    return c;
}

static int a_registered_type_shares_the_programs_objects(void) {
    static client_type t;
    sb_connector conn = client_connector(&t, "bus://primary");
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    EXPECT_OK(sb_resource_register_type(m, "bus", &conn));
    sb_connector again = {client_connect, NULL, NULL, &t, client_free};
    EXPECT_ST(sb_resource_register_type(m, "tcp", &again), SB_INVALID_ARGUMENT);
    EXPECT(atomic_load(&t.freed) == 1); /* a refused registration still frees it */
    const char *keys[] = {"endpoint", "health.interval"};
    const char *values[] = {"bus://primary", "20ms"};
    EXPECT_OK(sb_resource_create(m, "main", "bus", keys, values, 2));
    sb_resource *a = NULL, *b = NULL;
    EXPECT_OK(sb_resource_attach(m, "main", "a", &a));
    EXPECT_OK(sb_resource_attach(m, "main", "b", &b));
    EXPECT_OK(sb_resource_wait_ready(a, 10000));
    void *oa = NULL, *ob = NULL;
    EXPECT_OK(sb_resource_object(a, &oa));
    EXPECT_OK(sb_resource_object(b, &ob));
    EXPECT(oa == ob && ((client *)oa)->n == 1); /* one object for both */
    int fd = -1;
    EXPECT_ST(sb_resource_fd(a, &fd), SB_FAILED_PRECONDITION);
    uint8_t byte = 0;
    EXPECT_ST(sb_resource_send_all(a, &byte, 1), SB_FAILED_PRECONDITION);
    /* The check fails: the object is replaced (the old one closed), same id. */
    atomic_store(&t.healthy, 0);
    EVENTUALLY(10000, (void)0, atomic_load(&t.made) >= 2);
    atomic_store(&t.healthy, 1);
    EVENTUALLY(10000, (oa = NULL, sb_resource_object(a, &oa)),
               oa != NULL && ((client *)oa)->n >= 2);
    EVENTUALLY(10000, (void)0, atomic_load(&t.closed) >= 1);
    EXPECT_OK(sb_resource_detach(a));
    EXPECT_OK(sb_resource_detach(b));
    EXPECT_OK(sb_resource_delete(m, "main", false));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    EVENTUALLY(10000, (void)0, atomic_load(&t.closed) == atomic_load(&t.made));
    EXPECT(atomic_load(&t.freed) == 2); /* the registered one too, once */
    return 0;
}

static int named_resources_persist_across_a_manager_reopen(void) {
    echo_server srv, other;
    if (echo_start(&srv) != 0 || echo_start(&other) != 0) FAILF("no echo servers");
    char path[128];
    snprintf(path, sizeof path, "/tmp/sb-c-resources-%d.redb", (int)getpid());
    unlink(path);
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "resources.path", path));
    static client_type t1, t2;
    const char *keys[] = {"endpoint", "health.interval"};
    {
        sb_manager *m = NULL;
        EXPECT_OK(sb_manager_new(cfg, &m));
        const char *v[] = {srv.target, "1s"};
        const char *ov[] = {other.target};
        EXPECT_OK(sb_resource_create(m, "kept", "tcp", keys, v, 2));
        EXPECT_OK(sb_resource_create(m, "moved", "tcp", keys, v, 1));
        EXPECT_OK(sb_resource_create(m, "gone", "tcp", keys, v, 1));
        EXPECT_OK(sb_resource_update(m, "moved", keys, ov, 1));
        EXPECT_OK(sb_resource_delete(m, "gone", false));
        sb_connector c = client_connector(&t1, "bus://x");
        EXPECT_OK(sb_resource_register_type(m, "bus", &c));
        const char *bv[] = {"bus://x"};
        EXPECT_OK(sb_resource_create(m, "mine", "bus", keys, bv, 1));
        sb_resource *anon = NULL;
        EXPECT_OK(sb_resource_attach_anonymous(m, "tcp", keys, v, 1, "x", &anon));
        EXPECT_OK(sb_manager_close(m, 2000));
        EXPECT_OK(sb_resource_detach(anon));
        EXPECT_OK(sb_manager_free(m));
    }
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(cfg, &m));
    EXPECT_OK(sb_config_free(cfg));
    sb_resource_info_list *list = NULL;
    EXPECT_OK(sb_resource_list(m, &list));
    EXPECT(list->len == 2); /* named ones only, as last updated */
    EXPECT(strcmp(list->resources[0].id, "kept") == 0);
    EXPECT(strcmp(list->resources[1].id, "moved") == 0);
    EXPECT(strcmp(list->resources[1].endpoint, other.target) == 0);
    EXPECT_OK(sb_resource_info_list_free(list));
    /* A stored resource of the program's type comes back once the type is registered. */
    sb_connector c = client_connector(&t2, "bus://x");
    EXPECT_OK(sb_resource_register_type(m, "bus", &c));
    sb_resource *mine = NULL, *kept = NULL;
    EXPECT_OK(sb_resource_attach(m, "mine", "me", &mine));
    EXPECT_OK(sb_resource_wait_ready(mine, 10000));
    void *obj = NULL;
    EXPECT_OK(sb_resource_object(mine, &obj));
    EXPECT(obj != NULL && ((client *)obj)->n == 1);
    EXPECT_OK(sb_resource_attach(m, "kept", "again", &kept));
    if (res_round_trip(kept, "back\n")) return 1;
    EXPECT_OK(sb_resource_detach(mine));
    EXPECT_OK(sb_resource_detach(kept));
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    EXPECT(atomic_load(&t1.freed) == 1 && atomic_load(&t2.freed) == 1);
    unlink(path);
    echo_stop(&other);
    echo_stop(&srv);
    return 0;
}

static int misuse_is_reported_not_undefined(void) {
    sb_manager *m = NULL;
    EXPECT_OK(sb_manager_new(NULL, &m));
    int fd = -1;
    EXPECT_ST(sb_resource_fd(NULL, &fd), SB_INVALID_HANDLE);
    EXPECT_ST(sb_resource_fd((sb_resource *)m, &fd), SB_INVALID_HANDLE);
    EXPECT_ERROR_MENTIONS("expected a sb_resource handle but got a sb_manager handle");
    EXPECT_OK(sb_resource_detach(NULL));
    EXPECT_ST(sb_resource_attach(m, "x", "c", NULL), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_resource_create(m, "x", "tcp", NULL, NULL, 1), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("keys");
    const char *keys[] = {"endpoint"};
    const char *nulls[] = {NULL};
    EXPECT_ST(sb_resource_create(m, "x", "tcp", keys, nulls, 1), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("values[0]");
    EXPECT_ST(sb_resource_create(m, NULL, "tcp", keys, keys, 1), SB_INVALID_ARGUMENT);
    sb_resource *h = NULL;
    EXPECT_ST(sb_resource_attach(m, "nope", "c", &h), SB_NOT_FOUND);
    EXPECT(h == NULL);
    EXPECT_ST(sb_resource_delete(m, "nope", true), SB_NOT_FOUND);
    EXPECT_ST(sb_resource_register_type(m, "t", NULL), SB_INVALID_ARGUMENT);

    res_listener l;
    if (res_listen(&l) != 0) FAILF("no listener");
    const char *values[] = {l.target};
    EXPECT_OK(sb_resource_create(m, "r", "tcp", keys, values, 1));
    EXPECT_ST(sb_resource_create(m, "r", "tcp", keys, values, 1), SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("already exists");
    EXPECT_OK(sb_resource_attach(m, "r", "c", &h));
    char tiny[1] = {'x'};
    size_t w = 0;
    EXPECT_ST(sb_resource_id(h, tiny, sizeof tiny, &w), SB_RESOURCE_EXHAUSTED);
    EXPECT(w == 2 && tiny[0] == '\0'); /* "r" needs 2 bytes with its NUL */
    EXPECT_ST(sb_resource_recv(h, NULL, 4, &w), SB_INVALID_ARGUMENT);
    sb_resource_info *info = NULL;
    EXPECT_OK(sb_resource_get(m, "r", &info));
    EXPECT_OK(sb_resource_info_free(info));
    EXPECT_ST(sb_resource_info_free(info), SB_INVALID_HANDLE);
    EXPECT_OK(sb_resource_info_free(NULL));
    EXPECT_ST(sb_resource_info_list_free((sb_resource_info_list *)&w), SB_INVALID_HANDLE);
    EXPECT_OK(sb_resource_detach(h));
    EXPECT_ST(sb_resource_status(h, NULL), SB_INVALID_HANDLE);
    EXPECT_OK(sb_resource_delete(m, "r", false));

    EXPECT(strcmp(sb_resource_state_str(SB_RESOURCE_RECOVERING), "recovering") == 0);
    EXPECT(strcmp(sb_resource_state_str(99), "unknown") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_RESOURCE_STATE), "resource_state") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_RESOURCE_DETACHED), "resource_detached") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_RESOURCE_REBOUND), "resource_rebound") == 0);
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    res_unlisten(&l);
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(a_registered_type_shares_the_programs_objects);
    RUN(named_resources_persist_across_a_manager_reopen);
    RUN(misuse_is_reported_not_undefined);
    return harness_summary();
}
