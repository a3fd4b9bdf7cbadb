"""Shared fixtures, the registry of drivers that the driver-contract suite runs against, and the
``gpu`` tests' switch.

Every test in ``test_driver_contract.py`` runs once per entry of :data:`DRIVER_REGISTRY` that
has what the test needs, so a new driver (a real Franka through franky against the franky-sim
emulator, Dynamixel arms on a virtual serial bus, a PyBullet simulation) passes exactly the
tests that apply to it, and no test is skipped for lack of a mode, gripper or camera.

Adding a driver
---------------
1. Write a factory: a function of no arguments that returns a new, *unconnected* driver.
   A hardware driver starts its emulator in the factory. If the emulator must be stopped
   afterwards, write the factory as a generator: start the emulator, ``yield`` the driver,
   stop the emulator. The fixtures disconnect the driver before the generator resumes::

       def franka_on_franky_sim() -> Iterator[Driver]:
           with FrankySim() as sim:             # starts the emulator process
               yield FrankaDriver(sim.address)  # the driver connects to it

2. Append a :class:`~driver_contract.DriverEntry` to :data:`DRIVER_REGISTRY` declaring its
   control modes, gripper, cameras and whether its clock is a deterministic simulation; the
   contract's first test checks the declaration against the driver's ``spec``. A test asks for
   what it needs with ``@pytest.mark.driver_needs(modes=[...], gripper=True, cameras=True,
   sim_clock=True, missing_mode=True)``; a test with a ``mode`` argument runs once per
   (entry, mode) pair for the modes the entry offers, among ``modes`` when given.

Factories may be called more than once per test (the determinism checks build two twins).

GPU tests
---------
Tests marked ``gpu`` run whenever CUDA is available (``make test`` on a GPU machine) and are
deselected, not skipped, without it, so a CPU run still reports 0 skipped.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator

import pytest
from driver_contract import OMITTED, DriverEntry

from robolearn.core.types import ControlMode
from robolearn.drivers.base import Driver
from robolearn.drivers.mujoco_panda import CameraRequest, MujocoPandaDriver
from robolearn.drivers.pybullet_panda import PybulletPandaDriver
from tests import driver_factories_dynamixel as dynamixel_factories
from tests import driver_factories_franka as franka_factories


def mujoco_panda() -> Driver:
    """The simulated Panda without cameras."""
    return MujocoPandaDriver()


def mujoco_panda_cameras() -> Driver:
    """The simulated Panda with an RGB-D front camera and an RGB wrist camera."""
    cameras = (CameraRequest("front", 64, 64, depth=True), CameraRequest("wrist", 48, 64))
    return MujocoPandaDriver(cameras=cameras)


def pybullet_panda() -> Driver:
    """The PyBullet Panda without cameras."""
    return PybulletPandaDriver()


def pybullet_panda_cameras() -> Driver:
    """The PyBullet Panda with the cameras of :func:`mujoco_panda_cameras`."""
    cameras = (CameraRequest("front", 64, 64, depth=True), CameraRequest("wrist", 48, 64))
    return PybulletPandaDriver(cameras=cameras)


ALL_MODES = frozenset(ControlMode)

DRIVER_REGISTRY: list[DriverEntry] = [
    DriverEntry("mujoco_panda", mujoco_panda, ALL_MODES, gripper=True, sim_clock=True),
    DriverEntry(
        "mujoco_panda-cameras",
        mujoco_panda_cameras,
        ALL_MODES,
        gripper=True,
        cameras=True,
        sim_clock=True,
    ),
    DriverEntry("pybullet_panda", pybullet_panda, ALL_MODES, gripper=True, sim_clock=True),
    DriverEntry(
        "pybullet_panda-cameras",
        pybullet_panda_cameras,
        ALL_MODES,
        gripper=True,
        cameras=True,
        sim_clock=True,
    ),
    *franka_factories.ENTRIES,
    *dynamixel_factories.ENTRIES,
]
"""Every driver the contract suite covers; see the module doc for how to add one."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "driver_needs(modes, gripper, cameras, sim_clock, missing_mode): the contract test runs "
        "only on the registry entries that have these",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"driver contract: left out {entry}" for entry in OMITTED]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes every test that uses a registry driver over the entries it applies to."""
    if "driver_entry" not in metafunc.fixturenames:
        return
    mark = metafunc.definition.get_closest_marker("driver_needs")
    needs = dict(mark.kwargs) if mark else {}
    if "mode" in metafunc.fixturenames:
        candidates = needs.pop("modes", tuple(ControlMode))
        cases = [
            pytest.param(entry, mode, id=f"{entry.id}-{mode.value}")
            for entry in DRIVER_REGISTRY
            if entry.satisfies(**needs)
            for mode in candidates
            if mode in entry.modes
        ]
        metafunc.parametrize(("driver_entry", "mode"), cases, indirect=["driver_entry"])
    else:
        cases = [pytest.param(e, id=e.id) for e in DRIVER_REGISTRY if e.satisfies(**needs)]
        metafunc.parametrize("driver_entry", cases, indirect=True)


@pytest.fixture
def driver_entry(request: pytest.FixtureRequest) -> DriverEntry:
    """The registry entry under test (parametrized by :func:`pytest_generate_tests`)."""
    entry: DriverEntry = request.param
    if entry.missing:
        pytest.fail(f"{entry.id}: {entry.missing}", pytrace=False)
    return entry


@pytest.fixture
def make_driver(driver_entry: DriverEntry) -> Iterator[Callable[[], Driver]]:
    """Builds unconnected drivers from one registry entry; all are released after the test."""
    factory = driver_entry.factory
    with contextlib.ExitStack() as stack:

        def make() -> Driver:
            if inspect.isgeneratorfunction(factory):
                drv = stack.enter_context(contextlib.contextmanager(factory)())
            else:
                drv = factory()  # type: ignore[assignment]
            stack.callback(drv.disconnect)  # runs before the emulator (if any) stops
            return drv

        yield make


@pytest.fixture
def driver(make_driver: Callable[[], Driver]) -> Driver:
    """A connected driver from the registry; disconnected after the test."""
    drv = make_driver()
    drv.connect()
    return drv


@pytest.fixture
def sim_clock(driver_entry: DriverEntry) -> bool:
    """Whether the registry entry under test runs on a deterministic simulated clock."""
    return driver_entry.sim_clock


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Selects the ``gpu`` tests exactly when CUDA is available (see the module doc)."""
    if "gpu" in config.getoption("markexpr") or _cuda_available():
        return  # an explicit -m about gpu decides; with CUDA the gpu tests run
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if item.get_closest_marker("gpu") is None]


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.fixture
def panda() -> Iterator[MujocoPandaDriver]:
    """A connected simulated Panda without cameras, for MuJoCo-specific tests."""
    drv = MujocoPandaDriver()
    drv.connect()
    yield drv
    drv.disconnect()
