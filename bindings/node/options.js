'use strict';
// Argument shaping: options objects as the core's configuration keys, durations, and
// the checks and descriptions of arguments used in error messages.

const { invalid } = require('./errors');

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value) && Object.keys(value).length === 0) return 'an empty object';
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

/**
 * Bytes as the core's text form with C escapes (`\r`, `\n`, `\t`, `\\`, `\xNN`), so that a
 * Buffer can be given for `probeSend` / `probeExpect`.
 */
function escapeBytes(bytes) {
  let out = '';
  for (const b of bytes) {
    if (b === 0x5c) out += '\\\\';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Options object → { key: string } for the core's Config, which validates keys and values. */
function configFrom(options, what) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`${what} must be an object of configuration keys, got ${describe(options)}`);
  }
  const out = {};
  addConfig(out, '', options);
  return out;
}

function isPlainObject(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Adds `options`' keys under `prefix` to `out`; a plain object value is a section:
 * `{ breaker: { failureThreshold: 1 } }` is `'breaker.failureThreshold': 1`.
 */
function addConfig(out, prefix, options) {
  for (const [name, value] of Object.entries(options)) {
    const key = prefix + name;
    if (value === undefined || value === null) continue;
    // A section of keys; an empty one is a mistake (a value given as {}), not a no-op.
    if (isPlainObject(value) && Object.keys(value).length > 0) {
      addConfig(out, `${key}.`, value);
      continue;
    }
    switch (typeof value) {
      case 'string':
        out[key] = value;
        break;
      case 'number':
      case 'bigint':
        out[key] = String(value);
        break;
      case 'boolean':
        out[key] = value ? 'true' : 'false';
        break;
      case 'object':
        if (value instanceof Uint8Array) {
          out[key] = escapeBytes(value);
          break;
        }
      // falls through
      default:
        throw invalid(`${key} must be a number, a string, a boolean, a Buffer or an object of keys, got ${describe(value)}`);
    }
  }
}

/** A duration (number of milliseconds or a string such as "250ms") as the core parses it. */
function durationFrom(value, what) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value;
  throw invalid(`${what} must be a number of milliseconds or a string such as "250ms", got ${describe(value)}`);
}

/** The `timeout` of a read/write options object, as the core parses it. */
function callTimeout(options, what) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`${what}() options must be an object such as { timeout: 250 }, got ${describe(options)}`);
  }
  return durationFrom(options.timeout, `${what} timeout`);
}

function checkString(value, what) {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, got ${describe(value)}`);
  return value;
}

module.exports = { describe, escapeBytes, configFrom, isPlainObject, durationFrom, callTimeout, checkString };
