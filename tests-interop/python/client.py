#!/usr/bin/env python3
"""Python `websockets` interop client.

Connects to an echo server, sends text/binary messages of the standard sizes, a
fragmented text and binary message, a ping, then closes with 4000 + reason. Checks
every echo byte-exactly and that the server's close frame carries code 4000.
Prints one JSON line and exits 1 on any mismatch (2 on connection failure).
"""

import argparse
import asyncio
import json
import ssl
import sys
import time

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from common import (CLOSE_CODE, CLOSE_REASON, SIZES, add_deflate_args, binary_payload,
                    check_negotiated, deflate_customized, text_payload)


def build_kwargs(a):
    if a.no_compression:
        return {"compression": None}
    if not deflate_customized(a):
        return {"compression": "deflate"}
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=a.server_no_context_takeover,
        client_no_context_takeover=a.client_no_context_takeover,
        server_max_window_bits=a.server_max_window_bits,
        client_max_window_bits=a.client_max_window_bits or True,
    )
    return {"compression": None, "extensions": [factory]}


async def run(a, summary):
    failures = summary["failures"]
    checks = 0

    def check(cond, what):
        nonlocal checks
        checks += 1
        if not cond:
            failures.append(what)

    # wss://: trust only the CA given (OpenSSL checks the certificate and the host name).
    tls = {"ssl": ssl.create_default_context(cafile=a.cafile)} if a.cafile else {}
    async with connect(a.uri, max_size=64 << 20, open_timeout=10, close_timeout=10,
                       **build_kwargs(a), **tls) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        summary["extensions"] = ext
        problems = check_negotiated(ext, a)
        check(not problems, "; ".join(problems))

        for size in SIZES:
            t = text_payload(size)
            await ws.send(t)
            got = await ws.recv()
            check(isinstance(got, str) and got == t, f"text {size}: echo mismatch "
                  f"(type {type(got).__name__}, len {len(got)})")
            b = binary_payload(size)
            await ws.send(b)
            got = await ws.recv()
            check(isinstance(got, bytes) and got == b, f"binary {size}: echo mismatch "
                  f"(type {type(got).__name__}, len {len(got)})")

        # Fragmented messages: send(iterable) emits one frame per item.
        parts = ["frag-one h\u00e9 ", "", "frag-two \u20ac ", text_payload(70000)]
        await ws.send(parts)
        got = await ws.recv()
        check(got == "".join(parts), "fragmented text: echo mismatch")
        bparts = [binary_payload(3), binary_payload(70000), b"", binary_payload(126)]
        await ws.send(bparts)
        got = await ws.recv()
        check(got == b"".join(bparts), "fragmented binary: echo mismatch")

        # Ping with payload: the pong must come back.
        pong = await ws.ping(b"interop-ping")
        await asyncio.wait_for(pong, 10)
        check(True, "ping")

        await ws.close(CLOSE_CODE, CLOSE_REASON)
        rcvd = ws.protocol.close_rcvd
        summary["close"] = None if rcvd is None else {"code": int(rcvd.code),
                                                      "reason": rcvd.reason}
        check(rcvd is not None and rcvd.code == CLOSE_CODE,
              f"server close frame: expected code {CLOSE_CODE}, got "
              f"{None if rcvd is None else int(rcvd.code)}")
    summary["checks"] = checks


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("uri")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--cafile", help="for wss://: the CA (PEM) that signed the server's certificate")
    add_deflate_args(p)
    a = p.parse_args()
    summary = {"peer": "python-websockets-client", "uri": a.uri,
               "compression": not a.no_compression, "failures": []}
    t0 = time.monotonic()
    code = 0
    try:
        asyncio.run(asyncio.wait_for(run(a, summary), a.timeout))
    except Exception as e:  # noqa: BLE001 - report everything as a failure
        summary["failures"].append(f"error: {type(e).__name__}: {e}")
        code = 2
    summary["elapsed_ms"] = round((time.monotonic() - t0) * 1000)
    summary["ok"] = not summary["failures"]
    if summary["failures"] and code == 0:
        code = 1
    print(json.dumps(summary), flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
