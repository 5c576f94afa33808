# server-tools: what the server tests (issue 11) need besides the language under test.
#
# - The venv (build/venv) with websockets, grpcio and grpcio-tools (PY_PINS in
#   mk/python.mk): tests/fixtures/server_client.py, the driver every language's server
#   test runs, uses them.
# - Debian's `prometheus` package extracted (not installed) into build/prometheus:
#   `promtool check metrics` on the scraped text, and a real Prometheus that scrapes the
#   server once (the Python server test). `apt-get download` needs no root and leaves
#   the system alone; `apt-get update` runs only when the package list is missing it.
#
# Exported for every recipe (a test finds them in its environment):
#   SB_TEST_PYTHON  the venv's python (runs the driver)
#   SB_PROMTOOL     build/prometheus/usr/bin/promtool
#   SB_PROMETHEUS   build/prometheus/usr/bin/prometheus
# Set any of them on the command line to use your own.

.PHONY: server-tools

PROM_DIR   := $(BUILD)/prometheus
PROM_STAMP := $(PROM_DIR)/.switchboard-extracted

export SB_TEST_PYTHON ?= $(PY_BIN)/python
export SB_PROMTOOL    ?= $(PROM_DIR)/usr/bin/promtool
export SB_PROMETHEUS  ?= $(PROM_DIR)/usr/bin/prometheus

$(PROM_STAMP):
	@rm -rf $(PROM_DIR).download && mkdir -p $(PROM_DIR).download
	@cd $(PROM_DIR).download && { apt-get download prometheus 2>/dev/null || { \
	  echo "apt-get download prometheus failed; updating the package lists and trying again"; \
	  apt-get update && apt-get download prometheus; }; }
	rm -rf $(PROM_DIR) && mkdir -p $(PROM_DIR)
	dpkg -x $(PROM_DIR).download/prometheus_*.deb $(PROM_DIR)
	@rm -rf $(PROM_DIR).download
	@$(PROM_DIR)/usr/bin/promtool --version | head -1
	@touch $@

server-tools: $(PY_TOOLS_STAMP) $(PROM_STAMP) ## Install what the server tests need (venv with grpcio, Debian's prometheus in build/prometheus)
