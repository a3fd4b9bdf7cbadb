"""Intel RealSense RGB-D cameras through ``pyrealsense2``: colour + depth aligned to colour.

Frames come from a :class:`FrameSource`, and every source feeds the same processing
(:meth:`RealSenseCamera._to_frame`: depth aligned to colour with ``rs.align``, depth units →
metres, device and host timestamps):

* :class:`PipelineSource` — a connected camera, chosen by serial number, through
  ``rs.pipeline`` (optionally recording to a file while streaming);
* :class:`PlaybackSource` — a recording (``.bag`` from older SDKs, ``.db3`` from this one)
  through ``rs.config.enable_device_from_file``;
* :class:`SensorSource` — any ``rs.device`` whose sensors are opened directly into an
  ``rs.syncer``: the SDK's software device (:mod:`robolearn.drivers.cameras.software_realsense`,
  what
  the tests use), optionally recording through ``rs.recorder``.

Why the software device does not go through the pipeline: the SDK's way to hand a software
device to a pipeline (``software_device.add_to(context)``) registers it only weakly, and in
pyrealsense2 2.59 the registration expires at once, so ``context.query_devices()`` never
lists it. The syncer path exercises the same alignment, unit and timestamp code.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from robolearn.core.extras import require
from robolearn.core.types import CameraIntrinsics, CameraSpec, ConfigError, DriverError
from robolearn.drivers.cameras.base import FIND_CAMERAS_HINT, Camera, CameraFrame, EndOfStream
from robolearn.drivers.cameras.pointcloud import depth_to_points

if TYPE_CHECKING:
    import pyrealsense2 as rs
else:
    rs = require("pyrealsense2", "a RealSense camera")

DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 640, 480, 30
"""Mode a live camera is opened in when the config names none (every D400 offers it)."""

RECORDING_SUFFIXES = (".bag", ".db3")
"""Files ``enable_device_from_file`` reads: ROS1 bags (SDK < 2.57) and ROS2 sqlite (newer)."""

_COLOR_FORMATS = {rs.format.rgb8: False, rs.format.bgr8: True}
"""Colour formats the driver reads, with whether they need a BGR → RGB swap."""


@dataclass(frozen=True)
class RealSenseConfig:
    """Which RealSense stream to open and how."""

    name: str = "realsense"
    """The camera's name in specs and observations."""
    serial: str | None = None
    """Serial number of the camera to open; None opens the only one connected."""
    bag_path: Path | None = None
    """Play this recording (``.bag`` or ``.db3``) instead of opening a camera."""
    width: int | None = None
    """Image width; None: 640 on a live camera, the recorded width in playback."""
    height: int | None = None
    """Image height; None: 480 on a live camera, the recorded height in playback."""
    fps: int | None = None
    """Frame rate; None: 30 on a live camera, the recorded rate in playback."""
    depth: bool = True
    """Stream depth (aligned to colour) besides colour."""
    record_path: Path | None = None
    """Record the live stream to this ``.db3`` file while reading it."""
    repeat_playback: bool = False
    """Loop a recording instead of ending after its last frame."""
    playback_realtime: bool = True
    """Play a recording at its recorded pace. False plays as fast as the SDK decodes, and
    the pipeline then drops the frames a reader does not keep up with."""

    def __post_init__(self) -> None:
        if self.bag_path is not None and self.serial is not None:
            raise ConfigError("give either a camera serial or a bag_path to play, not both")
        if self.bag_path is not None and self.record_path is not None:
            raise ConfigError("record_path records a live camera; it cannot re-record playback")
        for field_name in ("width", "height", "fps"):
            value = getattr(self, field_name)
            if value is not None and value <= 0:
                raise ConfigError(f"{field_name} must be positive, got {value}")


@dataclass(frozen=True)
class RealSenseDeviceInfo:
    """What a RealSense device says about itself (``?`` where it does not say)."""

    name: str
    serial: str
    firmware: str
    usb_type: str
    """USB link the camera negotiated, e.g. ``3.2`` (``2.1`` halves the usable modes)."""
    product_line: str
    physical_port: str


@dataclass(frozen=True)
class StreamMode:
    """One video stream profile a device offers."""

    stream: str
    """``color`` or ``depth``."""
    format: str
    width: int
    height: int
    fps: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}@{self.fps} {self.format}"


