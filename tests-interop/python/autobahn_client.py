#!/usr/bin/env python3
"""Stand-in Autobahn fuzzingserver driver on Python `websockets`.

Same contract as the Rust `autobahn_client` example, so the xtask tooling can be
proven without it:  autobahn_client.py ws://127.0.0.1:9001 AGENT
getCaseCount, then runCase?case=i&agent=AGENT for each case (echo everything),
then updateReports?agent=AGENT.
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException


async def main(base, agent):
    async with connect(f"{base}/getCaseCount") as ws:
        count = int(await ws.recv())
    print(f"autobahn_client: {count} cases", flush=True)
    for i in range(1, count + 1):
        try:
            async with connect(f"{base}/runCase?case={i}&agent={agent}",
                               max_size=64 << 20, open_timeout=30) as ws:
                async for msg in ws:
                    await ws.send(msg)
        except (ConnectionClosed, WebSocketException, OSError, asyncio.TimeoutError):
            pass
    async with connect(f"{base}/updateReports?agent={agent}") as ws:
        try:
            await ws.recv()
        except ConnectionClosed:
            pass


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: autobahn_client.py ws://HOST:PORT AGENT")
    asyncio.run(main(sys.argv[1].rstrip("/"), sys.argv[2]))
