"""PyBullet simulation of the Franka Panda from pybullet_data's URDF (the scene contract's
second backend, beside :mod:`robolearn.drivers.mujoco_panda`)."""

from robolearn.drivers.pybullet_panda.driver import PybulletPandaDriver

__all__ = ["PybulletPandaDriver"]
