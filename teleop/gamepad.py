"""Gamepad teleop through Linux evdev, read with the standard library alone.

A gamepad is a ``/dev/input/event*`` node. Reading it yields the kernel's ``struct
input_event`` records — ``struct timeval`` (two C longs), ``__u16 type``, ``__u16 code``,
``__s32 value`` — a stable ABI, decoded here with :mod:`struct`, so no compiled dependency
(python-evdev) is needed. Axis ranges come from the ``EVIOCGABS`` ioctl when the node is a
real device, else from :data:`DEFAULT_RANGES` (the xpad driver's ranges).

Default mapping (:data:`XBOX_MAPPING`, Linux button/axis codes; other pads that follow the
kernel's gamepad layout — DualShock/DualSense through hid-playstation, 8BitDo, … — work too).
Robot base frame: +x forward, +y left, +z up.

========================  ===================================================
left stick up / left      +x / +y
right stick up / left     +z / +yaw
D-pad up / right          +pitch / +roll (``ee_delta_pose`` tasks only)
A (south)                 toggle the gripper (starts open)
Start                     save the episode
Back / Select             re-record the episode
Guide (mode)              stop recording
left bumper (held)        intervention, while held
========================  ===================================================

Stick deflections are normalised to ``[-1, 1]``, pass a rescaled deadband, then scale to
``step_m`` (``step_rad``) per control step at full deflection.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from robolearn.core.types import ConfigError, DriverError, FloatArray
from robolearn.teleop.base import Obs, TeleopCommand, TeleopDevice
from robolearn.teleop.shaping import apply_deadband

_log = logging.getLogger("robolearn.teleop")

INPUT_EVENT = struct.Struct("@llHHi")
"""``struct input_event`` with the native ``struct timeval`` (two longs)."""
ABSINFO = struct.Struct("@6i")
"""``struct input_absinfo``: value, minimum, maximum, fuzz, flat, resolution."""

EV_SYN, EV_KEY, EV_ABS = 0x00, 0x01, 0x03
SYN_REPORT, SYN_DROPPED = 0, 3
ABS_X, ABS_Y, ABS_Z, ABS_RX, ABS_RY, ABS_RZ = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
ABS_HAT0X, ABS_HAT0Y = 0x10, 0x11
BTN_SOUTH, BTN_EAST, BTN_NORTH, BTN_WEST = 0x130, 0x131, 0x133, 0x134
BTN_TL, BTN_TR, BTN_SELECT, BTN_START, BTN_MODE = 0x136, 0x137, 0x13A, 0x13B, 0x13C
BTN_GAMEPAD = BTN_SOUTH
"""The capability bit that marks a gamepad."""
AXES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw")
BUTTON_ACTIONS: tuple[str, ...] = ("gripper", "save", "rerecord", "stop", "intervention")
_PRESS_EVENTS = {"save": "save_episode", "rerecord": "rerecord_episode", "stop": "stop_recording"}


@dataclass(frozen=True)
class InputEvent:
    """One evdev event: ``type`` (EV_*), ``code`` (ABS_*/BTN_*), ``value``, kernel time in s."""

    type: int
    code: int
    value: int
    time_s: float = 0.0


def encode_input_events(events: list[InputEvent]) -> bytes:
    """The bytes the kernel would deliver for ``events`` (an emulated gamepad writes these)."""
    out = bytearray()
    for ev in events:
        sec = int(ev.time_s)
        out += INPUT_EVENT.pack(sec, round((ev.time_s - sec) * 1e6), ev.type, ev.code, ev.value)
    return bytes(out)


def decode_input_events(data: bytes) -> tuple[list[InputEvent], bytes]:
    """The whole events in ``data`` and the bytes left over (a partial record)."""
    size = INPUT_EVENT.size
    whole = len(data) - len(data) % size
    events = [
        InputEvent(type_, code, value, sec + usec * 1e-6)
        for sec, usec, type_, code, value in INPUT_EVENT.iter_unpack(data[:whole])
    ]
    return events, data[whole:]


@dataclass(frozen=True)
class AxisRange:
    """An absolute axis's raw range; ``flat`` is the driver's own dead zone (counts)."""

    minimum: int
    maximum: int
    flat: int = 0

    def normalize(self, value: int, one_sided: bool = False) -> float:
        """``value`` mapped linearly to ``[-1, 1]`` (``minimum`` → -1, ``maximum`` → +1), or
        to ``[0, 1]`` if ``one_sided`` (a trigger, at rest at ``minimum``)."""
        span = self.maximum - self.minimum
        if span <= 0:
            return 0.0
        unit = float(np.clip((value - self.minimum) / span, 0.0, 1.0))
        return unit if one_sided else 2.0 * unit - 1.0

    @property
    def rest(self) -> int:
        """The value of a centred stick (the middle of the range)."""
        return (self.minimum + self.maximum) // 2


DEFAULT_RANGES: Mapping[int, AxisRange] = {
    **{c: AxisRange(-32768, 32767) for c in (ABS_X, ABS_Y, ABS_RX, ABS_RY)},
    **{c: AxisRange(0, 1023) for c in (ABS_Z, ABS_RZ)},
    **{c: AxisRange(-1, 1) for c in (ABS_HAT0X, ABS_HAT0Y)},
}
"""Ranges of the xpad driver (Xbox pads), used when the device cannot be asked."""


@dataclass(frozen=True)
class GamepadMapping:
    """Which control drives what: ``axes`` maps a robot axis (x, y, z, roll, pitch, yaw) to an
    (ABS code, sign); ``buttons`` maps a BTN code to an action (gripper, save, rerecord,
    stop, intervention). Codes in ``triggers`` are one-sided: 0 at rest, 1 fully pulled (a
    trigger bound to an axis moves it one way only)."""

    axes: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    buttons: Mapping[int, str] = field(default_factory=dict)
    triggers: frozenset[int] = frozenset({ABS_Z, ABS_RZ})

    def __post_init__(self) -> None:
        bad_axes = set(self.axes) - set(AXES)
        bad_buttons = set(self.buttons.values()) - set(BUTTON_ACTIONS)
        if bad_axes or bad_buttons:
            raise ConfigError(
                f"unknown gamepad targets {sorted(bad_axes | bad_buttons)}; "
                f"axes: {AXES}, buttons: {BUTTON_ACTIONS}"
            )


XBOX_MAPPING = GamepadMapping(
    axes={
        "x": (ABS_Y, -1.0),  # stick up is negative
        "y": (ABS_X, -1.0),
        "z": (ABS_RY, -1.0),
        "yaw": (ABS_RX, -1.0),
        "pitch": (ABS_HAT0Y, -1.0),
        "roll": (ABS_HAT0X, 1.0),
    },
    buttons={
        BTN_SOUTH: "gripper",
        BTN_START: "save",
        BTN_SELECT: "rerecord",
        BTN_MODE: "stop",
        BTN_TL: "intervention",
    },
)
"""The default mapping; see the module docstring."""


class GamepadState:
    """Raw axis values and held buttons, updated event by event (no I/O).

    :meth:`apply` returns the button action a press fires (``None`` otherwise). After a
    ``SYN_DROPPED`` (the kernel's buffer overflowed) events are skipped until the next
    ``SYN_REPORT``, as the evdev documentation asks.
    """

    def __init__(self, mapping: GamepadMapping) -> None:
        self.mapping = mapping
        self.raw: dict[int, int] = {}
        self.held: set[int] = set()
        self._dropping = False

    def apply(self, ev: InputEvent) -> str | None:
        """Take one event; the button action it fires, if any."""
        if ev.type == EV_SYN:
            self._dropping = ev.code == SYN_DROPPED or (self._dropping and ev.code != SYN_REPORT)
            return None
        if self._dropping:
            return None
        if ev.type == EV_ABS:
            self.raw[ev.code] = ev.value
        elif ev.type == EV_KEY and ev.value in (0, 1):  # 2 is auto-repeat
            return self._button(ev.code, pressed=ev.value == 1)
        return None

    def _button(self, code: int, pressed: bool) -> str | None:
        was = code in self.held
        if pressed:
            self.held.add(code)
        else:
            self.held.discard(code)
        return self.mapping.buttons.get(code) if pressed and not was else None

    def deflections(self, ranges: Mapping[int, AxisRange]) -> FloatArray:
        """The six robot-axis deflections (x, y, z, roll, pitch, yaw) in ``[-1, 1]``."""
        out = np.zeros(6)
        for i, axis in enumerate(AXES):
            if axis in self.mapping.axes:
                code, sign = self.mapping.axes[axis]
                rng = ranges.get(code, DEFAULT_RANGES.get(code, AxisRange(-32768, 32767)))
                one_sided = code in self.mapping.triggers
                value = self.raw.get(code, rng.minimum if one_sided else rng.rest)
                out[i] = sign * rng.normalize(value, one_sided)
        return out

    def holds(self, action: str) -> bool:
        """Whether a button bound to ``action`` is held."""
        return any(self.mapping.buttons.get(c) == action for c in self.held)


class InputEventSource(Protocol):
    """Where gamepad events come from: an evdev node, or anything speaking its records."""

    def read_events(self) -> list[InputEvent]:
        """Every event pending now, without blocking; DriverError if the device is gone."""
        ...

    def axis_range(self, code: int) -> AxisRange | None:
        """The axis's range as the device reports it, or ``None`` if it cannot say."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


def _ioc_read(type_char: str, nr: int, size: int) -> int:
    """Linux ``_IOR(type, nr, size)``."""
    return (2 << 30) | (size << 16) | (ord(type_char) << 8) | nr


class EvdevSource:
    """Events from an open evdev file descriptor (non-blocking reads).

    Owns ``fd`` and closes it. A pipe carrying the same records works too (the tests, an
    emulator); its ranges fall back to :data:`DEFAULT_RANGES`.
    """

    def __init__(self, fd: int, label: str = "gamepad") -> None:
        os.set_blocking(fd, False)
        self.fd, self.label = fd, label
        self._pending = b""

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> EvdevSource:
        """Open an event node; DriverError with a fix when permissions forbid it."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except PermissionError as exc:
            raise DriverError(
                f"cannot read {path}: {exc.strerror}; add yourself to the 'input' group "
                "(sudo usermod -aG input $USER, then log in again) or add a udev rule"
            ) from exc
        except OSError as exc:
            raise DriverError(f"cannot open gamepad {path}: {exc.strerror}") from exc
        return cls(fd, label=str(path))

    def read_events(self) -> list[InputEvent]:
        """Every event pending now; DriverError when the device is unplugged."""
        data = self._pending + b"".join(self._chunks())
        events, self._pending = decode_input_events(data)
        return events

    def _chunks(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = os.read(self.fd, INPUT_EVENT.size * 64)
            except BlockingIOError:
                return
            except OSError as exc:
                gone = exc.errno in (errno.ENODEV, errno.EIO)
                why = "was unplugged" if gone else f"failed: {exc.strerror}"
                raise DriverError(f"gamepad {self.label} {why}") from exc
            if not chunk:
                raise DriverError(f"gamepad {self.label}: end of input (device gone)")
            yield chunk

    def axis_range(self, code: int) -> AxisRange | None:
        """The range from ``EVIOCGABS``; ``None`` if the descriptor is not an evdev node."""
        buf = bytearray(ABSINFO.size)
        try:
            fcntl.ioctl(self.fd, _ioc_read("E", 0x40 + code, ABSINFO.size), buf)
        except OSError:
            return None
        _, minimum, maximum, _, flat, _ = ABSINFO.unpack(buf)
        return AxisRange(minimum, maximum, flat)

    def close(self) -> None:
        """Close the descriptor. Idempotent."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def _capability_bits(text: str) -> set[int]:
    """Bit numbers set in a sysfs capability bitmap (hex words of a C long, high word first)."""
    bits_per_word = struct.calcsize("l") * 8
    words = text.split()
    out: set[int] = set()
    for i, word in enumerate(reversed(words)):
        value = int(word, 16)
        out.update(i * bits_per_word + b for b in range(bits_per_word) if value >> b & 1)
    return out


def find_gamepads(
    sys_class_input: str | os.PathLike[str] = "/sys/class/input",
    dev_input: str | os.PathLike[str] = "/dev/input",
) -> list[Path]:
    """Event nodes whose device reports gamepad buttons and an X axis, sorted by number."""
    found = []
    for node in sorted(Path(sys_class_input).glob("event*"), key=lambda p: int(p.name[5:])):
        caps = node / "device" / "capabilities"
        try:
            keys = _capability_bits((caps / "key").read_text())
            axes = _capability_bits((caps / "abs").read_text())
        except (OSError, ValueError):
            continue
        if BTN_GAMEPAD in keys and ABS_X in axes:
            found.append(Path(dev_input) / node.name)
    return found


class GamepadTeleop(TeleopDevice):
    """End-effector teleop from a gamepad; see the module docstring for the mapping.

    The device is ``path`` (an event node), else ``source`` (anything that speaks
    :class:`InputEventSource`), else the first gamepad :func:`find_gamepads` sees. Full
    deflection moves ``step_m`` (``step_rad``) per :meth:`read`; ``deadband`` is a fraction
    of full deflection.
    """

    name = "gamepad"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        source: InputEventSource | None = None,
        mapping: GamepadMapping = XBOX_MAPPING,
        step_m: float = 0.02,
        step_rad: float = 0.1,
        deadband: float = 0.1,
    ) -> None:
        super().__init__()
        if path is not None and source is not None:
            raise ConfigError("give a gamepad path or a source, not both")
        if not step_m > 0 or not step_rad > 0:
            raise ConfigError(f"step_m and step_rad must be > 0, got {step_m}, {step_rad}")
        apply_deadband(0.0, deadband)  # validates
        self.path, self.mapping = path, mapping
        self.step_m, self.step_rad, self.deadband = step_m, step_rad, deadband
        self._given_source = source
        self._source: InputEventSource | None = None
        self._state = GamepadState(mapping)
        self._ranges: dict[int, AxisRange] = {}

    def _open(self) -> None:
        source = self._given_source or EvdevSource.open(self.path or self._first_gamepad())
        codes = {code for code, _ in self.mapping.axes.values()}
        self._ranges = {c: r for c in codes if (r := source.axis_range(c)) is not None}
        self._state = GamepadState(self.mapping)
        self._source = source

    @staticmethod
    def _first_gamepad() -> Path:
        pads = find_gamepads()
        if not pads:
            raise DriverError("no gamepad found under /dev/input (is it plugged in and paired?)")
        _log.info("gamepad teleop: using %s", pads[0])
        return pads[0]

    def _close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()

    def _read(self, obs: Obs | None) -> TeleopCommand:
        assert self._source is not None
        for ev in self._source.read_events():
            action = self._state.apply(ev)
            if action is not None:
                self._fire(action)
        self.events.set_level("intervention", self._state.holds("intervention"))
        axes = apply_deadband(self._state.deflections(self._ranges), self.deadband)
        return TeleopCommand(
            ee_delta_pos=axes[:3] * self.step_m,
            ee_delta_rot=axes[3:] * self.step_rad,
            gripper=self.gripper,
            events=self.events.take(),
        )

    def _fire(self, action: str) -> None:
        if action == "gripper":
            self.toggle_gripper()
        elif action in _PRESS_EVENTS:
            self.events.press(_PRESS_EVENTS[action])
