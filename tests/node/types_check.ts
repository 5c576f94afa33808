// Compiled against index.d.ts with tsc --strict by tests/node/tsc.test.js (part of
// make test-node; typescript is a devDependency of bindings/node).
import { Manager, Pool, Lease, ErrorCode, isSwitchboardError, Registry, PING, envelope, parseEnvelope } from 'switchboard';
import type { Connection, Outbox, OutboxItem, BroadcastReport, ConnectionInfo, ListPage, RegistryStats, CleanupReport, Envelope, SwitchboardError } from 'switchboard';
import type { Sessions, SessionInfo, StreamInfo, SessionDetails, EventKind, EndpointHealth, HealthReport, BreakerState, BreakerOp, ConnState } from 'switchboard';

interface Client { endpoint: string; n: number }

async function main(): Promise<void> {
  const m = new Manager({ workerThreads: 2, poolMaxSize: 4 });
  const sockets = m.pool('s', 'tcp://127.0.0.1:1', { maxSize: 2, minIdle: 1, probeSend: Buffer.from('PING\r\n'), probeExpect: 'PONG', maxOverflow: 1, idleTimeout: '1s' });
  const l = await sockets.acquire({ priority: 3 });
  const fd: number = l.fd;
  await l.write('x');
  l.release();
  const custom = m.pool('c', 'db://x', {
    maxSize: 3,
    connect: async (endpoint: string): Promise<Client> => ({ endpoint, n: 1 }),
    check: (c) => c.n > 0,
    close: (c) => { console.log(c.endpoint); },
  });
  const p: Pool<Client> = custom;
  const lease: Lease<Client> = await p.acquire();
  const n: number = lease.obj.n;
  lease.release();
  const r: string = await p.withLease(async (x) => x.obj.endpoint);
  p.resize(4, 1);
  p.evictAll();
  const opened: number = await p.warm();
  await p.runUpkeep();
  const s = p.stats();
  const b: number = s.closedBy.broken + s.probeFailedTotal + s.minIdle;
  const p99: number = s.wait.p99 + s.lease.peak + s.lease.count;
  const text: string = m.metricsText();
  const ev = m.pollEvent();
  if (ev !== null) {
    const id: number | null = ev.connectionId;
    const age: number | null = ev.ageMs;
    const k: EventKind = ev.kind;
    console.log(id, age, k, ev.pool, ev.message, ev.time.toISOString());
  }
  const dropped: number = m.eventsDropped();
  m.on('event', (e) => { const a: number | null = e.ageMs; console.log(a, e.kind); });
  m.once('event', (e) => console.log(e.time.getTime()));
  m.removeAllListeners('event');
  m.pool('leaky', 'tcp://127.0.0.1:1', { leakDetectionThreshold: '30s' });
  console.log(p99, text, dropped);
  const r2 = m.pool('r', 'tcp://127.0.0.1:1,tcp://127.0.0.1:2', {
    breaker: { failureThreshold: 1, openWait: 200, openWaitMultiplier: 1.6, mode: 'normal', windowType: 'count' },
    backoff: { initial: '10ms', multiplier: 1.6, jitter: 0.2, strategy: 'full' },
    retry: { maxAttempts: 1 },
    health: { interval: 50 },
    breakerSlowCallRateThreshold: 50,
    'breaker.minimum_calls': 4,
  });
  const h = r2.health();
  const eh: EndpointHealth = h.endpoints[0];
  const since: Date | null = eh.connectedSince;
  const lat: number | null = eh.latencyEwma;
  const bs: BreakerState = r2.breakerState('tcp://127.0.0.1:1');
  const st: ConnState = eh.state;
  const best: string = r2.selectBest(['tcp://127.0.0.1:1']);
  const all: string = r2.selectBest();
  const healthy: EndpointHealth[] = r2.healthyEndpoints();
  const op: BreakerOp = 'force_open';
  r2.breakerOp(op);
  r2.breakerOp('reset', 'tcp://127.0.0.1:2');
  r2.resetBackoff();
  r2.drain('tcp://127.0.0.1:1');
  await r2.runHealthChecks();
  const sl = await sockets.acquire();
  const ep: string = sl.endpoint;
  sl.report(true, 12.5);
  await sl.write('x', { timeout: 100 });
  const got: Buffer = await sl.read(16, { timeout: '1s' });
  await sl.read(undefined, { timeout: 5 });
  sl.release();
  const report: HealthReport = h;
  const eps: EndpointHealth[] = p.stats().endpoints;
  m.on('event', (e) => {
    const o: string | null = e.oldState;
    const nw: string | null = e.newState;
    const en: string | null = e.endpoint;
    const sid: number | null = e.sessionId;
    const sn: string | null = e.stream;
    if (e.kind === 'breaker_state') console.log(o, nw, en, sid, sn);
  });
  console.log(since, lat, bs, st, best, all, healthy, ep, got, report, eps);
  const sessions: Sessions = m.sessions;
  const added: boolean = sessions.register('feed', 'k1');
  const sid: number = await sessions.open({ dataSource: 'feed', sessionKey: 'k1', streams: ['x'], streamOffsets: [4] });
  const info: SessionInfo = sessions.get(sid);
  const si: StreamInfo = info.streams[0];
  const committed: number | null = si.committed;
  const pos: number = sessions.deliver(sid, 'x', 2, 200) + sessions.position(sid, 'x');
  sessions.recordRead(sid, 'x', 3, 300, 1);
  sessions.recordRouter(sid);
  await sessions.commit(sid, 'x', 6);
  sessions.seek(sid, 'x', 5);
  await sessions.addStream(sid, 'y');
  sessions.removeStream(sid, 'y');
  const c: number | null = await sessions.committed('feed', 'k1', 'x');
  const listed: SessionInfo[] = sessions.list({ dataSource: 'feed' });
  const cat: [string, string][] = sessions.catalog();
  sessions.close(sid);
  const again: number = await sessions.resume('feed', 'k1', ['x']);
  await sessions.flush();
  const kind: 'memory' | 'durable' | 'redis' = sessions.storeKind;
  const counts: number = sessions.openCount + sessions.bufferedCommits;
  const details: SessionDetails = { dataSource: 'a', sessionKey: 'b' };
  new Manager({ sessionsMaxTotal: 10, sessionsMaxPerKey: 1, offsetsPath: '/tmp/x.redb', offsetsSync: 'interval', offsetsSyncInterval: 500 });
  console.log(added, committed, pos, c, listed, cat, again, kind, counts, details);
  const t = p.tryAcquire();
  if (t) t.release();
  console.log(fd, n, r, opened, b, ErrorCode.Timeout, isSwitchboardError(null));
  await m.close();
}
main();

