"""The OpenCV camera on a video file written by the test (V4L2 needs a device; the file
path runs the same capture thread, colour conversion, mode checks and stall handling)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from robolearn.core.types import CameraIntrinsics, ConfigError, DriverError
from robolearn.drivers.cameras import v4l2
from robolearn.drivers.cameras.base import CameraFrame
from robolearn.drivers.cameras.opencv import OpenCVCamera, OpenCVCameraConfig, estimate_intrinsics

W, H, FPS, FRAMES = 64, 48, 50.0, 12
STEP = 20
"""Green level added per frame: frame i has green ≈ i·STEP."""


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x48, 50 fps MJPG file: frame i is red 200, green i·20, blue 0 (written as BGR)."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(FRAMES):
        bgr = np.zeros((H, W, 3), np.uint8)
        bgr[..., 1], bgr[..., 2] = i * STEP, 200
        writer.write(bgr)
    writer.release()
    return path


def frame_index_of(frame: CameraFrame) -> int:
    """Which frame of the clip this is, from its green level (MJPG is lossy)."""
    return round(float(frame.rgb[..., 1].mean()) / STEP)


def check_rgb(frame: CameraFrame) -> None:
    """RGB order (red high, blue zero), shape and dtype; the content matches the number."""
    assert frame.rgb.shape == (H, W, 3) and frame.rgb.dtype == np.uint8
    assert abs(float(frame.rgb[..., 0].mean()) - 200) < 8  # red channel first
    assert float(frame.rgb[..., 2].mean()) < 8
    assert frame_index_of(frame) == frame.frame_number
    assert frame.depth_m is None


def read_until_end(camera: OpenCVCamera) -> tuple[list[CameraFrame], DriverError]:
    """Every frame ``read`` returns until it raises at the end of the file."""
    frames = []
    while True:
        try:
            frames.append(camera.read(timeout_s=2.0))
        except DriverError as exc:
            return frames, exc


def test_reads_fresh_rgb_frames_in_order(video: Path) -> None:
    with OpenCVCamera(OpenCVCameraConfig(video, name="scene")) as camera:
        frames, end = read_until_end(camera)
        assert camera.frames_received == FRAMES
    assert "end of video file" in str(end) and f"after {FRAMES} frames" in str(end)
    assert len(frames) >= FRAMES // 2
    for frame in frames:
        check_rgb(frame)
        assert frame.device_timestamp_s == pytest.approx(frame.frame_number / FPS, abs=1e-6)
        assert frame.timestamp_domain == "file_position"
    numbers = [f.frame_number for f in frames]
    assert numbers == sorted(set(numbers)) and numbers[-1] == FRAMES - 1
    host = [f.host_timestamp_s for f in frames]
    assert host == sorted(host)


def test_spec_reports_the_negotiated_mode(video: Path) -> None:
    camera = OpenCVCamera(OpenCVCameraConfig(video, name="scene", hfov_deg=90.0))
    with pytest.raises(DriverError, match="connect"):
        _ = camera.spec
    with camera:
        spec = camera.spec
    assert (spec.name, spec.fps, spec.depth) == ("scene", FPS, False)
    assert (spec.intrinsics.width, spec.intrinsics.height) == (W, H)
    assert spec.intrinsics.fx == pytest.approx(W / 2)  # tan(45°) = 1
    given = CameraIntrinsics(W, H, 80.0, 81.0, 30.0, 20.0)
    with OpenCVCamera(OpenCVCameraConfig(video, intrinsics=given)) as camera:
        assert camera.spec.intrinsics == given


def test_keeps_only_the_latest_frame(video: Path) -> None:
    """Unpaced, the thread decodes the whole file before the first read: read() returns
    the last frame, not the first, and then reports the end."""
    with OpenCVCamera(OpenCVCameraConfig(video, pace_files=False)) as camera:
        while camera.frames_received < FRAMES:
            time.sleep(0.01)
        frame = camera.read(timeout_s=2.0)
        assert frame.frame_number == FRAMES - 1
        check_rgb(frame)
        with pytest.raises(DriverError, match="has no new frame: end of video file"):
            camera.read(timeout_s=2.0)


def test_async_read_enforces_the_age_limit(video: Path) -> None:
    """After the file ends the last frame ages: async_read returns it while it is younger
    than the limit and raises once it is older (what a stalled camera looks like)."""
    with OpenCVCamera(OpenCVCameraConfig(video)) as camera:
        first = camera.async_read(max_age_s=2.0)  # waits for the first frame
        check_rgb(first)
        read_until_end(camera)
        last = camera.async_read(max_age_s=60.0)
        assert last.frame_number == FRAMES - 1
        while last.age_s() <= 0.05:
            time.sleep(0.01)
        with pytest.raises(DriverError) as info:
            camera.async_read(max_age_s=0.05)
        assert "over the 50 ms limit" in str(info.value)
        assert "end of video file" in str(info.value)
        with pytest.raises(ConfigError, match="max_age_s must be positive"):
            camera.async_read(max_age_s=0.0)


def test_rejects_a_resolution_the_source_does_not_offer(video: Path) -> None:
    camera = OpenCVCamera(OpenCVCameraConfig(video, width=640, height=480))
    with pytest.raises(ConfigError) as info:
        camera.connect()
    message = str(info.value)
    assert "does not offer size 640x480 (got 64x48)" in message
    assert "64x48 at 50 fps" in message
    assert not camera.connected
    with pytest.raises(ConfigError, match="does not offer 30 fps"):
        OpenCVCamera(OpenCVCameraConfig(video, fps=30.0)).connect()
    with OpenCVCamera(OpenCVCameraConfig(video, width=W, height=H, fps=FPS)) as camera:
        check_rgb(camera.read(timeout_s=2.0))


def test_missing_devices_and_files_fail_clearly(tmp_path: Path) -> None:
    absent = next(i for i in range(64, 1000) if not Path(f"/dev/video{i}").exists())
    with pytest.raises(DriverError) as info:
        OpenCVCamera(OpenCVCameraConfig(absent)).connect()
    assert f"/dev/video{absent} does not exist" in str(info.value)
    assert "robolearn find-cameras" in str(info.value)
    with pytest.raises(DriverError, match=f"/dev/video{absent} does not exist"):
        OpenCVCamera(OpenCVCameraConfig(str(absent))).connect()  # "65" means index 65
    with pytest.raises(ConfigError, match="does not exist"):
        OpenCVCamera(OpenCVCameraConfig(tmp_path / "nothing.mp4")).connect()
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(DriverError, match="cannot decode"):
        OpenCVCamera(OpenCVCameraConfig(tmp_path / "text.mp4")).connect()
    with pytest.raises(ConfigError, match="index is 0 or more"):
        OpenCVCamera(OpenCVCameraConfig(-1))


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="four characters"):
        OpenCVCameraConfig(0, fourcc="MJPEG")
    with pytest.raises(ConfigError, match="width must be positive"):
        OpenCVCameraConfig(0, width=0)
    with pytest.raises(ConfigError, match="hfov_deg"):
        OpenCVCameraConfig(0, hfov_deg=180.0)


def test_reading_needs_a_connection(video: Path) -> None:
    camera = OpenCVCamera(OpenCVCameraConfig(video))
    with pytest.raises(DriverError, match="not connected"):
        camera.read()
    with camera:
        camera.read(timeout_s=2.0)
    with pytest.raises(DriverError, match="not connected"):
        camera.async_read(max_age_s=1.0)


def test_estimated_intrinsics_have_the_field_of_view() -> None:
    intr = estimate_intrinsics(640, 480, 60.0)
    assert 2 * math.degrees(math.atan(320 / intr.fx)) == pytest.approx(60.0)
    assert (intr.cx, intr.cy, intr.fx) == (319.5, 239.5, intr.fy)


def test_fourcc_codes_match_opencv() -> None:
    for name in ("MJPG", "YUYV", "H264"):
        assert v4l2.fourcc_code(name) == cv2.VideoWriter.fourcc(*name)
        assert v4l2.fourcc_name(v4l2.fourcc_code(name)) == name
    assert v4l2.fourcc_name(0) == "????"
