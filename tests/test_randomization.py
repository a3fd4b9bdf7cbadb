"""Domain randomization on the real MuJoCo tasks: every parameter changes the simulation,
draws are reproducible per seed, nominal values come back on every reset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from robolearn import envs
from robolearn.core.types import ConfigError
from robolearn.envs.base import ActionError
from robolearn.envs.randomization import PRESETS, DomainRandomization, DomainRandomizationConfig

PUSH = "robolearn/FrankaPush-v0"
STEPS = 30

# One config per parameter, with ranges far from nominal so that the effect is unmistakable.
DYNAMICS: dict[str, dict[str, Any]] = {
    "link_mass_scale": {"link_mass_scale": (1.5, 2.0)},
    "friction_scale": {"friction_scale": (0.2, 0.3)},
    "joint_damping_scale": {"joint_damping_scale": (3.0, 4.0)},
    "actuator_gain_scale": {"actuator_gain_scale": (0.3, 0.4)},
    "object_size_scale": {"object_size_scale": (1.3, 1.4)},
    "object_mass_scale": {"object_mass_scale": (3.0, 4.0)},
    "action_latency_ticks": {"action_latency_ticks": (2, 2)},
}
MODEL_FIELD = {  # parameter → (model field, element picker) that must leave its nominal value
    "link_mass_scale": "body_mass",
    "friction_scale": "geom_friction",
    "joint_damping_scale": "dof_damping",
    "actuator_gain_scale": "actuator_gainprm",
    "object_size_scale": "geom_size",
    "object_mass_scale": "body_mass",
    "camera_pos_offset_m": "cam_pos",
    "camera_rot_offset_rad": "cam_quat",
    "light_pos_offset_m": "light_pos",
    "light_diffuse_scale": "light_diffuse",
    "rgba_offset": "geom_rgba",
}
VISUAL: dict[str, dict[str, Any]] = {
    "camera_pos_offset_m": {"camera_pos_offset_m": 0.05},
    "camera_rot_offset_rad": {"camera_rot_offset_rad": 0.2},
    "light_pos_offset_m": {"light_pos_offset_m": 0.8},
    "light_diffuse_scale": {"light_diffuse_scale": (0.2, 0.3)},
    "rgba_offset": {"rgba_offset": 0.4},
}


def _physics_state(env: gym.Env[Any, Any]) -> np.ndarray:
    data = env.unwrapped.driver.data  # type: ignore[attr-defined]
    return np.concatenate([data.qpos, data.qvel])


def _rollout(env: gym.Env[Any, Any], actions: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """Physics state after each step: (T, nq + nv)."""
    env.reset(seed=seed)
    states = []
    for action in actions:
        env.step(action)
        states.append(_physics_state(env))
    return np.array(states)


@pytest.fixture(scope="module")
def expert_actions() -> list[np.ndarray]:
    """The scripted expert's first actions on Push seed 0: it reaches and pushes the cube."""
    env = envs.make(PUSH)
    obs, _ = env.reset(seed=0)
    expert = envs.make_expert(env)
    expert.reset(0)
    actions = []
    for _ in range(STEPS):
        actions.append(np.asarray(expert.act(obs)))
        obs, *_ = env.step(actions[-1])
    env.close()
    return actions


@pytest.fixture(scope="module")
def nominal_rollout(expert_actions: list[np.ndarray]) -> np.ndarray:
    env = envs.make(PUSH)
    states = _rollout(env, expert_actions)
    env.close()
    return states


def _wrapped(config: DomainRandomizationConfig, env_id: str = PUSH, **kwargs: Any) -> Any:
    return DomainRandomization(envs.make(env_id, **kwargs), config)


@pytest.mark.parametrize("name", list(DYNAMICS))
def test_each_dynamics_parameter_changes_the_rollout(
    name: str, expert_actions: list[np.ndarray], nominal_rollout: np.ndarray
) -> None:
    env = _wrapped(DomainRandomizationConfig(**DYNAMICS[name]))
    model = env.unwrapped.driver.model
    states = _rollout(env, expert_actions)
    assert set(env.values) == {name}
    if name in MODEL_FIELD:
        field = MODEL_FIELD[name]
        assert not np.array_equal(
            getattr(model, field), env.unwrapped.driver.randomizer.nominal[field]
        )
    assert np.abs(states - nominal_rollout).max() > 1e-3  # metres / radians
    env.close()


def test_a_neutral_config_changes_nothing(
    expert_actions: list[np.ndarray], nominal_rollout: np.ndarray
) -> None:
    """The control: scales of exactly 1 (mass constants recomputed, gains rewritten) and
    visual-only changes leave the physics bit-identical."""
    one = (1.0, 1.0)
    config = DomainRandomizationConfig(
        link_mass_scale=one,
        friction_scale=one,
        joint_damping_scale=one,
        actuator_gain_scale=one,
        object_size_scale=one,
        object_mass_scale=one,
        rgba_offset=0.3,
        camera_pos_offset_m=0.1,
    )
    env = _wrapped(config)
    np.testing.assert_array_equal(_rollout(env, expert_actions), nominal_rollout)
    env.close()


