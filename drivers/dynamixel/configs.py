"""Ready-made Dynamixel arms: ALOHA (ViperX 300 S followers, WidowX 250 S leaders) and Koch v1.1.

An :class:`ArmConfig` says which servo (ID, model, mounting direction) drives which joint,
which motors are *shadows* (a second motor on the same joint, coupled mechanically and
following its primary through the Secondary ID register, as on ALOHA's shoulders and
elbows), how the gripper maps onto an opening width, and how the joints are driven.
Per-arm numbers that depend on assembly (homing offsets, ranges) live in the calibration
(:mod:`robolearn.drivers.dynamixel.calibration`), not here.

Motor IDs and models are those the ALOHA and Koch builds use (the same as LeRobot's
configs): a ViperX 300 S has XM540-W270s on waist, shoulder (×2), elbow (×2), forearm roll
and wrist angle and XM430-W350s on wrist rotate and gripper; a WidowX 250 S leader has
XM430-W350s, an XL430-W250 on wrist rotate and an XC430-W150 in the handle.

Joints run in position mode (3) with the calibrated range as the servo's own position
limits: calibration centres each joint's middle pose on tick 2048, so a range below one turn
never wraps (the reason other stacks fall back to extended-position mode). Follower grippers
run in current-based position mode (5), so a grasp squeezes with a bounded current.

Gripper widths and forces are nominal (measure your fingers and pass a changed config).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from robolearn.core.types import ConfigError
from robolearn.drivers.dynamixel.control_table import OperatingMode, model

Role = Literal["follower", "leader"]


@dataclass(frozen=True)
class MotorConfig:
    """One servo of an arm."""

    name: str
    id: int
    model: str
    reversed: bool = False
    """Mounted so that the joint's positive direction turns the horn clockwise: Drive Mode's
    reverse bit is set."""
    shadow_of: str | None = None
    """The primary motor this one doubles (same joint, coupled shafts)."""


@dataclass(frozen=True)
class GripperConfig:
    """The gripper (follower) or handle (leader) motor and how its ticks map to an opening."""

    motor: str
    width_range_m: tuple[float, float] | None = None
    """(closed, open) finger opening in m; ``None`` for a leader's handle, read only as an
    opening fraction."""
    max_force_n: float = 10.0
    opens_toward_higher_ticks: bool = True
    """Whether a larger Present Position means a wider opening (after calibration)."""
    operating_mode: OperatingMode = OperatingMode.POSITION
    current_limit: int | None = None
    """Current Limit to write (raw units); ``None`` keeps the servo's."""
    goal_current: int | None = None
    """Goal Current in current-based position mode (raw units): the squeeze."""
    trigger_fraction: float | None = None
    """Leaders only: hold the handle at this opening fraction with a weak spring (torque on,
    current-based position at ``goal_current``), so it opens again when released."""


