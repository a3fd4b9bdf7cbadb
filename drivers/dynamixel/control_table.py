"""The X-series control table (Protocol 2.0) and the servo models robolearn knows.

Addresses, sizes and units follow ROBOTIS' e-Manual for the X series (XM430-W350,
XM540-W270, XL430-W250, XC430-W150, XL330-M077/M288 share one layout). Both the virtual
bus (:mod:`robolearn.drivers.dynamixel.virtual_bus`) and the driver
(:mod:`robolearn.drivers.dynamixel.bus`)
read their registers from here, so the two cannot disagree about an address.

Units of the raw register values:

* position: 4096 ticks per turn (``TICKS_PER_REV``), 2048 is the middle of one turn;
* velocity: 0.229 rpm per unit (``VELOCITY_UNIT_RPM``);
* current: model dependent (``ModelInfo.current_unit_a``; 2.69 mA on XM, 1 mA on XL330);
  models without current sensing (XL430, XC430) report load in 0.1 % of the maximum torque;
* input voltage: 0.1 V; temperature: 1 °C.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from robolearn.core.types import ConfigError

TICKS_PER_REV = 4096
"""Encoder ticks per output-shaft turn of every X-series servo."""
CENTER_TICKS = 2048
"""The middle of one turn; calibration puts each joint's middle pose here."""
RAD_PER_TICK = 2.0 * math.pi / TICKS_PER_REV
VELOCITY_UNIT_RPM = 0.229
"""One unit of Velocity Limit / Goal Velocity / Present Velocity / Profile Velocity, in rpm."""
RAD_S_PER_VELOCITY_UNIT = VELOCITY_UNIT_RPM * 2.0 * math.pi / 60.0
MAX_HOMING_OFFSET = 1_044_479
"""|Homing Offset| bound (ticks)."""
MAX_EXTENDED_POSITION = 1_048_575
"""|Goal Position| bound in extended-position and current-based-position modes (ticks)."""
SECONDARY_ID_DISABLED = 255
"""A Secondary ID above 252 switches the feature off."""


class OperatingMode(enum.IntEnum):
    """Values of the Operating Mode register (address 11)."""

    CURRENT = 0
    VELOCITY = 1
    POSITION = 3
    EXTENDED_POSITION = 4
    CURRENT_BASED_POSITION = 5
    PWM = 16


class HardwareError(enum.IntFlag):
    """Bits of the Hardware Error Status register (address 70)."""

    INPUT_VOLTAGE = 1 << 0
    OVERHEATING = 1 << 2
    MOTOR_ENCODER = 1 << 3
    ELECTRICAL_SHOCK = 1 << 4
    OVERLOAD = 1 << 5


def describe_hardware_error(bits: int) -> str:
    """``"overload, overheating"`` for the set bits of a Hardware Error Status value."""
    names = [(flag.name or "").lower().replace("_", " ") for flag in HardwareError if bits & flag]
    return ", ".join(n for n in names if n) or f"unknown bits 0x{bits:02x}"


BAUD_INDEX: dict[int, int] = {
    9_600: 0,
    57_600: 1,
    115_200: 2,
    1_000_000: 3,
    2_000_000: 4,
    3_000_000: 5,
    4_000_000: 6,
    4_500_000: 7,
}
"""Baud rate (bit/s) → the value of the Baud Rate register (address 8)."""
BAUD_OF_INDEX: dict[int, int] = {index: baud for baud, index in BAUD_INDEX.items()}


@dataclass(frozen=True)
class Register:
    """One entry of the control table."""

    name: str
    address: int
    size: int
    """Bytes (1, 2 or 4), little-endian."""
    signed: bool = False
    eeprom: bool = False
    """EEPROM entries can only be written while torque is off."""
    writable: bool = True

    @property
    def end(self) -> int:
        """The address just past this register."""
        return self.address + self.size


def _r(name: str, address: int, size: int, **kwargs: bool) -> Register:
    return Register(name, address, size, **kwargs)


