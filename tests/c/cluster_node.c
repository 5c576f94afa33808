/* The C child of the shared cluster driver (tests/fixtures/cluster_driver.py; the
 * protocol is in .notes/cluster-api.md): one JSON request per line on stdin, exactly
 * one JSON line per request on stdout, logs on stderr. Everything goes through the
 * public header: the registry (outboxes, sb_registry_broadcast), pools and their
 * breakers, resources, events, and the cluster's sb_cluster_* calls.
 *
 *   python3 tests/fixtures/cluster_driver.py -- build/c/cluster_node
 *
 * `cluster_node --self-test` instead checks, without the driver, what the scenarios
 * cannot reach: a manager outside a cluster, one whose Redis is down from the start,
 * and the snapshots' misuse (NULL, double and foreign frees).
 *
 * `make test-c` runs it (test_cluster), also under valgrind. The JSON reader below is
 * just enough for the driver's requests (objects, arrays, strings with escapes,
 * numbers, true/false/null); it is a test program's, not the library's. */
#include "harness.h"

#include <ctype.h>
#include <inttypes.h>

/* ---- a small JSON reader ---- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct json {
    jtype t;
    bool b;
    uint64_t u; /* a non-negative integer's exact value */
    char *s;    /* J_STR */
    size_t n;   /* J_ARR, J_OBJ: how many items */
    struct json *items;
    char **keys; /* J_OBJ */
} json;

typedef struct {
    const char *p;
    int depth;
} reader;

