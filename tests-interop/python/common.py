"""Shared helpers for the Python interop peers (payload generators, CLI flags).

The payload generators are deterministic so every peer (Python, Node, Rust)
exercises the same bytes; see tests-interop/README.md for the algorithm.
"""

import argparse

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]
CLOSE_CODE = 4000
CLOSE_REASON = "interop-bye"


def binary_payload(n: int) -> bytes:
    """First half repetitive (compressible), second half LCG noise."""
    half = n // 2
    out = bytearray(n)
    for i in range(half):
        out[i] = i % 251
    x = n & 0xFFFFFFFF
    for i in range(half, n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


_TEXT_UNIT = "ws interop: h\u00e9llo \u20ac \U0001F600 \u65e5\u672c. "


def text_payload(n: int) -> str:
    """Valid UTF-8 of exactly n bytes, with 1- to 4-byte characters, ASCII padded."""
    unit = _TEXT_UNIT.encode("utf-8")
    reps = n // len(unit)
    body = unit * reps
    return (body + b"x" * (n - len(body))).decode("utf-8")


def add_deflate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-compression", action="store_true", help="disable permessage-deflate")
    p.add_argument("--server-max-window-bits", type=int, metavar="N")
    p.add_argument("--client-max-window-bits", type=int, metavar="N")
    p.add_argument("--server-no-context-takeover", action="store_true")
    p.add_argument("--client-no-context-takeover", action="store_true")


def deflate_customized(a) -> bool:
    return bool(
        a.server_max_window_bits
        or a.client_max_window_bits
        or a.server_no_context_takeover
        or a.client_no_context_takeover
    )


def check_negotiated(header, a):
    """RFC 7692 checks of the server's response against the client's request.

    A requested server_no_context_takeover must be echoed; a requested
    server_max_window_bits=N must come back as M <= N. Returns a list of problems.
    """
    if a.no_compression:
        return [f"unexpected extension negotiated: {header}"] if header else []
    if not header or "permessage-deflate" not in header:
        return [f"permessage-deflate not negotiated (got {header!r})"]
    params = {}
    for p in header.split(";")[1:]:
        k, _, v = p.strip().partition("=")
        params[k] = v.strip('"') if v else True
    problems = []
    if a.server_no_context_takeover and "server_no_context_takeover" not in params:
        problems.append("server_no_context_takeover requested but not in response")
    if a.server_max_window_bits:
        got = params.get("server_max_window_bits")
        if not (isinstance(got, str) and got.isdigit() and 8 <= int(got) <= a.server_max_window_bits):
            problems.append(f"server_max_window_bits {a.server_max_window_bits} requested, "
                            f"response has {got}")
    if a.client_max_window_bits and "client_max_window_bits" in params:
        got = params["client_max_window_bits"]
        if not (isinstance(got, str) and got.isdigit() and 8 <= int(got) <= a.client_max_window_bits):
            problems.append(f"client_max_window_bits {a.client_max_window_bits} offered, "
                            f"response has {got}")
    return problems
