# switchboard: the entry points a user types. `make help` lists them.
#
# Everything a target needs is built or installed by the target itself: a Python venv
# with maturin and pytest under build/, `npm ci` for the Node package, and Debian
# packages (valgrind, redis-server) through apt-get when missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.SUFFIXES:

ROOT      := $(abspath .)
BUILD     := $(ROOT)/build
CARGO     ?= cargo
PYTHON    ?= python3
PROFILE   ?= release
TARGET_DIR:= $(ROOT)/target
LIBDIR    := $(TARGET_DIR)/$(PROFILE)
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
export CARGO_TERM_COLOR ?= never

.PHONY: help build test demo bench fmt lint clean test-rust build-rust demo-rust

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

build: build-rust build-c build-python build-node ## Build the core, the C library, the Python and Node packages

test: ## Build everything and run every test in every language (Rust, C, Python, Node)
	@$(MAKE) --no-print-directory test-rust
	@$(MAKE) --no-print-directory test-c
	@$(MAKE) --no-print-directory test-python
	@$(MAKE) --no-print-directory test-node
	@echo "make test: all languages passed"

demo: build ## Start a loopback echo server and run the example in C, Python, Node and Rust
	@bash examples/run_demo.sh

bench: ## Run the benchmarks with their peers and write bench/RESULTS.md
	@bash bench/run.sh

build-rust: ## Build the Rust core and the C library
	$(CARGO) build $(CARGO_PROFILE_FLAG) -p switchboard-core -p switchboard-ffi

test-rust: server-tools ## Run the Rust tests (core and ffi), fmt and clippy
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server missing (core/tests/resources_redis.rs needs it); installing the Debian package"; \
	  apt-get update && apt-get install -y redis-server; }
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test -p switchboard-core -p switchboard-ffi

demo-rust:
	$(CARGO) run $(CARGO_PROFILE_FLAG) -q -p switchboard-core --example echo -- $(DEMO_TARGET)

fmt: ## Format the Rust code
	$(CARGO) fmt --all

clean: ## Remove build outputs
	rm -rf $(BUILD) target bindings/node/node_modules

include mk/c.mk
include mk/python.mk
include mk/node.mk
include mk/server_tools.mk
