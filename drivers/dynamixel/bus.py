"""A Dynamixel Protocol 2.0 bus over ``dynamixel_sdk`` and pyserial, with retries and clear errors.

:class:`DynamixelBus` opens a serial port (a U2D2 at ``/dev/ttyUSB0``, or the pty of
:class:`~robolearn.drivers.dynamixel.virtual_bus.VirtualDynamixelBus`) with the SDK's
``PortHandler``
and talks through its ``PacketHandler``, ``GroupSyncRead`` and ``GroupSyncWrite``:

* sync reads keep each servo's status error byte (``GroupSyncRead.rxPacket`` drops it), so a
  servo's hardware-error alert surfaces as one :class:`DriverError` naming the motor and the
  fault instead of passing unnoticed;
* every read and acknowledged write is retried up to ``retries`` times on a missing or
  corrupt status packet (a sync read asks again only the motors whose reply was bad); sync
  writes are not acknowledged by the protocol (the next control tick re-sends the goal);
* a port that does not exist, a motor that does not answer and a bus that disappears
  (adapter unplugged: pyserial and termios raise) each become one :class:`DriverError` that
  names the port, the motor and the fix.

Two things differ from using the SDK naively, neither a patch of the SDK:

* :class:`WaitingPortHandler` waits in ``select`` (≤ 1 ms) for reply bytes where the SDK
  spins on a non-blocking read. Spinning burns a core on real hardware and, with the virtual
  bus served by a thread of the same process, starves that thread of the GIL (a 9-servo sync
  read then takes ~8 ms instead of ~1 ms);
* the SDK leaves ``port.is_using`` set when pyserial raises mid-transaction; the bus resets it.

On a pty nothing else is special: pyserial applies its raw termios settings to the slave and
the virtual bus reads the baud rate back from them.

Known limitation of ``dynamixel_sdk`` 4.x for Python: its ``txPacket`` discards the result
of its own byte stuffing, so an instruction whose parameters hold ``FF FF FD`` goes out
unstuffed. The values this driver writes (positions within one turn, homing offsets of a
few thousand ticks, IDs) never hold that pattern.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import termios
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from robolearn.core.extras import require
from robolearn.core.types import ConfigError, DriverError
from robolearn.drivers.dynamixel.control_table import (
    REG,
    ModelInfo,
    decode_value,
    describe_hardware_error,
    encode_value,
    model_name,
)
from robolearn.drivers.dynamixel.protocol import ALERT, StatusError

logger = logging.getLogger(__name__)

SDK_BAUDS = (
    9_600,
    19_200,
    38_400,
    57_600,
    115_200,
    230_400,
    460_800,
    500_000,
    576_000,
    921_600,
    1_000_000,
    1_152_000,
    2_000_000,
    2_500_000,
    3_000_000,
    3_500_000,
    4_000_000,
)

if TYPE_CHECKING:
    import dynamixel_sdk as dxl
    import serial
else:
    dxl = require("dynamixel_sdk", "Dynamixel arms")
    serial = require("serial", "Dynamixel arms")
"""Baud rates ``dynamixel_sdk``'s PortHandler can open."""
POLL_S = 0.001
"""Longest wait in ``select`` before the SDK checks its packet timeout again."""
FIND_PORTS_HINT = "list the serial ports with `robolearn find-ports`"
T = TypeVar("T")


class WaitingPortHandler(dxl.PortHandler):
    """``dynamixel_sdk.PortHandler`` that blocks ≤ :data:`POLL_S` for bytes instead of spinning.

    ``latency_timer_ms`` replaces the SDK's fixed 16 ms (the FTDI default) in the status
    packet timeout, ``2 × latency + 2 ms + bytes on the wire``.
    """

    def __init__(self, port_name: str, latency_timer_ms: float = 16.0) -> None:
        super().__init__(port_name)
        self.latency_timer_ms = latency_timer_ms

    def readPort(self, length: int) -> bytes:
        """Up to ``length`` bytes, after waiting at most :data:`POLL_S` for the first."""
        select.select([self.ser.fileno()], [], [], POLL_S)
        data: bytes = super().readPort(length)
        return data

    def setPacketTimeout(self, packet_length: int) -> None:
        """Start the status-packet timeout for a reply of ``packet_length`` bytes."""
        self.packet_start_time = self.getCurrentTime()
        wire_ms = self.tx_time_per_byte * packet_length
        self.packet_timeout = wire_ms + 2.0 * self.latency_timer_ms + 2.0


