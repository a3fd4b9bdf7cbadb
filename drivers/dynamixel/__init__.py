"""Dynamixel X-series arms over Protocol 2.0: ALOHA (ViperX/WidowX) and Koch, for real or virtual.

* :mod:`~robolearn.drivers.dynamixel.protocol` — Protocol 2.0 framing (CRC-16, byte stuffing,
  parser);
* :mod:`~robolearn.drivers.dynamixel.control_table` — register addresses, units and servo models;
* :mod:`~robolearn.drivers.dynamixel.virtual_bus` — virtual servos on a pseudo-terminal, with faults
  (``python -m robolearn.drivers.dynamixel.virtual_bus`` serves one from the command line; not
  imported by this package, so that ``-m`` runs it cleanly);
* :mod:`~robolearn.drivers.dynamixel.bus` — :class:`DynamixelBus` over ``dynamixel_sdk`` + pyserial;
* :mod:`~robolearn.drivers.dynamixel.configs` — ready-made arms (:data:`ARMS`, :data:`ALOHA`);
* :mod:`~robolearn.drivers.dynamixel.calibration` — per-arm calibration files and the guided
  procedure;
* :mod:`~robolearn.drivers.dynamixel.arm` — :class:`DynamixelArm`, the driver-contract
  implementation;
* :mod:`~robolearn.drivers.dynamixel.bimanual` — :class:`BimanualArm`, two arms as ALOHA's 14-DoF
  robot.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robolearn.drivers.dynamixel.arm import DynamixelArm, GripperMap, build_spec
    from robolearn.drivers.dynamixel.bimanual import BimanualArm
    from robolearn.drivers.dynamixel.bus import BusMotor, DynamixelBus
    from robolearn.drivers.dynamixel.calibration import (
        ArmCalibration,
        GuidedCalibration,
        MotorCalibration,
        calibration_path,
        default_calibration_dir,
        load_calibration,
        save_calibration,
        symmetric_calibration,
    )
    from robolearn.drivers.dynamixel.configs import (
        ALOHA,
        ARMS,
        KOCH_FOLLOWER,
        KOCH_LEADER,
        VIPERX_300S,
        WIDOWX_250S_LEADER,
        ArmConfig,
        BimanualConfig,
        GripperConfig,
        MotorConfig,
        arm_config,
    )

# Exported names → their submodule, imported on first use (PEP 562): the arm configs, the
# control table and the virtual bus need no SDK, so listing robots does not either; the bus
# (and the arm and calibration built on it) needs dynamixel-sdk and pyserial
# (robolearn[dynamixel]) and says so in one line when they are missing.
_EXPORTS = {
    "ALOHA": "configs",
    "ARMS": "configs",
    "ArmCalibration": "calibration",
    "ArmConfig": "configs",
    "BimanualArm": "bimanual",
    "BimanualConfig": "configs",
    "BusMotor": "bus",
    "DynamixelArm": "arm",
    "DynamixelBus": "bus",
    "GripperConfig": "configs",
    "GripperMap": "arm",
    "GuidedCalibration": "calibration",
    "KOCH_FOLLOWER": "configs",
    "KOCH_LEADER": "configs",
    "MotorCalibration": "calibration",
    "MotorConfig": "configs",
    "VIPERX_300S": "configs",
    "WIDOWX_250S_LEADER": "configs",
    "arm_config": "configs",
    "build_spec": "arm",
    "calibration_path": "calibration",
    "default_calibration_dir": "calibration",
    "load_calibration": "calibration",
    "save_calibration": "calibration",
    "symmetric_calibration": "calibration",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "ALOHA",
    "ARMS",
    "KOCH_FOLLOWER",
    "KOCH_LEADER",
    "VIPERX_300S",
    "WIDOWX_250S_LEADER",
    "ArmCalibration",
    "ArmConfig",
    "BimanualArm",
    "BimanualConfig",
    "BusMotor",
    "DynamixelArm",
    "DynamixelBus",
    "GripperConfig",
    "GripperMap",
    "GuidedCalibration",
    "MotorCalibration",
    "MotorConfig",
    "arm_config",
    "build_spec",
    "calibration_path",
    "default_calibration_dir",
    "load_calibration",
    "save_calibration",
    "symmetric_calibration",
]
