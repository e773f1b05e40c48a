#!/usr/bin/env python3
"""Connection-lifecycle scenarios against our Rust servers (Python `websockets`).

keepalive-push     against push_server (a handler that only sends, never receives):
                   keepalive pings every 0.5 s with a 0.5 s pong timeout; messages must
                   keep arriving for --duration seconds with the connection open, then
                   close() must get the server's 1000.
send-close-rounds  against echo_server: --rounds times connect, send one text, close();
                   every round must end with 1000 sent and 1000 received, no error.

Prints one JSON line {"ok": bool, "failures": [...], "note": "...", ...}; exit 1 on a
failed check, 2 on an unexpected error.
"""

import argparse
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def close_frames(ws):
    """`sent 1011 'keepalive ping timeout', received none`: what each side said."""
    def fmt(frame):
        return "none" if frame is None else f"{int(frame.code)} {frame.reason!r}"
    return f"sent {fmt(ws.protocol.close_sent)}, received {fmt(ws.protocol.close_rcvd)}"


async def keepalive_push(a, summary):
    failures = summary["failures"]
    compression = None if a.no_compression else "deflate"
    # A short close_timeout: a server that does not answer the close fails in 2 s, not 10.
    async with connect(a.uri, ping_interval=0.5, ping_timeout=0.5, close_timeout=2,
                       open_timeout=5, compression=compression) as ws:
        start = time.monotonic()
        deadline = start + a.duration
        last = start
        count = 0
        max_gap = 0.0
        closed_early = None
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            try:
                # Cancelling recv() is safe in websockets' asyncio implementation.
                msg = await asyncio.wait_for(ws.recv(), deadline - now)
            except TimeoutError:
                break
            except ConnectionClosed as e:
                closed_early = e
                break
            now = time.monotonic()
            max_gap = max(max_gap, now - last)
            last = now
            if msg != f"tick {count}":
                failures.append(f"message {count}: expected 'tick {count}', got {msg[:40]!r}")
                break
            count += 1
        elapsed = time.monotonic() - start
        max_gap = max(max_gap, min(time.monotonic(), deadline) - last)
        summary.update(messages=count, max_gap_ms=round(max_gap * 1000),
                       open_for_ms=round(elapsed * 1000))
        if closed_early is not None:
            failures.append(f"connection closed after {elapsed:.2f} s, {count} messages (the last "
                            f"at {last - start:.2f} s): {type(closed_early).__name__}: "
                            f"{closed_early} ({close_frames(ws)})")
            return
        if count == 0 or max_gap > a.max_gap:
            failures.append(f"messages stopped arriving: {count} in {elapsed:.2f} s, "
                            f"longest gap {max_gap:.2f} s")
        summary["latency_ms"] = round(ws.latency * 1000, 2)
        try:
            await ws.close()
        except Exception as e:  # noqa: BLE001 - close() should not raise at all
            failures.append(f"close(): {type(e).__name__}: {e}")
        rcvd = ws.protocol.close_rcvd
        summary["close"] = None if rcvd is None else {"code": int(rcvd.code), "reason": rcvd.reason}
        if rcvd is None or rcvd.code != 1000:
            failures.append(f"closing handshake: expected the server's 1000, {close_frames(ws)}")
        summary["note"] = (f"{count} msgs in {elapsed:.1f}s, max gap {max_gap * 1000:.0f} ms, "
                           f"ping rtt {ws.latency * 1000:.1f} ms, close "
                           f"{None if rcvd is None else int(rcvd.code)}")


async def one_round(a, i):
    """One connect / send / close; None if clean, else what went wrong."""
    compression = None if a.no_compression else "deflate"
    ws = None
    try:
        ws = await connect(a.uri, open_timeout=5, close_timeout=2, compression=compression)
        await ws.send(f"round {i}: h\u00e9llo " + "x" * (i % 50))
        await ws.close()
    except Exception as e:  # noqa: BLE001 - every error is a failed round
        where = close_frames(ws) if ws is not None else "no connection"
        return f"round {i}: {type(e).__name__}: {e} ({where})"
    sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
    if sent is None or sent.code != 1000 or rcvd is None or rcvd.code != 1000:
        return f"round {i}: not a clean 1000/1000 close: {close_frames(ws)}"
    return None


async def send_close_rounds(a, summary):
    deadline = time.monotonic() + a.budget
    bad = []
    kinds = {}
    done = 0
    for i in range(a.rounds):
        if time.monotonic() > deadline:
            summary["failures"].append(f"time budget of {a.budget} s spent after {done} rounds")
            break
        problem = await one_round(a, i)
        done += 1
        if problem is not None:
            bad.append(problem)
            # Group by the part after "round N: " so the summary says which ways rounds failed.
            kind = problem.split(": ", 1)[1]
            kinds[kind] = kinds.get(kind, 0) + 1
    summary.update(rounds=done, failed_rounds=len(bad), failure_kinds=kinds)
    if bad:
        summary["failures"].insert(0, f"{len(bad)}/{done} rounds did not close cleanly")
        summary["failures"].extend(bad[:5])
    summary["note"] = f"{done - len(bad)}/{done} rounds closed 1000/1000"


SCENARIOS = {"keepalive-push": keepalive_push, "send-close-rounds": send_close_rounds}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--uri", required=True)
    p.add_argument("--no-compression", action="store_true")
    p.add_argument("--duration", type=float, default=5.0, help="keepalive-push: seconds to receive")
    p.add_argument("--max-gap", type=float, default=1.0,
                   help="keepalive-push: longest allowed wait for a message, seconds")
    p.add_argument("--rounds", type=int, default=200, help="send-close-rounds: connections")
    p.add_argument("--budget", type=float, default=40.0,
                   help="send-close-rounds: stop starting rounds after this many seconds")
    p.add_argument("--timeout", type=float, default=60.0, help="whole run")
    a = p.parse_args()
    summary = {"peer": "python-websockets", "scenario": a.scenario, "uri": a.uri, "failures": []}
    t0 = time.monotonic()
    code = 0
    try:
        asyncio.run(asyncio.wait_for(SCENARIOS[a.scenario](a, summary), a.timeout))
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
