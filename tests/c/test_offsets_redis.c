/* The Redis offset store (offsets.store = redis, issue 12) through the C API, with a
 * real redis-server (--appendonly yes --appendfsync always --save "" --dir <tmpdir>)
 * on a free loopback port and managers in separate processes: this program started
 * again (fork + exec of itself) as `<exe> child <commit|resume> <engine> <brakes> <url>`.
 * The model is core/tests/offsets_redis.rs.
 *
 *   - a session committed (100/50) and closed on instance A resumes on instance B at
 *     100/50, and B's commits (101/51) are what this process resumes at;
 *   - a FLUSHALL between commit and resume fails the resume (and a commit) with
 *     SB_FAILED_PRECONDITION, the message naming the old epoch and "now none";
 *   - redis-server killed (SIGKILL) and restarted on the same port and dir: a commit
 *     while it is down fails with SB_UNAVAILABLE or SB_TIMEOUT; commits work again once
 *     it is back; another process resumes at every commit acknowledged before;
 *   - offsets.store = redis without offsets.redis_url: SB_INVALID_ARGUMENT at
 *     sb_manager_new (and an unreachable Redis: SB_UNAVAILABLE or SB_TIMEOUT).
 *
 * SB_REDIS_SERVER names the binary; without a real server this test FAILS. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "harness.h"
#include "redis_server.h"

#include <dirent.h>
#include <limits.h>

static char self_exe[PATH_MAX];

static const char *const STREAMS[] = {"engine", "brakes"};

/* One command over a plain socket (RESP); the whole reply in `out` (NUL-terminated).
 * Returns 0 once a complete reply of a simple type or a bulk string arrived. */
static int redis_command(int port, const char *const *args, size_t nargs, char *out,
                         size_t outlen) {
    out[0] = '\0';
    int fd = connect_loopback(port);
    if (fd < 0) return -1;
    char req[1024];
    size_t used = (size_t)snprintf(req, sizeof req, "*%zu\r\n", nargs);
    for (size_t i = 0; i < nargs && used < sizeof req; i++) {
        used += (size_t)snprintf(req + used, sizeof req - used, "$%zu\r\n%s\r\n",
                                 strlen(args[i]), args[i]);
    }
    if (used >= sizeof req || send(fd, req, used, 0) != (ssize_t)used) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    int done = 0;
    long long deadline = now_ms() + 5000;
    while (!done && got < outlen - 1 && now_ms() < deadline) {
        ssize_t n = recv(fd, out + got, outlen - 1 - got, 0); /* 5 s SO_RCVTIMEO */
        if (n <= 0) break;
        got += (size_t)n;
        out[got] = '\0';
        char *eol = strstr(out, "\r\n");
        if (eol == NULL) continue;
        if (out[0] == '$') {
            long len = strtol(out + 1, NULL, 10);
            done = len < 0 || (size_t)(eol + 2 - out) + (size_t)len + 2 <= got;
        } else {
            done = 1;
        }
    }
    close(fd);
    return done ? 0 : -1;
}

/* Removes the files directly in `dir`, then `dir`. */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[PATH_MAX + 256];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0) fprintf(stderr, "could not remove %s\n", path);
        }
        closedir(d);
    }
    if (rmdir(dir) != 0) fprintf(stderr, "could not remove %s: %s\n", dir, strerror(errno));
}

/* Removes a redis data directory (its append-only files are under appendonlydir/). */
static void remove_dir(const char *dir) {
    char sub[PATH_MAX + 32];
    snprintf(sub, sizeof sub, "%s/appendonlydir", dir);
    if (access(sub, F_OK) == 0) remove_flat_dir(sub);
    remove_flat_dir(dir);
}

/* ---- managers and instances ------------------------------------------------------ */

/* A manager on the Redis at `url` (prefix sbtest, 2 s timeout) with the session key
 * (telemetry, race-1) registered. */
