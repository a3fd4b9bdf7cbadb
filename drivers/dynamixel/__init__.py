"""Dynamixel X-series arms over Protocol 2.0: ALOHA (ViperX/WidowX) and Koch, for real or virtual.

* :mod:`~drivers.dynamixel.protocol` — Protocol 2.0 framing (CRC-16, byte stuffing, parser);
* :mod:`~drivers.dynamixel.control_table` — register addresses, units and servo models;
* :mod:`~drivers.dynamixel.virtual_bus` — virtual servos on a pseudo-terminal, with faults
  (``python -m drivers.dynamixel.virtual_bus`` serves one from the command line; not
  imported by this package, so that ``-m`` runs it cleanly);
* :mod:`~drivers.dynamixel.bus` — :class:`DynamixelBus` over ``dynamixel_sdk`` + pyserial;
* :mod:`~drivers.dynamixel.configs` — ready-made arms (:data:`ARMS`, :data:`ALOHA`);
* :mod:`~drivers.dynamixel.calibration` — per-arm calibration files and the guided procedure;
* :mod:`~drivers.dynamixel.arm` — :class:`DynamixelArm`, the driver-contract implementation;
* :mod:`~drivers.dynamixel.bimanual` — :class:`BimanualArm`, two arms as ALOHA's 14-DoF robot.
"""

from drivers.dynamixel.arm import DynamixelArm, GripperMap, build_spec
from drivers.dynamixel.bimanual import BimanualArm
from drivers.dynamixel.bus import BusMotor, DynamixelBus
from drivers.dynamixel.calibration import (
    ArmCalibration,
    GuidedCalibration,
    MotorCalibration,
    calibration_path,
    default_calibration_dir,
    load_calibration,
    save_calibration,
    symmetric_calibration,
)
from drivers.dynamixel.configs import (
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
