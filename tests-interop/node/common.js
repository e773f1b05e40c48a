'use strict';
// Shared helpers for the Node interop peers. Payload generators match
// tests-interop/python/common.py byte for byte.

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const CLOSE_CODE = 4000;
const CLOSE_REASON = 'interop-bye';

function binaryPayload(n) {
  const out = Buffer.alloc(n);
  const half = Math.floor(n / 2);
  for (let i = 0; i < half; i++) out[i] = i % 251;
  let x = n >>> 0;
  for (let i = half; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

const TEXT_UNIT = Buffer.from('ws interop: h\u00e9llo \u20ac \u{1F600} \u65e5\u672c. ', 'utf8');

function textPayload(n) {
  const reps = Math.floor(n / TEXT_UNIT.length);
  const buf = Buffer.alloc(n, 'x');
  for (let r = 0; r < reps; r++) TEXT_UNIT.copy(buf, r * TEXT_UNIT.length);
  return buf; // valid UTF-8 bytes
}

// Minimal `--flag value` / `--switch` parser.
function parseArgs(argv, spec) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { out._.push(a); continue; }
    const key = a.slice(2);
    if (!(key in spec)) throw new Error(`unknown option ${a}`);
    if (spec[key] === 'bool') out[key] = true;
    else {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      out[key] = spec[key] === 'int' ? parseInt(argv[++i], 10) : argv[++i];
    }
  }
  return out;
}

const DEFLATE_SPEC = {
  'no-compression': 'bool',
  'server-max-window-bits': 'int',
  'client-max-window-bits': 'int',
  'server-no-context-takeover': 'bool',
  'client-no-context-takeover': 'bool',
};

// ws `perMessageDeflate` option from the CLI flags (same semantics both sides).
function deflateOption(a) {
  if (a['no-compression']) return false;
  const o = { threshold: 0 }; // compress every message, even tiny ones
  if (a['server-max-window-bits']) o.serverMaxWindowBits = a['server-max-window-bits'];
  if (a['client-max-window-bits']) o.clientMaxWindowBits = a['client-max-window-bits'];
  if (a['server-no-context-takeover']) o.serverNoContextTakeover = true;
  if (a['client-no-context-takeover']) o.clientNoContextTakeover = true;
  return o;
}

// RFC 7692 checks of the server's response against what the client asked for:
// a requested server_no_context_takeover must be echoed, a requested
// server_max_window_bits=N must come back as M <= N. Returns a list of problems.
function checkNegotiated(header, a) {
  if (a['no-compression']) return header ? [`unexpected extension negotiated: ${header}`] : [];
  if (!header || !header.includes('permessage-deflate')) {
    return [`permessage-deflate not negotiated (got ${header})`];
  }
  const params = {};
  for (const p of header.split(';').slice(1)) {
    const [k, v] = p.trim().split('=');
    params[k] = v === undefined ? true : v.replace(/"/g, '');
  }
  const problems = [];
  if (a['server-no-context-takeover'] && !params.server_no_context_takeover) {
    problems.push('server_no_context_takeover requested but not in response');
  }
  const want = a['server-max-window-bits'];
  if (want) {
    const got = parseInt(params.server_max_window_bits, 10);
    if (!(got >= 8 && got <= want)) problems.push(`server_max_window_bits ${want} requested, response has ${params.server_max_window_bits}`);
  }
  const cwant = a['client-max-window-bits'];
  if (params.client_max_window_bits !== undefined && cwant) {
    const got = parseInt(params.client_max_window_bits, 10);
    if (!(got >= 8 && got <= cwant)) problems.push(`client_max_window_bits ${cwant} offered, response has ${params.client_max_window_bits}`);
  }
  return problems;
}

module.exports = {
  checkNegotiated,
  SIZES, CLOSE_CODE, CLOSE_REASON, binaryPayload, textPayload, parseArgs, DEFLATE_SPEC,
  deflateOption,
};
