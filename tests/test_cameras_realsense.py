"""The RealSense driver against the SDK's own software device (no camera needed).

A feeder thread injects colour + depth pairs into :class:`SoftwareRealSense` at ~30 fps, like
a camera; every pair encodes its frame number in its pixels, so a test can tell that the
RGB and the depth it got belong together and carry the right timestamps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyrealsense2 as rs
import pytest

from robolearn.core.types import ConfigError, DriverError
from robolearn.drivers.cameras.base import CameraFrame
from robolearn.drivers.cameras.pointcloud import depth_to_points
from robolearn.drivers.cameras.realsense import (
    RealSenseCamera,
    RealSenseConfig,
    SensorSource,
    describe_device,
    find_profile,
    select_device,
)
from robolearn.drivers.cameras.software_realsense import SoftwareRealSense

W, H = 64, 48
SERIAL = "SIM-0001"


def expected_depth_m(number: int) -> float:
    """Depth of the left half of frame ``number`` (a whole number of millimetres)."""
    return 0.5 + 0.001 * (number % 1000)


def pair_for(number: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour (R = number, G = 2·number mod 256, B = 7) and depth (left half known)."""
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = number % 256, (2 * number) % 256, 7
    depth = np.zeros((H, W), np.float32)
    depth[:, : W // 2] = expected_depth_m(number)
    return rgb, depth


class Feeder:
    """Feeds numbered pairs into a software device from a thread, as a camera would."""

    def __init__(self, sim: SoftwareRealSense, depth: bool = True, limit: int = 10_000) -> None:
        self.sim, self.depth, self.limit = sim, depth, limit
        self.timestamps_ms: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        for _ in range(self.limit):
            if self._stop.is_set():
                return
            number = len(self.timestamps_ms)
            rgb, depth = pair_for(number)
            _, stamp_ms = self.sim.feed(rgb, depth if self.depth else None, frame_number=number)
            self.timestamps_ms[number] = stamp_ms
            self._stop.wait(1 / 30)


def check_frame(frame: CameraFrame, stamps_ms: dict[int, float]) -> None:
    """The frame is one fed pair: RGB, depth and timestamp all of frame ``frame_number``."""
    number = frame.frame_number
    assert frame.rgb.shape == (H, W, 3) and frame.rgb.dtype == np.uint8
    assert tuple(frame.rgb[H // 2, W // 2]) == (number % 256, (2 * number) % 256, 7)
    assert frame.depth_m is not None
    assert frame.depth_m.shape == (H, W) and frame.depth_m.dtype == np.float32
    left, right = frame.depth_m[:, : W // 2], frame.depth_m[:, W // 2 :]
    # rs.align leaves holes (0) where rounding maps no depth pixel onto a colour pixel, about
    # one pixel in ten even when both streams share intrinsics; the others are exact.
    assert (left > 0).mean() > 0.8
    np.testing.assert_allclose(left[left > 0], expected_depth_m(number), atol=1e-6)
    assert (right == 0.0).all()
    assert frame.device_timestamp_s == pytest.approx(stamps_ms[number] / 1e3, abs=1e-6)
    assert frame.timestamp_domain == "hardware_clock"


@pytest.fixture
def sim() -> SoftwareRealSense:
    return SoftwareRealSense(W, H, serial=SERIAL)


@pytest.fixture
def camera(sim: SoftwareRealSense) -> Iterator[RealSenseCamera]:
    with RealSenseCamera(RealSenseConfig(name="wrist"), SensorSource(sim.device)) as cam:
        yield cam


def test_reads_synchronised_rgb_and_depth_in_metres(
    sim: SoftwareRealSense, camera: RealSenseCamera
) -> None:
    with Feeder(sim) as feeder:
        frames = [camera.read(timeout_s=2.0) for _ in range(5)]
    for frame in frames:
        check_frame(frame, feeder.timestamps_ms)
    numbers = [f.frame_number for f in frames]
    assert numbers == sorted(set(numbers))  # each read is a new frame
    assert [f.sequence for f in frames] == sorted({f.sequence for f in frames})
    host = [f.host_timestamp_s for f in frames]
    assert host == sorted(host) and host[-1] <= time.monotonic()


def test_spec_and_device_info_come_from_the_device(
    sim: SoftwareRealSense, camera: RealSenseCamera
) -> None:
    spec = camera.spec
    assert spec.name == "wrist" and spec.depth and spec.fps == 30.0
    got, want = spec.intrinsics, sim.intrinsics
    assert (got.width, got.height) == (W, H)
    for key in ("fx", "fy", "cx", "cy"):
        assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-6)
    info = camera.device_info
    assert (info.serial, info.firmware, info.usb_type) == (SERIAL, "5.16.0.1", "3.2")


def test_spec_needs_a_connection(sim: SoftwareRealSense) -> None:
    camera = RealSenseCamera(RealSenseConfig(), SensorSource(sim.device))
    with pytest.raises(DriverError, match="connect"):
        _ = camera.spec
    with pytest.raises(DriverError, match="not connected"):
        camera.read()


def test_depth_is_aligned_to_colour() -> None:
    """With the depth sensor 4 cm left of the colour one, a depth edge moves right in the
    colour image; unaligned depth would keep column 0 and end at column 31."""
    sim = SoftwareRealSense(W, H, depth_to_color_m=(0.04, 0.0, 0.0))
    with (
        RealSenseCamera(RealSenseConfig(), SensorSource(sim.device)) as camera,
        Feeder(sim) as feeder,
    ):
        frame = camera.read(timeout_s=2.0)
    assert frame.depth_m is not None and frame.frame_number in feeder.timestamps_ms
    columns = np.flatnonzero((frame.depth_m > 0).any(axis=0))
    assert columns.min() >= 1 and columns.max() >= W // 2
    valid = frame.depth_m[frame.depth_m > 0]
    np.testing.assert_allclose(valid, expected_depth_m(frame.frame_number), atol=1e-6)


def test_colour_only_camera_skips_depth(sim: SoftwareRealSense) -> None:
    config = RealSenseConfig(depth=False)
    with (
        RealSenseCamera(config, SensorSource(sim.device)) as camera,
        Feeder(sim, depth=False) as feeder,
    ):
        frame = camera.read(timeout_s=2.0)
    assert frame.depth_m is None and not camera.spec.depth
    assert frame.rgb[0, 0, 0] == frame.frame_number % 256
    assert frame.frame_number in feeder.timestamps_ms


def test_depth_camera_drops_colour_without_depth(
    sim: SoftwareRealSense, camera: RealSenseCamera
) -> None:
    with Feeder(sim, depth=False), pytest.raises(DriverError, match="no new frame within"):
        camera.read(timeout_s=0.3)


def test_point_cloud_matches_the_sdk(sim: SoftwareRealSense, camera: RealSenseCamera) -> None:
    with Feeder(sim):
        frame = camera.read(timeout_s=2.0)
    assert frame.depth_m is not None
    points = camera.point_cloud(frame)
    valid = frame.depth_m > 0
    assert points.dtype == np.float32 and points.shape == (int(valid.sum()), 3)
    np.testing.assert_array_equal(points[:, 2], frame.depth_m[valid])
    intr = rs.intrinsics()
    intr.width, intr.height = W, H
    intr.fx, intr.fy = camera.spec.intrinsics.fx, camera.spec.intrinsics.fy
    intr.ppx, intr.ppy = camera.spec.intrinsics.cx, camera.spec.intrinsics.cy
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    everything = depth_to_points(frame.depth_m, camera.spec.intrinsics, keep_invalid=True)
    for v, u in [(0, 0), (5, 17), (H - 1, W // 2 - 1), (20, 40)]:
        z = float(frame.depth_m[v, u])
        expected = rs.rs2_deproject_pixel_to_point(intr, [float(u), float(v)], z)
        np.testing.assert_allclose(everything[v * W + u], expected, atol=1e-6)


def test_point_cloud_equals_rs_pointcloud(sim: SoftwareRealSense) -> None:
    """Back-projection gives the vertices ``rs.pointcloud`` computes from the same frame."""
    source = SensorSource(sim.device)
    source.start(want_depth=True)
    try:
        with Feeder(sim):
            depth_frame = None
            for _ in range(100):
                frames = source.wait(timeout_s=1.0)
                if frames is not None and frames.get_depth_frame():
                    depth_frame = frames.get_depth_frame()
                    break
        assert depth_frame is not None
        depth_m = np.asanyarray(depth_frame.get_data()).astype(np.float32) * np.float32(
            depth_frame.get_units()
        )
        vertices = np.asanyarray(rs.pointcloud().calculate(depth_frame).get_vertices())
        sdk = vertices.view(np.float32).reshape(-1, 3)
        ours = depth_to_points(depth_m, sim.intrinsics, keep_invalid=True)
        np.testing.assert_allclose(ours, sdk, atol=1e-5)
        del depth_frame, frames, vertices
    finally:
        source.stop()


def test_async_read_reports_a_stalled_stream(
    sim: SoftwareRealSense, camera: RealSenseCamera
) -> None:
    with Feeder(sim) as feeder:
        fresh = camera.read(timeout_s=2.0)
        latest = camera.async_read(max_age_s=1.0)
        assert latest.sequence >= fresh.sequence
    check_frame(latest, feeder.timestamps_ms)
    while camera.async_read(max_age_s=5.0).age_s() <= 0.05:  # the feeder stopped: it ages
        time.sleep(0.01)
    with pytest.raises(DriverError, match=r"ms old, over the 50 ms limit; the camera stalled"):
        camera.async_read(max_age_s=0.05)
    with pytest.raises(DriverError, match=r"delivered no new frame within 0\.2 s"):
        camera.read(timeout_s=0.2)


def test_records_and_plays_back_through_the_bag_path(
    sim: SoftwareRealSense, tmp_path: Path
) -> None:
    recording = tmp_path / "session.db3"
    source = SensorSource(sim.device, record_path=recording)
    with RealSenseCamera(RealSenseConfig(), source) as camera, Feeder(sim) as feeder:
        live = [camera.read(timeout_s=2.0) for _ in range(6)]
    for frame in live:
        check_frame(frame, feeder.timestamps_ms)
    assert recording.stat().st_size > 0
    config = RealSenseConfig(name="replay", bag_path=recording)
    played = []
    with RealSenseCamera(config) as player:
        assert player.device_info.serial == SERIAL
        assert player.spec.intrinsics == live_intrinsics(sim)
        with pytest.raises(DriverError, match="end of recording"):
            while True:
                played.append(player.read(timeout_s=5.0))
    assert len(played) >= 3, "playback delivered too few frames"
    for frame in played:
        check_frame(frame, feeder.timestamps_ms)  # same pixels, depth and device timestamps
    assert [f.frame_number for f in played] == sorted({f.frame_number for f in played})


def live_intrinsics(sim: SoftwareRealSense) -> object:
    """The intrinsics a live camera on ``sim`` reports (float32 through the SDK)."""
    with RealSenseCamera(RealSenseConfig(), SensorSource(sim.device)) as camera:
        return camera.spec.intrinsics


def test_playback_rejects_bad_recordings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        RealSenseCamera(RealSenseConfig(bag_path=tmp_path / "missing.db3"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match=r"\.bag \(ROS1\) or \.db3"):
        RealSenseCamera(RealSenseConfig(bag_path=tmp_path / "notes.txt"))
    (tmp_path / "junk.db3").write_text("not a database")
    camera = RealSenseCamera(RealSenseConfig(bag_path=tmp_path / "junk.db3"))
    with pytest.raises(DriverError, match=r"pipeline did not start.*not a database"):
        camera.connect()
    assert not camera.connected


def test_playback_checks_the_requested_mode(sim: SoftwareRealSense, tmp_path: Path) -> None:
    recording = tmp_path / "short.db3"
    with (
        RealSenseCamera(RealSenseConfig(), SensorSource(sim.device, record_path=recording)) as cam,
        Feeder(sim),
    ):
        cam.read(timeout_s=2.0)
    config = RealSenseConfig(bag_path=recording, width=1280, height=720)
    with pytest.raises(ConfigError, match=r"no color stream 1280x720@any.*64x48@30 rgb8"):
        RealSenseCamera(config).connect()


def test_record_path_must_be_a_new_db3(sim: SoftwareRealSense, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"records only ROS2 \.db3"):
        SensorSource(sim.device, record_path=tmp_path / "x.bag")
    (tmp_path / "old.db3").write_bytes(b"")
    with pytest.raises(ConfigError, match="exists"):
        SensorSource(sim.device, record_path=tmp_path / "old.db3")


def test_unknown_serial_lists_the_connected_ones(sim: SoftwareRealSense) -> None:
    other = SoftwareRealSense(W, H, serial="SIM-0002")
    assert select_device([sim.device, other.device], "SIM-0002") is other.device
    with pytest.raises(DriverError) as info:
        select_device([sim.device, other.device], "123456789012")
    message = str(info.value)
    assert "'123456789012'" in message and "SIM-0001" in message and "SIM-0002" in message
    assert "robolearn find-cameras" in message
    with pytest.raises(ConfigError, match=r"several RealSense cameras.*give a serial"):
        select_device([sim.device, other.device], None)
    with pytest.raises(DriverError, match="no RealSense camera is connected"):
        select_device([], None)


def test_live_camera_with_absent_serial_fails_clearly() -> None:
    """The real pipeline path: this serial is connected nowhere."""
    camera = RealSenseCamera(RealSenseConfig(serial="000000000000"))
    match = r"'000000000000' is connected; connected: .*find-cameras"
    with pytest.raises(DriverError, match=match):
        camera.connect()
    assert not camera.connected


def test_unoffered_resolution_lists_the_modes(sim: SoftwareRealSense) -> None:
    with pytest.raises(ConfigError) as info:
        find_profile(sim.device, "color", 1920, 1080, 30)
    assert "1920x1080@30" in str(info.value) and "64x48@30 rgb8" in str(info.value)
    camera = RealSenseCamera(RealSenseConfig(), SensorSource(sim.device, width=640, height=480))
    with pytest.raises(ConfigError, match="offers no color stream 640x480"):
        camera.connect()


def test_explicit_source_excludes_source_options(sim: SoftwareRealSense) -> None:
    with pytest.raises(ConfigError, match=r"sets serial, width.*pass those options to the source"):
        RealSenseCamera(RealSenseConfig(serial="1", width=64), SensorSource(sim.device))


def test_failed_start_leaves_the_device_usable(sim: SoftwareRealSense, tmp_path: Path) -> None:
    """A bad mode while recording: nothing stays open, and the device streams afterwards."""
    source = SensorSource(sim.device, width=32, record_path=tmp_path / "bad.db3")
    with pytest.raises(ConfigError, match="offers no color stream 32x"):
        RealSenseCamera(RealSenseConfig(), source).connect()
    with (
        RealSenseCamera(RealSenseConfig(), SensorSource(sim.device)) as camera,
        Feeder(sim) as feeder,
    ):
        check_frame(camera.read(timeout_s=2.0), feeder.timestamps_ms)


def test_describe_device_reads_the_camera_info(sim: SoftwareRealSense) -> None:
    info = describe_device(sim.device)
    assert info.serial == SERIAL and info.product_line == "D400"
    assert info.physical_port == "?"  # not registered on the software device


def test_config_rejects_contradictions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        RealSenseConfig(serial="1", bag_path=tmp_path / "a.db3")
    with pytest.raises(ConfigError, match="positive"):
        RealSenseConfig(width=0)
