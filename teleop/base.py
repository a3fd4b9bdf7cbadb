"""The teleop device contract: what every device (keyboard, SpaceMouse, gamepad, scripted
expert, leader arm) produces, and how it is opened, read and reset.

A device is read once per control step. :meth:`TeleopDevice.read` never blocks: it returns
the device's latest state as a :class:`TeleopCommand`:

* an end-effector delta for this step — position in m and rotation as an axis-angle vector
  in rad, both in the robot's base frame — **or** absolute joint targets in rad (a leader
  arm, or a scripted expert driving a ``joint_position`` task);
* the gripper as an opening fraction: ``0.0`` closed … ``1.0`` fully open (a fraction, not a
  width, so a device does not need to know the gripper; :func:`robolearn.teleop.actions.to_action`
  scales it to the task's width);
* :class:`TeleopEvents` for the recording session (save, re-record, stop, intervention).

Session events are *momentary*: a key or button press is reported by exactly one
:meth:`~TeleopDevice.read`, however many reads pass before or after it (presses are latched
between reads). ``intervention`` is a *level*: it is true while the human has control.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from robolearn.core.types import CommandError, DriverError, FloatArray

Obs = dict[str, np.ndarray]
_Device = TypeVar("_Device", bound="TeleopDevice")
Produces = Literal["ee_delta", "joint"]
MOMENTARY_EVENTS: tuple[str, ...] = ("save_episode", "rerecord_episode", "stop_recording")
"""Events a press reports once."""
LEVEL_EVENTS: tuple[str, ...] = ("intervention",)
"""Events that hold while a button is held or a mode is toggled on."""


@dataclass(frozen=True)
class TeleopEvents:
    """Session events a device reports with a command; all ``False`` by default."""

    save_episode: bool = False
    """End the episode and keep it."""
    rerecord_episode: bool = False
    """End the episode and throw it away (it will be recorded again)."""
    stop_recording: bool = False
    """End the session (the episode in progress is discarded unless saved with it)."""
    intervention: bool = False
    """The human has control (for human-in-the-loop correction); a level, not a press."""

    def names(self) -> frozenset[str]:
        """The names of the events that are set, e.g. ``frozenset({"save_episode"})``."""
        return frozenset(f.name for f in fields(self) if getattr(self, f.name))

    def __or__(self, other: TeleopEvents) -> TeleopEvents:
        """Both devices' events: a flag is set if it is set in either."""
        return TeleopEvents(**{n: getattr(self, n) or getattr(other, n) for n in _EVENT_NAMES})

    @classmethod
    def from_names(cls, names: frozenset[str] | set[str]) -> TeleopEvents:
        """Events with the named flags set; :class:`CommandError` for an unknown name."""
        unknown = set(names) - set(_EVENT_NAMES)
        if unknown:
            raise CommandError(f"unknown teleop events {sorted(unknown)}; known: {_EVENT_NAMES}")
        return cls(**{n: True for n in names})


_EVENT_NAMES: tuple[str, ...] = (*MOMENTARY_EVENTS, *LEVEL_EVENTS)


def _zeros3() -> FloatArray:
    return np.zeros(3)


@dataclass(frozen=True, eq=False)
class TeleopCommand:
    """One reading of a teleop device; see the module docstring for units and frames."""

    ee_delta_pos: FloatArray = field(default_factory=_zeros3)
    """End-effector position delta for this control step (3,), m, base frame."""
    ee_delta_rot: FloatArray = field(default_factory=_zeros3)
    """End-effector rotation delta for this step (3,), axis-angle in rad, base frame."""
    gripper: float = 1.0
    """Gripper opening fraction: 0 closed … 1 fully open."""
    joint_targets: FloatArray | None = None
    """Absolute joint targets (dof,) in rad; when set, the EE deltas are unused."""
    events: TeleopEvents = field(default_factory=TeleopEvents)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ee_delta_pos", _finite("ee_delta_pos", self.ee_delta_pos, 3))
        object.__setattr__(self, "ee_delta_rot", _finite("ee_delta_rot", self.ee_delta_rot, 3))
        if self.joint_targets is not None:
            targets = _finite("joint_targets", self.joint_targets, None)
            object.__setattr__(self, "joint_targets", targets)
        if not 0.0 <= self.gripper <= 1.0:
            raise CommandError(f"gripper is an opening fraction in [0, 1], got {self.gripper}")

    @property
    def produces(self) -> Produces:
        """``"joint"`` when the command carries joint targets, else ``"ee_delta"``."""
        return "ee_delta" if self.joint_targets is None else "joint"