static int offsets_manager(const char *url, sb_manager **m) {
    sb_config *cfg = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "offsets.store", "redis"));
    EXPECT_OK(sb_config_set(cfg, "offsets.redis_url", url));
    EXPECT_OK(sb_config_set(cfg, "offsets.prefix", "sbtest"));
    EXPECT_OK(sb_config_set(cfg, "offsets.redis_timeout", "2s"));
    sb_status st = sb_manager_new(cfg, m);
    EXPECT_OK(sb_config_free(cfg));
    EXPECT_ST(st, SB_OK);
    EXPECT_OK(sb_session_register(*m, "telemetry", "race-1", NULL));
    const char *kind = NULL;
    EXPECT_OK(sb_session_store_kind(*m, &kind));
    EXPECT(kind != NULL && strcmp(kind, "redis") == 0);
    return 0;
}

static int manager_done(sb_manager *m) {
    EXPECT_OK(sb_manager_close(m, 5000));
    EXPECT_OK(sb_manager_free(m));
    return 0;
}

/* The child's part. commit: opens, commits engine/brakes, closes. resume: resumes,
 * checks the positions are engine/brakes, commits +1 each, closes. */
static int child_part(const char *role, int64_t engine, int64_t brakes, const char *url) {
    sb_manager *m = NULL;
    if (offsets_manager(url, &m)) return 1;
    uint64_t id = 0;
    if (strcmp(role, "commit") == 0) {
        EXPECT_OK(sb_session_open(m, "telemetry", "race-1", STREAMS, 2, NULL, 0, false, &id));
        EXPECT_OK(sb_session_commit(m, id, "engine", engine));
        EXPECT_OK(sb_session_commit(m, id, "brakes", brakes));
        EXPECT_OK(sb_session_close(m, id));
    } else if (strcmp(role, "resume") == 0) {
        EXPECT_OK(sb_session_resume(m, "telemetry", "race-1", STREAMS, 2, false, &id));
        int64_t pos = -1;
        EXPECT_OK(sb_session_position(m, id, "engine", &pos));
        if (pos != engine) FAILF("engine resumed at %lld, expected %lld", (long long)pos,
                                 (long long)engine);
        EXPECT_OK(sb_session_position(m, id, "brakes", &pos));
        if (pos != brakes) FAILF("brakes resumed at %lld, expected %lld", (long long)pos,
                                 (long long)brakes);
        EXPECT_OK(sb_session_commit(m, id, "engine", engine + 1));
        EXPECT_OK(sb_session_commit(m, id, "brakes", brakes + 1));
        EXPECT_OK(sb_session_close(m, id));
    } else {
        sb_manager_free(m);
        FAILF("unknown child role %s", role);
    }
    return manager_done(m);
}

/* Runs this program as instance `role` in a child process and waits (up to 60 s) for
 * it to exit; 0 when it succeeded. */
static int instance(const char *role, int64_t engine, int64_t brakes, const char *url) {
    char e[32], b[32];
    snprintf(e, sizeof e, "%lld", (long long)engine);
    snprintf(b, sizeof b, "%lld", (long long)brakes);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) FAILF("fork: %s", strerror(errno));
    if (pid == 0) {
        execl(self_exe, self_exe, "child", role, e, b, url, (char *)NULL);
        _exit(127);
    }
    long long deadline = now_ms() + 60000;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0) FAILF("waitpid: %s", strerror(errno));
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            FAILF("instance %s %s %s did not finish in 60 s", role, e, b);
        }
        sleep_ms(10);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAILF("instance %s %s %s failed (status %d)", role, e, b, status);
    return 0;
}

/* A fresh data directory for one redis-server. */
static int make_dir(char *dir, size_t len, const char *name) {
    snprintf(dir, len, "/tmp/sb-%s-XXXXXX", name);
    if (mkdtemp(dir) == NULL) FAILF("mkdtemp: %s", strerror(errno));
    return 0;
}

/* ---- the cases --------------------------------------------------------------------- */

