#!/usr/bin/env bash
# make bench: switchboard's pool against its peers in one run, then bench/RESULTS.md.
#
#  1. builds (release): the criterion and callgrind bench binaries of core/benches,
#     libswitchboard, bench/c_overhead.c, the Python venv and the Node addon;
#  2. criterion (core/benches/pool.rs): uncontended and contended acquire+release for
#     switchboard, deadpool, bb8, r2d2, Semaphore+Vec and ArrayQueue, then the
#     pool-of-1 fairness runs;
#  2b. core/benches/sessions.rs (memory per open session, counting and commit costs)
#     and core/benches/resilience.rs (breaker, fail-fast, one vs two endpoints), and
#     core/benches/cluster.rs (a broadcast to 10,000 sinks over 3 instances via Redis);
#  2b'. core/benches/spike.rs: HikariCP's spike test with pool.scale_ahead off and on
#     (connections opened beyond min_idle; build/bench/spike.json);
#  2c. the registry (issue 9): core/benches/registry.rs (broadcast to 10,000
#     connections, memory per connection, and callgrind instructions per recipient),
#     then the same broadcast from C, Python and Node beside each language's plain
#     peer (bench/registry_c.c, bench/registry_python.py, bench/registry_node.js);
#     every line goes to build/bench/registry.jsonl;
#  2d. the WebSocket hub (issue 11): core/benches/hub.rs, one broadcast to 10,000 real
#     WebSocket clients (a Rust load generator in a second process) for switchboard's
#     hub, Node's ws (bench/hub_peer_ws.js) and Python's websockets
#     (bench/hub_peer_websockets.py); memory per idle client; /metrics with 100 pools
#     and 10,000 connections; lines in build/bench/hub.jsonl;
#  3. callgrind (core/benches/instr.rs): instructions per uncontended acquire+release
#     for each, as (I2 - I1) / (N2 - N1), and callgrind_annotate of each run;
#  4. through the bindings: acquire+release from C, Python and Node (and Rust) on a
#     TCP pool to a loopback echo server (tests/fixtures/echo_server.py), beside
#     no-op calls and the liveness check's syscall alone;
#  5. bench/summarise.py writes bench/RESULTS.md from build/bench/.
#
# Raw output stays in build/bench/. A step that fails is listed at the top of
# RESULTS.md and its rows say "not measured"; the script still exits 0 once
# RESULTS.md is written. Every step is bounded by `timeout`. About 5-8 minutes here.
#
# Environment: SB_BENCH_REPS (repetitions, default 7), SB_BENCH_QUICK=1 (shorter
# criterion runs and loops, for trying the script; not for RESULTS.md).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/build/bench
CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-python3}
REPS=${SB_BENCH_REPS:-7}
# Callgrind's two iteration counts.
N1=50000
N2=250000
# Timed loops through the bindings.
N_NATIVE=1000000
N_SCRIPT=300000
CRITERION_ARGS=()
if [[ ${SB_BENCH_QUICK:-0} == 1 ]]; then
  N1=5000 N2=25000 N_NATIVE=100000 N_SCRIPT=30000
  CRITERION_ARGS=(--warm-up-time 0.2 --measurement-time 0.5)
fi

rm -rf "$OUT"
mkdir -p "$OUT/cg"
: >"$OUT/failures.txt"

say() { printf '\n== bench: %s\n' "$*" >&2; }
fail() {
  printf 'bench: FAILED: %s\n' "$*" >&2
  printf '%s\n' "$*" >>"$OUT/failures.txt"
}

# ------------------------------------------------------------------ 0. tools

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
  say "installing valgrind"
  { apt-get update && apt-get install -y valgrind; } >"$OUT/apt.log" 2>&1 ||
    fail "apt-get install valgrind (see build/bench/apt.log)"
fi

# ------------------------------------------------------------------ 1. build