def describe_device(device: Any) -> RealSenseDeviceInfo:
    """The identity of an ``rs.device`` (live, playback or software)."""

    def info(key: Any) -> str:
        return str(device.get_info(key)) if device.supports(key) else "?"

    return RealSenseDeviceInfo(
        name=info(rs.camera_info.name),
        serial=info(rs.camera_info.serial_number),
        firmware=info(rs.camera_info.firmware_version),
        usb_type=info(rs.camera_info.usb_type_descriptor),
        product_line=info(rs.camera_info.product_line),
        physical_port=info(rs.camera_info.physical_port),
    )


def list_devices(context: Any | None = None) -> list[RealSenseDeviceInfo]:
    """The RealSense cameras connected now (an empty list without any)."""
    context = context if context is not None else rs.context()
    return [describe_device(device) for device in context.query_devices()]


def select_device(devices: list[Any], serial: str | None) -> Any:
    """The ``rs.device`` with ``serial`` (or the only one when ``serial`` is None).

    DriverError naming the connected serials when it is not there; ConfigError when
    ``serial`` is None and several cameras are connected.
    """
    infos = [describe_device(device) for device in devices]
    connected = ", ".join(f"{i.serial} ({i.name})" for i in infos) or "none"
    if serial is None:
        if len(devices) == 1:
            return devices[0]
        if not devices:
            raise DriverError(
                "no RealSense camera is connected; plug one into a USB 3 port (or play a "
                f"recording with bag_path); {FIND_CAMERAS_HINT}"
            )
        raise ConfigError(f"several RealSense cameras are connected ({connected}); give a serial")
    for device, device_info in zip(devices, infos, strict=True):
        if device_info.serial == serial:
            return device
    raise DriverError(
        f"no RealSense camera with serial {serial!r} is connected; connected: {connected}; "
        f"{FIND_CAMERAS_HINT}"
    )


def stream_modes(device: Any) -> list[StreamMode]:
    """Every colour and depth video profile of ``device``'s sensors."""
    modes = []
    for sensor in device.query_sensors():
        for profile in sensor.get_stream_profiles():
            mode = _mode_of(profile)
            if mode is not None:
                modes.append(mode)
    return modes


def find_profile(
    device: Any,
    stream: str,
    width: int | None = None,
    height: int | None = None,
    fps: int | None = None,
) -> tuple[Any, Any]:
    """``(sensor, video profile)`` of ``device`` for a colour (RGB8/BGR8) or depth (Z16)
    stream of that size and rate (None matches any). ConfigError listing what the device
    offers for that stream when nothing matches."""
    want = {"width": width, "height": height, "fps": fps}
    for sensor in device.query_sensors():
        for profile in sensor.get_stream_profiles():
            mode = _mode_of(profile)
            if mode is None or mode.stream != stream:
                continue
            if all(v is None or getattr(mode, k) == v for k, v in want.items()):
                return sensor, profile.as_video_stream_profile()
    offered = ", ".join(sorted({str(m) for m in stream_modes(device) if m.stream == stream}))
    asked = f"{width or 'any'}x{height or 'any'}@{fps or 'any'}"
    serial = describe_device(device).serial
    raise ConfigError(
        f"RealSense {serial} offers no {stream} stream {asked}; its {stream} modes: "
        f"{offered or 'none'}; pick one of them (width, height, fps)"
    )


def intrinsics_of(profile: Any) -> CameraIntrinsics:
    """The pinhole part of a video stream profile's intrinsics (distortion is dropped)."""
    intr = profile.as_video_stream_profile().get_intrinsics()
    return CameraIntrinsics(
        width=int(intr.width),
        height=int(intr.height),
        fx=float(intr.fx),
        fy=float(intr.fy),
        cx=float(intr.ppx),
        cy=float(intr.ppy),
    )


def _mode_of(profile: Any) -> StreamMode | None:
    """The mode of a colour (RGB8/BGR8) or depth (Z16) video profile, else None."""
    if not profile.is_video_stream_profile():
        return None
    kind, fmt = profile.stream_type(), profile.format()
    if kind == rs.stream.color and fmt in _COLOR_FORMATS:
        stream = "color"
    elif kind == rs.stream.depth and fmt == rs.format.z16:
        stream = "depth"
    else:
        return None
    video = profile.as_video_stream_profile()
    return StreamMode(stream, fmt.name, video.width(), video.height(), profile.fps())


# ---- frame sources ---------------------------------------------------------------------


