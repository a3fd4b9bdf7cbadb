"""Depth images → point clouds in the camera frame, fixed-size sampling, and a PointNet encoder.

::

    points, valid = depth_to_point_cloud(depth_m, cam.intrinsics, stride=2, max_depth_m=2.0)
    points, mask = sample_points(points, 512, generator=gen, valid=valid)   # (B, 512, 3)
    features = PointNetEncoder(feature_dim=64)(points, mask)                # (B, 64)

Camera frame (OpenCV): ``x`` right, ``y`` down, ``z`` forward along the optical axis, in
metres; pixel ``(u, v)`` = (column, row) has its centre at integer coordinates, the convention
of :class:`~robolearn.core.types.CameraIntrinsics` (``cx = (width - 1) / 2`` for a centred
principal point). A pixel back-projects to ``((u - cx) z / fx, (v - cy) z / fy, z)``, by
the ray grid of :func:`robolearn.drivers.cameras.pointcloud.pixel_rays` (shared with the
numpy back-projection of the camera drivers).

**Invalid depth is masked, not removed**, so batches keep a fixed shape: a pixel whose depth
is 0, negative, NaN, ±inf or beyond ``max_depth_m`` gives the point (0, 0, 0) and ``False`` in
the returned ``valid`` mask. For one cloud, ``points[valid]`` removes them.
:func:`sample_points` draws only valid points and pads with masked zeros when there are
too few; :class:`PointNetEncoder` ignores masked points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from robolearn.core.types import CameraIntrinsics, ConfigError
from robolearn.drivers.cameras.pointcloud import pixel_rays

IntrinsicsLike = CameraIntrinsics | Sequence[float]
"""A :class:`CameraIntrinsics`, ``(fx, fy, cx, cy)``, or ``(fx, fy, cx, cy, width, height)``."""


def pinhole_for_image(intrinsics: IntrinsicsLike, height: int, width: int) -> torch.Tensor:
    """``(fx, fy, cx, cy)`` for an image of ``height × width`` pixels, as a float64 tensor.

    Intrinsics that carry their own image size are rescaled when the image was resized
    (``fx' = fx · s``, ``cx' = (cx + 0.5) · s - 0.5``); a different aspect ratio (a crop,
    not a resize) is a :class:`ConfigError`. ``(fx, fy, cx, cy)`` alone are used as given.
    """
    if isinstance(intrinsics, CameraIntrinsics):
        i = intrinsics
        values = [i.fx, i.fy, i.cx, i.cy, float(i.width), float(i.height)]
    else:
        values = [float(v) for v in intrinsics]
    if len(values) not in (4, 6) or min(values[0], values[1]) <= 0:
        raise ConfigError(
            "intrinsics must be (fx, fy, cx, cy) or (fx, fy, cx, cy, width, height) with "
            f"fx, fy > 0, got {values}"
        )
    fx, fy, cx, cy = values[:4]
    if len(values) == 6 and (values[4], values[5]) != (width, height):
        fx, fy, cx, cy = _rescale(fx, fy, cx, cy, values[4], values[5], height, width)
    return torch.tensor([fx, fy, cx, cy], dtype=torch.float64)


def _rescale(
    fx: float, fy: float, cx: float, cy: float, w0: float, h0: float, height: int, width: int
) -> tuple[float, float, float, float]:
    sx, sy = width / w0, height / h0
    if abs(sx - sy) > 0.01 * max(sx, sy):
        raise ConfigError(
            f"depth image {width}x{height} is not a resize of the intrinsics' "
            f"{w0:g}x{h0:g} image (aspect ratio differs); give intrinsics for this image"
        )
    return fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5


@overload
def depth_to_point_cloud(
    depth: torch.Tensor,
    intrinsics: IntrinsicsLike,
    stride: int = 1,
    max_depth_m: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def depth_to_point_cloud(
    depth: NDArray[np.floating],
    intrinsics: IntrinsicsLike,
    stride: int = 1,
    max_depth_m: float | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]: ...
def depth_to_point_cloud(
    depth: torch.Tensor | NDArray[np.floating],
    intrinsics: IntrinsicsLike,
    stride: int = 1,
    max_depth_m: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Back-project metric depth (..., H, W) to camera-frame points (see module docstring).

    Args:
        depth: depth in metres, (H, W) or with any leading batch dims (B, H, W); a torch
            tensor or a numpy array (the result then is numpy too).
        intrinsics: pinhole intrinsics of the depth image (see :func:`pinhole_for_image`).
        stride: keep every ``stride``-th row and column, N = ceil(H/stride) · ceil(W/stride).
        max_depth_m: depths beyond this are invalid; None keeps every finite positive depth.

    Returns:
        ``(points, valid)``: (..., N, 3) float32 points in metres, row-major over pixels,
        invalid ones zero, and the (..., N) bool mask of valid ones.
    """
    if isinstance(depth, np.ndarray):
        points, valid = depth_to_point_cloud(
            torch.from_numpy(depth), intrinsics, stride, max_depth_m
        )
        return points.numpy(), valid.numpy()
    if depth.ndim < 2 or stride < 1:
        raise ConfigError(
            f"depth must be (..., H, W) and stride ≥ 1, got {tuple(depth.shape)}, {stride}"
        )
    rays = _image_rays(intrinsics, depth.shape[-2], depth.shape[-1], stride)  # (h, w, 3)
    z = depth[..., ::stride, ::stride].float()  # (..., h, w)
    valid = torch.isfinite(z) & (z > 0)
    if max_depth_m is not None:
        valid &= z <= max_depth_m
    z = torch.where(valid, z, torch.zeros_like(z))
    points = rays.to(z.device) * z[..., None]  # (..., h, w, 3)
    return points.flatten(-3, -2), valid.flatten(-2)