say "building (release)"
INSTR_BIN= POOL_BIN= SESSIONS_BIN= RESILIENCE_BIN= REGISTRY_BIN= CLUSTER_BIN= SPIKE_BIN=
if timeout 1200 "$CARGO" bench -p switchboard-core --no-run --message-format=json \
  >"$OUT/cargo-bench.json" 2>"$OUT/cargo-bench.log"; then
  eval "$("$PYTHON" - "$OUT/cargo-bench.json" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        name = m["target"]["name"]
        if name in ("pool", "instr", "sessions", "resilience", "registry", "hub", "cluster", "spike"):
            print(f'{name.upper()}_BIN="{m["executable"]}"')
EOF
)"
else
  cat "$OUT/cargo-bench.log" >&2
  fail "cargo bench --no-run (see build/bench/cargo-bench.log)"
fi

C_BIN=
if timeout 1200 "$CARGO" build --release -p switchboard-ffi >"$OUT/ffi.log" 2>&1 &&
  cc -std=c11 -O2 -Wall -Wextra -Werror -g -I"$ROOT/include" bench/c_overhead.c \
    -o "$OUT/c_overhead" -L"$ROOT/target/release" -lswitchboard \
    -Wl,-rpath,"$ROOT/target/release" -lpthread >>"$OUT/ffi.log" 2>&1; then
  C_BIN=$OUT/c_overhead
else
  fail "building libswitchboard and bench/c_overhead.c (see build/bench/ffi.log)"
fi

PY_OK=0
if timeout 1200 make --no-print-directory build-python >"$OUT/python-build.log" 2>&1; then
  PY_OK=1
else
  fail "make build-python (see build/bench/python-build.log)"
fi
NODE_OK=0
if timeout 1200 make --no-print-directory build-node >"$OUT/node-build.log" 2>&1; then
  NODE_OK=1
else
  fail "make build-node (see build/bench/node-build.log)"
fi

# ------------------------------------------------------------------ helpers

# callgrind <kind> <N> <command...>: runs it, keeps the total and the annotations.
callgrind() {
  local kind=$1 n=$2
  shift 2
  local base=$OUT/cg/$kind.$n
  if ! SB_BENCH_TARGET="${TARGET:-}" timeout 600 valgrind --tool=callgrind \
    --callgrind-out-file="$base.out" "$@" >"$base.stdout" 2>"$base.log"; then
    return 1
  fi
  callgrind_annotate --threshold=100 "$base.out" >"$base.self.txt" 2>/dev/null
  callgrind_annotate --threshold=100 --inclusive=yes "$base.out" >"$base.incl.txt" 2>/dev/null
  grep -o 'Collected : [0-9]*' "$base.log" | tail -1 | grep -o '[0-9]*$'
}

# with_n <n> <command...>: the command with its argument "N" replaced by n (no
# argument here contains spaces).
with_n() {
  local n=$1 a
  shift
  for a in "$@"; do [[ $a == N ]] && printf '%s\n' "$n" || printf '%s\n' "$a"; done
}

# ------------------------------------------------------------------ 2. criterion

if [[ -n $POOL_BIN ]]; then
  say "criterion: uncontended, contended, fairness"
  if ! (cd core && CRITERION_HOME="$OUT/criterion" SB_BENCH_OUT="$OUT" SB_BENCH_REPS="$REPS" \
    timeout 1200 "$POOL_BIN" --bench "${CRITERION_ARGS[@]}") 2>&1 | tee "$OUT/criterion.log" |
    grep -E '^[a-z_]+/|time:|fairness' >&2; then
    fail "criterion run (see build/bench/criterion.log)"
  fi
  [[ -s $OUT/fairness.json ]] || fail "fairness run wrote no fairness.json"
fi

# ------------------------------------------------------------------ 2b. sessions, resilience

