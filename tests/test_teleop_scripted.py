"""Scripted experts as teleop devices: the same actions as the expert, through the device
contract, so a recorder cannot tell them from a human device."""

from __future__ import annotations

import numpy as np
import pytest

from robolearn import envs
from robolearn.core.types import ConfigError
from robolearn.envs.experts import make_expert
from robolearn.teleop import ActionScale, ScriptedTeleop, TeleopActionSource, make_device


@pytest.mark.parametrize("mode", ["ee_delta", "ee_delta_pose", "joint_position"])
def test_the_device_gives_exactly_the_experts_actions(mode: str) -> None:
    env = envs.make("robolearn/FrankaLift-v0", control_mode=mode)
    twin = envs.make("robolearn/FrankaLift-v0", control_mode=mode)
    try:
        device = make_device("scripted", env=env)
        assert device.produces == ("joint" if mode == "joint_position" else "ee_delta")
        expert = make_expert(twin)
        source = TeleopActionSource.for_env(device, env)
        obs, _ = env.reset(seed=1)
        twin_obs, _ = twin.reset(seed=1)
        source.reset(1)
        expert.reset(1)
        with device:
            for _ in range(15):
                action, events = source.next_action(obs)
                expected = expert.act(twin_obs)
                np.testing.assert_allclose(action, expected, atol=1e-5)
                assert events == frozenset()
                obs, *_ = env.step(action)
                twin_obs, *_ = twin.step(expected)
    finally:
        env.close()
        twin.close()


def test_the_scripted_device_solves_reach() -> None:
    env = envs.make("robolearn/FrankaReach-v0")
    try:
        with ScriptedTeleop.from_env(env) as device:
            source = TeleopActionSource.for_env(device, env)
            obs, info = env.reset(seed=4)
            source.reset(4)
            for _ in range(60):
                obs, _, _, _, info = env.step(source.next_action(obs)[0])
                if info["is_success"]:
                    break
            assert info["is_success"]
    finally:
        env.close()


def test_read_without_an_observation() -> None:
    env = envs.make("robolearn/FrankaReach-v0", obs_mode="image", image_size=(32, 32))
    try:
        env.reset(seed=0)
        with ScriptedTeleop.from_env(env) as device:
            cmd = device.read()  # falls back on the env's state observation
            assert cmd.ee_delta_pos.any()
        bare = ScriptedTeleop(make_expert(env), ActionScale("ee_delta"))
        with bare, pytest.raises(ConfigError, match="needs the observation"):
            bare.read()
    finally:
        env.close()
