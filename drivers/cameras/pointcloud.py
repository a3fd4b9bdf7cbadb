"""Depth image → point cloud in the camera frame, by pinhole back-projection.

The camera frame is the optical one RealSense and OpenCV use: x right, y down, z forward
(metres). A pixel (u, v) with depth z becomes ((u - cx) z / fx, (v - cy) z / fy, z), with
pixel centres at integer coordinates, as librealsense's ``rs2_deproject_pixel_to_point``
does for an undistorted stream. :func:`pixel_rays` holds that formula once (the rays at
z = 1 m); :func:`robolearn.perception.depth_to_point_cloud` uses it for torch tensors.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from robolearn.core.types import CameraIntrinsics, ConfigError


def pixel_rays(intrinsics: CameraIntrinsics, stride: int = 1) -> NDArray[np.float32]:
    """The camera-frame ray of every ``stride``-th pixel row and column, (h, w, 3) float32.

    Pixel (u, v) gets ``((u - cx) / fx, (v - cy) / fy, 1)``: the point it sees at 1 m depth,
    so a depth image ``z`` (h, w) back-projects to ``rays * z[..., None]``. Every depth →
    points conversion in robolearn (numpy here, torch in :mod:`robolearn.perception`) uses
    this grid. h = ceil(height / stride), w = ceil(width / stride).
    """
    if stride < 1:
        raise ConfigError(f"stride must be ≥ 1, got {stride}")
    u = np.arange(0, intrinsics.width, stride, dtype=np.float32)  # (w,)
    v = np.arange(0, intrinsics.height, stride, dtype=np.float32)  # (h,)
    rays = np.ones((v.size, u.size, 3), dtype=np.float32)
    rays[..., 0] = (u[None, :] - intrinsics.cx) / intrinsics.fx
    rays[..., 1] = (v[:, None] - intrinsics.cy) / intrinsics.fy
    return rays


def has_depth(depth_m: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Where ``depth_m`` holds a depth: finite and positive (0 is a RealSense "no depth")."""
    return np.isfinite(depth_m) & (depth_m > 0.0)


def depth_to_points(
    depth_m: NDArray[np.float32], intrinsics: CameraIntrinsics, *, keep_invalid: bool = False
) -> NDArray[np.float32]:
    """Back-project a depth image (H, W) in metres to points (N, 3) float32 in metres.

    Pixels without depth (0, negative or not finite) are dropped, unless ``keep_invalid``:
    then every pixel gives a point, row-major, and invalid ones are (0, 0, 0), as
    ``rs.pointcloud`` returns them.
    """
    z = _checked_depth(depth_m, intrinsics)  # (H, W)
    valid = has_depth(z)  # (H, W)
    z = np.where(valid, z, np.float32(0.0))
    points = pixel_rays(intrinsics) * z[..., None]  # (H, W, 3)
    if keep_invalid:
        return points.reshape(-1, 3).astype(np.float32, copy=False)
    return points[valid].astype(np.float32, copy=False)


def depth_to_colored_points(
    depth_m: NDArray[np.float32], rgb: NDArray[np.uint8], intrinsics: CameraIntrinsics
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Points (N, 3) float32 of the pixels with depth and their colours (N, 3) uint8.

    ``rgb`` must be aligned with ``depth_m`` (same size, same viewpoint), as a RealSense
    frame's are.
    """
    if rgb.shape != (*depth_m.shape, 3):
        raise ConfigError(
            f"rgb {rgb.shape} and depth {depth_m.shape} must be aligned images of one size"
        )
    valid = has_depth(_checked_depth(depth_m, intrinsics))
    return depth_to_points(depth_m, intrinsics), rgb[valid]


def _checked_depth(
    depth_m: NDArray[np.float32], intrinsics: CameraIntrinsics
) -> NDArray[np.float32]:
    """``depth_m`` as float32 (H, W); ConfigError unless it matches the intrinsics' size."""
    expected = (intrinsics.height, intrinsics.width)
    if depth_m.shape != expected:
        raise ConfigError(
            f"depth image is {depth_m.shape} but the intrinsics are for (H, W) = {expected}; "
            "back-project with the intrinsics of the stream the depth is aligned to"
        )
    return np.asarray(depth_m, dtype=np.float32)
