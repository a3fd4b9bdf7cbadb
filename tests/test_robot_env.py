"""Policies on hardware drivers: the robot env over a driver, and ``deploy --robot`` against
emulated hardware (a Koch arm on the virtual Dynamixel bus, a Franka on franky-sim)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drivers.registry import open_robot, robot_names
from envs.robot_env import RobotEnv
from policies import make_policy
from policies.bc import BCConfig
from robolearn.cli.main import main
from robolearn.types import CommandError, ConfigError


def _policy_for(env: RobotEnv, folder: Path) -> Path:
    """A small untrained BC policy whose specs fit ``env`` (its outputs stay near the middle
    of the joint ranges: the statistics span them)."""
    obs = env.observe()
    state = np.concatenate([obs["qpos"], obs["gripper_width"]])
    low, high = env.action_space.low, env.action_space.high
    stats = {
        "observation.state": {"min": state - 1.0, "max": state + 1.0},
        "action": {"min": low * 0.1, "max": high * 0.1},
    }
    config = BCConfig(
        input_features={"observation.state": [state.size]},
        action_dim=int(low.size),
        hidden=[16],
        env={"kwargs": {"control_hz": 20.0}},
    )
    return make_policy("bc", config, stats).save(folder)


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


def test_deploy_on_a_virtual_dynamixel_arm(tmp_path: Path) -> None:
    with open_robot("virtual:koch-follower") as driver:
        env = RobotEnv(driver, control_hz=20)
        folder = _policy_for(env, tmp_path / "policy")
        env.close()
    out = tmp_path / "deploy"
    status = main(
        [
            "deploy",
            "--robot",
            "virtual:koch-follower",
            "--policy",
            str(folder),
            "--episodes",
            "1",
            "--seconds",
            "1",
            "--backend",
            "sync",
            "--no-keyboard-estop",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    rows = json.loads((out / "summary.json").read_text())
    assert rows[0]["ticks"] == 20 and rows[0]["success"] is False
    steps = np.load(out / "episode_000" / "steps.npz")
    assert np.isfinite(steps[steps.files[0]]).all()


def test_deploy_refuses_scripted_on_hardware(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--robot", "franka-sim", "--episodes", "1"]) == 2
    assert "scripted experts exist only for the simulated tasks" in capsys.readouterr().err


def test_deploy_on_franky_sim(tmp_path: Path) -> None:
    with open_robot("franka-sim") as driver:
        env = RobotEnv(driver, control_hz=20)
        folder = _policy_for(env, tmp_path / "policy")
        env.close()
    out = tmp_path / "deploy"
    status = main(
        [
            "deploy",
            "--robot",
            "franka-sim",
            "--policy",
            str(folder),
            "--episodes",
            "1",
            "--seconds",
            "1",
            "--backend",
            "sync",
            "--no-keyboard-estop",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    rows = json.loads((out / "summary.json").read_text())
    assert rows[0]["ticks"] == 20
