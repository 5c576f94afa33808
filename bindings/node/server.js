'use strict';
// The embedded server's hub (`manager.hub`): what WebSocket clients of the server
// (`server.listen`) send to the program. Every behaviour is core's (see
// bindings/node/src/server.rs); this file shapes the messages and gives the hub an
// EventEmitter face.

const { EventEmitter } = require('node:events');

const kRelease = Symbol('release');

module.exports = function makeServer({ invalid, describe, messageOf }) {
  /**
   * One message a hub client sent (any envelope type but the hub's own `subscribe`,
   * `unsubscribe`, `ping`, `pong` and `heartbeat`).
   */
  class HubMessage {
    /** @internal */
    constructor(m) {
      /** The registry id of the client that sent it (`registry.send(id, ...)` answers it). */
      this.connectionId = m.connectionId;
      /** The client's user (from the registry's auth hook), or null. */
      this.user = m.user ?? null;
      /** The envelope's `type` (`data`, `chat`, ...). */
      this.type = m.kind;
      /** The envelope's `topic`, or null. */
      this.topic = m.topic ?? null;
      /** The whole JSON text as the client sent it. */
      this.text = m.text;
    }

    /** The envelope parsed: `{ type, topic?, data?, timestamp?, ... }`. */
    json() {
      return JSON.parse(this.text);
    }
  }

  /**
   * The server's WebSocket hub (`manager.hub`). Pull messages with
   * `await hub.recv(timeoutMs)`, or listen: while `'message'` has a listener, every
   * message is emitted as `'message'` on the JS thread instead of queued (through a
   * weak threadsafe function: listening never keeps Node alive). Without a server
   * nothing ever arrives.
   */
  class Hub extends EventEmitter {
    #native;
    #manager;
    #listening = false;

    /** @internal */
    constructor(nativeManager, manager) {
      super();
      this.#native = nativeManager.hub();
      this.#manager = manager;
      this.#hooks();
    }

    #hooks() {
      this.on('newListener', (name) => {
        if (name === 'message' && !this.#listening && !this.#manager.closed) {
          this.#native.setHandler((m) => this.#deliver(m));
          this.#listening = true;
        }
      });
      this.on('removeListener', (name) => {
        if (name === 'message' && this.listenerCount('message') === 0) this.#stop();
      });
    }

    #stop() {
      if (!this.#listening) return;
      this.#listening = false;
      this.#native.setHandler(null);
    }

    #deliver(m) {
      try {
        this.emit('message', new HubMessage(m));
      } catch (err) {
        process.emitWarning(`a hub 'message' listener threw: ${messageOf(err)}`, { code: 'SWITCHBOARD_CALLBACK' });
      }
    }

    /** The manager it belongs to. */
    get manager() {
      return this.#manager;
    }

    /**
     * The next message, or `null` when none came within `timeoutMs` (omitted: wait
     * for one). Waits off the event loop. Rejects with SB_UNAVAILABLE once the manager
     * is closed. While `'message'` has listeners they take every message.
     */
    async recv(timeoutMs) {
      let t = null;
      if (timeoutMs !== undefined && timeoutMs !== null && timeoutMs !== Infinity) {
        if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
          throw invalid(`hub.recv() timeoutMs must be a number of milliseconds >= 0, got ${describe(timeoutMs)}`);
        }
        t = timeoutMs;
      }
      const m = await this.#native.recv(t);
      return m === null || m === undefined ? null : new HubMessage(m);
    }

    /** Messages dropped because nobody read them and the queue (`server.hubQueue`) was full. */
    get dropped() {
      return this.#native.dropped;
    }

    /** Messages waiting to be read. */
    get queued() {
      return this.#native.queued;
    }

    /** EventEmitter's; afterwards a `'message'` listener still starts delivery. */
    removeAllListeners(name) {
      super.removeAllListeners(...arguments);
      if (name === undefined) this.#hooks();
      if (this.listenerCount('message') === 0) this.#stop();
      return this;
    }

    /** @internal No listener is called afterwards (closing). */
    [kRelease]() {
      this.#listening = false;
      this.#native.release();
    }
  }

  return { Hub, HubMessage, kRelease };
};
