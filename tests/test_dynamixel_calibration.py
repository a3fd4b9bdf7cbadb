"""Calibration files and the guided procedure (library and ``robolearn calibrate``), driven by
scripted stdin against the virtual bus while a test thread moves the joints "by hand"."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from robolearn.cli import calibrate_cmd
from robolearn.core.types import Command, ConfigError, ControlMode
from robolearn.drivers.dynamixel import (
    KOCH_FOLLOWER,
    VIPERX_300S,
    ArmCalibration,
    ArmConfig,
    DynamixelArm,
    GuidedCalibration,
    calibration_path,
    default_calibration_dir,
    load_calibration,
    save_calibration,
    symmetric_calibration,
)
from robolearn.drivers.dynamixel.control_table import CENTER_TICKS, ticks_to_rad
from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm

MIDDLE_PROMPT = "Press Enter when it is there."
RANGE_PROMPT = "Press Enter when every joint has been moved."


class Terminal(io.TextIOBase):
    """A stdout that keeps what was written and lets the operator thread wait for a prompt."""

    def __init__(self) -> None:
        self.text = ""
        self._changed = threading.Condition()

    def write(self, s: str) -> int:
        with self._changed:
            self.text += s
            self._changed.notify_all()
        return len(s)

    def wait_for(self, needle: str, timeout_s: float = 30.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: needle in self.text, timeout_s), self.text


@dataclass
class Operator:
    """The person at the arm: answers prompts and moves joints on the virtual bus."""

    bus: VirtualDynamixelBus
    terminal: Terminal
    keys: io.TextIOWrapper

    def press_enter(self) -> None:
        self.keys.write("\n")
        self.keys.flush()

    def move_and_let_it_be_read(self, motor_id: int, ticks: float) -> None:
        """Turn one joint by hand, then wait until a sync read has seen it."""
        self.bus.move_by_hand({motor_id: ticks})
        seen = self.bus.stats.received
        deadline = time.monotonic() + 30.0
        while self.bus.stats.received <= seen and time.monotonic() < deadline:
            time.sleep(0.002)

    def calibrate(self, sweeps: dict[int, tuple[int, int]]) -> None:
        """Middle pose (where the arm is), Enter; sweep each motor −low..+high, Enter."""
        self.terminal.wait_for(MIDDLE_PROMPT)
        self.press_enter()
        self.terminal.wait_for(RANGE_PROMPT)
        for motor_id, (low, high) in sweeps.items():
            self.move_and_let_it_be_read(motor_id, CENTER_TICKS - low)
            self.move_and_let_it_be_read(motor_id, CENTER_TICKS + high)
            self.move_and_let_it_be_read(motor_id, CENTER_TICKS)
        self.press_enter()


@pytest.fixture
def keyboard() -> Iterator[tuple[io.TextIOWrapper, io.TextIOWrapper]]:
    """(stdin for the procedure, the keys the operator types into it): a real pipe."""
    read_fd, write_fd = os.pipe()
    stdin, keys = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")
    yield stdin, keys
    keys.close()
    stdin.close()


def _assembled_arm(config: ArmConfig) -> VirtualDynamixelBus:
    """The servos of ``config`` as assembled: shafts anywhere in their turn (middle pose)."""
    servos = servos_for_arm(config.name)
    rng = np.random.default_rng(7)
    for servo in servos:
        if servo.mirror_of is None:
            servo.move_by_hand(float(rng.integers(800, 3300)))
    return VirtualDynamixelBus(servos)


def _run_with_operator(
    bus: VirtualDynamixelBus,
    terminal: Terminal,
    keys: io.TextIOWrapper,
    sweeps: dict[int, tuple[int, int]],
    procedure: Callable[[], object],
) -> object:
    """Run ``procedure`` while an operator thread answers it; its result."""
    operator = Operator(bus, terminal, keys)
    thread = threading.Thread(target=operator.calibrate, args=(sweeps,), daemon=True)
    thread.start()
    try:
        return procedure()
    finally:
        thread.join(timeout=30)


def _joint_sweeps(config: ArmConfig) -> dict[int, tuple[int, int]]:
    """A distinct (low, high) sweep in ticks for every primary motor."""
    return {m.id: (600 + 37 * m.id, 700 + 41 * m.id) for m in config.primaries}


# ---------------------------------------------------------------------------- files


def test_calibration_round_trips_through_json(tmp_path: Path) -> None:
    calibration = symmetric_calibration(VIPERX_300S, "left-arm")
    path = save_calibration(calibration, tmp_path)
    assert path == tmp_path / "left-arm.json"
    data = json.loads(path.read_text())
    assert data["format"] == "robolearn/dynamixel-calibration@1"
    assert data["motors"]["shoulder_shadow"] == {
        "id": 3,
        "model": "xm540-w270",
        "drive_mode": 1,
        "homing_offset": 4096,
        "range_min": 1024,
        "range_max": 3072,
    }
    assert load_calibration("left-arm", VIPERX_300S, tmp_path) == calibration


def test_default_directory_and_its_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ROBOLEARN_CALIBRATION_DIR", raising=False)
    assert default_calibration_dir() == Path.home() / ".cache/robolearn/calibration"
    monkeypatch.setenv("ROBOLEARN_CALIBRATION_DIR", str(tmp_path))
    assert calibration_path("koch-follower") == tmp_path / "koch-follower.json"


def test_a_malformed_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "koch-follower.json").write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="not a valid calibration file"):
        load_calibration("koch-follower", KOCH_FOLLOWER, tmp_path)


def test_a_missing_file_names_itself_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_calibration("koch-follower", KOCH_FOLLOWER, tmp_path, port="/dev/ttyACM0")
    assert f"{tmp_path / 'koch-follower.json'} does not exist" in str(info.value)
    expected = "`robolearn calibrate --robot koch-follower --port /dev/ttyACM0 --calibration-dir"
    assert expected in str(info.value)


# ------------------------------------------------------------------- guided procedure


def test_guided_calibration_centres_the_middle_pose_and_records_ranges(
    keyboard: tuple[io.TextIOWrapper, io.TextIOWrapper],
) -> None:
    stdin, keys = keyboard
    config = VIPERX_300S  # shadows, reversed motors, a current-based gripper
    bus = _assembled_arm(config)
    shafts = {s.id: s.shaft_ticks for s in bus.servos}
    sweeps = _joint_sweeps(config)
    terminal = Terminal()
    with bus as port:
        guided = GuidedCalibration(config, port, "left-arm", stdin, terminal)
        result = _run_with_operator(bus, terminal, keys, sweeps, guided.run)
        assert isinstance(result, ArmCalibration)
        calibration = result
        for m in config.motors:
            cal = calibration.motors[m.name]
            shaft = shafts[m.id]
            present_at_middle = -shaft if m.reversed else shaft
            assert cal.homing_offset == CENTER_TICKS - round(present_at_middle), m.name
            assert cal.drive_mode == int(m.reversed)
            primary = config.motor(m.shadow_of) if m.shadow_of else m
            low, high = sweeps[primary.id]
            assert (cal.range_min, cal.range_max) == (CENTER_TICKS - low, CENTER_TICKS + high)
        assert "shoulder_shadow" in terminal.text and "rad" in terminal.text

        # The calibrated arm reads 0 rad in the middle pose and moves as commanded.
        with DynamixelArm(config, port, calibration) as arm:
            np.testing.assert_allclose(arm.read().q, 0.0, atol=1e-9)
            lower = arm.spec.limits("lower")
            np.testing.assert_allclose(lower[0], ticks_to_rad(CENTER_TICKS - sweeps[1][0]))
            target = np.full(6, 0.2)
            for _ in range(40):
                arm.command(Command(ControlMode.JOINT_POSITION, joint_position=target))
                arm.wait(0.02)
            np.testing.assert_allclose(arm.read().q, target, atol=0.002)
            ticks = bus.present_positions()
            assert ticks[3] == pytest.approx(ticks[2]) and ticks[5] == pytest.approx(ticks[4])


def test_robolearn_calibrate_saves_the_file(
    keyboard: tuple[io.TextIOWrapper, io.TextIOWrapper],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    stdin, keys = keyboard
    bus = _assembled_arm(KOCH_FOLLOWER)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", terminal)
    with bus as port:
        cfg = calibrate_cmd.CalibrateConfig(
            robot="koch-follower", port=port, name="my-koch", calibration_dir=tmp_path
        )
        sweeps = _joint_sweeps(KOCH_FOLLOWER)
        status = _run_with_operator(bus, terminal, keys, sweeps, lambda: calibrate_cmd.run(cfg))
    assert status == 0
    assert f"saved the calibration of my-koch to {tmp_path / 'my-koch.json'}" in terminal.text
    calibration = load_calibration("my-koch", KOCH_FOLLOWER, tmp_path)
    assert calibration.motors["gripper"].range_max == CENTER_TICKS + sweeps[6][1]


def test_a_joint_left_unmoved_fails_the_calibration(
    keyboard: tuple[io.TextIOWrapper, io.TextIOWrapper],
) -> None:
    stdin, keys = keyboard
    bus = _assembled_arm(KOCH_FOLLOWER)
    terminal = Terminal()
    sweeps = _joint_sweeps(KOCH_FOLLOWER)
    del sweeps[3]  # elbow_flex stays in the middle pose
    with bus as port:
        guided = GuidedCalibration(KOCH_FOLLOWER, port, stdin=stdin, stdout=terminal)
        with pytest.raises(ConfigError, match=r"elbow_flex \(ID 3\) moved through only 0°"):
            _run_with_operator(bus, terminal, keys, sweeps, guided.run)


def test_closed_input_aborts_the_calibration(
    keyboard: tuple[io.TextIOWrapper, io.TextIOWrapper],
) -> None:
    stdin, keys = keyboard
    keys.close()
    with VirtualDynamixelBus(servos_for_arm("koch-follower")) as port:
        guided = GuidedCalibration(KOCH_FOLLOWER, port, stdin=stdin, stdout=Terminal())
        with pytest.raises(ConfigError, match="aborted"):
            guided.run()


def test_calibrate_refuses_an_unknown_robot() -> None:
    with pytest.raises(ConfigError, match=r"unknown arm 'so100'.*koch-follower"):
        calibrate_cmd.run(calibrate_cmd.CalibrateConfig(robot="so100", port="/dev/null"))
