"""The interface wrappers (action latency, observation noise) on the robot env over the
MuJoCo driver, the conventions both envs share, and domain randomization as their
composition."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest

from robolearn import envs
from robolearn.core.types import CommandError, ConfigError, RobotState
from robolearn.drivers.mujoco_panda import MujocoPandaDriver, SceneConfig
from robolearn.envs import conventions as cv
from robolearn.envs.randomization import PRESETS, DomainRandomization
from robolearn.envs.robot_env import RobotEnv
from robolearn.envs.wrappers import ActionLatency, ObservationNoise, noise_std_per_key


@pytest.fixture
def robot_env() -> Iterator[RobotEnv]:
    """A robot env over the simulated Panda, in joint-position control."""
    env = RobotEnv(MujocoPandaDriver(SceneConfig(), control_hz=20), episode_seconds=2.0)
    yield env
    env.close()


def _targets(env: RobotEnv, n: int) -> list[np.ndarray]:
    """``n`` distinct joint targets near the current pose, with the gripper half open."""
    q = env.driver.read().q
    return [np.r_[q + 0.02 * (i + 1), 0.04].astype(np.float32) for i in range(n)]


def test_latency_delays_robot_actions_by_the_configured_ticks(robot_env: RobotEnv) -> None:
    env = ActionLatency(robot_env, ticks=2)
    env.reset(seed=0)
    hold = robot_env.hold_action()
    actions = _targets(robot_env, 5)
    applied = [env.step(a)[-1]["applied_command"]["joint_position"] for a in actions]
    expected = [hold[:7], hold[:7], *(a[:7] for a in actions[:3])]
    for got, want in zip(applied, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_latency_refuses_a_bad_action_when_given(robot_env: RobotEnv) -> None:
    env = ActionLatency(robot_env, ticks=1)
    env.reset(seed=0)
    with pytest.raises(cv.ActionError, match="finite"):
        env.step(np.full(8, np.nan, np.float32))
    assert isinstance(cv.ActionError("x"), CommandError)  # callers catching CommandError


def test_zero_latency_passes_actions_through(robot_env: RobotEnv) -> None:
    env = ActionLatency(robot_env, ticks=0)
    env.reset(seed=0)
    target = _targets(robot_env, 1)[0]
    info = env.step(target)[-1]
    np.testing.assert_allclose(info["applied_command"]["joint_position"], target[:7], atol=1e-6)
    with pytest.raises(ConfigError, match="ticks"):
        env.ticks = -1


def _noisy_reset(env: RobotEnv, seed: int) -> dict[str, np.ndarray]:
    wrapped = ObservationNoise(env, {"qpos": 0.01, "ee_pos": 0.001})
    return wrapped.reset(seed=seed)[0]


def test_noise_changes_robot_observations_reproducibly(robot_env: RobotEnv) -> None:
    true_obs = robot_env.observe()
    first, again, other = (_noisy_reset(robot_env, s) for s in (3, 3, 4))
    for key in ("qpos", "ee_pos"):
        assert first[key].dtype == true_obs[key].dtype
        assert 0 < np.abs(first[key] - true_obs[key]).max() < 0.1
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.array_equal(first[key], other[key])
    np.testing.assert_array_equal(first["qvel"], true_obs["qvel"])


def test_noise_on_steps_follows_the_seed(robot_env: RobotEnv) -> None:
    noise = []  # the arm stays where it is between resets, so compare the noise itself
    for _ in range(2):
        env = ObservationNoise(robot_env, {"qpos": 0.01})
        env.reset(seed=1)
        noisy = env.step(robot_env.hold_action())[0]["qpos"]
        noise.append(noisy - robot_env.observe()["qpos"])
    assert np.abs(noise[0]).max() > 1e-4
    np.testing.assert_allclose(noise[0], noise[1], atol=1e-6)


def test_noise_refuses_unknown_or_integer_keys(robot_env: RobotEnv) -> None:
    with pytest.raises(ConfigError, match="'nope'"):
        ObservationNoise(robot_env, {"nope": 0.1})
    space = gym.spaces.Dict({"a": gym.spaces.Box(0, 1, (2,)), "n": gym.spaces.Discrete(3)})
    assert noise_std_per_key(space, 0.1, {"b": 0.2}, exempt=("a",)) == {}
    assert noise_std_per_key(space, 0.1) == {"a": 0.1}


def test_wrappers_refuse_an_env_without_the_conventions() -> None:
    with pytest.raises(ConfigError, match="not a robolearn env"):
        ActionLatency(gym.make("Pendulum-v1"), ticks=1)


def test_both_envs_share_the_conventions(robot_env: RobotEnv) -> None:
    task = envs.make("robolearn/FrankaReach-v0", control_mode="joint_position").unwrapped
    task.reset(seed=0)
    assert task.action_space == robot_env.action_space  # same Panda, same joint rule
    assert set(cv.PROPRIO_KEYS) <= set(task.observe()) and set(cv.PROPRIO_KEYS) == set(
        robot_env.observe()
    )
    bad = np.zeros(3)
    for env in (task, robot_env):
        with pytest.raises(cv.ActionError):
            env.validate_action(bad)
        big = env.validate_action(env.action_space.high + 1.0)
        np.testing.assert_array_equal(big, env.action_space.high.astype(np.float64))
    task.close()


def test_gripper_range_round_trips() -> None:
    gripper = cv.GripperRange(0.01, 0.09)
    assert gripper.width_m(-1.0) == pytest.approx(0.01)
    assert gripper.width_m(1.0) == pytest.approx(0.09)
    assert gripper.unit(gripper.width_m(0.3)) == pytest.approx(0.3)
    state = RobotState(
        timestamp=0.0,
        q=np.zeros(2),
        dq=np.zeros(2),
        tau=np.zeros(2),
        ee_pos=np.zeros(3),
        ee_quat=np.r_[1.0, 0, 0, 0],
    )
    assert cv.proprio_observation(state, has_gripper=False)["gripper_width"].shape == (0,)


def test_domain_randomization_is_the_composition_of_its_parts() -> None:
    env = DomainRandomization(envs.make("robolearn/FrankaPush-v0"), PRESETS["dynamics"])
    assert env.env is env.noise and env.noise.env is env.latency
    assert env.latency.env is env.model_randomization
    _, info = env.reset(seed=0)
    assert env.latency.ticks == info["randomization"]["action_latency_ticks"]
    assert env.noise.std_per_key == info["randomization"]["obs_noise_std"]
    assert env.spec is not None
    assert [w.name for w in env.spec.additional_wrappers][-1] == "DomainRandomization"
    env.close()
