"""Driver-contract registry entries for the Franka driver on franky-sim (see ``conftest.py``).

franky-sim runs in a child process (:class:`robolearn.drivers.franka.sim.FrankySim`). Starting one
takes
about a second, resetting a running one a fraction of that, so the simulators are pooled: a
factory takes an idle simulator (or starts one), resets it to the ready pose, yields a fresh
unconnected :class:`FrankaDriver` on it, and gives the simulator back afterwards. Every test
thus starts from the same state. The pool's children end with this process (their stdin closes).

The driver runs on wall time (franky-sim paces itself to the wall clock), so the entry carries no
``SIM_CLOCK`` mark.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from robolearn.drivers.base import Driver
from robolearn.drivers.franka import FrankaDriver, FrankySim

SIM_DYNAMICS_FACTOR = 0.5
"""franky's relative dynamics factor in the tests: franky-sim may run slower than real time on a
loaded machine, and the contract's one-second moves must still finish."""

_IDLE: list[FrankySim] = []
_ALL: list[FrankySim] = []


@contextlib.contextmanager
def pooled_sim() -> Iterator[FrankySim]:
    """A running franky-sim in its initial state, returned to the pool afterwards (unless the
    test stopped or killed it)."""
    if _IDLE:
        sim = _IDLE.pop()
        sim.reset()
    else:
        sim = FrankySim()
        sim.start()
        _ALL.append(sim)
    try:
        yield sim
    finally:
        if sim.running:
            _IDLE.append(sim)


@atexit.register
def _stop_all() -> None:
    for sim in _ALL:
        sim.stop()


def franka_on_franky_sim() -> Iterator[Driver]:
    """An unconnected FR3 + Franka Hand driver on a freshly reset franky-sim."""
    with pooled_sim() as sim:
        yield FrankaDriver(sim.driver_config(dynamics_factor=SIM_DYNAMICS_FACTOR))


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


FACTORIES: list[Any] = (
    [pytest.param(franka_on_franky_sim, id="franka-franky_sim")]
    if _installed("franky", "franky_sim")  # both come with the dev extras
    else []
)
"""``pytest.param(factory, id=...)`` entries appended to ``conftest.DRIVER_FACTORIES``."""