for bin in "$SESSIONS_BIN" "$RESILIENCE_BIN" "$CLUSTER_BIN"; do
  [[ -n $bin ]] || continue
  say "$(basename "$bin" | cut -d- -f1)"
  if ! SB_BENCH_REPS="$REPS" timeout 600 "$bin" --bench 2>>"$OUT/extra.log" | tee -a "$OUT/extra.txt" >&2; then
    fail "$(basename "$bin") (see build/bench/extra.log)"
  fi
done
[[ -n $SESSIONS_BIN ]] || fail "sessions bench not built"
[[ -n $RESILIENCE_BIN ]] || fail "resilience bench not built"
[[ -n $CLUSTER_BIN ]] || fail "cluster bench not built"

# ------------------------------------------------------------------ 2b'. spike

# HikariCP's spike with pool.scale_ahead off and on (issue 13): spike.json.
if [[ -n $SPIKE_BIN ]]; then
  say "spike: 50 callers, 150 ms connect, scale_ahead off and on"
  if ! SB_BENCH_OUT="$OUT" SB_BENCH_REPS="$REPS" timeout 600 "$SPIKE_BIN" --bench \
    2>>"$OUT/extra.log" | tee -a "$OUT/spike.txt" >&2; then
    fail "spike bench (see build/bench/extra.log)"
  fi
  [[ -s $OUT/spike.json ]] || fail "spike bench wrote no spike.json"
else
  fail "spike bench not built"
fi

# ------------------------------------------------------------------ 2c. registry

: >"$OUT/registry.jsonl"
if [[ -n $REGISTRY_BIN ]]; then
  say "registry: broadcast to 10,000 connections, memory per connection"
  if ! SB_BENCH_OUT="$OUT" SB_BENCH_REPS="$REPS" timeout 600 "$REGISTRY_BIN" --bench \
    2>>"$OUT/extra.log" | tee -a "$OUT/extra.txt" >&2; then
    fail "registry bench (see build/bench/extra.log)"
  fi
  if command -v valgrind >/dev/null; then
    # Instructions per recipient: (I(12) - I(2)) / (10 broadcasts x 10,000), so the
    # registrations cancel out. "outbox" is the fan-out plus the drain; "callback"
    # the fan-out plus the delivery tasks calling a no-op callback.
    for kind in outbox callback; do
      r1=$(callgrind "registry_$kind" 2 "$REGISTRY_BIN" instr "$kind" 2)
      r2=$(callgrind "registry_$kind" 12 "$REGISTRY_BIN" instr "$kind" 12)
      if [[ -n $r1 && -n $r2 ]]; then
        awk -v k="$kind" -v a="$r1" -v b="$r2" 'BEGIN {
          printf "{\"lang\":\"rust\",\"op\":\"instr_per_recipient\",\"kind\":\"%s\",\"instructions\":%.1f}\n", k, (b - a) / 100000 }' \
          >>"$OUT/registry.jsonl"
      else
        fail "callgrind registry $kind (see build/bench/cg/registry_$kind.*.log)"
      fi
    done
  fi
else
  fail "registry bench not built"
fi
if [[ -f bench/registry_c.c ]]; then
  if cc -std=c11 -O2 -Wall -Wextra -g -I"$ROOT/include" bench/registry_c.c -o "$OUT/registry_c" \
    -L"$ROOT/target/release" -lswitchboard -Wl,-rpath,"$ROOT/target/release" -lpthread \
    >>"$OUT/ffi.log" 2>&1; then
    timeout 600 "$OUT/registry_c" >>"$OUT/registry.jsonl" 2>>"$OUT/extra.log" ||
      fail "C registry harness bench/registry_c.c"
  else
    fail "building bench/registry_c.c (see build/bench/ffi.log)"
  fi
fi
if [[ $PY_OK == 1 && -f bench/registry_python.py ]]; then
  timeout 600 "$ROOT/build/venv/bin/python" bench/registry_python.py >>"$OUT/registry.jsonl" \
    2>>"$OUT/extra.log" || fail "Python registry harness bench/registry_python.py"
