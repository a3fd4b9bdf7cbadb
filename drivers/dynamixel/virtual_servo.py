"""One emulated X-series servo: control-table memory, instruction semantics and dynamics.

Used by :mod:`robolearn.drivers.dynamixel.virtual_bus`, which puts servos behind a pseudo-terminal.
See that module for what is modelled and what is not.
"""

from __future__ import annotations

import math
import time

from robolearn.core.types import ConfigError
from robolearn.drivers.dynamixel.control_table import (
    BAUD_INDEX,
    BAUD_OF_INDEX,
    CENTER_TICKS,
    EEPROM_END,
    MAX_EXTENDED_POSITION,
    MAX_HOMING_OFFSET,
    REG,
    REGISTERS,
    TABLE_SIZE,
    TICKS_PER_REV,
    VELOCITY_UNIT_RPM,
    ModelInfo,
    OperatingMode,
    Register,
    decode_value,
    encode_value,
    model,
)
from robolearn.drivers.dynamixel.protocol import ALERT, MAX_ID, StatusError

TAU_S = 0.02
"""Time constant of the emulated position loop (s)."""
TICKS_S_PER_VELOCITY_UNIT = VELOCITY_UNIT_RPM / 60.0 * TICKS_PER_REV
FULL_CURRENT_ERROR_TICKS = 512.0
"""Position error at which the emulated Present Current reaches Current Limit."""
SHUTDOWN_DEFAULT = 0b0011_0100
"""Factory Shutdown register: overload, electrical shock and overheating stop the motor."""
_REGISTER_AT: dict[int, Register] = {r.address: r for r in REGISTERS}


