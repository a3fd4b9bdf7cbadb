"""The virtual Dynamixel bus as a peer of ``dynamixel_sdk``: control table, instructions,
servo semantics, dynamics, faults, and the separate-process mode.

Instruction-level tests talk to the bus through the SDK's PacketHandler/Group* classes over
the pty; the dynamics tests drive one :class:`VirtualServo` with explicit timestamps, so they
are exact and independent of the wall clock.
"""

from __future__ import annotations

import math
import subprocess
import sys
import termios
from collections.abc import Iterator
from dataclasses import dataclass

import dynamixel_sdk as dxl
import pytest
import serial

from robolearn.drivers.dynamixel.bus import WaitingPortHandler
from robolearn.drivers.dynamixel.control_table import (
    CENTER_TICKS,
    REG,
    HardwareError,
    OperatingMode,
)
from robolearn.drivers.dynamixel.protocol import ALERT, StatusError
from robolearn.drivers.dynamixel.virtual_bus import Faults, VirtualDynamixelBus, parse_ids
from robolearn.drivers.dynamixel.virtual_servo import (
    TAU_S,
    TICKS_S_PER_VELOCITY_UNIT,
    VirtualServo,
    approach,
)

OK = dxl.COMM_SUCCESS


@dataclass
class Link:
    """A started virtual bus and the SDK objects talking to it."""

    bus: VirtualDynamixelBus
    port: WaitingPortHandler
    packets: dxl.Protocol2PacketHandler

    def read(self, motor_id: int, name: str) -> tuple[int, int, int]:
        """(value, comm result, error) of one register through the SDK."""
        reg = REG[name]
        data, result, error = self.packets.readTxRx(self.port, motor_id, reg.address, reg.size)
        value = int.from_bytes(bytes(data), "little", signed=reg.signed) if data else 0
        return value, result, error

    def write(self, motor_id: int, name: str, value: int) -> tuple[int, int]:
        """(comm result, error) of one register write through the SDK."""
        reg = REG[name]
        data = list(value.to_bytes(reg.size, "little", signed=reg.signed))
        result, error = self.packets.writeTxRx(self.port, motor_id, reg.address, reg.size, data)
        return result, error


def _link(servos: list[VirtualServo], baud: int = 1_000_000) -> Iterator[Link]:
    bus = VirtualDynamixelBus(servos)
    with bus as path:
        port = WaitingPortHandler(path)
        port.baudrate = baud
        assert port.openPort()
        try:
            yield Link(bus, port, dxl.PacketHandler(2.0))
        finally:
            port.closePort()


@pytest.fixture
def link() -> Iterator[Link]:
    """Servos 1 and 2 (XM430-W350) and 3 (XM540-W270) on a started bus."""
    servos = [VirtualServo(1, "xm430"), VirtualServo(2, "xm430"), VirtualServo(3, "xm540")]
    yield from _link(servos)


# ------------------------------------------------------------------------ control table


def test_ping_answers_model_numbers(link: Link) -> None:
    assert link.packets.ping(link.port, 1) == (1020, OK, 0)
    assert link.packets.ping(link.port, 3) == (1120, OK, 0)
    _, result, _ = link.packets.ping(link.port, 9)
    assert result == dxl.COMM_RX_TIMEOUT


def test_broadcast_ping_lists_every_servo(link: Link) -> None:
    found, result = link.packets.broadcastPing(link.port)
    assert result == OK
    assert found == {1: [1020, 48], 2: [1020, 48], 3: [1120, 48]}


@pytest.mark.parametrize(
    ("motor_id", "name", "value"),
    [
        (1, "model_number", 1020),
        (1, "id", 1),
        (1, "baud_rate", 3),
        (1, "return_delay_time", 250),
        (1, "drive_mode", 0),
        (1, "operating_mode", OperatingMode.POSITION),
        (1, "homing_offset", 0),
        (1, "current_limit", 1193),
        (3, "current_limit", 2047),
        (1, "velocity_limit", 200),
        (1, "max_position_limit", 4095),
        (1, "min_position_limit", 0),
        (1, "torque_enable", 0),
        (1, "led", 0),
        (1, "hardware_error_status", 0),
        (1, "present_position", CENTER_TICKS),
        (1, "present_velocity", 0),
        (1, "present_current", 0),
        (1, "present_input_voltage", 120),
        (1, "present_temperature", 35),
    ],
)
def test_control_table_reads(link: Link, motor_id: int, name: str, value: int) -> None:
    assert link.read(motor_id, name) == (value, OK, 0)


