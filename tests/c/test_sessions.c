/* Streaming sessions through the C API (issue 5): the catalog, open/resume/get/list/
 * close, streams added and removed, Kafka-style offsets (position vs committed, commits
 * never backwards unless seek), the limits, events in order, the stream_api_* lines of
 * the metrics text after a scripted run, a closed manager, misuse, and a durable offset
 * store that keeps every acknowledged commit of a child process killed with SIGKILL.
 *
 * The child is this program again (argv[0] --commit-until-killed <path>): it commits
 * increasing offsets and prints "ACK <n>" after each sb_session_commit returned SB_OK. */
#include "harness.h"

#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>

static const char *self_path;

/* A manager with `settings` (key, value, ..., NULL) and data source "ds" key "k"
 * registered. */
static int open_manager(const char *const *settings, sb_manager **m) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i += 2) {
        EXPECT_OK(sb_config_set(cfg, settings[i], settings[i + 1]));
    }
    EXPECT_OK(sb_manager_new(cfg, m));
    EXPECT_OK(sb_config_free(cfg));
    bool added = false;
    EXPECT_OK(sb_session_register(*m, "ds", "k", &added));
    EXPECT(added);
    return 0;
}

static int close_manager(sb_manager *m) {
    EXPECT_OK(sb_manager_close(m, 2000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

/* The stream named `name` of a snapshot, or NULL. */
static const sb_stream_info *stream_of(const sb_session_info *info, const char *name) {
    for (size_t i = 0; i < info->streams_len; i++) {
        if (strcmp(info->streams[i].name, name) == 0) return &info->streams[i];
    }
    return NULL;
}

/* Fails unless `call` returns `want` and the last error contains `needle`. */
#define EXPECT_ERR(call, want, needle)                                                 \
    do {                                                                               \
        EXPECT_ST(call, want);                                                         \
        EXPECT_ERROR_MENTIONS(needle);                                                 \
    } while (0)

static int validation_errors_name_the_field(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    uint64_t id = 0;
    const char *ab[] = {"a", "b"};
    const char *aa[] = {"a", "b", "a"};
    const char *empty[] = {"a", "b", ""};
    const char *with_null[] = {"a", NULL};
    int64_t one[] = {1};
    int64_t neg[] = {0, -4};
    const sb_status inv = SB_INVALID_ARGUMENT;
    EXPECT_ERR(sb_session_open(m, "", "k", NULL, 0, NULL, 0, false, &id), inv,
               "data_source must be a non-empty string");
    EXPECT_ERR(sb_session_open(m, "ds", "", NULL, 0, NULL, 0, false, &id), inv,
               "session_key must be a non-empty string");
    EXPECT_ERR(sb_session_open(m, "ds", "k", empty, 3, NULL, 0, false, &id), inv,
               "streams[2] must be a non-empty stream name");
    EXPECT_ERR(sb_session_open(m, "ds", "k", aa, 3, NULL, 0, false, &id), inv,
               "streams[2] \"a\" repeats streams[0]");
    EXPECT_ERR(sb_session_open(m, "ds", "k", ab, 2, one, 1, false, &id), inv,
               "stream_offsets has 1 entries but streams has 2");
    EXPECT_ERR(sb_session_open(m, "ds", "k", ab, 2, neg, 2, false, &id), inv,
               "stream_offsets[1] must be a non-negative offset");
    EXPECT_ERROR_MENTIONS("got -4");
    /* C-only: NULL where a string or an array must be. */
    EXPECT_ERR(sb_session_open(m, NULL, "k", NULL, 0, NULL, 0, false, &id), inv,
               "data_source must not be NULL");
    EXPECT_ERR(sb_session_open(m, "ds", "k", with_null, 2, NULL, 0, false, &id), inv,
               "streams[1] must not be NULL");
    EXPECT_ERR(sb_session_open(m, "ds", "k", NULL, 2, NULL, 0, false, &id), inv,
               "streams must not be NULL");
    EXPECT_ERR(sb_session_open(m, "ds", "k", ab, 2, NULL, 2, false, &id), inv,
               "stream_offsets must not be NULL");
    EXPECT_ERR(sb_session_open(m, "ds", "k", ab, 2, NULL, 0, false, NULL), inv,
               "id_out must not be NULL");
    /* An unknown key is the catalog's business, not a bad argument. */
    EXPECT_ERR(sb_session_open(m, "ds", "nope", NULL, 0, NULL, 0, false, &id),
               SB_FAILED_PRECONDITION, "has no registered session key \"nope\"");
    EXPECT(id == 0); /* never written on failure */
    size_t open = 99;
    EXPECT_OK(sb_session_open_count(m, &open));
    EXPECT(open == 0);

    EXPECT_OK(sb_session_open(m, "ds", "k", ab, 2, NULL, 0, false, &id));
    EXPECT_ERR(sb_session_add_stream(m, id, "a", 0), inv, "stream \"a\" is already in session");
    EXPECT_ERR(sb_session_add_stream(m, id, "", 0), inv, "stream must be a non-empty string");
    EXPECT_ERR(sb_session_add_stream(m, id, "c", -1), inv, "offset must be a non-negative offset");
    EXPECT_ERR(sb_session_commit(m, id, "a", -1), inv, "offset must be a non-negative offset");
    EXPECT_ERR(sb_session_seek(m, id, "a", -2), inv, "offset must be a non-negative offset");
    EXPECT_ERR(sb_session_commit(m, id, NULL, 1), inv, "stream must not be NULL");
    /* Unknown ids and streams: SB_NOT_FOUND (ids are not handles). */
    EXPECT_ERR(sb_session_close(m, id + 1000), SB_NOT_FOUND, "no open session with id");
    EXPECT_ERR(sb_session_commit(m, id, "zz", 1), SB_NOT_FOUND, "has no stream named \"zz\"");
    EXPECT_ERR(sb_session_remove_stream(m, id, "zz"), SB_NOT_FOUND, "zz");
    EXPECT_ST(sb_session_record_read(m, id + 1000, "a", 1, 1, 0), SB_NOT_FOUND);
    EXPECT_ST(sb_session_record_router(m, id + 1000, 1, 1), SB_NOT_FOUND);
    int64_t pos = 77;
    EXPECT_ST(sb_session_position(m, id, "zz", &pos), SB_NOT_FOUND);
    EXPECT_ST(sb_session_deliver(m, id + 1000, "a", 1, 1, 0, &pos), SB_NOT_FOUND);
    EXPECT(pos == 77);
    sb_session_info *info = NULL;
    EXPECT_ST(sb_session_get(m, id + 1000, &info), SB_NOT_FOUND);
    EXPECT(info == NULL);
    return close_manager(m);
}

static int catalog_decides_what_may_be_opened(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    bool added = true, removed = false, yes = false;
    EXPECT_OK(sb_session_register(m, "ds", "k", &added));
    EXPECT(!added); /* was there */
    EXPECT_OK(sb_session_register(m, "alpha", "z", NULL));
    EXPECT_ERR(sb_session_register(m, "ds", "", &added), SB_INVALID_ARGUMENT,
               "session_key must be a non-empty string");
    EXPECT_OK(sb_session_is_registered(m, "ds", "k", &yes));
    EXPECT(yes);
    EXPECT_OK(sb_session_is_registered(m, "ds", "other", &yes));
    EXPECT(!yes);
    sb_catalog *cat = NULL;
    EXPECT_OK(sb_session_catalog(m, &cat));
    EXPECT(cat != NULL && cat->len == 2);
    EXPECT(strcmp(cat->data_sources[0], "alpha") == 0 && strcmp(cat->session_keys[0], "z") == 0);
    EXPECT(strcmp(cat->data_sources[1], "ds") == 0 && strcmp(cat->session_keys[1], "k") == 0);
    EXPECT_OK(sb_catalog_free(cat));
    EXPECT_ST(sb_catalog_free(cat), SB_INVALID_HANDLE); /* once */
    EXPECT_OK(sb_catalog_free(NULL));

    uint64_t id = 0;
    EXPECT_OK(sb_session_open(m, "ds", "k", NULL, 0, NULL, 0, false, &id));
    EXPECT_ERR(sb_session_unregister(m, "ds", "k", &removed), SB_FAILED_PRECONDITION,
               "1 open session");
    EXPECT_OK(sb_session_close(m, id));
    EXPECT_OK(sb_session_unregister(m, "ds", "k", &removed));
    EXPECT(removed);
    EXPECT_OK(sb_session_unregister(m, "ds", "k", &removed));
    EXPECT(!removed);
    EXPECT_ERR(sb_session_open(m, "ds", "k", NULL, 0, NULL, 0, false, &id),
               SB_FAILED_PRECONDITION, "register it first");
    EXPECT_OK(sb_session_catalog(m, &cat));
    EXPECT(cat->len == 1);
    EXPECT_OK(sb_catalog_free(cat));
    return close_manager(m);
}

static int open_get_list_close(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    EXPECT_OK(sb_session_register(m, "ds", "k2", NULL));
    const char *ab[] = {"a", "b"};
    int64_t offs[] = {5, 9};
    uint64_t id = 0, other = 0, third = 0;
    EXPECT_OK(sb_session_open(m, "ds", "k", ab, 2, offs, 2, true, &id));
    EXPECT(id >= 1);
    EXPECT_OK(sb_session_open(m, "ds", "k2", NULL, 0, NULL, 0, false, &other));
    EXPECT_OK(sb_session_open(m, "ds", "k", ab, 2, NULL, 0, false, &third));
    EXPECT(other > id && third > other); /* ids only grow */

    sb_session_info *info = NULL;
    EXPECT_OK(sb_session_get(m, id, &info));
    EXPECT(info->struct_size == sizeof *info && info->id == id);
    EXPECT(strcmp(info->data_source, "ds") == 0 && strcmp(info->session_key, "k") == 0);
    EXPECT(info->exclude_main_stream);
    EXPECT(info->streams_len == 2);
    EXPECT(strcmp(info->streams[0].name, "a") == 0 && info->streams[0].position == 5);
    EXPECT(strcmp(info->streams[1].name, "b") == 0 && info->streams[1].position == 9);
    EXPECT(info->streams[0].committed == -1); /* never committed */
    EXPECT(info->streams[1].data_packets_read == 0);
    EXPECT_OK(sb_session_info_free(info));
    EXPECT_ST(sb_session_info_free(info), SB_INVALID_HANDLE); /* once */
    EXPECT_ERROR_MENTIONS("not a live sb_session_info");

    sb_session_info *empty = NULL;
    EXPECT_OK(sb_session_get(m, other, &empty));
    EXPECT(empty->streams_len == 0 && empty->streams == NULL && !empty->exclude_main_stream);
    /* A snapshot is not a catalog: freeing it as one is refused. */
    EXPECT_ST(sb_catalog_free((sb_catalog *)empty), SB_INVALID_HANDLE);
    EXPECT_OK(sb_session_info_free(empty));

    uint64_t ids[8];
    size_t count = 0;
    EXPECT_OK(sb_session_list(m, NULL, NULL, ids, 8, &count));
    EXPECT(count == 3 && ids[0] == id && ids[1] == other && ids[2] == third);
    EXPECT_OK(sb_session_list(m, "ds", "k", ids, 8, &count));
    EXPECT(count == 2 && ids[0] == id && ids[1] == third);
    EXPECT_OK(sb_session_list(m, NULL, "k2", ids, 8, &count));
    EXPECT(count == 1 && ids[0] == other);
    EXPECT_OK(sb_session_list(m, "nowhere", NULL, ids, 8, &count));
    EXPECT(count == 0);
    ids[0] = 12345;
    EXPECT_ERR(sb_session_list(m, NULL, NULL, ids, 2, &count), SB_RESOURCE_EXHAUSTED,
               "3 sessions match");
    EXPECT(count == 3 && ids[0] == 12345); /* nothing written */
    EXPECT_ST(sb_session_list(m, NULL, NULL, NULL, 0, &count), SB_RESOURCE_EXHAUSTED);
    EXPECT(count == 3);
    EXPECT_ST(sb_session_list(m, NULL, NULL, NULL, 4, &count), SB_INVALID_ARGUMENT);
    EXPECT_ST(sb_session_list(m, NULL, NULL, ids, 8, NULL), SB_INVALID_ARGUMENT);

    size_t open = 0;
    EXPECT_OK(sb_session_open_count(m, &open));
    EXPECT(open == 3);
    EXPECT_OK(sb_session_close(m, other));
    EXPECT_ST(sb_session_close(m, other), SB_NOT_FOUND);
    EXPECT_ST(sb_session_get(m, other, &info), SB_NOT_FOUND);
    EXPECT_OK(sb_session_open_count(m, &open));
    EXPECT(open == 2);
    const char *kind = NULL;
    EXPECT_OK(sb_session_store_kind(m, &kind));
    EXPECT(kind != NULL && strcmp(kind, "memory") == 0);
    size_t buffered = 9;
    EXPECT_OK(sb_session_buffered_commits(m, &buffered));
    EXPECT(buffered == 0);
    return close_manager(m);
}

static int deliver_commit_close_resume(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *ab[] = {"a", "b"};
    uint64_t id = 0;
    int64_t pos = -1, committed = 0;
    EXPECT_OK(sb_session_open(m, "ds", "k", ab, 2, NULL, 0, false, &id));
    EXPECT_OK(sb_session_record_read(m, id, "a", 12, 1200, 1));
    EXPECT_OK(sb_session_deliver(m, id, "a", 10, 1000, 1, &pos));
    EXPECT(pos == 10);
    EXPECT_OK(sb_session_deliver(m, id, "b", 3, 30, 0, NULL));
    EXPECT_OK(sb_session_position(m, id, "b", &pos));
    EXPECT(pos == 3);
    EXPECT_OK(sb_session_commit(m, id, "a", 8));
    EXPECT_OK(sb_session_commit(m, id, "b", 3));
    EXPECT_OK(sb_session_committed(m, "ds", "k", "a", &committed));
    EXPECT(committed == 8);
    sb_session_info *info = NULL;
    EXPECT_OK(sb_session_get(m, id, &info));
    const sb_stream_info *a = stream_of(info, "a");
    EXPECT(a != NULL && a->position == 10 && a->committed == 8);
    EXPECT(a->data_packets_read == 12 && a->data_bytes_read == 1200);
    EXPECT(a->data_packets_delivered == 10 && a->data_bytes_delivered == 1000);
    EXPECT(a->essential_packets_read == 1 && a->essential_packets_delivered == 1);
    EXPECT_OK(sb_session_info_free(info));
    EXPECT_OK(sb_session_close(m, id));

    /* Resume: every stream at its committed offset; a new one from 0. */
    const char *abc[] = {"a", "b", "c"};
    uint64_t again = 0;
    EXPECT_OK(sb_session_resume(m, "ds", "k", abc, 3, false, &again));
    EXPECT(again != id);
    EXPECT_OK(sb_session_get(m, again, &info));
    EXPECT(stream_of(info, "a")->position == 8 && stream_of(info, "a")->committed == 8);
    EXPECT(stream_of(info, "b")->position == 3);
    EXPECT(stream_of(info, "c")->position == 0 && stream_of(info, "c")->committed == -1);
    EXPECT(stream_of(info, "a")->data_packets_read == 0); /* counters are per session */
    EXPECT_OK(sb_session_info_free(info));
    EXPECT_OK(sb_session_committed(m, "ds", "k", "never", &committed));
    EXPECT(committed == -1);
    return close_manager(m);
}

static int commits_never_go_backwards_unless_seek(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *a[] = {"a"};
    int64_t ten[] = {10};
    uint64_t id = 0;
    EXPECT_OK(sb_session_open(m, "ds", "k", a, 1, ten, 1, false, &id));
    EXPECT_ERR(sb_session_commit(m, id, "a", 9), SB_FAILED_PRECONDITION, "would go backwards");
    EXPECT_OK(sb_session_commit(m, id, "a", 20));
    EXPECT_OK(sb_session_commit(m, id, "a", 20)); /* the same again is fine */
    EXPECT_ERR(sb_session_commit(m, id, "a", 15), SB_FAILED_PRECONDITION,
               "call seek(\"a\", 15) first");
    int64_t committed = 0;
    EXPECT_OK(sb_session_committed(m, "ds", "k", "a", &committed));
    EXPECT(committed == 20);
    EXPECT_OK(sb_session_seek(m, id, "a", 15));
    int64_t pos = 0;
    EXPECT_OK(sb_session_position(m, id, "a", &pos));
    EXPECT(pos == 15);
    EXPECT_OK(sb_session_committed(m, "ds", "k", "a", &committed));
    EXPECT(committed == 20); /* seek stores nothing */
    EXPECT_OK(sb_session_commit(m, id, "a", 15));
    EXPECT_OK(sb_session_committed(m, "ds", "k", "a", &committed));
    EXPECT(committed == 15);
    /* Each refused commit was a commit_failed event naming the session and stream. */
    int failed = 0;
    for (int i = 0; i < 100; i++) {
        sb_event ev;
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, 50, &ev) != SB_OK) break;
        if (ev.kind != SB_EVENT_COMMIT_FAILED) continue;
        failed++;
        EXPECT(ev.session_id == id && strcmp(ev.stream, "a") == 0 && ev.pool[0] == '\0');
        EXPECT(strstr(ev.message, "backwards") != NULL);
    }
    EXPECT(failed == 2);
    return close_manager(m);
}

static int limits_are_resource_exhausted(void) {
    const char *settings[] = {"sessions.max_per_key", "2", "sessions.max_total", "3", NULL};
    sb_manager *m = NULL;
    if (open_manager(settings, &m)) return 1;
    EXPECT_OK(sb_session_register(m, "ds", "k2", NULL));
    uint64_t a = 0, b = 0, c = 0, d = 0;
    EXPECT_OK(sb_session_open(m, "ds", "k", NULL, 0, NULL, 0, false, &a));
    EXPECT_OK(sb_session_open(m, "ds", "k", NULL, 0, NULL, 0, false, &b));
    EXPECT_ERR(sb_session_open(m, "ds", "k", NULL, 0, NULL, 0, false, &c), SB_RESOURCE_EXHAUSTED,
               "sessions.max_per_key");
    EXPECT_OK(sb_session_open(m, "ds", "k2", NULL, 0, NULL, 0, false, &c));
    EXPECT_ERR(sb_session_resume(m, "ds", "k2", NULL, 0, false, &d), SB_RESOURCE_EXHAUSTED,
               "sessions.max_total");
    EXPECT(d == 0);
    EXPECT_OK(sb_session_close(m, a));
    EXPECT_OK(sb_session_resume(m, "ds", "k2", NULL, 0, false, &d));
    return close_manager(m);
}

static int streams_come_and_go_and_events_arrive_in_order(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *a[] = {"a"};
    uint64_t id = 0;
    EXPECT_OK(sb_session_open(m, "ds", "k", a, 1, NULL, 0, false, &id));
    EXPECT_OK(sb_session_commit(m, id, "a", 7));
    EXPECT_OK(sb_session_remove_stream(m, id, "a"));
    sb_session_info *info = NULL;
    EXPECT_OK(sb_session_get(m, id, &info));
    EXPECT(info->streams_len == 0);
    EXPECT_OK(sb_session_info_free(info));
    EXPECT_OK(sb_session_add_stream(m, id, "b", 4));
    EXPECT_OK(sb_session_add_stream(m, id, "a", 0));
    EXPECT_OK(sb_session_get(m, id, &info));
    EXPECT(info->streams_len == 2 && strcmp(info->streams[0].name, "b") == 0);
    EXPECT(stream_of(info, "b")->position == 4);
    EXPECT(stream_of(info, "a")->committed == 7); /* a re-added stream knows its commit */
    EXPECT_OK(sb_session_info_free(info));
    EXPECT_OK(sb_session_close(m, id));

    struct {
        sb_event_kind kind;
        const char *stream;
    } want[] = {{SB_EVENT_SESSION_OPENED, ""},  {SB_EVENT_STREAM_REMOVED, "a"},
                {SB_EVENT_STREAM_ADDED, "b"},   {SB_EVENT_STREAM_ADDED, "a"},
                {SB_EVENT_SESSION_CLOSED, ""}};
    size_t n = 0;
    for (int i = 0; i < 100 && n < 6; i++) {
        sb_event ev;
        ev.struct_size = sizeof ev;
        if (sb_manager_poll_event(m, 100, &ev) != SB_OK) break;
        if (n >= 5) FAILF("an extra event: %s %s", sb_event_kind_str(ev.kind), ev.message);
        if (ev.kind != want[n].kind || strcmp(ev.stream, want[n].stream) != 0 ||
            ev.session_id != id || ev.pool[0] != '\0')
            FAILF("event %zu: %s stream \"%s\" session %llu, expected %s \"%s\"", n,
                  sb_event_kind_str(ev.kind), ev.stream, (unsigned long long)ev.session_id,
                  sb_event_kind_str(want[n].kind), want[n].stream);
        n++;
    }
    EXPECT(n == 5);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_SESSION_OPENED), "session_opened") == 0);
    EXPECT(strcmp(sb_event_kind_str(SB_EVENT_COMMIT_FAILED), "commit_failed") == 0);
    return close_manager(m);
}


