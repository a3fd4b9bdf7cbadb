"""Leader-follower teleoperation: a WidowX leader moved by hand drives a ViperX follower, both
on virtual buses and both through pyserial + dynamixel_sdk."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from robolearn.core.types import ConfigError
from robolearn.drivers.dynamixel import (
    ALOHA,
    KOCH_FOLLOWER,
    VIPERX_300S,
    WIDOWX_250S_LEADER,
    BimanualArm,
    DynamixelArm,
    symmetric_calibration,
)
from robolearn.drivers.dynamixel.control_table import CENTER_TICKS, rad_to_ticks
from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm
from robolearn.teleop.leader_follower import BimanualLeaderFollower, LeaderFollowerTeleop

HZ = 50.0
LEADER_JOINT_IDS = (1, 2, 4, 6, 7, 8)  # primaries: waist, shoulder, elbow, forearm, wrist x2
LEADER_GRIPPER_ID = 9


@pytest.fixture
def pair() -> Iterator[tuple[VirtualDynamixelBus, LeaderFollowerTeleop, DynamixelArm]]:
    """(the leader's virtual bus, the teleop device, the connected follower)."""
    leader_bus = VirtualDynamixelBus(servos_for_arm("widowx-250s-leader"))
    follower_bus = VirtualDynamixelBus(servos_for_arm("viperx-300s"))
    with leader_bus as leader_port, follower_bus as follower_port:
        calibration = symmetric_calibration(WIDOWX_250S_LEADER)
        leader = DynamixelArm(WIDOWX_250S_LEADER, leader_port, calibration)
        follower = DynamixelArm(VIPERX_300S, follower_port, symmetric_calibration(VIPERX_300S))
        with follower, LeaderFollowerTeleop(leader, follower.spec) as device:
            yield leader_bus, device, follower


def _leader_pose(t_s: float) -> np.ndarray:
    """The hand's path: every joint on its own sine, within ±0.6 rad."""
    phases = np.arange(6) * 0.7
    return 0.6 * np.sin(2.0 * np.pi * 0.5 * t_s + phases)


def _move_leader(bus: VirtualDynamixelBus, q: np.ndarray, gripper_ticks: float) -> None:
    ticks = {i: float(rad_to_ticks(float(a))) for i, a in zip(LEADER_JOINT_IDS, q, strict=True)}
    bus.move_by_hand({**ticks, LEADER_GRIPPER_ID: gripper_ticks})


def test_the_follower_mirrors_a_moving_leader(
    pair: tuple[VirtualDynamixelBus, LeaderFollowerTeleop, DynamixelArm],
) -> None:
    leader_bus, device, follower = pair
    assert not any(s.torque_enabled for s in leader_bus.servos), "the leader is limp"
    leader_q, follower_q = [], []
    steps = int(1.5 * HZ)
    for k in range(steps + 25):  # 1.5 s of motion, then 0.5 s holding the last pose
        t = min(k, steps) / HZ
        gripper_ticks = CENTER_TICKS - 1024 + 0.25 * 2048  # a quarter open
        _move_leader(leader_bus, _leader_pose(t), gripper_ticks)
        command = device.read()
        assert command.joint_targets is not None
        follower.command(device.follower_command(command))
        leader_q.append(command.joint_targets)
        follower_q.append(follower.read().q)
        follower.wait(1.0 / HZ)
    leader_arr, follower_arr = np.array(leader_q), np.array(follower_q)  # (T, 6)
    np.testing.assert_allclose(leader_arr[-1], _leader_pose(steps / HZ), atol=0.002)
    np.testing.assert_allclose(follower_arr[-1], leader_arr[-1], atol=0.01)
    settle = 10  # ticks to catch up with the leader's first pose (up to 0.6 rad away)
    for j in range(6):  # during the motion the follower tracks, a tick or two behind
        lagged_error = np.abs(follower_arr[settle:steps, j] - leader_arr[settle - 2 : steps - 2, j])
        assert lagged_error.max() < 0.1, (j, lagged_error.max())
        assert np.ptp(follower_arr[:steps, j]) > 0.8, "the follower really moved"
    assert device.leader.gripper_fraction == pytest.approx(0.25, abs=1e-3)
    assert follower.read().gripper_width == pytest.approx(0.25 * 0.08, abs=0.002)


def test_targets_are_clipped_to_the_follower_limits(
    pair: tuple[VirtualDynamixelBus, LeaderFollowerTeleop, DynamixelArm],
) -> None:
    leader_bus, device, follower = pair
    leader_bus.move_by_hand({1: CENTER_TICKS + 1024})  # waist at the leader's +90°
    narrower = follower.spec.joints[0].upper
    device.follower_spec = follower.spec
    assert device.read().joint_targets is not None
    assert device.read().joint_targets[0] == pytest.approx(min(np.pi / 2, narrower))


def test_a_leader_of_another_kind_is_refused() -> None:
    leader = DynamixelArm(
        WIDOWX_250S_LEADER, "/dev/null", symmetric_calibration(WIDOWX_250S_LEADER)
    )
    koch = DynamixelArm(KOCH_FOLLOWER, "/dev/null", symmetric_calibration(KOCH_FOLLOWER))
    with pytest.raises(ConfigError, match="6 joints but follower koch-follower has 5"):
        LeaderFollowerTeleop(leader, koch.spec)


def test_two_leaders_drive_aloha_as_one_14_dof_robot() -> None:
    names = ("widowx-250s-leader", "widowx-250s-leader", "viperx-300s", "viperx-300s")
    buses = [VirtualDynamixelBus(servos_for_arm(n)) for n in names]
    configs = (ALOHA.left_leader, ALOHA.right_leader, ALOHA.left_follower, ALOHA.right_follower)
    with buses[0], buses[1], buses[2], buses[3]:
        arms = [
            DynamixelArm(c, b.port, symmetric_calibration(c))
            for c, b in zip(configs, buses, strict=True)
        ]
        follower = BimanualArm(arms[2], arms[3])
        device = BimanualLeaderFollower(
            LeaderFollowerTeleop(arms[0], arms[2].spec), LeaderFollowerTeleop(arms[1], arms[3].spec)
        )
        assert follower.spec.joint_names[6] == "left_gripper" and follower.spec.dof == 14
        buses[0].move_by_hand({1: rad_to_ticks(0.3)})  # left waist
        buses[1].move_by_hand({LEADER_GRIPPER_ID: CENTER_TICKS - 1024 + 0.75 * 2048})
        with follower, device:
            for _ in range(40):
                follower.command(device.follower_command(device.read(), follower))
                follower.wait(1.0 / HZ)
            q = follower.read().q
    assert q[0] == pytest.approx(0.3, abs=0.002)
    assert q[13] == pytest.approx(0.75, abs=0.01)  # the right gripper's opening fraction
