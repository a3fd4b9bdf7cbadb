"""Per-arm calibration: homing offsets, ranges and directions per motor, as JSON on disk.

A calibration makes an arm's joint angles mean the same on every build: in the arm's
*middle pose* (described by :attr:`ArmConfig.middle_pose`) every motor reads tick 2048
(joint angle 0), and the range each joint was moved through becomes its limits. Two arms
calibrated to the same middle pose (a leader and its follower) then agree on joint angles.

Files live in ``~/.cache/robolearn/calibration/<arm-name>.json`` unless a directory is
given (or the ``ROBOLEARN_CALIBRATION_DIR`` environment variable names one)::

    {"format": "robolearn/dynamixel-calibration@1", "arm": "aloha-left-follower",
     "robot": "viperx-300s",
     "motors": {"waist": {"id": 1, "model": "xm540-w270", "drive_mode": 0,
                          "homing_offset": -112, "range_min": 1024, "range_max": 3072}, ...}}

``homing_offset`` is written to the servo's Homing Offset register (Present Position =
direction × shaft + offset); ``range_min``/``range_max`` are Present Positions (ticks) and
become the servo's position limits; ``drive_mode`` is the Drive Mode register (bit 0 reverses
the direction).

:class:`GuidedCalibration` is the procedure ``robolearn calibrate`` runs: middle pose,
Enter; move every joint through its range while the positions are read continuously,
Enter. It reads a text stream for the Enter presses, so tests script it with a pipe.
"""

from __future__ import annotations

import json
import os
import select
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from robolearn.core.types import ConfigError
from robolearn.drivers.dynamixel.bus import BusMotor, DynamixelBus
from robolearn.drivers.dynamixel.configs import ArmConfig, MotorConfig
from robolearn.drivers.dynamixel.control_table import (
    CENTER_TICKS,
    MAX_HOMING_OFFSET,
    SECONDARY_ID_DISABLED,
    TICKS_PER_REV,
    OperatingMode,
    model,
    ticks_to_rad,
)

CALIBRATION_FORMAT = "robolearn/dynamixel-calibration@1"
CALIBRATION_DIR_ENV = "ROBOLEARN_CALIBRATION_DIR"
MIN_RANGE_TICKS = 100
"""Smallest range (≈ 9°) a motor must be moved through for its calibration to count."""


@dataclass(frozen=True)
class MotorCalibration:
    """One motor's calibration (raw register values, see the module doc)."""

    id: int
    model: str
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


@dataclass(frozen=True)
class ArmCalibration:
    """The calibration of one physical arm: a :class:`MotorCalibration` per motor name."""

    arm: str
    """The arm's own name (the file's stem)."""
    robot: str
    """The :class:`ArmConfig` it was made with."""
    motors: Mapping[str, MotorCalibration]

    def to_json(self) -> dict[str, Any]:
        """The JSON document (a dict) this calibration is saved as."""
        motors = {name: asdict(m) for name, m in self.motors.items()}
        return {
            "format": CALIBRATION_FORMAT,
            "arm": self.arm,
            "robot": self.robot,
            "motors": motors,
        }

    @classmethod
    def from_json(cls, data: Any, source: str) -> ArmCalibration:
        """Parse a JSON document; :class:`ConfigError` naming ``source`` if malformed."""
        try:
            if data["format"] != CALIBRATION_FORMAT:
                raise ValueError(f"format {data['format']!r}, expected {CALIBRATION_FORMAT!r}")
            motors = {name: MotorCalibration(**m) for name, m in data["motors"].items()}
            return cls(arm=str(data["arm"]), robot=str(data["robot"]), motors=motors)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source} is not a valid calibration file ({exc!r})") from exc

    def check_matches(self, config: ArmConfig, path: Path | str = "") -> None:
        """:class:`ConfigError` if this calibration's motors differ from ``config``'s."""
        expected = {m.name: (m.id, model(m.model).name) for m in config.motors}
        actual = {name: (m.id, m.model) for name, m in self.motors.items()}
        if expected != actual:
            raise ConfigError(
                f"calibration {path or self.arm} was made for motors {actual} but arm "
                f"{config.name!r} has {expected}; recalibrate with "
                f"{calibrate_command(config.name, self.arm)}"
            )

    def range_rad(self, motor: str) -> tuple[float, float]:
        """(lower, upper) joint angle in rad of a motor's calibrated range."""
        m = self.motors[motor]
        return ticks_to_rad(m.range_min), ticks_to_rad(m.range_max)