static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) return 1;
    }
    return 0;
}

static int metrics_have_the_stream_api_series(void) {
    sb_manager *m = NULL;
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_manager_new(cfg, &m));
    EXPECT_OK(sb_config_free(cfg));
    EXPECT_OK(sb_session_register(m, "feed", "k1", NULL));
    const char *xy[] = {"x", "y"};
    const char *x[] = {"x"};
    uint64_t a = 0, b = 0;
    EXPECT_OK(sb_session_open(m, "feed", "k1", xy, 2, NULL, 0, false, &a));
    EXPECT_OK(sb_session_open(m, "feed", "k1", x, 1, NULL, 0, false, &b));
    EXPECT_OK(sb_session_close(m, b));
    EXPECT_OK(sb_session_record_read(m, a, "x", 10, 1000, 2));
    EXPECT_OK(sb_session_record_read(m, a, "x", 1, 50, 0));
    EXPECT_OK(sb_session_deliver(m, a, "x", 7, 700, 1, NULL));
    EXPECT_OK(sb_session_record_read(m, a, "y", 4, 40, 4));
    EXPECT_OK(sb_session_deliver(m, a, "y", 3, 30, 3, NULL));
    EXPECT_OK(sb_session_record_router(m, a, 3, 300));

    char *text = metrics_text(m);
    EXPECT(text != NULL);
    struct {
        const char *name, *stream;
        int value;
    } per_stream[] = {{"stream_api_data_packets_read_total", "x", 11},
                      {"stream_api_data_bytes_read_total", "x", 1050},
                      {"stream_api_data_packets_delivered_total", "x", 7},
                      {"stream_api_data_bytes_delivered_total", "x", 700},
                      {"stream_api_essential_packets_read_total", "x", 2},
                      {"stream_api_essential_packets_delivered_total", "x", 1},
                      {"stream_api_data_packets_read_total", "y", 4},
                      {"stream_api_data_packets_delivered_total", "y", 3},
                      {"stream_api_essential_packets_delivered_total", "y", 3}};
    char line[256];
    int missing = 0;
    for (size_t i = 0; i < sizeof per_stream / sizeof per_stream[0]; i++) {
        snprintf(line, sizeof line,
                 "%s{connection=\"%llu\",data_source=\"feed\",session_key=\"k1\",stream=\"%s\"} %d",
                 per_stream[i].name, (unsigned long long)a, per_stream[i].stream,
                 per_stream[i].value);
        if (!has_line(text, line)) {
            fprintf(stderr, "    missing: %s\n", line);
            missing++;
        }
    }
    const char *fixed[] = {
        "stream_api_connections_total{data_source=\"feed\",session_key=\"k1\"} 2",
        "stream_api_connections_open{data_source=\"feed\",session_key=\"k1\"} 1",
        "# TYPE stream_api_connections counter", "# EOF"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (!has_line(text, fixed[i])) {
            fprintf(stderr, "    missing: %s\n", fixed[i]);
            missing++;
        }
    }
    snprintf(line, sizeof line,
             "stream_api_router_messages_received_total{connection=\"%llu\",data_source=\"feed\","
             "session_key=\"k1\"} 3",
             (unsigned long long)a);
    if (!has_line(text, line)) {
        fprintf(stderr, "    missing: %s\n", line);
        missing++;
    }
    snprintf(line, sizeof line,
             "stream_api_router_messages_received_bytes_total{connection=\"%llu\","
             "data_source=\"feed\",session_key=\"k1\"} 300",
             (unsigned long long)a);
    if (!has_line(text, line)) {
        fprintf(stderr, "    missing: %s\n", line);
        missing++;
    }
    snprintf(line, sizeof line, "connection=\"%llu\"", (unsigned long long)b);
    int closed_gone = strstr(text, line) == NULL;
    if (missing) fprintf(stderr, "%s", text);
    free(text);
    EXPECT(missing == 0);
    EXPECT(closed_gone); /* a closed session's series are gone */
    return close_manager(m);
}