static void json_free(json *v) {
    for (size_t i = 0; i < v->n; i++) {
        json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    memset(v, 0, sizeof *v);
}

static void skip_ws(reader *r) {
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r') r->p++;
}

static void put_utf8(char *out, size_t *o, unsigned cp) {
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(const char *p, unsigned *cp) {
    *cp = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        *cp = *cp * 16 + (unsigned)d;
    }
    return 0;
}

/* A string at r->p (which is at its opening quote), unescaped into a new buffer. */
static char *parse_string(reader *r) {
    const char *p = r->p + 1;
    size_t cap = strlen(p) + 1, o = 0; /* unescaping never grows a string */
    char *out = malloc(cap);
    if (!out) return NULL;
    while (*p && *p != '"') {
        if (*p != '\\') {
            out[o++] = *p++;
            continue;
        }
        p++;
        unsigned cp;
        switch (*p) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u':
            if (hex4(p + 1, &cp) != 0) goto bad;
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo;
                if (hex4(p + 3, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            put_utf8(out, &o, cp);
            break;
        default: goto bad;
        }
        p++;
    }
    if (*p != '"') goto bad;
    out[o] = 0;
    r->p = p + 1;
    return out;
bad:
    free(out);
    return NULL;
}

static int parse_value(reader *r, json *v);

static int push_item(json *v, json *item, char *key) {
    json *items = realloc(v->items, (v->n + 1) * sizeof *items);
    if (!items) return -1;
    v->items = items;
    if (v->t == J_OBJ) {
        char **keys = realloc(v->keys, (v->n + 1) * sizeof *keys);
        if (!keys) return -1;
        v->keys = keys;
        v->keys[v->n] = key;
    }
    v->items[v->n++] = *item;
    return 0;
}

static int parse_container(reader *r, json *v, char close) {
    r->p++;
    skip_ws(r);
    if (*r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(r);
        if (v->t == J_OBJ) {
            if (*r->p != '"' || !(key = parse_string(r))) return -1;
            skip_ws(r);
            if (*r->p != ':') {
                free(key);
                return -1;
            }
            r->p++;
        }
        json item = {0};
        if (parse_value(r, &item) != 0 || push_item(v, &item, key) != 0) {
            json_free(&item);
            free(key);
            return -1;
        }
        skip_ws(r);
        if (*r->p == ',') {
            r->p++;
        } else if (*r->p == close) {
            r->p++;
            return 0;
        } else {
            return -1;
        }
    }
}

static int parse_value(reader *r, json *v) {
    memset(v, 0, sizeof *v);
    skip_ws(r);
    if (++r->depth > 32) return -1;
    int rc = 0;
    char c = *r->p;
    if (c == '{') {
        v->t = J_OBJ;
        rc = parse_container(r, v, '}');
    } else if (c == '[') {
        v->t = J_ARR;
        rc = parse_container(r, v, ']');
    } else if (c == '"') {
        v->t = J_STR;
        rc = (v->s = parse_string(r)) ? 0 : -1;
    } else if (strncmp(r->p, "true", 4) == 0 || strncmp(r->p, "false", 5) == 0) {
        v->t = J_BOOL;
        v->b = c == 't';
        r->p += v->b ? 4 : 5;
    } else if (strncmp(r->p, "null", 4) == 0) {
        r->p += 4;
    } else if (c == '-' || isdigit((unsigned char)c)) {
        v->t = J_NUM;
        char *end;
        v->u = c == '-' ? 0 : strtoull(r->p, &end, 10);
        strtod(r->p, &end);
        rc = end == r->p ? -1 : 0;
        r->p = end;
    } else {
        rc = -1;
    }
    r->depth--;
    return rc;
}

static const json *get(const json *obj, const char *key) {
    if (!obj || obj->t != J_OBJ) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

static const char *get_str(const json *obj, const char *key) {
    const json *v = get(obj, key);
    return v && v->t == J_STR ? v->s : NULL;
}

static bool get_bool(const json *obj, const char *key) {
    const json *v = get(obj, key);
    return v && v->t == J_BOOL && v->b;
}

static uint64_t get_u64(const json *obj, const char *key) {
    const json *v = get(obj, key);
    return v && v->t == J_NUM ? v->u : 0;
}

/* ---- the reply line ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->cap ? o->cap : 256);
        while (cap < o->len + n + 1) cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b) abort();
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
}

static void raw(out_t *o, const char *s) { put(o, s, strlen(s)); }

static void num(out_t *o, uint64_t n) {
    char b[32];
    snprintf(b, sizeof b, "%" PRIu64, n);
    raw(o, b);
}

static void str(out_t *o, const char *s) {
    raw(o, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            put(o, e, 2);
        } else if (*p < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", *p);
            raw(o, e);
        } else {
            put(o, (const char *)p, 1);
        }
    }
    raw(o, "\"");
}

/* "key": */
static void key(out_t *o, const char *k) {
    if (o->len > 0 && o->buf[o->len - 1] != '{') raw(o, ",");
    str(o, k);
    raw(o, ":");
}

static void str_list(out_t *o, const char *const *v, size_t n) {
    raw(o, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) raw(o, ",");
        str(o, v[i]);
    }
    raw(o, "]");
}

/* {"node": count, ...} */
static void node_map(out_t *o, const char *const *nodes, const uint64_t *counts, size_t n) {
    raw(o, "{");
    for (size_t i = 0; i < n; i++) {
        key(o, nodes[i]);
        num(o, counts[i]);
    }
    raw(o, "}");
}

/* ---- the child's state ---- */

#define MAX_POOLS 16
#define MAX_OUTBOXES 256

static sb_manager *manager;
static struct {
    char *name;
    sb_pool *pool;
} pools[MAX_POOLS];
static size_t npools;
static uint64_t outboxes[MAX_OUTBOXES];
static size_t noutboxes;

/* An error reply for status `st` (last_error() names what failed). */
static int fail(out_t *o, sb_status st) {
    o->len = 0;
    raw(o, "{");
    key(o, "error");
    str(o, status_name(st));
    key(o, "message");
    str(o, last_error());
    raw(o, "}");
    return -1;
}

static int fail_msg(out_t *o, const char *msg) {
    o->len = 0;
    raw(o, "{\"error\":\"SB_INVALID_ARGUMENT\",\"message\":");
    str(o, msg);
    raw(o, "}");
    return -1;
}

#define TRY(call)                                                                      \
    do {                                                                               \
        sb_status st_ = (call);                                                        \
        if (st_ != SB_OK) return fail(o, st_);                                         \
    } while (0)

static sb_pool *pool_named(const char *name) {
    for (size_t i = 0; name && i < npools; i++)
        if (strcmp(pools[i].name, name) == 0) return pools[i].pool;
    return NULL;
}

/* The strings of array `v` (NULL or not an array: none), pointing into `v`. */
static const char **strings_of(const json *v, size_t *n) {
    *n = 0;
    if (!v || v->t != J_ARR || v->n == 0) return NULL;
    const char **out = calloc(v->n, sizeof *out);
    if (!out) abort();
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i].t == J_STR) out[(*n)++] = v->items[i].s;
    return out;
}

