"""Build the Panda-on-a-table scene in a PyBullet client of its own.

The robot is pybullet_data's ``franka_panda/panda.urdf``, the very file the MuJoCo backend
compiles, loaded with a fixed base, the URDF's link inertias and no self-collision. Around it
go the same table (top at z = 0), floor (z = -0.75), free boxes and visual-only marker spheres
as in :mod:`robolearn.drivers.mujoco_panda.model`. Frames: the world frame is the robot base
frame; metres, kilograms, seconds.

:class:`PandaWorld` owns one ``BulletClient`` in ``DIRECT`` mode (no GUI, no network), so
several worlds in one process never share physics state. Right after building it takes an
in-memory snapshot (``saveState``); :meth:`PandaWorld.restore` goes back to it after dropping
the contacts cached since (their points and solver warm starts), so a reset world evolves bit
for bit like a fresh one.

Rendering uses TinyRenderer (CPU) unless ``ROBOLEARN_PYBULLET_EGL=1`` asks for the EGL plugin
(GPU or Mesa), which is then loaded before any body is made (it learns of visual shapes as they
are created) and replaced by TinyRenderer, silently, if it does not load. Caveat seen with Mesa
22: once the plugin is loaded, creating a MuJoCo EGL renderer later in the same process
segfaults (the other order works); that is why EGL is opt-in.
"""

from __future__ import annotations

import importlib.util
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pybullet
from pybullet_utils import bullet_client

from robolearn.core.types import ConfigError
from robolearn.drivers.panda import (
    ARM_JOINTS,
    EE_LINK,
    FINGER_JOINTS,
    FINGER_LINKS,
    HAND_LINK,
    TABLE,
    TABLE_CENTER_XY,
    TABLE_HALF_EXTENTS,
    SceneConfig,
    panda_urdf_dir,
)

EGL_ENV = "ROBOLEARN_PYBULLET_EGL"
"""Set to 1 to render with PyBullet's EGL plugin (GPU or Mesa) instead of TinyRenderer."""
GRAVITY = (0.0, 0.0, -9.81)  # m/s², as MuJoCo's default
SOLVER_ITERATIONS = 150
"""Constraint-solver iterations per step: enough for a firm two-finger grasp of a 5 cm cube."""
FLOOR_Z = -0.75
FLOOR_HALF_EXTENTS = (3.0, 3.0, 0.05)
"""The floor is a thin box (its top at :data:`FLOOR_Z`): it renders like MuJoCo's 6 m plane."""
OBJECT_START_XY = (0.5, 0.0)
"""Where the scene puts free objects (on the table) and markers before a task places them."""
MARKER_START_Z = 0.1
ROBOT_RGBA = (0.92, 0.92, 0.95, 1.0)
TABLE_RGBA = (0.55, 0.45, 0.35, 1.0)
FLOOR_RGBA = (0.3, 0.32, 0.35, 1.0)
FINGER_FRICTION = 1.5
"""Lateral friction of the finger pads. PyBullet multiplies the two bodies' coefficients, so
with objects at 1.0 a grasp gets 1.5, as MuJoCo's finger geoms (priority 1) give it."""
ENV_FRICTION = 1.0
"""Lateral friction of table and floor (MuJoCo's default), times the object's own."""
OBJECT_SPINNING_FRICTION = 0.02
OBJECT_ROLLING_FRICTION = 0.001
OBJECT_CONTACT_STIFFNESS = 1e4
"""Contact stiffness (N/m) of free objects: compliant contacts, as MuJoCo's soft ones. With
Bullet's rigid contacts, a fingertip landing on a cube's edge was resolved by an impulse that
flung the cube (up to 74 rad/s; 4 of 10 failing FrankaPush seeds); compliant contacts push it
instead. A 20 N grasp sinks 2 mm into the cube."""
OBJECT_CONTACT_DAMPING = 200.0
"""Contact damping (N·s/m) of free objects, beyond critical for a 50 g cube (no bounce)."""
ARM_JOINT_DAMPING = 2.0
"""Viscous joint damping (N·m·s/rad), as the MuJoCo model's arm joints."""
FINGER_JOINT_DAMPING = 5.0
"""Viscous finger-joint damping (N·s/m), as the MuJoCo model's finger joints."""


