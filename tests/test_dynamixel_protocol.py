"""Protocol 2.0 framing: CRC-16 and packets from the ROBOTIS e-Manual, byte stuffing, parsing.

The reference packets are the worked examples of the Protocol 2.0 chapter of the e-Manual
(ID 1 unless noted). Stuffing is also checked end to end against ``dynamixel_sdk``, which
stuffs what it sends and unstuffs what it receives.
"""

from __future__ import annotations

import dynamixel_sdk as dxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robolearn.drivers.dynamixel.control_table import OperatingMode
from robolearn.drivers.dynamixel.protocol import (
    HEADER,
    CorruptPacket,
    Instruction,
    Packet,
    PacketParser,
    crc16,
    decode,
    instruction_packet,
    status_packet,
    stuff,
    unstuff,
)
from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus
from robolearn.drivers.dynamixel.virtual_servo import VirtualServo

MANUAL_INSTRUCTIONS = {
    "ping": ("FF FF FD 00 01 03 00 01 19 4E", 1, Instruction.PING, ""),
    "read present position": (
        "FF FF FD 00 01 07 00 02 84 00 04 00 1D 15",
        1,
        Instruction.READ,
        "84 00 04 00",
    ),
    "write goal position 512": (
        "FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89",
        1,
        Instruction.WRITE,
        "74 00 00 02 00 00",
    ),
    "sync read IDs 1, 2": (
        "FF FF FD 00 FE 09 00 82 84 00 04 00 01 02 CE FA",
        0xFE,
        Instruction.SYNC_READ,
        "84 00 04 00 01 02",
    ),
    "sync write 150 and 170": (
        "FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87",
        0xFE,
        Instruction.SYNC_WRITE,
        "74 00 04 00 01 96 00 00 00 02 AA 00 00 00",
    ),
    "bulk read": (
        "FF FF FD 00 FE 0D 00 92 01 90 00 02 00 02 92 00 01 00 1A 05",
        0xFE,
        Instruction.BULK_READ,
        "01 90 00 02 00 02 92 00 01 00",
    ),
    "reboot": ("FF FF FD 00 01 03 00 08 2F 4E", 1, Instruction.REBOOT, ""),
    "factory reset": ("FF FF FD 00 01 04 00 06 01 A1 E6", 1, Instruction.FACTORY_RESET, "01"),
}
"""name → (wire bytes, ID, instruction, parameters) of the manual's instruction packets."""

MANUAL_STATUS = {
    "ping reply (model 1030, firmware 38)": (
        "FF FF FD 00 01 07 00 55 00 06 04 26 65 5D",
        1,
        "06 04 26",
    ),
    "read reply (position 166)": ("FF FF FD 00 01 08 00 55 00 A6 00 00 00 8C C0", 1, "A6 00 00 00"),
    "sync read reply of ID 2": ("FF FF FD 00 02 08 00 55 00 1F 08 00 00 BA BE", 2, "1F 08 00 00"),
    "write reply": ("FF FF FD 00 01 04 00 55 00 A1 0C", 1, ""),
}
"""name → (wire bytes, ID, parameters) of the manual's status packets (no error)."""


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("name", [*MANUAL_INSTRUCTIONS, *MANUAL_STATUS])
def test_crc16_matches_the_manual(name: str) -> None:
    wire = _hex((MANUAL_INSTRUCTIONS.get(name) or MANUAL_STATUS[name])[0])
    assert crc16(wire[:-2]) == wire[-2] | (wire[-1] << 8)


@pytest.mark.parametrize("name", list(MANUAL_INSTRUCTIONS))
def test_instruction_packets_match_the_manual(name: str) -> None:
    wire, packet_id, instruction, params = MANUAL_INSTRUCTIONS[name]
    assert instruction_packet(packet_id, instruction, _hex(params)) == _hex(wire)
    assert decode(_hex(wire)) == Packet(packet_id, instruction, _hex(params))


@pytest.mark.parametrize("name", list(MANUAL_STATUS))
def test_status_packets_match_the_manual(name: str) -> None:
    wire, packet_id, params = MANUAL_STATUS[name]
    assert status_packet(packet_id, 0, _hex(params)) == _hex(wire)
    packet = decode(_hex(wire))
    assert packet.is_status and packet.error == 0 and packet.params == _hex(params)


@given(st.binary(max_size=300))
def test_crc16_agrees_with_dynamixel_sdk(data: bytes) -> None:
    sdk = dxl.Protocol2PacketHandler()
    assert crc16(data) == sdk.updateCRC(0, list(data), len(data))


# ------------------------------------------------------------------------------ stuffing

_STUFFY = st.lists(st.sampled_from([0xFF, 0xFD, 0x00, 0x55]), max_size=64).map(bytes)


@given(st.one_of(_STUFFY, st.binary(max_size=200)))
def test_stuffing_round_trips(body: bytes) -> None:
    stuffed = stuff(body)
    assert unstuff(stuffed) == body
    for i in range(len(stuffed) - 2):
        if stuffed[i : i + 3] == HEADER:
            assert stuffed[i + 3 : i + 4] == b"\xfd", "every FF FF FD is followed by a stuffed FD"


