"""Two Dynamixel arms as one 14-DoF robot: ALOHA's bimanual follower pair.

ALOHA's state and action are 14 numbers: for the left arm, then the right arm, six joint
angles (rad) and the gripper opening normalised to [0, 1]. :class:`BimanualArm` presents
two :class:`~robolearn.drivers.dynamixel.arm.DynamixelArm` drivers (one serial port each) that way:
the spec's joints are ``left_<joint>…, left_gripper, right_<joint>…, right_gripper``, where
a ``*_gripper`` entry is the opening fraction (0 closed … 1 open, unitless; velocity limit
in 1/s, effort = the gripper's force in N), mapped onto each gripper's width range.
``spec.gripper`` is ``None``: the grippers are commanded through ``joint_position`` like
the joints. A gripper entry's ``dq`` and ``tau`` read 0 (not measured).
"""

from __future__ import annotations

import numpy as np

from robolearn.core.types import (
    Command,
    ConfigError,
    ControlMode,
    DriverError,
    JointSpec,
    RobotSpec,
    RobotState,
    require_finite,
)
from robolearn.drivers.base import Driver
from robolearn.drivers.dynamixel.arm import IDENTITY_QUAT, DynamixelArm


class BimanualArm(Driver):
    """A left and a right arm behind one driver (see the module doc)."""

    def __init__(self, left: DynamixelArm, right: DynamixelArm, name: str = "aloha") -> None:
        super().__init__()
        if left.port == right.port:
            raise ConfigError(f"the left and right arms cannot share one port ({left.port})")
        self.left, self.right = left, right
        self.arms = (left, right)
        self._spec = RobotSpec(
            name=name,
            joints=(*_joints("left", left), *_joints("right", right)),
            control_modes=frozenset({ControlMode.JOINT_POSITION}),
            control_hz=min(a.spec.control_hz for a in self.arms),
            max_control_hz=min(a.spec.max_control_hz for a in self.arms),
        )
        self._sizes = [a.spec.dof + (a.spec.gripper is not None) for a in self.arms]

    @property
    def spec(self) -> RobotSpec:
        """Both arms' joints and gripper openings, left then right (see the module doc)."""
        return self._spec

    def _connect(self) -> None:
        self.left.connect()
        try:
            self.right.connect()
        except BaseException:
            self.left.disconnect()
            raise

    def _disconnect(self) -> None:
        try:
            self.left.disconnect()
        finally:
            self.right.disconnect()

    def _read(self) -> RobotState:
        states = [a.read() for a in self.arms]
        pairs = list(zip(self.arms, states, strict=True))
        positions = [_with_gripper(a, s.q, a.gripper_fraction) for a, s in pairs]
        velocities = [_with_gripper(a, s.dq, 0.0) for a, s in pairs]
        torques = [_with_gripper(a, s.tau, 0.0) for a, s in pairs]
        return RobotState(
            timestamp=max(s.timestamp for s in states),
            q=np.concatenate(positions),
            dq=np.concatenate(velocities),
            tau=np.concatenate(torques),
            ee_pos=np.zeros(3),
            ee_quat=IDENTITY_QUAT.copy(),
        )

    def _command(self, cmd: Command) -> Command:
        target = require_finite("joint_position", cmd.joint_position, (self._spec.dof,))
        applied = np.clip(target, self._spec.limits("lower"), self._spec.limits("upper"))
        left_part, right_part = np.split(applied, [self._sizes[0]])
        try:
            for arm, part in ((self.left, left_part), (self.right, right_part)):
                arm.command(_arm_command(arm, part))
        except DriverError as exc:
            raise DriverError(f"{self._spec.name}: {exc}") from exc
        return Command(ControlMode.JOINT_POSITION, joint_position=applied)


def _joints(side: str, arm: DynamixelArm) -> list[JointSpec]:
    """``arm``'s joints prefixed with ``side``, plus its gripper as an opening-fraction joint."""
    joints = [
        JointSpec(f"{side}_{j.name}", j.lower, j.upper, j.max_velocity, j.max_effort)
        for j in arm.spec.joints
    ]
    gripper = arm.spec.gripper
    if gripper is not None:
        speed = arm.gripper_speed_m_s / (gripper.max_width - gripper.min_width)  # (1/s)
        joints.append(JointSpec(f"{side}_gripper", 0.0, 1.0, speed, gripper.max_force))
    return joints


def _with_gripper(arm: DynamixelArm, values: np.ndarray, gripper_value: float) -> np.ndarray:
    """``values`` (dof,) with the gripper's entry appended when the arm has a gripper."""
    if arm.spec.gripper is None:
        return np.asarray(values, dtype=np.float64)
    return np.append(values, gripper_value)


def _arm_command(arm: DynamixelArm, part: np.ndarray) -> Command:
    """One arm's command from its slice of the bimanual joint vector."""
    gripper = arm.spec.gripper
    if gripper is None:
        return Command(ControlMode.JOINT_POSITION, joint_position=part)
    width = gripper.min_width + float(part[-1]) * (gripper.max_width - gripper.min_width)
    return Command(ControlMode.JOINT_POSITION, joint_position=part[:-1], gripper_width=width)
