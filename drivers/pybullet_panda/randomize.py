"""Domain randomization of the PyBullet scene: *nominal × draw* written into the bodies.

The PyBullet side of :meth:`~robolearn.drivers.panda.SimulatedPanda.set_randomization`, for the
parameters that live in the physics world: robot link masses and inertias, sliding friction of
every colliding link or body, robot joint damping, task object size and mass (and inertia), and
the colour of every visible link or body. The nominal values are read once, right after the
world is built, so nothing drifts over episodes, and an empty set of draws puts them back.
Servo gains, cameras and the light belong to the driver and its
:class:`~robolearn.drivers.pybullet_panda.render.CameraRig`.

Elements are named as the MuJoCo side names them where they are the same thing (robot links and
joints by their URDF names, ``table``, ``floor``, objects and markers by their scene names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from robolearn.core.types import ConfigError, FloatArray
from robolearn.drivers.panda import ARM_JOINTS, FINGER_JOINTS, TABLE
from robolearn.drivers.pybullet_panda.gravity import GravityModel
from robolearn.drivers.pybullet_panda.scene import (
    ARM_JOINT_DAMPING,
    FINGER_JOINT_DAMPING,
    PandaWorld,
)

SERVOS = (*(f"act_{name}" for name in ARM_JOINTS), "act_gripper")
"""The position servos, arm then gripper (one for both fingers), named as MuJoCo's actuators."""


@dataclass(frozen=True)
class Part:
    """A link of a body, named by its owner (``robot``, ``table``, ``floor``, an object or a
    marker: body ids of objects change when they are resized) and link index (-1: base)."""

    owner: str
    link: int
    label: str


