'use strict';
// Named shared connections (`manager.resources`): core's resources, wrapped.
//
// A resource is one physical connection, created by id, running and reconnecting on
// its own, shared by consumers that attach to it by name. Every check and message
// comes from the Rust core; this file shapes arguments (props become core's string
// keys, in any natural spelling), keeps the objects of the program's own connector
// types (they cannot leave the JS thread; see "custom connectors" in index.js) and
// turns native snapshots into the program's.

const kFlush = Symbol('flush');
const kRelease = Symbol('release');

module.exports = function makeResources({
  native,
  invalid,
  describe,
  checkString,
  configFrom,
  durationFrom,
  callTimeout,
  makeDispatch,
  flushThrough,
}) {
  /**
   * Props (`{ endpoint, connectTimeout: 250, health: { interval: '1s' }, onConnect }`)
   * as core's flat `[key, value, ...]` list of strings, in the program's order.
   */
  function propsFrom(props, what) {
    return Object.entries(configFrom(props, what) ?? {}).flat();
  }

  function timeoutFrom(timeout, what) {
    const t = durationFrom(timeout, `${what} timeout`);
    if (t === undefined) throw invalid(`${what}() needs a timeout: milliseconds or a string such as "5s"`);
    return t;
  }

  function infoFrom(i) {
    return {
      id: i.id,
      type: i.kind,
      endpoint: i.endpoint,
      anonymous: i.anonymous,
      status: i.status,
      lastError: i.lastError ?? null,
      stopped: i.stopped,
      consumers: i.consumers,
      reconnects: i.reconnects,
      bytesIn: i.bytesIn,
      bytesOut: i.bytesOut,
      connectedForMs: i.connectedForMs ?? null,
    };
  }

  /**
   * One consumer's share of a resource, from `resources.attach()` or
   * `attachAnonymous()`. `read`/`write` go to the resource's current connection (it
   * changes across reconnects and updates) and count its bytes. The connection is
   * shared: as with a lease's socket, one consumer writes at a time and one reads at a
   * time; the program coordinates them. `detach()` lets go (so does garbage collection).
   */
  class ResourceHandle {
    #native;
    #resources;

    /** @internal */
    constructor(nativeHandle, resources) {
      this.#native = nativeHandle;
      // Keeps the manager (and its runtime) alive as long as the handle is reachable.
      this.#resources = resources;
    }

    /** The resource's id (`anonymous-<n>` for an anonymous one). */
    get id() {
      return this.#native.id;
    }

    /** This consumer's name. */
    get consumer() {
      return this.#native.consumer;
    }

    /** `'connecting'`, `'connected'`, `'recovering'` or `'disconnected'`, now. */
    get status() {
      return this.#native.status;
    }

    /** Whether `detach()` was called. */
    get detached() {
      return this.#native.detached;
    }

    /**
     * Writes all of `data` (a Buffer, a Uint8Array or a UTF-8 string) to the current
     * connection; SB_UNAVAILABLE while it is connecting or recovering.
     */
    async write(data) {
      let buf = data;
      if (typeof data === 'string') buf = Buffer.from(data, 'utf8');
      else if (data instanceof Uint8Array && !Buffer.isBuffer(data)) {
        buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      } else if (!Buffer.isBuffer(data)) {
        throw invalid(`write() takes a Buffer, a Uint8Array or a string, got ${describe(data)}`);
      }
      return this.#native.write(buf);
    }

    /**
     * Reads up to `max` bytes (default 64 KiB) once at least one is available, within
     * `options.timeout` if given; resolves with a Buffer, empty when the peer closed the
     * connection (the resource redials: `await waitReady()` and go on). A read that
     * times out or is cancelled by `detach()` has consumed nothing.
     */
    async read(max, options) {
      if (max !== undefined && max !== null && (!Number.isInteger(max) || max < 0 || max > 0xffffffff)) {
        throw invalid(`read() size must be a positive integer, got ${typeof max === 'number' ? max : describe(max)}`);
      }
      return this.#native.read(max ?? undefined, callTimeout(options, 'read'));
    }

    /**
     * Resolves when the resource is connected, across reconnects; SB_TIMEOUT after
     * `timeout` (milliseconds or "5s"), SB_UNAVAILABLE if it stopped.
     */
    async waitReady(timeout) {
      return this.#native.waitReady(timeoutFrom(timeout, 'waitReady'));
    }

    /** This consumer saw an error: the resource checks (and probes) its connection now. */
    reportFailure() {
      this.#native.reportFailure();
    }

    /**
     * The program's object of a resource of a registered type (see
     * `resources.registerType`), as its `connect` made it; SB_FAILED_PRECONDITION for a
     * `tcp`/`unix` resource, SB_UNAVAILABLE while connecting or recovering.
     */
    object() {
      const id = this.#native.objectId();
      return this.#resources[kObject](this.id, id);
    }

    /** Lets go of the resource; a read or wait in flight rejects with SB_CANCELLED. Safe twice. */
    detach() {
      this.#native.detach();
    }
  }

  if (typeof Symbol.dispose === 'symbol') {
    ResourceHandle.prototype[Symbol.dispose] = function dispose() {
      this.detach();
    };
  }

  const kObject = Symbol('object');

  /**
   * The manager's named shared connections (`manager.resources`). Each resource is one
   * physical connection created by id, dialled at once and redialled with backoff,
   * shared by the consumers attached to it, with its status in `get()`, in events
   * (`resource_state`, `resource_detached`, `resource_rebound`, with `event.resource`)
   * and in metrics (`switchboard_resource_*`).
   */
  class Resources {
    #native;
    #manager;
    /** Registered types' objects: type name → Map(id → object). */
    #types = new Map();

    /** @internal */
    constructor(nativeManager, manager) {
      this.#native = nativeManager.resources();
      this.#manager = manager;
    }

    /** The manager that owns them. */
    get manager() {
      return this.#manager;
    }

    /**
     * Creates resource `id` of `type` (`'tcp'`, `'unix'` or a registered type) with
     * `props`: `endpoint` and any pool keys in any spelling (`connectTimeout`,
     * `'health.interval'`, `{ backoff: { initial: 20 } }`, `probe`, `tcp`), and
     * `onConnect` (bytes sent on every new connection before it counts as connected).
     * Its connection is dialled at once, in the background. SB_INVALID_ARGUMENT names a
     * bad prop.
     */
    create(id, type, props) {
      checkString(id, 'resource id');
      checkString(type, 'resource type');
      this.#native.create(id, type, propsFrom(props, 'resource props'));
    }

    /** Attaches consumer `consumer` to resource `id`: a handle sharing its connection. */
    attach(id, consumer) {
      checkString(id, 'resource id');
      checkString(consumer, 'consumer name');
      return new ResourceHandle(this.#native.attach(id, consumer), this);
    }

    /**
     * Attaches `consumer` to the unnamed resource of `type` with `props`: shared by
     * every caller with equal props, closed when its last consumer detaches.
     */
    attachAnonymous(type, consumer, props) {
      checkString(type, 'resource type');
      checkString(consumer, 'consumer name');
      return new ResourceHandle(this.#native.attachAnonymous(type, propsFrom(props, 'resource props'), consumer), this);
    }

    /**
     * Updates resource `id` to `props` without dropping its consumers: the new
     * connection is opened first (a failure rejects and changes nothing), then swapped
     * in for every consumer (a `resource_rebound` event); the old one closes when the
     * calls still using it end. Runs off the event loop.
     */
    async update(id, props) {
      checkString(id, 'resource id');
      return this.#native.update(id, propsFrom(props, 'resource props'));
    }

    /**
     * Deletes resource `id`: SB_FAILED_PRECONDITION naming its consumers while any is
     * attached, unless `{ force: true }`, which detaches them (`resource_detached` events).
     */
    delete(id, options) {
      checkString(id, 'resource id');
      let force = false;
      if (options !== undefined && options !== null) {
        if (typeof options !== 'object' || Array.isArray(options)) {
          throw invalid(`delete() options must be an object such as { force: true }, got ${describe(options)}`);
        }
        force = options.force === true;
      }
      this.#native.delete(id, force);
    }

    /** A snapshot of resource `id` (named, or an anonymous one's `anonymous-<n>`). */
    get(id) {
      checkString(id, 'resource id');
      return infoFrom(this.#native.get(id));
    }

    /** Every resource, named and anonymous, sorted by id. */
    list() {
      return this.#native.list().map(infoFrom);
    }

    /** Resolves when resource `id` is connected (SB_TIMEOUT after `timeout`). Off the event loop. */
    async waitReady(id, timeout) {
      checkString(id, 'resource id');
      return this.#native.waitReady(id, timeoutFrom(timeout, 'waitReady'));
    }

    /** A consumer of resource `id` saw an error: check (and probe) it now. */
    reportFailure(id) {
      checkString(id, 'resource id');
      this.#native.reportFailure(id);
    }

    /**
     * Registers connector type `name` of the program's own objects, with the callbacks
     * a custom pool takes: `connect(endpoint)` makes the object (or a Promise of it),
     * `check(obj)` (optional) is the resource's probe, run on each health check
     * (`false`, a throw or a rejection replaces the object), `close(obj)` runs once for
     * every object let go. All run on the JS thread. `handle.object()` gives it back.
     */
    registerType(name, callbacks) {
      checkString(name, 'resource type name');
      if (callbacks === null || typeof callbacks !== 'object' || Array.isArray(callbacks)) {
        throw invalid(`registerType() takes { connect, check, close }, got ${describe(callbacks)}`);
      }
      const { connect, check, close } = callbacks;
      if (typeof connect !== 'function') {
        throw invalid(`registerType() connect must be a function (endpoint) => object, got ${describe(connect)}`);
      }
      for (const [what, fn] of [['check', check], ['close', close]]) {
        if (fn !== undefined && fn !== null && typeof fn !== 'function') {
          throw invalid(`registerType() ${what} must be a function, got ${describe(fn)}`);
        }
      }
      const objects = new Map();
      const dispatch = makeDispatch(name, { connect, check: check ?? null, close: close ?? null }, objects);
      this.#native.registerType(name, dispatch, typeof check === 'function');
      this.#types.set(name, objects);
    }

    /** @internal The object `objectId` of resource `id`'s type. */
    [kObject](id, objectId) {
      const type = this.#native.get(id).kind;
      const objects = this.#types.get(type);
      if (objects === undefined || !objects.has(objectId)) {
        const err = new Error(`resource ${JSON.stringify(id)}: its object ${objectId} was already closed`);
        err.code = 'SB_UNAVAILABLE';
        throw err;
      }
      return objects.get(objectId);
    }

    /** @internal Resolves once every callback queued so far has run. */
    [kFlush]() {
      return Promise.all([...this.#types.keys()].map((name) => flushThrough((token) => this.#native.flush(name, token))));
    }

    /** @internal No callback runs afterwards. */
    [kRelease]() {
      this.#native.releaseCallbacks();
    }
  }

  return { Resources, ResourceHandle, kFlush, kRelease };
};
