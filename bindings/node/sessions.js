'use strict';
// The streaming sessions (`manager.sessions`): catalog, sessions, offsets.

const { invalid } = require('./errors');
const { describe, checkString } = require('./options');

function streamFrom(st) {
  return {
    name: st.name,
    position: st.position,
    committed: st.committed ?? null,
    dataPacketsRead: st.dataPacketsRead,
    dataBytesRead: st.dataBytesRead,
    dataPacketsDelivered: st.dataPacketsDelivered,
    dataBytesDelivered: st.dataBytesDelivered,
    essentialPacketsRead: st.essentialPacketsRead,
    essentialPacketsDelivered: st.essentialPacketsDelivered,
  };
}

function sessionFrom(s) {
  return {
    id: s.id,
    dataSource: s.dataSource,
    sessionKey: s.sessionKey,
    excludeMainStream: s.excludeMainStream,
    streams: s.streams.map(streamFrom),
    routerMessagesReceived: s.routerMessagesReceived,
    routerBytesReceived: s.routerBytesReceived,
  };
}

function checkNumber(value, what) {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw invalid(`${what} must be a number, got ${describe(value)}`);
  }
  return value;
}

function checkStrings(value, what) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw invalid(`${what} must be an array of strings, got ${describe(value)}`);
  }
  return value;
}

function checkBool(value, what) {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalid(`${what} must be a boolean, got ${describe(value)}`);
  return value;
}

/**
 * The streaming sessions of a manager (`manager.sessions`): a catalog of data sources
 * and session keys, sessions with per-stream offsets (position = next to deliver,
 * committed = safe to resume from), their counters, and the offset store (in memory,
 * or durable with the manager option `offsetsPath`). Calls that may touch the store's
 * disk (`open`, `resume`, `addStream`, `commit`, `committed`, `flush`) return promises
 * and run off the event loop; the others are synchronous. Errors carry `SB_*` codes.
 */
class Sessions {
  #native;
  #manager;

  /** @internal */
  constructor(nativeManager, manager) {
    this.#native = nativeManager;
    this.#manager = manager;
  }

  /** The manager they belong to. */
  get manager() {
    return this.#manager;
  }

  /** Registers `sessionKey` of `dataSource`; true if it was new. */
  register(dataSource, sessionKey) {
    return this.#native.sessionRegister(checkString(dataSource, 'dataSource'), checkString(sessionKey, 'sessionKey'));
  }

  /** Unregisters it; true if it was there. SB_FAILED_PRECONDITION while sessions are open on it. */
  unregister(dataSource, sessionKey) {
    return this.#native.sessionUnregister(checkString(dataSource, 'dataSource'), checkString(sessionKey, 'sessionKey'));
  }

  /** Whether `sessionKey` of `dataSource` is registered. */
  isRegistered(dataSource, sessionKey) {
    return this.#native.sessionIsRegistered(checkString(dataSource, 'dataSource'), checkString(sessionKey, 'sessionKey'));
  }

  /** Every registered `[dataSource, sessionKey]`, sorted. */
  catalog() {
    return this.#native.sessionCatalog().map(([d, k]) => [d, k]);
  }

