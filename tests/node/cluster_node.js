'use strict';
// The Node child of the shared cluster driver (tests/fixtures/cluster_driver.py; the
// protocol is in .notes/cluster-api.md): one JSON request per line on stdin, exactly
// one JSON line per request on stdout (logs go to stderr), through the public package:
// `manager.registry` for connections and plain broadcasts, `manager.cluster` for the
// cluster-wide calls. Requests run one at a time, in order. Exits 0 after `close`, or
// when stdin ends (closing the manager first).
//
//   python3 tests/fixtures/cluster_driver.py -- node tests/node/cluster_node.js

const path = require('node:path');
const readline = require('node:readline');

const sb = require(path.resolve(__dirname, '..', '..', 'bindings', 'node'));

/** Most items taken from one outbox or the event queue per request (a bound, never reached). */
const MAX_DRAIN = 100_000;

let manager = null;
const outboxes = new Map();
const pools = new Map();

function need(value, what) {
  if (value === undefined || value === null) {
    const err = new Error(`no ${what}: send "start" first, or name an existing one`);
    err.code = 'SB_NOT_FOUND';
    throw err;
  }
  return value;
}

function cluster() {
  return need(need(manager, 'manager').cluster, 'cluster (cluster.redis_url is empty)');
}

/** The protocol's target as the registry's: the same keys. */
function target(t) {
  const out = {};
  for (const k of ['all', 'topics', 'users', 'ids', 'except']) {
    if (t && t[k] !== undefined && t[k] !== null) out[k] = t[k];
  }
  return out;
}

const ops = {
  start({ config }) {
    manager = new sb.Manager(config);
    const c = cluster();
    return { node_id: c.nodeId, number: c.nodeNumber, joined: c.joined };
  },

  register({ user, topics }) {
    const o = need(manager, 'manager').registry.registerOutbox({ user, topics });
    outboxes.set(o.id, o);
    return { id: o.id };
  },

  drain({ id }) {
    const o = need(outboxes.get(id), `outbox ${id}`);
    const messages = [];
    for (let i = 0; i < MAX_DRAIN; i++) {
      const item = o.tryNext();
      if (item === undefined || item === null) break;
      if (item === sb.PING) continue;
      messages.push(typeof item === 'string' ? item : item.toString('utf8'));
    }
    return { messages };
  },

  async broadcast({ target: t, data, ack }) {
    if (!ack) return { local: need(manager, 'manager').registry.broadcast(data, target(t)).recipients };
    const r = await cluster().broadcast(data, target(t));
    return { local: r.local.recipients, remote: r.remote, unacknowledged: r.unacknowledged };
  },

  members() {
    const c = cluster();
    return { joined: c.joined, members: c.members().map((m) => m.nodeId).sort() };
  },

  async list({ filter }) {
    const page = await cluster().list(filter ?? {});
    return {
      ids: page.connections.map((c) => c.id),
      nodes: page.connections.map((c) => c.node),
      next_cursor: page.nextCursor,
      answered: page.answered.nodes,
      missing: page.answered.missing,
    };
  },

  async disconnect({ target: t, reason }) {
    const r = await cluster().disconnect(target(t), reason);
    return { total: r.total, by_node: r.byNode, missing: r.answered.missing };
  },

  async stats() {
    const s = await cluster().stats();
    const byNode = Object.fromEntries(Object.entries(s.byNode).map(([n, st]) => [n, st.connections]));
    return { connections: s.total.connections, by_node: byNode, missing: s.answered.missing };
  },

  pool({ name, target: t, config }) {
    pools.set(name, need(manager, 'manager').pool(name, t, config));
    return {};
  },

  async acquire({ pool }) {
    const lease = await need(pools.get(pool), `pool ${pool}`).acquire();
    lease.release();
    return {};
  },

  breaker({ pool }) {
    return { state: need(pools.get(pool), `pool ${pool}`).breakerState() };
  },

  pool_stats({ pool }) {
    const s = need(pools.get(pool), `pool ${pool}`).stats();
    return { connect_failed_total: s.connectFailedTotal };
  },

  resource({ id, kind, props }) {
    need(manager, 'manager').resources.create(id, kind, props);
    return {};
  },

  async resource_status({ id }) {
    const r = await cluster().resourceStatus(id);
    return { by_node: r.byNode, missing: r.answered.missing };
  },

  events() {
    const m = need(manager, 'manager');
    const events = [];
    for (let i = 0; i < MAX_DRAIN; i++) {
      const e = m.pollEvent();
      if (e === null) break;
      events.push(`${e.kind}:${e.reason ?? ''}`);
    }
    return { events };
  },

  async close() {
    await closeManager();
    return {};
  },
};

async function closeManager() {
  const m = manager;
  manager = null;
  if (m !== null) await m.close('5s');
}

function reply(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let req;
    try {
      req = JSON.parse(line);
    } catch (err) {
      reply({ error: 'SB_INVALID_ARGUMENT', message: `not JSON: ${err.message}` });
      continue;
    }
    const op = Object.hasOwn(ops, req.op) ? ops[req.op] : null;
    if (op === null) {
      reply({ error: 'SB_INVALID_ARGUMENT', message: `unknown op ${JSON.stringify(req.op)}` });
      continue;
    }
    try {
      reply(await op(req));
    } catch (err) {
      // An error is an answer (the driver expects some: acquire on an open breaker).
      reply({ error: err.code || 'SB_INTERNAL', message: String(err.message) });
    }
    if (req.op === 'close') break;
  }
  rl.close();
  await closeManager();
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`cluster_node: ${err.stack}\n`);
    process.exit(1);
  },
);
