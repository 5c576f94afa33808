'use strict';
// switchboard from Node with a custom connector: the pool manages the program's own
// objects (here a tiny fake client) exactly like sockets.
//
//   NODE_PATH=build/node_modules node examples/node/custom.js
//
// connect / check / close run on the JS thread; the library's threads queue them
// through a threadsafe function that never keeps Node alive.

const { Manager } = require('switchboard');

class FakeClient {
  static opened = 0;
  constructor(endpoint) {
    FakeClient.opened += 1;
    this.id = FakeClient.opened;
    this.endpoint = endpoint;
    this.healthy = true;
  }
  async query(q) {
    return `${this.endpoint}#${this.id} answered ${q}`;
  }
}

async function main() {
  const manager = new Manager({ workerThreads: 2 });
  const closed = [];
  const pool = manager.pool('clients', 'fake://primary', {
    maxSize: 2,
    validateAfter: 0, // check every idle client before handing it out
    connect: async (endpoint) => new FakeClient(endpoint),
    check: (client) => client.healthy,
    close: (client) => closed.push(client.id),
  });

  const lease = await pool.acquire();
  console.log(`node custom: ${await lease.obj.query('SELECT 1')}`);
  lease.obj.healthy = false; // its next check fails: the pool replaces it
  lease.release();

  const next = await pool.acquire();
  console.log(`node custom: after a failed check got client #${next.obj.id}`);
  next.release();

  const s = pool.stats();
  console.log(`node custom: created ${s.createdTotal}, closed as broken ${s.closedBy.broken}`);
  await manager.close();
  console.log(`node custom: closed clients ${JSON.stringify(closed)}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
