"""A virtual Dynamixel bus on a pseudo-terminal: X-series servos that answer Protocol 2.0.

The bus opens a pty (``os.openpty``, raw mode) and serves its slave end, e.g.
``/dev/pts/7``, as if a U2D2 adapter with servos were plugged in: the driver opens that path
with pyserial and ``dynamixel_sdk`` exactly as it opens ``/dev/ttyUSB0``. Each
:class:`VirtualServo` keeps a real X-series control table (see
:mod:`robolearn.drivers.dynamixel.control_table`) and answers ping, read, write, reg-write/action,
sync
read, sync write, bulk read, bulk write, reboot, clear and factory reset, with the protocol's
byte stuffing and CRC (:mod:`robolearn.drivers.dynamixel.protocol`).

Behaviour modelled on the real servos:

* first-order position dynamics (time constant :data:`TAU_S`) toward Goal Position while
  torque is on, speed bounded by Velocity Limit (and Profile Velocity when set); Min/Max
  Position Limit clamp the goal in position mode; current, velocity, position, extended
  position, current-based position and PWM modes; Drive Mode's reverse bit and Homing
  Offset shape Present Position;
* EEPROM registers refuse writes while torque is on (access error); out-of-range values
  return range/limit errors and change nothing; a hardware error switches torque off, sets
  the alert bit of every status packet and holds until a reboot;
* Secondary ID: a servo whose Secondary ID names another servo also executes that servo's
  write/sync-write/bulk-write/action instructions without replying (ALOHA's shadow
  motors); ``mirror_of`` couples the shafts mechanically, as a shadow motor is;
* the line baud: a servo ignores packets sent at a baud rate other than its own (the pty's
  termios speed, which pyserial sets, stands for the line speed).

Fault injection (:class:`Faults`, changeable while running): drop a fraction of instruction
packets, corrupt a fraction of status packets (bad CRC), delay a fraction past the SDK's
timeout; :meth:`VirtualDynamixelBus.set_hardware_error`; :meth:`~VirtualDynamixelBus.unplug`
closes the pty so the driver's next read fails.

Not modelled: return delay time (replies are immediate), the fast sync/bulk reads, PID
gains, load and gravity (the servos are unloaded), temperature and voltage changes.

In process::

    bus = VirtualDynamixelBus.with_ids(range(1, 10), "xm430")
    with bus as port:                     # a thread serves the pty while inside
        driver = DynamixelArm(config, port, ...)

As a separate process: ``python -m robolearn.drivers.dynamixel.virtual_bus --ids 1..9 --model
xm430``
prints the pty path and serves it until interrupted (``--arm koch-follower`` builds the
servos of a ready-made arm; ``--link /tmp/ttyDXL`` adds a stable symlink).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from robolearn.core.types import ConfigError
from robolearn.drivers.dynamixel.control_table import (
    BAUD_INDEX,
    CENTER_TICKS,
)
from robolearn.drivers.dynamixel.protocol import (
    BROADCAST_ID,
    CorruptPacket,
    Instruction,
    Packet,
    PacketParser,
    StatusError,
    status_packet,
)
from robolearn.drivers.dynamixel.virtual_servo import VirtualServo


@dataclass
class Faults:
    """What goes wrong on the bus; fractions are per packet, drawn from the bus's seeded RNG."""

    drop_rate: float = 0.0
    """Instruction packets lost on the way to the servos (no effect, no reply)."""
    corrupt_rate: float = 0.0
    """Status packets sent with a wrong CRC."""
    delay_rate: float = 0.0
    """Status packets sent ``delay_s`` late (past the SDK's ~34 ms timeout)."""
    delay_s: float = 0.1


@dataclass
class BusStats:
    """Counters of what the bus saw and did (for tests and the CLI)."""

    received: int = 0
    corrupt_received: int = 0
    dropped: int = 0
    replies: int = 0
    corrupted: int = 0
    delayed: int = 0
    ignored_wrong_baud: int = 0


