#!/usr/bin/env bash
# make demo: one loopback echo server, then the example in each language against it.
set -euo pipefail
cd "$(dirname "$0")/.."

coproc SERVER { exec python3 tests/fixtures/echo_server.py --lifetime 300; }
trap 'kill "${SERVER_PID}" 2>/dev/null || true' EXIT
read -r -t 20 word port <&"${SERVER[0]}"
if [ "${word:-}" != PORT ]; then
  echo "demo: the echo server did not start" >&2
  exit 1
fi
target="tcp://127.0.0.1:${port}"
echo "demo: echo server listening on ${target}"

for lang in c python node rust; do
  echo
  echo "== ${lang} =="
  make --no-print-directory "demo-${lang}" DEMO_TARGET="${target}"
done
echo
echo "demo: all four examples ran against ${target}"
