#!/usr/bin/env node
'use strict';
// Chromium interop client: a real browser's WebSocket against an echo server.
//
//   node run.js URI [--no-compression] [--timeout SECS] [--chromium PATH] [--keep-profile]
//
// Serves page.html from a throwaway HTTP server on 127.0.0.1, starts headless
// Chromium on it (no npm packages, no driver protocol: the page POSTs its result
// back), waits for the result, stops the browser, prints ONE JSON line last on
// stdout (the interop clients' summary format, README.md) and exits 0 if ok,
// 1 on a mismatch, 2 if the browser or the page never reported.
// Chromium is $WS_CHROMIUM, else /usr/bin/chromium (install: setup.sh).

const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { parseArgs } = require('../node/common');

const args = parseArgs(process.argv.slice(2), {
  'no-compression': 'bool', timeout: 'int', chromium: 'str', 'keep-profile': 'bool',
});
const uri = args._[0];
if (!uri || args._.length > 1) {
  console.error('usage: node run.js URI [--no-compression] [--timeout SECS] [--chromium PATH]');
  process.exit(2);
}
const timeoutMs = (args.timeout || 60) * 1000;
const chromium = args.chromium || process.env.WS_CHROMIUM || '/usr/bin/chromium';
const PAGE = fs.readFileSync(path.join(__dirname, 'page.html'));
const t0 = Date.now();
const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(2)}s]`;

let browser = null;
let profile = null;
let finished = false;

function finish(code, summary) {
  if (finished) return;
  finished = true;
  const done = () => {
    if (profile && !args['keep-profile']) fs.rmSync(profile, { recursive: true, force: true });
    summary.elapsed_ms = Date.now() - t0;
    process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(code));
  };
  if (!browser || browser.exitCode !== null || browser.signalCode !== null) return done();
  // SIGTERM lets Chromium shut its helpers down; SIGKILL the group if it lingers.
  const force = setTimeout(() => { try { process.kill(-browser.pid, 'SIGKILL'); } catch (_) {} }, 3000);
  browser.once('exit', () => { clearTimeout(force); try { process.kill(-browser.pid, 'SIGKILL'); } catch (_) {} done(); });
  try { process.kill(-browser.pid, 'SIGTERM'); } catch (_) { browser.kill('SIGTERM'); }
}

function failSummary(msg) {
  return { peer: 'chromium', uri, ok: false, failures: [msg], extensions: null, close: null, checks: 0 };
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'GET' && url.pathname === '/page.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(PAGE);
  }
  if (req.method === 'POST' && (url.pathname === '/log' || url.pathname === '/result')) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(204).end();
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) {
        return console.error(`${stamp()} bad POST ${url.pathname}: ${e.message}`);
      }
      if (url.pathname === '/log') return console.error(`${stamp()} page: ${body.msg}`);
      console.error(`${stamp()} page result: ok=${body.ok} checks=${body.checks}`);
      const ok = body.ok === true && Array.isArray(body.failures) && body.failures.length === 0;
      // Never opened (refused, handshake rejected): a connection error, like the other clients.
      const opened = body.extensions !== null && body.extensions !== undefined;
      finish(ok ? 0 : opened ? 1 : 2, body);
    });
    return undefined;
  }
  res.writeHead(404).end();
  return undefined;
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const q = new URLSearchParams({ ws: uri, compression: args['no-compression'] ? '0' : '1',
    timeout: String(Math.max(timeoutMs - 5000, 5000)) });
  const pageUrl = `http://127.0.0.1:${port}/page.html?${q}`;
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-interop-chromium-'));
  const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-extensions', '--disable-default-apps', '--mute-audio', '--no-default-browser-check',
    '--disable-dev-shm-usage', `--user-data-dir=${profile}`, pageUrl,
  ];
  console.error(`${stamp()} ${chromium} ${flags.join(' ')}`);
  // Own process group, so the whole browser (zygote, renderers) can be stopped at once.
  browser = spawn(chromium, flags, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  browser.stderr.on('data', (d) => {
    for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`chromium: ${line}\n`);
  });
  browser.on('error', (e) => finish(2, failSummary(`cannot start ${chromium}: ${e.message}`)));
  browser.on('exit', (code, sig) => {
    finish(2, failSummary(`chromium exited (${sig || code}) before the page reported; see the log`));
  });
});

setTimeout(() => finish(2, failSummary(`no result from the page within ${timeoutMs / 1000} s`)), timeoutMs).unref();
// Stop the browser if we are killed.
for (const s of ['SIGINT', 'SIGTERM']) {
  process.on(s, () => { try { process.kill(-browser.pid, 'SIGKILL'); } catch (_) {} process.exit(2); });
}