class FrameSource(abc.ABC):
    """Where a :class:`RealSenseCamera`'s framesets come from."""

    @abc.abstractmethod
    def start(self, want_depth: bool) -> None:
        """Open the device and start streaming colour (and depth when ``want_depth``)."""

    @abc.abstractmethod
    def wait(self, timeout_s: float) -> Any | None:
        """The next ``rs.composite_frame``, or None when none came within ``timeout_s``.
        Raises :class:`EndOfStream` after the last frame of a recording."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop streaming and release the device (and finish a recording)."""

    @property
    @abc.abstractmethod
    def color_profile(self) -> Any:
        """The active colour ``rs.video_stream_profile`` (after :meth:`start`)."""

    @property
    @abc.abstractmethod
    def device_info(self) -> RealSenseDeviceInfo:
        """The streaming device's identity (after :meth:`start`)."""


class _PipelineBase(FrameSource):
    """A source behind ``rs.pipeline``; subclasses fill in the ``rs.config``."""

    def __init__(self) -> None:
        self._pipeline: Any | None = None
        self._profile: Any | None = None

    @abc.abstractmethod
    def _make_config(self, want_depth: bool) -> Any:
        """The ``rs.config`` to start the pipeline with."""

    def start(self, want_depth: bool) -> None:
        config = self._make_config(want_depth)
        pipeline = rs.pipeline()
        try:
            self._profile = pipeline.start(config)
        except RuntimeError as exc:
            raise DriverError(f"RealSense pipeline did not start: {exc}") from exc
        self._pipeline = pipeline
        self._after_start(want_depth)

    def _after_start(self, want_depth: bool) -> None:
        """Hook run once streaming (playback checks what the recording holds)."""

    def wait(self, timeout_s: float) -> Any | None:
        assert self._pipeline is not None, "start() first"
        ok, frames = self._pipeline.try_wait_for_frames(int(timeout_s * 1e3))
        return frames if ok else None

    def stop(self) -> None:
        if self._pipeline is not None:
            pipeline, self._pipeline, self._profile = self._pipeline, None, None
            pipeline.stop()

    @property
    def color_profile(self) -> Any:
        assert self._profile is not None, "start() first"
        return self._profile.get_stream(rs.stream.color)

    @property
    def device_info(self) -> RealSenseDeviceInfo:
        assert self._profile is not None, "start() first"
        return describe_device(self._profile.get_device())


class PipelineSource(_PipelineBase):
    """A connected camera (by serial) through ``rs.pipeline``."""

    def __init__(
        self,
        serial: str | None = None,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: int = DEFAULT_FPS,
        record_path: Path | None = None,
    ) -> None:
        super().__init__()
        self._serial, self._mode = serial, (width, height, fps)
        self._record_path = _checked_record_path(record_path)

    def _make_config(self, want_depth: bool) -> Any:
        device = select_device(list(rs.context().query_devices()), self._serial)
        serial = describe_device(device).serial
        config = rs.config()
        config.enable_device(serial)
        for stream in ("color", "depth") if want_depth else ("color",):
            _, profile = find_profile(device, stream, *self._mode)
            config.enable_stream(
                profile.stream_type(), profile.width(), profile.height(), profile.format(),
                profile.fps(),
            )  # fmt: skip
        if self._record_path is not None:
            config.enable_record_to_file(str(self._record_path))
        return config


class PlaybackSource(_PipelineBase):
    """A recording played through ``rs.pipeline`` (``enable_device_from_file``)."""

    def __init__(
        self,
        path: Path,
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
        repeat: bool = False,
        realtime: bool = True,
    ) -> None:
        super().__init__()
        self._path, self._mode = _checked_recording(path), (width, height, fps)
        self._repeat, self._realtime = repeat, realtime
        self._playback: Any | None = None

    def _make_config(self, want_depth: bool) -> Any:
        config = rs.config()
        config.enable_device_from_file(str(self._path), repeat_playback=self._repeat)
        return config

    def _after_start(self, want_depth: bool) -> None:
        assert self._profile is not None
        device = self._profile.get_device()
        try:
            for stream in ("color", "depth") if want_depth else ("color",):
                find_profile(device, stream, *self._mode)
        except ConfigError as exc:
            self.stop()
            raise ConfigError(f"recording {self._path}: {exc}") from None
        self._playback = device.as_playback()
        self._playback.set_real_time(self._realtime)

    def wait(self, timeout_s: float) -> Any | None:
        frames = super().wait(timeout_s)
        if frames is None and self._ended():
            raise EndOfStream(f"end of recording {self._path}")
        return frames

    def stop(self) -> None:
        self._playback = None
        super().stop()

    def _ended(self) -> bool:
        return self._playback is not None and (
            self._playback.current_status() == rs.playback_status.stopped
        )


