"""The simulated Panda scene, backend-neutral: what every simulator of it builds and offers.

The tasks (:mod:`robolearn.envs.tasks`), their experts, rewards and randomization talk to a
simulated arm only through :class:`SimulatedPanda`; :class:`~robolearn.drivers.mujoco_panda.
MujocoPandaDriver` and :class:`~robolearn.drivers.pybullet_panda.PybulletPandaDriver` implement
it on the same robot description (pybullet_data's ``franka_panda/panda.urdf``) and the same
scene: a table whose top is the plane z = 0 in the robot-base (world) frame, free boxes, goal
markers and the front and wrist cameras at the same poses and intrinsics.

Conventions shared by every backend: metres, radians, seconds; quaternions ``(w, x, y, z)``;
velocities in the world frame, linear then angular; the end effector is the URDF's
``panda_grasptarget`` frame (between the fingertips).

Nothing here imports a simulator.
"""

from __future__ import annotations

import abc
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from robolearn.core.types import (
    CameraIntrinsics,
    CameraSpec,
    Command,
    CommandError,
    ConfigError,
    ControlMode,
    FloatArray,
    GripperSpec,
    JointSpec,
    RobotSpec,
    RobotState,
    require_finite,
)
from robolearn.drivers.base import Driver

ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
EE_LINK = "panda_grasptarget"
"""The URDF frame the end-effector pose refers to (between the fingertips)."""
HAND_LINK = "panda_hand"
FINGER_LINKS = ("panda_leftfinger", "panda_rightfinger")
HOME_Q = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398])
"""The usual Franka 'ready' pose (rad)."""
PANDA_MAX_VELOCITY = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)  # rad/s (URDF)
PANDA_MAX_EFFORT = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # N·m
MAX_GRIPPER_WIDTH = 0.08  # m, both fingers open
GRIPPER_FORCE_N = 20.0  # per finger
ARM_KP = np.array([4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0])
"""Stiffness (N·m/rad) of the arm's position servos, on every backend: stiff and near
critically damped for this URDF's joint-space inertia (its link inertias are 0.1 kg·m²)."""
ARM_KD = np.array([160.0, 160.0, 110.0, 110.0, 45.0, 45.0, 45.0])
"""Damping (N·m·s/rad) of the arm's position servos."""
PANDA_GRIPPER = GripperSpec(min_width=0.0, max_width=MAX_GRIPPER_WIDTH, max_force=40.0)
MAX_STIFFNESS = 3000.0  # N·m/rad, JOINT_IMPEDANCE upper bound
MAX_DAMPING = 200.0  # N·m·s/rad
MAX_EE_STEP_M = 0.1  # largest EE_DELTA translation accepted per command
MAX_EE_STEP_RAD = 0.5  # largest EE_DELTA rotation accepted per command
TABLE_HALF_EXTENTS = (0.55, 0.6, 0.02)
TABLE_CENTER_XY = (0.45, 0.0)
TABLE = "table"
"""The table's body name, for :meth:`SimulatedPanda.in_contact`."""
BACKENDS = ("mujoco", "pybullet")
"""The simulators that implement :class:`SimulatedPanda`."""


@dataclass(frozen=True)
class SceneObject:
    """A free rigid box on the table (a task's cube)."""

    name: str
    half_extents: tuple[float, float, float] = (0.02, 0.02, 0.02)
    mass: float = 0.05
    rgba: tuple[float, float, float, float] = (0.85, 0.2, 0.2, 1.0)
    friction: float = 1.0


@dataclass(frozen=True)
class Marker:
    """A visual-only sphere moved by the task (a goal), never colliding."""

    name: str
    radius: float = 0.015
    rgba: tuple[float, float, float, float] = (0.1, 0.8, 0.2, 0.5)


@dataclass(frozen=True)
class CameraMount:
    """Where a camera sits: ``pos`` and ``look_at`` in the world frame, or in the frame of the
    link ``body`` when given (the wrist camera rides on the hand). ``fovy_deg`` is vertical."""

    name: str
    pos: tuple[float, float, float]
    look_at: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    body: str | None = None
    fovy_deg: float = 58.0


DEFAULT_CAMERAS = (
    CameraMount("front", pos=(1.25, 0.0, 0.65), look_at=(0.4, 0.0, 0.12), fovy_deg=50.0),
    # On the hand, looking along the approach axis (hand +z) past the fingers.
    CameraMount(
        "wrist",
        pos=(0.06, 0.0, 0.02),
        look_at=(0.0, 0.0, 0.2),
        up=(1.0, 0.0, 0.0),
        body=HAND_LINK,
        fovy_deg=70.0,
    ),
)


