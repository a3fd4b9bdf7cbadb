"""Dynamixel Protocol 2.0 framing: CRC-16, byte stuffing, packet encoding and stream parsing.

A packet on the wire is::

    FF FF FD 00 | ID | LEN_L LEN_H | INST | (ERR) | PARAM... | CRC_L CRC_H
    header        id   length        body (stuffed)             CRC-16

* ``LEN`` counts the body after stuffing plus the two CRC bytes;
* a status packet's instruction is ``0x55`` and its first body byte is the error;
* **byte stuffing**: wherever ``FF FF FD`` appears inside the body, an extra ``FD`` is
  inserted after it, so the header pattern never appears inside a packet;
* **CRC**: CRC-16 with polynomial ``0x8005`` (x¹⁶ + x¹⁵ + x² + 1), initial value 0, no
  reflection, no final XOR, over every byte from the header up to the last body byte (after
  stuffing), sent low byte first.

This module is the virtual bus's own implementation (the driver side goes through
``dynamixel_sdk``), so the tests can check one against the other. The parser unstuffs
leniently (see :func:`unstuff`): ``dynamixel_sdk`` 4.x for Python puts instruction packets
on the wire without their stuffing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

HEADER = b"\xff\xff\xfd"
RESERVED = 0x00
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
"""The highest ID a servo may have (252)."""
MIN_PACKET_BYTES = 10
"""Header (4) + ID + LEN (2) + INST + CRC (2)."""
MAX_LENGTH = 4096
"""Longest LEN the parser accepts; anything longer is treated as noise."""
ALERT = 0x80
"""Bit 7 of a status packet's error byte: the servo has a hardware error."""
CRC_POLYNOMIAL = 0x8005


class Instruction(enum.IntEnum):
    """Instruction codes of Protocol 2.0."""

    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    FACTORY_RESET = 0x06
    REBOOT = 0x08
    CLEAR = 0x10
    STATUS = 0x55
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83
    FAST_SYNC_READ = 0x8A
    BULK_READ = 0x92
    BULK_WRITE = 0x93
    FAST_BULK_READ = 0x9A


class StatusError(enum.IntEnum):
    """The low 7 bits of a status packet's error byte."""

    NONE = 0
    RESULT_FAIL = 1
    INSTRUCTION = 2
    CRC = 3
    DATA_RANGE = 4
    DATA_LENGTH = 5
    DATA_LIMIT = 6
    ACCESS = 7


def _crc_table() -> tuple[int, ...]:
    """The 256-entry lookup table of :data:`CRC_POLYNOMIAL` (MSB first)."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ CRC_POLYNOMIAL if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray, crc: int = 0) -> int:
    """Protocol 2.0's CRC-16 of ``data`` (continuing from ``crc``)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def stuff(body: bytes | bytearray) -> bytes:
    """``body`` with an ``FD`` inserted after every ``FF FF FD``."""
    out = bytearray()
    for byte in body:
        out.append(byte)
        if out[-3:] == HEADER:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes | bytearray, strict: bool = True) -> bytes:
    """Inverse of :func:`stuff`.

    ``strict``: ``ValueError`` if an ``FF FF FD`` lacks its stuffed ``FD``. Lenient
    (``strict=False``), such a sequence is kept as data: ``dynamixel_sdk`` 4.x for Python
    sends instruction packets unstuffed (its ``txPacket`` discards what ``addStuffing``
    returns), and the virtual servos accept those packets.
    """
    out = bytearray()
    after_header = False
    for byte in body:
        if after_header:
            after_header = False
            if byte == 0xFD:
                continue
            if strict:
                raise ValueError("FF FF FD inside a packet body is not followed by FD")
        out.append(byte)
        after_header = out[-3:] == HEADER
    if after_header and strict:
        raise ValueError("packet body ends in FF FF FD without the stuffed FD")
    return bytes(out)