static uint64_t *ids_of(const json *v, size_t *n) {
    *n = 0;
    if (!v || v->t != J_ARR || v->n == 0) return NULL;
    uint64_t *out = calloc(v->n, sizeof *out);
    if (!out) abort();
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i].t == J_NUM) out[(*n)++] = v->items[i].u;
    return out;
}

/* A target T of the protocol; free it with target_free. */
static sb_target target_of(const json *t) {
    sb_target st = {.struct_size = sizeof st, .all = get_bool(t, "all")};
    st.topics = strings_of(get(t, "topics"), &st.topics_len);
    st.users = strings_of(get(t, "users"), &st.users_len);
    st.ids = ids_of(get(t, "ids"), &st.ids_len);
    st.except = ids_of(get(t, "except"), &st.except_len);
    return st;
}

static void target_free(sb_target *t) {
    free((void *)t->topics);
    free((void *)t->users);
    free((void *)t->ids);
    free((void *)t->except);
}

/* An sb_config with the keys of object `obj` (string values; numbers and booleans as
 * their JSON text is not needed by the driver). */
static sb_status config_of(const json *obj, sb_config **out) {
    sb_status st = sb_config_new(out);
    for (size_t i = 0; st == SB_OK && obj && obj->t == J_OBJ && i < obj->n; i++) {
        if (obj->items[i].t == J_STR) st = sb_config_set(*out, obj->keys[i], obj->items[i].s);
    }
    if (st != SB_OK) {
        sb_config_free(*out);
        *out = NULL;
    }
    return st;
}

static void answered_out(out_t *o, const sb_cluster_answered *a) {
    key(o, "answered");
    str_list(o, a->nodes, a->nodes_len);
    key(o, "missing");
    str_list(o, a->missing, a->missing_len);
}

/* ---- the requests ---- */

static int op_start(const json *req, out_t *o) {
    if (manager) return fail_msg(o, "started already");
    sb_config *cfg;
    TRY(config_of(get(req, "config"), &cfg));
    sb_status st = sb_manager_new(cfg, &manager);
    sb_config_free(cfg);
    TRY(st);
    char id[256];
    uint64_t number = 0;
    bool joined = false;
    TRY(sb_cluster_node_id(manager, id, sizeof id, NULL));
    TRY(sb_cluster_node_number(manager, &number));
    TRY(sb_cluster_is_joined(manager, &joined));
    key(o, "node_id");
    str(o, id);
    key(o, "number");
    num(o, number);
    key(o, "joined");
    raw(o, joined ? "true" : "false");
    return 0;
}

static int op_register(const json *req, out_t *o) {
    if (noutboxes == MAX_OUTBOXES) return fail_msg(o, "too many outboxes for this child");
    sb_registration reg = {.struct_size = sizeof reg, .user = get_str(req, "user")};
    const char **topics = strings_of(get(req, "topics"), &reg.topics_len);
    reg.topics = topics;
    uint64_t id = 0;
    sb_status st = sb_registry_register_outbox(manager, &reg, &id);
    free(topics);
    TRY(st);
    outboxes[noutboxes++] = id;
    key(o, "id");
    num(o, id);
    return 0;
}

