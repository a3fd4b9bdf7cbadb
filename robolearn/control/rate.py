"""An absolute-deadline rate loop with named timing sections and live timing statistics.

A :class:`RateLoop` ticks at ``t0 + k * period_s`` on a :class:`~robolearn.control.clock.Clock`
— usually the driver itself, so one loop runs a simulated arm as fast as possible (waiting
advances physics), a simulated arm paced to wall time (``realtime=True``) and a real arm
(the driver waits: sleep, then spin for the last stretch) without change::

    loop = RateLoop.for_driver(driver, hz=100)
    for k in loop:                      # blocks until the next deadline
        with loop.section("observe"):
            state = driver.read()
        with loop.section("infer"):
            action = policy.act(state)
        with loop.section("command"):
            driver.command(action)
        if done:
            break
    loop.stats.write_json("out/timing.json")

Deadlines are absolute, so time spent in a tick never shifts the grid. When a tick starts
after its deadline (the previous tick overran), the *overrun policy* decides:

* ``"skip"`` (default, for hardware): the late tick runs at once and takes the most recent
  deadline that has passed; older passed deadlines are dropped and counted as skipped. The loop
  stays on its original grid, never ticks faster than ``hz``, and a late tick is less than one
  period behind its deadline when it starts.
* ``"catch_up"``: every deadline gets its tick; missed ticks run back to back, without
  waiting, until the loop is back on schedule. For fixed-step simulation or recording, where
  each tick must stand for exactly one period; on hardware it sends a burst of commands.

A clock that goes backwards (a simulation reset puts its time back to 0) restarts the grid at
the new time; :meth:`RateLoop.restart` does the same on request.

Statistics (:class:`TimingStats`, ``loop.stats``) are live: ``summary()`` at any time, and
``write_json(path)`` at the end. The *period error* of a tick is its start minus its deadline.
It is measured on the wall clock (``time.perf_counter``) when ``wall_time`` is true — the
default for :class:`~robolearn.control.clock.WallClock` and for drivers that keep the
contract's wall-time ``now()`` (hardware) — and on the loop's clock otherwise (simulation:
an error there is a rounding to physics steps, not lateness). Pass ``wall_time=True`` for a
simulation paced to wall time; overruns are still judged on the loop's clock, which in such a
simulation never runs late (the driver catches up with wall time by itself), so there only the
wall-time period error shows a slow tick. Section durations are always wall time
(``perf_counter``): simulated time does not move while a tick computes. ``summary()`` costs
time proportional to the window: call it between ticks now and then, not every tick.

Pacing is the process's own: no real-time scheduling (``SCHED_FIFO``) nor CPU pinning, which
need privileges. Heavy computation belongs in another *process*: a busy Python thread in the
same process holds the GIL for up to ``sys.getswitchinterval()`` (5 ms), and the loop's
wake-up waits for it. Garbage collection can pause a tick too; after setup, a control process
may call ``gc.freeze()`` (moves everything allocated so far out of the collector's sight) —
a process-wide choice that this module leaves to the program.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from robolearn.control.clock import Clock, WallClock
from robolearn.core.types import ConfigError, FloatArray
from robolearn.drivers.base import Driver

OverrunPolicy = Literal["skip", "catch_up"]
OVERRUN_POLICIES: tuple[OverrunPolicy, ...] = ("skip", "catch_up")

MIN_STATS_WINDOW = 1000
"""Fewest ticks the default statistics window holds."""
DEFAULT_STATS_WINDOW_S = 60.0
"""Seconds of ticks the default statistics window holds (at least MIN_STATS_WINDOW ticks)."""


def check_hz(hz: float, max_hz: float | None = None, robot: str = "this driver") -> float:
    """``hz`` as a float if it is a finite rate in (0, ``max_hz``]; else :class:`ConfigError`."""
    if not isinstance(hz, numbers.Real) or not math.isfinite(hz) or hz <= 0:
        raise ConfigError(f"control rate must be a finite number of Hz > 0, got {hz!r}")
    if max_hz is not None and hz > max_hz:
        raise ConfigError(
            f"control rate {hz:g} Hz is above the {max_hz:g} Hz {robot} supports "
            f"(spec.max_control_hz); choose a rate ≤ {max_hz:g} Hz"
        )
    return float(hz)


class TimingStats:
    """Per-tick period error, period and section durations in bounded ring buffers.

    Percentiles cover the last ``window`` ticks; ``ticks``, ``overruns``, ``skipped`` and
    ``worst_error_s`` cover the whole run. Recording a tick writes into preallocated arrays.
    """

    def __init__(
        self,
        hz: float,
        window: int,
        time_base: str = "wall",
        overrun_policy: str = "skip",
    ) -> None:
        if window < 2:
            raise ConfigError(f"stats window must hold at least 2 ticks, got {window}")
        self.hz = check_hz(hz)
        self.window = int(window)
        self.time_base = time_base
        self.overrun_policy = overrun_policy
        self._errors_s: FloatArray = np.zeros(self.window)
        self._periods_s: FloatArray = np.full(self.window, np.nan)
        self._sections: dict[str, FloatArray] = {}
        self._row = -1
        self.clear()

    def clear(self) -> None:
        """Forget every tick recorded so far."""
        self.ticks = 0
        self.overruns = 0
        self.skipped = 0
        self.restarts = 0
        self.worst_error_s = -math.inf
        self._last_start_s = math.nan
        self._row = -1
        self._periods_s.fill(np.nan)
        for durations in self._sections.values():
            durations.fill(np.nan)

    def record_tick(
        self, start_s: float, error_s: float, late: bool = False, skipped: int = 0
    ) -> None:
        """One tick that started at ``start_s``, ``error_s`` after its deadline (seconds)."""
        row = self.ticks % self.window
        self._row = row
        self._errors_s[row] = error_s
        self._periods_s[row] = start_s - self._last_start_s
        self._last_start_s = start_s
        for durations in self._sections.values():
            durations[row] = math.nan
        self.ticks += 1
        self.overruns += late
        self.skipped += skipped
        self.worst_error_s = max(self.worst_error_s, error_s)

    def mark_restart(self) -> None:
        """The grid restarted: the next tick has no period to the one before."""
        self._last_start_s = math.nan
        self.restarts += 1

    def add_section(self, name: str, duration_s: float) -> None:
        """Add ``duration_s`` to section ``name`` of the current tick (sums repeated entries)."""
        durations = self._sections.get(name)
        if durations is None:
            durations = self._sections[name] = np.full(self.window, np.nan)
        if self._row < 0:
            return  # before the first tick: there is no tick to charge it to
        previous = durations[self._row]
        durations[self._row] = duration_s if math.isnan(previous) else previous + duration_s

    def summary(self) -> dict[str, Any]:
        """Figures so far, in ms: period error p50/p99/max, mean period, sections, counts."""
        n = min(self.ticks, self.window)
        return {
            "hz": self.hz,
            "period_ms": 1e3 / self.hz,
            "time_base": self.time_base,
            "overrun_policy": self.overrun_policy,
            "ticks": self.ticks,
            "overruns": self.overruns,
            "skipped": self.skipped,
            "restarts": self.restarts,
            "window_ticks": n,
            "period_error_ms": _percentiles_ms(self._errors_s[:n]),
            "worst_period_error_ms": 1e3 * self.worst_error_s if n else None,
            "mean_period_ms": _mean_ms(self._periods_s[:n]),
            "sections_ms": {
                name: _percentiles_ms(d[:n], mean=True) for name, d in self._sections.items()
            },
        }

    def period_errors_s(self) -> FloatArray:
        """The period errors (s) of the ticks in the window, oldest first (a copy)."""
        if self.ticks <= self.window:
            return self._errors_s[: self.ticks].copy()
        row = self.ticks % self.window
        return np.concatenate([self._errors_s[row:], self._errors_s[:row]])

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`summary` to ``path`` as JSON (creating folders); returns the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.summary(), indent=2) + "\n")
        return out


def _percentiles_ms(values_s: FloatArray, mean: bool = False) -> dict[str, float | None]:
    """p50/p99/max (and mean) in ms of the finite values; None where there are none."""
    finite = values_s[np.isfinite(values_s)]
    keys = ("p50", "p99", "max", "mean") if mean else ("p50", "p99", "max")
    if finite.size == 0:
        return dict.fromkeys(keys)
    p50, p99 = np.percentile(finite, (50.0, 99.0))
    figures = {"p50": 1e3 * p50, "p99": 1e3 * p99, "max": 1e3 * finite.max()}
    if mean:
        figures["mean"] = 1e3 * finite.mean()
    return {k: float(v) for k, v in figures.items()}


def _mean_ms(values_s: FloatArray) -> float | None:
    finite = values_s[np.isfinite(values_s)]
    return float(1e3 * finite.mean()) if finite.size else None


class SectionTimer:
    """Context manager adding its ``time.perf_counter`` duration to one named section of the
    current tick; made by :meth:`RateLoop.section`, reused every tick, not re-entrant."""

    __slots__ = ("_name", "_start_s", "_stats")

    def __init__(self, stats: TimingStats, name: str) -> None:
        self._stats = stats
        self._name = name
        self._start_s = 0.0

    def __enter__(self) -> None:
        self._start_s = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stats.add_section(self._name, time.perf_counter() - self._start_s)


class RateLoop:
    """Ticks at absolute deadlines ``t0 + k / hz`` on ``clock``; see the module doc.

    ``tick()`` (or iterating) blocks until the next deadline and returns its grid index ``k``
    (it jumps by the number of deadlines skipped). ``t0`` is the clock's time at the first
    tick, which starts at once. ``stats_window`` is the number of ticks the percentiles cover
    (default: one minute, at least 1000). ``wall_time`` picks the time base of the period error
    (default: wall time for clocks that read ``time.perf_counter``, else the loop's clock).
    """

    def __init__(
        self,
        hz: float,
        clock: Clock,
        overrun: OverrunPolicy = "skip",
        stats_window: int | None = None,
        wall_time: bool | None = None,
    ) -> None:
        self.hz = check_hz(hz)
        self.period_s = 1.0 / self.hz
        self.clock = clock
        self.overrun = _check_policy(overrun)
        self._clock_is_wall = _reads_wall_time(clock)
        self.wall_time = self._clock_is_wall if wall_time is None else bool(wall_time)
        window = _default_window(self.hz) if stats_window is None else stats_window
        base = "wall" if self.wall_time else "clock"
        self.stats = TimingStats(self.hz, window, base, self.overrun)
        self._t0_s = math.nan  # grid anchor on the loop clock; NaN until the first tick
        self._k = 0
        self._last_start_s = math.nan
        self._wall_offset_s = 0.0  # wall deadline minus clock deadline
        self._ticks_since_start = 0
        self._sections: dict[str, SectionTimer] = {}

    @classmethod
    def for_driver(
        cls,
        driver: Driver,
        hz: float | None = None,
        overrun: OverrunPolicy = "skip",
        stats_window: int | None = None,
        wall_time: bool | None = None,
    ) -> RateLoop:
        """A loop on ``driver``'s clock at ``hz`` (default: the spec's ``control_hz``).

        Raises :class:`ConfigError` for a rate that is not positive or is above the driver's
        ``spec.max_control_hz``.
        """
        spec = driver.spec
        rate = check_hz(spec.control_hz if hz is None else hz, spec.max_control_hz, spec.name)
        return cls(rate, driver, overrun, stats_window, wall_time)

    @property
    def deadline_s(self) -> float:
        """The current tick's deadline on the loop clock (NaN before the first tick)."""
        return self._t0_s + self._k * self.period_s

    def tick(self) -> int:
        """Block until the next deadline (see the overrun policy); returns its grid index."""
        now = self.clock.now()
        if math.isnan(self._t0_s) or now < self._last_start_s:
            return self._start_grid(now)
        k, late, skipped = self._next_index(now)
        deadline = self._t0_s + k * self.period_s
        start = self.clock.wait_until(deadline)
        self._k, self._last_start_s = k, start
        self._record(start, deadline, late, skipped)
        return k

    def __iter__(self) -> Iterator[int]:
        """Ticks forever (``break`` out, or ``itertools.islice(loop, n)``)."""
        while True:
            yield self.tick()

    def restart(self) -> None:
        """Start a new grid: the next tick runs at once and becomes ``t0``."""
        if not math.isnan(self._t0_s):
            self.stats.mark_restart()
        self._t0_s = math.nan

    def section(self, name: str) -> SectionTimer:
        """Context manager timing section ``name`` of the current tick (wall time)."""
        timer = self._sections.get(name)
        if timer is None:
            timer = self._sections[name] = SectionTimer(self.stats, name)
        return timer

    def _start_grid(self, now: float) -> int:
        if not math.isnan(self._t0_s):
            self.stats.mark_restart()  # the clock went backwards: a simulation reset
        self._t0_s, self._k, self._last_start_s = now, 0, now
        self._ticks_since_start = 0
        self._record(now, now, False, 0)
        return 0

    def _next_index(self, now: float) -> tuple[int, bool, int]:
        """Grid index of the next tick, whether it is late, how many deadlines it skips."""
        k = self._k + 1
        if now <= self._t0_s + k * self.period_s:
            return k, False, 0
        if self.overrun == "catch_up":
            return k, True, 0
        latest = max(k, math.floor((now - self._t0_s) / self.period_s))
        return latest, True, latest - k

    def _record(self, start: float, deadline: float, late: bool, skipped: int) -> None:
        if self.wall_time and not self._clock_is_wall:
            start, deadline = self._to_wall(deadline)
        self._ticks_since_start += 1
        self.stats.record_tick(start, start - deadline, late, skipped)

    def _to_wall(self, deadline: float) -> tuple[float, float]:
        """Tick start and deadline on the wall clock, for a clock that does not read it.

        Such a clock (a simulation paced to wall time) only starts pacing when first waited
        on, so its wall grid is anchored at the first waited tick after each (re)start: those
        first two ticks show no error.
        """
        start = time.perf_counter()
        if self._ticks_since_start <= 1:
            self._wall_offset_s = start - deadline
        return start, deadline + self._wall_offset_s


def _check_policy(overrun: str) -> OverrunPolicy:
    for policy in OVERRUN_POLICIES:
        if overrun == policy:
            return policy
    raise ConfigError(f"overrun policy must be one of {OVERRUN_POLICIES}, got {overrun!r}")


def _default_window(hz: float) -> int:
    return max(MIN_STATS_WINDOW, math.ceil(hz * DEFAULT_STATS_WINDOW_S))


def _reads_wall_time(clock: Clock) -> bool:
    """Whether ``clock.now()`` is ``time.perf_counter`` (WallClock, a hardware driver)."""
    if isinstance(clock, WallClock):
        return True
    return isinstance(clock, Driver) and type(clock).now is Driver.now