class PybulletRandomizer:
    """Writes draws (one value per element, parameters named as in
    :class:`~robolearn.envs.randomization.DomainRandomizationConfig`) into a
    :class:`PandaWorld`."""

    def __init__(self, world: PandaWorld, gravity: GravityModel) -> None:
        self.world = world
        self._gravity = gravity
        c, robot = world.client, world.robot
        idx = world.indices
        self.links = [
            Part("robot", link, name)
            for name, link in idx.links.items()
            if c.getDynamicsInfo(robot, link)[0] > 0
        ]
        self.geoms = [*self._robot_parts(collision=True), *self._scene_parts(markers=False)]
        self.colours = [*self._robot_parts(collision=False), *self._scene_parts(markers=True)]
        self.nominal_mass = {p: float(c.getDynamicsInfo(robot, p.link)[0]) for p in self.links}
        self.nominal_inertia = {
            p: np.array(c.getDynamicsInfo(robot, p.link)[2], dtype=np.float64) for p in self.links
        }
        self.nominal_friction = {p: self._read_friction(p) for p in self.geoms}
        self.nominal_rgba = {p: self._read_rgba(p) for p in self.colours}
        self.nominal_damping = np.array(
            [ARM_JOINT_DAMPING] * len(ARM_JOINTS) + [FINGER_JOINT_DAMPING] * len(FINGER_JOINTS)
        )

    def labels(self, cameras: list[str], lights: list[str]) -> dict[str, list[str]]:
        """Element names per kind, in the order of each parameter's draws."""
        return {
            "links": [p.label for p in self.links],
            "geoms": [p.label for p in self.geoms],
            "dofs": [*ARM_JOINTS, *FINGER_JOINTS],
            "servos": list(SERVOS),
            "objects": [o.name for o in self.world.cfg.objects],
            "cameras": cameras,
            "lights": lights,
            "colours": [p.label for p in self.colours],
        }

    def apply(self, draws: Mapping[str, FloatArray]) -> None:
        """Nominal, then × ``draws``. A new object size rebuilds the objects (back at the
        start of the scene: apply before a reset)."""
        n_objects = len(self.world.cfg.objects)
        size = _draw(draws, "object_size_scale", n_objects)
        self.world.resize_objects(tuple(float(s) for s in size))
        self._apply_links(_draw(draws, "link_mass_scale", len(self.links)))
        self._apply_objects(_draw(draws, "object_mass_scale", n_objects))
        self._apply_friction(_draw(draws, "friction_scale", len(self.geoms)))
        self._apply_damping(_draw(draws, "joint_damping_scale", len(self.nominal_damping)))
        self._apply_colours(draws.get("rgba_offset"))

    # ------------------------------------------------------------------ parameters
    def _apply_links(self, scale: FloatArray) -> None:
        c = self.world.client
        by_link = {part.link: float(s) for part, s in zip(self.links, scale, strict=True)}
        g = self._gravity
        g.set_masses(g.nominal_masses * np.array([by_link.get(link, 1.0) for link in g.links]))
        for part, s in zip(self.links, scale, strict=True):
            c.changeDynamics(
                self.world.robot,
                part.link,
                mass=self.nominal_mass[part] * float(s),
                localInertiaDiagonal=[float(v) for v in self.nominal_inertia[part] * s],
            )

    def _apply_objects(self, mass_scale: FloatArray) -> None:
        """Mass × draw, and the inertia of a solid box of that mass and the current size."""
        w = self.world
        for i, (obj, s) in enumerate(zip(w.cfg.objects, mass_scale, strict=True)):
            mass = obj.mass * float(s)
            hx, hy, hz = w.object_half_extents(i)
            inertia = [mass / 3.0 * (hy * hy + hz * hz), mass / 3.0 * (hx * hx + hz * hz)]
            inertia.append(mass / 3.0 * (hx * hx + hy * hy))
            w.client.changeDynamics(
                w.objects[obj.name], -1, mass=mass, localInertiaDiagonal=inertia
            )

    def _apply_friction(self, scale: FloatArray) -> None:
        c = self.world.client
        for part, s in zip(self.geoms, scale, strict=True):
            friction = self.nominal_friction[part] * float(s)
            c.changeDynamics(self.world.body(part.owner), part.link, lateralFriction=friction)

    def _apply_damping(self, scale: FloatArray) -> None:
        w = self.world
        for joint, damping in zip(w.indices.movable, self.nominal_damping * scale, strict=True):
            w.client.changeDynamics(w.robot, joint, jointDamping=float(damping))

    def _apply_colours(self, offsets: FloatArray | None) -> None:
        if offsets is not None and np.shape(offsets) != (len(self.colours), 3):
            raise ConfigError(
                f"rgba_offset needs shape ({len(self.colours)}, 3), got {np.shape(offsets)}"
            )
        c = self.world.client
        for i, part in enumerate(self.colours):
            rgba = self.nominal_rgba[part].copy()
            if offsets is not None:
                rgba[:3] = (rgba[:3] + offsets[i]).clip(0.0, 1.0)
            c.changeVisualShape(
                self.world.body(part.owner), part.link, rgbaColor=[float(v) for v in rgba]
            )

    # ------------------------------------------------------------------ elements
    def _robot_parts(self, collision: bool) -> list[Part]:
        c, robot = self.world.client, self.world.robot
        parts = []
        for name, link in self.world.indices.links.items():
            has = c.getCollisionShapeData(robot, link) if collision else self._visuals(link)
            if has:
                parts.append(Part("robot", link, name))
        return parts

    def _visuals(self, link: int) -> bool:
        shapes = self.world.client.getVisualShapeData(self.world.robot)
        return any(s[1] == link and s[7][3] > 0 for s in shapes)

    def _scene_parts(self, markers: bool) -> list[Part]:
        owners = [TABLE, "floor", *self.world.objects]
        if markers:
            owners += list(self.world.markers)
        return [Part(owner, -1, owner) for owner in owners]

    def _read_friction(self, part: Part) -> float:
        w = self.world
        return float(w.client.getDynamicsInfo(w.body(part.owner), part.link)[1])

    def _read_rgba(self, part: Part) -> FloatArray:
        w = self.world
        for shape in w.client.getVisualShapeData(w.body(part.owner)):
            if shape[1] == part.link:
                return np.array(shape[7], dtype=np.float64)
        raise ConfigError(f"{part.label} has no visual shape")  # pragma: no cover


def _draw(draws: Mapping[str, FloatArray], key: str, n: int) -> FloatArray:
    """The draw of ``key`` (n,), ones when not drawn; ConfigError for another length."""
    if key not in draws:
        return np.ones(n)
    value = np.asarray(draws[key], dtype=np.float64)
    if value.shape != (n,):
        raise ConfigError(f"{key} needs one value per element ({n}), got shape {value.shape}")
    return value
