"""Pieces of the camera package that need no device: the latest-frame buffer, point clouds
and the V4L2 ioctl plumbing."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from robolearn.core.types import CameraIntrinsics, ConfigError
from robolearn.drivers.cameras import v4l2
from robolearn.drivers.cameras.base import CameraFrame, LatestFrame
from robolearn.drivers.cameras.pointcloud import depth_to_colored_points, depth_to_points

INTR = CameraIntrinsics(width=4, height=3, fx=2.0, fy=4.0, cx=1.5, cy=1.0)


def make_frame(number: int) -> CameraFrame:
    return CameraFrame(
        rgb=np.zeros((3, 4, 3), np.uint8),
        depth_m=None,
        device_timestamp_s=number / 30,
        timestamp_domain="hardware_clock",
        host_timestamp_s=time.monotonic(),
        frame_number=number,
    )


def test_latest_frame_keeps_only_the_newest() -> None:
    buffer = LatestFrame()
    assert buffer.latest() is None and buffer.wait_newer(0, 0.01) is None
    for number in (10, 11, 12):
        buffer.put(make_frame(number))
    newest = buffer.wait_newer(0, 0.01)
    assert newest is not None and (newest.frame_number, newest.sequence) == (12, 3)
    assert buffer.wait_newer(3, 0.01) is None and buffer.count == 3


def test_latest_frame_wakes_a_waiting_reader() -> None:
    buffer = LatestFrame()
    threading.Timer(0.05, buffer.put, args=(make_frame(1),)).start()
    frame = buffer.wait_newer(0, 5.0)
    assert frame is not None and frame.frame_number == 1


def test_finish_releases_readers_with_the_reason() -> None:
    buffer = LatestFrame()
    buffer.put(make_frame(1))
    error = RuntimeError("usb gone")
    threading.Timer(0.05, buffer.finish, args=("capture failed", error)).start()
    assert buffer.wait_newer(1, 5.0) is None  # returns at the finish, not after 5 s
    assert (buffer.finished, buffer.error) == ("capture failed", error)
    buffer.finish("later reason")
    assert buffer.finished == "capture failed"  # the first reason stays


def test_points_follow_the_pinhole_model() -> None:
    depth = np.array([[1.0, 0.0, 2.0, np.nan], [1.0, 1.0, -1.0, 1.0], [0.5, 0, 0, 4.0]])
    points = depth_to_points(depth.astype(np.float32), INTR)
    assert points.dtype == np.float32 and points.shape == (7, 3)
    v, u = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[v, u]
    expected = np.stack([(u - INTR.cx) * z / INTR.fx, (v - INTR.cy) * z / INTR.fy, z], axis=1)
    np.testing.assert_allclose(points, expected, rtol=1e-6)
    everything = depth_to_points(depth.astype(np.float32), INTR, keep_invalid=True)
    assert everything.shape == (12, 3)
    assert (everything[[1, 3, 6]] == 0).all()  # no depth, NaN, negative → (0, 0, 0)


def test_coloured_points_pair_each_point_with_its_pixel() -> None:
    depth = np.zeros((3, 4), np.float32)
    depth[1, 2], depth[2, 0] = 1.0, 2.0
    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    points, colours = depth_to_colored_points(depth, rgb, INTR)
    assert points.shape == (2, 3) and colours.tolist() == [rgb[1, 2].tolist(), rgb[2, 0].tolist()]
    with pytest.raises(ConfigError, match="aligned images"):
        depth_to_colored_points(depth, rgb[:2], INTR)


def test_points_need_matching_intrinsics() -> None:
    with pytest.raises(ConfigError, match=r"intrinsics are for \(H, W\) = \(3, 4\)"):
        depth_to_points(np.ones((4, 3), np.float32), INTR)


def test_v4l2_request_numbers_match_videodev2() -> None:
    """The ioctl numbers of linux/videodev2.h on 64-bit Linux (they encode struct sizes)."""
    assert v4l2.VIDIOC_QUERYCAP == 0x80685600
    assert v4l2.VIDIOC_ENUM_FMT == 0xC0405602
    assert v4l2.VIDIOC_ENUM_FRAMESIZES == 0xC02C564A
    assert v4l2.VIDIOC_ENUM_FRAMEINTERVALS == 0xC034564B


def test_v4l2_lists_nodes_in_numeric_order(tmp_path: Path) -> None:
    for name in ("video10", "video2", "video0", "videox", "media0"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in v4l2.video_device_paths(tmp_path)] == ["video0", "video2", "video10"]


def test_v4l2_query_of_a_non_device_says_so(tmp_path: Path) -> None:
    node = tmp_path / "video0"
    node.write_bytes(b"")
    with pytest.raises(OSError) as info:
        v4l2.query_device(node)
    assert info.value.errno == errno.ENOTTY
    with pytest.raises(OSError):
        v4l2.list_modes(node)


def test_video_mode_prints_like_v4l2_ctl() -> None:
    assert str(v4l2.VideoMode("MJPG", 1280, 720, (30.0, 15.0))) == "MJPG 1280x720@30/15"
