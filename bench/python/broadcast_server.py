#!/usr/bin/env python3
"""Python `websockets` fan-out server for `cargo xtask bench --only broadcast`.

The protocol of examples/broadcast_bench.rs: each message a connection to `/control`
sends goes to every other connection with `websockets.broadcast()`, then is answered
with `DELIVERED DROPPED` (the totals so far; `broadcast()` never drops, it buffers).
Every other connection only receives. Compression: websockets' default
(permessage-deflate with context takeover), or none with --no-compression.
"""

import argparse
import asyncio

from websockets.asyncio.server import broadcast, serve

members = set()
delivered = 0


async def handler(ws):
    global delivered
    if ws.request.path == "/control":
        async for message in ws:
            broadcast(members, message)
            delivered += len(members)
            await ws.send(f"{delivered} 0")
        return
    members.add(ws)
    try:
        await ws.wait_closed()
    finally:
        members.discard(ws)


async def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--no-compression", action="store_true")
    a = p.parse_args()
    compression = None if a.no_compression else "deflate"
    # A listen backlog above the load generator's 256 handshakes at a time.
    async with serve(handler, a.host, a.port, compression=compression, backlog=1024) as server:
        print(f"broadcast_server listening on {a.host}:{a.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