class VirtualServo:
    """One emulated X-series servo: control-table memory plus first-order dynamics.

    ``position`` is the initial Present Position (ticks, with factory homing and direction).
    ``mirror_of`` couples this servo's shaft rigidly and mirrored to another servo's, as an
    ALOHA shadow motor is coupled to its primary: it then moves only with the primary.
    """

    def __init__(
        self,
        motor_id: int,
        model_name: str | ModelInfo,
        position: float = CENTER_TICKS,
        baud: int = 1_000_000,
        mirror_of: VirtualServo | None = None,
    ) -> None:
        if not 0 <= motor_id <= MAX_ID:
            raise ConfigError(f"servo ID must be within 0..{MAX_ID}, got {motor_id}")
        if baud not in BAUD_INDEX:
            raise ConfigError(f"baud {baud} is not an X-series rate; use one of {list(BAUD_INDEX)}")
        self.model = model_name if isinstance(model_name, ModelInfo) else model(model_name)
        self.mem = bytearray(TABLE_SIZE)
        self._factory_reset(motor_id, BAUD_INDEX[baud])
        self.mirror_of = mirror_of
        self._mirror_sum = 0.0 if mirror_of is None else position + mirror_of.shaft_ticks
        self._shaft = float(position)
        self._velocity_ticks_s = 0.0
        self._t = time.monotonic()
        self._registered: tuple[int, bytes] | None = None

    # ---------------------------------------------------------------- registers

    @property
    def id(self) -> int:
        """The ID register (changes take effect with the next packet)."""
        return self.get("id")

    @property
    def baud(self) -> int:
        """The servo's line speed (bit/s), from its Baud Rate register."""
        return BAUD_OF_INDEX.get(self.get("baud_rate"), 0)

    def get(self, name: str) -> int:
        """A register's value straight from memory (no dynamics update)."""
        reg = REG[name]
        return decode_value(reg, self.mem[reg.address : reg.end])

    def set(self, name: str, value: int) -> None:
        """Store a register's value with no checks (test setup, internal updates)."""
        reg = REG[name]
        self.mem[reg.address : reg.end] = encode_value(reg, value)

    @property
    def torque_enabled(self) -> bool:
        """Whether Torque Enable is set."""
        return self.get("torque_enable") == 1

    @property
    def hardware_error(self) -> int:
        """The Hardware Error Status bits."""
        return self.get("hardware_error_status")

    @property
    def secondary_id(self) -> int | None:
        """The Secondary ID, or ``None`` when switched off (> 252)."""
        value = self.get("secondary_id")
        return value if value <= MAX_ID else None

    def error_byte(self, error: int) -> int:
        """A status packet's error byte: ``error`` plus the alert bit on a hardware error."""
        return error | (ALERT if self.hardware_error else 0)

    def _factory_reset(self, motor_id: int, baud_index: int) -> None:
        """Every register at its factory value, keeping ``motor_id`` and ``baud_index``."""
        self.mem[:] = bytes(TABLE_SIZE)
        m = self.model
        for name, value in (
            ("model_number", m.number),
            ("firmware_version", m.firmware),
            ("id", motor_id),
            ("baud_rate", baud_index),
            ("return_delay_time", 250),
            ("operating_mode", OperatingMode.POSITION),
            ("secondary_id", 255),
            ("protocol_type", 2),
            ("moving_threshold", 10),
            ("temperature_limit", 80),
            ("max_voltage_limit", 160),
            ("min_voltage_limit", 95),
            ("pwm_limit", 885),
            ("current_limit", m.default_current_limit),
            ("velocity_limit", m.default_velocity_limit),
            ("max_position_limit", TICKS_PER_REV - 1),
            ("shutdown", SHUTDOWN_DEFAULT),
        ):
            self.set(name, value)
        self._reset_ram()

    def _reset_ram(self) -> None:
        """RAM registers at their power-on values."""
        self.mem[EEPROM_END:] = bytes(TABLE_SIZE - EEPROM_END)
        self.set("status_return_level", 2)
        self.set("present_input_voltage", 120)
        self.set("present_temperature", 35)

    # ---------------------------------------------------------------- position frames

    @property
    def _direction(self) -> int:
        return -1 if self.get("drive_mode") & 1 else 1

    @property
    def shaft_ticks(self) -> float:
        """Physical shaft position (ticks), independent of homing offset and direction."""
        if self.mirror_of is not None:
            return self._mirror_sum - self.mirror_of.shaft_ticks
        return self._shaft

    @property
    def present_position(self) -> float:
        """Present Position (ticks) before rounding: direction × shaft + homing offset."""
        return self._direction * self.shaft_ticks + self.get("homing_offset")

    def _set_present(self, ticks: float) -> None:
        shaft = (ticks - self.get("homing_offset")) * self._direction
        if self.mirror_of is not None:
            self.mirror_of._shaft = self._mirror_sum - shaft
        else:
            self._shaft = shaft

    @property
    def velocity_ticks_s(self) -> float:
        """Present velocity (ticks/s) in the Present Position frame."""
        if self.mirror_of is None:
            return self._velocity_ticks_s
        return -self._direction * self.mirror_of._direction * self.mirror_of.velocity_ticks_s

    def move_by_hand(self, ticks: float) -> None:
        """Put Present Position at ``ticks``, as a person turning the joint would."""
        self._set_present(ticks)

    # ---------------------------------------------------------------- dynamics

    def advance(self, now: float) -> None:
        """Integrate the motion up to ``now`` (``time.monotonic`` seconds)."""
        dt, self._t = now - self._t, now
        if dt <= 0.0 or self.mirror_of is not None:
            return
        if not self.torque_enabled:
            self._velocity_ticks_s = 0.0
            return
        position, self._velocity_ticks_s = self._step(self.present_position, dt)
        self._set_present(position)

    def _vmax_ticks_s(self) -> float:
        """Speed bound (ticks/s): Velocity Limit, or Profile Velocity when lower and set."""
        limit = self.get("velocity_limit") or self.model.default_velocity_limit
        profile = self.get("profile_velocity")
        units = min(limit, profile) if profile > 0 else limit
        return units * TICKS_S_PER_VELOCITY_UNIT

    def _step(self, position: float, dt: float) -> tuple[float, float]:
        """(position, velocity) after ``dt`` seconds in the current operating mode."""
        mode = self.get("operating_mode")
        vmax = self._vmax_ticks_s()
        if mode in (OperatingMode.POSITION, OperatingMode.EXTENDED_POSITION):
            return approach(position, self._goal_position(), dt, vmax)
        if mode == OperatingMode.CURRENT_BASED_POSITION:
            return approach(position, self._goal_position(), dt, vmax * self._current_fraction())
        if mode == OperatingMode.VELOCITY:
            velocity = self.get("goal_velocity") * TICKS_S_PER_VELOCITY_UNIT
        elif mode == OperatingMode.CURRENT:
            velocity = vmax * self._current_fraction(signed=True)
        else:  # PWM
            velocity = vmax * self.get("goal_pwm") / max(1, self.get("pwm_limit"))
        velocity = max(-vmax, min(vmax, velocity))
        return position + velocity * dt, velocity

    def _goal_position(self) -> float:
        goal = self.get("goal_position")
        if self.get("operating_mode") == OperatingMode.POSITION:
            goal = min(max(goal, self.get("min_position_limit")), self.get("max_position_limit"))
        return float(goal)

    def _current_fraction(self, signed: bool = False) -> float:
        """Goal Current as a fraction of Current Limit (unloaded: it scales the speed)."""
        limit = self.get("current_limit")
        if limit <= 0:
            return 1.0
        fraction = self.get("goal_current") / limit
        return max(-1.0, min(1.0, fraction)) if signed else min(1.0, abs(fraction))

    def _refresh_present(self) -> None:
        """Present Position/Velocity/Current, Moving and the tick counter into memory."""
        position = self.present_position
        self.set("present_position", round(position))
        self.set("present_velocity", round(self.velocity_ticks_s / TICKS_S_PER_VELOCITY_UNIT))
        self.set("present_current", self._present_current(position))
        moving = abs(self.get("present_velocity")) > self.get("moving_threshold")
        self.set("moving", int(moving))
        self.set("realtime_tick", int(self._t * 1000) % 32768)

    def _present_current(self, position: float) -> int:
        """An unloaded servo's current: proportional to the position error, or the goal."""
        if not self.torque_enabled:
            return 0
        limit = self.get("current_limit") or 1000  # load in 0.1 % without current sensing
        mode = self.get("operating_mode")
        if mode == OperatingMode.CURRENT:
            return self.get("goal_current")
        if mode in (OperatingMode.VELOCITY, OperatingMode.PWM):
            return 0
        error = self._goal_position() - position
        return round(max(-limit, min(limit, limit * error / FULL_CURRENT_ERROR_TICKS)))

    # ---------------------------------------------------------------- instructions

    def read(self, address: int, length: int) -> tuple[int, bytes]:
        """(error, data) of a read of ``length`` bytes at ``address``."""
        if address + length > TABLE_SIZE or length <= 0:
            return StatusError.ACCESS, b""
        self._refresh_present()
        return StatusError.NONE, bytes(self.mem[address : address + length])

    def write(self, address: int, data: bytes) -> int:
        """Write ``data`` at ``address`` if every register in it accepts its value (atomic);
        the status error."""
        updates, error = self._parse_write(address, data)
        if error:
            return error
        for reg, value in updates:
            self._apply(reg, value)
        return StatusError.NONE

    def _parse_write(self, address: int, data: bytes) -> tuple[list[tuple[Register, int]], int]:
        """The (register, value) pairs a write stands for, or the error that refuses it."""
        updates: list[tuple[Register, int]] = []
        offset = 0
        while offset < len(data):
            reg = _REGISTER_AT.get(address + offset)
            if reg is None or not reg.writable:
                return [], StatusError.ACCESS
            if offset + reg.size > len(data):
                return [], StatusError.DATA_LENGTH
            value = decode_value(reg, data[offset : offset + reg.size])
            error = self._check(reg, value)
            if error:
                return [], error
            updates.append((reg, value))
            offset += reg.size
        return updates, StatusError.NONE

    def _check(self, reg: Register, value: int) -> int:
        """The error a write of ``value`` to ``reg`` gets from the servo (0 if accepted)."""
        if reg.eeprom and self.torque_enabled:
            return StatusError.ACCESS
        if reg.name == "torque_enable" and value == 1 and self.hardware_error:
            return StatusError.RESULT_FAIL
        bounds = self._bounds(reg)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            is_goal = reg.name.startswith("goal_")
            return StatusError.DATA_LIMIT if is_goal else StatusError.DATA_RANGE
        if reg.name == "operating_mode" and value not in self.model.operating_modes:
            return StatusError.DATA_RANGE
        if reg.name == "baud_rate" and value not in BAUD_OF_INDEX:
            return StatusError.DATA_RANGE
        return StatusError.NONE

    def _bounds(self, reg: Register) -> tuple[int, int] | None:
        """The accepted value range of ``reg`` now (``None``: any value of its size)."""
        name = reg.name
        if name == "goal_position":
            if self.get("operating_mode") == OperatingMode.POSITION:
                return self.get("min_position_limit"), self.get("max_position_limit")
            return -MAX_EXTENDED_POSITION, MAX_EXTENDED_POSITION
        if name == "goal_current":
            return -self.get("current_limit"), self.get("current_limit")
        if name == "goal_velocity":
            return -self.get("velocity_limit"), self.get("velocity_limit")
        if name == "goal_pwm":
            return -self.get("pwm_limit"), self.get("pwm_limit")
        return _STATIC_BOUNDS.get(name)

    def _apply(self, reg: Register, value: int) -> None:
        """Store an accepted value (a new ID takes effect with the next packet)."""
        self.set(reg.name, value)

    def register_write(self, address: int, data: bytes) -> int:
        """REG_WRITE: check now, apply on ACTION."""
        _, error = self._parse_write(address, data)
        if not error:
            self._registered = (address, bytes(data))
            self.set("registered_instruction", 1)
        return error

    def action(self) -> None:
        """ACTION: apply the registered write, if any."""
        if self._registered is not None:
            self.write(*self._registered)
            self._registered = None
            self.set("registered_instruction", 0)

    def inject_hardware_error(self, bits: int) -> None:
        """Set Hardware Error Status bits; a bit the Shutdown register names cuts torque."""
        self.set("hardware_error_status", self.hardware_error | bits)
        if bits & self.get("shutdown"):
            self.set("torque_enable", 0)

    def reboot(self) -> None:
        """REBOOT: RAM back to power-on values (torque off, error cleared), EEPROM kept."""
        self._reset_ram()
        self._registered = None

    def factory_reset(self, option: int) -> None:
        """FACTORY_RESET: 0xFF resets all, 0x01 all but the ID, 0x02 all but ID and baud."""
        motor_id = 1 if option == 0xFF else self.id
        baud_index = self.get("baud_rate") if option == 0x02 else BAUD_INDEX[57_600]
        self._factory_reset(motor_id, baud_index)

    def clear_multi_turn(self) -> None:
        """CLEAR (multi-turn): Present Position back within one turn, keeping the angle."""
        turns = math.floor(self.present_position / TICKS_PER_REV)
        self._set_present(self.present_position - turns * TICKS_PER_REV)