async function registry(): Promise<void> {
  const m = new Manager({ runtime: { clock: 'manual' }, registry: { heartbeatInterval: '10s', maxSendFailures: 2 } });
  m.advanceClock(1000);
  m.advanceClock('10s');
  const r: Registry = m.registry;
  r.setAuthenticator((token) => (token === 'ok' ? { user: 'alice', metadata: { via: 'token' } } : null), (id, user, topic) => user !== null || topic !== 'admin');
  const c: Connection = r.register({
    user: 'alice',
    metadata: { ip: '10.0.0.1' },
    topics: ['news'],
    send: async (msg, conn) => { if (typeof msg === 'string') console.log(msg.length, conn.id); else console.log(msg.byteLength); },
    ping: (conn) => { conn.touch(); },
    close: (reason) => { console.log(reason); },
  });
  const o: Outbox = r.registerOutbox({ token: 'ok' });
  const rep: BroadcastReport = r.broadcast('hi', { topic: 'news', except: [o] });
  r.broadcast(Buffer.from('x'), { users: ['alice'], ids: [c.id, o] });
  r.broadcast(new Uint8Array(2), { all: true, except: c });
  const item: OutboxItem | null = await o.next();
  if (item === PING) o.touch();
  else if (typeof item === 'string') console.log(item.toUpperCase());
  else if (item !== null) console.log(item.readUInt8(0));
  for await (const it of o) { if (it === Registry.PING) break; }
  const info: ConnectionInfo = c.info();
  const page: ListPage = r.list({ user: 'alice', topic: 'news', meta: ['ip', '10.0.0.1'], state: 'idle', minIdleMs: 5, limit: 10, cursor: page0() });
  const next: number | null = page.nextCursor;
  const n: number = r.disconnect({ user: 'alice' }, 'banned') + r.size;
  const s: RegistryStats = r.stats();
  const top: [string, number][] = s.topicCounts;
  const cl: CleanupReport = r.cleanup();
  c.subscribe('x'); c.unsubscribe('x'); c.setMetadata('k', null); c.unregister('bye');
  const why: string | null = c.closedReason || o.closedReason;
  const e: Envelope = parseEnvelope(envelope('notification', { topic: 'news', data: { id: 7 } }));
  const ok: boolean = r.has(o) && r.subscribe(o.id, 'y');
  try { r.register({ token: 'no', send: () => {} }); } catch (err) {
    if (isSwitchboardError(err) && (err as SwitchboardError).code === ErrorCode.Unauthenticated) console.log('refused');
    if (isSwitchboardError(err) && err.code === ErrorCode.PermissionDenied) console.log('denied');
  }
  m.on('event', (ev) => { const t: string | null = ev.topic; const u: string | null = ev.user; const re: string | null = ev.reason; console.log(t, u, re); });
  console.log(rep.elapsedMs, info.queuedMessages, next, n, top, cl.pinged, why, e.data, ok);
  await m.close();
}

function page0(): number | null { return null; }
registry();

// Resources (issue 10).
import type { Resources, ResourceHandle, ResourceInfo, ResourceStatus, ResourceProps } from 'switchboard';