_RO = {"writable": False}
_EE = {"eeprom": True}

REGISTERS: tuple[Register, ...] = (
    # EEPROM area
    _r("model_number", 0, 2, eeprom=True, writable=False),
    _r("model_information", 2, 4, eeprom=True, writable=False),
    _r("firmware_version", 6, 1, eeprom=True, writable=False),
    _r("id", 7, 1, **_EE),
    _r("baud_rate", 8, 1, **_EE),
    _r("return_delay_time", 9, 1, **_EE),
    _r("drive_mode", 10, 1, **_EE),
    _r("operating_mode", 11, 1, **_EE),
    _r("secondary_id", 12, 1, **_EE),
    _r("protocol_type", 13, 1, **_EE),
    _r("homing_offset", 20, 4, signed=True, eeprom=True),
    _r("moving_threshold", 24, 4, **_EE),
    _r("temperature_limit", 31, 1, **_EE),
    _r("max_voltage_limit", 32, 2, **_EE),
    _r("min_voltage_limit", 34, 2, **_EE),
    _r("pwm_limit", 36, 2, **_EE),
    _r("current_limit", 38, 2, **_EE),
    _r("velocity_limit", 44, 4, **_EE),
    _r("max_position_limit", 48, 4, **_EE),
    _r("min_position_limit", 52, 4, **_EE),
    _r("shutdown", 63, 1, **_EE),
    # RAM area
    _r("torque_enable", 64, 1),
    _r("led", 65, 1),
    _r("status_return_level", 68, 1),
    _r("registered_instruction", 69, 1, **_RO),
    _r("hardware_error_status", 70, 1, **_RO),
    _r("velocity_i_gain", 76, 2),
    _r("velocity_p_gain", 78, 2),
    _r("position_d_gain", 80, 2),
    _r("position_i_gain", 82, 2),
    _r("position_p_gain", 84, 2),
    _r("feedforward_2nd_gain", 88, 2),
    _r("feedforward_1st_gain", 90, 2),
    _r("bus_watchdog", 98, 1),
    _r("goal_pwm", 100, 2, signed=True),
    _r("goal_current", 102, 2, signed=True),
    _r("goal_velocity", 104, 4, signed=True),
    _r("profile_acceleration", 108, 4),
    _r("profile_velocity", 112, 4),
    _r("goal_position", 116, 4, signed=True),
    _r("realtime_tick", 120, 2, **_RO),
    _r("moving", 122, 1, **_RO),
    _r("moving_status", 123, 1, **_RO),
    _r("present_pwm", 124, 2, signed=True, writable=False),
    _r("present_current", 126, 2, signed=True, writable=False),
    _r("present_velocity", 128, 4, signed=True, writable=False),
    _r("present_position", 132, 4, signed=True, writable=False),
    _r("velocity_trajectory", 136, 4, signed=True, writable=False),
    _r("position_trajectory", 140, 4, signed=True, writable=False),
    _r("present_input_voltage", 144, 2, **_RO),
    _r("present_temperature", 146, 1, **_RO),
)
"""Every register of the X-series control table, by address."""

REG: dict[str, Register] = {r.name: r for r in REGISTERS}
"""Registers by name, e.g. ``REG["goal_position"]``."""
TABLE_SIZE = REGISTERS[-1].end
"""Bytes of control-table memory (address 0 up to the last register)."""
EEPROM_END = 64
"""Addresses below this are EEPROM."""


def register(name: str) -> Register:
    """The register called ``name``; :class:`ConfigError` listing the names if unknown."""
    try:
        return REG[name]
    except KeyError:
        raise ConfigError(f"unknown register {name!r}; known: {', '.join(REG)}") from None


def encode_value(reg: Register, value: int) -> bytes:
    """``value`` as ``reg.size`` little-endian bytes (two's complement when signed)."""
    return int(value).to_bytes(reg.size, "little", signed=reg.signed)


def decode_value(reg: Register, data: bytes | bytearray) -> int:
    """The integer that ``reg.size`` little-endian bytes stand for."""
    return int.from_bytes(bytes(data[: reg.size]), "little", signed=reg.signed)


