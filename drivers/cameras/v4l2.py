"""Linux V4L2 devices through their ioctls: which /dev/video* nodes capture video, and in
which modes (pixel format, size, frame rate). Standard library only.

OpenCV cannot list a camera's modes; this module can, so a requested resolution the camera
does not offer fails with the list of those it does. Struct layouts and request numbers
follow ``linux/videodev2.h`` (the same on every Linux architecture with 32-bit ``__u32``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, number: int, size: int) -> int:
    """An ioctl request number of V4L2's type ``'V'`` (``_IOC`` in ``asm-generic/ioctl.h``)."""
    return (direction << 30) | (size << 16) | (ord("V") << 8) | number


_CAPABILITY = struct.Struct("=16s32s32sIII12x")  # struct v4l2_capability (104 bytes)
_FMTDESC = struct.Struct("=III32sII12x")  # struct v4l2_fmtdesc (64 bytes)
_FRMSIZE = struct.Struct("=III6I8x")  # struct v4l2_frmsizeenum (44 bytes)
_FRMIVAL = struct.Struct("=IIIII6I8x")  # struct v4l2_frmivalenum (52 bytes)

VIDIOC_QUERYCAP = _ioc(_IOC_READ, 0, _CAPABILITY.size)
VIDIOC_ENUM_FMT = _ioc(_IOC_READ | _IOC_WRITE, 2, _FMTDESC.size)
VIDIOC_ENUM_FRAMESIZES = _ioc(_IOC_READ | _IOC_WRITE, 74, _FRMSIZE.size)
VIDIOC_ENUM_FRAMEINTERVALS = _ioc(_IOC_READ | _IOC_WRITE, 75, _FRMIVAL.size)

_CAP_VIDEO_CAPTURE = 0x00000001
_CAP_DEVICE_CAPS = 0x80000000
_BUF_TYPE_VIDEO_CAPTURE = 1
_FRMSIZE_TYPE_DISCRETE = 1
_FRMIVAL_TYPE_DISCRETE = 1
_MAX_ENTRIES = 256
"""Bound on every enumeration, against a driver that never answers EINVAL."""


@dataclass(frozen=True)
class VideoMode:
    """One capture mode a V4L2 camera offers."""

    fourcc: str
    """Pixel format, e.g. ``MJPG`` or ``YUYV``."""
    width: int
    height: int
    fps: tuple[float, ...]
    """Frame rates offered at this size (empty when the driver gives ranges, not a list)."""

    def __str__(self) -> str:
        rates = "/".join(f"{r:g}" for r in self.fps) or "?"
        return f"{self.fourcc} {self.width}x{self.height}@{rates}"


@dataclass(frozen=True)
class V4L2Device:
    """A /dev/video* node and what the driver says about it."""

    path: str
    """Device node, e.g. ``/dev/video0``."""
    index: int
    """The N of /dev/videoN (what ``cv2.VideoCapture(N)`` opens)."""
    card: str
    """The device's name, e.g. ``HD Pro Webcam C920``."""
    driver: str
    bus_info: str
    """Where it is plugged in, e.g. ``usb-0000:00:14.0-1``."""
    captures_video: bool
    """False for metadata and output nodes, which every UVC camera also creates."""


