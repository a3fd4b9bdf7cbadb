"""Offscreen RGB and depth rendering of MuJoCo cameras, with their pinhole intrinsics."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import mujoco
import numpy as np
from numpy.typing import NDArray

from robolearn.core.types import CameraSpec, ConfigError, DriverError
from robolearn.drivers.panda import CameraRequest, intrinsics_from_fovy

__all__ = ["CameraRenderer", "CameraRequest", "intrinsics_from_fovy"]

EGL_FIX = (
    "offscreen rendering failed: install EGL/Mesa with "
    "`apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri` and set MUJOCO_GL=egl"
)


class CameraRenderer:
    """Renders a fixed set of cameras; one MuJoCo renderer per image size."""

    def __init__(self, model: mujoco.MjModel, requests: Sequence[CameraRequest]) -> None:
        self._model = model
        self._requests = tuple(requests)
        max_h, max_w = model.vis.global_.offheight, model.vis.global_.offwidth
        specs = []
        for req in self._requests:
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, req.name)
            if cam_id < 0:
                known = ", ".join(model.camera(i).name for i in range(model.ncam))
                raise ConfigError(f"unknown camera {req.name!r}; the scene has: {known}")
            if req.height > max_h or req.width > max_w:
                raise ConfigError(
                    f"camera {req.name!r} asks for {req.height}x{req.width} but the scene's "
                    f"offscreen buffer is {max_h}x{max_w}; raise SceneConfig.offscreen_size"
                )
            fovy = float(model.cam_fovy[cam_id])
            specs.append(
                CameraSpec(req.name, intrinsics_from_fovy(fovy, req.height, req.width), req.depth)
            )
        self.specs = tuple(specs)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    def open(self) -> None:
        for req in self._requests:
            key = (req.height, req.width)
            if key not in self._renderers:
                self._renderers[key] = _make_renderer(self._model, *key)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def render(
        self, data: mujoco.MjData
    ) -> tuple[dict[str, NDArray[np.uint8]], dict[str, NDArray[np.float32]]]:
        """RGB (H, W, 3) uint8 and depth (H, W) float32 metres of every requested camera."""
        images: dict[str, NDArray[np.uint8]] = {}
        depths: dict[str, NDArray[np.float32]] = {}
        for req in self._requests:
            renderer = self._renderers[(req.height, req.width)]
            renderer.update_scene(data, camera=req.name)
            images[req.name] = renderer.render()
            if req.depth:
                renderer.enable_depth_rendering()
                depths[req.name] = renderer.render().astype(np.float32)
                renderer.disable_depth_rendering()
        return images, depths


def _load_triton_before_mesa() -> None:
    """Load Triton's native library (shipped with CUDA builds of torch) if it is installed.

    Mesa's software renderer and Triton each carry their own LLVM. Loading Triton after an
    EGL context exists crashes the process (a segfault in ``import triton``, which happens
    the first time torch._dynamo is imported, e.g. by diffusers); loaded in the other order
    both work. Rendering processes therefore load Triton first (~0.2 s, once)."""
    with contextlib.suppress(ImportError):
        import triton._C.libtriton  # noqa: F401


def _make_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    _load_triton_before_mesa()
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as exc:  # GL context creation raises many different types
        from robolearn.core._gl import MUJOCO_IMPORTED_FIRST

        if MUJOCO_IMPORTED_FIRST:
            raise DriverError(
                "offscreen rendering failed because mujoco was imported before robolearn chose "
                "its GL backend: run with `export MUJOCO_GL=egl` (or import robolearn first)"
            ) from exc
        backend = os.environ.get("MUJOCO_GL", "<unset>")
        raise DriverError(f"{EGL_FIX} (MUJOCO_GL={backend}: {exc})") from exc
