"""A Franka Research 3 / Panda through franky (libfranka), and franky-sim to test it without one.

``python -m robolearn.drivers.franka`` serves a simulated FR3 (franky-sim) from a shell.
"""

from robolearn.drivers.franka.config import (
    FR3_JOINTS,
    FR3_READY_Q,
    HAND,
    PANDA_JOINTS,
    FrankaConfig,
    franka_spec,
)
from robolearn.drivers.franka.driver import FrankaDriver
from robolearn.drivers.franka.errors import (
    FrankaConnectionError,
    FrankaControlError,
    FrankaError,
    FrankaGripperError,
    FrankaReflexError,
    franka_error,
)
from robolearn.drivers.franka.sim import FrankySim

__all__ = [
    "FR3_JOINTS",
    "FR3_READY_Q",
    "HAND",
    "PANDA_JOINTS",
    "FrankaConfig",
    "FrankaConnectionError",
    "FrankaControlError",
    "FrankaDriver",
    "FrankaError",
    "FrankaGripperError",
    "FrankaReflexError",
    "FrankySim",
    "franka_error",
    "franka_spec",
]
