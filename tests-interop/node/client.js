#!/usr/bin/env node
'use strict';
// Node `ws` interop client: same checks as tests-interop/python/client.py, plus a
// fragmented text message whose UTF-8 character is split across fragments.
// Prints one JSON line; exit 1 on mismatch, 2 on connection failure.
// Usage: node client.js URI [--timeout SECS] [--no-compression] [deflate flags]
const WebSocket = require('ws');
const {
  SIZES, CLOSE_CODE, CLOSE_REASON, binaryPayload, textPayload, parseArgs, DEFLATE_SPEC,
  deflateOption, checkNegotiated,
} = require('./common');

const a = parseArgs(process.argv.slice(2), { timeout: 'int', ...DEFLATE_SPEC });
const uri = a._[0];
if (!uri) { console.error('usage: client.js URI [options]'); process.exit(64); }
const t0 = Date.now();
const summary = {
  peer: 'node-ws-client', uri, compression: !a['no-compression'], failures: [],
};
let checks = 0;
const check = (cond, what) => { checks++; if (!cond) summary.failures.push(what); };
let finished = false;
function finish(code) {
  finished = true;
  summary.checks = checks;
  summary.elapsed_ms = Date.now() - t0;
  summary.ok = summary.failures.length === 0;
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(code || (summary.ok ? 0 : 1));
}
setTimeout(() => { summary.failures.push('error: timeout'); finish(2); },
  (a.timeout || 60) * 1000).unref();

const ws = new WebSocket(uri, { perMessageDeflate: deflateOption(a), maxPayload: 64 << 20 });
let extHeader = null;
ws.on('upgrade', (res) => { extHeader = res.headers['sec-websocket-extensions'] || null; });
// Incoming messages are queued; `next()` resolves with {data, isBinary}.
const queue = []; const waiters = [];
ws.on('message', (data, isBinary) => {
  const m = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary };
  if (waiters.length) waiters.shift()(m); else queue.push(m);
});
const next = () => new Promise((res) => (queue.length ? res(queue.shift()) : waiters.push(res)));
let closeInfo = null; let closing = false;
const closed = new Promise((res) => ws.on('close', (code, reason) => {
  closeInfo = { code, reason: reason.toString('utf8') };
  if (!closing) {
    // The server closed first: every pending step fails.
    summary.close = closeInfo;
    summary.failures.push(`connection closed by server early: ${code} ${closeInfo.reason}`);
    finish(2);
  }
  res();
}));
// Node exits when nothing is pending; never let that pass silently.
process.on('exit', (code) => {
  if (!finished) {
    summary.failures.push('error: exited with the test unfinished');
    process.stdout.write(JSON.stringify({ ...summary, ok: false }) + '\n');
    process.exitCode = code || 2;
  }
});
ws.on('error', (e) => { summary.failures.push(`error: ${e.message}`); finish(2); });
const send = (data, opts) => new Promise((res, rej) => ws.send(data, opts, (e) => (e ? rej(e) : res())));

ws.on('open', async () => {
  try {
    summary.extensions = extHeader;
    const problems = checkNegotiated(extHeader, a);
    check(problems.length === 0, problems.join('; '));

    for (const size of SIZES) {
      const t = textPayload(size);
      await send(t, { binary: false });
      let m = await next();
      check(!m.isBinary && m.data.equals(t), `text ${size}: echo mismatch (binary=${m.isBinary}, len ${m.data.length})`);
      const b = binaryPayload(size);
      await send(b, { binary: true });
      m = await next();
      check(m.isBinary && m.data.equals(b), `binary ${size}: echo mismatch (binary=${m.isBinary}, len ${m.data.length})`);
    }

    // Fragmented text, with 'é' (c3 a9) split across two fragments.
    const full = Buffer.concat([Buffer.from('frag-one h\u00e9 frag-two \u20ac ', 'utf8'), textPayload(70000)]);
    const cut1 = full.indexOf(0xa9); // second byte of é: split before it
    const frags = [full.subarray(0, cut1), full.subarray(cut1, cut1), full.subarray(cut1, 20), full.subarray(20)];
    for (let i = 0; i < frags.length; i++) {
      await send(frags[i], { binary: false, fin: i === frags.length - 1 });
    }
    let m = await next();
    check(!m.isBinary && m.data.equals(full), 'fragmented text (split UTF-8): echo mismatch');
    const bparts = [binaryPayload(3), binaryPayload(70000), Buffer.alloc(0), binaryPayload(126)];
    for (let i = 0; i < bparts.length; i++) {
      await send(bparts[i], { binary: true, fin: i === bparts.length - 1 });
    }
    m = await next();
    check(m.isBinary && m.data.equals(Buffer.concat(bparts)), 'fragmented binary: echo mismatch');

    const pong = new Promise((res) => ws.once('pong', res));
    ws.ping(Buffer.from('interop-ping'));
    const pdata = await pong;
    check(pdata.toString() === 'interop-ping', 'pong payload mismatch');

    closing = true;
    ws.close(CLOSE_CODE, CLOSE_REASON);
    await closed;
    summary.close = closeInfo;
    check(closeInfo && closeInfo.code === CLOSE_CODE,
      `server close frame: expected code ${CLOSE_CODE}, got ${closeInfo && closeInfo.code}`);
    finish(0);
  } catch (e) {
    summary.failures.push(`error: ${e && e.message}`);
    finish(2);
  }
});