@dataclass(frozen=True)
class SceneConfig:
    """What goes into the simulated scene besides the robot."""

    objects: tuple[SceneObject, ...] = ()
    markers: tuple[Marker, ...] = ()
    cameras: tuple[CameraMount, ...] = DEFAULT_CAMERAS
    physics_dt: float = 0.002
    offscreen_size: tuple[int, int] = (480, 640)
    """Largest (height, width) any camera renders at."""

    def check_names(self) -> None:
        """ConfigError unless object and marker names are unique and none is the table's."""
        names = [o.name for o in self.objects] + [m.name for m in self.markers]
        if len(set(names)) != len(names) or TABLE in names:
            raise ConfigError(
                f"scene object and marker names must be unique and not {TABLE!r}, got {names}"
            )


@dataclass(frozen=True)
class CameraRequest:
    """A camera to render on every ``read()``."""

    name: str
    height: int = 128
    width: int = 128
    depth: bool = False


def intrinsics_from_fovy(fovy_deg: float, height: int, width: int) -> CameraIntrinsics:
    """Pinhole intrinsics of a simulated camera (square pixels, centred principal point)."""
    focal = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    return CameraIntrinsics(width, height, focal, focal, (width - 1) / 2.0, (height - 1) / 2.0)


def camera_specs(scene: SceneConfig, requests: tuple[CameraRequest, ...]) -> tuple[CameraSpec, ...]:
    """The specs of the requested cameras of ``scene``; ConfigError naming the known cameras
    for an unknown one, or for a size beyond the scene's offscreen buffer."""
    mounts = {m.name: m for m in scene.cameras}
    max_h, max_w = scene.offscreen_size
    specs = []
    for req in requests:
        if req.name not in mounts:
            raise ConfigError(f"unknown camera {req.name!r}; the scene has: {', '.join(mounts)}")
        if req.height > max_h or req.width > max_w:
            raise ConfigError(
                f"camera {req.name!r} asks for {req.height}x{req.width} but the scene's "
                f"offscreen buffer is {max_h}x{max_w}; raise SceneConfig.offscreen_size"
            )
        fovy = mounts[req.name].fovy_deg
        specs.append(
            CameraSpec(req.name, intrinsics_from_fovy(fovy, req.height, req.width), req.depth)
        )
    return tuple(specs)