def _finite(name: str, value: Any, size: int | None) -> FloatArray:
    """``value`` as a 1-D float64 array (of ``size``); CommandError if misshapen or not finite."""
    arr = np.array(value, dtype=np.float64).reshape(-1)
    if size is not None and arr.shape != (size,):
        raise CommandError(f"{name} must have shape ({size},), got {np.shape(value)}")
    if not np.isfinite(arr).all():
        raise CommandError(f"{name} contains NaN or inf: {arr.tolist()}")
    return arr


class EventLatch:
    """Thread-safe event bookkeeping for a device: presses latch until :meth:`take`.

    A device's input thread (or its read loop) calls :meth:`press` for a momentary event
    and :meth:`set_level` for ``intervention``; :meth:`take` returns the events since the last
    take and clears the momentary ones.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pressed: set[str] = set()
        self._levels: dict[str, bool] = dict.fromkeys(LEVEL_EVENTS, False)

    def press(self, name: str) -> None:
        """Latch the momentary event ``name`` until the next :meth:`take`."""
        if name not in MOMENTARY_EVENTS:
            raise CommandError(f"{name!r} is not a momentary event; those are {MOMENTARY_EVENTS}")
        with self._lock:
            self._pressed.add(name)

    def set_level(self, name: str, on: bool) -> None:
        """Set the level event ``name`` (``intervention``)."""
        if name not in LEVEL_EVENTS:
            raise CommandError(f"{name!r} is not a level event; those are {LEVEL_EVENTS}")
        with self._lock:
            self._levels[name] = on

    def toggle_level(self, name: str) -> bool:
        """Flip the level event ``name``; its new value."""
        if name not in LEVEL_EVENTS:
            raise CommandError(f"{name!r} is not a level event; those are {LEVEL_EVENTS}")
        with self._lock:
            self._levels[name] = not self._levels[name]
            return self._levels[name]

    def take(self) -> TeleopEvents:
        """The events since the last take; momentary ones are cleared."""
        with self._lock:
            pressed, self._pressed = self._pressed, set()
            on = {n for n, v in self._levels.items() if v}
        return TeleopEvents.from_names(pressed | on)

    def clear(self) -> None:
        """Forget latched presses and switch every level off."""
        with self._lock:
            self._pressed.clear()
            self._levels = dict.fromkeys(LEVEL_EVENTS, False)


class TeleopDevice(abc.ABC):
    """A teleop device: open it (``connect`` or ``with``), ``read`` once per control step.

    Subclasses implement :meth:`_open`, :meth:`_close` and :meth:`_read`, and may extend
    :meth:`reset` (calling ``super().reset(seed)``).
    """

    name: ClassVar[str] = "device"
    """The registry name (``make_device(name)``)."""
    produces: Produces = "ee_delta"
    """Whether the device gives end-effector deltas or joint targets."""

    def __init__(self) -> None:
        self._connected = False
        self.events = EventLatch()
        self._gripper_open = True

    @property
    def gripper(self) -> float:
        """The gripper opening fraction the device asks for now (1.0 open, 0.0 closed)."""
        return 1.0 if self._gripper_open else 0.0

    def toggle_gripper(self) -> float:
        """Open a closed gripper or close an open one (a key or button press); the new value."""
        self._gripper_open = not self._gripper_open
        return self.gripper

    @property
    def connected(self) -> bool:
        """Whether :meth:`connect` succeeded and :meth:`disconnect` has not been called."""
        return self._connected

    def connect(self) -> None:
        """Open the device; :class:`DriverError` if it cannot be. Idempotent."""
        if not self._connected:
            self._open()
            self._connected = True

    def disconnect(self) -> None:
        """Close the device. Idempotent."""
        if self._connected:
            self._connected = False
            self._close()

    def read(self, obs: Obs | None = None) -> TeleopCommand:
        """The device's latest command, without blocking.

        ``obs`` is the robot's current observation: human devices ignore it, a scripted
        expert acts on it. :class:`DriverError` if the device is not connected or has gone.
        """
        if not self._connected:
            raise DriverError(f"{self.name} teleop device is not connected; call connect()")
        return self._read(obs)

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode: forget latched events, leave intervention, open the gripper
        (a task's reset opens the real one)."""
        self.events.clear()
        self._gripper_open = True

    def __enter__(self: _Device) -> _Device:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    @abc.abstractmethod
    def _open(self) -> None:
        """Open the hardware (or emulator); raise :class:`DriverError` on failure."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the hardware; must not raise."""

    @abc.abstractmethod
    def _read(self, obs: Obs | None) -> TeleopCommand:
        """The latest command (the device is connected)."""
