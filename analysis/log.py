"""The report's progress on stderr: one line per step, with the seconds since the report started."""
from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


def start() -> None:
    global _T0
    _T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[report {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)