async function resources(): Promise<void> {
  const m = new Manager({ resources: { path: '/tmp/x.redb' } });
  const r: Resources = m.resources;
  const props: ResourceProps = { endpoint: 'tcp://127.0.0.1:6379', connectTimeout: 250, health: { interval: '1s' }, onConnect: 'HELLO 3\r\n' };
  r.create('bus', 'tcp', props);
  const h: ResourceHandle = r.attach('bus', 'feed');
  await h.waitReady('5s');
  await h.write(Buffer.from('PING\r\n'));
  const got: Buffer = await h.read(1024, { timeout: 100 });
  const st: ResourceStatus = h.status;
  h.reportFailure();
  h.detach();
  await r.update('bus', { endpoint: 'tcp://127.0.0.1:6380' });
  await r.waitReady('bus', 1000);
  r.reportFailure('bus');
  const info: ResourceInfo = r.get('bus');
  const ids: string[] = r.list().map((i) => i.id);
  const up: number | null = info.connectedForMs;
  r.delete('bus', { force: true });
  r.registerType<Client>('client', { connect: (endpoint) => ({ endpoint, n: 1 }), check: (c) => c.n > 0 });
  const anon = r.attachAnonymous<Client>('client', 'me', { endpoint: 'client://a' });
  const c: Client = anon.object();
  const ev = m.pollEvent();
  const res: string | null = ev === null ? null : ev.resource;
  console.log(got, st, ids, up, c, res, info.lastError, info.bytesIn + info.bytesOut);
  await m.close();
}
void resources;

import { Hub, HubMessage } from 'switchboard';

async function server(): Promise<void> {
  const m = new Manager({ server: { listen: '127.0.0.1:0', token: 'secret', hubQueue: 100 }, 'runtime.clock': 'manual' });
  const addr: string | null = m.serverAddress;
  const grpc: string | null = m.grpcAddress;
  const hub: Hub = m.hub;
  const msg: HubMessage | null = await hub.recv(100);
  if (msg !== null) {
    const id: number = msg.connectionId;
    const user: string | null = msg.user;
    const topic: string | null = msg.topic;
    const data: unknown = msg.json().data;
    m.registry.send(id, envelope('reply', { data: { user, topic, data, type: msg.type, text: msg.text } }));
  }
  const onMessage = (x: HubMessage): void => { console.log(x.type); };
  hub.on('message', onMessage);
  hub.off('message', onMessage);
  const waiting: Promise<HubMessage | null> = hub.recv();
  console.log(addr, grpc, hub.dropped + hub.queued, hub.manager === m);
  await m.close();
  await waiting.catch(() => null);
}
void server;

// The cluster (issue 12).
import { Cluster } from 'switchboard';
import type { ClusterOptions, ClusterMember, ClusterBroadcastReport, ClusterListPage, ClusterConnectionInfo, ClusterCount, ClusterStats, ClusterResourceStatus, ClusterAnswered } from 'switchboard';

async function cluster(): Promise<void> {
  const opts: ClusterOptions = { redisUrl: 'redis://127.0.0.1:6379/0', name: 'edge', nodeId: 'a', heartbeatInterval: '2s', requestTimeout: 1000, breakers: 'shared' };
  const m = new Manager({ cluster: opts, 'cluster.name': 'edge' });
  const maybe: Cluster | null = m.cluster;
  if (maybe === null) return;
  const c: Cluster = maybe;
  const who: string = `${c.name} ${c.nodeId} ${c.nodeNumber} ${c.joined}`;
  const members: ClusterMember[] = c.members();
  const seen: number = members[0].lastSeenMs + members[0].connections + members[0].number;
  const o = m.registry.registerOutbox({ topics: ['news'] });
  const b: ClusterBroadcastReport = await c.broadcast('hi', { topics: ['news', 'sport'], except: [o] });
  const remote: number = (b.remote['b'] ?? 0) + b.local.recipients + b.unacknowledged + b.recipients;
  const page: ClusterListPage = await c.list({ topic: 'news', limit: 50 });
  const first: ClusterConnectionInfo | undefined = page.connections[0];
  const node: string | undefined = first?.node;
  const next: ClusterListPage | null = page.nextCursor === null ? null : await c.list({ cursor: page.nextCursor });
  const answered: ClusterAnswered = page.answered;
  const missing: string[] = answered.missing;
  const d: ClusterCount = await c.disconnect({ user: 'ann' }, 'moved');
  const s: ClusterStats = await c.stats();
  const perNode: number = s.total.connections + (s.byNode['a']?.connections ?? 0) + d.byNode['a'];
  const r: ClusterResourceStatus = await c.resourceStatus('bus');
  const st: ResourceStatus | 'absent' | undefined = r.byNode['a'];
  m.on('event', (e) => {
    if (e.kind === 'cluster_joined' || e.kind === 'cluster_lost') console.log(e.reason);
  });
  console.log(who, seen, remote, node, next, missing, perNode, st, d.total);
  await m.close();
}
void cluster;
