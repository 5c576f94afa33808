'use strict';
// The manager's events (`manager.pollEvent()`, `'event'`) as the program sees them.

/** A native event as the program sees it. */
function eventFrom(e) {
  return {
    kind: e.kind,
    pool: e.pool,
    endpoint: e.endpoint ?? null,
    connectionId: e.connectionId ?? null,
    sessionId: e.sessionId ?? null,
    stream: e.stream ?? null,
    oldState: e.oldState ?? null,
    newState: e.newState ?? null,
    ageMs: e.ageMs ?? null,
    topic: e.topic ?? null,
    user: e.user ?? null,
    reason: e.reason ?? null,
    resource: e.resource ?? null,
    message: e.message,
    time: new Date(e.time),
  };
}

module.exports = { eventFrom };
