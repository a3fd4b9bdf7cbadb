"""A camera read through OpenCV: a V4L2 webcam (/dev/videoN, or its index N) or a video file.

On V4L2 the camera is asked for MJPG (USB 2 cannot carry uncompressed 640x480 at 30 fps
alongside a second camera) and for the configured size and rate; what the driver settled on
is read back and a mismatch raises a ConfigError listing the modes the camera offers. The
capture thread keeps only the latest frame and converts OpenCV's BGR to RGB.

A video file plays like a camera: frames come at the file's frame rate (``pace_files``)
and, after the last one, ``read`` raises and ``async_read`` reports the stall once the last
frame is older than its limit. Tests use this to exercise the driver without a device.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from robolearn.core.types import CameraIntrinsics, CameraSpec, ConfigError, DriverError
from robolearn.drivers.cameras import v4l2
from robolearn.drivers.cameras.base import FIND_CAMERAS_HINT, Camera, CameraFrame, EndOfStream

READ_TIMEOUT_MS = 2000
"""How long one V4L2 read may block before OpenCV gives up (a stalled camera)."""

FAILED_READ_PAUSE_S = 0.05
"""Pause after a V4L2 read that returned no image, before trying again."""

FPS_TOLERANCE = 0.5
"""Largest difference (fps) between the requested and the delivered frame rate."""


@dataclass(frozen=True)
class OpenCVCameraConfig:
    """Which OpenCV source to open and how."""

    source: int | str | Path
    """Camera index N (``/dev/videoN``), a device path (``/dev/video2``,
    ``/dev/v4l/by-id/...``) or a video file."""
    name: str = "opencv"
    """The camera's name in specs and observations."""
    width: int | None = None
    """Requested image width in pixels; None keeps the camera's (or file's) own."""
    height: int | None = None
    """Requested image height in pixels; None keeps the camera's (or file's) own."""
    fps: float | None = None
    """Requested frame rate; None keeps the camera's (or file's) own."""
    fourcc: str | None = "MJPG"
    """Pixel format asked of a V4L2 camera (``MJPG``, ``YUYV``); None leaves it. Files ignore it."""
    intrinsics: CameraIntrinsics | None = None
    """Calibrated intrinsics; None estimates them from ``hfov_deg`` (good enough for display,
    not for geometry)."""
    hfov_deg: float = 60.0
    """Horizontal field of view behind the estimated intrinsics, when ``intrinsics`` is None."""
    pace_files: bool = True
    """Deliver a file's frames at its frame rate, like a live camera (else as fast as decoded)."""

    def __post_init__(self) -> None:
        for field_name in ("width", "height"):
            value = getattr(self, field_name)
            if value is not None and value <= 0:
                raise ConfigError(f"{field_name} must be positive, got {value}")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"fps must be positive, got {self.fps}")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ConfigError(f"fourcc must have four characters (e.g. MJPG), got {self.fourcc!r}")
        if not 0.0 < self.hfov_deg < 180.0:
            raise ConfigError(f"hfov_deg must lie in (0, 180), got {self.hfov_deg}")


@dataclass(frozen=True)
class _Negotiated:
    """What an opened source actually delivers."""

    width: int
    height: int
    fps: float
    fourcc: str