def urdf_path() -> str:
    """The Panda URDF of pybullet_data."""
    return os.path.join(panda_urdf_dir(), "panda.urdf")


def urdf_joint_limits() -> dict[str, tuple[float, float]]:
    """``(lower, upper)`` of every limited joint of the URDF by name (rad or m), read without
    a simulator so a driver's spec exists before it connects."""
    limits = {}
    for joint in ET.parse(urdf_path()).getroot().iter("joint"):
        limit = joint.find("limit")
        if limit is not None and "lower" in limit.attrib:
            limits[str(joint.get("name"))] = (
                float(limit.attrib["lower"]),
                float(limit.attrib["upper"]),
            )
    return limits


@dataclass(frozen=True)
class RobotIndices:
    """PyBullet indices of the Panda's joints and links (joint ``i`` moves link ``i``)."""

    arm: tuple[int, ...]
    """The 7 arm joints, in :data:`ARM_JOINTS` order."""
    fingers: tuple[int, int]
    movable: tuple[int, ...]
    """All 9 movable joints (arm, then fingers), as inverse dynamics and Jacobians take them."""
    ee_link: int
    hand_link: int
    finger_links: tuple[int, int]
    links: dict[str, int]
    """Every link by URDF name; the base ``panda_link0`` is -1."""