def _termios_bauds() -> dict[int, int]:
    """termios speed constant → bit/s, for the rates this platform names."""
    out = {}
    for baud in BAUD_INDEX:
        const = getattr(termios, f"B{baud}", None)
        if const is not None:
            out[const] = baud
    return out


_TERMIOS_BAUDS = _termios_bauds()
_WRITE_INSTRUCTIONS = frozenset({Instruction.WRITE, Instruction.REG_WRITE, Instruction.ACTION})


class VirtualDynamixelBus:
    """Virtual servos behind a pseudo-terminal, served by a thread (see the module doc).

    ``with bus as port`` starts it and yields the pty path; :meth:`start`/:meth:`stop` do
    the same by hand. Test helpers (:meth:`servo`, :meth:`move_by_hand`,
    :meth:`set_hardware_error`, :attr:`faults`) are safe to call while it runs.
    """

    def __init__(
        self,
        servos: Iterable[VirtualServo],
        faults: Faults | None = None,
        seed: int = 0,
        link: Path | None = None,
    ) -> None:
        self._servos = list(servos)
        ids = [s.id for s in self._servos]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"servo IDs on one bus must be unique, got {ids}")
        self.faults = faults or Faults()
        self.stats = BusStats()
        self.link = link
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._parser = PacketParser()
        self._delayed: list[tuple[float, bytes]] = []
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._port: str | None = None

    @classmethod
    def with_ids(
        cls, ids: Iterable[int], model_name: str, position: float = CENTER_TICKS, **kwargs: object
    ) -> VirtualDynamixelBus:
        """A bus of identical servos with the given IDs, all at ``position``."""
        servos = [VirtualServo(i, model_name, position) for i in ids]
        return cls(servos, **kwargs)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> str:
        """The pty path the driver opens (valid after :meth:`start`)."""
        if self._port is None:
            raise ConfigError("the virtual bus has not been started: call start() first")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str:
        """Open the pty and serve it from a daemon thread; returns the port path."""
        if self.running:
            return self.port
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="virtual-dynamixel", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop serving and close the pty (the driver's next I/O fails). Idempotent."""
        if self._thread is not None:
            self._stop.set()
            self._wake()
            self._thread.join(timeout=5.0)
            self._thread = None
        self._close_pty()

    def unplug(self) -> None:
        """Pull the adapter out: the pty closes, the driver's next read or write fails."""
        self.stop()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation, even before pyserial opens it
        os.set_blocking(self._master, False)
        self._wake_r, self._wake_w = os.pipe()
        self._port = os.ttyname(self._slave)
        self._parser.clear()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            self.link.symlink_to(self._port)

    def _close_pty(self) -> None:
        for name in ("_master", "_slave", "_wake_r", "_wake_w"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")

    # ---------------------------------------------------------------- test helpers

    @property
    def servos(self) -> list[VirtualServo]:
        """Every servo on the bus."""
        return list(self._servos)

    def servo(self, motor_id: int) -> VirtualServo:
        """The servo with ID ``motor_id`` (:class:`ConfigError` if none)."""
        for s in self._servos:
            if s.id == motor_id:
                return s
        raise ConfigError(f"no servo with ID {motor_id} on this bus; IDs: {self.ids()}")

    def ids(self) -> list[int]:
        """The servos' IDs, sorted."""
        return sorted(s.id for s in self._servos)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the bus still (no packet is served) while inspecting or changing servos."""
        with self._lock:
            yield

    def move_by_hand(self, positions: dict[int, float]) -> None:
        """Turn servos by hand to Present Positions (ticks), by ID."""
        with self._lock:
            now = time.monotonic()
            for motor_id, ticks in positions.items():
                servo = self.servo(motor_id)
                servo.advance(now)
                servo.move_by_hand(ticks)

    def present_positions(self) -> dict[int, float]:
        """Every servo's Present Position (ticks, unrounded), by ID, at this instant."""
        with self._lock:
            now = time.monotonic()
            for s in self._servos:
                s.advance(now)
            return {s.id: s.present_position for s in self._servos}

    def set_hardware_error(self, motor_id: int, bits: int) -> None:
        """Raise Hardware Error Status bits on one servo (see :class:`HardwareError`)."""
        with self._lock:
            self.servo(motor_id).inject_hardware_error(bits)

    # ---------------------------------------------------------------- serving

    def _serve(self) -> None:
        while not self._stop.is_set():
            timeout = self._flush_delayed()
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 64)
            if self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    return
                self.receive(data)

    def receive(self, data: bytes) -> None:
        """Feed bytes from the host; each complete packet is answered (also usable without
        a pty, by tests of the servo logic)."""
        with self._lock:
            now = time.monotonic()
            for item in self._parser.feed(data):
                self._handle(item, now)

    def _flush_delayed(self) -> float:
        """Send delayed replies that are due; seconds until the next one (or 0.1)."""
        with self._lock:
            now = time.monotonic()
            due = [reply for t, reply in self._delayed if t <= now]
            self._delayed = [(t, reply) for t, reply in self._delayed if t > now]
            for reply in due:
                self._write(reply)
            if not self._delayed:
                return 0.1
            return max(0.0, min(t for t, _ in self._delayed) - now)

    def _listening(self) -> list[VirtualServo]:
        """The servos whose baud matches the line's (all when the line speed is unknown)."""
        try:
            speed = termios.tcgetattr(self._master)[5] if self._master >= 0 else None
        except termios.error:
            speed = None
        baud = _TERMIOS_BAUDS.get(speed) if speed is not None else None
        if baud is None:
            return self._servos
        listening = [s for s in self._servos if s.baud == baud]
        if len(listening) < len(self._servos):
            self.stats.ignored_wrong_baud += 1
        return listening

    def _handle(self, item: Packet | CorruptPacket, now: float) -> None:
        self.stats.received += 1
        if self._rng.random() < self.faults.drop_rate:
            self.stats.dropped += 1
            return
        servos = self._listening()
        for s in servos:
            s.advance(now)
        if isinstance(item, CorruptPacket):
            self.stats.corrupt_received += 1
            target = _by_id(servos, item.id)
            if target is not None:
                self._reply(target, StatusError.CRC)
            return
        handler = _HANDLERS.get(item.instruction)
        if handler is None:
            target = _by_id(servos, item.id)
            if target is not None:
                self._reply(target, StatusError.INSTRUCTION)
            return
        handler(self, item, servos)

    def _reply(self, servo: VirtualServo, error: int, params: bytes = b"", level: int = 2) -> None:
        """Send ``servo``'s status packet if its Status Return Level is at least ``level``
        (0 for ping, 1 for reads, 2 for the rest), through the fault injection."""
        if servo.get("status_return_level") < level:
            return
        packet = status_packet(servo.id, servo.error_byte(error), params)
        self.stats.replies += 1
        if self._rng.random() < self.faults.corrupt_rate:
            self.stats.corrupted += 1
            packet = packet[:-2] + bytes([packet[-2] ^ 0xFF, packet[-1]])
        if self._rng.random() < self.faults.delay_rate:
            self.stats.delayed += 1
            self._delayed.append((time.monotonic() + self.faults.delay_s, packet))
            self._wake()
            return
        self._write(packet)

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._master, data)

    # ---------------------------------------------------------------- instruction handlers

    def _ping(self, packet: Packet, servos: list[VirtualServo]) -> None:
        if packet.id == BROADCAST_ID:
            targets = sorted(servos, key=lambda s: s.id)
        else:
            targets = [s for s in servos if s.id == packet.id]
        for s in targets:
            params = s.get("model_number").to_bytes(2, "little") + bytes([s.model.firmware])
            self._reply(s, StatusError.NONE, params, level=0)

    def _read(self, packet: Packet, servos: list[VirtualServo]) -> None:
        target = _by_id(servos, packet.id)
        if target is None:
            return
        if len(packet.params) != 4:
            self._reply(target, StatusError.DATA_LENGTH)
            return
        address, length = _u16(packet.params, 0), _u16(packet.params, 2)
        self._answer_read(target, address, length)

    def _answer_read(self, servo: VirtualServo, address: int, length: int) -> None:
        error, data = servo.read(address, length)
        self._reply(servo, error, data, level=1)

    def _write_instruction(self, packet: Packet, servos: list[VirtualServo]) -> None:
        """WRITE, REG_WRITE and ACTION, to an ID, its secondaries, or everyone (broadcast)."""
        for s in _addressed(servos, packet.id):
            error: int
            if packet.instruction == Instruction.ACTION:
                s.action()
                error = StatusError.NONE
            elif len(packet.params) < 3:
                error = StatusError.DATA_LENGTH
            elif packet.instruction == Instruction.WRITE:
                error = s.write(_u16(packet.params, 0), packet.params[2:])
            else:
                error = s.register_write(_u16(packet.params, 0), packet.params[2:])
            if s.id == packet.id:
                self._reply(s, error)

    def _sync_read(self, packet: Packet, servos: list[VirtualServo]) -> None:
        if packet.id != BROADCAST_ID or len(packet.params) < 5:
            return
        address, length = _u16(packet.params, 0), _u16(packet.params, 2)
        for motor_id in packet.params[4:]:
            target = _by_id(servos, motor_id)
            if target is not None:
                self._answer_read(target, address, length)

    def _sync_write(self, packet: Packet, servos: list[VirtualServo]) -> None:
        if packet.id != BROADCAST_ID or len(packet.params) < 4:
            return
        address, length = _u16(packet.params, 0), _u16(packet.params, 2)
        entries = packet.params[4:]
        for start in range(0, len(entries) - length, length + 1):
            motor_id, data = entries[start], entries[start + 1 : start + 1 + length]
            for s in _addressed(servos, motor_id):
                s.write(address, data)

    def _bulk_read(self, packet: Packet, servos: list[VirtualServo]) -> None:
        if packet.id != BROADCAST_ID:
            return
        params = packet.params
        for start in range(0, len(params) - 4, 5):
            target = _by_id(servos, params[start])
            if target is not None:
                self._answer_read(target, _u16(params, start + 1), _u16(params, start + 3))

    def _bulk_write(self, packet: Packet, servos: list[VirtualServo]) -> None:
        if packet.id != BROADCAST_ID:
            return
        params, start = packet.params, 0
        while start + 5 <= len(params):
            motor_id, address = params[start], _u16(params, start + 1)
            length = _u16(params, start + 3)
            data = params[start + 5 : start + 5 + length]
            for s in _addressed(servos, motor_id):
                s.write(address, data)
            start += 5 + length

    def _reboot(self, packet: Packet, servos: list[VirtualServo]) -> None:
        for s in _addressed(servos, packet.id, secondaries=False):
            if s.id == packet.id:
                self._reply(s, StatusError.NONE)
            s.reboot()

    def _factory_reset(self, packet: Packet, servos: list[VirtualServo]) -> None:
        option = packet.params[0] if packet.params else 0xFF
        for s in _addressed(servos, packet.id, secondaries=False):
            if s.id == packet.id:
                self._reply(s, StatusError.NONE)
            s.factory_reset(option)

    def _clear(self, packet: Packet, servos: list[VirtualServo]) -> None:
        for s in _addressed(servos, packet.id, secondaries=False):
            error = StatusError.NONE
            if s.torque_enabled:
                error = StatusError.RESULT_FAIL
            else:
                s.clear_multi_turn()
            if s.id == packet.id:
                self._reply(s, error)


