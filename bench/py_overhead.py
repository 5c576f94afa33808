"""Cost of acquire+release from Python, beside no-op calls. Run by bench/run.sh.

    python py_overhead.py tcp://host:port iterations repetitions [op]

Prints one line per operation: ``<op> <iterations> <ns/op> <ns/op> ...`` (one value per
repetition). Every timing includes its ``for`` loop. Ops:

  noop_py        a call of an empty Python function
  noop_native    ``pool.closed``: a Python property that reads a native getter
  try_release    ``lease = pool.try_acquire(); lease.release()``
  with_acquire   ``with pool.acquire(): pass`` (the blocking acquire, GIL released)
"""

from __future__ import annotations

import sys
import time

import switchboard


def noop() -> None:
    pass


def loop_noop_py(pool: switchboard.Pool, n: int) -> None:
    for _ in range(n):
        noop()


def loop_noop_native(pool: switchboard.Pool, n: int) -> None:
    for _ in range(n):
        pool.closed


def loop_try_release(pool: switchboard.Pool, n: int) -> None:
    for _ in range(n):
        lease = pool.try_acquire()
        lease.release()  # type: ignore[union-attr]


def loop_with_acquire(pool: switchboard.Pool, n: int) -> None:
    for _ in range(n):
        with pool.acquire():
            pass


OPS = [
    ("noop_py", loop_noop_py),
    ("noop_native", loop_noop_native),
    ("try_release", loop_try_release),
    ("with_acquire", loop_with_acquire),
]


def main() -> int:
    target, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with switchboard.Manager() as manager:
        pool = manager.pool("bench", target)
        with pool.acquire(timeout=5.0):  # opens the one connection every op reuses
            pass
        only = sys.argv[4] if len(sys.argv) > 4 else None
        for name, fn in OPS:
            if only is not None and name != only:
                continue
            fn(pool, min(n, 1000))  # warm-up
            row = []
            for _ in range(reps):
                t = time.perf_counter_ns()
                fn(pool, n)
                row.append((time.perf_counter_ns() - t) / n)
            print(name, n, " ".join(f"{x:.2f}" for x in row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