class SensorSource(FrameSource):
    """Any ``rs.device`` whose colour and depth sensors stream straight into an ``rs.syncer``.

    Made for the SDK's software device (frames injected with ``on_video_frame``); with
    ``record_path`` the device is wrapped in an ``rs.recorder`` and everything it streams
    is written to that ``.db3`` file, finished by :meth:`stop`.
    """

    def __init__(
        self,
        device: Any,
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
        record_path: Path | None = None,
    ) -> None:
        self._device, self._mode = device, (width, height, fps)
        self._record_path = _checked_record_path(record_path)
        self._recorder: Any | None = None
        self._syncer: Any | None = None
        self._opened: list[Any] = []
        self._started: list[Any] = []
        self._color_profile: Any | None = None

    def start(self, want_depth: bool) -> None:
        try:
            self._start(want_depth)
        except BaseException:
            self.stop()
            raise

    def _start(self, want_depth: bool) -> None:
        device = self._device
        if self._record_path is not None:
            device = self._recorder = rs.recorder(str(self._record_path), self._device)
        streams = ("color", "depth") if want_depth else ("color",)
        chosen = [find_profile(device, stream, *self._mode) for stream in streams]
        self._color_profile = chosen[0][1]
        by_sensor: dict[str, tuple[Any, list[Any]]] = {}
        for sensor, profile in chosen:  # two streams of one sensor open together
            by_sensor.setdefault(_sensor_name(sensor), (sensor, []))[1].append(profile)
        self._syncer = rs.syncer(2)
        for sensor, profiles in by_sensor.values():
            sensor.open(profiles)
            self._opened.append(sensor)
            sensor.start(self._syncer)
            self._started.append(sensor)

    def wait(self, timeout_s: float) -> Any | None:
        assert self._syncer is not None, "start() first"
        ok, frames = self._syncer.try_wait_for_frames(int(timeout_s * 1e3))
        return frames if ok else None

    def stop(self) -> None:
        for sensor in self._started:
            sensor.stop()
        for sensor in self._opened:
            sensor.close()
        # Dropping the recorder (and the sensors, which hold it) writes out the file.
        self._started, self._opened, self._syncer, self._recorder = [], [], None, None

    @property
    def color_profile(self) -> Any:
        assert self._color_profile is not None, "start() first"
        return self._color_profile

    @property
    def device_info(self) -> RealSenseDeviceInfo:
        return describe_device(self._device)


def _sensor_name(sensor: Any) -> str:
    """A sensor's name, which tells a device's sensors apart (wrappers are not unique)."""
    return str(sensor.get_info(rs.camera_info.name))


