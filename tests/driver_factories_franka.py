"""Driver-contract registry entries for the Franka driver on franky-sim (see ``conftest.py``).

franky-sim runs in a child process (:class:`robolearn.drivers.franka.sim.FrankySim`). Starting one
takes
about a second, resetting a running one a fraction of that, so the simulators are pooled: a
factory takes an idle simulator (or starts one), resets it to the ready pose, yields a fresh
unconnected :class:`FrankaDriver` on it, and gives the simulator back afterwards. Every test
thus starts from the same state. The pool's children end with this process (their stdin closes).

The driver runs on wall time (franky-sim paces itself to the wall clock), so the entry is not
``sim_clock``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
from collections.abc import Iterator

from driver_contract import DriverEntry, optional_entry

from robolearn.core.types import ControlMode
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


def _importable(*modules: str) -> bool:
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


FRANKY_INSTALLED = _importable("franky", "franky_sim")  # both come with the dev extras
FRANKY_HINT = "franky-control and franky-sim are missing: pip install -e '.[dev]'"


ENTRIES: list[DriverEntry] = optional_entry(
    DriverEntry(
        "franka-franky_sim",
        franka_on_franky_sim,
        modes=frozenset(
            {ControlMode.JOINT_POSITION, ControlMode.JOINT_IMPEDANCE, ControlMode.EE_DELTA}
        ),
        gripper=True,
    ),
    available=FRANKY_INSTALLED,
    install_hint=FRANKY_HINT,
)
"""The entries appended to ``conftest.DRIVER_REGISTRY``."""
