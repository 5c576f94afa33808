'use strict';
// Run by exit.test.js as a child process: does a round trip and then must let the
// process exit on its own (nothing of switchboard may keep the event loop alive).
// Usage: node exit_child.js <target> <close | no-close | pending-read | custom | custom-no-close
//        | events | events-no-close | health-no-close | sessions-no-close>

const path = require('node:path');
const { Manager } = require(path.resolve(__dirname, '..', '..', 'bindings', 'node'));

/** A custom pool whose callbacks run through a threadsafe function. */
async function custom(manager, close) {
  let closes = 0;
  const pool = manager.pool('custom', 'svc://exit', {
    maxSize: 2,
    minIdle: 1,
    validateAfter: 0,
    connect: async (endpoint) => ({ endpoint }),
    check: () => true,
    close: () => {
      closes += 1;
    },
  });
  const a = await pool.acquire();
  const b = await pool.acquire();
  if (a.obj.endpoint !== 'svc://exit') throw new Error(`unexpected object ${JSON.stringify(a.obj)}`);
  a.release();
  b.release();
  if (close) {
    await manager.close(200);
    if (closes !== 2) throw new Error(`expected 2 closes, got ${closes}`);
  }
  console.log('ok');
}

/** An 'event' listener (a weak threadsafe function) that receives a leak event and stays attached. */
async function events(manager, target, close) {
  const pool = manager.pool('events', target, { maxSize: 1, leakDetectionThreshold: 50 });
  let seen = 0;
  manager.on('event', (e) => {
    if (e.kind === 'leak_suspected') seen += 1;
  });
  const lease = await pool.acquire();
  for (let i = 0; i < 200 && seen === 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    await pool.runUpkeep();
  }
  if (seen !== 1) throw new Error(`expected one leak event, got ${seen}`);
  lease.release();
  if (close) await manager.close(200);
  console.log('ok');
}

/** Background health checks (health.interval 20 ms) and a listener for their events, never closed. */
async function health(manager, target) {
  let checks = 0;
  manager.on('event', (e) => {
    if (e.kind === 'health_check') checks += 1;
  });
  const pool = manager.pool('health', target, { maxSize: 1, health: { interval: 20 } });
  (await pool.acquire()).release();
  await pool.runHealthChecks();
  for (let i = 0; i < 200 && checks < 3; i++) await new Promise((r) => setTimeout(r, 25));
  if (checks < 2) throw new Error(`expected health checks to be heard, got ${checks}`);
  console.log('ok');
}

/** Sessions with commits, and a promise-returning call still in flight, never closed. */
async function sessions(manager) {
  const s = manager.sessions;
  s.register('ds', 'k');
  const id = await s.open({ dataSource: 'ds', sessionKey: 'k', streams: ['a'] });
  s.deliver(id, 'a', 3);
  await s.commit(id, 'a', 3);
  if ((await s.committed('ds', 'k', 'a')) !== 3) throw new Error('commit not visible');
  s.commit(id, 'a', 4).catch((err) => console.error(err));
  console.log('ok');
}

async function main() {
  const [target, mode] = process.argv.slice(2);
  const manager = new Manager({ workerThreads: 2 });
  if (mode === 'custom' || mode === 'custom-no-close') return custom(manager, mode === 'custom');
  if (mode === 'events' || mode === 'events-no-close') return events(manager, target, mode === 'events');
  if (mode === 'health-no-close') return health(manager, target);
  if (mode === 'sessions-no-close') return sessions(manager);
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
