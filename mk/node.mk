# node: build, test and demo targets for the `switchboard` Node package.
#
# build-node: the napi addon with plain cargo (no @napi-rs/cli), copied to
#   bindings/node/switchboard.node; `npm ci` in bindings/node when node_modules is
#   missing or older than package-lock.json; a link build/node_modules/switchboard -> bindings/node, so that
#   `NODE_PATH=build/node_modules node -e "require('switchboard')"` works (a project
#   of your own: `npm install /path/to/bindings/node`).
# test-node:  node --test over tests/node (each test starts its own echo server).
# demo-node:  examples/node/echo.js against $(DEMO_TARGET), then examples/node/custom.js
#   (a custom connector; needs no server) and examples/node/sessions.js (durable offsets).

.PHONY: build-node test-node demo-node node-tools

NODE       ?= node
NPM        ?= npm
NODE_PKG   := $(ROOT)/bindings/node
NODE_ADDON := $(NODE_PKG)/switchboard.node
NODE_PATH_DIR := $(BUILD)/node_modules

node-tools:
	@command -v $(NODE) >/dev/null && command -v $(NPM) >/dev/null || { \
	  echo "node or npm missing; installing nodejs and npm"; \
	  apt-get update && apt-get install -y nodejs npm; }

build-node: node-tools ## Build the Node addon and package (bindings/node, NODE_PATH=build/node_modules)
	$(CARGO) build $(CARGO_PROFILE_FLAG) -p switchboard-node
	@# Replace the addon by rename, never in place: a node process that still has the
	@# old one mapped would crash if its pages changed under it.
	cp $(LIBDIR)/libswitchboard_node.so $(NODE_ADDON).tmp && mv -f $(NODE_ADDON).tmp $(NODE_ADDON)
	@cd $(NODE_PKG) && if [ ! -f node_modules/.switchboard-ci ] || [ package-lock.json -nt node_modules/.switchboard-ci ]; then \
	  if $(NPM) ci --no-audit --no-fund; then :; \
	  elif $(NODE) -e "const l = require('./package-lock.json'); process.exit(Object.keys(l.packages || {}).length > 1 ? 1 : 0)"; then \
	    echo "build-node: npm ci failed, but the package has no dependencies; going on"; \
	  else \
	    echo "build-node: npm ci failed" >&2; exit 1; \
	  fi; \
	  mkdir -p node_modules && touch node_modules/.switchboard-ci; \
	fi
	@mkdir -p $(NODE_PATH_DIR)
	@ln -sfn $(NODE_PKG) $(NODE_PATH_DIR)/switchboard
	@cd / && NODE_PATH=$(NODE_PATH_DIR) $(NODE) -e \
	  "const sb = require('switchboard'); console.log('switchboard', sb.version, 'built in $(NODE_PKG)')"

test-node: build-node server-tools ## Run the Node tests (node --test tests/node)
	@cd $(ROOT) && set -- tests/node/*.test.js && test -e "$$1" || { echo "test-node: no tests in tests/node" >&2; exit 1; }; \
	  $(NODE) --test tests/node/*.test.js

demo-node: build-node ## Run the Node example against DEMO_TARGET=tcp://host:port
	@test -n "$(DEMO_TARGET)" || { echo "demo-node: set DEMO_TARGET=tcp://host:port" >&2; exit 2; }
	NODE_PATH=$(NODE_PATH_DIR) $(NODE) $(ROOT)/examples/node/echo.js $(DEMO_TARGET)
	NODE_PATH=$(NODE_PATH_DIR) $(NODE) $(ROOT)/examples/node/custom.js
	NODE_PATH=$(NODE_PATH_DIR) $(NODE) $(ROOT)/examples/node/sessions.js
