'use strict';
// Custom connectors: the program's own objects as a pool's (or a resource type's)
// connections, and the barriers that flush their callbacks.
//
// A custom pool's connections are the program's own JS values. They stay on the JS
// thread in a Map keyed by a number; the native pool only holds the numbers. The
// native side calls `dispatch(kind, endpoint, id, token)` on the JS thread through a
// weak threadsafe function; connect and check answer with `native.settleCall(token, ...)`.

const native = require('./native');
const { ErrorCode, KNOWN_CODES, invalid, messageOf } = require('./errors');
const { describe } = require('./options');

const CONNECT = 0;
const CHECK = 1;
const CLOSE = 2;
const BARRIER = 3;
/** How long `manager.close()` waits for the last queued close callbacks. */
const FLUSH_LIMIT_MS = 5000;
const barriers = new Map();
let nextBarrier = 1;

function callbackError(pool, what, err) {
  const code = err && KNOWN_CODES.has(err.code) ? err.code : ErrorCode.Unavailable;
  return [code, `pool ${JSON.stringify(pool)}: the ${what} callback failed: ${messageOf(err)}`];
}

function warnCallback(pool, what, err) {
  process.emitWarning(`pool ${JSON.stringify(pool)}: the ${what} callback threw: ${messageOf(err)}`, {
    code: 'SWITCHBOARD_CALLBACK',
  });
}

/** Calls `fn(arg)` and returns a promise of its result, whether it returns or throws. */
function promiseOf(fn, arg) {
  try {
    return Promise.resolve(fn(arg));
  } catch (err) {
    return Promise.reject(err);
  }
}

function makeDispatch(name, { connect, check, close }, objects) {
  let nextId = 1;
  const closeObject = (id) => {
    if (!objects.has(id)) return;
    const obj = objects.get(id);
    objects.delete(id);
    if (close) promiseOf(close, obj).catch((err) => warnCallback(name, 'close', err));
  };
  const settle = (token, ok, id, err, what) => {
    if (ok) return native.settleCall(token, true, id, null, null);
    const [code, message] = callbackError(name, what, err);
    return native.settleCall(token, false, 0, code, message);
  };
  return function dispatch(kind, endpoint, id, token) {
    try {
      switch (kind) {
        case CONNECT:
          promiseOf(connect, endpoint).then(
            (obj) => {
              const newId = nextId++;
              objects.set(newId, obj);
              // Nobody waits any more (cancelled, timed out, closed): let it go.
              if (!settle(token, true, newId)) closeObject(newId);
            },
            (err) => settle(token, false, 0, err, 'connect'),
          ).catch((err) => warnCallback(name, 'connect', err));
          break;
        case CHECK:
          if (!objects.has(id)) {
            settle(token, false, 0, new Error(`object ${id} is unknown`), 'check');
            break;
          }
          promiseOf(check, objects.get(id)).then(
            (ok) => {
              if (ok === false) settle(token, false, 0, new Error('it returned false'), 'check');
              else settle(token, true, 0);
            },
            (err) => settle(token, false, 0, err, 'check'),
          ).catch((err) => warnCallback(name, 'check', err));
          break;
        case CLOSE:
          closeObject(id);
          break;
        case BARRIER:
          barrierReached(token);
          break;
        default:
          break;
      }
    } catch (err) {
      // Nothing may be thrown back into the native caller.
      warnCallback(name, 'dispatch', err);
    }
  };
}

/** A barrier queued by `flushThrough` reached the JS thread. */
function barrierReached(token) {
  const done = barriers.get(token);
  barriers.delete(token);
  if (done) done();
}

/**
 * Resolves once every callback queued so far through one custom bridge has run on the
 * JS thread: `queue(token)` queues a barrier (false if it could not).
 */
function flushThrough(queue) {
  return new Promise((resolve) => {
    const token = nextBarrier++;
    const timer = setTimeout(() => {
      barriers.delete(token);
      resolve();
    }, FLUSH_LIMIT_MS);
    // This timer (not unref'd) keeps Node alive until the barrier arrives through the
    // weak threadsafe function, which alone would not.
    barriers.set(token, () => {
      clearTimeout(timer);
      resolve();
    });
    if (!queue(token)) barriers.get(token)();
  });
}

/** Splits pool options into the program's callbacks and configuration keys. */
function splitCallbacks(options) {
  if (options === undefined || options === null || typeof options !== 'object' || Array.isArray(options)) {
    return [null, options];
  }
  const { connect, check, close, ...rest } = options;
  if (connect === undefined && check === undefined && close === undefined) return [null, options];
  if (typeof connect !== 'function') {
    throw invalid(`pool option connect must be a function (endpoint) => object, got ${describe(connect)}`);
  }
  for (const [what, fn] of [['check', check], ['close', close]]) {
    if (fn !== undefined && fn !== null && typeof fn !== 'function') {
      throw invalid(`pool option ${what} must be a function, got ${describe(fn)}`);
    }
  }
  return [{ connect, check: check ?? null, close: close ?? null }, rest];
}

module.exports = { makeDispatch, barrierReached, flushThrough, splitCallbacks };