@dataclass(frozen=True)
class Packet:
    """A decoded packet. Status packets have ``instruction == 0x55`` and an ``error`` byte."""

    id: int
    instruction: int
    params: bytes = b""
    error: int | None = None

    @property
    def is_status(self) -> bool:
        """Whether this is a status packet (a servo's reply)."""
        return self.instruction == Instruction.STATUS


@dataclass(frozen=True)
class CorruptPacket:
    """A frame whose CRC is wrong or whose body is empty (the parser dropped it)."""

    id: int
    reason: str


def encode(
    packet_id: int, instruction: int, params: bytes = b"", error: int | None = None
) -> bytes:
    """The wire bytes of a packet (``error`` only for status packets)."""
    body = bytes([instruction]) + (b"" if error is None else bytes([error])) + bytes(params)
    body = stuff(body)
    length = len(body) + 2
    frame = HEADER + bytes([RESERVED, packet_id, length & 0xFF, length >> 8]) + body
    crc = crc16(frame)
    return frame + bytes([crc & 0xFF, crc >> 8])


def instruction_packet(packet_id: int, instruction: int, params: bytes = b"") -> bytes:
    """The wire bytes of an instruction packet."""
    return encode(packet_id, instruction, params)


def status_packet(packet_id: int, error: int = 0, params: bytes = b"") -> bytes:
    """The wire bytes of a status packet."""
    return encode(packet_id, Instruction.STATUS, params, error)


def decode(frame: bytes) -> Packet:
    """The one packet ``frame`` holds; ``ValueError`` if it is not exactly one valid packet."""
    parser = PacketParser()
    out = parser.feed(frame)
    if len(out) != 1 or parser.pending:
        raise ValueError(f"expected exactly one packet, parsed {out} with {parser.pending} left")
    if isinstance(out[0], CorruptPacket):
        raise ValueError(f"corrupt packet: {out[0].reason}")
    return out[0]


class PacketParser:
    """Splits a byte stream into packets, skipping noise and dropping corrupt frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back while waiting for the rest of a packet."""
        return len(self._buf)

    def clear(self) -> None:
        """Forget any partial packet."""
        self._buf.clear()

    def feed(self, data: bytes | bytearray) -> list[Packet | CorruptPacket]:
        """Every complete packet (or corrupt frame) that ``data`` completes, in order."""
        self._buf.extend(data)
        out: list[Packet | CorruptPacket] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> Packet | CorruptPacket | None:
        """The next packet in the buffer, or ``None`` when more bytes are needed."""
        while True:
            if not self._sync_to_header():
                return None
            length = self._buf[5] | (self._buf[6] << 8)
            if self._buf[3] != RESERVED or not 3 <= length <= MAX_LENGTH:
                del self._buf[0]  # a false header: resynchronise one byte later
                continue
            total = 7 + length
            if len(self._buf) < total:
                return None
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            return _parse_frame(frame)

    def _sync_to_header(self) -> bool:
        """Drop bytes before the first header; whether 7 bytes from a header are buffered."""
        start = self._buf.find(HEADER)
        if start < 0:
            keep = 2 if self._buf[-2:] == HEADER[:2] else 1 if self._buf[-1:] == HEADER[:1] else 0
            del self._buf[: len(self._buf) - keep]
            return False
        del self._buf[:start]
        return len(self._buf) >= 7


def _parse_frame(frame: bytes) -> Packet | CorruptPacket:
    """A packet from one complete frame (header to CRC)."""
    packet_id = frame[4]
    crc = frame[-2] | (frame[-1] << 8)
    if crc16(frame[:-2]) != crc:
        return CorruptPacket(packet_id, "CRC mismatch")
    try:
        body = unstuff(frame[7:-2], strict=False)
    except ValueError as exc:
        return CorruptPacket(packet_id, str(exc))
    if not body:
        return CorruptPacket(packet_id, "empty body")
    instruction = body[0]
    if instruction == Instruction.STATUS:
        if len(body) < 2:
            return CorruptPacket(packet_id, "status packet without an error byte")
        return Packet(packet_id, instruction, bytes(body[2:]), body[1])
    return Packet(packet_id, instruction, bytes(body[1:]))
