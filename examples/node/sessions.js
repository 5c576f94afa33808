'use strict';
// switchboard sessions from Node: per-stream offsets in a durable store, resumed by a
// second manager as after a restart. Needs no server.
//
//   make demo-node DEMO_TARGET=tcp://127.0.0.1:7000   (runs this after echo.js and custom.js)
//   NODE_PATH=build/node_modules node examples/node/sessions.js

const { Manager, ErrorCode } = require('switchboard');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-offsets-'));
  const offsetsPath = path.join(dir, 'offsets.redb');
  let manager = new Manager({ offsetsPath });         // durable: commits survive a crash
  let sessions = manager.sessions;
  sessions.register('quotes', 'eu');
  const id = await sessions.open({ dataSource: 'quotes', sessionKey: 'eu', streams: ['bids', 'asks'], streamOffsets: [100, 0] });
  sessions.recordRead(id, 'bids', 10, 1200);           // 10 packets, 1200 bytes read
  const next = sessions.deliver(id, 'bids', 10, 1200); // delivered: position 110
  await sessions.commit(id, 'bids', next);             // on disk when this resolves
  try {
    await sessions.commit(id, 'bids', 50);             // backwards
  } catch (err) {
    if (err.code === ErrorCode.FailedPrecondition) console.log('refused:', err.message);
  }
  console.log(sessions.get(id).streams.map((s) => `${s.name}@${s.position} (committed ${s.committed})`));
  await manager.close();

  manager = new Manager({ offsetsPath });             // e.g. after a restart
  sessions = manager.sessions;
  sessions.register('quotes', 'eu');
  const again = await sessions.resume('quotes', 'eu', ['bids', 'asks']);
  console.log('resumed at', sessions.get(again).streams.map((s) => s.position)); // [ 110, 0 ]
  await manager.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
