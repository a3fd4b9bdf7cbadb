"""The scene's cameras in PyBullet: poses, pinhole projection, RGB and metric depth.

The mounts are those of :class:`~robolearn.drivers.panda.SceneConfig` (the front camera fixed
in the world, the wrist camera in the ``panda_hand`` link frame), with the intrinsics of
:func:`~robolearn.drivers.panda.camera_specs`: vertical field of view ``fovy_deg``, square
pixels, near and far planes at :data:`NEAR_M` and :data:`FAR_M`. Camera frames follow the
OpenGL convention (looking along -z, y up), as MuJoCo's cameras and
:func:`~robolearn.drivers.panda.look_at_axes` do.

Frames are drawn by PyBullet's CPU TinyRenderer, or by its EGL plugin with
``ROBOLEARN_PYBULLET_EGL=1`` (see :class:`~robolearn.drivers.pybullet_panda.scene.PandaWorld`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pybullet
from numpy.typing import NDArray

from robolearn.core.geometry import mat_from_quat, quat_from_mat, quat_from_rotvec
from robolearn.core.types import CameraSpec, ConfigError, FloatArray
from robolearn.drivers.panda import CameraMount, CameraRequest, camera_specs, look_at_axes
from robolearn.drivers.pybullet_panda.scene import PandaWorld

NEAR_M = 0.01
FAR_M = 10.0
BACKGROUND_RGB = (0, 0, 0)
"""What pixels showing nothing get, as MuJoCo's default (no skybox) renders them."""
LIGHT_POS = (0.8, -0.6, 1.8)
"""Where the one directional light of the renderer comes from (m, world frame): the MuJoCo
scene's key light."""
LIGHT_AMBIENT = 0.6
LIGHT_DIFFUSE = 0.35
LIGHT_SPECULAR = 0.05
"""TinyRenderer's default ambient, diffuse and specular coefficients (the nominal lighting)."""


