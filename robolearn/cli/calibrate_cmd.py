"""``robolearn calibrate``: the guided calibration of a Dynamixel arm (ALOHA, Koch).

Move the arm to its middle pose and press Enter; move every joint through its range and
press Enter. The calibration (homing offsets, ranges, directions per motor) is saved as
``<name>.json`` in the calibration directory, where
:class:`robolearn.drivers.dynamixel.DynamixelArm`
finds it. See :mod:`robolearn.drivers.dynamixel.calibration`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from robolearn.cli.common import Subcommand


@dataclass
class CalibrateConfig:
    """Calibrate a Dynamixel arm: middle pose, then every joint through its range."""

    robot: str
    """Arm config: viperx-300s, widowx-250s-leader, koch-follower, koch-leader, or an ALOHA
    arm (aloha-left-follower, aloha-right-follower, aloha-left-leader, aloha-right-leader)."""
    port: str
    """Serial port of the arm's adapter, e.g. /dev/ttyUSB0 (`robolearn find-ports` lists them)."""
    name: str | None = None
    """Name of this physical arm and stem of its calibration file; none uses the config's."""
    calibration_dir: Path | None = None
    """Where calibrations live; none uses $ROBOLEARN_CALIBRATION_DIR, else
    ~/.cache/robolearn/calibration."""
    rate_hz: float = 20.0
    """How often positions are read while the joints are moved through their ranges."""


def run(cfg: CalibrateConfig) -> int:
    """Run the guided procedure on the terminal and save the calibration."""
    from robolearn.drivers.dynamixel.calibration import GuidedCalibration, save_calibration
    from robolearn.drivers.dynamixel.configs import arm_config

    config = arm_config(cfg.robot)
    guided = GuidedCalibration(config, cfg.port, cfg.name, sys.stdin, sys.stdout, cfg.rate_hz)
    calibration = guided.run()
    path = save_calibration(calibration, cfg.calibration_dir)
    print(f"saved the calibration of {calibration.arm} to {path}")
    return 0


COMMAND = Subcommand(
    name="calibrate",
    help="calibrate a Dynamixel arm (middle pose, then joint ranges)",
    config=CalibrateConfig,
    run=run,
)
