"""DynamixelBus and DynamixelArm against the virtual bus, through pyserial and dynamixel_sdk.

Covers what the driver-contract suite does not: what connect() writes into the servos, the
clear errors (wrong port, silent ID, wrong model, missing calibration, hardware error, an
unplugged bus), retries on bad status packets, and leader-arm specifics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from robolearn.core.types import Command, CommandError, ConfigError, ControlMode, DriverError
from robolearn.drivers.dynamixel import (
    KOCH_LEADER,
    VIPERX_300S,
    DynamixelArm,
    DynamixelBus,
    symmetric_calibration,
)
from robolearn.drivers.dynamixel.calibration import bus_motors, save_calibration
from robolearn.drivers.dynamixel.control_table import (
    CENTER_TICKS,
    HardwareError,
    OperatingMode,
    rad_to_ticks,
)
from robolearn.drivers.dynamixel.virtual_bus import Faults, VirtualDynamixelBus, servos_for_arm
from robolearn.drivers.dynamixel.virtual_servo import VirtualServo

JOINT = ControlMode.JOINT_POSITION


@pytest.fixture
def viperx_bus() -> Iterator[VirtualDynamixelBus]:
    """The servos of a ViperX 300 S on a started virtual bus."""
    bus = VirtualDynamixelBus(servos_for_arm("viperx-300s"))
    with bus:
        yield bus


@pytest.fixture
def viperx(viperx_bus: VirtualDynamixelBus) -> Iterator[DynamixelArm]:
    """A connected ViperX follower on ``viperx_bus``."""
    arm = DynamixelArm(VIPERX_300S, viperx_bus.port, symmetric_calibration(VIPERX_300S))
    arm.connect()
    yield arm
    arm.disconnect()


def _hold(arm: DynamixelArm) -> Command:
    return Command(JOINT, joint_position=arm.read().q)


# ----------------------------------------------------------------------------- connect


def test_connect_writes_the_config_and_calibration_into_the_servos(
    viperx: DynamixelArm, viperx_bus: VirtualDynamixelBus
) -> None:
    servo = viperx_bus.servo
    for motor_id in viperx_bus.ids():
        assert servo(motor_id).torque_enabled
        assert servo(motor_id).get("return_delay_time") == 0
        assert servo(motor_id).get("velocity_limit") == 131
    for motor_id in (1, 2, 4, 6, 7, 8):
        assert servo(motor_id).get("operating_mode") == OperatingMode.POSITION
        assert servo(motor_id).get("min_position_limit") == CENTER_TICKS - 1024
        assert servo(motor_id).get("max_position_limit") == CENTER_TICKS + 1024
    assert (servo(3).secondary_id, servo(5).secondary_id) == (2, 4)
    assert (servo(3).get("drive_mode"), servo(5).get("drive_mode")) == (1, 1)
    assert servo(9).get("operating_mode") == OperatingMode.CURRENT_BASED_POSITION
    assert (servo(9).get("current_limit"), servo(9).get("goal_current")) == (600, 600)


def test_spec_is_in_si_units_from_config_and_calibration(viperx: DynamixelArm) -> None:
    spec = viperx.spec
    assert spec.joint_names == (
        "waist",
        "shoulder",
        "elbow",
        "forearm_roll",
        "wrist_angle",
        "wrist_rotate",
    )
    np.testing.assert_allclose(spec.limits("upper"), np.pi / 2)  # ±1024 ticks
    np.testing.assert_allclose(spec.limits("lower"), -np.pi / 2)
    np.testing.assert_allclose(spec.limits("max_velocity"), 131 * 0.229 * 2 * np.pi / 60)
    assert spec.joints[1].max_effort == pytest.approx(2 * 10.6)  # shoulder: two XM540-W270
    assert spec.joints[5].max_effort == pytest.approx(4.1)  # wrist rotate: one XM430-W350
    assert spec.gripper is not None and spec.gripper.max_width == pytest.approx(0.08)
    assert spec.control_modes == frozenset({JOINT})


def test_commands_move_the_servos_and_shadows_follow(
    viperx: DynamixelArm, viperx_bus: VirtualDynamixelBus
) -> None:
    target = np.array([0.3, -0.2, 0.1, 0.0, 0.25, -0.4])
    applied = viperx.command(Command(JOINT, joint_position=target, gripper_width=0.02))
    np.testing.assert_array_equal(applied.joint_position, target)
    assert applied.gripper_width == pytest.approx(0.02)
    for _ in range(60):
        viperx.command(Command(JOINT, joint_position=target))  # the gripper keeps its target
        viperx.wait(0.02)
    state = viperx.read()
    np.testing.assert_allclose(state.q, target, atol=0.002)
    assert state.gripper_width == pytest.approx(0.02, abs=0.001)
    ticks = viperx_bus.present_positions()
    assert ticks[3] == pytest.approx(ticks[2]) and ticks[5] == pytest.approx(ticks[4])
    assert ticks[2] == pytest.approx(rad_to_ticks(-0.2), abs=1)


def test_read_state_is_well_formed(viperx: DynamixelArm) -> None:
    before = viperx.now()
    state = viperx.read()
    assert before <= state.timestamp <= viperx.now()
    np.testing.assert_array_equal(state.ee_pos, np.zeros(3))
    np.testing.assert_array_equal(state.ee_quat, [1.0, 0.0, 0.0, 0.0])
    assert state.q.shape == state.dq.shape == state.tau.shape == (6,)


def test_moving_joints_report_velocity_and_current(viperx: DynamixelArm) -> None:
    target = viperx.read().q + 0.5
    viperx.command(Command(JOINT, joint_position=target))
    viperx.wait(0.05)
    state = viperx.read()
    assert np.all(state.dq > 0.5), state.dq
    assert np.all(state.tau > 0.0), state.tau


def test_commands_are_validated_before_anything_is_sent(viperx: DynamixelArm) -> None:
    with pytest.raises(CommandError):
        viperx.command(Command(JOINT, joint_position=np.full(6, np.nan)))
    with pytest.raises(CommandError):
        viperx.command(Command(JOINT, joint_position=np.zeros(7)))
    with pytest.raises(CommandError):
        viperx.command(Command(JOINT, joint_position=np.zeros(6), gripper_width=float("nan")))


def test_disconnect_switches_torque_off(viperx_bus: VirtualDynamixelBus) -> None:
    arm = DynamixelArm(VIPERX_300S, viperx_bus.port, symmetric_calibration(VIPERX_300S))
    with arm:
        assert viperx_bus.servo(1).torque_enabled
    assert not any(s.torque_enabled for s in viperx_bus.servos)


def test_a_leader_stays_limp_but_its_trigger_is_sprung() -> None:
    bus = VirtualDynamixelBus(servos_for_arm("koch-leader"))
    with bus as port:
        arm = DynamixelArm(KOCH_LEADER, port, symmetric_calibration(KOCH_LEADER), torque=False)
        with arm:
            assert [bus.servo(i).torque_enabled for i in range(1, 7)] == [False] * 5 + [True]
            trigger = bus.servo(6)
            assert trigger.get("operating_mode") == OperatingMode.CURRENT_BASED_POSITION
            assert trigger.get("goal_current") == 100
            assert trigger.get("goal_position") == CENTER_TICKS - 1024 + round(0.9 * 2048)
            assert arm.spec.gripper is None
            applied = arm.command(Command(JOINT, joint_position=np.zeros(5), gripper_width=0.5))
            assert applied.gripper_width is None  # a handle has no width to command


# ------------------------------------------------------------------------------ errors


def test_a_port_that_does_not_exist_is_one_clear_error(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyUSB9")
    arm = DynamixelArm(VIPERX_300S, port, symmetric_calibration(VIPERX_300S))
    with pytest.raises(DriverError, match=r"ttyUSB9 does not exist.*robolearn find-ports"):
        arm.connect()
    assert not arm.connected


def test_a_silent_motor_is_named_with_its_port() -> None:
    servos = [s for s in servos_for_arm("viperx-300s") if s.id != 5]
    with VirtualDynamixelBus(servos) as port:
        arm = DynamixelArm(VIPERX_300S, port, symmetric_calibration(VIPERX_300S), retries=1)
        with pytest.raises(DriverError) as info:
            arm.connect()
    message = str(info.value)
    assert "ID 5 (elbow_shadow) does not answer on " + port in message
    assert "robolearn find-ports --scan" in message


def test_a_wrong_servo_model_is_named() -> None:
    servos = [VirtualServo(i, "xm430") for i in range(1, 10)]
    with VirtualDynamixelBus(servos) as port:
        arm = DynamixelArm(VIPERX_300S, port, symmetric_calibration(VIPERX_300S))
        with pytest.raises(
            DriverError, match=r"ID 1 \(waist\) is a xm430-w350.*expects a xm540-w270"
        ):
            arm.connect()


def test_a_missing_calibration_names_the_file_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        DynamixelArm(VIPERX_300S, "/dev/ttyUSB0", name="left-arm", calibration_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "left-arm.json") in message
    assert "robolearn calibrate --robot viperx-300s --port /dev/ttyUSB0 --name left-arm" in message


def test_the_saved_calibration_is_found_by_name(
    tmp_path: Path, viperx_bus: VirtualDynamixelBus
) -> None:
    save_calibration(symmetric_calibration(VIPERX_300S, "left-arm"), tmp_path)
    with DynamixelArm(
        VIPERX_300S, viperx_bus.port, name="left-arm", calibration_dir=tmp_path
    ) as arm:
        assert arm.spec.name == "left-arm"
        np.testing.assert_allclose(arm.read().q, 0.0, atol=1e-9)


def test_a_calibration_of_another_arm_is_refused() -> None:
    with pytest.raises(ConfigError, match="recalibrate"):
        DynamixelArm(VIPERX_300S, "/dev/ttyUSB0", symmetric_calibration(KOCH_LEADER))


def test_a_hardware_error_mid_episode_is_one_clear_error(
    viperx: DynamixelArm, viperx_bus: VirtualDynamixelBus
) -> None:
    viperx.command(_hold(viperx))
    viperx_bus.set_hardware_error(4, HardwareError.OVERLOAD | HardwareError.OVERHEATING)
    with pytest.raises(
        DriverError, match=r"ID 4 \(elbow\).*hardware error \(overheating, overload\)"
    ):
        viperx.read()
    assert viperx.clear_hardware_errors() == ["elbow"]
    viperx.disconnect()
    viperx.connect()
    assert viperx_bus.servo(4).torque_enabled
    viperx.read()


def test_unplugging_raises_on_the_very_next_read_and_command(
    viperx: DynamixelArm, viperx_bus: VirtualDynamixelBus
) -> None:
    hold = _hold(viperx)
    viperx_bus.unplug()
    with pytest.raises(DriverError, match=r"lost the Dynamixel bus.*unplugged"):
        viperx.read()
    with pytest.raises(DriverError, match="lost the Dynamixel bus"):
        viperx.command(hold)
    viperx.disconnect()  # must not raise either
    assert not viperx.connected


def test_unplugging_fails_a_command_first_too(
    viperx: DynamixelArm, viperx_bus: VirtualDynamixelBus
) -> None:
    hold = _hold(viperx)
    viperx_bus.unplug()
    with pytest.raises(DriverError, match="lost the Dynamixel bus"):
        viperx.command(hold)


def test_bad_status_packets_are_retried(
    viperx: DynamixelArm, viperx_bus: VirtualDynamixelBus
) -> None:
    viperx_bus.faults = Faults(corrupt_rate=0.05)
    for _ in range(20):
        viperx.read()
    assert viperx.bus.retried > 0
    assert viperx_bus.stats.corrupted > 0


def test_without_retries_a_bad_status_packet_is_an_error(viperx_bus: VirtualDynamixelBus) -> None:
    bus = DynamixelBus(viperx_bus.port, bus_motors(VIPERX_300S), retries=0)
    with bus:
        assert bus.sync_read("present_position")[1] == CENTER_TICKS
        viperx_bus.faults = Faults(corrupt_rate=1.0)
        with pytest.raises(DriverError, match=r"gave no valid reply.*after 1 attempts"):
            bus.sync_read("present_position")


def test_a_refused_write_names_the_motor_and_the_reason(viperx_bus: VirtualDynamixelBus) -> None:
    with DynamixelBus(viperx_bus.port, bus_motors(VIPERX_300S)) as bus:
        bus.write(1, "torque_enable", 1)
        with pytest.raises(
            DriverError, match=r"ID 1 \(waist\).*refused writing homing_offset=5: access"
        ):
            bus.write(1, "homing_offset", 5)


def test_the_bus_refuses_a_baud_the_sdk_cannot_open() -> None:
    with pytest.raises(ConfigError, match="baud 12345"):
        DynamixelBus("/dev/null", [], baud=12345)
