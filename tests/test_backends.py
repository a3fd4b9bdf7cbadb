"""Every task on both simulators: the same ids, spaces, observations and experts, and the CLI's
``--backend`` on rollout, record, replay, eval and deploy.

The PyBullet driver itself is covered by the driver contract (``conftest.DRIVER_REGISTRY``)
and ``test_pybullet_panda.py``; here it runs behind the task envs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robolearn import envs
from robolearn.cli.main import main
from robolearn.core.types import ConfigError
from robolearn.drivers.panda import BACKENDS

TASK_IDS = envs.registered_ids()
EE_TRAJECTORY_TOL_M = 0.02
"""Largest end-effector distance between the backends along a scripted Reach episode: the
same IK steps on the same kinematics, through two different servo models."""


def _make(env_id: str, backend: str, **kw: Any) -> gym.Env[Any, Any]:
    return envs.make(env_id, backend=backend, **kw)


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_every_task_passes_check_env_on_pybullet(env_id: str) -> None:
    env = _make(env_id, "pybullet")
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("obs_mode", ["state", "image"])
@pytest.mark.parametrize("env_id", ["robolearn/FrankaReach-v0", "robolearn/FrankaLift-v0"])
def test_observations_have_the_same_keys_shapes_and_dtypes(env_id: str, obs_mode: str) -> None:
    kw: dict[str, Any] = {"obs_mode": obs_mode}
    if obs_mode == "image":
        kw.update(image_size=(48, 64), depth=True)
    spaces = {}
    for backend in BACKENDS:
        env = _make(env_id, backend, **kw)
        obs, _ = env.reset(seed=3)
        assert env.observation_space.contains(obs), backend
        spaces[backend] = env.observation_space
        assert env.action_space == _make(env_id, "mujoco").action_space
        env.close()
    assert spaces["mujoco"] == spaces["pybullet"]


def test_the_same_reset_seed_gives_the_same_scene() -> None:
    first = {}
    for backend in BACKENDS:
        env = _make("robolearn/FrankaPickPlace-v0", backend)
        obs, _ = env.reset(seed=11)
        first[backend] = obs
        env.close()
    for key in ("goal_pos", "object_pos", "object_quat"):
        np.testing.assert_allclose(first["mujoco"][key], first["pybullet"][key], atol=2e-3)
    np.testing.assert_allclose(first["mujoco"]["qpos"], first["pybullet"]["qpos"], atol=1e-6)
    np.testing.assert_allclose(first["mujoco"]["ee_pos"], first["pybullet"]["ee_pos"], atol=1e-3)


def _expert_ee_trajectory(backend: str, seed: int) -> np.ndarray:
    env = _make("robolearn/FrankaReach-v0", backend)
    expert = envs.make_expert(env)
    obs, _ = env.reset(seed=seed)
    expert.reset(seed)
    points = [obs["ee_pos"]]
    for _ in range(30):
        obs, *_ = env.step(expert.act(obs))
        points.append(obs["ee_pos"])
    env.close()
    return np.stack(points)


def test_a_scripted_episode_moves_the_hand_alike_on_both() -> None:
    mujoco_path, pybullet_path = (_expert_ee_trajectory(b, seed=5) for b in BACKENDS)
    gap = np.linalg.norm(mujoco_path - pybullet_path, axis=1)
    assert gap.max() < EE_TRAJECTORY_TOL_M, f"largest gap {gap.max():.4f} m at step {gap.argmax()}"
    assert np.linalg.norm(pybullet_path[-1] - pybullet_path[0]) > 0.05  # it did move


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="mujoco, pybullet"):
        envs.make("robolearn/FrankaReach-v0", backend="isaac")


def test_rollout_record_and_replay_on_pybullet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = "robolearn/FrankaLift-v0"
    summary = tmp_path / "rollout.json"
    rollout = ["rollout", "--env", env, "--episodes", "2", "--backend", "pybullet"]
    assert main([*rollout, "--summary", str(summary)]) == 0
    assert json.loads(summary.read_text())["episodes"] == 2
    data = tmp_path / "data"
    record = ["record", "--env", env, "--episodes", "1", "--no-cameras", "--backend", "pybullet"]
    assert main([*record, "--out", str(data), "--success-hold-ticks", "2"]) == 0
    meta = json.loads((data / "meta" / "robolearn_env.json").read_text())
    assert meta["kwargs"]["backend"] == "pybullet"
    capsys.readouterr()
    assert main(["replay", str(data)]) == 0  # replays on the recorded backend, deterministically
    assert main(["replay", str(data), "--backend", "mujoco", "--tolerance", "10"]) == 0
    out = capsys.readouterr().out
    assert out.count("max |Δ observation.state|") == 2


def test_a_mujoco_policy_evaluates_and_deploys_on_pybullet(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    record = ["record", "--env", "robolearn/FrankaReach-v0", "--episodes", "2", "--no-cameras"]
    assert main([*record, "--out", str(data)]) == 0
    train = ["train", "--dataset", str(data), "--preset", "cpu-state-bc", "--steps", "5"]
    assert main([*train, "--batch-size", "8", "--out", str(run), "--no-progress"]) == 0
    policy = str(run / "checkpoints" / "last")
    evaluate = ["eval", "--policy", policy, "--episodes", "2", "--workers", "1", "--videos", "0"]
    assert main([*evaluate, "--backend", "pybullet", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["summary"]["episodes"] == 2
    deploy = ["deploy", "--policy", policy, "--backend", "pybullet", "--episodes", "1"]
    deploy += ["--seconds", "0.5", "--no-realtime", "--inference", "sync", "--no-keyboard-estop"]
    assert main([*deploy, "--out", str(tmp_path / "deploy")]) == 0


def test_deploy_backend_names_a_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--backend", "sync"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--inference sync" in err and len(err.splitlines()) == 1
    assert main(["deploy", "--robot", "franka-sim", "--policy", "x", "--backend", "pybullet"]) == 2
    assert "real robot" in capsys.readouterr().err


def test_eval_randomizes_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--policy", "scripted", "--env", "robolearn/FrankaReach-v0", "--episodes", "2"]
    args += ["--workers", "1", "--videos", "0", "--randomize", "dynamics"]
    assert main([*args, "--out", str(tmp_path / "e")]) == 0
    summary = json.loads((tmp_path / "e" / "eval.json").read_text())["summary"]
    assert summary["randomize"] == "dynamics" and summary["backend"] == "mujoco"
    assert "randomized (dynamics)" in capsys.readouterr().out
    assert main([*args[:-2], "--randomize", "no-such-preset", "--out", str(tmp_path / "f")]) == 2
    assert "neither a preset" in capsys.readouterr().err
