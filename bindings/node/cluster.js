'use strict';
// The manager's cluster (`manager.cluster`): core's cluster, wrapped (docs/cluster.md).
//
// Instances that share `cluster.redis_url` and `cluster.name` form a cluster: their
// breakers and registry broadcasts are shared without any call here; this class adds
// the membership and the cluster-wide calls. Those wait for the other instances (up
// to `cluster.request_timeout`) off the event loop and resolve with the members that
// answered and the ones that did not (`answered.missing`): a partial answer never
// rejects. Targets and list filters have the registry's shapes; every check and
// message comes from the Rust core, and this file only shapes arguments and results.

module.exports = function makeCluster({ invalid, describe, checkString, Connection, Outbox }) {
  function optString(value, what) {
    if (value === undefined || value === null) return null;
    return checkString(value, what);
  }

  function strings(value, what) {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw invalid(`${what} must be an array of strings, got ${describe(value)}`);
    value.forEach((v, i) => checkString(v, `${what}[${i}]`));
    return [...value];
  }

  /** A connection id: a number, or a Connection / Outbox (as the registry takes them). */
  function idOf(value, what) {
    if (value instanceof Connection || value instanceof Outbox) return value.id;
    if (typeof value !== 'number') throw invalid(`${what} must be a connection id (a number) or a Connection, got ${describe(value)}`);
    return value;
  }

  function idList(value, what) {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) return [idOf(value, what)];
    return value.map((v, i) => idOf(v, `${what}[${i}]`));
  }

  const TARGET_KEYS = new Set(['all', 'topic', 'topics', 'user', 'users', 'id', 'ids', 'except']);

  /** The registry's target (`{ topic, topics, user, users, id, ids, all, except }`) as native arguments. */
  function targetFrom(value, what) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw invalid(`${what} target must be an object such as { topic: 'news' }, { user: 'alice' } or { all: true }, got ${describe(value)}`);
    }
    for (const k of Object.keys(value)) {
      if (!TARGET_KEYS.has(k)) throw invalid(`${what} target has an unknown key ${JSON.stringify(k)}; use ${[...TARGET_KEYS].join(', ')}`);
    }
    const topics = strings(value.topics, 'topics');
    if (value.topic !== undefined && value.topic !== null) topics.push(checkString(value.topic, 'topic'));
    const users = strings(value.users, 'users');
    if (value.user !== undefined && value.user !== null) users.push(checkString(value.user, 'user'));
    const ids = idList(value.ids, 'ids');
    if (value.id !== undefined && value.id !== null) ids.push(idOf(value.id, 'id'));
    let all = false;
    if (value.all !== undefined && value.all !== null) {
      if (typeof value.all !== 'boolean') throw invalid(`all must be a boolean, got ${describe(value.all)}`);
      all = value.all;
    }
    return [all, topics, users, ids, idList(value.except, 'except')];
  }

  /** The registry's list filter (`{ user, topic, meta, state, minIdleMs, limit, cursor }`) as native arguments. */
  function filterFrom(filter) {
    if (filter === undefined || filter === null) filter = {};
    if (typeof filter !== 'object' || Array.isArray(filter)) throw invalid(`list() filter must be an options object, got ${describe(filter)}`);
    let metaKey = null;
    let metaValue = null;
    if (filter.meta !== undefined && filter.meta !== null) {
      if (!Array.isArray(filter.meta) || filter.meta.length !== 2) throw invalid(`meta must be a [key, value] pair, got ${describe(filter.meta)}`);
      metaKey = checkString(filter.meta[0], 'meta key');
      metaValue = checkString(filter.meta[1], 'meta value');
    }
    const num = (v, what) => {
      if (v === undefined || v === null) return null;
      if (typeof v !== 'number') throw invalid(`${what} must be a number, got ${describe(v)}`);
      return v;
    };
    return [
      optString(filter.user, 'user'),
      optString(filter.topic, 'topic'),
      metaKey,
      metaValue,
      optString(filter.state, 'state'),
      num(filter.minIdleMs, 'minIdleMs'),
      num(filter.limit, 'limit'),
      filter.cursor === undefined || filter.cursor === null ? null : idOf(filter.cursor, 'cursor'),
    ];
  }

  /** A message as the native side takes it: a string (text) or a Buffer (binary). */
  function dataOf(msg) {
    if (typeof msg === 'string' || Buffer.isBuffer(msg)) return msg;
    if (msg instanceof Uint8Array) return Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
    if (msg instanceof ArrayBuffer) return Buffer.from(msg);
    throw invalid(`a message must be a string, a Buffer or a Uint8Array, got ${describe(msg)}`);
  }

  // Maps keyed by the program's or the members' strings (node ids, metadata keys,
  // reasons) come from the native side as pairs and become objects here, where
  // Object.fromEntries defines each key (a native property set would treat
  // `__proto__` as the prototype), as in registry.js.

  /** The registry's `RegistryStats` shape. */
  function statsFrom(s) {
    s.disconnects = Object.fromEntries(s.disconnects);
    s.rejections = Object.fromEntries(s.rejections);
    return s;
  }

  /**
   * The manager's membership in its cluster (`manager.cluster`, `null` without
   * `cluster.redis_url`). Its events are the manager's: `cluster_joined` (reason
   * `joined` or `rejoined`) and `cluster_lost` (reason `redis_unavailable`; the
   * instance serves locally until Redis is back).
   */
  class Cluster {
    #native;
    #manager;

    /** @internal */
    constructor(nativeCluster, manager) {
      this.#native = nativeCluster;
      this.#manager = manager;
    }

    /** The manager it belongs to. */
    get manager() {
      return this.#manager;
    }

    /** `cluster.name`. */
    get name() {
      return this.#native.name;
    }

    /** This instance's `cluster.node_id`. */
    get nodeId() {
      return this.#native.nodeId;
    }

    /** This instance's number: the top bits (32..52) of its connection ids. */
    get nodeNumber() {
      return this.#native.nodeNumber;
    }

    /** Whether Redis is reachable and this instance takes part (else it serves locally). */
    get joined() {
      return this.#native.joined;
    }

    /**
     * The live members as of the last heartbeat, this instance included while joined:
     * `[{ nodeId, number, address, connections, pools, lastSeenMs, local }]`.
     * Synchronous; never waits.
     */
    members() {
      return this.#native.members();
    }

    /**
     * Broadcasts `msg` (a string is a text message; a Buffer/Uint8Array binary) to what
     * `target` matches on every instance (the registry's target: `{ topic, topics,
     * user, users, ids, all, except }`), and resolves once the other members
     * acknowledged or `cluster.request_timeout` passed: `{ local: BroadcastReport,
     * remote: { [nodeId]: recipients }, unacknowledged, recipients }`. A plain
     * `registry.broadcast()` reaches the cluster too, without waiting.
     */
    async broadcast(msg, target) {
      const r = await this.#native.broadcast(dataOf(msg), ...targetFrom(target, 'broadcast()'));
      r.remote = Object.fromEntries(r.remote);
      return r;
    }

    /**
     * One page of the connections of every live member, in id order (ids are unique
     * across the cluster), with the registry's list filter: `{ connections: [{ node,
     * ...ConnectionInfo }], nextCursor, answered: { nodes, missing } }`.
     */
    async list(filter) {
      const page = await this.#native.list(...filterFrom(filter));
      for (const c of page.connections) c.metadata = Object.fromEntries(c.metadata);
      return page;
    }

    /**
     * Disconnects what `target` matches on every live member for `reason` (default
     * `disconnected`): `{ total, byNode: { [nodeId]: n }, answered }`.
     */
    async disconnect(target, reason) {
      const r = await this.#native.disconnect(...targetFrom(target, 'disconnect()'), optString(reason, 'reason'));
      r.byNode = Object.fromEntries(r.byNode);
      return r;
    }

    /**
     * The registry statistics of every live member and their sum: `{ total, byNode:
     * { [nodeId]: RegistryStats }, answered }`.
     */
    async stats() {
      const s = await this.#native.stats();
      return {
        total: statsFrom(s.total),
        byNode: Object.fromEntries(s.byNode.map((n) => [n.node, statsFrom(n.stats)])),
        answered: s.answered,
      };
    }

    /**
     * Named resource `id`'s status on every live member: `{ id, byNode: { [nodeId]:
     * status }, answered }`, a status being `connected`, `connecting`, `recovering`,
     * `disconnected`, or `absent` where it is not created.
     */
    async resourceStatus(id) {
      const r = await this.#native.resourceStatus(checkString(id, 'resource id'));
      r.byNode = Object.fromEntries(r.byNode);
      return r;
    }

    toString() {
      return `Cluster(${this.name}, node ${this.nodeId}, ${this.joined ? 'joined' : 'lost'})`;
    }
  }

  return { Cluster };
};
