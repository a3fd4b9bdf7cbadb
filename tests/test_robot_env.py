"""Policies on hardware drivers: the robot env over a driver, and ``deploy --robot`` against
emulated hardware (a Koch arm on the virtual Dynamixel bus, a Franka on franky-sim)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robolearn.cli.main import main
from robolearn.core.types import CommandError, ConfigError
from robolearn.drivers.registry import open_robot, robot_names
from robolearn.envs.robot_env import RobotEnv
from tests._robot_policies import tiny_bc_policy


def test_robot_env_maps_actions_and_observations() -> None:
    with open_robot("virtual:koch-follower") as driver:
        env = RobotEnv(driver, control_hz=20, episode_seconds=0.5)
        try:
            obs, _ = env.reset()
            assert set(obs) == {"qpos", "qvel", "ee_pos", "ee_quat", "gripper_width"}
            target = np.r_[obs["qpos"] + 0.05, 0.02].astype(np.float32)
            for _ in range(env.task.max_episode_steps):
                obs, reward, terminated, truncated, _ = env.step(target)
            assert truncated and not terminated and reward == 0.0
            np.testing.assert_allclose(obs["qpos"], target[:-1], atol=0.02)
            cmd = env.action_to_command(target)
            np.testing.assert_allclose(env.command_to_action(cmd), target, atol=1e-6)
            with pytest.raises(CommandError, match="shape"):
                env.action_to_command(np.zeros(3))
        finally:
            env.close()


def test_robot_env_refuses_modes_the_driver_lacks() -> None:
    with (
        open_robot("virtual:koch-follower") as driver,
        pytest.raises(ConfigError, match="ee_delta"),
    ):
        RobotEnv(driver, control_mode="ee_delta")


def test_registry_errors_are_clear() -> None:
    assert "franka-sim" in robot_names() and "virtual:koch-follower" in robot_names()
    with pytest.raises(ConfigError, match="port="), open_robot("koch-follower"):
        pass
    with pytest.raises(ConfigError, match="host="), open_robot("franka"):
        pass
    with pytest.raises(ConfigError, match="unknown robot 'nope'"), open_robot("nope"):
        pass


def _deploy_on(robot: str, tmp_path: Path) -> Path:
    """``robolearn deploy --robot ROBOT`` for 1 s with a policy fitting the robot."""
    with open_robot(robot) as driver:
        env = RobotEnv(driver, control_hz=20)
        folder = tiny_bc_policy(env, tmp_path / "policy")
        env.close()
    out = tmp_path / "deploy"
    status = main(
        [
            "deploy",
            "--robot",
            robot,
            "--policy",
            str(folder),
            "--episodes",
            "1",
            "--seconds",
            "1",
            "--inference",
            "sync",
            "--no-keyboard-estop",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    rows = json.loads((out / "summary.json").read_text())
    assert rows[0]["ticks"] == 20 and rows[0]["success"] is False
    return out


def test_deploy_on_a_virtual_dynamixel_arm(tmp_path: Path) -> None:
    out = _deploy_on("virtual:koch-follower", tmp_path)
    steps = np.load(out / "episode_000" / "steps.npz")
    assert np.isfinite(steps[steps.files[0]]).all()


def test_deploy_refuses_scripted_on_hardware(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--robot", "franka-sim", "--episodes", "1"]) == 2
    assert "scripted experts exist only for the simulated tasks" in capsys.readouterr().err


def test_deploy_on_franky_sim(tmp_path: Path) -> None:
    _deploy_on("franka-sim", tmp_path)


def _record_with_leader(
    tmp_path: Path, extra: list[str], hand_moves: dict[int, float] | None = None
) -> Path:
    """``robolearn record --robot virtual:koch-follower --teleop leader_arm`` for one 1-s
    episode, the leader on its own virtual bus (joints moved by hand first); the dataset."""
    from robolearn.drivers.dynamixel.calibration import save_calibration, symmetric_calibration
    from robolearn.drivers.dynamixel.configs import arm_config
    from robolearn.drivers.dynamixel.virtual_bus import VirtualDynamixelBus, servos_for_arm

    calibration = tmp_path / "cal"
    save_calibration(symmetric_calibration(arm_config("koch-leader")), calibration)
    out = tmp_path / "data"
    bus = VirtualDynamixelBus(servos_for_arm("koch-leader"))
    with bus as port:
        if hand_moves:
            bus.move_by_hand(hand_moves)
        status = main(
            [
                "record",
                "--robot",
                "virtual:koch-follower",
                "--teleop",
                "leader_arm",
                "--teleop-option",
                "leader=koch-leader",
                f"port={port}",
                f"calibration_dir={calibration}",
                *extra,
                "--episodes",
                "1",
                "--seconds",
                "1",
                "--hz",
                "20",
                "--out",
                str(out),
            ]
        )
    assert status == 0
    return out


def test_record_on_a_virtual_arm_with_a_leader_arm(tmp_path: Path) -> None:
    """`record --robot virtual:koch-follower --teleop leader_arm`: a leader arm on its own
    virtual bus, moved by hand, is mirrored onto the follower and recorded."""
    from robolearn.data.reader import DatasetReader

    out = _record_with_leader(tmp_path, [], {1: 2048 + 300})  # the leader's first joint turned
    reader = DatasetReader(out)
    assert reader.num_episodes == 1 and reader.episode_length(0) == 20
    assert "observation.environment_state" not in reader.features
    actions = reader.column("action")  # joint targets + gripper width, after the safety layer
    state = reader.column("observation.state")
    assert actions[-1, 0] > 0.3  # the turned joint's target (≈ 300 ticks ≈ 0.46 rad)
    assert state[-1, 0] > state[0, 0] + 0.1  # and the follower moved toward it


def test_eval_on_a_robot_asks_a_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from robolearn.evaluate import EvalSpec, evaluate

    with open_robot("virtual:koch-follower") as driver:
        env = RobotEnv(driver, control_hz=20)
        folder = tiny_bc_policy(env, tmp_path / "policy")
        env.close()
    spec = EvalSpec(
        policy=str(folder),
        robot="virtual:koch-follower",
        episodes=2,
        episode_seconds=0.5,
        judge=lambda k: k == 0,
        out=tmp_path / "eval",
    )
    result = evaluate(spec)
    assert [e.steps for e in result.episodes] == [10, 10]
    assert result.successes == 1 and (tmp_path / "eval" / "eval.json").is_file()
    # From the CLI the operator judges; without a terminal that is one clear error.
    status = main(
        [
            "eval",
            "--policy",
            str(folder),
            "--robot",
            "virtual:koch-follower",
            "--episodes",
            "1",
            "--seconds",
            "0.2",
            "--out",
            str(tmp_path / "e2"),
        ]
    )
    assert status == 2
    assert "asks the operator" in capsys.readouterr().err


def _video(path: Path, frames: int = 90, size: tuple[int, int] = (48, 64)) -> Path:
    """A small MJPG .avi whose frames carry their index in the red channel."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size[::-1])
    for i in range(frames):
        frame = np.zeros((*size, 3), np.uint8)
        frame[..., 2] = (i * 2) % 256  # BGR: red
        writer.write(frame)
    writer.release()
    return path


def test_record_with_a_camera_on_a_virtual_arm(tmp_path: Path) -> None:
    """`record --robot ... --camera front=opencv:FILE`: the camera's frames become the
    dataset's observation.images.front video beside the arm's state."""
    from robolearn.data.reader import DatasetReader

    video = _video(tmp_path / "front.avi")
    out = _record_with_leader(tmp_path, ["--camera", f"front=opencv:{video}"])
    reader = DatasetReader(out)
    assert reader.camera_keys == ["observation.images.front"]
    frames = reader.frames("observation.images.front", 0, np.array([0.0, 0.95]))
    assert frames.shape == (2, 48, 64, 3)
    assert frames[1, ..., 0].mean() > frames[0, ..., 0].mean()  # later frames, redder


def test_camera_specs_are_checked() -> None:
    from robolearn.drivers.registry import open_cameras

    with pytest.raises(ConfigError, match="NAME=realsense"):
        open_cameras(["front"])
    with pytest.raises(ConfigError, match="HEIGHTxWIDTH"):
        open_cameras(["front=opencv:0@big"])
    assert open_cameras(["a=opencv:0@480x640", "b=realsense"])[0].name == "a"