def _image_rays(intrinsics: IntrinsicsLike, height: int, width: int, stride: int) -> torch.Tensor:
    """The (h, w, 3) float32 camera-frame rays of a ``height × width`` image's pixels.

    :func:`robolearn.drivers.cameras.pointcloud.pixel_rays` (the one back-projection formula)
    for the intrinsics :func:`pinhole_for_image` gives this image size.
    """
    fx, fy, cx, cy = pinhole_for_image(intrinsics, height, width).tolist()
    pinhole = CameraIntrinsics(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy)
    return torch.from_numpy(pixel_rays(pinhole, stride))


def sample_points(
    points: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points drawn uniformly without replacement from each cloud of (..., N, D).

    Only points with ``valid`` (..., N) True are drawn (all when None). A cloud with fewer
    than ``n`` valid points gives all of them followed by zero padding. Randomness comes from
    ``generator`` (drawn on its device; the global generator when None).

    Returns:
        ``(sampled, mask)``: (..., n, D) points and the (..., n) bool mask, False on padding.
    """
    if n < 1 or points.ndim < 2:
        raise ConfigError(
            f"sample_points needs n ≥ 1 and (..., N, D) points, got {n}, {tuple(points.shape)}"
        )
    if valid is None:
        valid = torch.ones(points.shape[:-1], dtype=torch.bool, device=points.device)
    if points.shape[-2] < n:  # pad so that there are at least n candidates
        points, valid = _pad_points(points, valid, n)
    device = generator.device if generator is not None else points.device
    keys = torch.rand(points.shape[:-1], generator=generator, device=device).to(points.device)
    keys = keys.masked_fill(~valid, 2.0)  # invalid points sort after every valid one
    index = keys.topk(n, dim=-1, largest=False).indices  # (..., n)
    mask = valid.gather(-1, index)
    sampled = points.gather(-2, index[..., None].expand(*index.shape, points.shape[-1]))
    return sampled * mask[..., None].to(sampled.dtype), mask


def _pad_points(
    points: torch.Tensor, valid: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    extra = n - points.shape[-2]
    pad = points.new_zeros(*points.shape[:-2], extra, points.shape[-1])
    pad_valid = valid.new_zeros(*valid.shape[:-1], extra)
    return torch.cat([points, pad], dim=-2), torch.cat([valid, pad_valid], dim=-1)


class PointNetEncoder(nn.Module):
    """PointNet: a per-point MLP (Linear → LayerNorm → ReLU per hidden layer), a max pool over
    points, and a linear projection to ``feature_dim``.

    Invariant to the order of the points; points with a False ``mask`` are ignored, and a
    cloud with no valid point pools to zeros (its feature is then the projection's bias).
    """

    def __init__(
        self, in_dim: int = 3, feature_dim: int = 256, hidden: Sequence[int] = (64, 128, 256)
    ) -> None:
        """Build the network for (..., N, in_dim) points."""
        super().__init__()
        if in_dim < 1 or feature_dim < 1 or not hidden or min(hidden) < 1:
            raise ConfigError(
                f"PointNetEncoder needs in_dim, feature_dim ≥ 1 and non-empty positive hidden "
                f"sizes, got {in_dim}, {feature_dim}, {tuple(hidden)}"
            )
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), nn.ReLU()]
            width = size
        self.in_dim = in_dim
        self.mlp = nn.Sequential(*layers)
        self.proj = nn.Linear(width, feature_dim)
        self.out_dim = feature_dim

    def forward(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(..., N, in_dim) points and optional (..., N) bool mask → (..., feature_dim)."""
        if points.ndim < 2 or points.shape[-1] != self.in_dim:
            raise ConfigError(
                f"PointNetEncoder expects (..., N, {self.in_dim}) points, got {tuple(points.shape)}"
            )
        per_point = self.mlp(points)  # (..., N, H)
        if mask is None:
            return self.proj(per_point.amax(dim=-2))
        per_point = per_point.masked_fill(~mask[..., None], float("-inf"))
        pooled = per_point.amax(dim=-2)  # (..., H)
        pooled = torch.where(mask.any(dim=-1, keepdim=True), pooled, torch.zeros_like(pooled))
        return self.proj(pooled)
