"""What a Franka arm is (joint limits, the hand, the spec) and how to reach it (FrankaConfig)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from robolearn.core.types import ConfigError, ControlMode, GripperSpec, JointSpec, RobotSpec

FCI_PORT = 1337
"""TCP port of libfranka's robot protocol (the Franka Hand's is 1338)."""
LIBFRANKA_HZ = 1000.0
"""libfranka's control rate: the highest rate at which targets can matter."""

FR3_JOINTS = (
    JointSpec("fr3_joint1", -2.7437, 2.7437, 2.62, 87.0),
    JointSpec("fr3_joint2", -1.7837, 1.7837, 2.62, 87.0),
    JointSpec("fr3_joint3", -2.9007, 2.9007, 2.62, 87.0),
    JointSpec("fr3_joint4", -3.0421, -0.1518, 2.62, 87.0),
    JointSpec("fr3_joint5", -2.8065, 2.8065, 5.26, 12.0),
    JointSpec("fr3_joint6", 0.5445, 4.5169, 4.18, 12.0),
    JointSpec("fr3_joint7", -3.0159, 3.0159, 5.26, 12.0),
)
"""Franka Research 3 joint limits (rad, rad/s, N·m) from Franka's datasheet."""
FR3_READY_Q: tuple[float, ...] = (
    0.0,
    -math.pi / 4,
    0.0,
    -3 * math.pi / 4,
    0.0,
    math.pi / 2,
    math.pi / 4,
)
"""libfranka's "ready" pose (rad): elbow up, the hand pointing down in front of the base."""
PANDA_JOINTS = (
    JointSpec("panda_joint1", -2.8973, 2.8973, 2.175, 87.0),
    JointSpec("panda_joint2", -1.7628, 1.7628, 2.175, 87.0),
    JointSpec("panda_joint3", -2.8973, 2.8973, 2.175, 87.0),
    JointSpec("panda_joint4", -3.0718, -0.0698, 2.175, 87.0),
    JointSpec("panda_joint5", -2.8973, 2.8973, 2.61, 12.0),
    JointSpec("panda_joint6", -0.0175, 3.7525, 2.61, 12.0),
    JointSpec("panda_joint7", -2.8973, 2.8973, 2.61, 12.0),
)
"""Franka Emika Panda joint limits (rad, rad/s, N·m) from Franka's datasheet."""
HAND = GripperSpec(min_width=0.0, max_width=0.08, max_force=70.0)
"""The Franka Hand: 0–80 mm opening, 70 N continuous grasping force."""


@dataclass(frozen=True)
class FrankaConfig:
    """How to reach and drive a Franka arm through franky."""

    host: str = "172.16.0.2"
    """IP or hostname of the robot's FCI interface (franky-sim prints its loopback address)."""
    model: Literal["fr3", "panda"] = "fr3"
    """Which arm: joint limits of the Franka Research 3 or of the Franka Emika Panda."""
    gripper: bool = True
    """Whether a Franka Hand is mounted and commanded."""
    dynamics_factor: float = 0.2
    """franky's relative dynamics factor in (0, 1]: scales the velocity, acceleration and jerk
    limits of every motion (1 = the robot's maximum)."""
    realtime: Literal["enforce", "ignore"] = "enforce"
    """libfranka's realtime check: "enforce" refuses a kernel without realtime scheduling (use
    it on the real robot); "ignore" runs anyway (franky-sim, tests)."""
    auto_recover: bool = False
    """Call libfranka's automatic error recovery after a control error or reflex and go on."""
    max_recoveries: int = 3
    """With auto_recover: recoveries allowed per connection before errors are raised again."""
    control_hz: float = 50.0
    """Nominal rate at which targets are streamed."""
    connect_timeout_s: float = 3.0
    """How long connecting may take before the robot is reported as not answering."""
    state_timeout_s: float = 0.5
    """No new robot state for this long means the connection is lost."""
    stop_timeout_s: float = 3.0
    """How long stopping a motion (mode switch, disconnect) may take."""
    gripper_timeout_s: float = 5.0
    """How long disconnect waits for a running hand command."""
    gripper_speed_mps: float = 0.1
    """Finger speed of hand moves and grasps."""
    gripper_force_n: float = 20.0
    """Grasping force when the hand closes."""
    collision_torque_nm: float = 20.0
    """Joint torque threshold of libfranka's collision reflex."""
    collision_force_n: float = 30.0
    """End-effector force threshold of libfranka's collision reflex."""

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("host must name the robot's FCI address, e.g. 172.16.0.2")
        if not (math.isfinite(self.dynamics_factor) and 0 < self.dynamics_factor <= 1):
            raise ConfigError(f"dynamics_factor must lie in (0, 1], got {self.dynamics_factor}")
        if not (math.isfinite(self.control_hz) and 0 < self.control_hz <= LIBFRANKA_HZ):
            raise ConfigError(
                f"control_hz must lie in (0, {LIBFRANKA_HZ:g}] (libfranka's rate), "
                f"got {self.control_hz}"
            )
        if self.max_recoveries < 0:
            raise ConfigError(f"max_recoveries must be >= 0, got {self.max_recoveries}")
        if not 0 < self.gripper_force_n <= HAND.max_force:
            raise ConfigError(
                f"gripper_force_n must lie in (0, {HAND.max_force:g}] N, got {self.gripper_force_n}"
            )
        for name in _POSITIVE_FIELDS:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}")


_POSITIVE_FIELDS = (
    "connect_timeout_s",
    "state_timeout_s",
    "stop_timeout_s",
    "gripper_timeout_s",
    "gripper_speed_mps",
    "collision_torque_nm",
    "collision_force_n",
)


def franka_spec(config: FrankaConfig) -> RobotSpec:
    """The :class:`RobotSpec` of the arm ``config`` describes."""
    return RobotSpec(
        name=f"franka_{config.model}",
        joints=FR3_JOINTS if config.model == "fr3" else PANDA_JOINTS,
        control_modes=frozenset(
            {ControlMode.JOINT_POSITION, ControlMode.JOINT_IMPEDANCE, ControlMode.EE_DELTA}
        ),
        control_hz=config.control_hz,
        max_control_hz=LIBFRANKA_HZ,
        gripper=HAND if config.gripper else None,
    )
