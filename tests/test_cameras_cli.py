"""``robolearn find-cameras`` on this machine (no cameras) and on the SDK's software device."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyrealsense2 as rs
import pytest

from robolearn.cli.config import add_dataclass_arguments, parse_into
from robolearn.cli.find_cameras_cmd import (
    COMMAND,
    FindCamerasConfig,
    format_report,
    realsense_rows,
    run,
    video_report,
)
from robolearn.drivers.cameras.software_realsense import SoftwareRealSense


def test_find_cameras_prints_both_sections(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(FindCamerasConfig()) == 0
    out = capsys.readouterr().out
    assert out.startswith("RealSense cameras:\n") and "\nOpenCV / V4L2 video devices:\n" in out
    realsense_part, video_part = out.split("OpenCV / V4L2 video devices:")
    if len(rs.context().query_devices()) == 0:
        assert "none found" in realsense_part
    if not list(Path("/dev").glob("video*")):
        assert "none found" in video_part


def test_find_cameras_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(FindCamerasConfig(json=True, modes=True)) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"realsense", "video"}
    assert all(isinstance(report[k]["devices"], list) for k in report)


def test_realsense_rows_describe_a_device() -> None:
    sim = SoftwareRealSense(64, 48, serial="SIM-0042")
    rows = realsense_rows([sim.device], with_modes=True)
    assert rows[0]["serial"] == "SIM-0042" and rows[0]["usb_type"] == "3.2"
    assert rows[0]["modes"] == ["color rgb8 64x48 @ 30 fps", "depth z16 64x48 @ 30 fps"]
    text = format_report(
        {"realsense": {"devices": rows, "error": None}, "video": {"devices": [], "error": None}}
    )
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["name", "serial"]
    assert "SIM-0042" in lines[3] and "5.16.0.1" in lines[3]
    assert any(line.endswith("color rgb8 64x48 @ 30 fps") for line in lines)
    assert lines[-1] == "  none found"


def test_unusable_video_nodes_are_listed_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "video3").write_bytes(b"")  # a file, not a V4L2 device
    report = video_report(with_modes=True, dev_dir=tmp_path)
    (row,) = report["devices"]
    assert row["path"].endswith("video3") and row["index"] == 3 and not row["captures_video"]
    assert row["card"].startswith("unreadable: ")
    text = format_report({"realsense": {"devices": [], "error": None}, "video": report})
    assert "video3" in text and "unreadable" in text and "no" in text.split()


def test_command_parses_its_options() -> None:
    assert COMMAND.name == "find-cameras" and COMMAND.config is FindCamerasConfig
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, FindCamerasConfig)
    cfg = parse_into(FindCamerasConfig, parser.parse_args(["--modes", "--json"]))
    assert cfg.modes and cfg.json
