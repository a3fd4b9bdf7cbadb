"""A Dynamixel arm (ALOHA ViperX/WidowX, Koch) behind the driver contract.

:class:`DynamixelArm` joins an :class:`~robolearn.drivers.dynamixel.configs.ArmConfig` (which servo
drives which joint), a calibration (:mod:`robolearn.drivers.dynamixel.calibration`: homing offsets
and
ranges) and a serial port. Everything it offers is in SI units:

* ``spec``: one joint per primary motor, limits = the calibrated range in rad (0 at the
  middle pose), velocity limit from the config (or the servo model), effort = stall torque
  × the number of motors on the joint; a gripper width range when the config has one;
  ``JOINT_POSITION`` is the only control mode;
* ``read()``: one sync read of Present Current/Velocity/Position of every primary motor.
  ``tau`` is estimated from Present Current (datasheet torque constants; no load model).
  ``ee_pos``/``ee_quat`` are zeros and the identity quaternion: the driver has no kinematic
  model of these arms. The timestamp is ``time.perf_counter()`` (monotonic) taken when the
  replies are in;
* ``command()``: joint targets clipped to the calibrated limits, gripper width clipped to
  its range, sent as one sync write of Goal Position; returns what was applied. Shadow
  motors follow their primaries through the Secondary ID register;
* the clock is the wall clock (the base class's ``wait``).

``connect()`` pings every servo (one error naming any missing ID and the port), writes the
EEPROM settings that differ from what the config and calibration ask for (torque off while
doing so), holds the present pose and switches torque on (``torque=False`` keeps a leader
limp; a leader's trigger gripper is sprung regardless). If the bus disappears (adapter
unplugged), the next ``read``/``command`` raises :class:`DriverError` at once; servos that
stop answering while the port stays open raise after the retries (a few SDK timeouts of
~34 ms each). A servo's hardware error is a :class:`DriverError` naming it;
:meth:`DynamixelArm.clear_hardware_errors` reboots the faulted servos.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robolearn.core.types import (
    Command,
    ControlMode,
    DriverError,
    FloatArray,
    GripperSpec,
    JointSpec,
    RobotSpec,
    RobotState,
    require_finite,
)
from robolearn.drivers.base import Driver
from robolearn.drivers.dynamixel.bus import DynamixelBus
from robolearn.drivers.dynamixel.calibration import (
    ArmCalibration,
    bus_motors,
    load_calibration,
)
from robolearn.drivers.dynamixel.configs import ArmConfig, MotorConfig, arm_config
from robolearn.drivers.dynamixel.control_table import (
    RAD_PER_TICK,
    RAD_S_PER_VELOCITY_UNIT,
    REG,
    SECONDARY_ID_DISABLED,
    TICKS_PER_REV,
    OperatingMode,
    decode_value,
    model,
    rad_to_ticks,
    ticks_to_rad,
)

STATE_START = REG["present_current"].address
"""The per-tick sync read covers Present Current (126), Velocity (128) and Position (132)."""
STATE_LENGTH = REG["present_position"].end - STATE_START
EEPROM_START = REG["return_delay_time"].address
EEPROM_LENGTH = REG["min_position_limit"].end - EEPROM_START
IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
CONFIGURED_EEPROM = tuple(
    REG[name]
    for name in (
        "return_delay_time",
        "drive_mode",
        "operating_mode",
        "secondary_id",
        "homing_offset",
        "current_limit",
        "velocity_limit",
        "max_position_limit",
        "min_position_limit",
    )
)
"""The EEPROM registers ``connect()`` sets from the config and calibration."""


@dataclass(frozen=True)
class GripperMap:
    """Gripper ticks ⇄ opening fraction (0 closed … 1 open) ⇄ width in m."""

    closed_ticks: int
    open_ticks: int
    width_range_m: tuple[float, float] | None

    def fraction(self, ticks: float) -> float:
        """The opening fraction at ``ticks``, clipped to [0, 1]."""
        span = self.open_ticks - self.closed_ticks
        return float(np.clip((ticks - self.closed_ticks) / span, 0.0, 1.0))

    def ticks(self, fraction: float) -> int:
        """The position (ticks) of an opening fraction."""
        return round(self.closed_ticks + fraction * (self.open_ticks - self.closed_ticks))

    def width(self, fraction: float) -> float:
        """The width (m) of an opening fraction (0.0 without a width range)."""
        if self.width_range_m is None:
            return 0.0
        lo, hi = self.width_range_m
        return lo + fraction * (hi - lo)

    def fraction_of_width(self, width_m: float) -> float:
        """The opening fraction of a width, clipped to [0, 1]."""
        if self.width_range_m is None:
            return 0.0
        lo, hi = self.width_range_m
        return float(np.clip((width_m - lo) / (hi - lo), 0.0, 1.0))


class DynamixelArm(Driver):
    """One Dynamixel arm on one serial port (see the module doc).

    ``calibration`` defaults to the saved one of ``name`` (the config's name unless given)
    in ``calibration_dir``; a missing file is a :class:`ConfigError` that says how to
    create it.
    """

    def __init__(
        self,
        config: ArmConfig | str,
        port: str,
        calibration: ArmCalibration | None = None,
        *,
        name: str | None = None,
        calibration_dir: Path | None = None,
        torque: bool = True,
        torque_off_on_disconnect: bool = True,
        retries: int = 3,
        latency_timer_ms: float = 16.0,
    ) -> None:
        super().__init__()
        self.config = arm_config(config) if isinstance(config, str) else config
        self.name = name or (calibration.arm if calibration else self.config.name)
        self.port = str(port)
        self.calibration = calibration or load_calibration(
            self.name, self.config, calibration_dir, self.port
        )
        self.calibration.check_matches(self.config)
        self.torque = torque
        """Whether ``connect`` switches the joints' torque on (a leader arm stays limp)."""
        self.torque_off_on_disconnect = torque_off_on_disconnect
        self.bus = DynamixelBus(
            self.port, bus_motors(self.config), self.config.baud, retries, latency_timer_ms
        )
        self._spec = build_spec(self.name, self.config, self.calibration)
        self._joint_ids = [self.config.motor(j).id for j in self.config.joints]
        self._gripper = self._gripper_map()
        self._gripper_id = (
            self.config.motor(self.config.gripper.motor).id if self.config.gripper else None
        )
        self._ticks_range = {
            m.id: goal_range(self.config, self.calibration, m) for m in self.config.primaries
        }
        """Goal Position bounds (ticks) of every primary motor: its calibrated range."""
        self._gripper_width_m: float | None = None
        self.gripper_fraction = 0.0
        """The gripper's (or handle's) opening fraction at the last ``read()``."""

    @property
    def spec(self) -> RobotSpec:
        """Joints, limits (calibrated, SI), the gripper's width range and the rates."""
        return self._spec

    @property
    def gripper_speed_m_s(self) -> float:
        """How fast the gripper opens at its velocity limit (m/s; 0 without a width range)."""
        gripper = self.config.gripper
        if gripper is None or gripper.width_range_m is None or self._gripper is None:
            return 0.0
        info = model(self.config.motor(gripper.motor).model)
        units = self.config.velocity_limit or info.default_velocity_limit
        ticks_s = units * RAD_S_PER_VELOCITY_UNIT / RAD_PER_TICK
        span_ticks = abs(self._gripper.open_ticks - self._gripper.closed_ticks)
        lo, hi = gripper.width_range_m
        return (hi - lo) * ticks_s / span_ticks

    def clear_hardware_errors(self) -> list[str]:
        """Reboot every motor that reports a hardware error; the names of those rebooted.

        A rebooted motor comes back with torque off: ``disconnect()`` and ``connect()``
        again to resume (after removing the cause of the error).
        """
        opened_here = not self.bus.is_open
        if opened_here:
            self.bus.open()
        try:
            faulted = [m for m in self.config.motors if self.bus.hardware_error(m.id)]
            for m in faulted:
                self.bus.reboot(m.id)
        finally:
            if opened_here:
                self.bus.close()
        return [m.name for m in faulted]

    # ---------------------------------------------------------------- lifecycle

    def _connect(self) -> None:
        self.bus.open()
        try:
            self.bus.check_motors()
            self._configure_eeprom()
            self._hold_and_enable()
            state = self._read()
            self._gripper_width_m = state.gripper_width if self._spec.gripper else None
        except BaseException:
            self.bus.close()
            raise

    def _disconnect(self) -> None:
        try:
            if self.torque_off_on_disconnect and self.bus.is_open:
                self.bus.set_torque(False)
        except DriverError:
            pass  # the bus is gone or a motor is silent: nothing left to switch off
        finally:
            self.bus.close()

    def _configure_eeprom(self) -> None:
        """Write the EEPROM values that differ from the wanted ones (torque off meanwhile).

        Shadows are unlinked first, so a write to a primary does not also reach its shadow,
        and linked again last.
        """
        wanted = {m.id: self._wanted_eeprom(m) for m in self.config.motors}
        present = self._read_eeprom()
        changes = {
            motor_id: {n: v for n, v in regs.items() if present[motor_id][n] != v}
            for motor_id, regs in wanted.items()
        }
        if not any(changes.values()):
            return
        self.bus.set_torque(False)
        shadows = [m for m in self.config.motors if m.shadow_of is not None]
        for m in shadows:
            if present[m.id]["secondary_id"] != SECONDARY_ID_DISABLED:
                self.bus.write(m.id, "secondary_id", SECONDARY_ID_DISABLED)
        for motor_id, regs in changes.items():
            for reg_name, value in regs.items():
                if reg_name != "secondary_id":
                    self.bus.write(motor_id, reg_name, value)
        for m in shadows:
            self.bus.write(m.id, "secondary_id", wanted[m.id]["secondary_id"])

    def _wanted_eeprom(self, motor: MotorConfig) -> dict[str, int]:
        """The EEPROM register values ``motor`` should hold."""
        cal = self.calibration.motors[motor.name]
        primary = self.config.motor(motor.shadow_of) if motor.shadow_of else motor
        low, high = (0, TICKS_PER_REV - 1) if motor.shadow_of else (cal.range_min, cal.range_max)
        wanted = {
            "drive_mode": cal.drive_mode,
            "operating_mode": int(self.config.mode_of(primary)),
            "homing_offset": cal.homing_offset,
            "min_position_limit": max(0, low),
            "max_position_limit": min(TICKS_PER_REV - 1, high),
            "return_delay_time": self.config.return_delay_time,
            "secondary_id": primary.id if motor.shadow_of else SECONDARY_ID_DISABLED,
        }
        if self.config.velocity_limit is not None:
            wanted["velocity_limit"] = self.config.velocity_limit
        gripper = self.config.gripper
        if gripper is not None and primary.name == gripper.motor and gripper.current_limit:
            wanted["current_limit"] = gripper.current_limit
        return wanted

    def _read_eeprom(self) -> dict[int, dict[str, int]]:
        """The configurable EEPROM registers of every motor (one sync read)."""
        ids = [m.id for m in self.config.motors]
        blocks = self.bus.sync_read_block(EEPROM_START, EEPROM_LENGTH, ids)
        return {
            motor_id: {
                reg.name: decode_value(reg, block[reg.address - EEPROM_START :])
                for reg in CONFIGURED_EEPROM
            }
            for motor_id, block in blocks.items()
        }

    def _hold_and_enable(self) -> None:
        """Goal Position := Present Position (within the limits), then torque on."""
        gripper = self.config.gripper
        if gripper is not None and gripper.goal_current is not None:
            self.bus.write(self._gripper_id or 0, "goal_current", gripper.goal_current)
        present = self.bus.sync_read("present_position", list(self._ticks_range))
        for motor_id, ticks in present.items():
            low, high = self._ticks_range[motor_id]
            self.bus.write(motor_id, "goal_position", int(np.clip(ticks, low, high)))
        enabled = [m.id for m in self.config.motors] if self.torque else []
        if gripper is not None and gripper.trigger_fraction is not None and self._gripper:
            assert self._gripper_id is not None
            self.bus.write(
                self._gripper_id, "goal_position", self._gripper.ticks(gripper.trigger_fraction)
            )
            enabled = sorted({*enabled, self._gripper_id})
        self.bus.set_torque(False, [m.id for m in self.config.motors if m.id not in enabled])
        self.bus.set_torque(True, enabled)

    # ---------------------------------------------------------------- read / command

    def _read(self) -> RobotState:
        ids = list(self._ticks_range)
        blocks = self.bus.sync_read_block(STATE_START, STATE_LENGTH, ids)
        stamp = time.perf_counter()
        current, velocity, position = _decode_state(blocks, ids)  # (n,) each, raw units
        n = len(self._joint_ids)
        state = RobotState(
            timestamp=stamp,
            q=np.array([ticks_to_rad(t) for t in position[:n]]),
            dq=velocity[:n] * RAD_S_PER_VELOCITY_UNIT,
            tau=current[:n] * self._torque_per_unit,
            ee_pos=np.zeros(3),
            ee_quat=IDENTITY_QUAT.copy(),
        )
        if self._gripper is not None:
            self.gripper_fraction = self._gripper.fraction(position[n])
            state.gripper_width = self._gripper.width(self.gripper_fraction)
        return state

    def _command(self, cmd: Command) -> Command:
        spec = self._spec
        target = require_finite("joint_position", cmd.joint_position, (spec.dof,))
        width = cmd.gripper_width
        if width is not None:
            width = float(require_finite("gripper_width", np.asarray(width, dtype=float), ()))
        applied = np.clip(target, spec.limits("lower"), spec.limits("upper"))
        goals = {
            motor_id: int(np.clip(rad_to_ticks(float(angle)), *self._ticks_range[motor_id]))
            for motor_id, angle in zip(self._joint_ids, applied, strict=True)
        }
        applied_width = self._gripper_goal(width, goals)
        self.bus.sync_write("goal_position", goals)
        self._gripper_width_m = applied_width
        return Command(
            ControlMode.JOINT_POSITION, joint_position=applied, gripper_width=applied_width
        )

    def _gripper_goal(self, width_m: float | None, goals: dict[int, int]) -> float | None:
        """Add the gripper's goal (``width_m`` clipped, or the last one) to ``goals``; the
        width applied (``None`` for an arm without a gripper width)."""
        gripper, grip_map = self._spec.gripper, self._gripper
        if gripper is None or grip_map is None or self._gripper_id is None:
            return None
        width_m = self._gripper_width_m if width_m is None else width_m
        if width_m is None:
            return None
        width_m = float(np.clip(width_m, gripper.min_width, gripper.max_width))
        goals[self._gripper_id] = grip_map.ticks(grip_map.fraction_of_width(width_m))
        return width_m

    # ---------------------------------------------------------------- helpers

    @property
    def _torque_per_unit(self) -> FloatArray:
        """N·m per Present Current unit for each joint (all its motors together)."""
        out = []
        for joint in self.config.joints:
            info = model(self.config.motor(joint).model)
            out.append(info.torque_per_current_unit * (1 + len(self.config.shadows(joint))))
        return np.array(out)

    def _gripper_map(self) -> GripperMap | None:
        gripper = self.config.gripper
        if gripper is None:
            return None
        cal = self.calibration.motors[gripper.motor]
        closed, opened = cal.range_min, cal.range_max
        if not gripper.opens_toward_higher_ticks:
            closed, opened = opened, closed
        return GripperMap(closed, opened, gripper.width_range_m)


def goal_range(
    config: ArmConfig, calibration: ArmCalibration, motor: MotorConfig
) -> tuple[int, int]:
    """(min, max) Goal Position (ticks) of a primary motor: its calibrated range, within one
    turn for a motor in position mode (whose limit registers cannot hold more)."""
    cal = calibration.motors[motor.name]
    if config.mode_of(motor) == OperatingMode.POSITION:
        return max(0, cal.range_min), min(TICKS_PER_REV - 1, cal.range_max)
    return cal.range_min, cal.range_max


def build_spec(name: str, config: ArmConfig, calibration: ArmCalibration) -> RobotSpec:
    """The :class:`RobotSpec` of an arm: limits from the calibration, rates from the config."""
    joints = []
    for joint in config.joints:
        info = model(config.motor(joint).model)
        low_ticks, high_ticks = goal_range(config, calibration, config.motor(joint))
        lower, upper = ticks_to_rad(low_ticks), ticks_to_rad(high_ticks)
        velocity_units = config.velocity_limit or info.default_velocity_limit
        motors = 1 + len(config.shadows(joint))
        joints.append(
            JointSpec(
                joint,
                lower,
                upper,
                velocity_units * RAD_S_PER_VELOCITY_UNIT,
                info.stall_torque_nm * motors,
            )
        )
    gripper = None
    if config.gripper is not None and config.gripper.width_range_m is not None:
        lo, hi = config.gripper.width_range_m
        gripper = GripperSpec(lo, hi, config.gripper.max_force_n)
    return RobotSpec(
        name=name,
        joints=tuple(joints),
        control_modes=frozenset({ControlMode.JOINT_POSITION}),
        control_hz=config.control_hz,
        max_control_hz=config.max_control_hz,
        gripper=gripper,
    )


def _decode_state(
    blocks: dict[int, bytes], ids: list[int]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(current, velocity, position) raw values (n,) from the per-tick sync-read blocks."""
    cur, vel, pos = REG["present_current"], REG["present_velocity"], REG["present_position"]
    rows = []
    for motor_id in ids:
        block = blocks[motor_id]
        rows.append(
            [decode_value(reg, block[reg.address - STATE_START :]) for reg in (cur, vel, pos)]
        )
    table = np.array(rows, dtype=np.float64)  # (n, 3)
    return table[:, 0], table[:, 1], table[:, 2]
