"""Keyboard teleop in a plain terminal: no display, no X server, works over SSH.

Default keys (the robot's base frame: +x forward, +y left, +z up; stand behind the robot):

====================  ==========================================================
``w`` / ``s``         +x / -x
``a`` / ``d``         +y / -y
``q`` / ``e``         +z / -z (up / down)
``u`` / ``o``         +roll / -roll (about x; ``ee_delta_pose`` tasks only)
``i`` / ``k``         +pitch / -pitch (about y)
``j`` / ``l``         +yaw / -yaw (about z)
``g``                 toggle the gripper (starts open)
Enter                 save the episode
``r``                 re-record the episode (discard it)
``x`` or Ctrl-D       stop recording
``t``                 toggle intervention (human-in-the-loop)
Space or Esc          **e-stop** (when an :class:`~robolearn.core.estop.EStop` is given)
====================  ==========================================================

Space and Esc stay the e-stop keys of :mod:`robolearn.control.keyboard`; the keymap may not
bind them (nor any key whose bytes hold an e-stop byte: arrow keys start with Esc, so they
latch the e-stop, as there). One terminal reader serves both, so the e-stop latches on the
reader thread the moment the key arrives, not at the next control step.

Holding a key: a terminal sends bytes, never key-up events. A motion key therefore moves
its axis for ``hold_s`` after its latest byte; the terminal's auto-repeat (typically
25–33 bytes/s after a 250–600 ms delay) keeps a held key moving. Releasing it stops the axis
within ``hold_s``. The price: a held key moves for ``hold_s``, pauses until auto-repeat
starts, then moves smoothly — a long ``hold_s`` would bridge that pause but overshoot on
release, and overshoot is the worse error. The latest key on an axis wins (``w`` then ``s``
reverses at once). Toggle and event keys fire once per press: bytes of the same key closer
together than ``debounce_s`` are auto-repeat of one press.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import numpy as np

from robolearn.core.estop import DEFAULT_KEYS as ESTOP_KEYS
from robolearn.core.estop import EStop, EStopKeys
from robolearn.core.terminal import TerminalKeyReader, split_keys
from robolearn.core.types import ConfigError, DriverError, FloatArray
from robolearn.teleop.base import Obs, TeleopCommand, TeleopDevice

MOTIONS: dict[str, tuple[int, float]] = {
    f"{sign}{axis}": (i, 1.0 if sign == "+" else -1.0)
    for i, axis in enumerate(("x", "y", "z", "roll", "pitch", "yaw"))
    for sign in "+-"
}
"""Motion actions: axis index into (x, y, z, roll, pitch, yaw) and direction."""
PRESSES: tuple[str, ...] = ("gripper", "save", "rerecord", "stop", "intervention")
"""Actions that fire once per key press."""
PRESS_EVENTS: dict[str, str] = {
    "save": "save_episode",
    "rerecord": "rerecord_episode",
    "stop": "stop_recording",
}
DEFAULT_KEYMAP: Mapping[str, str] = {
    "w": "+x",
    "s": "-x",
    "a": "+y",
    "d": "-y",
    "q": "+z",
    "e": "-z",
    "u": "+roll",
    "o": "-roll",
    "i": "+pitch",
    "k": "-pitch",
    "j": "+yaw",
    "l": "-yaw",
    "g": "gripper",
    "\n": "save",
    "\r": "save",
    "r": "rerecord",
    "x": "stop",
    "\x04": "stop",
    "t": "intervention",
}
"""Key → action; see the module docstring."""


def check_keymap(keymap: Mapping[str, str], reserved: Sequence[str] = ESTOP_KEYS) -> None:
    """ConfigError if ``keymap`` binds an unknown action or a key holding a reserved byte."""
    reserved_bytes = {k.encode() for k in reserved}
    for key, action in keymap.items():
        if action not in MOTIONS and action not in PRESSES:
            known = ", ".join([*MOTIONS, *PRESSES])
            raise ConfigError(f"key {key!r} is bound to unknown action {action!r}; known: {known}")
        if not key or any(b in key.encode() for b in reserved_bytes):
            raise ConfigError(f"key {key!r} is reserved for the e-stop ({list(reserved)!r})")


class KeyHold:
    """Key presses → held axes and once-per-press actions, on a clock passed in (no I/O).

    :meth:`press` takes a key and the time it arrived and returns the press action to fire,
    if any; :meth:`axes` gives the six axis directions (x, y, z, roll, pitch, yaw) in
    ``{-1, 0, 1}`` at a time. See the module docstring for ``hold_s`` and ``debounce_s``.
    """

    def __init__(self, keymap: Mapping[str, str], hold_s: float, debounce_s: float) -> None:
        if not hold_s > 0 or debounce_s < 0:
            raise ConfigError(f"need hold_s > 0 and debounce_s >= 0, got {hold_s}, {debounce_s}")
        self.keymap = dict(keymap)
        self.hold_s, self.debounce_s = hold_s, debounce_s
        self._sign = np.zeros(6)
        self._until = np.full(6, -np.inf)
        self._last_seen: dict[str, float] = {}

    def press(self, key: str, t: float) -> str | None:
        """Register ``key`` arriving at ``t`` (s); the press action to fire, or ``None``."""
        action = self.keymap.get(key)
        if action is None:
            return None
        if action in MOTIONS:
            axis, sign = MOTIONS[action]
            self._sign[axis], self._until[axis] = sign, t + self.hold_s
            return None
        last = self._last_seen.get(key, -np.inf)
        self._last_seen[key] = t
        return action if t - last > self.debounce_s else None

    def axes(self, t: float) -> FloatArray:
        """The held direction of each axis at ``t``: (6,) in {-1, 0, 1}."""
        return np.where(t < self._until, self._sign, 0.0)

    def release_all(self) -> None:
        """Stop every axis now (an e-stop, a new episode)."""
        self._sign[:] = 0.0
        self._until[:] = -np.inf


class KeyboardTeleop(TeleopDevice):
    """End-effector teleop from terminal keys; see the module docstring for the keys.

    ``stream`` is the terminal (file object or descriptor; default ``sys.stdin``). With an
    ``estop``, ``estop_keys`` latch it from the reader thread. A held axis moves ``step_m``
    (``step_rad`` for rotations) per :meth:`read`, i.e. per control step. ``clock`` gives
    the times key holds are measured on (seconds; default ``time.monotonic``).
    :meth:`connect` raises :class:`DriverError` when ``stream`` is not a terminal.
    """

    name = "keyboard"

    def __init__(
        self,
        stream: IO[Any] | int | None = None,
        *,
        estop: EStop | None = None,
        estop_keys: Sequence[str] = ESTOP_KEYS,
        keymap: Mapping[str, str] | None = None,
        step_m: float = 0.01,
        step_rad: float = 0.05,
        hold_s: float = 0.1,
        debounce_s: float = 0.6,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.02,
    ) -> None:
        super().__init__()
        keymap = DEFAULT_KEYMAP if keymap is None else keymap
        check_keymap(keymap, estop_keys)
        if not step_m > 0 or not step_rad > 0:
            raise ConfigError(f"step_m and step_rad must be > 0, got {step_m}, {step_rad}")
        self.step_m, self.step_rad = step_m, step_rad
        self._estop = EStopKeys(estop, estop_keys) if estop is not None else None
        self._keys = KeyHold(keymap, hold_s, debounce_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._reader = TerminalKeyReader(
            self._on_bytes, stream=stream, poll_s=poll_s, label="keyboard teleop"
        )

    def help_text(self) -> str:
        """One line per bound action, for the operator: ``"w: +x"``…"""
        lines = [f"{k.encode()!r}"[2:-1] + f": {a}" for k, a in self._keys.keymap.items()]
        if self._estop is not None:
            lines.append(f"{self._estop.describe()}: E-STOP")
        return "\n".join(lines)

    def reset(self, seed: int | None = None) -> None:
        """New episode: release held keys, forget events, open the gripper."""
        super().reset(seed)
        with self._lock:
            self._keys.release_all()

    def _open(self) -> None:
        if not self._reader.start():
            raise DriverError("keyboard teleop needs a terminal (see the warning above)")

    def _close(self) -> None:
        self._reader.stop()

    def _read(self, obs: Obs | None) -> TeleopCommand:
        with self._lock:
            axes = self._keys.axes(self._clock())
            gripper = self.gripper
        return TeleopCommand(
            ee_delta_pos=axes[:3] * self.step_m,
            ee_delta_rot=axes[3:] * self.step_rad,
            gripper=gripper,
            events=self.events.take(),
        )

    def _on_bytes(self, data: bytes) -> None:
        """Reader thread: e-stop first, then the teleop keys."""
        if self._estop is not None and any(b in self._estop.keys for b in data):
            with self._lock:
                self._keys.release_all()  # before latching: nothing reads a held axis after
            self._estop.feed(data)
            return
        now = self._clock()
        for key in split_keys(data):
            with self._lock:
                action = self._keys.press(key, now)
            if action is not None:
                self._fire(action)

    def _fire(self, action: str) -> None:
        if action == "gripper":
            with self._lock:
                self.toggle_gripper()
        elif action == "intervention":
            self.events.toggle_level("intervention")
        else:
            self.events.press(PRESS_EVENTS[action])
