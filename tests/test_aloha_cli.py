"""ALOHA end to end through the CLI on virtual Dynamixel buses: ``record --robot aloha
--teleop aloha_leaders`` with two WidowX leaders moved by hand mirrored onto two ViperX
followers (one 14-DoF robot), then ``deploy --robot aloha`` with a small policy."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from robolearn.cli.main import main
from robolearn.core.types import ConfigError, DriverError, RobotSpec
from robolearn.data import DatasetReader
from robolearn.drivers.dynamixel.calibration import save_calibration, symmetric_calibration
from robolearn.drivers.dynamixel.configs import ALOHA
from robolearn.drivers.dynamixel.control_table import CENTER_TICKS, rad_to_ticks
from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm
from robolearn.drivers.registry import open_robot
from robolearn.envs.robot_env import RobotEnv
from robolearn.teleop.leader_follower import BimanualLeaderFollower
from robolearn.teleop.registry import make_device
from tests._robot_policies import tiny_bc_policy

HZ = 20
LEFT_WAIST_RAD = 0.3
RIGHT_HANDLE_FRACTION = 0.75
HANDLE_ID = 9  # the leader's handle motor
SIDES = ("left", "right")


@dataclass
class Aloha:
    """Four virtual buses (ports by arm name) and a folder with the four calibrations."""

    buses: dict[str, VirtualDynamixelBus]
    calibration_dir: Path

    def port(self, arm: str) -> str:
        """The pseudo-terminal of ``arm`` (an ALOHA arm name)."""
        return self.buses[arm].port

    def robot_options(self) -> list[str]:
        """``--robot-option`` items for ``--robot aloha`` on the virtual followers."""
        return [
            *(f"{s}_port={self.port(f'aloha-{s}-follower')}" for s in SIDES),
            f"calibration_dir={self.calibration_dir}",
        ]

    def teleop_options(self) -> list[str]:
        """``--teleop-option`` items for ``--teleop aloha_leaders`` on the virtual leaders."""
        return [
            *(f"{s}_port={self.port(f'aloha-{s}-leader')}" for s in SIDES),
            f"calibration_dir={self.calibration_dir}",
        ]


@pytest.fixture
def aloha(tmp_path: Path) -> Iterator[Aloha]:
    """ALOHA's four arms on virtual buses, symmetric calibrations saved under tmp_path."""
    calibration_dir = tmp_path / "cal"
    kinds = {"follower": "viperx-300s", "leader": "widowx-250s-leader"}
    buses = {}
    for config in ALOHA.arms:
        save_calibration(symmetric_calibration(config), calibration_dir)
        buses[config.name] = VirtualDynamixelBus(servos_for_arm(kinds[config.role]))
    with contextlib.ExitStack() as stack:
        for bus in buses.values():
            stack.enter_context(bus)
        yield Aloha(buses, calibration_dir)


def test_record_aloha_with_its_two_leaders(aloha: Aloha, tmp_path: Path) -> None:
    """Both leaders moved by hand (left waist turned, right handle three-quarters open):
    the recorded 14-D targets mirror them and the followers follow."""
    from robolearn.data.reader import DatasetReader

    aloha.buses["aloha-left-leader"].move_by_hand({1: rad_to_ticks(LEFT_WAIST_RAD)})
    handle_ticks = CENTER_TICKS - 1024 + RIGHT_HANDLE_FRACTION * 2048
    aloha.buses["aloha-right-leader"].move_by_hand({HANDLE_ID: handle_ticks})
    out = tmp_path / "data"
    status = _record(aloha, aloha.teleop_options(), "--episodes", "2", "--seconds", "1", out=out)
    assert status == 0
    reader = DatasetReader(out)
    assert reader.num_episodes == 2 and reader.episode_length(0) == HZ
    assert reader.features["observation.state"].shape == (14,)
    assert reader.features["action"].shape == (14,)
    actions = reader.column("action")  # (T, 14): the targets sent, after the safety layer
    state = reader.column("observation.state")  # (T, 14)
    assert actions[-1, 0] == pytest.approx(LEFT_WAIST_RAD, abs=0.005)  # left waist
    assert actions[-1, 13] == pytest.approx(RIGHT_HANDLE_FRACTION, abs=0.005)  # right gripper
    assert state[-1, 0] > state[0, 0] + 0.1  # the left follower's waist moved toward it
    assert state[-1, 13] > state[0, 13] + 0.1  # and the right gripper opened
    untouched = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    np.testing.assert_allclose(actions[:, untouched], 0.0, atol=0.005)


