#!/usr/bin/env bash
# Usage: tests/c/with_echo_server.sh CMD [ARGS...]
# Starts tests/fixtures/echo_server.py on a free loopback port, runs
# `CMD ARGS... tcp://127.0.0.1:<port>`, stops the server and exits with CMD's status.
# SB_PYTHON picks the interpreter (default python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${SB_PYTHON:-python3}"

coproc SERVER { exec "$python" "$here/../fixtures/echo_server.py"; }
server_pid=$SERVER_PID
stop() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
trap stop EXIT

word="" port=""
read -r -t 20 word port <&"${SERVER[0]}" || true
if [ "$word" != "PORT" ] || [ -z "$port" ]; then
  echo "with_echo_server.sh: the echo server did not report its port" >&2
  exit 1
fi
set +e
"$@" "tcp://127.0.0.1:$port"
exit $?