static int op_drain(const json *req, out_t *o) {
    uint64_t id = get_u64(req, "id");
    static uint8_t buf[1 << 16];
    key(o, "messages");
    raw(o, "[");
    bool first = true;
    for (int i = 0; i < 100000; i++) {
        size_t n = 0;
        sb_item_kind kind;
        sb_status st = sb_registry_next(id, buf, sizeof buf - 1, 0, &n, &kind);
        if (st == SB_TIMEOUT) break;
        TRY(st);
        if (kind == SB_ITEM_CLOSED) break;
        if (kind != SB_ITEM_TEXT && kind != SB_ITEM_BINARY) continue;
        buf[n] = 0;
        if (!first) raw(o, ",");
        first = false;
        str(o, (const char *)buf);
    }
    raw(o, "]");
    return 0;
}

static int op_broadcast(const json *req, out_t *o) {
    const char *data = get_str(req, "data");
    if (!data) data = "";
    sb_target t = target_of(get(req, "target"));
    sb_status st;
    if (!get_bool(req, "ack")) {
        sb_broadcast_report r = {.struct_size = sizeof r};
        st = sb_registry_broadcast(manager, &t, (const uint8_t *)data, strlen(data), true, &r);
        target_free(&t);
        TRY(st);
        key(o, "local");
        num(o, r.recipients);
        return 0;
    }
    sb_cluster_broadcast_report *r = NULL;
    st = sb_cluster_broadcast(manager, &t, (const uint8_t *)data, strlen(data), true, &r);
    target_free(&t);
    TRY(st);
    key(o, "local");
    num(o, r->local.recipients);
    key(o, "remote");
    node_map(o, r->remote_nodes, r->remote_recipients, r->remote_len);
    key(o, "unacknowledged");
    num(o, r->unacknowledged);
    key(o, "recipients");
    num(o, r->recipients);
    TRY(sb_cluster_broadcast_report_free(r));
    return 0;
}

static int by_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int op_members(out_t *o) {
    bool joined = false;
    sb_cluster_member_list *l = NULL;
    TRY(sb_cluster_is_joined(manager, &joined));
    TRY(sb_cluster_members(manager, &l));
    const char **ids = calloc(l->len + 1, sizeof *ids);
    if (!ids) abort();
    for (size_t i = 0; i < l->len; i++) ids[i] = l->members[i].node_id;
    qsort(ids, l->len, sizeof *ids, by_str);
    key(o, "joined");
    raw(o, joined ? "true" : "false");
    key(o, "members");
    str_list(o, ids, l->len);
    free(ids);
    TRY(sb_cluster_member_list_free(l));
    return 0;
}

static int op_list(const json *req, out_t *o) {
    const json *f = get(req, "filter");
    sb_list_filter lf = {
        .struct_size = sizeof lf,
        .user = get_str(f, "user"),
        .topic = get_str(f, "topic"),
        .limit = (size_t)get_u64(f, "limit"),
        .cursor = get_u64(f, "cursor"),
    };
    sb_cluster_conn_list *l = NULL;
    TRY(sb_cluster_list(manager, &lf, &l));
    key(o, "ids");
    raw(o, "[");
    for (size_t i = 0; i < l->len; i++) {
        if (i) raw(o, ",");
        num(o, l->connections[i].id);
    }
    raw(o, "]");
    key(o, "nodes");
    str_list(o, l->nodes, l->len);
    key(o, "next_cursor");
    if (l->has_next) num(o, l->next_cursor);
    else raw(o, "null");
    answered_out(o, &l->answered);
    TRY(sb_cluster_conn_list_free(l));
    return 0;
}

