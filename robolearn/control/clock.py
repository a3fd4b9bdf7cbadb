"""Clocks for control loops.

A :class:`Clock` is anything with ``now()`` and ``wait_until(t)``; every
:class:`robolearn.drivers.base.Driver` is one (a simulator advances physics while waiting, hardware
waits wall time). :class:`WallClock` is the hardware clock alone, :class:`FakeClock` a
deterministic clock for tests whose waits jump instantly and whose "work" is scripted.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from robolearn.core.timing import precise_sleep_until


@runtime_checkable
class Clock(Protocol):
    """Seconds and waiting on one time base."""

    def now(self) -> float:
        """Current time in seconds."""
        ...

    def wait_until(self, t: float) -> float:
        """Block until ``now() >= t``; return ``now()``."""
        ...


class WallClock:
    """``time.perf_counter`` with precise (sleep, then spin) waiting."""

    def now(self) -> float:
        return time.perf_counter()

    def wait_until(self, t: float) -> float:
        return precise_sleep_until(t)


class FakeClock:
    """A clock that only moves when told to: ``wait_until`` jumps, ``advance`` simulates work."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def wait_until(self, t: float) -> float:
        self._t = max(self._t, float(t))
        return self._t

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds pass, as if some work took that long."""
        if dt < 0:
            raise ValueError(f"time cannot go backwards (dt={dt})")
        self._t += dt
