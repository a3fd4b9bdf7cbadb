"""Every registered task: Gymnasium and SB3 env checks, determinism, experts, bad input.

Parametrized over ``envs.registered_ids()`` so a new task is covered automatically.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from robolearn import envs
from robolearn.core.types import ConfigError
from robolearn.envs.base import ActionError

IDS = envs.registered_ids()
V0_IDS = ["FrankaReach-v0", "FrankaPush-v0", "FrankaLift-v0", "FrankaPickPlace-v0"]
SMALL_IMAGES = {"obs_mode": "image", "image_size": (48, 64), "cameras": ("front", "wrist")}


def test_registry_has_the_four_tasks_and_push_v1() -> None:
    names = {i.split("/")[1] for i in IDS}
    assert {*V0_IDS, "FrankaPush-v1"} <= names


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"goal_conditioned": True, "reward_type": "sparse"}, {"control_mode": "joint_position"}],
    ids=["state", "goal", "joint"],
)
def test_gymnasium_check_env(env_id: str, kwargs: dict) -> None:
    env = envs.make(env_id, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bounds-of-Box advice for joint-mode actions
        gym_check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env_image_mode(env_id: str) -> None:
    env = envs.make(env_id, **SMALL_IMAGES, depth=True)
    gym_check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["front_rgb"].shape == (48, 64, 3) and obs["front_rgb"].dtype == np.uint8
    assert obs["front_depth"].shape == (48, 64, 1)
    assert obs["front_rgb"].std() > 0  # a real picture, not a blank buffer
    env.close()


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("kwargs", [{}, {"goal_conditioned": True}], ids=["state", "goal"])
def test_sb3_check_env(env_id: str, kwargs: dict) -> None:
    env = envs.make(env_id, **kwargs)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


def _trajectory(env_id: str, seed: int, steps: int = 15) -> list[np.ndarray]:
    env = envs.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = [np.concatenate([v.ravel() for v in obs.values()])]
    for _ in range(steps):
        obs, reward, *_ = env.step(env.action_space.sample())
        out.append(np.concatenate([*(v.ravel() for v in obs.values()), [reward]]))
    env.close()
    return out


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_gives_identical_trajectories(env_id: str) -> None:
    a, b = _trajectory(env_id, seed=7), _trajectory(env_id, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = _trajectory(env_id, seed=8)
    assert not np.array_equal(a[0], c[0])  # the reset distribution depends on the seed


@pytest.mark.parametrize("env_id", IDS)
def test_scripted_expert_succeeds(env_id: str) -> None:
    """CI-sized check (10 seeds); benchmarks/expert_success.py measures the 100-seed rates."""
    env = envs.make(env_id)
    expert = envs.make_expert(env)
    successes = 0
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        expert.reset(seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            done = terminated or truncated
        successes += info["is_success"]
    assert successes >= 9
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_goal_conditioned_reward_is_vectorized(env_id: str) -> None:
    env = envs.make(env_id, goal_conditioned=True, reward_type="sparse")
    obs, _ = env.reset(seed=0)
    achieved = np.stack([obs["achieved_goal"]] * 5)
    desired = np.stack([obs["achieved_goal"] + [0.0, 0.0, dz] for dz in (0, 0.01, 0.04, 0.06, 1)])
    rewards = env.unwrapped.compute_reward(achieved, desired, [{}] * 5)
    assert rewards.shape == (5,)
    np.testing.assert_array_equal(rewards, [0, 0, 0, -1, -1])
    dense = envs.make(env_id, goal_conditioned=True).unwrapped
    np.testing.assert_allclose(
        dense.compute_reward(achieved, desired, None), -np.abs(desired - achieved)[:, 2], atol=1e-6
    )


@pytest.mark.parametrize(
    "bad", [np.full(4, np.nan), np.array([0, np.inf, 0, 0]), np.zeros(3), np.zeros((2, 4))]
)
def test_bad_actions_raise_before_physics(bad: np.ndarray) -> None:
    env = envs.make("robolearn/FrankaLift-v0")
    env.reset(seed=0)
    u = env.unwrapped
    qpos, t = u.driver.data.qpos.copy(), u.driver.now()
    with pytest.raises(ActionError):
        env.step(bad)
    assert np.array_equal(u.driver.data.qpos, qpos) and u.driver.now() == t


def test_out_of_range_actions_are_clipped() -> None:
    env = envs.make("robolearn/FrankaReach-v0")
    env.reset(seed=0)
    *_, info = env.step(np.array([10.0, 0.0, 0.0, 5.0]))
    applied = info["applied_command"]
    assert np.isclose(applied["ee_delta_pos"][0], env.unwrapped.max_ee_step_m)
    assert applied["gripper_width"] == pytest.approx(0.08)


def test_unknown_id_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="FrankaLift-v0"):
        envs.make("robolearn/FrankaFly-v0")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"obs_mode": "video"},
        {"control_mode": "teleport"},
        {"obs_mode": "image", "goal_conditioned": True},
    ],
)
def test_bad_options_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        envs.make("robolearn/FrankaReach-v0", **kwargs)


def test_time_limit_truncates() -> None:
    env = gym.make("robolearn/FrankaReach-v0")
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        *_, truncated, _ = env.step(np.zeros(4))
        steps += 1
    assert steps == env.spec.max_episode_steps


V0_DOWN_UP = [[0.3051, -0.0046, 0.4899], [0.4597, -0.3059, 0.0042], [0.7462, 0.0981, 0.3998]]
"""End-effector positions of :func:`_down_then_up` in every v0 task, from the v0 release
(the tasks share the start pose and the hand goes where it is sent)."""


def _down_then_up(env_id: str) -> np.ndarray:
    """End-effector positions at reset (seed 3), after 25 steps down into the table and after
    15 steps up and out: (3, 3)."""
    env = envs.make(f"robolearn/{env_id}")
    points = [env.reset(seed=3)[0]["ee_pos"]]
    for action, steps in (([0.3, -0.5, -1.0, 1.0], 25), ([1.0, 1.0, 1.0, -1.0], 15)):
        for _ in range(steps):
            obs, *_ = env.step(np.array(action))
        points.append(obs["ee_pos"])
    env.close()
    return np.array(points)


@pytest.mark.parametrize("env_id", V0_IDS)
def test_released_versions_are_frozen(env_id: str) -> None:
    """A released id keeps its start pose and dynamics (no workspace box in v0): the same
    trajectory as when it was released."""
    np.testing.assert_allclose(_down_then_up(env_id), V0_DOWN_UP, atol=2e-3)


def test_push_v1_starts_low_and_stays_in_its_box() -> None:
    """Push v1 starts with the hand 0.15 m above the middle of the cube's area (as Fetch and
    panda-gym do); the same actions as the v0 trajectory stop at the table and at the box."""
    down_up = _down_then_up("FrankaPush-v1")
    np.testing.assert_allclose(down_up[0], [0.50, 0.0, 0.15], atol=0.01)
    assert down_up[1, 2] > -0.005, "the hand stops at the table top"
    assert 0.28 < down_up[2, 2] < 0.31 and down_up[2, 1] < 0.36, "and at the box's faces"
    env = envs.make("robolearn/FrankaPush-v1")
    starts = np.array([env.reset(seed=seed)[0]["ee_pos"] for seed in range(5)])
    env.close()
    assert 1e-4 < starts.std(axis=0).max() < 0.02, "the ±0.02 rad reset noise still applies"


@pytest.mark.parametrize(
    ("action", "axis", "bound"),
    [
        ([0.0, 0.0, -1.0, 0.0], 2, (0.0, None)),
        ([0.0, 0.0, 1.0, 0.0], 2, (None, 0.3)),
        ([-1.0, 0.0, 0.0, 0.0], 0, (0.25, None)),
        ([0.0, 1.0, 0.0, 0.0], 1, (None, 0.35)),
    ],
)
def test_ee_actions_keep_the_hand_in_push_v1_workspace(
    action: list, axis: int, bound: tuple
) -> None:
    env = envs.make("robolearn/FrankaPush-v1")
    env.reset(seed=0)
    path = np.array([env.step(np.array(action))[0]["ee_pos"][axis] for _ in range(40)])
    env.close()
    low, high = bound
    if low is not None:
        assert path.min() > low - 0.01 and path[-1] < low + 0.02, "stops at the lower face"
    if high is not None:
        assert path.max() < high + 0.01 and path[-1] > high - 0.02, "stops at the upper face"


def test_hand_outside_the_workspace_is_not_pushed_further_out() -> None:
    env = envs.make("robolearn/FrankaPush-v1").unwrapped
    env.reset(seed=0)
    outside = np.array([0.9, 0.0, 0.5])  # beyond x and z
    dpos = env._keep_in_workspace(outside, np.array([0.05, 0.02, -0.03]))
    np.testing.assert_allclose(dpos, [0.0, 0.02, -0.03])
    dpos = env._keep_in_workspace(outside, np.array([-0.05, 0.0, 0.05]))
    np.testing.assert_allclose(dpos, [-0.05, 0.0, 0.0])
    env.close()


def test_render_returns_a_frame() -> None:
    env = envs.make("robolearn/FrankaPush-v0", render_mode="rgb_array", render_size=(60, 80))
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (60, 80, 3) and frame.dtype == np.uint8
    env.close()


@pytest.mark.parametrize("mode", ["ee_delta", "ee_delta_pose", "joint_position", "joint_torque"])
def test_command_to_action_inverts_action_to_command(mode: str) -> None:
    env = envs.make("robolearn/FrankaLift-v0", control_mode=mode)
    env.reset(seed=0)
    u = env.unwrapped
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = env.action_space.sample()
        if mode == "ee_delta":
            action[:3] = rng.uniform(-1, 1, 3)
        back = u.command_to_action(u.action_to_command(action))
        np.testing.assert_allclose(back, action, atol=1e-5)
