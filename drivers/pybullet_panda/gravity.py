"""Gravity torques of the Panda's arm joints from the link masses the simulation uses now.

PyBullet's ``calculateInverseDynamics`` builds its model of a body at its first use and keeps
it:
``changeDynamics`` (domain randomization of link masses) does not reach it, so compensation
computed there would hold the nominal arm, not the simulated one. With the nominal masses
:class:`GravityModel` asks it (2 µs); with others (:meth:`GravityModel.set_masses`) it sums the
weight of every link beyond each arm joint about that joint's axis, with the centres of mass of
one ``getLinkStates`` call (30 µs; the two agree to 1e-5 N·m). World frame; N·m.
"""

from __future__ import annotations

import numpy as np

from robolearn.core.types import FloatArray
from robolearn.drivers.pybullet_panda.scene import GRAVITY, PandaWorld


class GravityModel:
    """``torques()``: the arm-joint torques (7,) that hold the robot still against gravity."""

    def __init__(self, world: PandaWorld) -> None:
        c, robot, idx = world.client, world.robot, world.indices
        self._world = world
        self._links = [link for link in idx.links.values() if link >= 0]
        self.nominal_masses = np.array([c.getDynamicsInfo(robot, link)[0] for link in self._links])
        """Mass (kg) of each link in :attr:`links` order, as built."""
        self._masses = self.nominal_masses.copy()
        self._nominal = True
        self._zeros = [0.0] * len(idx.movable)
        # PyBullet builds that model at its first use, with the masses of that moment (also
        # for calculateJacobian): use it now, while the world is as built.
        c.calculateInverseDynamics(robot, self._zeros, self._zeros, self._zeros)
        parents = {j: int(c.getJointInfo(robot, j)[16]) for j in self._links}
        self._beyond = np.array(
            [[_descends(link, joint, parents) for link in self._links] for joint in idx.arm],
            dtype=np.float64,
        )  # (7, links): 1 where the link moves with the joint
        self._axes = np.array([c.getJointInfo(robot, j)[13] for j in idx.arm], dtype=np.float64)
        self._arm_rows = [self._links.index(j) for j in idx.arm]

    @property
    def links(self) -> list[int]:
        """The link indices the masses refer to (the fixed base excluded)."""
        return list(self._links)

    def set_masses(self, masses: FloatArray) -> None:
        """The link masses (kg, :attr:`links` order) the simulation now uses."""
        self._masses = np.array(masses, dtype=np.float64)
        self._nominal = bool(np.array_equal(self._masses, self.nominal_masses))

    def torques(self, q: list[float]) -> FloatArray:
        """Joint torques (7,) cancelling the weight of the arm, hand and fingers at the
        movable-joint positions ``q`` (9,), which must be the simulation's current ones."""
        w = self._world
        if self._nominal:
            z = self._zeros
            return np.asarray(w.client.calculateInverseDynamics(w.robot, q, z, z)[:7])
        return self._summed()

    def _summed(self) -> FloatArray:
        w = self._world
        states = w.client.getLinkStates(w.robot, self._links, computeForwardKinematics=1)
        com = np.array([s[0] for s in states])
        arm = [states[i] for i in self._arm_rows]
        origins = np.array([s[4] for s in arm])  # joint j sits at the origin of link j
        axes = _rotate(np.array([s[5] for s in arm]), self._axes)
        weights = self._beyond * self._masses  # (7, links)
        total = weights.sum(axis=1)
        moment_x = weights @ com[:, 0] - total * origins[:, 0]
        moment_y = weights @ com[:, 1] - total * origins[:, 1]
        # The torque of a vertical force m g about axis a through o is g (a × (c - o))_z · m;
        # the compensation is its opposite.
        return np.asarray(-GRAVITY[2] * (axes[:, 0] * moment_y - axes[:, 1] * moment_x))


def _rotate(quats_xyzw: FloatArray, vectors: FloatArray) -> FloatArray:
    """Each vector (n, 3) rotated by its quaternion (n, 4), PyBullet's ``(x, y, z, w)``."""
    u, w = quats_xyzw[:, :3], quats_xyzw[:, 3:]
    t = 2.0 * _cross(u, vectors)
    return vectors + w * t + _cross(u, t)


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise cross products of (n, 3) arrays (``np.cross`` costs ten times more here)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _descends(link: int, joint: int, parents: dict[int, int]) -> bool:
    """Whether ``link`` is the child link of ``joint`` or below it."""
    while link >= 0:
        if link == joint:
            return True
        link = parents[link]
    return False
