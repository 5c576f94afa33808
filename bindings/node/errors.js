'use strict';
// switchboard's errors: `Error`s whose `code` is one of the core's `SB_*` names.

const native = require('./native');

/**
 * The error codes, by name: `ErrorCode.Timeout === 'SB_TIMEOUT'`. Every error thrown
 * or rejected by switchboard has one of these as its `code`.
 */
const ErrorCode = Object.freeze(Object.fromEntries(native.errorCodes()));
const KNOWN_CODES = new Set(Object.values(ErrorCode));

function sbError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

function invalid(message) {
  return sbError(ErrorCode.InvalidArgument, message);
}

function messageOf(err) {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return 'a value that cannot be shown';
  }
}

/** Whether `err` is an error from switchboard (its `code` is one of `ErrorCode`). */
function isSwitchboardError(err) {
  return err instanceof Error && KNOWN_CODES.has(err.code);
}

module.exports = { ErrorCode, KNOWN_CODES, sbError, invalid, messageOf, isSwitchboardError };
