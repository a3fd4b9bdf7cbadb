"""The camera contract: one small interface for RealSense, V4L2 webcams and video files.

A camera exposes

* ``spec`` → :class:`~robolearn.core.types.CameraSpec` (name, intrinsics, depth, fps), known once
  the camera has been connected (the device reports its own intrinsics);
* ``connect()`` / ``disconnect()``, also as a context manager;
* ``read(timeout_s)`` → the next *fresh* :class:`CameraFrame` (newer than any frame this
  camera returned before), waiting for it;
* ``async_read(max_age_s)`` → the latest frame without waiting for a new one, or a
  :class:`~robolearn.core.types.DriverError` when that frame is older than ``max_age_s`` (the
  camera stalled or was unplugged).

Each camera runs one capture thread that keeps only the newest frame (:class:`LatestFrame`),
so a slow consumer never reads stale, queued-up images. Subclasses implement three hooks:
``_open()``, ``_grab(timeout_s)`` (one frame, or ``None`` when none came in time; raise
:class:`EndOfStream` at the end of a recording) and ``_close()``.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from robolearn.core.types import CameraSpec, ConfigError, DriverError

FIND_CAMERAS_HINT = "run `robolearn find-cameras` to list the connected cameras"
"""The fix most camera errors point to."""

_CameraT = TypeVar("_CameraT", bound="Camera")

GRAB_POLL_S = 0.1
"""How long the capture thread waits in one ``_grab`` call before checking for a stop."""


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """One image from a camera, with the device's and the host's timestamps."""

    rgb: NDArray[np.uint8]
    """Colour image (H, W, 3) uint8, RGB order."""
    depth_m: NDArray[np.float32] | None
    """Depth aligned to ``rgb`` (H, W) float32 in metres, 0 where unknown; None without depth."""
    device_timestamp_s: float
    """The device's own timestamp of the frame in seconds, on the clock ``timestamp_domain``
    names. Comparable only with other timestamps of the same device and domain."""
    timestamp_domain: str
    """Which clock ``device_timestamp_s`` is on: RealSense ``hardware_clock``,
    ``system_time`` or ``global_time``; ``v4l2_buffer`` (the kernel's capture time) for a
    V4L2 camera; ``file_position`` (time since the start) for a video file."""
    host_timestamp_s: float
    """``time.monotonic()`` when the frame reached this process."""
    frame_number: int
    """The device's frame counter (for a video file: the frame's index in the file)."""
    sequence: int = 0
    """This camera's count of delivered frames, 1 for the first; set by :class:`LatestFrame`."""

    def age_s(self, now_s: float | None = None) -> float:
        """Seconds since the frame reached the host (``now_s`` defaults to ``time.monotonic()``)."""
        return (time.monotonic() if now_s is None else now_s) - self.host_timestamp_s


class EndOfStream(Exception):
    """Raised by ``_grab`` when a recording (video file, RealSense bag) has no more frames."""


