"""Keys from a plain terminal: cbreak mode and a background reader thread, no display needed.

:class:`TerminalKeyReader` puts a terminal in cbreak mode (keys arrive one at a time, without
echo, without Enter; Ctrl-C still interrupts), hands every chunk of bytes it reads to a
callback on a background thread, and restores the terminal's settings when stopped. The
keyboard e-stop (:mod:`robolearn.control.keyboard`) and the keyboard teleop device
(:mod:`robolearn.teleop.keyboard`) are both built on it, so only one thing ever touches ``termios``.

:func:`split_keys` turns such a chunk into keys: single characters, and escape sequences
(arrow and function keys) kept whole.

Without a terminal (the stream a pipe or a file, or no ``termios`` on this platform) a
warning is logged and nothing is read.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

from robolearn.core.types import ConfigError

try:
    import termios
    import tty
except ImportError:  # pragma: no cover - not on POSIX
    termios = None  # type: ignore[assignment]
    tty = None  # type: ignore[assignment]

ESC = "\x1b"
_CSI_FINAL = range(0x40, 0x7F)
"""Bytes that end a CSI escape sequence (``ESC [ ... final``)."""


def split_keys(data: bytes) -> list[str]:
    """The keys in one chunk read from a terminal, in order.

    A printable or control byte is one key (``"w"``, ``"\\n"``, ``"\\x04"``); an escape
    sequence (``ESC [ ... final`` or ``ESC O x``, sent by arrow and function keys) is one key
    kept whole, e.g. ``"\\x1b[A"`` for the up arrow; a lone ``ESC`` is the key ``"\\x1b"``.
    Bytes that are not ASCII are dropped. A sequence split across two reads comes out as
    ``ESC`` followed by plain keys: terminals send a key's bytes in one write, so this is rare.
    """
    keys: list[str] = []
    i = 0
    while i < len(data):
        end = _escape_end(data, i) if data[i] == 0x1B else i + 1
        if data[i] < 0x80:
            keys.append(data[i:end].decode("ascii", errors="replace"))
        i = end
    return keys


def _escape_end(data: bytes, start: int) -> int:
    """Index just past the escape sequence that begins at ``data[start]`` (an ESC byte)."""
    if start + 1 >= len(data) or data[start + 1] not in b"[O":
        return start + 1
    if data[start + 1] == ord("O"):
        return min(start + 3, len(data))
    i = start + 2
    while i < len(data) and data[i] not in _CSI_FINAL:
        i += 1
    return min(i + 1, len(data))


class TerminalKeyReader:
    """Read a terminal in cbreak mode on a background thread; call ``on_bytes`` per chunk.

    ``stream`` is a file object or a file descriptor of a terminal (default ``sys.stdin``).
    ``poll_s`` bounds how long :meth:`stop` waits for the reader thread. ``label`` names the
    user in log lines ("keyboard e-stop disabled: input is not a terminal"), ``hint`` is
    added to that warning, and ``logger`` receives them. ``on_bytes`` runs on the reader
    thread: keep it short and thread-safe.
    """

    def __init__(
        self,
        on_bytes: Callable[[bytes], object],
        stream: IO[Any] | int | None = None,
        poll_s: float = 0.05,
        label: str = "keyboard",
        hint: str = "",
        logger: logging.Logger | None = None,
    ) -> None:
        if not poll_s > 0:
            raise ConfigError(f"poll_s must be > 0, got {poll_s}")
        self._on_bytes = on_bytes
        self._stream = stream if stream is not None else sys.stdin
        self._poll_s = poll_s
        self._label, self._hint = label, hint
        self._log = logger if logger is not None else logging.getLogger("robolearn.terminal")
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
        self._thread = threading.Thread(target=self._read_loop, name=self._label, daemon=True)
        self._thread.start()
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
                self._log.warning("%s could not restore the terminal: %s", self._label, exc)

    def __enter__(self) -> TerminalKeyReader:
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
            self._log.warning("%s disabled: no termios on this platform", self._label)
            return None
        try:
            fd = self._stream if isinstance(self._stream, int) else self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._log.warning("%s disabled: %r has no file descriptor", self._label, self._stream)
            return None
        if not os.isatty(fd):
            self._log.warning("%s disabled: input is not a terminal%s", self._label, self._hint)
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
                self._log.warning("%s stopped reading: %s", self._label, exc)
                return
            if not data:
                self._log.warning("%s stopped reading: end of input", self._label)
                return
            self._on_bytes(data)
