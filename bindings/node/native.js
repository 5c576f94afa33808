'use strict';
// The native addon (switchboard.node, built from src/ by napi-rs), loaded once for the
// package's modules.

const path = require('node:path');

function loadNative() {
  const file = path.join(__dirname, 'switchboard.node');
  try {
    return require(file);
  } catch (cause) {
    const err = new Error(
      `switchboard: cannot load the native addon ${file} (build it with \`make build-node\`): ${cause.message}`,
      { cause },
    );
    err.code = cause.code || 'SB_INTERNAL';
    throw err;
  }
}

const native = loadNative();

module.exports = native;
