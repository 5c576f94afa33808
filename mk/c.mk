# c: the C library (libswitchboard.so / .a), its header, and the C/C++ tests and demo.
#
# build-c: cargo build of switchboard-ffi, then the header check (ffi/tests/header.rs:
#   include/switchboard.h must equal a fresh cbindgen run; `make header` updates it).
# test-c:  C test programs in tests/c against libswitchboard.so and (test_pool again)
#   statically against libswitchboard.a, the C++ include test, and the README's C
#   example and examples/c/echo.c; each under valgrind (installed with apt-get when
#   missing, like redis-server for test_redis); the C tests also built with
#   ASan/UBSan. The Rust tests of the ffi crate run in test-rust.
# test-c-cluster: the shared cluster scenarios (tests/fixtures/cluster_driver.py, a real
#   redis-server, three instances) with tests/c/cluster_node.c as the instances, once
#   under valgrind and once built with ASan/UBSan (part of test-c).
# demo-c:  examples/c/echo.c against $(DEMO_TARGET) (or its own echo server if unset).
# header:  regenerate include/switchboard.h.
#
# C build outputs go to $(BUILD)/c/.

.PHONY: build-c test-c test-c-cluster demo-c header c-tools

C_OUT      := $(BUILD)/c
C_HEADER   := $(ROOT)/include/switchboard.h
C_SO       := $(LIBDIR)/libswitchboard.so
C_A        := $(LIBDIR)/libswitchboard.a
CC         ?= cc
CXX        ?= c++
C_FLAGS    := -std=c11 -Wall -Wextra -Werror -g -I$(ROOT)/include
CXX_FLAGS  := -std=c++17 -Wall -Wextra -Werror -g -I$(ROOT)/include
C_LINK_SO  := -L$(LIBDIR) -lswitchboard -Wl,-rpath,$(LIBDIR) -lpthread
# What the static library needs from the system, as printed by
#   cargo rustc -p switchboard-ffi --release --crate-type staticlib -- --print native-static-libs
C_LINK_A   := $(C_A) -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
C_TEST_ENV := SB_PYTHON=$(PYTHON) SB_ECHO_SERVER=$(ROOT)/tests/fixtures/echo_server.py \
              SB_FAULT_PROXY=$(ROOT)/tests/fixtures/fault_proxy.py \
              SB_REDIS_SERVER=$$(command -v redis-server || echo redis-server)
VALGRIND   := valgrind -q --error-exitcode=1 --leak-check=full \
              --errors-for-leak-kinds=definite,indirect --track-fds=no \
              --suppressions=$(ROOT)/tests/c/valgrind.supp
C_HARNESS  := $(ROOT)/tests/c/harness.h
# The README's C example (the first ```c block that uses sb_manager_new), compiled and
# run so that the documentation stays true; taken from README.md (or docs/c.md) until the
# README has it.
C_README   := $(firstword $(shell grep -l 'sb_manager_new' $(ROOT)/README.md $(ROOT)/docs/c.md 2>/dev/null))

build-c: ## Build libswitchboard (.so and .a) and check include/switchboard.h is up to date
	$(CARGO) build $(CARGO_PROFILE_FLAG) -p switchboard-ffi
	@$(CARGO) test $(CARGO_PROFILE_FLAG) -q -p switchboard-ffi --test header >/dev/null 2>&1 || \
	  $(CARGO) test $(CARGO_PROFILE_FLAG) -p switchboard-ffi --test header

# The libraries come from build-c (cargo decides whether anything needs rebuilding).
$(C_SO) $(C_A): | build-c
	@:

header: ## Regenerate include/switchboard.h from ffi/ with the pinned cbindgen
	SWITCHBOARD_BLESS_HEADER=1 $(CARGO) test $(CARGO_PROFILE_FLAG) -q -p switchboard-ffi --test header

$(C_OUT)/%: $(ROOT)/tests/c/%.c $(C_HARNESS) $(C_HEADER) $(C_SO)
	@mkdir -p $(C_OUT)
	$(CC) $(C_FLAGS) $< -o $@ $(C_LINK_SO)

# The same tests built with AddressSanitizer and UBSan (the C side is instrumented;
# valgrind covers the library's side).
C_ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(C_OUT)/%_asan: $(ROOT)/tests/c/%.c $(C_HARNESS) $(C_HEADER) $(C_SO)
	@mkdir -p $(C_OUT)
	$(CC) $(C_FLAGS) $(C_ASAN_FLAGS) $< -o $@ $(C_LINK_SO)

$(C_OUT)/test_pool_static: $(ROOT)/tests/c/test_pool.c $(C_HARNESS) $(C_HEADER) $(C_A)
	@mkdir -p $(C_OUT)
	$(CC) $(C_FLAGS) $< -o $@ $(C_LINK_A)

$(C_OUT)/cpp_include: $(ROOT)/tests/c/cpp_include.cpp $(C_HEADER) $(C_SO)
	@mkdir -p $(C_OUT)
	$(CXX) $(CXX_FLAGS) $< -o $@ $(C_LINK_SO)