fi
if [[ $NODE_OK == 1 && -f bench/registry_node.js ]]; then
  NODE_PATH="$ROOT/build/node_modules" timeout 600 node bench/registry_node.js \
    >>"$OUT/registry.jsonl" 2>>"$OUT/extra.log" || fail "Node registry harness bench/registry_node.js"
fi
cat "$OUT/registry.jsonl" >&2

# ------------------------------------------------------------------ 2d. hub

: >"$OUT/hub.jsonl"
if [[ -n ${HUB_BIN:-} ]]; then
  say "hub: broadcast to 10,000 WebSocket clients beside ws and websockets; /metrics"
  # 10,000 clients and 10,000 server sockets live in two processes; each needs its own
  # descriptors.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  hub_env=()
  [[ $NODE_OK == 1 ]] && hub_env+=("HUB_NODE=node $ROOT/bench/hub_peer_ws.js")
  [[ $PY_OK == 1 ]] && hub_env+=("HUB_PYTHON=$ROOT/build/venv/bin/python $ROOT/bench/hub_peer_websockets.py")
  if ! env "${hub_env[@]}" NODE_PATH="$ROOT/bindings/node/node_modules" timeout 900 "$HUB_BIN" \
    >>"$OUT/hub.jsonl" 2>>"$OUT/extra.log"; then
    fail "hub bench (see build/bench/extra.log)"
  fi
  cat "$OUT/hub.jsonl" >&2
else
  fail "hub bench not built"
fi

# ------------------------------------------------------------------ echo server

TARGET= ECHO_SERVER= ECHO_IN=
# bash forgets a coproc's variables when it ends: keep the pid and fd ourselves.
coproc ECHO { exec "$PYTHON" "$ROOT/tests/fixtures/echo_server.py"; }
ECHO_SERVER=$ECHO_PID
ECHO_IN=${ECHO[1]}
if read -r -t 10 line <&"${ECHO[0]}" && [[ $line == PORT* ]]; then
  TARGET="tcp://127.0.0.1:${line#PORT }"
else
  fail "echo server did not start"
fi
stop_echo() {
  if [[ -n $ECHO_SERVER ]]; then
    # Closing its stdin ends it; the kill covers a server that hangs.
    eval "exec ${ECHO_IN}>&-" 2>/dev/null
    sleep 0.2
    kill "$ECHO_SERVER" 2>/dev/null
    wait "$ECHO_SERVER" 2>/dev/null
    ECHO_SERVER=
  fi
}
trap stop_echo EXIT

# ------------------------------------------------------------------ 3. callgrind

if command -v valgrind >/dev/null; then
  say "callgrind: instructions per acquire+release ($N1 and $N2 iterations)"
  KINDS=()
  [[ -n $INSTR_BIN ]] && KINDS+=(switchboard_try switchboard deadpool bb8 r2d2 semaphore_vec array_queue switchboard_contended deadpool_contended)
  [[ -n $INSTR_BIN && -n $TARGET ]] && KINDS+=(switchboard_tcp_try switchboard_tcp_blocking)
  [[ -n $C_BIN && -n $TARGET ]] && KINDS+=(c_try c_acquire)
  # The interpreter runs ~50x slower under callgrind: fewer iterations, same method.
  [[ $PY_OK == 1 && -n $TARGET ]] && KINDS+=(py_try_release py_with_acquire)
  for kind in "${KINDS[@]}"; do
    n1=$N1 n2=$N2
    case $kind in
      py_*) n1=$((N1 / 5)) n2=$((N2 / 5)) # the interpreter is slow under callgrind
            cmd=("$ROOT/build/venv/bin/python" bench/py_overhead.py "$TARGET" N 1 "${kind#py_}") ;;
      c_*) cmd=("$C_BIN" "$TARGET" N 1 "${kind#c_}") ;;
      *) cmd=("$INSTR_BIN" "$kind" N) ;;
    esac
    i1=$(callgrind "$kind" $n1 $(with_n $n1 "${cmd[@]}"))
    i2=$(callgrind "$kind" $n2 $(with_n $n2 "${cmd[@]}"))
    if [[ -n $i1 && -n $i2 ]]; then
      echo "$kind $n1 $i1 $n2 $i2" >>"$OUT/instr.txt"
      awk -v k="$kind" -v a="$i1" -v b="$i2" -v n1=$n1 -v n2=$n2 \
        'BEGIN { printf "  %-26s %8.1f instructions/op\n", k, (b - a) / (n2 - n1) }' >&2
    else
      fail "callgrind $kind (see build/bench/cg/$kind.*.log)"
    fi
  done
