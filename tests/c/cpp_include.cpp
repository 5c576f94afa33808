// switchboard.h from C++: included twice (the include guard must hold), compiled with
// g++ -Wall -Wextra -Werror, and a few calls made through it (extern "C" linkage).
#include "switchboard.h"
#include "switchboard.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

// A small RAII owner, the way a C++ program would wrap the handles.
struct Manager {
    sb_manager *handle = nullptr;
    Manager() {
        if (sb_manager_new(nullptr, &handle) != SB_OK) handle = nullptr;
    }
    ~Manager() { sb_manager_free(handle); }
    Manager(const Manager &) = delete;
    Manager &operator=(const Manager &) = delete;
};

// A custom connector written in C++: callbacks return int32_t (what sb_status is in
// C), and the objects are C++ objects.
struct Conn {
    std::string endpoint;
};
int closes = 0;

int32_t cpp_connect(void *, const char *endpoint, void **out, char *, size_t) {
    *out = new Conn{endpoint};
    return SB_OK;
}

void cpp_close(void *, void *conn) {
    delete static_cast<Conn *>(conn);
    closes++;
}

int failures = 0;
int passes = 0;

void check(bool ok, const char *what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    (ok ? passes : failures)++;
}

}  // namespace

int main() {
    const std::string version = std::to_string(SB_VERSION_MAJOR) + "." +
                                std::to_string(SB_VERSION_MINOR) + "." +
                                std::to_string(SB_VERSION_PATCH);
    check(version == sb_version(), "version macros match sb_version()");

    // sb_status is an enum with int32_t underlying type in C++.
    sb_status st = SB_TIMEOUT;
    check(std::strcmp(sb_status_str(st), "timed out") == 0, "sb_status_str");

    sb_config *cfg = nullptr;
    check(sb_config_new(&cfg) == SB_OK, "sb_config_new");
    check(sb_config_set(cfg, "pool.max_size", "2") == SB_OK, "sb_config_set");
    check(sb_config_set(cfg, "pool.nope", "2") == SB_INVALID_ARGUMENT,
          "unknown key is SB_INVALID_ARGUMENT");
    char msg[256];
    size_t n = 0;
    check(sb_last_error(msg, sizeof msg, &n) == SB_OK && std::strstr(msg, "pool.nope"),
          "sb_last_error names the key");
    {
        Manager m;
        check(m.handle != nullptr, "sb_manager_new");
        sb_pool *pool = nullptr;
        check(sb_pool_new(m.handle, "cpp", "tcp://127.0.0.1:9", cfg, &pool) == SB_OK,
              "sb_pool_new");
        sb_lease *lease = nullptr;
        check(sb_pool_try_acquire(pool, &lease) == SB_OK && lease == nullptr,
              "sb_pool_try_acquire on an empty pool");
        check(sb_pool_free(pool) == SB_OK, "sb_pool_free");
        check(sb_pool_free(pool) == SB_INVALID_HANDLE, "double free is SB_INVALID_HANDLE");

        sb_connector k{};
        k.connect = cpp_connect;
        k.close = cpp_close;
        check(sb_pool_new_custom(m.handle, "custom", "svc://a", nullptr, &k, &pool) == SB_OK,
              "sb_pool_new_custom");
        check(sb_pool_acquire_prio(pool, 5000, 1, &lease) == SB_OK, "sb_pool_acquire_prio");
        void *obj = nullptr;
        check(sb_lease_conn(lease, &obj) == SB_OK &&
                  static_cast<Conn *>(obj)->endpoint == "svc://a",
              "sb_lease_conn gives the C++ object");
        check(sb_lease_release(lease) == SB_OK, "sb_lease_release");
        sb_pool_stats s{};
        s.struct_size = sizeof s;
        check(sb_pool_get_stats(pool, &s) == SB_OK && s.idle == 1 && s.created_total == 1,
              "sb_pool_get_stats");
        check(sb_pool_free(pool) == SB_OK && closes == 1, "sb_pool_free closes the object");
    }
    check(sb_config_free(cfg) == SB_OK, "sb_config_free");
    std::printf("%d passed, %d failed\n", passes, failures);
    return failures == 0 ? 0 : 1;
}