def _policy_folder(folder: Path, aloha: Aloha) -> tuple[Path, RobotSpec]:
    """A small untrained BC policy whose specs fit ALOHA, and the followers' 14-DoF spec."""
    options = dict(item.split("=", 1) for item in aloha.robot_options())
    with open_robot("aloha", options) as driver:
        env = RobotEnv(driver, control_hz=HZ)
        try:
            assert env.action_space.shape == (14,)
            saved = tiny_bc_policy(env, folder)
        finally:
            env.close()
    features = json.loads((saved / "config.json").read_text())["config"]["input_features"]
    assert features["observation.state"] == [14]  # qpos only: ALOHA's grippers are joints
    return saved, driver.spec


def test_deploy_a_policy_on_aloha(aloha: Aloha, tmp_path: Path) -> None:
    """`deploy --robot aloha`: a 1-s episode runs to the end and every command sent stays
    inside the followers' limits (grippers as opening fractions in [0, 1])."""
    folder, spec = _policy_folder(tmp_path / "policy", aloha)
    out = tmp_path / "deploy"
    robot = ["--robot", "aloha", "--robot-option", *aloha.robot_options()]
    run = ["--episodes", "1", "--seconds", "1", "--inference", "sync", "--no-keyboard-estop"]
    status = main(["deploy", *robot, "--policy", str(folder), *run, "--out", str(out)])
    assert status == 0
    rows = json.loads((out / "summary.json").read_text())
    assert rows[0]["ticks"] == HZ and rows[0]["ticks_without_action"] == 0
    steps = np.load(out / "episode_000" / "steps.npz")
    sent = steps["sent_joint_position"]  # (T, 14)
    assert sent.shape == (HZ, 14) and np.isfinite(sent).all()
    assert (sent >= spec.limits("lower") - 1e-9).all()
    assert (sent <= spec.limits("upper") + 1e-9).all()
    assert np.ptp(steps["q"], axis=0).max() > 0.01  # the followers moved
    with DatasetReader(out / "dataset") as log:  # the deploy log has the recording's layout
        assert log.features["observation.state"].shape == (14,)
        np.testing.assert_allclose(log.episode(0)["action"], sent, atol=1e-6)


def _record(aloha: Aloha, teleop_options: list[str], *args: str, out: Path) -> int:
    """``record --robot aloha --teleop aloha_leaders`` with these device options."""
    robot = ["--robot", "aloha", "--robot-option", *aloha.robot_options()]
    device = ["--teleop", "aloha_leaders", "--teleop-option", *teleop_options]
    return main(["record", *robot, *device, "--hz", str(HZ), *args, "--out", str(out)])


def _record_with_teleop_options(tmp_path: Path, aloha: Aloha, teleop_options: list[str]) -> int:
    """One 0.2-s episode with these device options (for the error cases)."""
    args = ("--episodes", "1", "--seconds", "0.2", "--overwrite")
    return _record(aloha, teleop_options, *args, out=tmp_path / "bad")


def test_missing_calibration_and_wrong_port_are_one_line_errors(
    aloha: Aloha, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The single-arm path's errors: no calibration names the file and the calibrate
    command; a leader port that does not exist (ALOHA's udev name by default) says so."""
    ports = [f"{s}_port={aloha.port(f'aloha-{s}-leader')}" for s in SIDES]
    empty = tmp_path / "empty"
    assert _record_with_teleop_options(tmp_path, aloha, [*ports, f"calibration_dir={empty}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "no calibration for arm 'aloha-left-leader'" in err
    assert "robolearn calibrate --robot aloha-left-leader" in err
    calibration = aloha.calibration_dir
    left_only = [ports[0], f"calibration_dir={calibration}"]  # right: ALOHA's udev name
    assert _record_with_teleop_options(tmp_path, aloha, left_only) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "serial port /dev/ttyDXL_leader_right does not exist" in err
    # The left leader, opened before the right one failed, is closed again.
    device = make_device(
        "aloha_leaders", left_port=aloha.port("aloha-left-leader"), calibration_dir=calibration
    )
    assert isinstance(device, BimanualLeaderFollower)
    with pytest.raises(DriverError, match="/dev/ttyDXL_leader_right does not exist"):
        device.connect()
    assert not device.connected and not device.left.leader.bus.is_open


def test_aloha_leaders_refuse_a_follower_of_another_kind(aloha: Aloha) -> None:
    """14 leader targets cannot drive a 5-joint arm: one ConfigError at construction."""
    from robolearn.drivers.dynamixel.arm import DynamixelArm
    from robolearn.drivers.dynamixel.configs import KOCH_FOLLOWER

    koch = DynamixelArm(KOCH_FOLLOWER, "/dev/null", symmetric_calibration(KOCH_FOLLOWER))
    with pytest.raises(ConfigError, match="give 14 targets but follower koch-follower has 5"):
        make_device(
            "aloha_leaders",
            calibration_dir=str(aloha.calibration_dir),
            follower_spec=koch.spec,
        )