static int a_closed_manager_makes_session_calls_unavailable(void) {
    sb_manager *m = NULL;
    if (open_manager(NULL, &m)) return 1;
    const char *a[] = {"a"};
    uint64_t id = 0, other = 0;
    EXPECT_OK(sb_session_open(m, "ds", "k", a, 1, NULL, 0, false, &id));
    EXPECT_OK(sb_manager_close(m, 1000));
    const sb_status u = SB_UNAVAILABLE;
    EXPECT_ERR(sb_session_open(m, "ds", "k", NULL, 0, NULL, 0, false, &other), u,
               "manager is closed");
    sb_session_info *info = NULL;
    EXPECT_ST(sb_session_get(m, id, &info), u);
    EXPECT_ST(sb_session_close(m, id), u);
    EXPECT_ST(sb_session_commit(m, id, "a", 1), u);
    EXPECT_ST(sb_session_deliver(m, id, "a", 1, 1, 0, NULL), u);
    EXPECT_ST(sb_session_register(m, "ds", "x", NULL), u);
    EXPECT_ST(sb_session_resume(m, "ds", "k", NULL, 0, false, &other), u);
    uint64_t ids[4];
    size_t count = 0, open = 9;
    EXPECT_ST(sb_session_list(m, NULL, NULL, ids, 4, &count), u);
    EXPECT_OK(sb_session_open_count(m, &open));
    EXPECT(open == 0);
    EXPECT_OK(sb_manager_free(m));
    /* A freed manager is a bad handle. */
    EXPECT_ST(sb_session_close(m, id), SB_INVALID_HANDLE);
    EXPECT_ST(sb_session_open_count(NULL, &open), SB_INVALID_HANDLE);
    EXPECT_ST(sb_session_flush(NULL), SB_INVALID_HANDLE);
    return 0;
}