def _checked_recording(path: Path) -> Path:
    """``path`` if it is an existing recording file; ConfigError with the fix otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"RealSense recording {path} does not exist")
    if path.suffix not in RECORDING_SUFFIXES:
        raise ConfigError(f"RealSense recording {path} must be a .bag (ROS1) or .db3 (ROS2) file")
    return path


def _checked_record_path(path: Path | None) -> Path | None:
    """A writable ``.db3`` target (the only format this SDK records), or None."""
    if path is None:
        return None
    path = Path(path)
    if path.suffix != ".db3":
        raise ConfigError(
            f"record_path {path}: pyrealsense2 {rs.__version__} records only ROS2 .db3 "
            "files; use a .db3 name"
        )
    if not path.parent.is_dir():
        raise ConfigError(f"record_path {path}: folder {path.parent} does not exist")
    if path.exists():
        raise ConfigError(f"record_path {path} exists; remove it or choose another name")
    return path


# ---- the camera ------------------------------------------------------------------------


class RealSenseCamera(Camera):
    """A RealSense RGB-D camera: RGB (H, W, 3) uint8 and depth aligned to it in metres."""

    def __init__(self, config: RealSenseConfig, source: FrameSource | None = None) -> None:
        super().__init__(config.name)
        if source is not None:
            _require_no_source_options(config)
        self._config = config
        self._source = source if source is not None else _source_for(config)
        self._align = rs.align(rs.stream.color)
        self._spec: CameraSpec | None = None
        self._device_info: RealSenseDeviceInfo | None = None

    @property
    def config(self) -> RealSenseConfig:
        return self._config

    @property
    def spec(self) -> CameraSpec:
        if self._spec is None:
            raise DriverError(
                f"camera {self.name!r} reads its intrinsics from the device once connected; "
                "call connect() first"
            )
        return self._spec

    @property
    def device_info(self) -> RealSenseDeviceInfo:
        """Name, serial, firmware and USB link of the streaming device (once connected)."""
        if self._device_info is None:
            raise DriverError(f"camera {self.name!r} is not connected; call connect() first")
        return self._device_info

    def point_cloud(self, frame: CameraFrame) -> NDArray[np.float32]:
        """The frame's depth as points (N, 3) float32 in metres, camera frame (x right,
        y down, z forward), pixels without depth dropped."""
        if frame.depth_m is None:
            raise ConfigError(f"camera {self.name!r} streams no depth; set depth=True")
        return depth_to_points(frame.depth_m, self.spec.intrinsics)

    # ---- hooks -------------------------------------------------------------------------

    def _open(self) -> None:
        self._source.start(self._config.depth)
        profile = self._source.color_profile
        self._spec = CameraSpec(
            name=self.name,
            intrinsics=intrinsics_of(profile),
            depth=self._config.depth,
            fps=float(profile.fps()),
        )
        self._device_info = self._source.device_info

    def _grab(self, timeout_s: float) -> CameraFrame | None:
        frames = self._source.wait(timeout_s)
        host_s = time.monotonic()
        return None if frames is None else self._to_frame(frames, host_s)

    def _close(self) -> None:
        self._source.stop()

    # ---- processing --------------------------------------------------------------------

    def _to_frame(self, frames: Any, host_s: float) -> CameraFrame | None:
        """A :class:`CameraFrame` from a frameset; None for an incomplete one (a syncer
        hands out lone frames while it locks onto the streams)."""
        kinds = {f.profile.stream_type() for f in frames}
        if rs.stream.color not in kinds or (self._config.depth and rs.stream.depth not in kinds):
            return None
        if self._config.depth:
            frames = self._align.process(frames)
        color = frames.get_color_frame()
        depth_m = _depth_metres(frames.get_depth_frame()) if self._config.depth else None
        return CameraFrame(
            rgb=_rgb_array(color),
            depth_m=depth_m,
            device_timestamp_s=color.get_timestamp() / 1e3,
            timestamp_domain=color.get_frame_timestamp_domain().name,
            host_timestamp_s=host_s,
            frame_number=int(color.get_frame_number()),
        )


def _rgb_array(color: Any) -> NDArray[np.uint8]:
    """The colour frame as an owned (H, W, 3) uint8 RGB array."""
    fmt = color.profile.format()
    if fmt not in _COLOR_FORMATS:
        raise DriverError(f"colour frames arrive as {fmt.name}; only RGB8 and BGR8 are read")
    pixels = np.asanyarray(color.get_data())  # (H, W, 3), a view into SDK memory
    return np.ascontiguousarray(pixels[..., ::-1] if _COLOR_FORMATS[fmt] else pixels).copy()


def _depth_metres(depth: Any) -> NDArray[np.float32]:
    """The Z16 depth frame in metres (H, W) float32; 0 where the camera saw nothing."""
    raw = np.asanyarray(depth.get_data())  # (H, W) uint16, a view into SDK memory
    return raw.astype(np.float32) * np.float32(depth.get_units())


def _require_no_source_options(config: RealSenseConfig) -> None:
    """ConfigError when a config sets options that an explicitly given source replaces."""
    names = ("serial", "bag_path", "record_path", "width", "height", "fps")
    given = [name for name in names if getattr(config, name) is not None]
    if given:
        raise ConfigError(
            f"RealSenseConfig sets {', '.join(given)}, but an explicit frame source was "
            "given; pass those options to the source instead"
        )


def _source_for(config: RealSenseConfig) -> FrameSource:
    """The source a config names: a recording or a live camera."""
    if config.bag_path is not None:
        return PlaybackSource(
            config.bag_path,
            config.width,
            config.height,
            config.fps,
            repeat=config.repeat_playback,
            realtime=config.playback_realtime,
        )
    return PipelineSource(
        config.serial,
        config.width or DEFAULT_WIDTH,
        config.height or DEFAULT_HEIGHT,
        config.fps or DEFAULT_FPS,
        record_path=config.record_path,
    )
