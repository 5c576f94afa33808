'use strict';
// Broadcast to a topic of 10,000 connections from Node (issue 9's target), beside the
// seed's design written plainly in JS as the peer. Not a test; bench/run.sh may call it:
//
//   NODE_PATH=build/node_modules node bench/registry_node.js [connections] [repetitions]
//
// Prints one JSON object per line:
//   {"lang":"node","op":"broadcast_10k","connections":10000,"reps":N,
//    "call_ns":..., "all_delivered_ns":..., "peer_ns":..., "call_vs_peer":..., "delivered_vs_peer":...,
//    "call_ns_all":[...], "all_delivered_ns_all":[...], "peer_ns_all":[...]}
// (medians, and every repetition). Measured:
//   call_ns          one `registry.broadcast('x', { topic })` call: the fan-out into
//                    10,000 bounded queues runs in core and returns at once;
//   core_fanout_ns   the report's elapsedMs: the part of the call spent in core's fan-out;
//   all_delivered_ns from before that call until the 10,000th send callback ran on the
//                    JS thread (core's delivery tasks hand each round of 256 to JS in
//                    one threadsafe-function call; the results are reported back);
//   peer_ns          the plain peer: a Map of topic -> Set of ids, a Map of id -> connection,
//                    and a loop calling each connection's send (with the except check
//                    and try/catch the seed's broadcast has), for the same 10,000
//                    no-op send functions.
// Each send callback is a distinct closure that counts (a no-op the JIT cannot drop).

let sb;
try {
  sb = require('switchboard');
} catch {
  sb = require(require('node:path').join(__dirname, '..', 'bindings', 'node'));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The seed's registry written plainly: maps and a loop. */
class PlainRegistry {
  constructor() {
    this.connections = new Map();
    this.topics = new Map();
    this.nextId = 1;
  }

  register(send, topics) {
    const id = this.nextId++;
    this.connections.set(id, { id, send, topics: new Set(topics), sent: 0, failed: 0 });
    for (const t of topics) {
      if (!this.topics.has(t)) this.topics.set(t, new Set());
      this.topics.get(t).add(id);
    }
    return id;
  }

  broadcastToTopic(topic, msg, except) {
    const ids = this.topics.get(topic);
    if (ids === undefined) return 0;
    let n = 0;
    for (const id of ids) {
      if (except !== undefined && except.has(id)) continue;
      const c = this.connections.get(id);
      try {
        c.send(msg);
        c.sent++;
        n++;
      } catch {
        c.failed++;
      }
    }
    return n;
  }
}

async function main() {
  const n = Number(process.argv[2] || 10_000);
  const reps = Number(process.argv[3] || 15);
  const manager = new sb.Manager({ registry: { maxTotalConnections: 0, maxConnectionsPerTopic: 0, heartbeatInterval: 0, cleanupInterval: 0 } });
  const r = manager.registry;
  let count = 0;
  let target = Infinity;
  let done = null;
  for (let i = 0; i < n; i++) {
    r.register({
      topics: ['t'],
      send: () => {
        count++;
        if (count === target) done();
      },
    });
  }
  const peer = new PlainRegistry();
  let peerCount = 0;
  for (let i = 0; i < n; i++) {
    peer.register(() => {
      peerCount++;
    }, ['t']);
  }

  // The registry's threadsafe function is weak (it never keeps Node alive), so hold
  // the process open while deliveries are awaited.
  const keepAlive = setInterval(() => {}, 1000);
  const call = [];
  const delivered = [];
  const peerNs = [];
  const coreNs = [];
  const warm = 3;
  for (let rep = 0; rep < reps + warm; rep++) {
    count = 0;
    target = n;
    const all = new Promise((resolve) => {
      done = resolve;
    });
    const t0 = process.hrtime.bigint();
    const report = r.broadcast('x', { topic: 't' });
    const t1 = process.hrtime.bigint();
    await all;
    const t2 = process.hrtime.bigint();
    if (report.recipients !== n) throw new Error(`broadcast reached ${report.recipients} of ${n}`);
    // Let the batched reports of the last round reach core before the next broadcast.
    await new Promise((res) => setImmediate(res));

    peerCount = 0;
    const p0 = process.hrtime.bigint();
    const got = peer.broadcastToTopic('t', 'x');
    const p1 = process.hrtime.bigint();
    if (got !== n || peerCount !== n) throw new Error('the peer missed sends');
    if (rep >= warm) {
      call.push(Number(t1 - t0));
      coreNs.push(Math.round(report.elapsedMs * 1e6));
      delivered.push(Number(t2 - t0));
      peerNs.push(Number(p1 - p0));
    }
  }
  const c = median(call);
  const d = median(delivered);
  const p = median(peerNs);
  console.log(JSON.stringify({
    lang: 'node',
    op: `broadcast_${Math.round(n / 1000)}k`,
    connections: n,
    reps,
    call_ns: c,
    core_fanout_ns: median(coreNs),
    all_delivered_ns: d,
    peer_ns: p,
    call_vs_peer: +(p / c).toFixed(3),
    delivered_vs_peer: +(p / d).toFixed(3),
    call_ns_all: call,
    all_delivered_ns_all: delivered,
    peer_ns_all: peerNs,
  }));
  clearInterval(keepAlive);
  await manager.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