static int a_session_resumes_on_another_instance_at_its_commits(void) {
    char dir[PATH_MAX];
    if (make_dir(dir, sizeof dir, "offsets-redis-resume")) return 1;
    redis r;
    if (redis_start_with(&r, 0, dir) != 0) {
        remove_dir(dir);
        FAILF("redis-server could not be started");
    }
    int failed = instance("commit", 100, 50, r.url)    /* A */
                 || instance("resume", 100, 50, r.url); /* B: starts at 100/50, commits 101/51 */
    if (!failed) {
        /* C, this process, resumes at B's commits. */
        sb_manager *m = NULL;
        failed = offsets_manager(r.url, &m);
        if (!failed) {
            uint64_t id = 0;
            int64_t engine = -1, brakes = -1, committed = -1;
            sb_status st = sb_session_resume(m, "telemetry", "race-1", STREAMS, 2, false, &id);
            if (st == SB_OK) {
                sb_session_position(m, id, "engine", &engine);
                sb_session_position(m, id, "brakes", &brakes);
                sb_session_committed(m, "telemetry", "race-1", "engine", &committed);
                sb_session_close(m, id);
            } else {
                fprintf(stderr, "    resume: %s (%s)\n", status_name(st), last_error());
            }
            failed = manager_done(m) || st != SB_OK;
            if (!failed && (engine != 101 || brakes != 51 || committed != 101)) {
                fprintf(stderr, "    resumed at %lld/%lld (committed %lld), expected 101/51\n",
                        (long long)engine, (long long)brakes, (long long)committed);
                failed = 1;
            }
        }
    }
    redis_kill(&r);
    remove_dir(dir);
    return failed;
}

static int flushed_redis_fails_the_resume_naming_the_epoch_case(redis *r, sb_manager *m) {
    /* This instance exists (its epoch taken) before the flush; A committed 7/3. */
    uint64_t live = 0;
    EXPECT_OK(sb_session_open(m, "telemetry", "race-1", STREAMS, 2, NULL, 0, false, &live));
    char reply[256];
    const char *get[] = {"GET", "sbtest:epoch"};
    EXPECT(redis_command(r->port, get, 2, reply, sizeof reply) == 0);
    if (reply[0] != '$' || strstr(reply, "\r\n") == NULL) FAILF("GET epoch: \"%s\"", reply);
    char epoch[128];
    char *start = strstr(reply, "\r\n") + 2;
    size_t elen = strcspn(start, "\r\n");
    EXPECT(elen > 0 && elen < sizeof epoch);
    memcpy(epoch, start, elen);
    epoch[elen] = '\0';

    const char *flush[] = {"FLUSHALL"};
    EXPECT(redis_command(r->port, flush, 1, reply, sizeof reply) == 0);
    EXPECT(strstr(reply, "+OK") == reply);

    uint64_t id = 0;
    EXPECT_ST(sb_session_resume(m, "telemetry", "race-1", STREAMS, 2, false, &id),
              SB_FAILED_PRECONDITION);
    EXPECT_ERROR_MENTIONS(epoch);
    EXPECT_ERROR_MENTIONS("now none");
    /* A commit fails the same way: nothing is acknowledged into the empty Redis. */
    EXPECT_ST(sb_session_commit(m, live, "engine", 8), SB_FAILED_PRECONDITION);
    EXPECT_ERROR_MENTIONS(epoch);
    const char *exists[] = {"EXISTS", "sbtest:offsets"};
    EXPECT(redis_command(r->port, exists, 2, reply, sizeof reply) == 0);
    EXPECT(strcmp(reply, ":0\r\n") == 0);
    EXPECT_OK(sb_session_close(m, live));
    return 0;
}

static int a_flushed_redis_fails_the_resume_naming_the_epoch(void) {
    char dir[PATH_MAX];
    if (make_dir(dir, sizeof dir, "offsets-redis-flush")) return 1;
    redis r;
    if (redis_start_with(&r, 0, dir) != 0) {
        remove_dir(dir);
        FAILF("redis-server could not be started");
    }
    int failed = instance("commit", 7, 3, r.url); /* A commits 7/3 and closes */
    if (!failed) {
        sb_manager *m = NULL;
        failed = offsets_manager(r.url, &m);
        if (!failed) {
            failed = flushed_redis_fails_the_resume_naming_the_epoch_case(&r, m);
            failed = manager_done(m) || failed;
        }
    }
    redis_kill(&r);
    remove_dir(dir);
    return failed;
}

