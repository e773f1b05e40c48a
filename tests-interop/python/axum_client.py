#!/usr/bin/env python3
"""Python `websockets` client for the ws-axum tests (crates/ws-axum/tests/axum.rs).

Connects with permessage-deflate, the `chat` subprotocol and an allowed Origin to the
test app's `/ws` route, which first reports what the server side negotiated and then
echoes. Checks the report, echoes of the standard sizes (text and binary), a fragmented
message and a ping, then closes with 4000. Prints one JSON line; exits 1 on a mismatch,
2 on a connection failure.
"""

import argparse
import asyncio
import json
import sys

from websockets.asyncio.client import connect

from common import CLOSE_CODE, CLOSE_REASON, SIZES, binary_payload, text_payload


async def run(uri, summary):
    failures = summary["failures"]

    def check(cond, what):
        if not cond:
            failures.append(what)

    async with connect(uri, compression="deflate", subprotocols=["chat"],
                       origin="http://good.example", max_size=64 << 20,
                       open_timeout=10, close_timeout=10) as ws:
        summary["extensions"] = ws.response.headers.get("Sec-WebSocket-Extensions")
        summary["subprotocol"] = ws.subprotocol
        check((summary["extensions"] or "").startswith("permessage-deflate"),
              f"client side: permessage-deflate not negotiated ({summary['extensions']})")
        check(ws.subprotocol == "chat", f"client side: subprotocol {ws.subprotocol}")
        report = await ws.recv()
        summary["server_report"] = report
        check(report.startswith("ext=permessage-deflate proto=chat remote=127.0.0.1:"),
              f"server side report: {report}")

        for size in SIZES:
            for payload in (text_payload(size), binary_payload(size)):
                await ws.send(payload)
                got = await ws.recv()
                check(type(got) is type(payload) and got == payload,
                      f"{type(payload).__name__} {size}: echo mismatch")
        parts = ["frag-one h\u00e9 ", "", "frag-two \u20ac ", text_payload(70000)]
        await ws.send(parts)
        check(await ws.recv() == "".join(parts), "fragmented text: echo mismatch")
        pong = await ws.ping(b"axum-ping")
        await asyncio.wait_for(pong, 10)

        await ws.close(CLOSE_CODE, CLOSE_REASON)
        rcvd = ws.protocol.close_rcvd
        check(rcvd is not None and rcvd.code == CLOSE_CODE,
              f"server close frame: {None if rcvd is None else int(rcvd.code)}")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("uri")
    a = p.parse_args()
    summary = {"peer": "python-websockets-axum-client", "uri": a.uri, "failures": []}
    code = 0
    try:
        asyncio.run(asyncio.wait_for(run(a.uri, summary), 60))
    except Exception as e:  # noqa: BLE001 - report everything as a failure
        summary["failures"].append(f"error: {type(e).__name__}: {e}")
        code = 2
    summary["ok"] = not summary["failures"]
    if summary["failures"] and code == 0:
        code = 1
    print(json.dumps(summary), flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