class LatestFrame:
    """The newest frame of a capture thread; readers wait on it. Thread-safe.

    Holds one frame, not a queue: a frame that nobody read before the next one arrived is
    dropped. After :meth:`finish` (end of stream, failure, disconnect) readers get the last
    frame while it is new to them and the reason afterwards.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: CameraFrame | None = None
        self._count = 0
        self._finished: str | None = None
        self._error: BaseException | None = None

    def put(self, frame: CameraFrame) -> None:
        """Publish ``frame`` as the newest one (numbering it) and wake the readers."""
        with self._cond:
            self._count += 1
            self._frame = dataclasses.replace(frame, sequence=self._count)
            self._cond.notify_all()

    def finish(self, reason: str, error: BaseException | None = None) -> None:
        """No frame will follow: say why (and with which exception, if one)."""
        with self._cond:
            if self._finished is None:
                self._finished, self._error = reason, error
            self._cond.notify_all()

    @property
    def count(self) -> int:
        """How many frames have been published."""
        with self._cond:
            return self._count

    @property
    def finished(self) -> str | None:
        """Why the stream stopped, or None while it runs."""
        with self._cond:
            return self._finished

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the stream, if one did."""
        with self._cond:
            return self._error

    def latest(self) -> CameraFrame | None:
        """The newest frame, or None before the first one."""
        with self._cond:
            return self._frame

    def wait_newer(self, sequence: int, timeout_s: float) -> CameraFrame | None:
        """The newest frame if its ``sequence`` is above ``sequence``, waiting up to
        ``timeout_s`` for one; None on timeout or when the stream finished first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._has_newer(sequence) and self._finished is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0.0:
                    break
                self._cond.wait(remaining)
            return self._frame if self._has_newer(sequence) else None

    def _has_newer(self, sequence: int) -> bool:
        return self._frame is not None and self._frame.sequence > sequence


class Camera(abc.ABC):
    """Base class of every camera. Subclasses implement ``spec`` and the ``_`` hooks."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._connected = False
        self._buffer = LatestFrame()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sequence = 0
        self._read_lock = threading.Lock()

    @property
    def name(self) -> str:
        """The camera's name (the key of its images in observations)."""
        return self._name

    @property
    @abc.abstractmethod
    def spec(self) -> CameraSpec:
        """Name, intrinsics, depth and frame rate; DriverError before the first connect."""

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def frames_received(self) -> int:
        """Frames the capture thread has delivered since the last connect."""
        return self._buffer.count

    def connect(self) -> None:
        """Open the device and start the capture thread. Idempotent."""
        if self._connected:
            return
        self._open()
        self._buffer, self._last_sequence = LatestFrame(), 0
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._capture_loop, name=f"camera-{self._name}", daemon=True
        )
        self._thread.start()
        self._connected = True

    def disconnect(self) -> None:
        """Stop the capture thread and release the device. Idempotent."""
        if not self._connected:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._buffer.finish("the camera was disconnected")
        try:
            self._close()
        finally:
            self._connected = False

    def __enter__(self: _CameraT) -> _CameraT:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    def read(self, timeout_s: float = 1.0) -> CameraFrame:
        """The next frame newer than any this camera returned, waiting up to ``timeout_s``.
        (Two threads reading at once may both get the same frame.)

        Raises DriverError when no new frame comes in time, the recording ended or the
        capture failed.
        """
        self._require_connected()
        with self._read_lock:
            after = self._last_sequence
        frame = self._buffer.wait_newer(after, timeout_s)
        if frame is None:
            raise self._no_new_frame_error(timeout_s)
        self._mark_returned(frame)
        return frame

    def async_read(self, max_age_s: float) -> CameraFrame:
        """The latest frame without waiting for a new one (it may have been returned before).

        Before the first frame, waits up to ``max_age_s`` for it. Raises DriverError when
        the latest frame is older than ``max_age_s``: the camera stalled, was unplugged or
        its recording ended.
        """
        self._require_connected()
        if max_age_s <= 0.0:
            raise ConfigError(f"max_age_s must be positive, got {max_age_s}")
        frame = self._buffer.latest() or self._buffer.wait_newer(0, max_age_s)
        if frame is None:
            raise self._no_frame_yet_error(max_age_s)
        age_s = frame.age_s()
        if age_s > max_age_s:
            raise DriverError(
                f"camera {self._name!r}: the latest frame is {age_s * 1e3:.0f} ms old, over "
                f"the {max_age_s * 1e3:.0f} ms limit; {self._stall_cause()}"
            )
        self._mark_returned(frame)
        return frame

    # ---- hooks -------------------------------------------------------------------------

    @abc.abstractmethod
    def _open(self) -> None:
        """Open and configure the device; raise ConfigError/DriverError with the fix."""

    @abc.abstractmethod
    def _grab(self, timeout_s: float) -> CameraFrame | None:
        """One frame (stamped with ``time.monotonic()`` on arrival), or None when none came
        within ``timeout_s``. Raise :class:`EndOfStream` when a recording has no more."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the device (the capture thread has stopped)."""

    # ---- internals ---------------------------------------------------------------------

    def _capture_loop(self) -> None:
        """Grab frames into the buffer until stopped, the stream ends or a grab fails."""
        try:
            while not self._stop.is_set():
                frame = self._grab(GRAB_POLL_S)
                if frame is not None:
                    self._buffer.put(frame)
        except EndOfStream as end:
            self._buffer.finish(str(end) or "the recording ended")
        except Exception as exc:  # reported to the reader, who raises it as DriverError
            self._buffer.finish(f"capture failed: {exc}", exc)

    def _mark_returned(self, frame: CameraFrame) -> None:
        """Remember that ``frame`` was handed out: ``read`` returns only newer ones."""
        with self._read_lock:
            self._last_sequence = max(self._last_sequence, frame.sequence)

    def _require_connected(self) -> None:
        if not self._connected:
            raise DriverError(f"camera {self._name!r} is not connected; call connect() first")

    def _stall_cause(self) -> str:
        """Why frames stopped, for error messages."""
        finished = self._buffer.finished
        if finished is not None:
            return f"no frame follows: {finished}"
        return (
            "the camera stalled (unplugged, in use by another program, or starved of USB "
            f"bandwidth); {FIND_CAMERAS_HINT}"
        )

    def _no_new_frame_error(self, timeout_s: float) -> DriverError:
        if self._buffer.finished is not None:
            message = f"camera {self._name!r} has no new frame: {self._buffer.finished}"
        else:
            message = (
                f"camera {self._name!r} delivered no new frame within {timeout_s:g} s; "
                f"{self._stall_cause()}"
            )
        error = DriverError(message)
        error.__cause__ = self._buffer.error
        return error

    def _no_frame_yet_error(self, waited_s: float) -> DriverError:
        error = DriverError(
            f"camera {self._name!r} has delivered no frame yet (waited {waited_s:g} s); "
            f"{self._stall_cause()}"
        )
        error.__cause__ = self._buffer.error
        return error
