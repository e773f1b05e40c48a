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