static int op_disconnect(const json *req, out_t *o) {
    sb_target t = target_of(get(req, "target"));
    sb_cluster_count *c = NULL;
    sb_status st = sb_cluster_disconnect(manager, &t, get_str(req, "reason"), &c);
    target_free(&t);
    TRY(st);
    key(o, "total");
    num(o, c->total);
    key(o, "by_node");
    node_map(o, c->nodes, c->counts, c->by_node_len);
    answered_out(o, &c->answered);
    TRY(sb_cluster_count_free(c));
    return 0;
}

static int op_stats(out_t *o) {
    sb_cluster_stats *s = NULL;
    TRY(sb_cluster_get_stats(manager, &s));
    key(o, "connections");
    num(o, s->total.connections);
    key(o, "by_node");
    raw(o, "{");
    for (size_t i = 0; i < s->by_node_len; i++) {
        key(o, s->nodes[i]);
        num(o, s->by_node[i].connections);
    }
    raw(o, "}");
    answered_out(o, &s->answered);
    TRY(sb_cluster_stats_free(s));
    return 0;
}

static int op_pool(const json *req, out_t *o) {
    const char *name = get_str(req, "name"), *target = get_str(req, "target");
    if (!name || !target) return fail_msg(o, "pool needs name and target");
    if (npools == MAX_POOLS) return fail_msg(o, "too many pools for this child");
    sb_config *cfg;
    TRY(config_of(get(req, "config"), &cfg));
    sb_pool *pool = NULL;
    sb_status st = sb_pool_new(manager, name, target, cfg, &pool);
    sb_config_free(cfg);
    TRY(st);
    pools[npools].name = strdup(name);
    pools[npools++].pool = pool;
    return 0;
}

static int op_acquire(const json *req, out_t *o) {
    sb_pool *pool = pool_named(get_str(req, "pool"));
    if (!pool) return fail_msg(o, "no such pool");
    sb_lease *lease = NULL;
    TRY(sb_pool_acquire(pool, -1, &lease));
    TRY(sb_lease_release(lease));
    return 0;
}

static int op_pool_stats(const json *req, out_t *o) {
    sb_pool *pool = pool_named(get_str(req, "pool"));
    if (!pool) return fail_msg(o, "no such pool");
    sb_pool_stats s = {.struct_size = sizeof s};
    TRY(sb_pool_get_stats(pool, &s));
    key(o, "connect_failed_total");
    num(o, s.connect_failed_total);
    key(o, "created_total");
    num(o, s.created_total);
    key(o, "rejected_total");
    num(o, s.rejected_total);
    return 0;
}

static int op_breaker(const json *req, out_t *o) {
    sb_pool *pool = pool_named(get_str(req, "pool"));
    if (!pool) return fail_msg(o, "no such pool");
    sb_breaker_state state;
    TRY(sb_pool_breaker_state(pool, NULL, &state));
    key(o, "state");
    str(o, sb_breaker_state_str(state));
    return 0;
}

static int op_resource(const json *req, out_t *o) {
    const json *props = get(req, "props");
    size_t n = props && props->t == J_OBJ ? props->n : 0;
    const char **keys = calloc(n + 1, sizeof *keys), **values = calloc(n + 1, sizeof *values);
    if (!keys || !values) abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (props->items[i].t != J_STR) continue;
        keys[k] = props->keys[i];
        values[k++] = props->items[i].s;
    }
    const char *id = get_str(req, "id"), *kind = get_str(req, "kind");
    sb_status st = sb_resource_create(manager, id, kind ? kind : "tcp", keys, values, k);
    free(keys);
    free(values);
    TRY(st);
    return 0;
}

static int op_resource_status(const json *req, out_t *o) {
    sb_cluster_resource *r = NULL;
    TRY(sb_cluster_resource_status(manager, get_str(req, "id"), &r));
    key(o, "by_node");
    raw(o, "{");
    for (size_t i = 0; i < r->by_node_len; i++) {
        key(o, r->nodes[i]);
        str(o, r->statuses[i]);
    }
    raw(o, "}");
    answered_out(o, &r->answered);
    TRY(sb_cluster_resource_free(r));
    return 0;
}

