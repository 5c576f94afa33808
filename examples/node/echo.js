'use strict';
// switchboard from Node: pool connections to an echo server and show what happened.
//
//   make demo-node DEMO_TARGET=tcp://127.0.0.1:7000
//   NODE_PATH=build/node_modules node examples/node/echo.js tcp://127.0.0.1:7000
//
// (`make build-node` links build/node_modules/switchboard to bindings/node; in a
// project of your own, `npm install /path/to/bindings/node` instead.)

const { Manager } = require('switchboard');

async function main(target) {
  const manager = new Manager({ workerThreads: 2 });
  try {
    const pool = manager.pool('echo', target, { maxSize: 4, acquireTimeout: 2000 });

    // Acquire waits on switchboard's own threads; the event loop stays free.
    const lease = await pool.acquire();
    await lease.write('hello from node\n');
    const reply = await lease.read(64);
    console.log(`node: connection ${lease.id} (fd ${lease.fd}) echoed ${JSON.stringify(reply.toString())}`);
    const firstId = lease.id;
    lease.release();

    // The released connection is reused, not reopened.
    const again = await pool.acquire();
    console.log(`node: reacquired connection ${again.id} (${again.id === firstId ? 'reused' : 'new'})`);
    again.release();

    // tryAcquire: an idle connection now, without a promise, or null.
    const fast = pool.tryAcquire();
    console.log(`node: tryAcquire gave ${fast ? `connection ${fast.id}` : 'nothing idle'}`);
    if (fast) fast.release();

    // withLease releases the connection however the callback ends.
    const echoed = await pool.withLease(async (conn) => {
      await conn.write('ping\n');
      return (await conn.read(64)).toString();
    });
    console.log(`node: withLease echoed ${JSON.stringify(echoed)}`);

    const s = pool.stats();
    console.log(`node: pool "${s.name}": ${s.size} open, ${s.idle} idle, ${s.createdTotal} created, ${s.acquiredTotal} acquires`);
    console.log(
      `node: waits ${s.wait.count} (avg ${s.wait.avg.toFixed(3)} ms, peak ${s.wait.peak.toFixed(3)} ms), ` +
        `leases ${s.lease.count} (p50 ${s.lease.p50.toFixed(3)} ms, peak ${s.lease.peak.toFixed(3)} ms)`,
    );

    // Leak detection: a lease held past leakDetectionThreshold arrives as an 'event'.
    // (Connections and endpoints report their state changes as events too: pick the kind.)
    const leaky = manager.pool('leaky', target, { maxSize: 1, leakDetectionThreshold: 50 });
    let event = null;
    const onEvent = (e) => {
      if (e.kind === 'leak_suspected') event = e;
    };
    manager.on('event', onEvent);
    const held = await leaky.acquire();
    for (let i = 0; i < 200 && event === null; i++) {
      await new Promise((r) => setTimeout(r, 25));
      await leaky.runUpkeep(); // the pool's own upkeep would report it too, later
    }
    held.release();
    manager.off('event', onEvent);
    console.log(`node: event ${event ? `${event.kind}: ${event.message}` : 'none within 5 s'}`);

    // Resilience: each endpoint's health, breaker and quality; operators can force a breaker.
    await pool.runHealthChecks(); // runs off the event loop (also every health.interval)
    for (const e of pool.health().endpoints) {
      console.log(`node: endpoint ${e.endpoint}: ${e.state}, breaker ${e.breaker}, quality ${e.quality.toFixed(2)}, ${e.checks} check(s)`);
    }
    pool.breakerOp('force_open');
    const refused = await pool.acquire().then((l) => (l.release(), 'served'), (err) => err.code);
    pool.breakerOp('reset');
    console.log(`node: with the breaker forced open an acquire got ${refused}; after reset it is ${pool.breakerState()}`);

    // Prometheus text for a /metrics endpoint.
    const line = manager.metricsText().split('\n').find((l) => l.startsWith('switchboard_pool_acquires_total{pool="echo",result="direct"}'));
    console.log(`node: metrics: ${line}`);
  } finally {
    // Closes connections and stops switchboard's threads; then Node exits on its own.
    await manager.close();
  }
  console.log('node: manager closed');
}

const target = process.argv[2];
if (!target) {
  console.error('usage: node examples/node/echo.js tcp://host:port');
  process.exit(2);
}
main(target).catch((err) => {
  console.error(`node: ${err.code || 'error'}: ${err.message}`);
  process.exitCode = 1;
});
