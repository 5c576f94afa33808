'use strict';
// Run by exit.test.js as a child process: does a round trip and then must let the
// process exit on its own (nothing of switchboard may keep the event loop alive).
// Usage: node exit_child.js <target> <close | no-close | pending-read>

const path = require('node:path');
const { Manager } = require(path.resolve(__dirname, '..', '..', 'bindings', 'node'));

async function main() {
  const [target, mode] = process.argv.slice(2);
  const manager = new Manager({ workerThreads: 2 });
  const pool = manager.pool('exit', target, { maxSize: 2, acquireTimeout: 5000 });
  const lease = await pool.acquire();
  await lease.write('bye');
  const got = await lease.read(3);
  if (got.toString() !== 'bye') throw new Error(`echo mismatch: ${got}`);
  if (mode === 'pending-read') {
    // A read that never completes, still pending while the manager closes.
    const other = await pool.acquire();
    other.read(10).catch((err) => console.log(`pending read ended: ${err.code}`));
  }
  lease.release();
  if (mode !== 'no-close') await manager.close(200);
  console.log('ok');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