$(C_OUT)/readme_example.c: $(C_README)
	@mkdir -p $(C_OUT)
	@test -n "$(C_README)" || { echo "no C example found in README.md or docs/c.md" >&2; exit 1; }
	awk '/^```c$$/ {inb=1; buf=""; next} \
	     /^```$$/ {if (inb && buf ~ /sb_manager_new/) {printf "%s", buf; found=1; exit} inb=0; next} \
	     inb {buf = buf $$0 "\n"} \
	     END {if (!found) exit 1}' $< > $@

# docs/registry.md's C example, extracted the same way and run under valgrind.
$(C_OUT)/registry_example.c: $(ROOT)/docs/registry.md
	@mkdir -p $(C_OUT)
	awk '/^```c$$/ {inb=1; buf=""; next} \
	     /^```$$/ {if (inb && buf ~ /sb_registry_register/) {printf "%s", buf; found=1; exit} inb=0; next} \
	     inb {buf = buf $$0 "\n"} \
	     END {if (!found) exit 1}' $< > $@

$(C_OUT)/registry_example: $(C_OUT)/registry_example.c $(C_HEADER) $(C_SO)
	$(CC) $(C_FLAGS) $< -o $@ $(C_LINK_SO)

# docs/resources.md's C example, run against an echo server under valgrind.
$(C_OUT)/resources_example.c: $(ROOT)/docs/resources.md
	@mkdir -p $(C_OUT)
	awk '/^```c$$/ {inb=1; buf=""; next} \
	     /^```$$/ {if (inb && buf ~ /sb_resource_create/) {printf "%s", buf; found=1; exit} inb=0; next} \
	     inb {buf = buf $$0 "\n"} \
	     END {if (!found) exit 1}' $< > $@

$(C_OUT)/resources_example: $(C_OUT)/resources_example.c $(C_HEADER) $(C_SO)
	$(CC) $(C_FLAGS) $< -o $@ $(C_LINK_SO)

$(C_OUT)/readme_example: $(C_OUT)/readme_example.c $(C_HEADER) $(C_SO)
	$(CC) $(C_FLAGS) $< -o $@ $(C_LINK_SO)

$(C_OUT)/echo: $(ROOT)/examples/c/echo.c $(C_HEADER) $(C_SO)
	@mkdir -p $(C_OUT)
	$(CC) $(C_FLAGS) $< -o $@ $(C_LINK_SO)

$(C_OUT)/custom: $(ROOT)/examples/c/custom.c $(C_HEADER) $(C_SO)
	@mkdir -p $(C_OUT)
	$(CC) $(C_FLAGS) $< -o $@ $(C_LINK_SO)

# The tests that drive the fault proxy include its helper too.
C_FAULT_TESTS := test_resilience test_fault_proxy test_resources
$(addprefix $(C_OUT)/,$(C_FAULT_TESTS) $(addsuffix _asan,$(C_FAULT_TESTS))): $(ROOT)/tests/c/fault_proxy.h
# The resource tests share their helpers; the redis tests share the server's.
C_RES_TESTS := test_resources test_resources_admin test_resources_redis
$(addprefix $(C_OUT)/,$(C_RES_TESTS) $(addsuffix _asan,$(C_RES_TESTS))): $(ROOT)/tests/c/resources_support.h
C_REDIS_TESTS := test_redis test_resources_redis test_offsets_redis
$(addprefix $(C_OUT)/,$(C_REDIS_TESTS) $(addsuffix _asan,$(C_REDIS_TESTS))): $(ROOT)/tests/c/redis_server.h

C_TESTS := test_pool test_pool_static test_misuse test_pool_ops test_custom test_metrics \
           test_resilience test_fault_proxy test_sessions test_registry test_registry_admin \
           test_registry_server test_server test_redis test_resources test_resources_admin \
           test_resources_redis test_offsets_redis test_lease_slots test_warming cpp_include
C_ASAN_TESTS := test_pool_asan test_misuse_asan test_pool_ops_asan test_custom_asan \
                test_metrics_asan test_resilience_asan test_fault_proxy_asan test_sessions_asan \
                test_registry_asan test_registry_admin_asan test_registry_server_asan \
                test_server_asan test_resources_asan test_resources_admin_asan test_resources_redis_asan \
                test_offsets_redis_asan test_lease_slots_asan test_liveness_bypass_asan test_warming_asan

# Installs what the C tests need and a fresh machine may lack (valgrind, a C++ compiler,
# redis-server for test_redis). If the install fails, test_redis says so and fails.
c-tools:
	@missing=""; \
	command -v valgrind >/dev/null 2>&1 || missing="$$missing valgrind"; \
	command -v $(CXX) >/dev/null 2>&1 || missing="$$missing g++"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y $$missing || \
	    echo "c-tools: could not install$$missing; the tests that need it will fail" >&2; \
	fi