def test_latency_holds_the_robot_for_the_first_ticks() -> None:
    env = _wrapped(DomainRandomizationConfig(action_latency_ticks=(2, 2)))
    obs, info = env.reset(seed=1)
    assert info["randomization"]["action_latency_ticks"] == 2
    start = obs["ee_pos"].copy()
    down = np.array([0.0, 0.0, -1.0, 1.0], np.float32)
    for _ in range(2):
        obs, *_ = env.step(down)
        assert np.linalg.norm(obs["ee_pos"] - start) < 5e-3  # the hold actions
    for _ in range(2):
        obs, *_ = env.step(down)
    assert start[2] - obs["ee_pos"][2] > 0.03  # the first "down" arrived two ticks late
    with pytest.raises(ActionError, match="NaN"):  # refused when given, not when applied
        env.step(np.full(4, np.nan, np.float32))
    env.close()


def test_observation_noise_changes_observations_only() -> None:
    config = DomainRandomizationConfig(obs_noise_std=0.01, obs_noise_std_per_key={"qvel": 0.0})
    env = _wrapped(config)
    obs, info = env.reset(seed=0)
    true_obs = env.unwrapped.observe()
    stds = info["randomization"]["obs_noise_std"]
    assert set(stds) == {"qpos", "ee_pos", "ee_quat", "gripper_width", "object_pos"} | {
        "object_quat",
        "object_vel",
    }  # no goal, and qvel switched off per key
    for key in stds:
        assert obs[key].dtype == true_obs[key].dtype
        assert 0 < np.abs(obs[key] - true_obs[key]).max() < 0.1
    np.testing.assert_array_equal(obs["goal_pos"], true_obs["goal_pos"])
    np.testing.assert_array_equal(obs["qvel"], true_obs["qvel"])
    env.close()


@pytest.fixture(scope="module")
def nominal_image() -> np.ndarray:
    env = envs.make(PUSH, obs_mode="image", cameras=("front",), image_size=(64, 64))
    obs, _ = env.reset(seed=0)
    env.close()
    return np.asarray(obs["front_rgb"])


@pytest.mark.parametrize("name", list(VISUAL))
def test_each_visual_parameter_changes_the_image(name: str, nominal_image: np.ndarray) -> None:
    env = _wrapped(
        DomainRandomizationConfig(**VISUAL[name]),
        obs_mode="image",
        cameras=("front",),
        image_size=(64, 64),
    )
    obs, info = env.reset(seed=0)
    field = MODEL_FIELD[name]
    assert not np.array_equal(
        getattr(env.unwrapped.driver.model, field), env.unwrapped.driver.randomizer.nominal[field]
    )
    assert set(info["randomization"]) == {name}
    diff = np.abs(obs["front_rgb"].astype(int) - nominal_image.astype(int))
    assert diff.mean() > 1.0  # grey levels per pixel on average
    env.close()


def test_same_seed_same_draws_and_trajectory_different_seed_differs(
    expert_actions: list[np.ndarray],
) -> None:
    config = PRESETS["full"]
    first, second = _wrapped(config), _wrapped(config)
    runs = []
    for env in (first, second):
        env.reset(seed=7)
        values = json.loads(json.dumps(env.values))
        observations = [env.step(a)[0] for a in expert_actions[:10]]
        runs.append((values, observations))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    second.reset(seed=8)
    assert second.values != runs[0][0]
    assert second.values["link_mass_scale"] != runs[0][0]["link_mass_scale"]
    first.close()
    second.close()


def test_every_reset_draws_from_nominal_without_drift() -> None:
    env = _wrapped(PRESETS["dynamics"])
    model = env.unwrapped.driver.model
    nominal_mass = model.body_mass.copy()
    for seed in range(3):
        env.reset(seed=seed)
        scale = env.values["link_mass_scale"]
        for name, s in scale.items():
            body = model.body(name).id
            assert model.body_mass[body] == pytest.approx(nominal_mass[body] * s, rel=1e-12)
        assert env.values["object_mass_scale"]["cube"] > 0
    env.reset(seed=0)
    masses_seed0 = model.body_mass.copy()
    env.reset()
    env.reset(seed=0)
    np.testing.assert_array_equal(model.body_mass, masses_seed0)
    env.close()
    np.testing.assert_array_equal(model.body_mass, nominal_mass)  # close restores nominal


def test_servo_gains_stay_consistent() -> None:
    env = _wrapped(DomainRandomizationConfig(actuator_gain_scale=(0.5, 1.5)))
    env.reset(seed=3)
    model = env.unwrapped.driver.model
    for name, scale in env.values["actuator_gain_scale"].items():
        a = model.actuator(name).id
        kp, kd = (
            env.unwrapped.driver.randomizer.nominal["actuator_gainprm"][a, 0],
            env.unwrapped.driver.randomizer.nominal["actuator_biasprm"][a, 2],
        )
        assert model.actuator_gainprm[a, 0] == pytest.approx(kp * scale)
        assert model.actuator_biasprm[a, 1] == pytest.approx(-kp * scale)  # a position servo
        assert model.actuator_biasprm[a, 2] == pytest.approx(kd * np.sqrt(scale))
    env.step(env.action_space.sample())  # the driver keeps them while in position control
    a = model.actuator("act_panda_joint1").id
    assert model.actuator_gainprm[a, 0] == pytest.approx(
        env.unwrapped.driver.randomizer.nominal["actuator_gainprm"][a, 0]
        * env.values["actuator_gain_scale"]["act_panda_joint1"]
    )
    env.close()


