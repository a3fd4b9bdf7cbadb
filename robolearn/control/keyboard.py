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
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any

from robolearn.control.safety import EStop
from robolearn.types import ConfigError

try:
    import termios
    import tty
except ImportError:  # pragma: no cover - not on POSIX
    termios = None  # type: ignore[assignment]
    tty = None  # type: ignore[assignment]

_log = logging.getLogger("robolearn.safety")

DEFAULT_KEYS = (" ", "\x1b")
"""Space and Esc."""


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
        if not keys or any(len(k.encode()) != 1 for k in keys):
            raise ConfigError(f"keys must be single-byte characters, got {list(keys)!r}")
        if not poll_s > 0:
            raise ConfigError(f"poll_s must be > 0, got {poll_s}")
        self.estop = estop
        self._keys = frozenset(k.encode()[0] for k in keys)
        self._stream = stream if stream is not None else sys.stdin
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: list[Any] | None = None
        self._fd = -1

    @property
    def active(self) -> bool:
        """Whether the reader thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Put the terminal in cbreak mode and start reading; whether it could."""
        if self._thread is not None:
            return self.active
        fd = self._terminal_fd()
        if fd is None:
            return False
        self._fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_loop, name="keyboard-estop", daemon=True)
        self._thread.start()
        keys = ", ".join(repr(chr(k)) for k in sorted(self._keys))
        _log.info("keyboard e-stop armed: press %s to stop the robot", keys)
        return True

    def stop(self) -> None:
        """Stop reading and restore the terminal's settings. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
        if self._saved is not None:
            saved, self._saved = self._saved, None
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)
            except (termios.error, OSError) as exc:  # the terminal has gone away
                _log.warning("keyboard e-stop could not restore the terminal: %s", exc)

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

    def _terminal_fd(self) -> int | None:
        """The stream's descriptor if it is a terminal we can read; else warn and ``None``."""
        if termios is None:
            _log.warning("keyboard e-stop disabled: no termios on this platform")
            return None
        try:
            fd = self._stream if isinstance(self._stream, int) else self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            _log.warning("keyboard e-stop disabled: %r has no file descriptor", self._stream)
            return None
        if not os.isatty(fd):
            _log.warning("keyboard e-stop disabled: input is not a terminal; use the API e-stop")
            return None
        return fd

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], self._poll_s)
            if not ready:
                continue
            try:
                data = os.read(self._fd, 64)
            except OSError as exc:
                _log.warning("keyboard e-stop stopped reading: %s", exc)
                return
            if not data:
                _log.warning("keyboard e-stop stopped reading: end of input")
                return
            self._check(data)

    def _check(self, data: bytes) -> None:
        hit = next((b for b in data if b in self._keys), None)
        if hit is not None:
            self.estop.trigger(f"key {chr(hit)!r} pressed")