static int restart_case(redis *r, const char *dir) {
    sb_manager *m = NULL;
    if (offsets_manager(r->url, &m)) return 1;
    uint64_t id = 0;
    EXPECT_OK(sb_session_open(m, "telemetry", "race-1", STREAMS, 2, NULL, 0, false, &id));
    for (int64_t n = 1; n <= 50; n++) EXPECT_OK(sb_session_commit(m, id, "engine", n));
    EXPECT_OK(sb_session_commit(m, id, "brakes", 5));

    int port = r->port;
    redis_kill(r); /* SIGKILL */
    sb_status st = sb_session_commit(m, id, "engine", 51);
    if (st != SB_UNAVAILABLE && st != SB_TIMEOUT)
        FAILF("a commit with Redis down returned %s (%s), expected SB_UNAVAILABLE or "
              "SB_TIMEOUT", status_name(st), last_error());

    if (redis_start_with(r, port, dir) != 0) FAILF("redis-server did not restart on %d", port);
    /* The client reconnects by itself; the next commits go through. */
    long long deadline = now_ms() + 20000;
    int tries = 0;
    for (;;) {
        st = sb_session_commit(m, id, "brakes", 9);
        if (st == SB_OK) break;
        if (++tries > 2000 || now_ms() > deadline)
            FAILF("commits still fail %d tries after Redis came back: %s (%s)", tries,
                  status_name(st), last_error());
        sleep_ms(50);
    }
    EXPECT_OK(sb_session_close(m, id));
    if (manager_done(m)) return 1;
    /* Another process resumes at every acknowledged commit (engine 50, not 51). */
    return instance("resume", 50, 9, r->url);
}

static int acknowledged_commits_survive_a_redis_restart(void) {
    char dir[PATH_MAX];
    if (make_dir(dir, sizeof dir, "offsets-redis-restart")) return 1;
    redis r;
    if (redis_start_with(&r, 0, dir) != 0) {
        remove_dir(dir);
        FAILF("redis-server could not be started");
    }
    int failed = restart_case(&r, dir);
    redis_kill(&r);
    remove_dir(dir);
    return failed;
}

static int redis_without_a_url_is_refused_at_creation(void) {
    sb_config *cfg = NULL;
    sb_manager *m = NULL;
    EXPECT_OK(sb_config_new(&cfg));
    EXPECT_OK(sb_config_set(cfg, "offsets.store", "redis"));
    sb_status st = sb_manager_new(cfg, &m);
    EXPECT_ST(st, SB_INVALID_ARGUMENT);
    EXPECT_ERROR_MENTIONS("offsets.redis_url");
    EXPECT(m == NULL);

    /* Nothing listening there: Unavailable (or Timeout) at creation. */
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", dead_port());
    EXPECT_OK(sb_config_set(cfg, "offsets.redis_url", url));
    EXPECT_OK(sb_config_set(cfg, "offsets.redis_timeout", "1s"));
    st = sb_manager_new(cfg, &m);
    EXPECT_OK(sb_config_free(cfg));
    if (st != SB_UNAVAILABLE && st != SB_TIMEOUT)
        FAILF("sb_manager_new with no Redis returned %s (%s)", status_name(st), last_error());
    EXPECT(m == NULL);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 6 && strcmp(argv[1], "child") == 0) {
        int failed = child_part(argv[2], strtoll(argv[3], NULL, 10),
                                strtoll(argv[4], NULL, 10), argv[5]);
        if (failed) fprintf(stderr, "    (instance %s %s %s)\n", argv[2], argv[3], argv[4]);
        return failed;
    }
    if (realpath(argv[0], self_exe) == NULL) {
        ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
        if (n <= 0) {
            printf("FAIL cannot find this program to run its instances\n");
            return 1;
        }
        self_exe[n] = '\0';
    }
    RUN(a_session_resumes_on_another_instance_at_its_commits);
    RUN(a_flushed_redis_fails_the_resume_naming_the_epoch);
    RUN(acknowledged_commits_survive_a_redis_restart);
    RUN(redis_without_a_url_is_refused_at_creation);
    return harness_summary();
}