def look_at_axes(eye: FloatArray, target: FloatArray, up: FloatArray) -> FloatArray:
    """Columns x, y, z of a camera frame at ``eye`` looking at ``target`` in the OpenGL
    convention (the camera looks along its -z, y up), as MuJoCo cameras are."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    z_axis = -forward
    x_axis = np.cross(forward, up)
    x_axis = x_axis / np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    return np.column_stack([x_axis, y_axis, z_axis])


def panda_urdf_dir() -> str:
    """Folder of the Panda URDF inside pybullet_data (installed with pybullet)."""
    import pybullet_data

    path = os.path.join(pybullet_data.getDataPath(), "franka_panda")
    if not os.path.isfile(os.path.join(path, "panda.urdf")):
        raise ConfigError(
            f"pybullet_data has no franka_panda/panda.urdf under {path}; "
            "reinstall it with: pip install --force-reinstall pybullet"
        )
    return path


def panda_spec(
    name: str,
    limits: Mapping[str, tuple[float, float]],
    control_hz: float,
    physics_dt: float,
    cameras: tuple[CameraSpec, ...],
) -> RobotSpec:
    """The simulated Panda's spec: the 7 arm joints with ``limits`` (rad, by joint name), every
    control mode, the hand; ConfigError for a control rate outside (0, physics rate]."""
    rate = 1.0 / physics_dt
    if control_hz <= 0 or control_hz > rate:
        raise ConfigError(
            f"control_hz={control_hz} is outside (0, {rate:g}] (the physics rate); "
            "choose a lower rate"
        )
    joints = tuple(
        JointSpec(n, float(limits[n][0]), float(limits[n][1]), PANDA_MAX_VELOCITY[i], effort)
        for i, (n, effort) in enumerate(zip(ARM_JOINTS, PANDA_MAX_EFFORT, strict=True))
    )
    return RobotSpec(
        name=name,
        joints=joints,
        control_modes=frozenset(ControlMode),
        control_hz=control_hz,
        max_control_hz=rate,
        cameras=cameras,
        gripper=PANDA_GRIPPER,
    )


def gripper_target(width: float | None, current: float) -> float:
    """The finger opening a command asks for (m), clipped to the hand's range; ``current``
    when it gives none; CommandError for NaN or inf."""
    if width is None:
        return current
    if not math.isfinite(width):
        raise CommandError(f"gripper_width must be finite, got {width}")
    return min(max(float(width), 0.0), MAX_GRIPPER_WIDTH)


def impedance_targets(
    cmd: Command, lower: FloatArray, upper: FloatArray, effort: FloatArray
) -> Command:
    """A JOINT_IMPEDANCE command as applied: targets within the joint limits, stiffness and
    damping within [0, MAX_STIFFNESS] / [0, MAX_DAMPING], feed-forward torque (zero when
    absent) within the effort limits; CommandError for a missing, misshaped or non-finite
    field. ``gripper_width`` is not set (the caller adds the one it applies)."""
    q = np.clip(require_finite("joint_position", cmd.joint_position, (7,)), lower, upper)
    kp = np.clip(require_finite("stiffness", cmd.stiffness, (7,)), 0.0, MAX_STIFFNESS)
    kd = np.clip(require_finite("damping", cmd.damping, (7,)), 0.0, MAX_DAMPING)
    tau_ff = (
        np.zeros(7)
        if cmd.joint_torque is None
        else require_finite("joint_torque", cmd.joint_torque, (7,))
    )
    tau_ff = np.clip(tau_ff, -effort, effort)
    return Command(cmd.mode, joint_position=q, stiffness=kp, damping=kd, joint_torque=tau_ff)


def ee_delta_steps(cmd: Command) -> tuple[FloatArray, FloatArray]:
    """An EE_DELTA command's translation (m) and rotation vector (rad), each shortened to
    MAX_EE_STEP_M / MAX_EE_STEP_RAD; no rotation when absent; CommandError when invalid."""
    dpos = require_finite("ee_delta_pos", cmd.ee_delta_pos, (3,))
    drot = (
        np.zeros(3)
        if cmd.ee_delta_rot is None
        else require_finite("ee_delta_rot", cmd.ee_delta_rot, (3,))
    )
    return clip_norm(dpos, MAX_EE_STEP_M), clip_norm(drot, MAX_EE_STEP_RAD)


DIVERGED_SPEED = 20.0
"""A joint speed (rad/s) or an object speed (m/s) beyond which the physics has blown up: the
Panda's joints reach 2.6 rad/s, and nothing in a tabletop scene moves at 20 m/s. (Bullet
clamps body speeds at 100 m/s, so a blow-up there saturates rather than reaching inf.)"""
DIVERGED_SPIN_RAD_S = 200.0
"""An object's angular speed beyond which the physics has blown up (a 5 cm cube rolling at
5 m/s spins at 200 rad/s)."""
DIVERGED_DISTANCE_M = 3.0
"""An object this far from the robot's base (beyond the floor around the table) has been
thrown out of the scene by the solver."""


def divergence(
    joint_speeds: FloatArray,
    linear: FloatArray | None = None,
    angular: FloatArray | None = None,
    positions: FloatArray | None = None,
) -> str | None:
    """Why the robot's ``joint_speeds`` and the free objects' ``linear`` (m/s), ``angular``
    (rad/s) velocities and ``positions`` (m, world frame with the base at the origin; each
    ``(n, 3)``) cannot come from a sound physics step, or None."""
    checks = (
        (joint_speeds, DIVERGED_SPEED, "a joint moves at {:.3g} rad/s"),
        (linear, DIVERGED_SPEED, "an object moves at {:.3g} m/s"),
        (angular, DIVERGED_SPIN_RAD_S, "an object spins at {:.3g} rad/s"),
    )
    for values, limit, text in checks:
        if values is None:
            continue
        fastest = float(np.abs(values).max(initial=0.0))  # NaN propagates through max
        if not fastest <= limit:
            if not math.isfinite(fastest):
                return "a joint or object velocity is NaN or infinite"
            return f"{text.format(fastest)} (limit {limit:g})"
    if positions is not None and len(positions):
        farthest = float(np.sqrt((positions * positions).sum(axis=-1)).max())
        if not farthest <= DIVERGED_DISTANCE_M:
            if not math.isfinite(farthest):
                return "an object position is NaN or infinite"
            return f"an object is {farthest:.3g} m from the base (limit {DIVERGED_DISTANCE_M:g} m)"
    return None


def clip_norm(vec: FloatArray, max_norm: float) -> FloatArray:
    """``vec`` shortened to length ``max_norm`` if longer."""
    norm = math.sqrt(float(vec @ vec))
    return vec if norm <= max_norm else vec * (max_norm / norm)


class SimulatedPanda(Driver):
    """The scene contract: what tasks, experts, rewards and randomization may use of a
    simulated Panda, on top of the :class:`~robolearn.drivers.base.Driver` contract (``spec``,
    ``read``, ``command``, ``now``, and ``wait``, the control step, which steps physics).
    Every simulator backend subclasses it.

    Objects and markers are named in the :class:`SceneConfig` the driver was built with; an
    unknown name is a ConfigError naming the known ones.
    """

    scene: SceneConfig
    backend: str
    """One of :data:`BACKENDS`."""

    @property
    @abc.abstractmethod
    def physics_dt(self) -> float:
        """One physics step (s); ``wait`` advances whole steps."""

    @abc.abstractmethod
    def reset_robot(self, q: FloatArray, gripper_width: float = MAX_GRIPPER_WIDTH) -> None:
        """Reset the simulation: time 0, the arm at ``q`` at rest under position control, the
        gripper at ``gripper_width``, objects back at rest where the scene put them (tasks
        place them afterwards)."""

    @abc.abstractmethod
    def read_proprio(self) -> RobotState:
        """The robot's state without rendering any camera."""

    @abc.abstractmethod
    def ee_pose(self) -> tuple[FloatArray, FloatArray]:
        """End-effector position (3,) and quaternion (4,)."""

    @abc.abstractmethod
    def joint_positions(self) -> FloatArray:
        """Arm joint positions (7,)."""

    @abc.abstractmethod
    def gripper_width(self) -> float:
        """Current finger opening (m)."""

    @abc.abstractmethod
    def object_pose(self, name: str) -> tuple[FloatArray, FloatArray]:
        """Position (3,) and quaternion (4,) of an object or marker."""

    @abc.abstractmethod
    def object_velocity(self, name: str) -> FloatArray:
        """Linear (3,) then angular (3,) velocity of a free object, world frame."""

    @abc.abstractmethod
    def set_object_pose(self, name: str, pos: FloatArray, quat: FloatArray) -> None:
        """Place a free object at rest."""

    @abc.abstractmethod
    def set_object_velocity(self, name: str, linear: FloatArray, angular: FloatArray) -> None:
        """Set a free object's world-frame velocity."""

    @abc.abstractmethod
    def set_marker(self, name: str, pos: FloatArray) -> None:
        """Move a visual marker (a goal)."""

    @abc.abstractmethod
    def in_contact(self, body_a: str, body_b: str) -> bool:
        """Whether two bodies touch now: objects, :data:`TABLE`, or Panda links
        (``panda_hand``, ``panda_leftfinger``, …)."""

    @abc.abstractmethod
    def camera_pose(self, name: str) -> tuple[FloatArray, FloatArray]:
        """Extrinsics of a scene camera now: position (3,) and quaternion (4,) of its frame
        in the world, OpenGL convention (looking along -z, y up)."""

    @abc.abstractmethod
    def randomization_targets(self) -> dict[str, list[str]]:
        """Names of what domain randomization varies, per kind, in the order of its draws:
        ``links`` (robot links with mass), ``geoms`` (colliding shapes), ``dofs`` (robot
        joints), ``servos`` (position servos, arm then gripper), ``objects``, ``cameras``,
        ``lights``, ``colours`` (visible shapes and materials)."""

    @abc.abstractmethod
    def set_randomization(self, draws: Mapping[str, np.ndarray]) -> None:
        """The scene at nominal × ``draws`` from the next reset on (``{}``: nominal). Keys
        are :class:`~robolearn.envs.randomization.DomainRandomizationConfig` parameters, each
        with one value per element of its kind in :meth:`randomization_targets` (``(n, 3)``
        for position/colour offsets and camera rotation vectors)."""

    @abc.abstractmethod
    def render_frame(self, camera: str, height: int, width: int) -> np.ndarray:
        """One RGB frame (H, W, 3) uint8 of a scene camera at any size (``env.render()``)."""

    @abc.abstractmethod
    def physics_fault(self) -> str | None:
        """Why the simulation can no longer be trusted (its solver produced NaN, reset itself,
        or moves joints or objects at speeds no real scene reaches), or None. Envs check it
        every step and raise :class:`~robolearn.core.types.PhysicsDivergedError`."""


def make_simulated_panda(
    backend: str,
    scene: SceneConfig | None = None,
    cameras: tuple[CameraRequest, ...] = (),
    control_hz: float = 20.0,
    realtime: bool = False,
) -> SimulatedPanda:
    """The simulated Panda of ``backend`` (one of :data:`BACKENDS`), unconnected."""
    if backend == "mujoco":
        from robolearn.drivers.mujoco_panda import MujocoPandaDriver

        return MujocoPandaDriver(scene, cameras=cameras, control_hz=control_hz, realtime=realtime)
    if backend == "pybullet":
        from robolearn.drivers.pybullet_panda import PybulletPandaDriver

        return PybulletPandaDriver(scene, cameras=cameras, control_hz=control_hz, realtime=realtime)
    raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
