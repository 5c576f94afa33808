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

// The argument and result shapes are the registry's own (registry.js `shapes`).
module.exports = function makeCluster({ checkString, optString, targetFrom, listFilterFrom, dataOf, infoFrom, statsFrom }) {
  // Maps keyed by the members' strings (node ids) come from the native side as pairs
  // and become objects here, where Object.fromEntries defines each key (a native
  // property set would treat `__proto__` as the prototype), as in registry.js.

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
      const r = await this.#native.broadcast(dataOf(msg), targetFrom(target, 'broadcast()'));
      r.remote = Object.fromEntries(r.remote);
      return r;
    }

    /**
     * One page of the connections of every live member, in id order (ids are unique
     * across the cluster), with the registry's list filter: `{ connections: [{ node,
     * ...ConnectionInfo }], nextCursor, answered: { nodes, missing } }`.
     */
    async list(filter) {
      const page = await this.#native.list(listFilterFrom(filter));
      page.connections = page.connections.map((c) => ({ node: c.node, ...infoFrom(c.info) }));
      return page;
    }

    /**
     * Disconnects what `target` matches on every live member for `reason` (default
     * `disconnected`): `{ total, byNode: { [nodeId]: n }, answered }`.
     */
    async disconnect(target, reason) {
      const r = await this.#native.disconnect(targetFrom(target, 'disconnect()'), optString(reason, 'reason'));
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
