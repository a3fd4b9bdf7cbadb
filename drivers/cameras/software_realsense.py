"""A RealSense stand-in built from the SDK's own software device (``rs.software_device``).

It has the two sensors of a D400 — a "Stereo Module" with a Z16 depth stream and an "RGB
Camera" with an RGB8 colour stream — with intrinsics, a depth-units option and depth → colour
extrinsics. :meth:`SoftwareRealSense.feed` injects one colour + depth pair; the frames then
travel the SDK's real machinery (syncer, ``rs.align``, ``rs.recorder``), so a
:class:`~robolearn.drivers.cameras.realsense.RealSenseCamera` on a
:class:`~robolearn.drivers.cameras.realsense.SensorSource` over :attr:`SoftwareRealSense.device`
runs
the driver's code without a camera::

    sim = SoftwareRealSense(width=64, height=48)
    with RealSenseCamera(RealSenseConfig(), SensorSource(sim.device)) as cam:
        # meanwhile a thread calls, about every 1/fps s as a camera would:
        #     sim.feed(rgb, depth_m)  # (48, 64, 3) uint8, (48, 64) float32
        frame = cam.read()

Feed from a thread at roughly the stream's rate: the syncer hands out the first frames
unpaired (the camera skips those), and pairs depth with colour only while the timestamps
keep pace with the wall clock (see :meth:`SoftwareRealSense.feed`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from robolearn.core.extras import require
from robolearn.core.types import CameraIntrinsics, ConfigError

if TYPE_CHECKING:
    import pyrealsense2 as rs
else:
    rs = require("pyrealsense2", "the RealSense software device")


class SoftwareRealSense:
    """An emulated D400: colour + depth streams fed by hand through ``rs.software_device``."""

    def __init__(
        self,
        width: int = 64,
        height: int = 48,
        fps: int = 30,
        *,
        serial: str = "000000000001",
        name: str = "Intel RealSense D435 (software)",
        firmware: str = "5.16.0.1",
        hfov_deg: float = 69.0,
        depth_units_m: float = 0.001,
        depth_to_color_m: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        focal_px = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
        self.intrinsics = CameraIntrinsics(
            width=width, height=height, fx=focal_px, fy=focal_px, cx=width / 2.0, cy=height / 2.0
        )
        """Pinhole intrinsics of both streams (they share one, undistorted)."""
        self.depth_units_m = depth_units_m
        """Metres per Z16 depth unit."""
        self.device = rs.software_device()
        """The ``rs.software_device`` to stream from (e.g. through a SensorSource)."""
        for key, value in (
            (rs.camera_info.name, name),
            (rs.camera_info.serial_number, serial),
            (rs.camera_info.firmware_version, firmware),
            (rs.camera_info.usb_type_descriptor, "3.2"),
            (rs.camera_info.product_line, "D400"),
        ):
            self.device.register_info(key, value)
        self._depth_sensor = self.device.add_sensor("Stereo Module")
        self._color_sensor = self.device.add_sensor("RGB Camera")
        self._depth_sensor.add_read_only_option(rs.option.depth_units, depth_units_m)
        self._depth_profile = self._add_stream(self._depth_sensor, rs.stream.depth, fps, uid=0)
        self._color_profile = self._add_stream(self._color_sensor, rs.stream.color, fps, uid=1)
        extrinsics = rs.extrinsics()
        extrinsics.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        extrinsics.translation = list(depth_to_color_m)
        self._depth_profile.register_extrinsics_to(self._color_profile, extrinsics)
        self.device.create_matcher(rs.matchers.dlr_c)
        self._frame_number = 0
        self._created_s = time.monotonic()

    def feed(
        self,
        rgb: NDArray[np.uint8],
        depth_m: NDArray[np.floating[Any]] | None,
        timestamp_ms: float | None = None,
        frame_number: int | None = None,
    ) -> tuple[int, float]:
        """Inject one colour image (H, W, 3) uint8 and, unless None, one depth image (H, W)
        in metres (rounded to depth units; 0 = no depth), both stamped ``timestamp_ms`` on
        the hardware clock. Returns the frame number (consecutive by default) and timestamp.

        The default timestamp is the time since this emulator was made, as a real camera's
        clock counts from power-on. Keep it so: the SDK's syncer pairs depth with colour
        only while frame timestamps advance with the wall clock (stamps far ahead of it,
        or frames fed much faster than ``fps``, come out unpaired).
        The sensors must be streaming (a camera over this device connected)."""
        if timestamp_ms is None:
            timestamp_ms = (time.monotonic() - self._created_s) * 1e3
        number = self._frame_number if frame_number is None else frame_number
        self._frame_number = number + 1
        if depth_m is not None:
            raw = self._depth_raw(depth_m)
            self._inject(self._depth_sensor, self._depth_profile, raw, 2, timestamp_ms, number)
        pixels = self._checked(np.asarray(rgb), (self.intrinsics.height, self.intrinsics.width, 3))
        if pixels.dtype != np.uint8:
            raise ConfigError(f"rgb must be uint8, got {pixels.dtype}")
        self._inject(self._color_sensor, self._color_profile, pixels, 3, timestamp_ms, number)
        return number, timestamp_ms

    def _add_stream(self, sensor: Any, kind: Any, fps: int, uid: int) -> Any:
        """Register one video stream (Z16 depth or RGB8 colour) on ``sensor``."""
        intr = rs.intrinsics()
        intr.width, intr.height = self.intrinsics.width, self.intrinsics.height
        intr.fx, intr.fy = self.intrinsics.fx, self.intrinsics.fy
        intr.ppx, intr.ppy = self.intrinsics.cx, self.intrinsics.cy
        intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = kind, 0, uid
        stream.width, stream.height, stream.fps = intr.width, intr.height, fps
        is_depth = kind == rs.stream.depth
        stream.bpp, stream.fmt = (2, rs.format.z16) if is_depth else (3, rs.format.rgb8)
        stream.intrinsics = intr
        return sensor.add_video_stream(stream, True)

    def _depth_raw(self, depth_m: NDArray[np.floating[Any]]) -> NDArray[np.uint16]:
        """Depth in metres → Z16 units (H, W) uint16; NaN and negatives become 0."""
        depth = self._checked(np.asarray(depth_m, dtype=np.float64), self._size())
        units = np.nan_to_num(depth / self.depth_units_m, nan=0.0, posinf=0.0, neginf=0.0)
        return np.clip(np.rint(units), 0, np.iinfo(np.uint16).max).astype(np.uint16)

    def _inject(
        self,
        sensor: Any,
        profile: Any,
        pixels: NDArray[np.generic],
        bytes_per_pixel: int,
        timestamp_ms: float,
        number: int,
    ) -> None:
        """Hand one frame to ``sensor`` (the SDK copies the pixels)."""
        frame = rs.software_video_frame()
        frame.pixels = np.ascontiguousarray(pixels)
        frame.bpp = bytes_per_pixel
        frame.stride = self.intrinsics.width * bytes_per_pixel
        frame.timestamp = timestamp_ms
        frame.domain = rs.timestamp_domain.hardware_clock
        frame.frame_number = number
        frame.profile = profile.as_video_stream_profile()
        if sensor is self._depth_sensor:
            frame.depth_units = self.depth_units_m
        sensor.on_video_frame(frame)

    def _size(self) -> tuple[int, int]:
        return (self.intrinsics.height, self.intrinsics.width)

    @staticmethod
    def _checked(array: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
        if array.shape != shape:
            raise ConfigError(f"expected an image of shape {shape}, got {array.shape}")
        return array
