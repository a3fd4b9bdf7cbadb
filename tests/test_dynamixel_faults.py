"""Faults on the servo bus: lost, corrupt and late packets at the control rate, and an adapter
unplugged mid-episode. The arm is a ViperX follower at 50 Hz on the virtual bus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from robolearn.core.types import Command, ControlMode, DriverError
from robolearn.drivers.dynamixel import VIPERX_300S, DynamixelArm, symmetric_calibration
from robolearn.drivers.dynamixel.virtual_bus import Faults, VirtualDynamixelBus, servos_for_arm

PRIMARY_IDS = (1, 2, 4, 6, 7, 8, 9)


@dataclass
class EpisodeReport:
    """What went wrong during an episode."""

    ticks: int = 0
    crashes: int = 0
    applied_outside_limits: int = 0
    servo_goals_outside_limits: int = 0


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[VirtualDynamixelBus, DynamixelArm]]:
    """A connected ViperX on a fault-free virtual bus (tests set the faults); the driver's
    retry count comes from ``@pytest.mark.parametrize("rig", [n], indirect=True)`` (default 3)."""
    retries = getattr(request, "param", 3)
    bus = VirtualDynamixelBus(servos_for_arm("viperx-300s"), seed=3)
    with bus as port:
        arm = DynamixelArm(VIPERX_300S, port, symmetric_calibration(VIPERX_300S), retries=retries)
        with arm:
            yield bus, arm


def _target(arm: DynamixelArm, k: int) -> Command:
    """A sweep that overshoots every joint limit by 30 % and works the gripper."""
    spec = arm.spec
    phase = 2.0 * np.pi * k / 200.0 + np.arange(spec.dof)
    q = 1.3 * spec.limits("upper") * np.sin(phase)
    assert spec.gripper is not None
    width = spec.gripper.max_width * (0.5 + 0.7 * np.sin(phase[0]))  # beyond both ends
    return Command(ControlMode.JOINT_POSITION, joint_position=q, gripper_width=width)


def _servo_goals_within_limits(bus: VirtualDynamixelBus) -> bool:
    with bus.locked():
        for motor_id in PRIMARY_IDS:
            servo = bus.servo(motor_id)
            low, high = servo.get("min_position_limit"), servo.get("max_position_limit")
            if not low <= servo.get("goal_position") <= high:
                return False
    return True


def _episode(bus: VirtualDynamixelBus, arm: DynamixelArm, ticks: int) -> EpisodeReport:
    """``ticks`` control ticks at the arm's rate: read, command, check, wait for the next."""
    report = EpisodeReport()
    lower, upper = arm.spec.limits("lower"), arm.spec.limits("upper")
    period = 1.0 / arm.spec.control_hz
    deadline = arm.now()
    for k in range(ticks):
        try:
            arm.read()
            applied = arm.command(_target(arm, k))
        except DriverError:
            report.crashes += 1
            continue
        finally:
            report.ticks += 1
        assert applied.joint_position is not None
        if np.any(applied.joint_position < lower) or np.any(applied.joint_position > upper):
            report.applied_outside_limits += 1
        if not _servo_goals_within_limits(bus):
            report.servo_goals_outside_limits += 1
        deadline += period
        arm.wait_until(deadline)
    return report


@pytest.mark.parametrize("rig", [5], indirect=True)
def test_a_short_episode_on_a_bad_bus_never_crashes(
    rig: tuple[VirtualDynamixelBus, DynamixelArm],
) -> None:
    # A motor's reply fails one attempt with p ≈ 0.06 here; with 5 retries a read fails
    # with p ≈ 0.06^6 ≈ 5e-8 per motor, so 250 ticks crash with p ≈ 1e-4.
    bus, arm = rig
    bus.faults = Faults(drop_rate=0.03, corrupt_rate=0.02, delay_rate=0.01, delay_s=0.1)
    report = _episode(bus, arm, 250)
    assert report == EpisodeReport(ticks=250)
    assert bus.stats.dropped > 0 and bus.stats.corrupted > 0 and bus.stats.delayed > 0
    assert arm.bus.retried > 0


@pytest.mark.slow
def test_one_percent_packet_loss_for_5000_ticks_at_50_hz(
    rig: tuple[VirtualDynamixelBus, DynamixelArm],
) -> None:
    # With the default 3 retries a motor's read fails with p = 0.01^4 per tick: the whole
    # episode (7 motors, 5000 ticks) crashes with p ≈ 4e-4.
    bus, arm = rig
    assert arm.spec.control_hz == 50.0 and arm.bus.retries == 3
    bus.faults = Faults(drop_rate=0.01)
    report = _episode(bus, arm, 5000)
    assert report == EpisodeReport(ticks=5000)
    assert bus.stats.dropped > 50


def test_unplugging_mid_episode_fails_within_one_tick(
    rig: tuple[VirtualDynamixelBus, DynamixelArm],
) -> None:
    bus, arm = rig
    unplugged_at: list[int] = []
    tick = 0

    def unplug_later() -> None:
        while tick < 20:
            arm.wait(0.001)
        bus.unplug()
        unplugged_at.append(tick)

    thread = threading.Thread(target=unplug_later)
    thread.start()
    period = 1.0 / arm.spec.control_hz
    with pytest.raises(DriverError, match="lost the Dynamixel bus"):
        for tick in range(1000):
            arm.read()
            arm.command(_target(arm, tick))
            arm.wait(period)
    thread.join()
    assert tick - unplugged_at[0] <= 1, (tick, unplugged_at)
