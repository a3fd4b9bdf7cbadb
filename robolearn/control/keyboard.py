"""An e-stop on the keyboard: space or Esc in the terminal latches an :class:`EStop`.

A background thread reads the terminal in cbreak mode (keys arrive one at a time, without
echo; Ctrl-C still interrupts) and restores the terminal's settings when stopped::

    estop = EStop()
    with KeyboardEStop(estop):
        run_episode(..., safety=SafetyLayer(spec, estop=estop))

Any byte of ``keys`` triggers, so an arrow key (which starts with Esc) triggers too: a false
stop is safe, a missed one is not. Keys never *reset* the e-stop; that takes ``estop.reset()``.
Without a terminal (stdin a pipe or file, or no ``termios`` on this platform) a warning is
logged and nothing is read.

The terminal handling lives in :mod:`robolearn.core.terminal`; the key check is
:class:`~robolearn.core.estop.EStopKeys`, which other terminal readers (the keyboard teleop device)
reuse so that
one terminal serves both the e-stop and the teleop keys.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any

from robolearn.core.estop import DEFAULT_KEYS, EStop, EStopKeys
from robolearn.core.terminal import TerminalKeyReader

_log = logging.getLogger("robolearn.safety")


class KeyboardEStop:
    """Latch ``estop`` when one of ``keys`` is pressed in the terminal ``stream``.

    ``stream`` is a file object or a file descriptor of a terminal (default ``sys.stdin``).
    ``poll_s`` bounds how long :meth:`stop` waits for the reader thread.
    """

    def __init__(
        self,
        estop: EStop,
        keys: Sequence[str] = DEFAULT_KEYS,
        stream: IO[Any] | int | None = None,
        poll_s: float = 0.05,
    ) -> None:
        self._keys = EStopKeys(estop, keys)
        self.estop = estop
        self._reader = TerminalKeyReader(
            self._keys.feed,
            stream=stream,
            poll_s=poll_s,
            label="keyboard e-stop",
            hint="; use the API e-stop",
            logger=_log,
        )

    @property
    def active(self) -> bool:
        """Whether the reader thread is running."""
        return self._reader.active

    def start(self) -> bool:
        """Put the terminal in cbreak mode and start reading; whether it could."""
        was_active = self._reader.active
        started = self._reader.start()
        if started and not was_active:
            _log.info("keyboard e-stop armed: press %s to stop the robot", self._keys.describe())
        return started

    def stop(self) -> None:
        """Stop reading and restore the terminal's settings. Idempotent."""
        self._reader.stop()

    def __enter__(self) -> KeyboardEStop:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