_HANDLERS: dict[int, Callable[[VirtualDynamixelBus, Packet, list[VirtualServo]], None]] = {
    Instruction.PING: VirtualDynamixelBus._ping,
    Instruction.READ: VirtualDynamixelBus._read,
    Instruction.WRITE: VirtualDynamixelBus._write_instruction,
    Instruction.REG_WRITE: VirtualDynamixelBus._write_instruction,
    Instruction.ACTION: VirtualDynamixelBus._write_instruction,
    Instruction.SYNC_READ: VirtualDynamixelBus._sync_read,
    Instruction.SYNC_WRITE: VirtualDynamixelBus._sync_write,
    Instruction.BULK_READ: VirtualDynamixelBus._bulk_read,
    Instruction.BULK_WRITE: VirtualDynamixelBus._bulk_write,
    Instruction.REBOOT: VirtualDynamixelBus._reboot,
    Instruction.FACTORY_RESET: VirtualDynamixelBus._factory_reset,
    Instruction.CLEAR: VirtualDynamixelBus._clear,
}


def _u16(data: bytes, offset: int) -> int:
    return data[offset] | (data[offset + 1] << 8)


def _by_id(servos: Sequence[VirtualServo], motor_id: int) -> VirtualServo | None:
    return next((s for s in servos if s.id == motor_id), None)


