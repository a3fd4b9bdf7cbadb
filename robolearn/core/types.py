"""Shared types: robot specs, states, commands and the package's exceptions.

Everything in robolearn may import this module; it imports nothing of robolearn.
Units are SI throughout (m, rad, s, N, N·m). Quaternions are (w, x, y, z).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class RobolearnError(Exception):
    """Base class of every error robolearn raises on purpose."""


class ConfigError(RobolearnError, ValueError):
    """A configuration, spec or argument is invalid; the message says how to fix it."""


class CommandError(RobolearnError, ValueError):
    """A command or action is malformed (wrong shape, NaN/inf, unsupported mode)."""


class DriverError(RobolearnError, RuntimeError):
    """A driver cannot do what was asked (not connected, device gone, fault)."""


class PhysicsDivergedError(DriverError):
    """A simulator's solver blew up (NaN, or speeds no real scene reaches): the episode
    cannot go on, and nothing it observes from now on may reach a policy."""


class ControlMode(str, enum.Enum):
    """How a command drives the arm."""

    JOINT_POSITION = "joint_position"
    """Absolute joint targets (rad), tracked by the robot's position controller."""
    JOINT_IMPEDANCE = "joint_impedance"
    """Joint targets with per-joint stiffness (N·m/rad) and damping (N·m·s/rad)."""
    JOINT_TORQUE = "joint_torque"
    """Joint torques (N·m) on top of the robot's own gravity compensation."""
    EE_DELTA = "ee_delta"
    """End-effector position (m) and rotation (axis-angle, rad) deltas in the base frame,
    solved to joint targets by differential inverse kinematics."""


@dataclass(frozen=True)
class JointSpec:
    """One actuated joint with its limits in SI units."""

    name: str
    lower: float
    """Position lower limit (rad or m)."""
    upper: float
    """Position upper limit (rad or m)."""
    max_velocity: float
    """Velocity limit (rad/s or m/s)."""
    max_effort: float
    """Torque or force limit (N·m or N)."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` × ``height``."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def matrix(self) -> FloatArray:
        """The 3×3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CameraSpec:
    """A camera a driver can return frames from."""

    name: str
    intrinsics: CameraIntrinsics
    depth: bool = False
    """Whether a metric depth image (m, float32) accompanies the RGB frame."""
    fps: float = 30.0


@dataclass(frozen=True)
class GripperSpec:
    """A parallel gripper commanded by opening width."""

    min_width: float
    max_width: float
    max_force: float


@dataclass(frozen=True)
class RobotSpec:
    """What a driver offers: joints, limits, control modes, cameras, rates."""

    name: str
    joints: tuple[JointSpec, ...]
    control_modes: frozenset[ControlMode]
    control_hz: float
    """Nominal control rate."""
    max_control_hz: float
    """Highest rate at which ``command`` may be called."""
    cameras: tuple[CameraSpec, ...] = ()
    gripper: GripperSpec | None = None

    @property
    def dof(self) -> int:
        """Number of arm joints (the gripper excluded)."""
        return len(self.joints)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    def limits(self, attr: str) -> FloatArray:
        """A per-joint array of one limit, e.g. ``spec.limits("upper")``."""
        return np.array([getattr(j, attr) for j in self.joints], dtype=np.float64)

    def camera(self, name: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        known = ", ".join(c.name for c in self.cameras) or "none"
        raise ConfigError(f"unknown camera {name!r}; this robot has: {known}")


@dataclass
class RobotState:
    """A timestamped reading of the robot (and its cameras)."""

    timestamp: float
    """Seconds on the driver's clock (simulation time in sim, monotonic time on hardware)."""
    q: FloatArray
    """Joint positions (dof,)."""
    dq: FloatArray
    """Joint velocities (dof,)."""
    tau: FloatArray
    """Measured or applied joint torques (dof,)."""
    ee_pos: FloatArray
    """End-effector position in the base frame (3,)."""
    ee_quat: FloatArray
    """End-effector orientation in the base frame, (w, x, y, z)."""
    gripper_width: float = 0.0
    images: dict[str, NDArray[np.uint8]] = field(default_factory=dict)
    """RGB frames by camera name, (H, W, 3) uint8."""
    depths: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    """Metric depth by camera name, (H, W) float32 in metres."""


@dataclass(frozen=True, eq=False)
class Command:
    """One command to a driver. Fields that a mode does not use stay ``None``.

    ``driver.command(cmd)`` returns the command actually applied: clipped to the limits,
    and for ``EE_DELTA`` with ``joint_position`` filled by the inverse kinematics.
    """

    mode: ControlMode
    joint_position: FloatArray | None = None
    """Joint targets (dof,) in rad for JOINT_POSITION / JOINT_IMPEDANCE."""
    joint_torque: FloatArray | None = None
    """Torques (dof,) in N·m for JOINT_TORQUE (feed-forward for JOINT_IMPEDANCE)."""
    stiffness: FloatArray | None = None
    """Per-joint stiffness (dof,) for JOINT_IMPEDANCE."""
    damping: FloatArray | None = None
    """Per-joint damping (dof,) for JOINT_IMPEDANCE."""
    ee_delta_pos: FloatArray | None = None
    """Position delta (3,) in m, base frame, for EE_DELTA."""
    ee_delta_rot: FloatArray | None = None
    """Rotation delta (3,) as axis-angle in rad, base frame, for EE_DELTA."""
    gripper_width: float | None = None
    """Gripper opening target in m; ``None`` keeps the last one."""

    def with_(self, **changes: object) -> Command:
        """A copy with some fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """The fields that are set, with ``mode`` as its string value (for logs and infos)."""
        out: dict[str, object] = {"mode": self.mode.value}
        for name in (
            "joint_position",
            "joint_torque",
            "stiffness",
            "damping",
            "ee_delta_pos",
            "ee_delta_rot",
            "gripper_width",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def require_finite(name: str, value: FloatArray | None, shape: tuple[int, ...]) -> FloatArray:
    """``value`` as float64 of ``shape``; CommandError if missing, misshapen or not finite."""
    if value is None:
        raise CommandError(f"{name} is required for this control mode")
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise CommandError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise CommandError(f"{name} contains NaN or inf: {arr.tolist()}")
    return arr
