"""Cyclic garbage collection held off while a request builds a large answer.

A day-wide backfill plan allocates a few hundred thousand containers (runs, reasons, dicts) that all stay
alive until the answer is sent and form no reference cycles. Python's collector still walks them every few
hundred allocations, about an eighth of such a plan's time. Reference counting frees everything as usual
while the collector is off; it is turned back on when the last request holding it off is done (requests run
in threads), and collects then as it normally would.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_disabled_here = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _holders, _disabled_here
    with _lock:
        _holders += 1
        if _holders == 1 and gc.isenabled():
            gc.disable()
            _disabled_here = True
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _disabled_here:
                _disabled_here = False
                gc.enable()
