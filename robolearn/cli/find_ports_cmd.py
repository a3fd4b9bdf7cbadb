"""``robolearn find-ports``: list serial ports and, with ``--scan``, the Dynamixel IDs on them.

Without options it prints pyserial's list of serial ports (device, description, hardware
id). ``--scan`` opens each listed port (or the ``--port`` ones instead, e.g. a virtual bus's
pty, which pyserial does not list) at each ``--baud`` and pings: a broadcast ping by
default, or the given ``--ids`` one by one. ``--unplug`` finds an adapter's port by asking you to
unplug it and comparing the lists.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from robolearn.cli.common import Subcommand, format_table
from robolearn.core.types import ConfigError, DriverError

PORT_HEADERS = ("port", "description", "hardware id")
SCAN_HEADERS = ("port", "baud", "id", "model", "firmware")


@dataclass
class FindPortsConfig:
    """List serial ports; with --scan, ping Dynamixel servos on them."""

    scan: bool = False
    """Open each port and ping Dynamixel IDs at each --baud."""
    port: list[str] = field(default_factory=list)
    """Ports to scan instead of those pyserial lists (e.g. a virtual bus's /dev/pts/N, which
    pyserial does not list)."""
    baud: list[int] = field(default_factory=lambda: [1_000_000, 57_600])
    """Baud rates to try when scanning (Dynamixel X ships at 57600; ALOHA and Koch use 1M)."""
    ids: str | None = None
    """IDs to ping one by one, e.g. 1..9 or 1,2,5; none sends one broadcast ping per baud."""
    unplug: bool = False
    """Find a port by unplugging its adapter when asked (needs a terminal)."""


def list_ports() -> list[tuple[str, str, str]]:
    """(device, description, hardware id) of every serial port pyserial finds, sorted."""
    from robolearn.core.extras import require

    require("serial", "listing serial ports")
    from serial.tools import list_ports as serial_ports

    rows = [(p.device, p.description or "", p.hwid or "") for p in serial_ports.comports()]
    return sorted(rows)


def scan_port(
    port: str, bauds: Sequence[int], ids: Sequence[int] | None = None
) -> list[tuple[int, int, int, int]]:
    """(baud, id, model number, firmware) of every servo answering on ``port``."""
    from robolearn.drivers.dynamixel.bus import DynamixelBus

    found = []
    for baud in bauds:
        with DynamixelBus(port, [], baud=baud, retries=0) as bus:
            if ids is None:
                answers = bus.broadcast_ping()
            else:
                answers = {}
                for motor_id in ids:
                    number = bus.ping(motor_id)
                    if number is not None:
                        answers[motor_id] = (number, bus.read(motor_id, "firmware_version"))
        found += [(baud, i, number, fw) for i, (number, fw) in sorted(answers.items())]
    return found


def run(cfg: FindPortsConfig) -> int:
    """Print the ports (and what answers on them)."""
    if cfg.unplug:
        print(f"the adapter's port is {find_port_by_unplugging()}")
        return 0
    ports = list_ports()
    if not cfg.scan:
        print(format_table(PORT_HEADERS, ports) if ports else "no serial ports found")
        return 0
    return _scan(cfg, [p[0] for p in ports])


def _scan(cfg: FindPortsConfig, listed: list[str]) -> int:
    from robolearn.drivers.dynamixel.control_table import model_name
    from robolearn.drivers.dynamixel.virtual_bus import parse_ids

    targets = cfg.port or listed
    if not targets:
        raise ConfigError("no serial ports to scan; plug the adapter in or name one with --port")
    ids = parse_ids(cfg.ids) if cfg.ids else None
    rows = []
    for port in targets:
        try:
            found = scan_port(port, cfg.baud, ids)
        except DriverError as exc:
            print(f"{port}: {exc}", file=sys.stderr)
            continue
        rows += [(port, baud, i, model_name(n), fw) for baud, i, n, fw in found]
    print(format_table(SCAN_HEADERS, rows) if rows else "no Dynamixel servo answered")
    return 0


def find_port_by_unplugging() -> str:
    """Ask the user to unplug the adapter; the one port that disappeared."""
    before = {p[0] for p in list_ports()}
    input("Unplug the adapter's USB cable, then press Enter. ")
    gone = sorted(before - {p[0] for p in list_ports()})
    if len(gone) != 1:
        raise ConfigError(f"expected one port to disappear, {len(gone)} did: {gone}; try again")
    input("Plug it back in, then press Enter. ")
    return gone[0]


COMMAND = Subcommand(
    name="find-ports",
    help="list serial ports; --scan pings Dynamixel servos on them",
    config=FindPortsConfig,
    run=run,
)