# The driver's instances are children it starts and kills, and it does not look at
# their exit status: each instance writes valgrind's or the sanitizers' reports to its
# own log file (valgrind -q, and ASan's log_path, write nothing when all is well), and
# the step fails when any log is not empty. A "possibly lost" block (std's handle of
# the main thread) is not shown, as in valgrind's exit status.
C_CLUSTER_LOGS := $(C_OUT)/cluster_logs
C_CLUSTER_RUN = \
	echo "== test_cluster (valgrind, cluster_node --self-test)"; \
	$(C_TEST_ENV) $(VALGRIND) --show-leak-kinds=definite,indirect $(C_OUT)/cluster_node --self-test && \
	echo "== test_cluster (valgrind, tests/fixtures/cluster_driver.py)" && \
	rm -rf $(C_CLUSTER_LOGS) && mkdir -p $(C_CLUSTER_LOGS) && \
	$(C_TEST_ENV) $(PYTHON) tests/fixtures/cluster_driver.py -- $(VALGRIND) \
	  --show-leak-kinds=definite,indirect --log-file=$(C_CLUSTER_LOGS)/valgrind.%p.log \
	  $(C_OUT)/cluster_node && \
	echo "== test_cluster (AddressSanitizer, tests/fixtures/cluster_driver.py)" && \
	ASAN_OPTIONS=log_path=$(C_CLUSTER_LOGS)/asan UBSAN_OPTIONS=log_path=$(C_CLUSTER_LOGS)/ubsan \
	  $(C_TEST_ENV) $(PYTHON) tests/fixtures/cluster_driver.py -- $(C_OUT)/cluster_node_asan && \
	if grep -l . $(C_CLUSTER_LOGS)/* 2>/dev/null; then \
	  echo "test_cluster: the reports above (in $(C_CLUSTER_LOGS)):" >&2; \
	  cat $(C_CLUSTER_LOGS)/* >&2; false; \
	fi

test-c-cluster: build-c c-tools $(C_OUT)/cluster_node $(C_OUT)/cluster_node_asan ## Run the cluster scenarios with the C instances (valgrind, ASan)
	@set -o pipefail; cd $(ROOT) && { $(C_CLUSTER_RUN); }

test-c: build-c c-tools server-tools $(addprefix $(C_OUT)/,$(C_TESTS) $(C_ASAN_TESTS)) $(C_OUT)/cluster_node $(C_OUT)/cluster_node_asan $(C_OUT)/readme_example $(C_OUT)/registry_example $(C_OUT)/resources_example $(C_OUT)/echo $(C_OUT)/custom ## Run the C and C++ tests under valgrind and ASan
	@set -o pipefail; cd $(ROOT) && failed=""; \
	for t in $(C_TESTS); do \
	  echo "== $$t (valgrind)"; \
	  $(C_TEST_ENV) $(VALGRIND) $(C_OUT)/$$t || failed="$$failed $$t"; \
	done; \
	for t in $(C_ASAN_TESTS); do \
	  echo "== $$t (AddressSanitizer)"; \
	  $(C_TEST_ENV) $(C_OUT)/$$t || failed="$$failed $$t"; \
	done; \
	{ $(C_CLUSTER_RUN); } || failed="$$failed test_cluster"; \
	echo "== README C example (valgrind)"; \
	$(C_TEST_ENV) tests/c/with_echo_server.sh $(VALGRIND) $(C_OUT)/readme_example || failed="$$failed readme_example"; \
	echo "== docs/registry.md C example (valgrind)"; \
	$(VALGRIND) $(C_OUT)/registry_example | tee $(C_OUT)/registry_example.out && grep -q "^disconnected 1$$" $(C_OUT)/registry_example.out || failed="$$failed registry_example"; \
	echo "== docs/resources.md C example (valgrind)"; \
	$(C_TEST_ENV) tests/c/with_echo_server.sh $(VALGRIND) $(C_OUT)/resources_example | tee $(C_OUT)/resources_example.out && grep -q "connected with 2 consumers" $(C_OUT)/resources_example.out || failed="$$failed resources_example"; \
	echo "== examples/c/echo.c (valgrind)"; \
	$(C_TEST_ENV) tests/c/with_echo_server.sh $(VALGRIND) $(C_OUT)/echo >/dev/null || failed="$$failed echo"; \
	echo "== examples/c/custom.c (valgrind)"; \
	$(VALGRIND) $(C_OUT)/custom | tee $(C_OUT)/custom.out && grep -q "^opened 1, closed 1$$" $(C_OUT)/custom.out || failed="$$failed custom"; \
	if [ -n "$$failed" ]; then echo "test-c: FAILED:$$failed" >&2; exit 1; fi; \
	echo "test-c: all C tests passed"

demo-c: build-c $(C_OUT)/echo ## Run the C example against DEMO_TARGET=tcp://host:port (own server if unset)
	@if [ -n "$(DEMO_TARGET)" ]; then \
	  $(C_OUT)/echo $(DEMO_TARGET); \
	else \
	  $(C_TEST_ENV) $(ROOT)/tests/c/with_echo_server.sh $(C_OUT)/echo; \
	fi
