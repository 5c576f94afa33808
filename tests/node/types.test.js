'use strict';
// index.d.ts stays in sync with index.js: every exported name, every public member of
// the classes, the error codes and the stats fields are declared, and nothing declared
// is missing at runtime.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');

const { ROOT, sb, startEchoServer } = require('./helpers');

const dts = fs.readFileSync(path.join(ROOT, 'bindings', 'node', 'index.d.ts'), 'utf8')
  // Comments may mention names; only declarations count.
  .replace(/\/\*[\s\S]*?\*\//g, '')
  .replace(/\/\/.*$/gm, '');

/** The text between the braces that follow `header` (brace-matched). */
function block(header) {
  const start = dts.indexOf(header);
  assert.ok(start >= 0, `index.d.ts declares ${header}`);
  const open = dts.indexOf('{', start);
  let depth = 0;
  for (let i = open; i < dts.length; i++) {
    if (dts[i] === '{') depth += 1;
    else if (dts[i] === '}') {
      depth -= 1;
      if (depth === 0) return dts.slice(open + 1, i);
    }
  }
  throw new Error(`unbalanced braces after ${header}`);
}

/** Member names declared in a class or interface body. */
function members(body) {
  const names = new Set();
  for (const line of body.split('\n')) {
    const m = /^\s*(?:readonly\s+|private\s+)?(\[Symbol\.\w+\]|[A-Za-z_$][\w$]*)\??\s*[(<:]/.exec(line);
    if (m) names.add(m[1]);
  }
  names.delete('constructor');
  return names;
}

/** Public member names of a class at runtime (prototype methods and getters). */
function runtimeMembers(cls) {
  const names = new Set(Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== 'constructor'));
  for (const sym of Object.getOwnPropertySymbols(cls.prototype)) {
    const known = ['dispose', 'asyncDispose'].find((k) => Symbol[k] === sym);
    if (known) names.add(`[Symbol.${known}]`);
  }
  return names;
}

test('every runtime export is declared, and every declaration exported', () => {
  const declared = new Set();
  for (const m of dts.matchAll(/export\s+declare\s+(?:class|const|function)\s+([A-Za-z_$][\w$]*)/g)) {
    declared.add(m[1]);
  }
  const exported = new Set(Object.keys(sb));
  assert.deepEqual([...exported].sort(), [...declared].sort());
});

for (const name of ['Manager', 'Pool', 'Lease', 'Sessions']) {
  test(`class ${name}: declared members match the runtime`, () => {
    const declared = members(block(`export declare class ${name}`));
    const runtime = runtimeMembers(sb[name]);
    // Manager is an EventEmitter: the members it re-declares (typed overloads of `on`,
    // `once`) are inherited, not its own.
    const inherited = name === 'Manager' ? new Set(Object.getOwnPropertyNames(EventEmitter.prototype)) : new Set();
    assert.deepEqual([...runtime].sort(), [...declared].filter((n) => runtime.has(n) || !inherited.has(n)).sort());
    for (const n of declared) assert.ok(runtime.has(n) || inherited.has(n), `${name}.${n} exists at runtime`);
  });
}

test('Manager is an EventEmitter, as declared', async () => {
  const m = new sb.Manager({ workerThreads: 1 });
  try {
    assert.ok(m instanceof EventEmitter);
    assert.match(dts, /export declare class Manager extends EventEmitter/);
  } finally {
    await m.close();
  }
});

test('ErrorCode: names and codes match the native list', () => {
  const body = block('export declare const ErrorCode');
  const declared = {};
  for (const m of body.matchAll(/(\w+):\s*'(SB_\w+)'/g)) declared[m[1]] = m[2];
  assert.deepEqual(declared, { ...sb.ErrorCode });
});

test('PoolStats: declared fields match stats()', async () => {
  const m = new sb.Manager({ workerThreads: 1 });
  try {
    const stats = m.pool('types', 'tcp://127.0.0.1:9').stats();
    const declared = members(block('export interface PoolStats'));
    assert.deepEqual(Object.keys(stats).sort(), [...declared].sort());
    const latency = [...members(block('export interface LatencySummary'))].sort();
    assert.deepEqual(Object.keys(stats.wait).sort(), latency);
    assert.deepEqual(Object.keys(stats.lease).sort(), latency);
  } finally {
    await m.close();
  }
});

test('SwitchboardEvent: declared fields match pollEvent()', async () => {
  const m = new sb.Manager({ workerThreads: 1 });
  try {
    const server = await startEchoServer();
    try {
      const pool = m.pool('types-leak', server.target, { leakDetectionThreshold: 20 });
      const lease = await pool.acquire();
      let event = null;
      for (let i = 0; i < 200 && event === null; i++) {
        await new Promise((r) => setTimeout(r, 25));
        await pool.runUpkeep();
        // Connections report state changes too: wait for the leak (every kind has the same fields).
        for (let e = m.pollEvent(); e !== null && event === null; e = m.pollEvent()) {
          if (e.kind === 'leak_suspected') event = e;
        }
      }
      lease.release();
      assert.notEqual(event, null);
      const declared = members(block('export interface SwitchboardEvent'));
      assert.deepEqual(Object.keys(event).sort(), [...declared].sort());
      assert.match(dts, new RegExp(`export type EventKind =[^;]*'${event.kind}'`));
    } finally {
      server.stop();
    }
  } finally {
    await m.close();
  }
});

test('HealthReport and EndpointHealth: declared fields match health(), healthyEndpoints() and stats().endpoints', async () => {
  const m = new sb.Manager({ workerThreads: 1 });
  try {
    const pool = m.pool('types-health', 'tcp://127.0.0.1:9,tcp://127.0.0.1:10');
    const h = pool.health();
    assert.deepEqual(Object.keys(h).sort(), [...members(block('export interface HealthReport'))].sort());
    const fields = [...members(block('export interface EndpointHealth'))].sort();
    assert.equal(h.endpoints.length, 2);
    for (const e of [...h.endpoints, ...pool.stats().endpoints, ...pool.healthyEndpoints()]) {
      assert.deepEqual(Object.keys(e).sort(), fields);
    }
    // The state names are the declared ones.
    assert.match(dts, new RegExp(`export type ConnState = [^;]*'${h.endpoints[0].state}'`));
    assert.match(dts, new RegExp(`export type BreakerState = [^;]*'${h.endpoints[0].breaker}'`));
  } finally {
    await m.close();
  }
});

test('SessionInfo and StreamInfo: declared fields match sessions.get() and list()', async () => {
  const m = new sb.Manager({ workerThreads: 1 });
  try {
    const s = m.sessions;
    s.register('types-ds', 'k');
    const id = await s.open({ dataSource: 'types-ds', sessionKey: 'k', streams: ['a'] });
    const info = s.get(id);
    assert.deepEqual(Object.keys(info).sort(), [...members(block('export interface SessionInfo'))].sort());
    assert.deepEqual(Object.keys(info.streams[0]).sort(), [...members(block('export interface StreamInfo'))].sort());
    assert.deepEqual(s.list(), [info]);
    assert.match(dts, new RegExp(`readonly storeKind: [^;]*'${s.storeKind}'`));
  } finally {
    await m.close();
  }
});