/* ---- the durable store across SIGKILL -------------------------------------------- */

static int child_commits_until_killed(const char *path) {
    sb_config *cfg = NULL;
    sb_manager *m = NULL;
    uint64_t id = 0;
    const char *a[] = {"a"};
    if (sb_config_new(&cfg) != SB_OK || sb_config_set(cfg, "offsets.path", path) != SB_OK ||
        sb_manager_new(cfg, &m) != SB_OK || sb_session_register(m, "feed", "k", NULL) != SB_OK ||
        sb_session_open(m, "feed", "k", a, 1, NULL, 0, false, &id) != SB_OK) {
        fprintf(stderr, "child: %s\n", last_error());
        return 2;
    }
    for (int64_t n = 1; n <= 1000000; n++) {
        if (sb_session_commit(m, id, "a", n) != SB_OK) {
            fprintf(stderr, "child: %s\n", last_error());
            return 3;
        }
        printf("ACK %lld\n", (long long)n);
        fflush(stdout);
    }
    return 0; /* killed long before */
}

static int durable_commits_survive_sigkill(void) {
    char dir[] = "/tmp/sb-sessions-XXXXXX";
    if (mkdtemp(dir) == NULL) FAILF("mkdtemp: %s", strerror(errno));
    char path[128];
    snprintf(path, sizeof path, "%s/offsets.redb", dir);

    int out[2];
    EXPECT(pipe(out) == 0);
    fflush(NULL);
    pid_t pid = fork();
    EXPECT(pid >= 0);
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execl(self_path, self_path, "--commit-until-killed", path, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", self_path, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    /* Read acknowledgements until there are 20, then kill -9 in the middle of the
     * stream of commits. */
    FILE *acks = fdopen(out[0], "r");
    EXPECT(acks != NULL);
    long long max_acked = 0, n = 0;
    char line[64];
    long long deadline = now_ms() + 60000;
    while (max_acked < 20 && now_ms() < deadline && fgets(line, sizeof line, acks) != NULL) {
        if (sscanf(line, "ACK %lld", &n) == 1 && n > max_acked) max_acked = n;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    /* Lines it printed before it died count too. */
    while (fgets(line, sizeof line, acks) != NULL) {
        if (sscanf(line, "ACK %lld", &n) == 1 && n > max_acked) max_acked = n;
    }
    fclose(acks);
    EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    printf("    the child acknowledged %lld commits before SIGKILL\n", max_acked);
    EXPECT(max_acked >= 20);

    /* A new manager on the same file finds every acknowledged commit. */
    sb_config *cfg = NULL;
    sb_manager *m = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "offsets.path", path));
    EXPECT_OK(sb_manager_new(cfg, &m));
    EXPECT_OK(sb_config_free(cfg));
    const char *kind = NULL;
    EXPECT_OK(sb_session_store_kind(m, &kind));
    EXPECT(strcmp(kind, "durable") == 0);
    int64_t committed = -1;
    EXPECT_OK(sb_session_committed(m, "feed", "k", "a", &committed));
    printf("    committed after the restart: %lld\n", (long long)committed);
    EXPECT(committed >= max_acked);
    /* And a resumed session starts there. */
    EXPECT_OK(sb_session_register(m, "feed", "k", NULL));
    const char *a[] = {"a"};
    uint64_t id = 0;
    int64_t pos = -1;
    EXPECT_OK(sb_session_resume(m, "feed", "k", a, 1, false, &id));
    EXPECT_OK(sb_session_position(m, id, "a", &pos));
    EXPECT(pos == committed);
    EXPECT_OK(sb_session_flush(m));
    if (close_manager(m)) return 1;
    unlink(path);
    rmdir(dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--commit-until-killed") == 0) {
        return child_commits_until_killed(argv[2]);
    }
    self_path = argv[0];
    signal(SIGPIPE, SIG_IGN);
    RUN(validation_errors_name_the_field);
    RUN(catalog_decides_what_may_be_opened);
    RUN(open_get_list_close);
    RUN(deliver_commit_close_resume);
    RUN(commits_never_go_backwards_unless_seek);
    RUN(limits_are_resource_exhausted);
    RUN(streams_come_and_go_and_events_arrive_in_order);
    RUN(metrics_have_the_stream_api_series);
    RUN(a_closed_manager_makes_session_calls_unavailable);
    RUN(durable_commits_survive_sigkill);
    return harness_summary();
}
