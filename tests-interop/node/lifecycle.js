#!/usr/bin/env node
'use strict';
// Connection-lifecycle scenario against our Rust push_server (Node `ws`).
//
// keepalive-ping: the server's handler only sends ("tick N" every interval) and never
// receives. For --duration seconds we ping every 500 ms and require each pong within
// 500 ms; the messages must keep arriving in order. Then close(1000) must be answered with
// the server's 1000 within 2 s.
// Prints one JSON line {"ok": bool, "failures": [...], "note": "...", ...}; exit 1 on a
// failed check, 2 on an unexpected error.
// Usage: node lifecycle.js keepalive-ping --uri URI [--no-compression] [--duration SECS]
//        [--max-gap-ms N]
const WebSocket = require('ws');
const { parseArgs } = require('./common');

const PING_EVERY_MS = 500;
const PONG_WITHIN_MS = 500;
const CLOSE_WITHIN_MS = 2000;

const a = parseArgs(process.argv.slice(2), {
  uri: 'str', 'no-compression': 'bool', duration: 'int', 'max-gap-ms': 'int',
});
const scenario = a._[0];
if (scenario !== 'keepalive-ping' || !a.uri) {
  console.error('usage: lifecycle.js keepalive-ping --uri URI [options]');
  process.exit(64);
}
const durationMs = (a.duration || 5) * 1000;
const maxGapMs = a['max-gap-ms'] || 1000;
const t0 = Date.now();
const summary = { peer: 'node-ws', scenario, uri: a.uri, failures: [] };
let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  summary.elapsed_ms = Date.now() - t0;
  summary.ok = summary.failures.length === 0;
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(code || (summary.ok ? 0 : 1));
}
setTimeout(() => { summary.failures.push('error: timeout'); finish(2); }, durationMs + 20000).unref();

const ws = new WebSocket(a.uri, { perMessageDeflate: !a['no-compression'] });
let start = 0;
let last = 0;
let count = 0;
let maxGap = 0;
let phase = 'connecting'; // then 'receiving', 'closing'
const pings = new Map(); // payload -> { n, sent, timer }
const missed = []; // pings without a pong in time: { n, atMs }
const rtts = [];
let sentPings = 0;

ws.on('message', (data, isBinary) => {
  const now = Date.now();
  if (phase !== 'receiving') return;
  maxGap = Math.max(maxGap, now - last);
  last = now;
  const text = data.toString('utf8');
  if (isBinary || text !== `tick ${count}`) {
    summary.failures.push(`message ${count}: expected text 'tick ${count}', got ${isBinary ? 'binary' : 'text'} ${JSON.stringify(text.slice(0, 40))}`);
    phase = 'failed';
    ws.terminate();
    return;
  }
  count++;
});

ws.on('pong', (data) => {
  const p = pings.get(data.toString());
  if (!p) return; // a late pong, already counted as missed
  clearTimeout(p.timer);
  pings.delete(data.toString());
  rtts.push(Date.now() - p.sent);
});

function sendPing() {
  const n = ++sentPings;
  const payload = `lifecycle-${n}`;
  const sent = Date.now();
  const timer = setTimeout(() => {
    pings.delete(payload);
    missed.push({ n, atMs: sent - start });
  }, PONG_WITHIN_MS);
  pings.set(payload, { n, sent, timer });
  ws.ping(Buffer.from(payload));
}

let closeInfo = null;
ws.on('close', (code, reason) => {
  closeInfo = { code, reason: reason.toString('utf8') };
  summary.close = closeInfo;
  if (phase === 'receiving') {
    summary.failures.push(`connection closed after ${((Date.now() - start) / 1000).toFixed(2)} s and ${count} messages: ${code} ${JSON.stringify(closeInfo.reason)}`);
    report();
    finish(1);
  } else if (phase === 'closing') {
    report();
    if (code !== 1000) {
      summary.failures.push(`closing handshake: expected the server's 1000, got ${code} ${JSON.stringify(closeInfo.reason)}${code === 1006 ? ' (no close frame)' : ''}`);
    }
    finish(0);
  } else {
    report();
    finish(1);
  }
});
ws.on('error', (e) => { summary.failures.push(`error: ${e.message}`); report(); finish(2); });
process.on('exit', (code) => {
  if (!finished) {
    summary.failures.push('error: exited with the test unfinished');
    process.stdout.write(JSON.stringify({ ...summary, ok: false }) + '\n');
    process.exitCode = code || 2;
  }
});

// The ping / message results, once (at the end, however it ends).
let reported = false;
function report() {
  if (reported) return;
  reported = true;
  for (const p of pings.values()) clearTimeout(p.timer);
  summary.messages = count;
  summary.max_gap_ms = maxGap;
  summary.pings = sentPings;
  summary.pongs_in_time = rtts.length;
  summary.max_rtt_ms = rtts.length ? Math.max(...rtts) : null;
  if (missed.length) {
    const first = missed.slice(0, 3).map((m) => `ping ${m.n} sent at ${(m.atMs / 1000).toFixed(2)} s`).join(', ');
    summary.failures.push(`${missed.length}/${sentPings} pings had no pong within ${PONG_WITHIN_MS} ms (${first})`);
  }
  summary.note = `${count} msgs, max gap ${maxGap} ms, ${rtts.length}/${sentPings} pongs in time `
    + `(max rtt ${summary.max_rtt_ms} ms), close ${closeInfo && closeInfo.code}`;
}

ws.on('open', () => {
  phase = 'receiving';
  start = last = Date.now();
  const pinger = setInterval(sendPing, PING_EVERY_MS);
  setTimeout(() => {
    clearInterval(pinger);
    if (phase !== 'receiving') return;
    const now = Date.now();
    maxGap = Math.max(maxGap, now - last);
    if (count === 0 || maxGap > maxGapMs) {
      summary.failures.push(`messages stopped arriving: ${count} in ${((now - start) / 1000).toFixed(2)} s, longest gap ${maxGap} ms`);
    }
    // Let the last ping's pong (or its timeout) land before closing.
    setTimeout(() => {
      phase = 'closing';
      ws.close(1000);
      setTimeout(() => {
        report();
        summary.failures.push(`closing handshake: no close frame from the server within ${CLOSE_WITHIN_MS} ms`);
        ws.terminate();
        finish(1);
      }, CLOSE_WITHIN_MS).unref();
    }, PONG_WITHIN_MS);
  }, durationMs);
});
