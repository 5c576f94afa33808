# python: build, test and demo targets for the `switchboard` Python package.
#
# build-python: a venv under $(BUILD)/venv with pinned maturin, pytest and mypy; the
#   wheel built by maturin into $(BUILD)/wheels and installed into that venv.
# test-python:  pytest over tests/python with the venv (no test collected is a failure);
#   installs redis-server (Debian package) when missing, for the "as a new user" test.
# demo-python:  examples/python/echo.py against $(DEMO_TARGET).
#
# Stamp files make each step run again only when its inputs change.

.PHONY: build-python test-python demo-python

PY_VENV   := $(BUILD)/venv
PY_BIN    := $(PY_VENV)/bin
PY_WHEELS := $(BUILD)/wheels
PY_PINS   := maturin==1.16.0 pytest==9.2.0 pytest-timeout==2.4.0 mypy==2.4.1 websockets==15.0.1 grpcio==1.85.3 grpcio-tools==1.85.1
PY_TOOLS_STAMP := $(PY_VENV)/.switchboard-tools
PY_WHEEL_STAMP := $(BUILD)/.switchboard-python-$(PROFILE)
PY_INPUTS := $(ROOT)/Cargo.toml $(ROOT)/Cargo.lock $(ROOT)/core/Cargo.toml \
	$(shell find $(ROOT)/core/src $(ROOT)/bindings/python -type f \
	  -not -path '*/__pycache__/*' -not -name '*.so' 2>/dev/null)

$(PY_TOOLS_STAMP): $(ROOT)/mk/python.mk
	@mkdir -p $(BUILD)
	@if [ ! -x $(PY_BIN)/python ]; then \
	  echo "creating $(PY_VENV)"; \
	  $(PYTHON) -m venv $(PY_VENV) || { \
	    echo "python venv support missing; installing python3-venv"; \
	    rm -rf $(PY_VENV); \
	    apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(PY_VENV); }; \
	fi
	$(PY_BIN)/python -m pip install --quiet --disable-pip-version-check $(PY_PINS)
	@touch $@

$(PY_WHEEL_STAMP): $(PY_TOOLS_STAMP) $(PY_INPUTS)
	rm -rf $(PY_WHEELS)
	$(PY_BIN)/maturin build $(CARGO_PROFILE_FLAG) --strip \
	  --manifest-path $(ROOT)/bindings/python/Cargo.toml \
	  --interpreter $(PY_BIN)/python --out $(PY_WHEELS)
	$(PY_BIN)/python -m pip install --quiet --disable-pip-version-check \
	  --force-reinstall --no-deps $(PY_WHEELS)/switchboard-*.whl
	cd / && $(PY_BIN)/python -c "import switchboard; print('switchboard', switchboard.__version__, 'installed in $(PY_VENV)')"
	@touch $@

build-python: $(PY_WHEEL_STAMP) ## Build the Python wheel with maturin and install it into build/venv

test-python: build-python server-tools ## Run the Python tests (pytest) against the installed wheel
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server missing; installing the Debian package"; \
	  apt-get update && apt-get install -y redis-server; }
	@cd $(ROOT) && $(PY_BIN)/python -m pytest tests/python; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "test-python: pytest collected no tests" >&2; exit 1; fi; \
	  exit $$rc

demo-python: build-python ## Run the Python example against DEMO_TARGET=tcp://host:port
	@test -n "$(DEMO_TARGET)" || { echo "demo-python: set DEMO_TARGET=tcp://host:port" >&2; exit 2; }
	$(PY_BIN)/python $(ROOT)/examples/python/echo.py $(DEMO_TARGET)
