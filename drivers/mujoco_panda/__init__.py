"""MuJoCo simulation of the Franka Panda from pybullet_data's URDF."""

from robolearn.drivers.mujoco_panda.driver import MujocoPandaDriver
from robolearn.drivers.mujoco_panda.model import (
    HOME_Q,
    CameraMount,
    Marker,
    SceneConfig,
    SceneObject,
)
from robolearn.drivers.mujoco_panda.render import CameraRequest

__all__ = [
    "HOME_Q",
    "CameraMount",
    "CameraRequest",
    "Marker",
    "MujocoPandaDriver",
    "SceneConfig",
    "SceneObject",
]
