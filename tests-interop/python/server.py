#!/usr/bin/env python3
"""Python `websockets` interop echo server.

Echoes every message (same type, same bytes). Prints a JSON line
{"event":"listening","port":N} once bound, then one JSON line per finished
connection with the close code/reason it received from the client.
"""

import argparse
import asyncio
import json
import ssl

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from common import add_deflate_args, deflate_customized


def emit(obj):
    print(json.dumps(obj), flush=True)


async def echo(ws):
    n = 0
    try:
        async for msg in ws:
            await ws.send(msg)
            n += 1
    except ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    emit({"event": "closed", "messages": n,
          "extensions": ws.request.headers.get("Sec-WebSocket-Extensions") if ws.request else None,
          "negotiated": ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None,
          "code": None if rcvd is None else int(rcvd.code),
          "reason": None if rcvd is None else rcvd.reason})


def build_kwargs(a):
    if a.no_compression:
        return {"compression": None}
    if not deflate_customized(a):
        return {"compression": "deflate"}
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=a.server_no_context_takeover,
        client_no_context_takeover=a.client_no_context_takeover,
        server_max_window_bits=a.server_max_window_bits,
        client_max_window_bits=a.client_max_window_bits,
    )
    return {"compression": None, "extensions": [factory]}


async def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--certfile", help="serve wss://: the certificate chain (PEM)")
    p.add_argument("--keyfile", help="with --certfile: its private key (PEM)")
    add_deflate_args(p)
    a = p.parse_args()
    tls = {}
    if a.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.certfile, a.keyfile)
        tls = {"ssl": context}
    async with serve(echo, a.host, a.port, max_size=64 << 20, **build_kwargs(a), **tls) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        emit({"event": "listening", "peer": "python-websockets-server", "port": port})
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