  /**
   * Opens a session on a registered key; resolves with its id (unique in the process).
   * `streamOffsets` has one offset per stream, or is empty to start every stream at 0.
   */
  async open(details) {
    if (details === null || typeof details !== 'object' || Array.isArray(details)) {
      throw invalid(`open() takes { dataSource, sessionKey, streams?, streamOffsets?, excludeMainStream? }, got ${describe(details)}`);
    }
    const { dataSource, sessionKey, streams, streamOffsets, excludeMainStream } = details;
    const offsets = streamOffsets === undefined || streamOffsets === null ? [] : streamOffsets;
    if (!Array.isArray(offsets) || !offsets.every((o) => typeof o === 'number')) {
      throw invalid(`streamOffsets must be an array of numbers, got ${describe(offsets)}`);
    }
    return this.#native.sessionOpen(
      checkString(dataSource, 'dataSource'),
      checkString(sessionKey, 'sessionKey'),
      checkStrings(streams, 'streams'),
      offsets,
      checkBool(excludeMainStream, 'excludeMainStream'),
    );
  }

  /** Opens a session whose streams start at their committed offsets (0 if none); resolves with its id. */
  async resume(dataSource, sessionKey, streams, excludeMainStream) {
    return this.#native.sessionResume(
      checkString(dataSource, 'dataSource'),
      checkString(sessionKey, 'sessionKey'),
      checkStrings(streams, 'streams'),
      checkBool(excludeMainStream, 'excludeMainStream'),
    );
  }

  /** The session's details, streams (position, committed, counters) and router counters. */
  get(id) {
    return sessionFrom(this.#native.sessionGet(checkNumber(id, 'session id')));
  }

  /** Closes the session (SB_NOT_FOUND if it is not open); its commits stay in the store. */
  close(id) {
    this.#native.sessionClose(checkNumber(id, 'session id'));
  }

  /** Open sessions sorted by id, optionally only those of `{ dataSource, sessionKey }`. */
  list(filter) {
    let dataSource;
    let sessionKey;
    if (filter !== undefined && filter !== null) {
      if (typeof filter !== 'object' || Array.isArray(filter)) {
        throw invalid(`list() takes { dataSource?, sessionKey? }, got ${describe(filter)}`);
      }
      if (filter.dataSource !== undefined && filter.dataSource !== null) dataSource = checkString(filter.dataSource, 'dataSource');
      if (filter.sessionKey !== undefined && filter.sessionKey !== null) sessionKey = checkString(filter.sessionKey, 'sessionKey');
    }
    return this.#native.sessionList(dataSource, sessionKey).map(sessionFrom);
  }

  /** Adds `stream` to a live session at `offset` (default 0). */
  async addStream(id, stream, offset = 0) {
    return this.#native.sessionAddStream(checkNumber(id, 'session id'), checkString(stream, 'stream'), checkNumber(offset, 'offset'));
  }

  /** Removes `stream` from a live session. */
  removeStream(id, stream) {
    this.#native.sessionRemoveStream(checkNumber(id, 'session id'), checkString(stream, 'stream'));
  }

  /** Counts `packets` data packets (`bytes` bytes, `essential` of them essential) read from the source for `stream`. */
  recordRead(id, stream, packets = 1, bytes = 0, essential = 0) {
    this.#native.sessionRecordRead(
      checkNumber(id, 'session id'),
      checkString(stream, 'stream'),
      checkNumber(packets, 'packets'),
      checkNumber(bytes, 'bytes'),
      checkNumber(essential, 'essential'),
    );
  }

  /** Counts packets delivered to the client on `stream` and advances its position by `packets`; returns the new position. */
  deliver(id, stream, packets = 1, bytes = 0, essential = 0) {
    return this.#native.sessionDeliver(
      checkNumber(id, 'session id'),
      checkString(stream, 'stream'),
      checkNumber(packets, 'packets'),
      checkNumber(bytes, 'bytes'),
      checkNumber(essential, 'essential'),
    );
  }

  /** Counts `messages` router (control) messages of `bytes` bytes received on the session. */
  recordRouter(id, messages = 1, bytes = 0) {
    this.#native.sessionRecordRouter(checkNumber(id, 'session id'), checkNumber(messages, 'messages'), checkNumber(bytes, 'bytes'));
  }

  /** The next offset to deliver on `stream`. */
  position(id, stream) {
    return this.#native.sessionPosition(checkNumber(id, 'session id'), checkString(stream, 'stream'));
  }

  /**
   * Commits `offset` of `stream` to the offset store (with a durable store and
   * `offsets.sync = every_commit`, on disk when it resolves). Never backwards:
   * SB_FAILED_PRECONDITION unless `seek()` rewound first.
   */
  async commit(id, stream, offset) {
    return this.#native.sessionCommit(checkNumber(id, 'session id'), checkString(stream, 'stream'), checkNumber(offset, 'offset'));
  }

  /** Sets `stream`'s position to `offset` and lets the next commit go down to it; stores nothing. */
  seek(id, stream, offset) {
    this.#native.sessionSeek(checkNumber(id, 'session id'), checkString(stream, 'stream'), checkNumber(offset, 'offset'));
  }

  /** The offset committed in the store for `stream` of `dataSource`/`sessionKey`, or `null`. */
  async committed(dataSource, sessionKey, stream) {
    const c = await this.#native.sessionCommitted(
      checkString(dataSource, 'dataSource'),
      checkString(sessionKey, 'sessionKey'),
      checkString(stream, 'stream'),
    );
    return c ?? null;
  }

  /** Writes commits buffered by `offsets.sync = interval` now. */
  async flush() {
    return this.#native.sessionFlush();
  }

  /** Sessions open now (0 after the manager closed). */
  get openCount() {
    return this.#native.sessionOpenCount();
  }

  /** The offset store: `'memory'` or `'durable'`. */
  get storeKind() {
    return this.#native.sessionStoreKind();
  }

  /** Commits accepted but not yet on disk (`offsets.sync = interval`; else 0). */
  get bufferedCommits() {
    return this.#native.sessionBufferedCommits();
  }
}

module.exports = { Sessions };
