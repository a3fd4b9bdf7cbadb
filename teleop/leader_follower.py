"""A leader arm as a teleop device: the follower mirrors the leader's joints and gripper.

ALOHA and Koch teleoperate a follower arm with a kinematically identical *leader* arm that
a person moves by hand. Both arms are calibrated to the same middle pose
(:mod:`robolearn.drivers.dynamixel.calibration`), so the leader's joint angles are the follower's
joint targets as they are. :class:`LeaderFollowerTeleop` reads the leader once per control
step (one sync read; its joints are limp, a Koch trigger stays sprung) and returns a
:class:`~robolearn.teleop.base.TeleopCommand` with

* ``joint_targets``: the leader's joint angles (rad), clipped to the follower's limits when
  the follower's spec is known;
* ``gripper``: the leader handle's opening fraction over its calibrated range (0 closed,
  1 open), which :meth:`LeaderFollowerTeleop.follower_command` (or
  :func:`robolearn.teleop.actions.to_action`) maps onto the follower gripper's width range.

A leader arm has no buttons: session events come from another device (the keyboard),
combined by the recorder. Registry name: ``"leader_arm"``.

:class:`BimanualLeaderFollower` pairs two such devices for ALOHA (registry name
``"aloha_leaders"``, for ``--robot aloha``): its joint targets follow
:class:`~robolearn.drivers.dynamixel.bimanual.BimanualArm`'s 14-entry layout (each arm's joints,
then
its gripper's opening fraction).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robolearn.core.types import Command, ConfigError, ControlMode, RobotSpec
from robolearn.drivers.dynamixel.arm import DynamixelArm
from robolearn.drivers.dynamixel.bimanual import BimanualArm
from robolearn.drivers.dynamixel.configs import ArmConfig, BimanualConfig
from robolearn.teleop.base import Obs, TeleopCommand, TeleopDevice


class LeaderFollowerTeleop(TeleopDevice):
    """Joint targets and gripper opening read from a leader :class:`DynamixelArm`.

    ``follower_spec`` (optional) clips the targets to the follower's joint limits and
    lets :meth:`follower_command` produce gripper widths; its joint count must match the
    leader's.
    """

    name = "leader_arm"
    produces = "joint"

    def __init__(self, leader: DynamixelArm, follower_spec: RobotSpec | None = None) -> None:
        super().__init__()
        if follower_spec is not None and follower_spec.dof != leader.spec.dof:
            raise ConfigError(
                f"leader {leader.spec.name} has {leader.spec.dof} joints but follower "
                f"{follower_spec.name} has {follower_spec.dof}; pair arms of the same kind"
            )
        self.leader = leader
        self.follower_spec = follower_spec
        self.last_command: TeleopCommand | None = None

    @classmethod
    def from_config(
        cls,
        leader: ArmConfig | str,
        port: str,
        follower_spec: RobotSpec | None = None,
        name: str | None = None,
        calibration_dir: Path | None = None,
    ) -> LeaderFollowerTeleop:
        """A device on the leader arm ``leader`` at ``port`` (calibration loaded from disk)."""
        arm = DynamixelArm(leader, port, name=name, calibration_dir=calibration_dir, torque=False)
        return cls(arm, follower_spec)

    def _open(self) -> None:
        self.leader.torque = False  # the person moves the joints; a trigger stays sprung
        self.leader.connect()

    def _close(self) -> None:
        self.leader.disconnect()

    def _read(self, obs: Obs | None) -> TeleopCommand:
        targets = self.leader.read().q
        if self.follower_spec is not None:
            spec = self.follower_spec
            targets = np.clip(targets, spec.limits("lower"), spec.limits("upper"))
        command = TeleopCommand(
            joint_targets=targets,
            gripper=self.leader.gripper_fraction,
            events=self.events.take(),
        )
        self.last_command = command
        return command

    def follower_command(self, command: TeleopCommand | None = None) -> Command:
        """The follower's ``JOINT_POSITION`` command for ``command`` (default: the last read):
        joint targets, and the handle's opening mapped onto the follower's width range."""
        spec = self.follower_spec
        if spec is None:
            raise ConfigError("follower_command needs the follower's spec: pass follower_spec")
        command = command or self.last_command or self.read()
        assert command.joint_targets is not None
        width = None
        if spec.gripper is not None:
            lo, hi = spec.gripper.min_width, spec.gripper.max_width
            width = lo + command.gripper * (hi - lo)
        return Command(
            ControlMode.JOINT_POSITION, joint_position=command.joint_targets, gripper_width=width
        )


class BimanualLeaderFollower(TeleopDevice):
    """Two leader arms driving a :class:`BimanualArm` (ALOHA): ``joint_targets`` holds, per
    arm, the joint targets then the handle's opening fraction (14 entries for ALOHA).
    ``gripper`` is unused (1.0): the fractions are inside ``joint_targets``.

    ``follower_spec`` (optional, the :class:`BimanualArm`'s spec) clips the targets to the
    follower's limits and lets :meth:`follower_command` work without the follower at hand;
    its joint count must match the leaders' layout. Registry name: ``"aloha_leaders"``
    (:meth:`from_config`).
    """

    name = "bimanual_leader_arms"
    produces = "joint"

    def __init__(
        self,
        left: LeaderFollowerTeleop,
        right: LeaderFollowerTeleop,
        follower_spec: RobotSpec | None = None,
    ) -> None:
        super().__init__()
        self.left, self.right = left, right
        size = sum(_layout_size(d.leader) for d in (left, right))
        if follower_spec is not None and follower_spec.dof != size:
            raise ConfigError(
                f"leaders {left.leader.spec.name} and {right.leader.spec.name} give {size} "
                f"targets but follower {follower_spec.name} has {follower_spec.dof} joints; "
                "pair leaders and followers of the same kind"
            )
        self.follower_spec = follower_spec

    @classmethod
    def from_config(
        cls,
        setup: BimanualConfig,
        left_port: str | None = None,
        right_port: str | None = None,
        calibration_dir: Path | None = None,
        follower_spec: RobotSpec | None = None,
    ) -> BimanualLeaderFollower:
        """The two leaders of ``setup`` (e.g. ``ALOHA``) at ``left_port``/``right_port``
        (default: the setup's conventional port names), calibrations loaded from disk."""
        leaders = [
            LeaderFollowerTeleop.from_config(
                config,
                port or setup.ports[config.name],
                calibration_dir=calibration_dir,
            )
            for config, port in ((setup.left_leader, left_port), (setup.right_leader, right_port))
        ]
        return cls(leaders[0], leaders[1], follower_spec)

    def _open(self) -> None:
        self.left.connect()
        try:
            self.right.connect()
        except BaseException:
            self.left.disconnect()
            raise

    def _close(self) -> None:
        try:
            self.left.disconnect()
        finally:
            self.right.disconnect()

    def _read(self, obs: Obs | None) -> TeleopCommand:
        parts = []
        for device in (self.left, self.right):
            command = device.read(obs)
            assert command.joint_targets is not None
            handle = [command.gripper] if device.leader.config.gripper is not None else []
            parts.append(np.append(command.joint_targets, handle))
        targets = np.concatenate(parts)  # (14,) for ALOHA
        if self.follower_spec is not None:
            spec = self.follower_spec
            targets = np.clip(targets, spec.limits("lower"), spec.limits("upper"))
        return TeleopCommand(joint_targets=targets, events=self.events.take())

    def follower_command(
        self, command: TeleopCommand | None = None, follower: BimanualArm | None = None
    ) -> Command:
        """The :class:`BimanualArm` command for ``command`` (default: a fresh read); the
        layout is checked against ``follower``'s spec, else ``follower_spec``'s."""
        command = command or self.read()
        assert command.joint_targets is not None
        spec = follower.spec if follower is not None else self.follower_spec
        if spec is not None and command.joint_targets.shape != (spec.dof,):
            size, dof = command.joint_targets.size, spec.dof
            raise ConfigError(f"{size} leader targets for a {dof}-DoF follower")
        return Command(ControlMode.JOINT_POSITION, joint_position=command.joint_targets)


def _layout_size(leader: DynamixelArm) -> int:
    """Entries a leader contributes to the bimanual layout: its joints and its handle."""
    return leader.spec.dof + (leader.config.gripper is not None)