static int op_events(out_t *o) {
    key(o, "events");
    raw(o, "[");
    for (int i = 0; i < 100000; i++) {
        sb_event ev = {.struct_size = sizeof ev};
        sb_status st = sb_manager_poll_event(manager, 0, &ev);
        if (st == SB_TIMEOUT) break;
        TRY(st);
        char item[SB_EVENT_REASON_LEN + 64];
        snprintf(item, sizeof item, "%s:%s", sb_event_kind_str(ev.kind), ev.reason);
        if (i) raw(o, ",");
        str(o, item);
    }
    raw(o, "]");
    return 0;
}

static void shutdown_all(void) {
    for (size_t i = 0; i < npools; i++) {
        sb_pool_free(pools[i].pool);
        free(pools[i].name);
    }
    npools = 0;
    for (size_t i = 0; i < noutboxes; i++) sb_registry_outbox_free(outboxes[i]);
    noutboxes = 0;
    if (manager) {
        sb_manager_close(manager, 1000);
        sb_manager_free(manager);
        manager = NULL;
    }
}

/* Answers one request into `o`; 1 when the child should exit. */
static int handle(const char *line, out_t *o) {
    reader r = {.p = line};
    json req;
    if (parse_value(&r, &req) != 0 || req.t != J_OBJ) {
        json_free(&req);
        fail_msg(o, "the request is not a JSON object");
        return 0;
    }
    const char *op = get_str(&req, "op");
    int done = 0, rc;
    raw(o, "{");
    if (!op) rc = fail_msg(o, "the request has no op");
    else if (strcmp(op, "start") == 0) rc = op_start(&req, o);
    else if (strcmp(op, "close") == 0) rc = 0, done = 1;
    else if (!manager) rc = fail_msg(o, "start first");
    else if (strcmp(op, "register") == 0) rc = op_register(&req, o);
    else if (strcmp(op, "drain") == 0) rc = op_drain(&req, o);
    else if (strcmp(op, "broadcast") == 0) rc = op_broadcast(&req, o);
    else if (strcmp(op, "members") == 0) rc = op_members(o);
    else if (strcmp(op, "list") == 0) rc = op_list(&req, o);
    else if (strcmp(op, "disconnect") == 0) rc = op_disconnect(&req, o);
    else if (strcmp(op, "stats") == 0) rc = op_stats(o);
    else if (strcmp(op, "pool") == 0) rc = op_pool(&req, o);
    else if (strcmp(op, "acquire") == 0) rc = op_acquire(&req, o);
    else if (strcmp(op, "pool_stats") == 0) rc = op_pool_stats(&req, o);
    else if (strcmp(op, "breaker") == 0) rc = op_breaker(&req, o);
    else if (strcmp(op, "resource") == 0) rc = op_resource(&req, o);
    else if (strcmp(op, "resource_status") == 0) rc = op_resource_status(&req, o);
    else if (strcmp(op, "events") == 0) rc = op_events(o);
    else rc = fail_msg(o, "unknown op");
    if (rc == 0) raw(o, "}"); /* an error reply is complete already */
    json_free(&req);
    return done;
}

/* ---- --self-test ---- */

