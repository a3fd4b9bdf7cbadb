"""The e-stop latch and its key binding, shared by the control loop and teleop devices.

:class:`EStop` is a latch any thread may trigger; :class:`EStopKeys` latches one when a chunk
of terminal bytes holds an e-stop key (the keyboard e-stop of :mod:`robolearn.control.keyboard`
and the keyboard teleop device of :mod:`robolearn.teleop.keyboard` share it, so one terminal
serves both).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from robolearn.core.types import ConfigError

_log = logging.getLogger("robolearn.safety")


class EStop:
    """A latching emergency stop, safe to trigger from any thread (a key, a UI, a monitor).

    Once triggered it stays set, whatever else happens, until :meth:`reset` is called.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._reason: str | None = None
        self._trigger_count = 0

    def trigger(self, reason: str = "api") -> None:
        """Latch the e-stop; ``reason`` is kept (the first one, if already latched) and logged."""
        with self._lock:
            first = self._reason is None
            if first:
                self._reason = reason
                self._trigger_count += 1
                self._event.set()
        if first:
            _log.warning("e-stop latched: %s", reason)

    def is_set(self) -> bool:
        """Whether the e-stop is latched."""
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        """Why the e-stop latched, or ``None`` while it is not set."""
        with self._lock:
            return self._reason

    @property
    def trigger_count(self) -> int:
        """How many times the e-stop has latched since it was made."""
        with self._lock:
            return self._trigger_count

    def reset(self) -> None:
        """Release the e-stop: the one explicit way to let commands through again."""
        with self._lock:
            was = self._reason
            self._reason = None
            self._event.clear()
        if was is not None:
            _log.info("e-stop reset (it latched for: %s)", was)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the e-stop latches or ``timeout_s`` passes; whether it is set."""
        return self._event.wait(timeout_s)


DEFAULT_KEYS = (" ", "\x1b")
"""Space and Esc."""


class EStopKeys:
    """Latch ``estop`` when a chunk of terminal bytes holds one of ``keys`` (single bytes)."""

    def __init__(self, estop: EStop, keys: Sequence[str] = DEFAULT_KEYS) -> None:
        if not keys or any(len(k.encode()) != 1 for k in keys):
            raise ConfigError(f"keys must be single-byte characters, got {list(keys)!r}")
        self.estop = estop
        self.keys = frozenset(k.encode()[0] for k in keys)

    def feed(self, data: bytes) -> bool:
        """Latch the e-stop if ``data`` holds an e-stop key; whether it did."""
        hit = next((b for b in data if b in self.keys), None)
        if hit is not None:
            self.estop.trigger(f"key {chr(hit)!r} pressed")
        return hit is not None

    def describe(self) -> str:
        """The keys, for log lines: ``"' ', '\\x1b'"``."""
        return ", ".join(repr(chr(k)) for k in sorted(self.keys))