def _addressed(
    servos: Sequence[VirtualServo], motor_id: int, secondaries: bool = True
) -> list[VirtualServo]:
    """Servos that execute an instruction sent to ``motor_id`` (the ID itself, servos whose
    Secondary ID is ``motor_id``, or all for broadcast)."""
    if motor_id == BROADCAST_ID:
        return list(servos)
    return [s for s in servos if s.id == motor_id or (secondaries and s.secondary_id == motor_id)]


# -------------------------------------------------------------------------- command line


def parse_ids(text: str) -> list[int]:
    """``"1..9"``, ``"1,2,5"`` or ``"1..3,7"`` → a sorted list of IDs."""
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if ".." in part:
            lo, hi = (int(x) for x in part.split(".."))
            ids.update(range(lo, hi + 1))
        elif part:
            ids.add(int(part))
    return sorted(ids)


def servos_for_arm(arm_name: str, baud: int | None = None) -> list[VirtualServo]:
    """The servos of a ready-made arm (:mod:`robolearn.drivers.dynamixel.configs`), shadows coupled
    mirrored to their primaries, every servo at the middle of its turn."""
    from robolearn.drivers.dynamixel.configs import arm_config

    config = arm_config(arm_name)
    by_name: dict[str, VirtualServo] = {}
    for m in config.motors:
        primary = by_name.get(m.shadow_of) if m.shadow_of else None
        by_name[m.name] = VirtualServo(m.id, m.model, baud=baud or config.baud, mirror_of=primary)
    return list(by_name.values())


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m robolearn.drivers.dynamixel.virtual_bus",
        description="Serve virtual Dynamixel X-series servos on a pseudo-terminal.",
    )
    parser.add_argument("--ids", default="1..6", help="servo IDs, e.g. 1..9 or 1,2,5")
    parser.add_argument("--model", default="xm430-w350", help="servo model (xm430, xm540, ...)")
    parser.add_argument("--arm", help="build the servos of a ready-made arm config instead")
    parser.add_argument("--baud", type=int, default=1_000_000, help="the servos' baud rate")
    parser.add_argument("--position", type=float, default=CENTER_TICKS, help="initial ticks")
    parser.add_argument("--drop", type=float, default=0.0, help="fraction of packets lost")
    parser.add_argument("--corrupt", type=float, default=0.0, help="fraction with a bad CRC")
    parser.add_argument("--delay", type=float, default=0.0, help="fraction of late replies")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    parser.add_argument("--link", type=Path, help="also make this symlink to the pty")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a virtual bus until SIGINT/SIGTERM; print the pty path first."""
    args = _build_parser().parse_args(argv)
    try:
        if args.arm:
            servos = servos_for_arm(args.arm, args.baud)
        else:
            motor_ids = parse_ids(args.ids)
            servos = [VirtualServo(i, args.model, args.position, args.baud) for i in motor_ids]
    except ConfigError as exc:
        print(f"virtual_bus: error: {exc}", file=sys.stderr)
        return 2
    faults = Faults(drop_rate=args.drop, corrupt_rate=args.corrupt, delay_rate=args.delay)
    bus = VirtualDynamixelBus(servos, faults=faults, seed=args.seed, link=args.link)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with bus as port:
        print(port, flush=True)
        ids = ", ".join(f"{s.id}:{s.model.name}" for s in servos)
        print(f"serving {len(servos)} servos ({ids}) at {args.baud} baud", file=sys.stderr)
        while not done.wait(0.5):
            if not bus.running:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