@dataclass(frozen=True)
class ArmConfig:
    """A Dynamixel arm: servos, joints, gripper, bus and rates."""

    name: str
    description: str
    role: Role
    motors: tuple[MotorConfig, ...]
    joints: tuple[str, ...]
    """Motor names of the arm joints, base to wrist (shadows and the gripper excluded)."""
    gripper: GripperConfig | None = None
    baud: int = 1_000_000
    joint_mode: OperatingMode = OperatingMode.POSITION
    velocity_limit: int | None = None
    """Velocity Limit to write to every motor (0.229 rpm units); ``None`` keeps the servo's."""
    return_delay_time: int = 0
    """Return Delay Time to write (2 µs units; the factory 250 = 0.5 ms slows every read)."""
    control_hz: float = 50.0
    max_control_hz: float = 100.0
    middle_pose: str = "every joint in the middle of its range"
    """How the arm looks in its middle pose, the calibration's reference (joint angle 0)."""

    def __post_init__(self) -> None:
        names = [m.name for m in self.motors]
        ids = [m.id for m in self.motors]
        if len(set(names)) != len(names) or len(set(ids)) != len(ids):
            raise ConfigError(f"{self.name}: motor names and IDs must be unique: {self.motors}")
        for m in self.motors:
            model(m.model)  # ConfigError for an unknown model
            if m.shadow_of is not None and m.shadow_of not in self.joints:
                raise ConfigError(f"{self.name}: {m.name} shadows {m.shadow_of!r}, not a joint")
        for joint in self.joints:
            self._check_mode(self.motor(joint), self.joint_mode)
        if self.gripper is not None:
            self._check_mode(self.motor(self.gripper.motor), self.gripper.operating_mode)
        if not 0 < self.control_hz <= self.max_control_hz:
            raise ConfigError(f"{self.name}: need 0 < control_hz <= max_control_hz")

    def _check_mode(self, motor: MotorConfig, mode: OperatingMode) -> None:
        if mode not in model(motor.model).operating_modes:
            raise ConfigError(
                f"{self.name}: {motor.name} is a {motor.model}, which has no {mode.name} mode"
            )

    def motor(self, name: str) -> MotorConfig:
        """The motor called ``name``; :class:`ConfigError` if there is none."""
        for m in self.motors:
            if m.name == name:
                return m
        raise ConfigError(f"{self.name} has no motor {name!r}; motors: {self.motor_names}")

    @property
    def motor_names(self) -> tuple[str, ...]:
        """Every motor's name, in config order."""
        return tuple(m.name for m in self.motors)

    def shadows(self, joint: str) -> tuple[MotorConfig, ...]:
        """The shadow motors of ``joint`` (empty for a single-motor joint)."""
        return tuple(m for m in self.motors if m.shadow_of == joint)

    @property
    def primaries(self) -> tuple[MotorConfig, ...]:
        """The motors the driver reads and commands: joints in order, then the gripper."""
        names = [*self.joints, *([self.gripper.motor] if self.gripper else [])]
        return tuple(self.motor(n) for n in names)

    def mode_of(self, motor: MotorConfig) -> OperatingMode:
        """The operating mode ``motor`` runs in (a shadow runs in its primary's mode)."""
        if self.gripper is not None and motor.name == self.gripper.motor:
            return self.gripper.operating_mode
        return self.joint_mode

    def renamed(self, name: str) -> ArmConfig:
        """The same arm under another name (one per physical arm: left/right, leader/...)."""
        return replace(self, name=name)


def _motors(*specs: tuple[str, int, str] | tuple[str, int, str, str]) -> tuple[MotorConfig, ...]:
    """Motors from (name, id, model[, shadowed joint]); shadows are mounted mirrored."""
    out = []
    for spec in specs:
        shadow_of = spec[3] if len(spec) == 4 else None
        out.append(MotorConfig(spec[0], spec[1], spec[2], shadow_of is not None, shadow_of))
    return tuple(out)


ALOHA_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
ALOHA_MIDDLE_POSE = (
    "waist facing forward, upper arm vertical, forearm horizontal and pointing forward, "
    "forearm roll and wrist rotate level, wrist straight, gripper half open"
)

VIPERX_300S = ArmConfig(
    name="viperx-300s",
    description="Trossen ViperX 300 S 6-DoF arm (ALOHA follower) with its gripper",
    role="follower",
    motors=_motors(
        ("waist", 1, "xm540-w270"),
        ("shoulder", 2, "xm540-w270"),
        ("shoulder_shadow", 3, "xm540-w270", "shoulder"),
        ("elbow", 4, "xm540-w270"),
        ("elbow_shadow", 5, "xm540-w270", "elbow"),
        ("forearm_roll", 6, "xm540-w270"),
        ("wrist_angle", 7, "xm540-w270"),
        ("wrist_rotate", 8, "xm430-w350"),
        ("gripper", 9, "xm430-w350"),
    ),
    joints=ALOHA_JOINTS,
    gripper=GripperConfig(
        "gripper",
        width_range_m=(0.0, 0.08),
        max_force_n=30.0,
        operating_mode=OperatingMode.CURRENT_BASED_POSITION,
        current_limit=600,
        goal_current=600,
    ),
    velocity_limit=131,  # Trossen's advice for the ViperX
    middle_pose=ALOHA_MIDDLE_POSE,
)

WIDOWX_250S_LEADER = ArmConfig(
    name="widowx-250s-leader",
    description="Trossen WidowX 250 S with ALOHA's handle (the leader arm)",
    role="leader",
    motors=_motors(
        ("waist", 1, "xm430-w350"),
        ("shoulder", 2, "xm430-w350"),
        ("shoulder_shadow", 3, "xm430-w350", "shoulder"),
        ("elbow", 4, "xm430-w350"),
        ("elbow_shadow", 5, "xm430-w350", "elbow"),
        ("forearm_roll", 6, "xm430-w350"),
        ("wrist_angle", 7, "xm430-w350"),
        ("wrist_rotate", 8, "xl430-w250"),
        ("gripper", 9, "xc430-w150"),
    ),
    joints=ALOHA_JOINTS,
    gripper=GripperConfig("gripper"),
    middle_pose=ALOHA_MIDDLE_POSE.replace("gripper half open", "handle half squeezed"),
)