def test_eeprom_is_locked_while_torque_is_on(link: Link) -> None:
    assert link.write(1, "goal_position", CENTER_TICKS) == (OK, 0)
    assert link.write(1, "torque_enable", 1) == (OK, 0)
    assert link.write(1, "homing_offset", 100) == (OK, StatusError.ACCESS)
    assert link.read(1, "homing_offset")[0] == 0
    assert link.write(1, "torque_enable", 0) == (OK, 0)
    assert link.write(1, "homing_offset", 100) == (OK, 0)
    assert link.read(1, "present_position")[0] == CENTER_TICKS + 100


def test_out_of_range_writes_are_refused_and_change_nothing(link: Link) -> None:
    assert link.write(1, "max_position_limit", 3000) == (OK, 0)
    assert link.write(1, "goal_position", 3001) == (OK, StatusError.DATA_LIMIT)
    assert link.write(1, "goal_current", 5000) == (OK, StatusError.DATA_LIMIT)
    assert link.write(1, "operating_mode", 2) == (OK, StatusError.DATA_RANGE)
    assert link.write(1, "present_position", 5) == (OK, StatusError.ACCESS)
    assert link.read(1, "goal_position")[0] == 0
    assert link.read(1, "operating_mode")[0] == OperatingMode.POSITION


def test_models_without_current_sensing_refuse_current_modes() -> None:
    servo = VirtualServo(1, "xl430-w250")
    assert servo.write(REG["operating_mode"].address, bytes([0])) == StatusError.DATA_RANGE
    assert servo.write(REG["operating_mode"].address, bytes([4])) == StatusError.NONE


def test_sync_write_then_sync_read(link: Link) -> None:
    writer = dxl.GroupSyncWrite(link.port, link.packets, REG["goal_position"].address, 4)
    for motor_id, goal in ((1, 1000), (2, 2000), (3, 3000)):
        writer.addParam(motor_id, list(goal.to_bytes(4, "little")))
    assert writer.txPacket() == OK
    reader = dxl.GroupSyncRead(link.port, link.packets, REG["goal_position"].address, 4)
    for motor_id in (1, 2, 3):
        reader.addParam(motor_id)
    assert reader.txRxPacket() == OK
    goals = [reader.getData(i, REG["goal_position"].address, 4) for i in (1, 2, 3)]
    assert goals == [1000, 2000, 3000]


def test_bulk_read_reads_different_registers_per_servo(link: Link) -> None:
    reader = dxl.GroupBulkRead(link.port, link.packets)
    assert reader.addParam(1, REG["present_input_voltage"].address, 2)
    assert reader.addParam(3, REG["model_number"].address, 2)
    assert reader.txRxPacket() == OK
    assert reader.getData(1, REG["present_input_voltage"].address, 2) == 120
    assert reader.getData(3, REG["model_number"].address, 2) == 1120


def test_status_packets_are_stuffed_for_the_sdk(link: Link) -> None:
    # Goal Current -1 (FF FF) then Goal Velocity -3 (FD FF FF FF): FF FF FD in the reply.
    servo = link.bus.servo(1)
    with link.bus.locked():
        servo.set("goal_current", -1)
        servo.set("goal_velocity", -3)
    reader = dxl.GroupSyncRead(link.port, link.packets, REG["goal_current"].address, 6)
    reader.addParam(1)
    assert reader.txRxPacket() == OK
    assert bytes(reader.data_dict[1]) == bytes.fromhex("FF FF FD FF FF FF")


def test_reg_write_waits_for_action(link: Link) -> None:
    reg = REG["led"]
    assert link.packets.regWriteTxRx(link.port, 2, reg.address, 1, [1]) == (OK, 0)
    assert link.read(2, "led")[0] == 0
    assert link.packets.action(link.port, dxl.BROADCAST_ID) == OK  # no status packet
    assert link.read(2, "led")[0] == 1


def test_secondary_id_follows_writes_without_replying(link: Link) -> None:
    assert link.write(2, "secondary_id", 1) == (OK, 0)
    assert link.write(1, "goal_position", 1234) == (OK, 0)  # one reply: only ID 1 answers
    assert link.read(2, "goal_position")[0] == 1234
    assert link.read(3, "goal_position")[0] == 0


