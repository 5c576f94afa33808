'use strict';
// Child of sessions.test.js: opens a manager with a durable offset store at argv[2],
// commits increasing offsets of stream "s" and prints "ACK <offset>" after each commit
// resolved, until killed (bounded: it gives up after 100,000 commits or 60 s).

const path = require('node:path');

const sb = require(path.resolve(__dirname, '..', '..', 'bindings', 'node'));

async function main(storePath) {
  const m = new sb.Manager({ workerThreads: 1, offsetsPath: storePath });
  const s = m.sessions;
  s.register('feed', 'k1');
  const id = await s.open({ dataSource: 'feed', sessionKey: 'k1', streams: ['s'] });
  process.stdout.write(`READY ${s.storeKind}\n`);
  const end = Date.now() + 60_000;
  for (let offset = 1; offset <= 100_000 && Date.now() < end; offset++) {
    await s.commit(id, 's', offset);
    process.stdout.write(`ACK ${offset}\n`);
  }
  await m.close();
}

main(process.argv[2]).catch((err) => {
  process.stderr.write(`sessions_child: ${err.code}: ${err.message}\n`);
  process.exitCode = 1;
});