KOCH_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
KOCH_MIDDLE_POSE = (
    "base facing forward, upper arm vertical, forearm horizontal pointing forward, wrist "
    "straight and level, gripper half open"
)

KOCH_FOLLOWER = ArmConfig(
    name="koch-follower",
    description="Koch v1.1 follower arm (XL430-W250 shoulder, XL330-M288 elsewhere)",
    role="follower",
    motors=_motors(
        ("shoulder_pan", 1, "xl430-w250"),
        ("shoulder_lift", 2, "xl430-w250"),
        ("elbow_flex", 3, "xl330-m288"),
        ("wrist_flex", 4, "xl330-m288"),
        ("wrist_roll", 5, "xl330-m288"),
        ("gripper", 6, "xl330-m288"),
    ),
    joints=KOCH_JOINTS,
    gripper=GripperConfig(
        "gripper",
        width_range_m=(0.0, 0.05),
        max_force_n=8.0,
        operating_mode=OperatingMode.CURRENT_BASED_POSITION,
        current_limit=500,
        goal_current=500,
    ),
    control_hz=30.0,
    middle_pose=KOCH_MIDDLE_POSE,
)

KOCH_LEADER = ArmConfig(
    name="koch-leader",
    description="Koch v1.1 leader arm (XL330-M077 throughout, the gripper is a trigger)",
    role="leader",
    motors=_motors(
        ("shoulder_pan", 1, "xl330-m077"),
        ("shoulder_lift", 2, "xl330-m077"),
        ("elbow_flex", 3, "xl330-m077"),
        ("wrist_flex", 4, "xl330-m077"),
        ("wrist_roll", 5, "xl330-m077"),
        ("gripper", 6, "xl330-m077"),
    ),
    joints=KOCH_JOINTS,
    gripper=GripperConfig(
        "gripper",
        operating_mode=OperatingMode.CURRENT_BASED_POSITION,
        goal_current=100,
        trigger_fraction=0.9,
    ),
    control_hz=30.0,
    middle_pose=KOCH_MIDDLE_POSE.replace("gripper half open", "trigger half pulled"),
)


@dataclass(frozen=True)
class BimanualConfig:
    """Two leader/follower pairs: ALOHA's 14-DoF bimanual setup (6 joints + gripper per arm)."""

    name: str
    left_follower: ArmConfig
    right_follower: ArmConfig
    left_leader: ArmConfig
    right_leader: ArmConfig
    ports: dict[str, str] = field(default_factory=dict)
    """Conventional port names by arm name (udev symlinks of the ALOHA build)."""

    @property
    def arms(self) -> tuple[ArmConfig, ...]:
        """Left follower, right follower, left leader, right leader."""
        return (self.left_follower, self.right_follower, self.left_leader, self.right_leader)


ALOHA = BimanualConfig(
    name="aloha",
    left_follower=VIPERX_300S.renamed("aloha-left-follower"),
    right_follower=VIPERX_300S.renamed("aloha-right-follower"),
    left_leader=WIDOWX_250S_LEADER.renamed("aloha-left-leader"),
    right_leader=WIDOWX_250S_LEADER.renamed("aloha-right-leader"),
    ports={
        "aloha-left-follower": "/dev/ttyDXL_follower_left",
        "aloha-right-follower": "/dev/ttyDXL_follower_right",
        "aloha-left-leader": "/dev/ttyDXL_leader_left",
        "aloha-right-leader": "/dev/ttyDXL_leader_right",
    },
)

ARMS: dict[str, ArmConfig] = {
    a.name: a for a in (VIPERX_300S, WIDOWX_250S_LEADER, KOCH_FOLLOWER, KOCH_LEADER, *ALOHA.arms)
}
"""Every ready-made arm by name (``robolearn calibrate --robot NAME``)."""


def arm_config(name: str) -> ArmConfig:
    """The ready-made arm called ``name``; :class:`ConfigError` listing the names if unknown."""
    try:
        return ARMS[name]
    except KeyError:
        raise ConfigError(f"unknown arm {name!r}; ready-made arms: {', '.join(ARMS)}") from None