def test_stuffing_inserts_fd_after_the_header_pattern() -> None:
    assert stuff(bytes.fromhex("03 FF FF FD 01")) == bytes.fromhex("03 FF FF FD FD 01")
    assert stuff(bytes.fromhex("FF FF FD FF FF FD")) == bytes.fromhex("FF FF FD FD FF FF FD FD")
    with pytest.raises(ValueError, match="not followed by FD"):
        unstuff(bytes.fromhex("FF FF FD 01"))


@given(_STUFFY)
def test_stuffed_packets_round_trip_and_count_stuffed_bytes(params: bytes) -> None:
    wire = instruction_packet(7, Instruction.WRITE, params)
    length = wire[5] | (wire[6] << 8)
    assert length == len(wire) - 7, "LEN counts the stuffed body and the CRC"
    assert decode(wire) == Packet(7, Instruction.WRITE, params)


def test_lenient_unstuffing_keeps_an_unstuffed_header_pattern() -> None:
    # dynamixel_sdk 4.x (Python) sends FF FF FD without the stuffed FD; servos take it as data.
    assert unstuff(bytes.fromhex("03 FF FF FD 01"), strict=False) == bytes.fromhex("03 FF FF FD 01")
    assert unstuff(bytes.fromhex("03 FF FF FD FD 01"), strict=False) == bytes.fromhex(
        "03 FF FF FD 01"
    )


@pytest.mark.parametrize("stuffed", [True, False], ids=["stuffed", "as-dynamixel-sdk-sends"])
def test_virtual_servo_reads_values_holding_the_header_pattern(stuffed: bool) -> None:
    value = int.from_bytes(b"\xff\xff\xfd\xff", "little", signed=True)  # -131073
    params = bytes([116, 0]) + value.to_bytes(4, "little", signed=True)
    servo = VirtualServo(1, "xm430-w350")
    servo.set("operating_mode", OperatingMode.EXTENDED_POSITION)
    wire = instruction_packet(1, Instruction.WRITE, params)
    if not stuffed:
        body = bytes([Instruction.WRITE]) + params
        frame = bytes.fromhex("FF FF FD 00 01") + (len(body) + 2).to_bytes(2, "little") + body
        wire = frame + crc16(frame).to_bytes(2, "little")
    VirtualDynamixelBus([servo]).receive(wire)  # not started: replies go nowhere
    assert servo.get("goal_position") == value


def test_stuffing_end_to_end_through_the_sdk_and_the_virtual_bus() -> None:
    """A value whose bytes hold FF FF FD goes out stuffed by the SDK, is unstuffed by the
    virtual servo, comes back stuffed in the status packet and is unstuffed by the SDK."""
    servo = VirtualServo(1, "xm430-w350")
    servo.set("operating_mode", OperatingMode.EXTENDED_POSITION)
    with VirtualDynamixelBus([servo]) as port:
        handler = dxl.PortHandler(port)
        packets = dxl.PacketHandler(2.0)
        assert handler.openPort()
        try:
            value = int.from_bytes(b"\xff\xff\xfd\xff", "little", signed=True)  # -131073
            assert packets.write4ByteTxRx(handler, 1, 116, value & 0xFFFFFFFF) == (0, 0)
            assert servo.get("goal_position") == value
            read, result, error = packets.read4ByteTxRx(handler, 1, 116)
        finally:
            handler.closePort()
    assert (result, error) == (dxl.COMM_SUCCESS, 0)
    assert read == value & 0xFFFFFFFF


# ------------------------------------------------------------------------------- parsing


def test_parser_splits_a_stream_and_skips_noise() -> None:
    ping, write = _hex(MANUAL_INSTRUCTIONS["ping"][0]), _hex(MANUAL_INSTRUCTIONS["reboot"][0])
    stream = b"\x00\xff\x12" + ping + b"\xff\xff" + write
    parser = PacketParser()
    out = [item for byte in stream for item in parser.feed(bytes([byte]))]  # byte by byte
    assert out == [Packet(1, Instruction.PING), Packet(1, Instruction.REBOOT)]
    assert parser.pending == 0


def test_parser_reports_a_bad_crc_and_resynchronises() -> None:
    ping = bytearray(_hex(MANUAL_INSTRUCTIONS["ping"][0]))
    ping[-1] ^= 0xFF
    good = _hex(MANUAL_INSTRUCTIONS["reboot"][0])
    out = PacketParser().feed(bytes(ping) + good)
    assert out == [CorruptPacket(1, "CRC mismatch"), Packet(1, Instruction.REBOOT)]


def test_parser_ignores_a_false_header() -> None:
    # FF FF FD FD is a stuffed sequence, never a header; the real packet follows.
    good = _hex(MANUAL_INSTRUCTIONS["ping"][0])
    assert PacketParser().feed(b"\xff\xff\xfd\xfd\x01" + good) == [Packet(1, Instruction.PING)]


def test_decode_refuses_anything_but_one_valid_packet() -> None:
    ping = _hex(MANUAL_INSTRUCTIONS["ping"][0])
    with pytest.raises(ValueError):
        decode(ping + ping)
    with pytest.raises(ValueError):
        decode(ping[:-1])
    with pytest.raises(ValueError, match="corrupt"):
        decode(ping[:-1] + b"\x00")