class PandaWorld:
    """One PyBullet client holding the scene described by a :class:`SceneConfig`."""

    def __init__(self, cfg: SceneConfig) -> None:
        cfg.check_names()
        self.cfg = cfg
        self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        try:
            # The renderer learns of visual shapes as bodies are made: load the plugin first.
            self.renderer, self._egl_plugin = self._pick_renderer()
            self._configure_physics()
            self.robot, self.indices = self._load_robot()
            self.table, self.floor = self._add_table_and_floor()
            self.object_scales = tuple(1.0 for _ in cfg.objects)
            """Size of each object relative to its :class:`SceneObject` (``resize_objects``)."""
            self.objects: dict[str, int] = {}
            self.markers: dict[str, int] = {}
            self._add_objects_and_markers()
            self._snapshot = int(self.client.saveState())
        except BaseException:
            self.client.disconnect()
            raise

    def close(self) -> None:
        """Disconnect the client (and unload the EGL plugin); the world is unusable afterwards."""
        if self._egl_plugin is not None:
            self.client.unloadPlugin(self._egl_plugin)
            self._egl_plugin = None
        self.client.disconnect()

    def restore(self) -> None:
        """Go back to the state right after building: every body where the scene put it, at
        rest, with no contact cached (as when it was built)."""
        self._drop_contacts()
        self.client.restoreState(stateId=self._snapshot)

    def resize_objects(self, scales: tuple[float, ...]) -> None:
        """Rebuild the free objects at ``scales`` × their half extents (mass and friction as
        configured; the caller scales them after), back at the start of the scene. A
        collision shape cannot be resized in PyBullet, so the objects (and the markers made
        after them) are made anew and the snapshot retaken; body ids change."""
        if scales == self.object_scales:
            return
        self.restore()
        for body in reversed([*self.objects.values(), *self.markers.values()]):
            self.client.removeBody(body)
        self.object_scales = scales
        self._add_objects_and_markers()
        self.client.removeState(self._snapshot)
        self._snapshot = int(self.client.saveState())

    def body(self, owner: str) -> int:
        """The body id of ``robot``, ``table``, ``floor``, an object or a marker (ids of
        objects and markers change when they are resized)."""
        fixed = {"robot": self.robot, TABLE: self.table, "floor": self.floor}
        if owner in fixed:
            return fixed[owner]
        return self.objects[owner] if owner in self.objects else self.markers[owner]

    def _drop_contacts(self) -> None:
        # restoreState brings back the contacts of the snapshot (none) but keeps those found
        # since, whose cached points and warm starts would make a reset world drift from a
        # fresh one. Pulling every free body apart from the rest, the arm upright as built,
        # makes the broadphase release those pairs.
        c = self.client
        for i, body in enumerate([*self.objects.values(), *self.markers.values()]):
            c.resetBasePositionAndOrientation(body, (100.0 + 10.0 * i, 0.0, 0.0), (0, 0, 0, 1))
        for joint in self.indices.movable:
            c.resetJointState(self.robot, joint, 0.0, 0.0)
        c.performCollisionDetection()

    # ------------------------------------------------------------------ building
    def _pick_renderer(self) -> tuple[int, int | None]:
        """``(renderer, plugin id or None)``: the EGL plugin when :data:`EGL_ENV` asks for it
        and it loads, else TinyRenderer (always there, CPU only), silently."""
        if os.environ.get(EGL_ENV) != "1":
            return pybullet.ER_TINY_RENDERER, None
        try:
            found = importlib.util.find_spec("eglRenderer")
            if found is None or found.origin is None:
                return pybullet.ER_TINY_RENDERER, None
            plugin = int(self.client.loadPlugin(found.origin, "_eglRendererPlugin"))
        except Exception:  # a missing GL stack fails in many ways; TinyRenderer always works
            return pybullet.ER_TINY_RENDERER, None
        if plugin < 0:
            return pybullet.ER_TINY_RENDERER, None
        return pybullet.ER_BULLET_HARDWARE_OPENGL, plugin

    def _configure_physics(self) -> None:
        c = self.client
        c.setGravity(*GRAVITY)
        c.setPhysicsEngineParameter(
            fixedTimeStep=self.cfg.physics_dt,
            numSubSteps=0,
            numSolverIterations=SOLVER_ITERATIONS,
            deterministicOverlappingPairs=1,
        )

    def _load_robot(self) -> tuple[int, RobotIndices]:
        c = self.client
        robot = int(
            c.loadURDF(
                urdf_path(),
                basePosition=(0.0, 0.0, 0.0),
                useFixedBase=True,
                flags=pybullet.URDF_USE_INERTIA_FROM_FILE,  # no URDF_USE_SELF_COLLISION
            )
        )
        joints: dict[str, int] = {}
        links = {c.getBodyInfo(robot)[0].decode(): -1}
        for j in range(c.getNumJoints(robot)):
            info = c.getJointInfo(robot, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
        indices = RobotIndices(
            arm=tuple(joints[n] for n in ARM_JOINTS),
            fingers=(joints[FINGER_JOINTS[0]], joints[FINGER_JOINTS[1]]),
            movable=tuple(joints[n] for n in (*ARM_JOINTS, *FINGER_JOINTS)),
            ee_link=links[EE_LINK],
            hand_link=links[HAND_LINK],
            finger_links=(links[FINGER_LINKS[0]], links[FINGER_LINKS[1]]),
            links=links,
        )
        self._configure_robot_dynamics(robot, indices)
        return robot, indices

    def _configure_robot_dynamics(self, robot: int, idx: RobotIndices) -> None:
        c = self.client
        # PyBullet's default link drag (0.04) has no counterpart in MuJoCo: joint damping does.
        c.changeDynamics(robot, -1, linearDamping=0.0, angularDamping=0.0)
        for link in idx.links.values():
            c.changeVisualShape(robot, link, rgbaColor=ROBOT_RGBA)
        for joint in idx.arm:
            c.changeDynamics(robot, joint, jointDamping=ARM_JOINT_DAMPING)
        for joint in idx.fingers:
            c.changeDynamics(
                robot, joint, jointDamping=FINGER_JOINT_DAMPING, lateralFriction=FINGER_FRICTION
            )
        # Every joint has a velocity motor by default; switch them off (the driver sets its own).
        movable = list(idx.movable)
        c.setJointMotorControlArray(
            robot, movable, pybullet.VELOCITY_CONTROL, forces=[0.0] * len(movable)
        )

    def _static_box(
        self,
        half_extents: tuple[float, float, float],
        pos: tuple[float, float, float],
        rgba: tuple[float, float, float, float],
    ) -> int:
        c = self.client
        body = int(
            c.createMultiBody(
                baseMass=0.0,
                baseCollisionShapeIndex=c.createCollisionShape(
                    pybullet.GEOM_BOX, halfExtents=half_extents
                ),
                baseVisualShapeIndex=c.createVisualShape(
                    pybullet.GEOM_BOX, halfExtents=half_extents, rgbaColor=rgba
                ),
                basePosition=pos,
            )
        )
        c.changeDynamics(body, -1, lateralFriction=ENV_FRICTION)
        return body

    def _add_table_and_floor(self) -> tuple[int, int]:
        hz = TABLE_HALF_EXTENTS[2]
        table = self._static_box(
            TABLE_HALF_EXTENTS, (TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], -hz), TABLE_RGBA
        )
        floor = self._static_box(
            FLOOR_HALF_EXTENTS, (0.0, 0.0, FLOOR_Z - FLOOR_HALF_EXTENTS[2]), FLOOR_RGBA
        )
        return table, floor

    def _add_objects_and_markers(self) -> None:
        self.objects = {obj.name: self._add_object(i) for i, obj in enumerate(self.cfg.objects)}
        self.markers = {m.name: self._add_marker(i) for i, m in enumerate(self.cfg.markers)}

    def object_half_extents(self, i: int) -> tuple[float, float, float]:
        """Half extents (m) of object ``i`` as built now (its size scale applied)."""
        hx, hy, hz = self.cfg.objects[i].half_extents
        s = self.object_scales[i]
        return (hx * s, hy * s, hz * s)

    def _add_object(self, i: int) -> int:
        obj = self.cfg.objects[i]
        half_extents = self.object_half_extents(i)
        c = self.client
        body = int(
            c.createMultiBody(
                baseMass=obj.mass,
                baseCollisionShapeIndex=c.createCollisionShape(
                    pybullet.GEOM_BOX, halfExtents=half_extents
                ),
                baseVisualShapeIndex=c.createVisualShape(
                    pybullet.GEOM_BOX, halfExtents=half_extents, rgbaColor=obj.rgba
                ),
                basePosition=(*OBJECT_START_XY, half_extents[2]),
            )
        )
        c.changeDynamics(
            body,
            -1,
            lateralFriction=obj.friction,
            spinningFriction=OBJECT_SPINNING_FRICTION,
            rollingFriction=OBJECT_ROLLING_FRICTION,
            contactStiffness=OBJECT_CONTACT_STIFFNESS,
            contactDamping=OBJECT_CONTACT_DAMPING,
            linearDamping=0.0,
            angularDamping=0.0,
        )
        return body

    def _add_marker(self, i: int) -> int:
        marker = self.cfg.markers[i]
        c = self.client
        visual = c.createVisualShape(
            pybullet.GEOM_SPHERE, radius=marker.radius, rgbaColor=marker.rgba
        )
        # No collision shape: a marker never touches anything.
        return int(
            c.createMultiBody(
                baseMass=0.0,
                baseCollisionShapeIndex=-1,
                baseVisualShapeIndex=visual,
                basePosition=(*OBJECT_START_XY, MARKER_START_Z),
            )
        )

    # ------------------------------------------------------------------- names
    def body_names(self) -> list[str]:
        """Every name :meth:`contact_bodies` accepts."""
        return [TABLE, *self.indices.links, *self.objects, *self.markers]

    def contact_bodies(self, name: str) -> list[tuple[int, int | None]]:
        """``(body id, link index or None for all links)`` pairs a name stands for; the table
        also stands for the floor (both are MuJoCo's world body). ConfigError if unknown."""
        if name == TABLE:
            return [(self.table, None), (self.floor, None)]
        if name in self.indices.links:
            return [(self.robot, self.indices.links[name])]
        if name in self.objects:
            return [(self.objects[name], None)]
        if name in self.markers:
            return [(self.markers[name], None)]
        raise ConfigError(f"unknown body {name!r}; the scene has: {', '.join(self.body_names())}")
