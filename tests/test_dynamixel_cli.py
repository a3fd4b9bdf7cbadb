"""``robolearn find-ports`` against the virtual bus (run through the subcommand's ``run``)."""

from __future__ import annotations

import pytest

from robolearn.cli import find_ports_cmd
from robolearn.cli.config import parse
from robolearn.cli.find_ports_cmd import FindPortsConfig, scan_port
from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm
from robolearn.drivers.dynamixel.virtual_servo import VirtualServo


def test_find_ports_lists_serial_ports(capsys: pytest.CaptureFixture[str]) -> None:
    assert find_ports_cmd.run(FindPortsConfig()) == 0
    out = capsys.readouterr().out
    assert out.startswith("port ") or out.strip() == "no serial ports found"


def test_scan_finds_every_servo_of_an_arm(capsys: pytest.CaptureFixture[str]) -> None:
    with VirtualDynamixelBus(servos_for_arm("koch-follower")) as port:
        cfg = parse(FindPortsConfig, ["--scan", "--port", port, "--baud", "1000000", "57600"])
        assert find_ports_cmd.run(cfg) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["port", "baud", "id", "model", "firmware"]
    rows = [line.split() for line in lines[2:]]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("1000000", "1", "xl430-w250"),
        ("1000000", "2", "xl430-w250"),
        ("1000000", "3", "xl330-m288"),
        ("1000000", "4", "xl330-m288"),
        ("1000000", "5", "xl330-m288"),
        ("1000000", "6", "xl330-m288"),
    ]


def test_scan_pings_given_ids_at_each_baud() -> None:
    servos = [VirtualServo(3, "xm540", baud=57_600), VirtualServo(7, "xm430")]
    with VirtualDynamixelBus(servos) as port:
        found = scan_port(port, [57_600, 1_000_000], ids=[3, 7, 8])
    assert found == [(57_600, 3, 1120, 48), (1_000_000, 7, 1020, 48)]


def test_scan_reports_a_missing_port_and_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = FindPortsConfig(scan=True, port=["/dev/ttyUSB-nope"], baud=[1_000_000])
    assert find_ports_cmd.run(cfg) == 0
    captured = capsys.readouterr()
    assert "/dev/ttyUSB-nope does not exist" in captured.err
    assert "no Dynamixel servo answered" in captured.out


def test_find_ports_config_parses_ids() -> None:
    cfg = parse(FindPortsConfig, ["--scan", "--ids", "1..3", "--baud", "57600"])
    assert (cfg.scan, cfg.ids, cfg.baud) == (True, "1..3", [57_600])
