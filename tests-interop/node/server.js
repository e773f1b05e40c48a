#!/usr/bin/env node
'use strict';
// Node `ws` interop echo server. Echoes every message (same type, same bytes).
// Prints {"event":"listening","port":N} once bound, then one JSON line per
// finished connection with the close code/reason received from the client.
// Usage: node server.js [--host H] [--port N] [--no-compression]
//        [--server-max-window-bits N] [--client-max-window-bits N]
//        [--server-no-context-takeover] [--client-no-context-takeover]
const { WebSocketServer } = require('ws');
const { parseArgs, DEFLATE_SPEC, deflateOption } = require('./common');

const a = parseArgs(process.argv.slice(2), { host: 'str', port: 'int', ...DEFLATE_SPEC });
const wss = new WebSocketServer({
  host: a.host || '127.0.0.1',
  port: a.port || 0,
  maxPayload: 64 << 20,
  perMessageDeflate: deflateOption(a),
});
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

wss.on('listening', () => {
  emit({ event: 'listening', peer: 'node-ws-server', port: wss.address().port });
});
wss.on('connection', (ws, req) => {
  let n = 0;
  const offered = req.headers['sec-websocket-extensions'] || null;
  ws.on('message', (data, isBinary) => {
    n++;
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', (e) => emit({ event: 'error', message: String(e) }));
  ws.on('close', (code, reason) => {
    emit({
      event: 'closed', messages: n, extensions: offered,
      negotiated: ws.extensions || null, code, reason: reason.toString('utf8'),
    });
  });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