def video_device_paths(dev_dir: Path = Path("/dev")) -> list[Path]:
    """The ``videoN`` nodes under ``dev_dir``, by N."""
    found = [p for p in dev_dir.glob("video*") if re.fullmatch(r"video\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[len("video") :]))


def query_device(path: Path | str) -> V4L2Device:
    """What ``VIDIOC_QUERYCAP`` says about ``path``; OSError when it is not a V4L2 device
    (``errno.ENOTTY``) or cannot be opened (``EACCES``: add the user to group ``video``)."""
    raw = _ioctl(path, VIDIOC_QUERYCAP, bytearray(_CAPABILITY.size))
    driver, card, bus_info, _version, caps, device_caps = _CAPABILITY.unpack(raw)
    effective = device_caps if caps & _CAP_DEVICE_CAPS else caps
    return V4L2Device(
        path=str(path),
        index=_node_index(Path(path)),
        card=_c_string(card),
        driver=_c_string(driver),
        bus_info=_c_string(bus_info),
        captures_video=bool(effective & _CAP_VIDEO_CAPTURE),
    )


def list_modes(path: Path | str) -> list[VideoMode]:
    """Every (pixel format, discrete size) the capture device at ``path`` offers, with its
    frame rates. OSError when ``path`` is not a V4L2 capture device."""
    fd = os.open(str(path), os.O_RDWR | os.O_NONBLOCK)
    try:
        return [mode for fourcc in _pixel_formats(fd) for mode in _modes_of(fd, fourcc)]
    finally:
        os.close(fd)


def fourcc_code(fourcc: str) -> int:
    """The 32-bit code of a four-character pixel format (``MJPG`` → 0x47504A4D)."""
    if len(fourcc) != 4:
        raise ValueError(f"a fourcc has four characters, got {fourcc!r}")
    return int.from_bytes(fourcc.encode("ascii"), "little")


def fourcc_name(code: int) -> str:
    """The four characters of a 32-bit pixel-format code (0 and garbage → ``????``)."""
    text = int(code).to_bytes(4, "little").decode("ascii", errors="replace")
    return text if text.isprintable() and code else "????"


def _pixel_formats(fd: int) -> list[int]:
    """Pixel-format codes from ``VIDIOC_ENUM_FMT``."""
    codes = []
    for index in range(_MAX_ENTRIES):
        buf = bytearray(_FMTDESC.pack(index, _BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0))
        if not _enum_ioctl(fd, VIDIOC_ENUM_FMT, buf):
            break
        codes.append(_FMTDESC.unpack(buf)[4])
    return codes


def _modes_of(fd: int, pixel_format: int) -> list[VideoMode]:
    """The discrete frame sizes of one pixel format with their frame rates."""
    modes = []
    for index in range(_MAX_ENTRIES):
        buf = bytearray(_FRMSIZE.pack(index, pixel_format, 0, *([0] * 6)))
        if not _enum_ioctl(fd, VIDIOC_ENUM_FRAMESIZES, buf):
            break
        _, _, kind, width, height, *_ = _FRMSIZE.unpack(buf)
        if kind != _FRMSIZE_TYPE_DISCRETE:
            break  # stepwise/continuous sizes: any size in a range; nothing to list
        rates = _frame_rates(fd, pixel_format, width, height)
        modes.append(VideoMode(fourcc_name(pixel_format), width, height, rates))
    return modes


def _frame_rates(fd: int, pixel_format: int, width: int, height: int) -> tuple[float, ...]:
    """Discrete frame rates (fps) of one format and size, highest first."""
    rates = []
    for index in range(_MAX_ENTRIES):
        buf = bytearray(_FRMIVAL.pack(index, pixel_format, width, height, 0, *([0] * 6)))
        if not _enum_ioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, buf):
            break
        _, _, _, _, kind, numerator, denominator, *_ = _FRMIVAL.unpack(buf)
        if kind != _FRMIVAL_TYPE_DISCRETE:
            break
        if numerator > 0:
            rates.append(round(denominator / numerator, 3))  # interval s = num / den
    return tuple(sorted(set(rates), reverse=True))


def _enum_ioctl(fd: int, request: int, buf: bytearray) -> bool:
    """Run one enumeration step in place; False when the list ended (EINVAL)."""
    try:
        fcntl.ioctl(fd, request, buf, True)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    return True


def _ioctl(path: Path | str, request: int, buf: bytearray) -> bytearray:
    """Open ``path`` without blocking, run one ioctl on ``buf`` in place, close."""
    fd = os.open(str(path), os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, request, buf, True)
    finally:
        os.close(fd)
    return buf


def _c_string(raw: bytes) -> str:
    """A NUL-terminated C string field as text."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _node_index(path: Path) -> int:
    """N of ``/dev/videoN``, or -1 for a node named otherwise (e.g. a udev symlink)."""
    match = re.fullmatch(r"video(\d+)", path.name)
    return int(match.group(1)) if match else -1