_STATIC_BOUNDS: dict[str, tuple[int, int]] = {
    "id": (0, MAX_ID),
    "drive_mode": (0, 0b1101),
    "homing_offset": (-MAX_HOMING_OFFSET, MAX_HOMING_OFFSET),
    "moving_threshold": (0, 1023),
    "temperature_limit": (0, 100),
    "max_voltage_limit": (60, 160),
    "min_voltage_limit": (60, 160),
    "pwm_limit": (0, 885),
    "current_limit": (0, 2047),
    "velocity_limit": (0, 2047),
    "max_position_limit": (0, TICKS_PER_REV - 1),
    "min_position_limit": (0, TICKS_PER_REV - 1),
    "torque_enable": (0, 1),
    "led": (0, 1),
    "status_return_level": (0, 2),
    "profile_acceleration": (0, 32767),
    "profile_velocity": (0, 32767),
}


def approach(position: float, goal: float, dt: float, vmax: float) -> tuple[float, float]:
    """(position, velocity) after ``dt`` of a first-order lag toward ``goal`` (time constant
    :data:`TAU_S`) whose speed saturates at ``vmax``; solved exactly, not stepped."""
    error = goal - position
    sign = 1.0 if error >= 0 else -1.0
    magnitude = abs(error)
    if vmax <= 0.0:
        return position, 0.0
    knee = vmax * TAU_S  # below this error the lag is unsaturated
    if magnitude > knee:
        saturated_s = (magnitude - knee) / vmax
        if dt <= saturated_s:
            return position + sign * vmax * dt, sign * vmax
        dt -= saturated_s
        magnitude = knee
    magnitude *= math.exp(-dt / TAU_S)
    return goal - sign * magnitude, sign * magnitude / TAU_S
