#!/usr/bin/env python3
"""Writes the hand-made seeds of the handshake, extensions and deflate targets into
seeds/<target>/ (real browser and library traffic, RFC examples, and known edge cases).
Run from fuzz/: python3 make_seeds.py. Deterministic; safe to re-run."""
import os
import struct
import zlib

def write(target, name, data):
    d = os.path.join("seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".bin"), "wb") as f:
        f.write(data)

def crlf(lines):
    return ("\r\n".join(lines) + "\r\n\r\n").encode()

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 sample nonce
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

# --- handshake_server: byte 0 options, byte 1 chunk size, then the request -------------------
chrome = crlf([
    "GET /chat HTTP/1.1", "Host: localhost:8000", "Connection: Upgrade", "Pragma: no-cache",
    "Cache-Control: no-cache",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Upgrade: websocket", "Origin: http://localhost:8000", "Sec-WebSocket-Version: 13",
    "Accept-Encoding: gzip, deflate, br, zstd", "Accept-Language: en-US,en;q=0.9",
    "Sec-WebSocket-Key: " + KEY,
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
firefox = crlf([
    "GET /chat HTTP/1.1", "Host: example.com", "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Accept: */*", "Accept-Language: en-US,en;q=0.5", "Accept-Encoding: gzip, deflate, br",
    "Sec-WebSocket-Version: 13", "Origin: https://example.com", "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Extensions: permessage-deflate", "Sec-WebSocket-Key: " + KEY,
    "Connection: keep-alive, Upgrade", "Sec-Fetch-Dest: empty", "Sec-Fetch-Mode: websocket",
    "Sec-Fetch-Site: same-origin", "Pragma: no-cache", "Cache-Control: no-cache", "Upgrade: websocket"])
python_ws = crlf([
    "GET / HTTP/1.1", "Host: localhost:8765", "Upgrade: websocket", "Connection: Upgrade",
    "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    "User-Agent: Python/3.12 websockets/13.1"])
rfc = crlf([
    "GET /chat HTTP/1.1", "Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade",
    "Sec-WebSocket-Key: " + KEY, "Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Version: 13"])
ours = crlf([
    "GET /chat HTTP/1.1", "host: example.com", "upgrade: websocket", "connection: Upgrade",
    "sec-websocket-key: " + KEY, "sec-websocket-version: 13", "sec-websocket-protocol: chat",
    "sec-websocket-extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate",
    "user-agent: ws-rs/0.1"])
for name, req in [("chrome", chrome), ("firefox", firefox), ("python_websockets", python_ws), ("rfc6455", rfc), ("ws_rs", ours)]:
    for opts, chunk in [(0x00, 0), (0x2a, 0), (0x7e, 7), (0x23, 1)]:
        write("handshake_server", f"{name}_{opts:02x}_{chunk}", bytes([opts, chunk]) + req)
bad = {
    "pipelined_frame": rfc + b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
    "missing_key": crlf(["GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"]),
    "bad_version": crlf(["GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 8"]),
    "short_key": crlf(["GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: AAAA", "Sec-WebSocket-Version: 13"]),
    "post": crlf(["POST / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13"]),
    "http10": crlf(["GET / HTTP/1.0", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13"]),
    "obs_fold": b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n folded\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: a\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: " + KEY.encode() + b"\nSec-WebSocket-Version: 13\n\n",
    "bare_cr_injection": b"GET / HTTP/1.1\r\nHost: a\rX-Injected: 1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "nul_in_value": crlf(["GET / HTTP/1.1", "Host: a\x00b", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13"]),
    "duplicate_key": crlf(["GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13"]),
    "bad_extensions": crlf(["GET / HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13", 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits="1 0", x; ="', "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7; server_max_window_bits=8"]),
    "absolute_uri": crlf(["GET ws://a:80/x?y=%20 HTTP/1.1", "Host: a", "Upgrade: websocket", "Connection: upgrade, keep-alive", "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Version: 13", "Origin: null"]),
    "many_headers": crlf(["GET / HTTP/1.1"] + [f"X-H{i}: {i}" for i in range(140)]),
    "long_line": crlf(["GET /" + "a" * 5000 + " HTTP/1.1", "Host: a"]),
    "leading_empty_lines": b"\r\n\r\n" + rfc,
}
for name, req in bad.items():
    write("handshake_server", name, bytes([0x2a, 0]) + req)

# --- handshake_client: byte 0 options, byte 1 chunk size, then the response -------------------
ok = crlf(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: " + ACCEPT])
python_resp = crlf(["HTTP/1.1 101 Switching Protocols", "Date: Mon, 06 May 2024 10:00:00 GMT", "Upgrade: websocket",
                    "Connection: Upgrade", "Sec-WebSocket-Accept: " + ACCEPT,
                    "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                    "Server: Python/3.12 websockets/13.1"])
nginx_proto = crlf(["HTTP/1.1 101 Switching Protocols", "Server: nginx/1.24.0", "Date: Mon, 06 May 2024 10:00:00 GMT",
                    "Connection: upgrade", "Upgrade: WebSocket", "Sec-WebSocket-Accept: " + ACCEPT, "Sec-WebSocket-Protocol: chat"])
node_ws = crlf(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: " + ACCEPT,
                "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover"])
for name, resp in [("rfc6455", ok), ("python_websockets", python_resp), ("nginx_subprotocol", nginx_proto), ("node_ws", node_ws)]:
    for opts, chunk in [(0x00, 0), (0x0c, 0), (0x0d, 5)]:
        write("handshake_client", f"{name}_{opts:02x}_{chunk}", bytes([opts, chunk]) + resp)
rejects = {
    "404_content_length": b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found",
    "302_redirect": crlf(["HTTP/1.1 302 Found", "Location: wss://example.com/other", "Content-Length: 0"]),
    "401_auth": crlf(["HTTP/1.1 401 Unauthorized", 'WWW-Authenticate: Basic realm="ws"', "Content-Length: 0"]),
    "400_until_eof": b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nFailed to open a WebSocket connection: missing Sec-WebSocket-Key header.\n",
    "chunked": b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "wrong_accept": crlf(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA="]),
    "unoffered_extension": crlf(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: " + ACCEPT, "Sec-WebSocket-Extensions: x-webkit-deflate-frame"]),
    "unoffered_subprotocol": crlf(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: " + ACCEPT, "Sec-WebSocket-Protocol: other"]),
    "leftover_frame": ok + b"\x81\x05Hello\x89\x00",
    "http10_101": crlf(["HTTP/1.0 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: " + ACCEPT]),
    "huge_content_length": b"HTTP/1.1 500 Oops\r\nContent-Length: 18446744073709551616\r\n\r\nx",
}
for name, resp in rejects.items():
    write("handshake_client", name, bytes([0x0c, 0]) + resp)

# --- extensions_header: the header value as text ----------------------------------------------
for i, v in enumerate([
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12; server_no_context_takeover",
    "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
    'permessage-deflate; client_max_window_bits="15", permessage-deflate',
    "x-webkit-deflate-frame",
    "foo, , bar ;  baz = 1 ,",
    'a; b="\\"c\\""',
    'a; b="unterminated',
    "a; b=\"c d\"",
    ",",
    "",
    "a;;b",
    "a; b=\nc; d",
    "permessage-deflate\nx-custom; level=3",
    "\xff\xfe; a=b",
]):
    write("extensions_header", f"value_{i:02}", v.encode("latin-1") if "\xff" in v else v.encode())

# --- deflate_decode: byte 0 options, then frames (flags, u16 LE length, payload) --------------
def frame(payload, fin=True, rsv1=True, opcode=1):
    return bytes([int(fin) | int(rsv1) << 1 | opcode << 2]) + struct.pack("<H", len(payload)) + payload

def raw_deflate(data, wbits=15, flush_each=None):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits, 8)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]

hello = bytes.fromhex("f248cdc9c90700")  # RFC 7692 §7.2.3.1
rfc_frames = {
    "rfc7692_hello": frame(hello),
    "rfc7692_fragmented": frame(bytes.fromhex("f248cd"), fin=False) + frame(bytes.fromhex("c9c90700"), rsv1=False, opcode=0),
    "rfc7692_shared_window": frame(hello) + frame(bytes.fromhex("f200110000")),
    "rfc7692_stored_block": frame(bytes.fromhex("000500faff48656c6c6f00")),
    "rfc7692_bfinal": frame(bytes.fromhex("f348cdc9c9070000")),
    "rfc7692_two_blocks": frame(bytes.fromhex("f248050000 00ffffcac9c90700".replace(" ", ""))),
    "uncompressed_then_compressed": frame(b"plain", rsv1=False) + frame(hello),
    "ping_between_fragments": frame(bytes.fromhex("f248cd"), fin=False) + frame(b"p", rsv1=False, opcode=3) + frame(bytes.fromhex("c9c90700"), rsv1=False, opcode=0),
    "rsv1_continuation": frame(bytes.fromhex("f248cd"), fin=False) + frame(bytes.fromhex("c9c90700"), opcode=0),
    "rsv1_ping": frame(b"p", opcode=3),
    "corrupt": frame(b"\xff\xff\xff\xff\x00"),
    "bomb_1mb_zeros": frame(raw_deflate(b"\0" * (1 << 20))),
    "bomb_fragmented": frame(raw_deflate(b"a" * 300000)[:200], fin=False) + frame(raw_deflate(b"a" * 300000)[200:], rsv1=False, opcode=0),
    "window9_text": frame(raw_deflate(b"The quick brown fox jumps over the lazy dog. " * 20, wbits=9)),
    "far_distance_window8": frame(raw_deflate(os.urandom(0) + bytes(range(256)) * 2 + b"xyz" + bytes(range(256)), wbits=15)),
}
for name, wire in rfc_frames.items():
    for opts in (0x07, 0x47, 0x27, 0x77, 0x0f, 0x01):
        write("deflate_decode", f"{name}_{opts:02x}", bytes([opts]) + wire)
# Round-trip mode (bit 7): plain messages compressed by our own compressor.
text = b"{\"type\":\"chat\",\"user\":\"alice\",\"text\":\"hello world\"}"
for opts in (0x87, 0x80, 0x8f, 0x84):
    write("deflate_decode", f"roundtrip_{opts:02x}", bytes([opts]) + frame(text, rsv1=False) + frame(text, fin=False, rsv1=False, opcode=2) + frame(b"ping", opcode=3) + frame(text * 3, rsv1=False, opcode=0) + frame(b"", rsv1=False))

# --- deflate_connection: the proto layout (options, cuts, chunk lengths, wire) -----------------
MASK = bytes([0x37, 0xfa, 0x21, 0x3d])
def ws_frame(payload, opcode=1, fin=True, rsv1=True):
    b0 = int(fin) << 7 | int(rsv1) << 6 | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))

def proto(options, deflate_opts, wire, cuts=()):
    return bytes([options, (deflate_opts << 4) | len(cuts)]) + bytes(cuts) + wire

close = ws_frame(struct.pack(">H", 1000), opcode=8, rsv1=False)
conn = {
    "hello": ws_frame(hello) + close,
    "fragmented": ws_frame(bytes.fromhex("f248cd"), fin=False) + ws_frame(bytes.fromhex("c9c90700"), opcode=0, rsv1=False) + close,
    "shared_window": ws_frame(hello) + ws_frame(bytes.fromhex("f200110000")) + close,
    "bomb": ws_frame(raw_deflate(b"\0" * (1 << 20))) + close,
    "invalid_utf8_compressed": ws_frame(raw_deflate(b"\xff\xfe\xfd")) + close,
    "rsv1_on_ping": ws_frame(b"", opcode=9) + close,
    "window9": ws_frame(raw_deflate(b"The quick brown fox jumps over the lazy dog. " * 20, wbits=9)) + close,
}
for name, wire in conn.items():
    for options, dopts, cuts in [(0x2f, 0x7, ()), (0x27, 0x1, (3, 0)), (0x9f, 0x7, (1,)), (0x17, 0xf, ())]:
        write("deflate_connection", f"{name}_{options:02x}_{dopts:x}_{len(cuts)}", proto(options, dopts, wire, cuts))

# --- proto_lifecycle: options, timing, then operations (see fuzz/src/lifecycle.rs) -----------
def send(text): return bytes([0, len(text)]) + text
def peer_send(text): return bytes([5, len(text)]) + text
DELIVER, TO_PEER, ANSWER, EOF = bytes([8, 255]), bytes([9, 255]), bytes([13]), bytes([11])
def sleep(step): return bytes([3, step])
POLL = bytes([4])
def close(code_index, reason_len=0): return bytes([2, code_index, reason_len])
def peer_close(code_index): return bytes([7, code_index])
lifecycle = {
    # Messages both ways, then a clean closing handshake started by this end.
    "echo_close": peer_send(b"hello") + DELIVER + send(b"hi") + TO_PEER + close(0) + TO_PEER + ANSWER + DELIVER + EOF,
    # The peer closes first; this end answers at once.
    "peer_closes": peer_send(b"a") + peer_close(1) + DELIVER + TO_PEER + POLL + sleep(4) + EOF,
    # Keepalive: pings go out, pongs come back, then the peer stops answering.
    "keepalive": sleep(3) + TO_PEER + DELIVER + sleep(3) + TO_PEER + DELIVER + sleep(5) + sleep(5) + EOF,
    # The peer never answers our close: close_timeout ends it.
    "close_timeout": close(6, 5) + TO_PEER + sleep(4) + POLL + sleep(6) + EOF,
    # Junk on the wire fails the connection; nothing follows our close frame.
    "junk": bytes([10, 4, 0xff, 0xff, 0xff, 0xff]) + TO_PEER + send(b"late") + TO_PEER + EOF,
    # EOF in the middle of a message, with a ping and a release in between.
    "eof_mid": bytes([1, 4]) + b"ping" + TO_PEER + bytes([12]) + peer_send(b"x" * 40) + bytes([8, 10]) + EOF,
    # Pings and unsolicited pongs from the peer, then time jumps past every deadline.
    "pings": bytes([6, 3]) + b"abc" + bytes([6, 0x82]) + b"zz" + DELIVER + TO_PEER + POLL + POLL + sleep(7) + EOF,
}
for name, ops in lifecycle.items():
    # options: role (bit 0), auto-pong off (bit 1), max_size (bits 2-3); timing: interval, timeout, close
    for options, timing in [(0x0c, 0x2a), (0x0d, 0x2a), (0x02, 0x3f), (0x09, 0x1e), (0x04, 0x26)]:
        write("proto_lifecycle", f"{name}_{options:02x}_{timing:02x}", bytes([options, timing]) + ops)

# --- tokio_driver: options, more, leftover length + bytes, then operations (fuzz/src/driver.rs) --
def pframe(b0, payload): return bytes([0, b0, len(payload)]) + payload
FLUSH, RECV, READ, EOF_PEER, DROP = bytes([2, 3]), bytes([7, 3]), bytes([3, 3, 4]), bytes([4]), bytes([10])
def app_send(text): return bytes([6, 3, len(text)]) + text
def app_close(code_index): return bytes([9, 3, code_index])
def wait(i): return bytes([5, i])
peer_close = pframe(0x88, struct.pack(">H", 1000))
driver = {
    "echo": pframe(0x81, b"hello") + FLUSH + RECV + app_send(b"hi") + READ + peer_close + FLUSH + READ + RECV,
    "ping": pframe(0x89, b"abc") + FLUSH + READ + bytes([8, 3]) + READ + wait(3) + READ + wait(3) + RECV,
    "fragmented": pframe(0x01, b"hel") + pframe(0x89, b"") + pframe(0x80, b"lo") + FLUSH + RECV + RECV,
    "deflate": pframe(0xC1, hello) + pframe(0x41, bytes.fromhex("f248cd")) + pframe(0x80, bytes.fromhex("c9c90700")) + FLUSH + RECV + RECV,
    "app_close": app_send(b"bye") + app_close(0) + READ + peer_close + FLUSH + bytes([9, 3, 1]) + RECV,
    "slow_reader": b"".join(pframe(0x82, bytes([i]) * 20) for i in range(12)) + FLUSH + FLUSH + wait(2) + FLUSH + RECV + wait(3) + bytes([12, 3]) + b"abcdef",
    "junk": bytes([1, 6]) + b"\xff\xff\x00\x01\x02\x03" + FLUSH + READ + RECV + RECV,
    "drop_mid_message": pframe(0x01, b"part") + FLUSH + DROP + wait(2) + READ,
    "peer_eof": pframe(0x81, b"x") + FLUSH + EOF_PEER + RECV + RECV + app_send(b"late"),
    "yield": pframe(0x81, b"y") + FLUSH + bytes([11, 3]) + RECV + bytes([11, 0]) + READ,
}
for name, ops in driver.items():
    for options, more, left in [(0x00, 0x0b, b""), (0x01, 0x4a, b""), (0x42, 0x87, b""), (0x43, 0xd6, b""), (0x94, 0x05, b"\x81\x80\0\0\0\0")]:
        if left and options & 1:
            continue
        write("tokio_driver", f"{name}_{options:02x}_{more:02x}", bytes([options, more, len(left)]) + left + ops)