else
  fail "valgrind missing: no instruction counts"
fi

# ------------------------------------------------------------------ 4. bindings

if [[ -n $TARGET ]]; then
  say "through the bindings, on $TARGET"
  if [[ -n $INSTR_BIN ]]; then
    for kind in switchboard_tcp_try switchboard_tcp_blocking peek; do
      if ! SB_BENCH_TARGET="$TARGET" timeout 300 "$INSTR_BIN" --reps "$REPS" "$kind" $N_NATIVE |
        sed 's/^/rust /' >>"$OUT/bindings.txt"; then
        fail "rust $kind"
      fi
    done
    # Connect churn (issue 13): fewer iterations, each opens a connection.
    for kind in connect_churn tokio_connect; do
      if ! timeout 300 "$INSTR_BIN" --reps "$REPS" "$kind" 5000 |
        sed 's/^/rust /' >>"$OUT/bindings.txt"; then
        fail "rust $kind"
      fi
    done
  fi
  if [[ -n $C_BIN ]]; then
    timeout 300 "$C_BIN" "$TARGET" $N_NATIVE "$REPS" | sed 's/^/c /' >>"$OUT/bindings.txt" ||
      fail "C harness bench/c_overhead.c"
  fi
  if [[ $PY_OK == 1 ]]; then
    timeout 300 "$ROOT/build/venv/bin/python" bench/py_overhead.py "$TARGET" $N_SCRIPT "$REPS" |
      sed 's/^/python /' >>"$OUT/bindings.txt" || fail "Python harness bench/py_overhead.py"
  fi
  if [[ $NODE_OK == 1 ]]; then
    timeout 300 node bench/node_overhead.js "$TARGET" $N_SCRIPT "$REPS" |
      sed 's/^/node /' >>"$OUT/bindings.txt" || fail "Node harness bench/node_overhead.js"
  fi
  cat "$OUT/bindings.txt" >&2
fi
stop_echo

# ------------------------------------------------------------------ 5. RESULTS.md

{
  echo "command=make bench"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  dirty=$(git status --porcelain --untracked-files=no -- core ffi bindings 2>/dev/null | head -1)
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null)${dirty:+ (with uncommitted changes under core/ffi/bindings)}"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel=Linux $(uname -r)"
  echo "rustc=$(rustc --version 2>/dev/null)"
  echo "python=$("$ROOT/build/venv/bin/python" --version 2>/dev/null || "$PYTHON" --version 2>&1)"
  echo "node=$(node --version 2>/dev/null)"
  echo "valgrind=$(valgrind --version 2>/dev/null)"
  echo "reps=$REPS"
  echo "samples=10"
} >"$OUT/meta.txt"

say "writing bench/RESULTS.md"
if ! "$PYTHON" bench/summarise.py "$OUT" "$ROOT/bench/RESULTS.md"; then
  echo "bench: summarise.py failed; raw output is in build/bench/" >&2
  exit 1
fi
if [[ -s $OUT/failures.txt ]]; then
  echo "bench: some steps failed (listed at the top of bench/RESULTS.md):" >&2
  cat "$OUT/failures.txt" >&2
fi
exit 0