static int not_in_a_cluster(void) {
    sb_manager *m;
    EXPECT_OK(sb_manager_new(NULL, &m));
    bool joined;
    uint64_t n;
    sb_cluster_member_list *l = NULL;
    sb_cluster_stats *s = NULL;
    EXPECT_ST(sb_cluster_is_joined(m, &joined), SB_NOT_FOUND);
    EXPECT_ERROR_MENTIONS("cluster.redis_url");
    EXPECT_ST(sb_cluster_node_number(m, &n), SB_NOT_FOUND);
    EXPECT_ST(sb_cluster_members(m, &l), SB_NOT_FOUND);
    EXPECT_ST(sb_cluster_get_stats(m, &s), SB_NOT_FOUND);
    EXPECT(l == NULL && s == NULL);
    EXPECT_ST(sb_cluster_is_joined(NULL, &joined), SB_INVALID_HANDLE);
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

static int redis_down_from_the_start(void) {
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", dead_port());
    sb_config *cfg;
    sb_manager *m;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "cluster.redis_url", url));
    EXPECT_OK(sb_config_set(cfg, "cluster.node_id", "lonely"));
    EXPECT_OK(sb_config_set(cfg, "cluster.request_timeout", "300ms"));
    EXPECT_OK(sb_manager_new(cfg, &m));
    EXPECT_OK(sb_config_free(cfg));

    char id[8], small[3];
    size_t need = 0;
    bool joined = true;
    EXPECT_OK(sb_cluster_node_id(m, id, sizeof id, &need));
    EXPECT(strcmp(id, "lonely") == 0 && need == 7);
    EXPECT_ST(sb_cluster_node_id(m, small, sizeof small, &need), SB_RESOURCE_EXHAUSTED);
    EXPECT(small[0] == 0 && need == 7);
    EXPECT_OK(sb_cluster_is_joined(m, &joined));
    EXPECT(!joined);
    sb_event ev = {.struct_size = sizeof ev};
    EXPECT_OK(sb_manager_poll_event(m, 5000, &ev));
    EXPECT(ev.kind == SB_EVENT_CLUSTER_LOST);
    EXPECT(strcmp(ev.reason, "redis_unavailable") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_CLUSTER_JOINED), "cluster_joined") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_CLUSTER_LOST), "cluster_lost") == 0);

    /* Lost: the calls still answer, with this instance's part alone. */
    sb_cluster_stats *s = NULL;
    EXPECT_OK(sb_cluster_get_stats(m, &s));
    EXPECT(s->by_node_len == 1 && strcmp(s->nodes[0], "lonely") == 0);
    EXPECT(s->answered.nodes_len == 1 && s->total.connections == 0);
    sb_cluster_conn_list *l = NULL;
    EXPECT_OK(sb_cluster_list(m, NULL, &l));
    EXPECT(l->len == 0 && !l->has_next);

    /* Snapshots: NULL is a no-op, a second or foreign free is refused. */
    EXPECT_OK(sb_cluster_stats_free(NULL));
    EXPECT_ST(sb_cluster_conn_list_free((sb_cluster_conn_list *)s), SB_INVALID_HANDLE);
    EXPECT_OK(sb_cluster_stats_free(s));
    EXPECT_ST(sb_cluster_stats_free(s), SB_INVALID_HANDLE);
    EXPECT_OK(sb_cluster_conn_list_free(l));
    sb_cluster_resource *r = NULL;
    EXPECT_ST(sb_cluster_resource_status(m, NULL, &r), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_cluster_members(m, NULL), SB_INVALID_ARGUMENT);
    sb_target nobody = {.struct_size = sizeof nobody};
    sb_cluster_count *c = NULL;
    EXPECT_ST(sb_cluster_disconnect(m, &nobody, NULL, &c), SB_INVALID_ARGUMENT);
    EXPECT(c == NULL);
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--self-test") == 0) {
        RUN(not_in_a_cluster);
        RUN(redis_down_from_the_start);
        return harness_summary();
    }
    char *line = NULL;
    size_t cap = 0;
    out_t o = {0};
    int done = 0;
    while (!done && getline(&line, &cap, stdin) > 0) {
        o.len = 0;
        done = handle(line, &o);
        if (done) shutdown_all(); /* closed before the reply: the driver then waits */
        fputs(o.buf, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    shutdown_all();
    free(line);
    free(o.buf);
    return 0;
}
