// The Node peer of the hub benchmark (core/benches/hub.rs): a `ws` server that keeps its
// clients in a Set and broadcasts with a loop over it, as a Node program does today.
// Prints `PORT <n>`; on {"type":"bench","count":M} from a client it sends M messages
// to every client; {"type":"quit"} ends it.
'use strict';
const { WebSocketServer } = require('ws');

const pad = 'x'.repeat(60);
const payload = `{"type":"data","topic":"bench","data":"${pad}"}`;
const clients = new Set();
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, backlog: 1024, perMessageDeflate: false });
wss.on('listening', () => process.stdout.write(`PORT ${wss.address().port}\n`));
wss.on('connection', (ws) => {
  clients.add(ws);
  ws.send('{"type":"welcome"}');
  ws.on('close', () => clients.delete(ws));
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw); } catch { return; }
    if (m.type === 'bench') {
      for (let i = 0; i < (m.count || 1); i++) {
        for (const c of clients) c.send(payload);
      }
    } else if (m.type === 'quit') {
      process.exit(0);
    }
  });
});
