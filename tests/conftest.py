"""Shared fixtures, and the registry of drivers that the driver-contract suite runs against.

Every test in ``test_driver_contract.py`` runs once per entry of :data:`DRIVER_FACTORIES`,
so a new driver (a real Franka through franky against the franky-sim emulator, Dynamixel
arms on a virtual serial bus, a PyBullet simulation) passes exactly the tests the MuJoCo
Panda passes.

Adding a driver
---------------
1. Write a factory: a function of no arguments that returns a new, *unconnected* driver.
   A hardware driver starts its emulator in the factory. If the emulator must be stopped
   afterwards, write the factory as a generator: start the emulator, ``yield`` the driver,
   stop the emulator. The fixtures disconnect the driver before the generator resumes::

       def franka_on_franky_sim() -> Iterator[Driver]:
           with FrankySim() as sim:             # starts the emulator process
               yield FrankaDriver(sim.address)  # the driver connects to it

2. Append it to :data:`DRIVER_FACTORIES` as ``pytest.param(factory, id="<short-name>")``.
   Add ``marks=SIM_CLOCK`` only when the driver's clock is a deterministic simulation:
   ``wait(dt)`` advances simulated time by ``dt`` to within one physics step, and two
   instances given the same commands evolve identically. Drivers paced by wall time
   (hardware and its emulators) leave the mark off; the sim-only checks then skip.

Factories may be called more than once per test (the determinism checks build two twins).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator

import pytest

from robolearn.drivers.base import Driver
from robolearn.drivers.mujoco_panda import CameraRequest, MujocoPandaDriver
from tests import driver_factories_dynamixel as dynamixel_factories
from tests import driver_factories_franka as franka_factories

DriverFactory = Callable[[], Driver] | Callable[[], Iterator[Driver]]

SIM_CLOCK = pytest.mark.sim_clock
"""Mark of a registry entry whose clock is a deterministic simulation (see the module doc)."""


def mujoco_panda() -> Driver:
    """The simulated Panda without cameras."""
    return MujocoPandaDriver()


def mujoco_panda_cameras() -> Driver:
    """The simulated Panda with an RGB-D front camera and an RGB wrist camera."""
    cameras = (CameraRequest("front", 64, 64, depth=True), CameraRequest("wrist", 48, 64))
    return MujocoPandaDriver(cameras=cameras)


DRIVER_FACTORIES = [
    pytest.param(mujoco_panda, id="mujoco_panda", marks=SIM_CLOCK),
    pytest.param(mujoco_panda_cameras, id="mujoco_panda-cameras", marks=SIM_CLOCK),
    *franka_factories.FACTORIES,
    *dynamixel_factories.FACTORIES,
]
"""Every driver the contract suite covers; see the module doc for how to add one."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sim_clock: the driver's clock is a deterministic simulation"
    )


@pytest.fixture(params=DRIVER_FACTORIES)
def make_driver(request: pytest.FixtureRequest) -> Iterator[Callable[[], Driver]]:
    """Builds unconnected drivers from one registry entry; all are released after the test."""
    factory: DriverFactory = request.param
    with contextlib.ExitStack() as stack:

        def make() -> Driver:
            if inspect.isgeneratorfunction(factory):
                drv = stack.enter_context(contextlib.contextmanager(factory)())
            else:
                drv = factory()
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
def sim_clock(request: pytest.FixtureRequest) -> bool:
    """Whether the registry entry under test is marked :data:`SIM_CLOCK`."""
    return request.node.get_closest_marker("sim_clock") is not None


@pytest.fixture
def panda() -> Iterator[MujocoPandaDriver]:
    """A connected simulated Panda without cameras, for MuJoCo-specific tests."""
    drv = MujocoPandaDriver()
    drv.connect()
    yield drv
    drv.disconnect()
