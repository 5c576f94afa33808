'use strict';
// Cost of acquire+release from Node, beside no-op calls. Run by bench/run.sh.
//
//   node node_overhead.js tcp://host:port iterations repetitions
//
// Prints one line per operation: `<op> <iterations> <ns/op> <ns/op> ...` (one value
// per repetition). Every timing includes its `for` loop. Ops:
//   noop_js         a call of a function the JIT cannot drop (it writes a global)
//   noop_native     `pool.closed`: a JS getter that reads a native getter
//   try_release     `const l = pool.tryAcquire(); l.release()` (synchronous)
//   await_acquire   `const l = await pool.acquire(); l.release()`

const path = require('node:path');
const switchboard = require(path.join(__dirname, '..', 'bindings', 'node'));

let sink = 0;
function noop(i) {
  sink = i;
}

async function main() {
  const [target, nArg, repsArg] = process.argv.slice(2);
  const n = Number(nArg);
  const reps = Number(repsArg);
  const manager = new switchboard.Manager();
  try {
    const pool = manager.pool('bench', target);
    (await pool.acquire({ timeout: 5000 })).release(); // the one connection reused below

    const ops = [
      ['noop_js', (k) => { for (let i = 0; i < k; i++) noop(i); }],
      ['noop_native', (k) => { for (let i = 0; i < k; i++) { if (pool.closed) sink++; } }],
      ['try_release', (k) => {
        for (let i = 0; i < k; i++) {
          const l = pool.tryAcquire();
          l.release();
        }
      }],
      ['await_acquire', async (k) => {
        for (let i = 0; i < k; i++) {
          const l = await pool.acquire();
          l.release();
        }
      }],
    ];
    for (const [name, fn] of ops) {
      await fn(Math.min(n, 10000)); // warm-up (and JIT)
      const row = [];
      for (let r = 0; r < reps; r++) {
        const t = process.hrtime.bigint();
        await fn(n);
        row.push(Number(process.hrtime.bigint() - t) / n);
      }
      console.log(`${name} ${n} ${row.map((x) => x.toFixed(2)).join(' ')}`);
    }
  } finally {
    await manager.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`node_overhead: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