class OpenCVCamera(Camera):
    """A V4L2 camera or a video file through ``cv2.VideoCapture``, RGB only."""

    def __init__(self, config: OpenCVCameraConfig) -> None:
        super().__init__(config.name)
        self._config = config
        self._source = _normalized_source(config.source)
        self._is_file = _is_file_source(self._source)
        self._capture: cv2.VideoCapture | None = None
        self._spec: CameraSpec | None = None
        self._period_s = 0.0
        self._next_due_s = 0.0
        self._frame_index = 0

    @property
    def config(self) -> OpenCVCameraConfig:
        return self._config

    @property
    def spec(self) -> CameraSpec:
        if self._spec is None:
            raise DriverError(
                f"camera {self.name!r} knows its image size once connected; call connect() first"
            )
        return self._spec

    @property
    def source_label(self) -> str:
        """The source as a user would name it (``/dev/video0``, a file path)."""
        source = self._source
        return f"/dev/video{source}" if isinstance(source, int) else source

    # ---- hooks -------------------------------------------------------------------------

    def _open(self) -> None:
        capture = self._open_file() if self._is_file else self._open_v4l2()
        try:
            actual = self._configure(capture)
            self._check(capture, actual)
        except BaseException:
            capture.release()
            raise
        self._capture = capture
        self._spec = CameraSpec(
            name=self.name,
            intrinsics=self._config.intrinsics
            or estimate_intrinsics(actual.width, actual.height, self._config.hfov_deg),
            depth=False,
            fps=actual.fps,
        )
        self._period_s = 1.0 / actual.fps if self._is_file and self._config.pace_files else 0.0
        self._next_due_s = time.monotonic()
        self._frame_index = 0

    def _grab(self, timeout_s: float) -> CameraFrame | None:
        assert self._capture is not None
        if self._period_s and not self._wait_until_due(timeout_s):
            return None
        ok, bgr = self._capture.read()
        host_s = time.monotonic()
        if not ok or bgr is None:
            self._on_failed_read()
            time.sleep(min(timeout_s, FAILED_READ_PAUSE_S))  # no busy loop on a failing device
            return None
        position_s = float(self._capture.get(cv2.CAP_PROP_POS_MSEC)) / 1e3
        self._frame_index += 1
        return CameraFrame(
            rgb=np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8),
            depth_m=None,
            device_timestamp_s=position_s,
            timestamp_domain="file_position" if self._is_file else "v4l2_buffer",
            host_timestamp_s=host_s,
            frame_number=self._frame_index - 1,
        )

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    # ---- opening -----------------------------------------------------------------------

    def _open_file(self) -> cv2.VideoCapture:
        path = Path(self.source_label)
        if not path.is_file():
            raise ConfigError(
                f"camera {self.name!r}: video file {path} does not exist; give a camera index "
                f"(0), a /dev/video* path or an existing file ({FIND_CAMERAS_HINT})"
            )
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise DriverError(
                f"camera {self.name!r}: OpenCV cannot decode {path}; is it a video file "
                "(mp4, avi, mkv)?"
            )
        return capture

    def _open_v4l2(self) -> cv2.VideoCapture:
        if not sys.platform.startswith("linux"):
            raise DriverError(f"camera {self.name!r}: V4L2 cameras exist only on Linux")
        path = self.source_label
        if not Path(path).exists():
            raise DriverError(
                f"camera {self.name!r}: {path} does not exist; {_available_cameras()}; "
                f"{FIND_CAMERAS_HINT}"
            )
        params = [cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        capture = cv2.VideoCapture(path, cv2.CAP_V4L2, params)
        if not capture.isOpened():
            raise DriverError(
                f"camera {self.name!r}: {path} exists but does not open as a video capture "
                "device (in use by another program, a metadata node, or no permission: add "
                f"yourself to group 'video'); {FIND_CAMERAS_HINT}"
            )
        return capture

    def _configure(self, capture: cv2.VideoCapture) -> _Negotiated:
        """Ask a V4L2 camera for the configured mode; read back what it delivers."""
        cfg = self._config
        if not self._is_file:
            if cfg.fourcc is not None:
                capture.set(cv2.CAP_PROP_FOURCC, v4l2.fourcc_code(cfg.fourcc))
            if cfg.width is not None:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            if cfg.height is not None:
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            if cfg.fps is not None:
                capture.set(cv2.CAP_PROP_FPS, cfg.fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return _Negotiated(
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=_sane_fps(float(capture.get(cv2.CAP_PROP_FPS)), cfg.fps),
            fourcc=v4l2.fourcc_name(int(capture.get(cv2.CAP_PROP_FOURCC))),
        )

    def _check(self, capture: cv2.VideoCapture, actual: _Negotiated) -> None:
        """ConfigError naming what the source offers when it does not match the config."""
        cfg = self._config
        wrong = []
        if (cfg.width, cfg.height) != (None, None):
            want = (cfg.width or actual.width, cfg.height or actual.height)
            if want != (actual.width, actual.height):
                wrong.append(f"size {want[0]}x{want[1]} (got {actual.width}x{actual.height})")
        if cfg.fps is not None and abs(cfg.fps - actual.fps) > FPS_TOLERANCE:
            wrong.append(f"{cfg.fps:g} fps (got {actual.fps:g})")
        if not self._is_file and cfg.fourcc is not None and cfg.fourcc != actual.fourcc:
            wrong.append(f"pixel format {cfg.fourcc} (got {actual.fourcc})")
        if wrong:
            raise ConfigError(
                f"camera {self.name!r} ({self.source_label}) does not offer "
                f"{', '.join(wrong)}; {self._offered(actual)}"
            )

    def _offered(self, actual: _Negotiated) -> str:
        """What the source offers, for error messages."""
        if self._is_file:
            return (
                f"this video file is {actual.width}x{actual.height} at {actual.fps:g} fps; "
                "leave width/height/fps unset or resize the file"
            )
        try:
            modes = v4l2.list_modes(self.source_label)
        except OSError as exc:
            return f"its modes could not be listed ({exc}); {FIND_CAMERAS_HINT}"
        listed = ", ".join(str(m) for m in modes) or "none listed by the driver"
        return f"it offers: {listed} (choose one, or `robolearn find-cameras --modes`)"

    # ---- grabbing ----------------------------------------------------------------------

    def _wait_until_due(self, timeout_s: float) -> bool:
        """Pace a file at its frame rate: wait for the next frame's time, at most ``timeout_s``."""
        wait_s = self._next_due_s - time.monotonic()
        if wait_s > timeout_s:
            time.sleep(timeout_s)
            return False
        if wait_s > 0.0:
            time.sleep(wait_s)
        # The next frame is one period later, but never in the past: no bursts after a hiccup.
        self._next_due_s = max(self._next_due_s + self._period_s, time.monotonic())
        return True

    def _on_failed_read(self) -> None:
        """A read that returned no image: the end of a file, or a stalled/unplugged camera."""
        if self._is_file:
            raise EndOfStream(
                f"end of video file {self.source_label} after {self._frame_index} frames"
            )
        if not Path(self.source_label).exists():
            raise DriverError(f"{self.source_label} disappeared (camera unplugged?)")
        # Otherwise a read timeout: keep trying; readers see the stall through frame ages.


def estimate_intrinsics(width: int, height: int, hfov_deg: float) -> CameraIntrinsics:
    """Pinhole intrinsics of an ideal camera with square pixels, centred principal point and
    horizontal field of view ``hfov_deg``."""
    f_px = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return CameraIntrinsics(
        width=width, height=height, fx=f_px, fy=f_px, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0
    )


def _normalized_source(source: int | str | Path) -> int | str:
    """A camera index as int (also when given as ``"2"``), anything else as a path string."""
    if isinstance(source, int):
        if source < 0:
            raise ConfigError(f"a camera index is 0 or more, got {source}; {FIND_CAMERAS_HINT}")
        return source
    text = str(source)
    return int(text) if text.isdigit() else text


def _is_file_source(source: int | str) -> bool:
    """Whether ``source`` names a video file (not a camera index or a /dev node)."""
    return isinstance(source, str) and not source.startswith("/dev/")


def _sane_fps(reported: float, requested: float | None) -> float:
    """The reported frame rate, or the requested one (else 30) when the backend reports none."""
    if math.isfinite(reported) and reported > 0.0:
        return reported
    return requested if requested is not None else 30.0


def _available_cameras() -> str:
    """``cameras: /dev/video0 (name), ...`` or ``no /dev/video* device exists``."""
    paths = v4l2.video_device_paths()
    if not paths:
        return "no /dev/video* device exists on this machine"
    return "video devices: " + ", ".join(str(p) for p in paths)