def test_resized_object_rests_on_the_table() -> None:
    env = _wrapped(DomainRandomizationConfig(object_size_scale=(1.4, 1.4)))
    obs, _ = env.reset(seed=0)
    half = 0.02 * 1.4
    assert obs["object_pos"][2] == pytest.approx(half, abs=1e-6)
    for _ in range(10):
        obs, *_ = env.step(np.zeros(4, np.float32))
    assert obs["object_pos"][2] == pytest.approx(half, abs=2e-3)  # neither sunk nor fallen
    env.close()


def test_info_is_json_and_present_every_step() -> None:
    env = _wrapped(PRESETS["full"], goal_conditioned=True, reward_type="sparse")
    _, info = env.reset(seed=0)
    text = json.dumps(info["randomization"])
    assert "friction_scale" in text and "rgba_offset" in text
    _, _, _, _, step_info = env.step(env.action_space.sample())
    assert step_info["randomization"] == info["randomization"]
    compute_reward = env.get_wrapper_attr("compute_reward")  # HER still reaches the task
    assert compute_reward(np.zeros(3), np.zeros(3), None) == 0.0
    env.close()


def test_config_load_presets_json_and_errors(tmp_path: Path) -> None:
    assert DomainRandomizationConfig.load("dynamics").link_mass_scale == (0.8, 1.2)
    path = tmp_path / "dr.json"
    path.write_text(json.dumps({"friction_scale": [0.5, 1.5], "obs_noise_std": 0.01}))
    loaded = DomainRandomizationConfig.load(str(path))
    assert loaded.friction_scale == (0.5, 1.5)
    assert loaded.enabled == ["friction_scale", "obs_noise_std"]
    assert DomainRandomizationConfig.from_dict(loaded.to_dict()) == loaded
    with pytest.raises(ConfigError, match="neither a preset"):
        DomainRandomizationConfig.load("no-such-preset")
    with pytest.raises(ConfigError, match="no parameters"):
        DomainRandomizationConfig.from_dict({"masses": [1, 2]})
    with pytest.raises(ConfigError, match="lo ≤ hi"):
        DomainRandomizationConfig(friction_scale=(1.5, 0.5))
    with pytest.raises(ConfigError, match="above 0"):
        DomainRandomizationConfig(link_mass_scale=(0.0, 1.0))
    with pytest.raises(ConfigError, match="integers"):
        DomainRandomizationConfig(action_latency_ticks=(0.5, 1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="≥ 0"):
        DomainRandomizationConfig(obs_noise_std=-1.0)


def test_refuses_an_env_that_is_not_a_franka_task() -> None:
    with pytest.raises(ConfigError, match="Franka task"):
        DomainRandomization(gym.make("Pendulum-v1"), DomainRandomizationConfig())


@pytest.mark.filterwarnings("ignore::UserWarning")  # wrapped env, infinite bounds: by design
def test_passes_gymnasiums_env_checker() -> None:
    from gymnasium.utils.env_checker import check_env

    env = _wrapped(PRESETS["dynamics"])
    check_env(env, skip_render_check=True)
    env.close()


def test_record_randomizes_each_demonstration_when_asked(tmp_path: Path) -> None:
    from robolearn.cli.main import main
    from robolearn.data import DatasetReader

    def record(out: Path, *extra: str) -> np.ndarray:
        args = ["record", "--env", "robolearn/FrankaLift-v0", "--episodes", "2", "--no-cameras"]
        assert main([*args, "--out", str(out), *extra]) == 0
        with DatasetReader(out) as reader:
            assert reader.num_episodes == 2
            state = reader.column("observation.environment_state")
            return np.stack([state[reader.episode_start(e)] for e in range(2)])

    nominal = record(tmp_path / "nominal")
    randomized = record(tmp_path / "randomized", "--randomize", "dynamics")
    again = record(tmp_path / "again", "--randomize", "dynamics")
    # the same task placements (seeds), other cube sizes: the resting cube's height differs
    np.testing.assert_allclose(randomized[:, :2], nominal[:, :2], atol=1e-6)
    assert np.all(np.abs(randomized[:, 2] - nominal[:, 2]) > 1e-4)
    np.testing.assert_array_equal(randomized, again)  # the draws follow from the seeds


def test_record_randomize_is_for_simulations(capsys: pytest.CaptureFixture[str]) -> None:
    from robolearn.cli.main import main

    args = ["record", "--robot", "virtual:koch-follower", "--teleop", "keyboard"]
    assert main([*args, "--randomize", "dynamics", "--out", "/tmp/never"]) == 2
    assert "--randomize varies a simulation" in capsys.readouterr().err