@dataclass(frozen=True)
class BusMotor:
    """One servo on a bus: its ID, model and the name errors call it by."""

    id: int
    model: ModelInfo
    name: str

    def label(self) -> str:
        """``"ID 4 (elbow)"``."""
        return f"ID {self.id} ({self.name})"


class DynamixelBus:
    """One serial port with Dynamixel X-series servos behind it (see the module doc).

    Open it with :meth:`open` (or ``with``); :meth:`check_motors` pings every servo and
    checks its model. Reads and writes take register names from
    :mod:`robolearn.drivers.dynamixel.control_table` and raw register values.
    """

    def __init__(
        self,
        port: str,
        motors: Iterable[BusMotor],
        baud: int = 1_000_000,
        retries: int = 3,
        latency_timer_ms: float = 16.0,
    ) -> None:
        self.port = str(port)
        self.motors: dict[int, BusMotor] = {}
        for m in motors:
            if m.id in self.motors:
                raise ConfigError(f"motor ID {m.id} appears twice on {self.port}")
            self.motors[m.id] = m
        if baud not in SDK_BAUDS:
            raise ConfigError(
                f"baud {baud} is not one dynamixel_sdk can open; use one of {SDK_BAUDS}"
            )
        if retries < 0:
            raise ConfigError(f"retries must be >= 0, got {retries}")
        self.baud = baud
        self.retries = retries
        self.latency_timer_ms = latency_timer_ms
        self.retried = 0
        """Transactions repeated after a missing or corrupt status packet (a health counter)."""
        self._port: WaitingPortHandler | None = None
        self._packets = dxl.PacketHandler(2.0)
        self._gone: str | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def is_open(self) -> bool:
        """Whether the port is open (and has not been lost)."""
        return self._port is not None

    def open(self) -> None:
        """Open the serial port; :class:`DriverError` naming the port if it cannot be."""
        if self._port is not None:
            return
        if not os.path.exists(self.port):
            raise DriverError(f"serial port {self.port} does not exist; {FIND_PORTS_HINT}")
        handler = WaitingPortHandler(self.port, self.latency_timer_ms)
        handler.baudrate = self.baud
        try:
            handler.openPort()
        except (serial.SerialException, OSError) as exc:
            raise DriverError(
                f"cannot open serial port {self.port}: {exc}; check that you may access it "
                "(on Linux: be in the dialout group) and that no other program holds it"
            ) from exc
        self._port, self._gone = handler, None
        _warn_about_latency_timer(self.port)

    def close(self) -> None:
        """Close the port (never raises). Idempotent."""
        port, self._port = self._port, None
        if port is not None and port.ser is not None:
            with contextlib.suppress(Exception):
                port.closePort()

    def __enter__(self) -> DynamixelBus:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- discovery

    def ping(self, motor_id: int) -> int | None:
        """The model number of ``motor_id``, or ``None`` if it does not answer (with retries)."""
        for _ in range(self.retries + 1):
            number, result, _ = self._call(lambda: self._packets.ping(self._handler, motor_id))
            if result == dxl.COMM_SUCCESS:
                return int(number)
            self.retried += 1
        return None

    def broadcast_ping(self) -> dict[int, tuple[int, int]]:
        """Every servo that answers a broadcast ping: ID → (model number, firmware)."""
        found, result = self._call(lambda: self._packets.broadcastPing(self._handler))
        if result not in (dxl.COMM_SUCCESS, dxl.COMM_RX_TIMEOUT):
            logger.debug("broadcast ping on %s: %s", self.port, self._result_text(result))
        return {int(i): (int(v[0]), int(v[1])) for i, v in found.items()}

    def check_motors(self) -> None:
        """Ping every configured motor; one :class:`DriverError` naming every missing or
        wrong-model motor, with the fix."""
        missing, wrong = [], []
        for m in self.motors.values():
            number = self.ping(m.id)
            if number is None:
                missing.append(m.label())
            elif number != m.model.number:
                wrong.append(
                    f"{m.label()} is a {model_name(number)} (model {number}) but the config "
                    f"expects a {m.model.name} (model {m.model.number})"
                )
        if missing:
            ids = ", ".join(missing)
            raise DriverError(
                f"motor {ids} does not answer on {self.port} at {self.baud} baud: check its "
                "power and cable, and that its ID and baud rate are set; "
                f"`robolearn find-ports --scan --port {self.port}` lists the IDs that answer"
            )
        if wrong:
            raise DriverError(f"wrong servo model on {self.port}: " + "; ".join(wrong))

    # ---------------------------------------------------------------- reads

    def read(self, motor_id: int, name: str) -> int:
        """One register of one motor (retried; errors name the motor)."""
        reg = REG[name]
        for _ in range(self.retries + 1):
            data, result, error = self._call(
                lambda: self._packets.readTxRx(self._handler, motor_id, reg.address, reg.size)
            )
            if result == dxl.COMM_SUCCESS:
                self._check_error(motor_id, error, f"reading {name}")
                return decode_value(reg, bytes(data))
            self.retried += 1
        raise self._no_reply(motor_id, f"reading {name}", result)

    def hardware_error(self, motor_id: int) -> int:
        """The Hardware Error Status bits of one motor (0 when fine or silent); unlike
        :meth:`read`, a set alert bit is no error here."""
        reg = REG["hardware_error_status"]
        for _ in range(self.retries + 1):
            data, result, _ = self._call(
                lambda: self._packets.readTxRx(self._handler, motor_id, reg.address, reg.size)
            )
            if result == dxl.COMM_SUCCESS and data:
                return int(data[0])
        return 0

    def sync_read(self, name: str, ids: Sequence[int] | None = None) -> dict[int, int]:
        """One register of many motors in one sync read: ID → value."""
        reg = REG[name]
        blocks = self.sync_read_block(reg.address, reg.size, ids)
        return {i: decode_value(reg, data) for i, data in blocks.items()}

    def sync_read_block(
        self, address: int, length: int, ids: Sequence[int] | None = None
    ) -> dict[int, bytes]:
        """``length`` bytes from ``address`` of many motors in one sync read: ID → bytes.

        Motors whose status packet is missing or corrupt are asked again in a sync read of
        their own, up to ``retries`` times; a hardware-error alert raises
        :class:`DriverError` at once.
        """
        pending = list(self.motors) if ids is None else list(ids)
        blocks: dict[int, bytes] = {}
        errors: dict[int, int] = {}
        last_failed, result = pending[0], dxl.COMM_TX_FAIL
        for _ in range(self.retries + 1):
            failed_id, result = self._sync_read_once(address, length, pending, blocks, errors)
            if failed_id is None:
                for motor_id, error in errors.items():
                    self._check_error(motor_id, error, "in a sync read")
                return {i: blocks[i] for i in (list(self.motors) if ids is None else ids)}
            last_failed = failed_id
            pending = [i for i in pending if i not in blocks]
            self.retried += 1
        raise self._no_reply(last_failed, f"in a sync read of address {address}", result)

    def _sync_read_once(
        self,
        address: int,
        length: int,
        ids: list[int],
        blocks: dict[int, bytes],
        errors: dict[int, int],
    ) -> tuple[int | None, int]:
        """One sync read of ``ids`` into ``blocks``/``errors``: (the first ID without a valid
        reply or ``None``, the SDK's result)."""
        group = dxl.GroupSyncRead(self._handler, self._packets, address, length)
        for motor_id in ids:
            group.addParam(motor_id)
        result = self._call(group.txPacket)
        if result != dxl.COMM_SUCCESS:
            return ids[0], result
        for motor_id in ids:
            data, result, error = self._call(
                lambda i=motor_id: self._packets.readRx(self._handler, i, length)  # type: ignore[misc]
            )
            if result != dxl.COMM_SUCCESS:
                return motor_id, result
            blocks[motor_id], errors[motor_id] = bytes(data), int(error)
        return None, dxl.COMM_SUCCESS

    # ---------------------------------------------------------------- writes

    def write(self, motor_id: int, name: str, value: int) -> None:
        """Write one register of one motor and wait for its acknowledgement (retried)."""
        reg = REG[name]
        data = list(encode_value(reg, value))
        for _ in range(self.retries + 1):
            result, error = self._call(
                lambda: self._packets.writeTxRx(
                    self._handler, motor_id, reg.address, reg.size, data
                )
            )
            if result == dxl.COMM_SUCCESS:
                self._check_error(motor_id, error, f"writing {name}={value}")
                return
            self.retried += 1
        raise self._no_reply(motor_id, f"writing {name}={value}", result)

    def sync_write(self, name: str, values: Mapping[int, int]) -> None:
        """One register of many motors in one sync write (not acknowledged by the protocol)."""
        reg = REG[name]
        group = dxl.GroupSyncWrite(self._handler, self._packets, reg.address, reg.size)
        for motor_id, value in values.items():
            group.addParam(motor_id, list(encode_value(reg, value)))
        result = self._call(group.txPacket)
        if result != dxl.COMM_SUCCESS:
            raise DriverError(
                f"sync write of {name} on {self.port} failed: {self._result_text(result)}"
            )

    def set_torque(self, enabled: bool, ids: Iterable[int] | None = None) -> None:
        """Switch torque on or off, motor by motor, each acknowledged."""
        for motor_id in self.motors if ids is None else ids:
            self.write(motor_id, "torque_enable", int(enabled))

    def reboot(self, motor_id: int) -> None:
        """Reboot one servo (clears a hardware error; torque comes back off)."""
        result, _ = self._call(lambda: self._packets.reboot(self._handler, motor_id))
        if result != dxl.COMM_SUCCESS:
            raise self._no_reply(motor_id, "rebooting", result)

    # ---------------------------------------------------------------- errors

    @property
    def _handler(self) -> WaitingPortHandler:
        if self._gone is not None:
            raise DriverError(self._gone)
        if self._port is None:
            raise DriverError(f"the Dynamixel bus on {self.port} is not open: call open() first")
        return self._port

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one SDK call; a vanished port becomes one :class:`DriverError`."""
        handler = self._handler
        try:
            return fn()
        except (serial.SerialException, OSError, termios.error) as exc:
            reason = exc.args[-1] if isinstance(exc, termios.error) and exc.args else exc
            self._gone = (
                f"lost the Dynamixel bus on {self.port} ({reason}): the adapter was unplugged "
                "or lost power; plug it back in and connect again"
            )
            self.close()
            raise DriverError(self._gone) from exc
        finally:
            handler.is_using = False

    def _check_error(self, motor_id: int, error: int, doing: str) -> None:
        """Raise :class:`DriverError` for a status packet's error byte (hardware alert or an
        instruction error)."""
        if error & ALERT:
            self._raise_hardware_error(motor_id)
        code = error & ~ALERT
        if code:
            reason = StatusError(code).name.lower().replace("_", " ") if code < 8 else str(code)
            raise DriverError(
                f"motor {self._label(motor_id)} on {self.port} refused {doing}: {reason} error"
            )

    def _raise_hardware_error(self, motor_id: int) -> None:
        bits = self.hardware_error(motor_id)
        raise DriverError(
            f"motor {self._label(motor_id)} on {self.port} reports a hardware error "
            f"({describe_hardware_error(bits)}); its torque is off. Remove the cause "
            "(load, heat, supply voltage), then reboot the motor (DynamixelArm."
            "clear_hardware_errors(), DynamixelBus.reboot or a power cycle) and connect again"
        )

    def _no_reply(self, motor_id: int, doing: str, result: int) -> DriverError:
        return DriverError(
            f"motor {self._label(motor_id)} on {self.port} gave no valid reply {doing} after "
            f"{self.retries + 1} attempts ({self._result_text(result)}): check its cable and "
            "power; `robolearn find-ports --scan` lists the IDs that answer"
        )

    def _label(self, motor_id: int) -> str:
        motor = self.motors.get(motor_id)
        return motor.label() if motor is not None else f"ID {motor_id}"

    def _result_text(self, result: int) -> str:
        text: str = self._packets.getTxRxResult(result)
        return text.replace("[TxRxResult] ", "").rstrip("!") or f"result {result}"


def _warn_about_latency_timer(port: str) -> None:
    """Log a warning when an FTDI adapter's latency timer is above 1 ms (ROBOTIS' advice)."""
    name = Path(os.path.realpath(port)).name
    timer = Path("/sys/bus/usb-serial/devices") / name / "latency_timer"
    with contextlib.suppress(OSError, ValueError):
        value = int(timer.read_text().strip())
        if value > 1:
            logger.warning(
                "%s: USB latency timer is %d ms; set it to 1 ms for fast servo reads: "
                "echo 1 | sudo tee %s",
                port,
                value,
                timer,
            )