class CameraRig:
    """Poses and renders the scene cameras of one :class:`PandaWorld`."""

    def __init__(self, world: PandaWorld, requests: Sequence[CameraRequest]) -> None:
        self._world = world
        self._requests = tuple(requests)
        self.specs: tuple[CameraSpec, ...] = camera_specs(world.cfg, self._requests)
        self._mounts = {m.name: m for m in world.cfg.cameras}
        # Camera axes and position in the mount's frame (world or a link), per mount.
        self._nominal = {m.name: _local_pose(m) for m in world.cfg.cameras}
        self._local = dict(self._nominal)
        self._mount_links = {
            m.name: None if m.body is None else self._link(m) for m in world.cfg.cameras
        }
        self._projections: dict[tuple[str, int, int], list[float]] = {}
        self._renderer = world.renderer
        self._light_pos = np.array(LIGHT_POS)
        self._light_diffuse = LIGHT_DIFFUSE

    @property
    def names(self) -> list[str]:
        """The scene's cameras, in :class:`SceneConfig` order."""
        return list(self._nominal)

    def set_offsets(self, pos_m: FloatArray | None, rotvecs: FloatArray | None) -> None:
        """Move every camera from its mount pose: by ``pos_m`` (n, 3) in the mount's frame and
        by the rotations ``rotvecs`` (n, 3) in its own frame, as MuJoCo composes them; None
        keeps the nominal position or orientation."""
        n = len(self._nominal)
        for key, value in (("camera_pos_offset_m", pos_m), ("camera_rot_offset_rad", rotvecs)):
            if value is not None and np.shape(value) != (n, 3):
                raise ConfigError(f"{key} needs shape ({n}, 3), got {np.shape(value)}")
        for i, (name, (pos, rot)) in enumerate(self._nominal.items()):
            new_pos = pos if pos_m is None else pos + pos_m[i]
            new_rot = rot if rotvecs is None else rot @ mat_from_quat(quat_from_rotvec(rotvecs[i]))
            self._local[name] = (new_pos, new_rot)

    def set_light(self, pos_offset_m: FloatArray | None, diffuse_scale: float | None) -> None:
        """The light moved by ``pos_offset_m`` (3,) and its diffuse coefficient scaled (None:
        nominal)."""
        offset = np.zeros(3) if pos_offset_m is None else pos_offset_m
        self._light_pos = np.array(LIGHT_POS) + offset
        self._light_diffuse = LIGHT_DIFFUSE * (1.0 if diffuse_scale is None else diffuse_scale)

    def pose(self, name: str) -> tuple[FloatArray, FloatArray]:
        """World position (3,) and quaternion (4,) of camera ``name`` (looks along -z)."""
        pos, rot = self._pose_mat(name)
        return pos, quat_from_mat(rot)

    def render_all(self) -> tuple[dict[str, NDArray[np.uint8]], dict[str, NDArray[np.float32]]]:
        """RGB (H, W, 3) uint8 and depth (H, W) float32 in metres of every requested camera."""
        images: dict[str, NDArray[np.uint8]] = {}
        depths: dict[str, NDArray[np.float32]] = {}
        for req in self._requests:
            rgb, depth = self.render(req.name, req.height, req.width, req.depth)
            images[req.name] = rgb
            if depth is not None:
                depths[req.name] = depth
        return images, depths

    def render(
        self, name: str, height: int, width: int, depth: bool = False
    ) -> tuple[NDArray[np.uint8], NDArray[np.float32] | None]:
        """One RGB frame of camera ``name`` and, if asked, its metric depth (far = background)."""
        pos, rot = self._pose_mat(name)
        _, _, rgba, buffer, _ = self._world.client.getCameraImage(
            width,
            height,
            viewMatrix=_view_matrix(pos, rot),
            projectionMatrix=self._projection(name, height, width),
            renderer=self._renderer,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
            lightDirection=[float(v) for v in self._light_pos],
            lightAmbientCoeff=LIGHT_AMBIENT,
            lightDiffuseCoeff=self._light_diffuse,
            lightSpecularCoeff=LIGHT_SPECULAR,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()
        buffer = np.asarray(buffer, dtype=np.float64).reshape(height, width)
        rgb[buffer >= 1.0] = BACKGROUND_RGB  # TinyRenderer clears to white, MuJoCo to black
        return rgb, metric_depth(buffer) if depth else None

    # ------------------------------------------------------------------ helpers
    def _pose_mat(self, name: str) -> tuple[FloatArray, FloatArray]:
        if name not in self._local:
            raise ConfigError(f"unknown camera {name!r}; the scene has: {', '.join(self._local)}")
        local_pos, local_rot = self._local[name]
        link = self._mount_links[name]
        if link is None:
            return local_pos, local_rot
        state = self._world.client.getLinkState(
            self._world.robot, link, computeForwardKinematics=True
        )
        link_pos = np.asarray(state[4], dtype=np.float64)
        x, y, z, w = state[5]
        link_rot = mat_from_quat(np.array([w, x, y, z]))
        return link_pos + link_rot @ local_pos, link_rot @ local_rot

    def _link(self, mount: CameraMount) -> int:
        links = self._world.indices.links
        if mount.body not in links:
            raise ConfigError(
                f"camera {mount.name!r} is mounted on {mount.body!r}, which is not a Panda link;"
                f" the links are: {', '.join(links)}"
            )
        return links[mount.body]

    def _projection(self, name: str, height: int, width: int) -> list[float]:
        key = (name, height, width)
        if key not in self._projections:
            matrix = list(
                self._world.client.computeProjectionMatrixFOV(
                    fov=self._mounts[name].fovy_deg,
                    aspect=width / height,
                    nearVal=NEAR_M,
                    farVal=FAR_M,
                )
            )
            # TinyRenderer samples pixel corners; shifting the image by half a pixel (1/W and
            # 1/H in normalised device coordinates; column-major entries (0, 2) and (1, 2))
            # puts the samples at pixel centres, where cx = (W - 1) / 2 says they are.
            if self._renderer == pybullet.ER_TINY_RENDERER:
                matrix[8] += 1.0 / width
                matrix[9] += 1.0 / height
            self._projections[key] = matrix
        return self._projections[key]


def metric_depth(buffer: NDArray[np.float64]) -> NDArray[np.float32]:
    """Metres along the optical axis from an OpenGL depth buffer in [0, 1] (1 = far plane)."""
    depth = FAR_M * NEAR_M / (FAR_M - (FAR_M - NEAR_M) * buffer)
    return np.clip(depth, NEAR_M, FAR_M).astype(np.float32)


def _local_pose(mount: CameraMount) -> tuple[FloatArray, FloatArray]:
    eye = np.array(mount.pos, dtype=np.float64)
    axes = look_at_axes(eye, np.array(mount.look_at, dtype=np.float64), np.array(mount.up))
    return eye, axes


def _view_matrix(pos: FloatArray, rot: FloatArray) -> list[float]:
    """OpenGL view matrix (world → camera), column-major as PyBullet takes it."""
    view = np.eye(4)
    view[:3, :3] = rot.T
    view[:3, 3] = -rot.T @ pos
    return [float(v) for v in view.T.reshape(-1)]