def test_hardware_error_cuts_torque_and_holds_until_reboot(link: Link) -> None:
    assert link.write(1, "torque_enable", 1) == (OK, 0)
    link.bus.set_hardware_error(1, HardwareError.OVERLOAD)
    value, result, error = link.read(1, "torque_enable")
    assert (value, result) == (0, OK) and error & ALERT
    assert link.read(1, "hardware_error_status")[0] == HardwareError.OVERLOAD
    result, error = link.write(1, "torque_enable", 1)
    assert error == ALERT | StatusError.RESULT_FAIL
    assert link.packets.reboot(link.port, 1) == (OK, ALERT)  # the reply precedes the reboot
    assert link.read(1, "hardware_error_status") == (0, OK, 0)
    assert link.write(1, "torque_enable", 1) == (OK, 0)


def test_factory_reset_keeps_id_and_baud_with_option_2(link: Link) -> None:
    assert link.write(2, "homing_offset", 500) == (OK, 0)
    assert link.packets.factoryReset(link.port, 2, 0x02) == (OK, 0)
    assert link.read(2, "homing_offset") == (0, OK, 0)
    assert link.read(2, "baud_rate") == (3, OK, 0)


def test_servos_ignore_a_host_at_another_baud() -> None:
    servos = [VirtualServo(1, "xm430", baud=57_600), VirtualServo(2, "xm430")]
    for link in _link(servos, baud=57_600):
        assert link.packets.ping(link.port, 1)[1] == OK
        assert link.packets.ping(link.port, 2)[1] == dxl.COMM_RX_TIMEOUT
        assert link.bus.stats.ignored_wrong_baud > 0


# ------------------------------------------------------------------------------- faults


def test_dropped_packets_get_no_reply(link: Link) -> None:
    link.bus.faults = Faults(drop_rate=1.0)
    assert link.packets.ping(link.port, 1)[1] == dxl.COMM_RX_TIMEOUT
    assert link.bus.stats.dropped >= 1


def test_corrupted_replies_fail_the_crc(link: Link) -> None:
    link.bus.faults = Faults(corrupt_rate=1.0)
    assert link.packets.ping(link.port, 1)[1] == dxl.COMM_RX_CORRUPT


def test_delayed_replies_miss_the_timeout(link: Link) -> None:
    link.bus.faults = Faults(delay_rate=1.0, delay_s=0.15)
    assert link.packets.ping(link.port, 1)[1] == dxl.COMM_RX_TIMEOUT
    assert link.bus.stats.delayed == 1
    link.bus.faults = Faults()
    assert link.packets.ping(link.port, 2) == (1020, OK, 0)  # the late reply was flushed


def test_unplugging_makes_the_port_fail(link: Link) -> None:
    link.bus.unplug()
    with pytest.raises((serial.SerialException, OSError, termios.error)):
        link.packets.ping(link.port, 1)


# ----------------------------------------------------------------------------- dynamics


def _torque_on(servo: VirtualServo, mode: OperatingMode, t0: float) -> None:
    servo.set("operating_mode", mode)
    servo.advance(t0)
    servo.set("torque_enable", 1)


def test_position_mode_moves_at_the_velocity_limit_then_settles() -> None:
    servo = VirtualServo(1, "xm430-w350")
    _torque_on(servo, OperatingMode.POSITION, 100.0)
    servo.set("goal_position", 4000)
    vmax = servo.get("velocity_limit") * TICKS_S_PER_VELOCITY_UNIT
    servo.advance(100.1)
    assert servo.present_position == pytest.approx(CENTER_TICKS + 0.1 * vmax)
    servo.advance(105.0)
    assert servo.read(REG["present_position"].address, 4)[1] == (4000).to_bytes(4, "little")


def test_position_mode_clamps_the_goal_to_the_position_limits() -> None:
    servo = VirtualServo(1, "xm430-w350")
    servo.set("max_position_limit", 2500)
    _torque_on(servo, OperatingMode.POSITION, 0.0)
    servo.set("goal_position", 4000)  # set directly: a write would be refused
    servo.advance(10.0)
    assert servo.present_position == pytest.approx(2500, abs=1e-6)