def default_calibration_dir() -> Path:
    """``$ROBOLEARN_CALIBRATION_DIR``, else ``~/.cache/robolearn/calibration``."""
    override = os.environ.get(CALIBRATION_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "robolearn" / "calibration"


def calibration_path(arm_name: str, directory: Path | None = None) -> Path:
    """Where the calibration of ``arm_name`` lives."""
    return (directory or default_calibration_dir()) / f"{arm_name}.json"


def calibrate_command(robot: str, arm_name: str, port: str | None = None) -> str:
    """The ``robolearn calibrate ...`` command line that creates a calibration."""
    command = f"robolearn calibrate --robot {robot} --port {port or '<port>'}"
    return f"`{command}`" if arm_name == robot else f"`{command} --name {arm_name}`"


def save_calibration(calibration: ArmCalibration, directory: Path | None = None) -> Path:
    """Write ``calibration`` atomically (a temporary file, then a rename); returns its path."""
    path = calibration_path(calibration.arm, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(calibration.to_json(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load_calibration(
    arm_name: str, config: ArmConfig, directory: Path | None = None, port: str | None = None
) -> ArmCalibration:
    """The saved calibration of ``arm_name``, checked against ``config``.

    A missing file is one :class:`ConfigError` naming the file and the ``robolearn
    calibrate`` command that creates it.
    """
    path = calibration_path(arm_name, directory)
    if not path.is_file():
        where = "" if directory is None else f" --calibration-dir {directory}"
        command = calibrate_command(config.name, arm_name, port)
        raise ConfigError(
            f"no calibration for arm {arm_name!r}: {path} does not exist; create it with "
            f"{command.rstrip('`')}{where}`"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read calibration {path}: {exc}") from exc
    calibration = ArmCalibration.from_json(data, str(path))
    calibration.check_matches(config, path)
    return calibration


def bus_motors(config: ArmConfig) -> list[BusMotor]:
    """The :class:`BusMotor` list of an arm's servos."""
    return [BusMotor(m.id, model(m.model), m.name) for m in config.motors]


def drive_mode_of(motor: MotorConfig) -> int:
    """The Drive Mode register value for a motor (reverse bit from the config)."""
    return 1 if motor.reversed else 0


# -------------------------------------------------------------------------- guided procedure


class GuidedCalibration:
    """The interactive calibration of one arm (``robolearn calibrate``).

    1. torque off, shadows unlinked, directions written and homing offsets cleared;
    2. "move to the middle pose, press Enter": homing offsets put every motor on tick 2048;
    3. "move every joint through its range, press Enter": positions are read at ``rate_hz``
       and each motor's range is the span it was seen in.

    ``stdin`` must have a file descriptor (a terminal or a pipe): step 3 waits on it with
    ``select`` while reading the servos.
    """

    def __init__(
        self,
        config: ArmConfig,
        port: str,
        arm_name: str | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        rate_hz: float = 20.0,
        retries: int = 3,
    ) -> None:
        self.config = config
        self.arm_name = arm_name or config.name
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.period_s = 1.0 / rate_hz
        self.bus = DynamixelBus(port, bus_motors(config), config.baud, retries)

    def run(self) -> ArmCalibration:
        """Walk the operator through the procedure; the resulting calibration (not saved)."""
        with self.bus:
            self.bus.check_motors()
            self._prepare()
            self._say("Torque is off on every motor: hold the arm, it may sag.")
            self._say(f"Move {self.arm_name} to its middle pose: {self.config.middle_pose}.")
            self._wait_for_enter("Press Enter when it is there.")
            offsets = self._home()
            self._say("Now move every joint through its whole range, one after the other")
            self._say("(the gripper fully closed and fully open).")
            ranges = self._record_ranges("Press Enter when every joint has been moved.")
        calibration = self._calibration(offsets, ranges)
        self._report(calibration)
        return calibration

    def _prepare(self) -> None:
        """Torque off, Secondary IDs off (a write to a primary must not reach its shadow),
        directions from the config, homing offsets 0."""
        self.bus.set_torque(False)
        for m in self.config.motors:
            self._write_if_changed(m, "secondary_id", SECONDARY_ID_DISABLED)
        for m in self.config.motors:
            self._write_if_changed(m, "drive_mode", drive_mode_of(m))
            self._write_if_changed(m, "homing_offset", 0)

    def _write_if_changed(self, motor: MotorConfig, name: str, value: int) -> None:
        if self.bus.read(motor.id, name) != value:
            self.bus.write(motor.id, name, value)

    def _home(self) -> dict[int, int]:
        """Homing offsets that put the current pose on tick 2048; written to the servos."""
        positions = self.bus.sync_read("present_position")
        offsets = {}
        for motor_id, ticks in positions.items():
            offset = CENTER_TICKS - ticks
            if abs(offset) > MAX_HOMING_OFFSET:
                raise ConfigError(
                    f"motor {self.bus.motors[motor_id].label()} reads {ticks} ticks, too far "
                    "from one turn to home; clear its multi-turn count (power-cycle it) and retry"
                )
            self.bus.write(motor_id, "homing_offset", offset)
            offsets[motor_id] = offset
        return offsets

    def _record_ranges(self, prompt: str) -> dict[int, tuple[int, int]]:
        """Read positions until Enter; each motor's (min, max), the middle pose included."""
        self._say(prompt)
        lows = dict.fromkeys(self.bus.motors, CENTER_TICKS)
        highs = dict.fromkeys(self.bus.motors, CENTER_TICKS)
        while True:
            for motor_id, ticks in self.bus.sync_read("present_position").items():
                lows[motor_id] = min(lows[motor_id], ticks)
                highs[motor_id] = max(highs[motor_id], ticks)
            self._show_live(lows, highs)
            if self._enter_pressed(self.period_s):
                break
        if self._is_tty():
            self.stdout.write("\n")
        return {i: (lows[i], highs[i]) for i in self.bus.motors}

    def _calibration(
        self, offsets: dict[int, int], ranges: dict[int, tuple[int, int]]
    ) -> ArmCalibration:
        motors = {}
        for m in self.config.motors:
            low, high = ranges[m.id]
            self._check_range(m, low, high)
            motors[m.name] = MotorCalibration(
                m.id, model(m.model).name, drive_mode_of(m), offsets[m.id], low, high
            )
        return ArmCalibration(self.arm_name, self.config.name, motors)

    def _check_range(self, motor: MotorConfig, low: int, high: int) -> None:
        """:class:`ConfigError` if a motor was barely moved or went past one turn."""
        if high - low < MIN_RANGE_TICKS:
            degrees = (high - low) * 360.0 / TICKS_PER_REV
            raise ConfigError(
                f"{motor.name} (ID {motor.id}) moved through only {degrees:.0f}°; move every "
                "joint through its whole range before pressing Enter, then calibrate again"
            )
        if self.config.mode_of(motor) == OperatingMode.POSITION and (
            low < 0 or high > TICKS_PER_REV - 1
        ):
            raise ConfigError(
                f"{motor.name} (ID {motor.id}) went {low}..{high} ticks, more than half a turn "
                "either side of its middle pose; start from the middle pose and stay within "
                "the joint's range"
            )

    # ---------------------------------------------------------------- terminal

    def _say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def _is_tty(self) -> bool:
        isatty = getattr(self.stdout, "isatty", None)
        return bool(isatty and isatty())

    def _wait_for_enter(self, prompt: str) -> None:
        self._say(prompt)
        if not self.stdin.readline():
            raise ConfigError("calibration aborted: input closed before Enter was pressed")

    def _enter_pressed(self, timeout_s: float) -> bool:
        """Whether a line arrived on stdin within ``timeout_s`` (consumes it)."""
        ready, _, _ = select.select([self.stdin], [], [], timeout_s)
        if not ready:
            return False
        if not self.stdin.readline():
            raise ConfigError("calibration aborted: input closed before Enter was pressed")
        return True

    def _show_live(self, lows: dict[int, int], highs: dict[int, int]) -> None:
        """One refreshed line of per-motor ranges (only on a terminal)."""
        if not self._is_tty():
            return
        cells = [f"{m.name}:{highs[m.id] - lows[m.id]:4d}" for m in self.config.motors]
        self.stdout.write("\r" + " ".join(cells) + "  ")
        self.stdout.flush()

    def _report(self, calibration: ArmCalibration) -> None:
        for name, m in calibration.motors.items():
            lo, hi = calibration.range_rad(name)
            self._say(
                f"  {name:16s} ID {m.id:3d}  {m.range_min:5d}..{m.range_max:5d} ticks  "
                f"{lo:+.2f}..{hi:+.2f} rad"
            )


def symmetric_calibration(
    config: ArmConfig, arm_name: str | None = None, half_range_ticks: int = 1024
) -> ArmCalibration:
    """The calibration of an arm whose shafts all sit at tick 2048 in the middle pose (the
    virtual bus's servos start there): homing offset 0 (4096 for a reversed motor, whose
    reading is negated) and ranges of ±``half_range_ticks`` around 2048."""
    motors = {
        m.name: MotorCalibration(
            m.id,
            model(m.model).name,
            drive_mode_of(m),
            2 * CENTER_TICKS if m.reversed else 0,
            CENTER_TICKS - half_range_ticks,
            CENTER_TICKS + half_range_ticks,
        )
        for m in config.motors
    }
    return ArmCalibration(arm_name or config.name, config.name, motors)
