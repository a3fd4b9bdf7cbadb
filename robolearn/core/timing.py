"""Precise waiting on the monotonic clock: sleep for most of the wait, spin for the last stretch.

``time.sleep`` on Linux overshoots by 50–100 µs when idle and by up to the GIL switch
interval (5 ms) when another Python thread is busy; sleeping until ``spin_s`` before the
deadline and then spinning makes the wake-up precise to a few µs when the process owns a core.
"""

from __future__ import annotations

import time

DEFAULT_SPIN_S = 0.0015
"""How long before a deadline to stop sleeping and start spinning."""


def precise_sleep_until(deadline: float, spin_s: float = DEFAULT_SPIN_S) -> float:
    """Block until ``time.perf_counter() >= deadline``; returns the wake-up time."""
    remaining = deadline - time.perf_counter()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    now = time.perf_counter()
    while now < deadline:
        now = time.perf_counter()
    return now