def test_extended_position_mode_goes_past_one_turn() -> None:
    servo = VirtualServo(1, "xm540-w270")
    _torque_on(servo, OperatingMode.EXTENDED_POSITION, 0.0)
    assert servo.write(REG["goal_position"].address, (9000).to_bytes(4, "little")) == 0
    servo.advance(10.0)
    assert servo.present_position == pytest.approx(9000, abs=1e-6)


def test_velocity_mode_turns_at_the_goal_velocity() -> None:
    servo = VirtualServo(1, "xm430-w350")
    _torque_on(servo, OperatingMode.VELOCITY, 0.0)
    servo.set("goal_velocity", -50)
    servo.advance(0.5)
    assert servo.present_position == pytest.approx(
        CENTER_TICKS - 0.5 * 50 * TICKS_S_PER_VELOCITY_UNIT
    )
    assert servo.read(REG["present_velocity"].address, 4)[1] == (-50).to_bytes(
        4, "little", signed=True
    )


def test_current_mode_turns_with_the_sign_of_the_goal_current() -> None:
    servo = VirtualServo(1, "xm430-w350")
    _torque_on(servo, OperatingMode.CURRENT, 0.0)
    servo.set("goal_current", -100)
    servo.advance(0.2)
    assert servo.present_position < CENTER_TICKS - 10


def test_current_based_position_is_slowed_by_a_low_goal_current() -> None:
    strong, weak = VirtualServo(1, "xm430-w350"), VirtualServo(2, "xm430-w350")
    for servo, current in ((strong, 1193), (weak, 300)):
        _torque_on(servo, OperatingMode.CURRENT_BASED_POSITION, 0.0)
        servo.set("goal_current", current)
        servo.set("goal_position", 4000)
        servo.advance(0.2)
    assert strong.present_position - CENTER_TICKS == pytest.approx(
        (weak.present_position - CENTER_TICKS) * 1193 / 300
    )


def test_torque_off_servos_stay_where_a_hand_puts_them() -> None:
    servo = VirtualServo(1, "xm430-w350")
    servo.set("goal_position", 4000)
    servo.advance(1.0)
    servo.move_by_hand(1500)
    servo.advance(5.0)
    assert servo.present_position == 1500


def test_drive_mode_and_homing_offset_shape_present_position() -> None:
    servo = VirtualServo(1, "xm430-w350", position=1000)
    servo.set("drive_mode", 1)
    servo.set("homing_offset", 3000)
    assert servo.present_position == -1000 + 3000


def test_a_mirrored_shadow_moves_with_its_primary() -> None:
    primary = VirtualServo(2, "xm540-w270")
    shadow = VirtualServo(3, "xm540-w270", mirror_of=primary)
    shadow.set("drive_mode", 1)
    shadow.set("homing_offset", 2 * CENTER_TICKS)
    primary.move_by_hand(2500)
    assert shadow.present_position == 2500


def test_approach_is_exact_across_the_saturation_knee() -> None:
    vmax = 1000.0  # ticks/s: below an error of vmax * TAU_S = 20 ticks the lag is linear
    first, velocity = approach(0.0, 100.0, 0.08, vmax)
    assert (first, velocity) == (pytest.approx(80.0), pytest.approx(vmax))
    later, velocity = approach(first, 100.0, TAU_S, vmax)
    assert later == pytest.approx(100.0 - 20.0 * math.exp(-1.0))
    assert velocity == pytest.approx((100.0 - later) / TAU_S)
    assert approach(0.0, 100.0, 0.08 + TAU_S, vmax)[0] == pytest.approx(later)


# ---------------------------------------------------------------------- separate process


def test_runs_as_a_separate_process() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robolearn.drivers.dynamixel.virtual_bus",
            "--ids",
            "1..3",
            "--model",
            "xm540",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        port = WaitingPortHandler(path)
        assert port.openPort()
        packets = dxl.PacketHandler(2.0)
        models = [packets.ping(port, i)[:2] for i in (1, 2, 3, 4)]
        port.closePort()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert models[:3] == [(1120, OK)] * 3
    assert models[3][1] == dxl.COMM_RX_TIMEOUT
    assert proc.returncode == 0


def test_parse_ids() -> None:
    assert parse_ids("1..3,7") == [1, 2, 3, 7]
    assert parse_ids("5") == [5]