@dataclass(frozen=True)
class ModelInfo:
    """What differs between X-series models: number, modes, limits and torque constants.

    Stall torques and currents are ROBOTIS' 12 V datasheet values (approximate; they set
    ``max_effort`` and the current → torque estimate, not a control loop).
    """

    name: str
    number: int
    """The Model Number register's value."""
    stall_torque_nm: float
    stall_current_a: float
    current_unit_a: float | None
    """Amperes per Present/Goal Current unit; ``None`` for models without current sensing
    (they report Present Load in 0.1 % instead)."""
    default_current_limit: int
    default_velocity_limit: int
    """Velocity Limit at the factory, in 0.229 rpm units (about the no-load speed)."""
    operating_modes: frozenset[OperatingMode]
    firmware: int = 48

    @property
    def torque_per_current_unit(self) -> float:
        """N·m per Present Current unit (or per 0.1 % load unit without current sensing)."""
        if self.current_unit_a is None:
            return self.stall_torque_nm / 1000.0
        return self.stall_torque_nm / self.stall_current_a * self.current_unit_a

    @property
    def max_velocity_rad_s(self) -> float:
        """The factory velocity limit in rad/s."""
        return self.default_velocity_limit * RAD_S_PER_VELOCITY_UNIT


_ALL_MODES = frozenset(OperatingMode)
_NO_CURRENT_MODES = frozenset(
    {
        OperatingMode.VELOCITY,
        OperatingMode.POSITION,
        OperatingMode.EXTENDED_POSITION,
        OperatingMode.PWM,
    }
)

MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo("xm430-w350", 1020, 4.1, 2.3, 0.00269, 1193, 200, _ALL_MODES),
        ModelInfo("xm540-w270", 1120, 10.6, 4.4, 0.00269, 2047, 128, _ALL_MODES),
        ModelInfo("xl430-w250", 1060, 1.5, 1.4, None, 0, 265, _NO_CURRENT_MODES),
        ModelInfo("xc430-w150", 1070, 1.4, 1.4, None, 0, 460, _NO_CURRENT_MODES),
        ModelInfo("xl330-m288", 1200, 0.52, 1.47, 0.001, 1750, 445, _ALL_MODES),
        ModelInfo("xl330-m077", 1190, 0.215, 1.47, 0.001, 1750, 1047, _ALL_MODES),
    )
}
"""The models robolearn's configs use, by lower-case name."""
MODEL_ALIASES: dict[str, str] = {
    "xm430": "xm430-w350",
    "xm540": "xm540-w270",
    "xl430": "xl430-w250",
    "xc430": "xc430-w150",
    "xl330": "xl330-m288",
}
MODELS_BY_NUMBER: dict[int, ModelInfo] = {m.number: m for m in MODELS.values()}


def model(name: str) -> ModelInfo:
    """The model called ``name`` (``"xm430-w350"`` or a short alias like ``"xm430"``)."""
    key = MODEL_ALIASES.get(name.lower(), name.lower())
    try:
        return MODELS[key]
    except KeyError:
        known = ", ".join([*MODELS, *MODEL_ALIASES])
        raise ConfigError(f"unknown Dynamixel model {name!r}; known: {known}") from None


def model_name(number: int) -> str:
    """The name of model number ``number``, or ``"model <number>"`` for one robolearn lacks."""
    info = MODELS_BY_NUMBER.get(number)
    return info.name if info is not None else f"model {number}"


def ticks_to_rad(ticks: float) -> float:
    """Joint angle (rad) of a present position, 0 at :data:`CENTER_TICKS`."""
    return (ticks - CENTER_TICKS) * RAD_PER_TICK


def rad_to_ticks(angle_rad: float) -> int:
    """The nearest position (ticks) for a joint angle; inverse of :func:`ticks_to_rad`."""
    return round(angle_rad / RAD_PER_TICK) + CENTER_TICKS
