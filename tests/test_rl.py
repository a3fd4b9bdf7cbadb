"""Reinforcement learning (robolearn.rl, robolearn.policies.sb3) on the real MuJoCo tasks: short
training runs per algorithm, the policy folder format, ``robolearn eval`` on the result,
resume, and refusals of algorithms that do not fit a task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robolearn import envs
from robolearn.cli.main import main
from robolearn.core.types import ConfigError
from robolearn.policies.base import check_policy_spec, load_policy, read_policy_config
from robolearn.policies.env_io import env_observation_shapes, policy_inputs
from robolearn.policies.sb3 import SB3Policy
from robolearn.rl import run_rl
from robolearn.rl.callbacks import EVAL_LOG
from robolearn.train import TrainConfig

REACH = "robolearn/FrankaReach-v0"
SMALL_NET = 'policy_kwargs={"net_arch": [32, 32]}'


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _config(tmp_path: Path, algo: str, **kwargs: Any) -> TrainConfig:
    options = {
        "algo": algo,
        "env": REACH,
        "steps": 256,
        "n_envs": 1,
        "eval_every": 128,
        "eval_episodes": 2,
        "out": tmp_path / "run",
        "set": [SMALL_NET],
        "progress": False,
        **kwargs,
    }
    return TrainConfig(**options)


def _check_run(out: Path, steps: list[int]) -> SB3Policy:
    """The run folder layout; returns the loaded last checkpoint."""
    rows = [json.loads(line) for line in (out / EVAL_LOG).read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, *steps]
    assert all(0.0 <= r["success_rate"] <= 1.0 for r in rows)
    for step in steps:
        folder = out / "checkpoints" / f"{step:06d}"
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    policy = load_policy(out / "checkpoints" / "last")
    assert isinstance(policy, SB3Policy)
    return policy


def _act_in_env(policy: SB3Policy, env_id: str, env_kwargs: dict[str, Any]) -> None:
    env = envs.make(env_id, **env_kwargs)
    check_policy_spec(policy.config, env_observation_shapes(env), 4)
    obs, _ = env.reset(seed=0)
    policy.reset(seed=0)
    action = policy.act(policy_inputs(obs))
    assert action.shape == (4,) and env.action_space.contains(action.astype(np.float32))
    assert policy.predict_chunk(policy_inputs(obs)).shape == (1, 4)
    env.close()


def test_ppo_trains_and_saves_a_policy_folder(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "ppo", set=[SMALL_NET, "n_steps=64", "batch_size=32"])
    result = run_rl(cfg)
    assert result.steps == 256
    policy = _check_run(cfg.out, [128, 256])
    assert policy.config.algo == "ppo"
    assert policy.config.env == {
        "id": REACH,
        "kwargs": {"goal_conditioned": False, "reward_type": "dense"},
    }
    _act_in_env(policy, REACH, policy.config.env["kwargs"])


def test_td3_trains_with_domain_randomization(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "td3", randomize="dynamics", steps=200, eval_every=200)
    result = run_rl(cfg)
    policy = _check_run(cfg.out, [200])
    assert result.final.step == 200
    assert policy.config.training["randomize"]["link_mass_scale"] == [0.8, 1.2]
    assert policy.config.training["options"]["action_noise"] == 0.1  # TD3 explores
    _act_in_env(policy, REACH, policy.config.env["kwargs"])


def test_sac_trains_then_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "sac", steps=200, eval_every=200)
    run_rl(cfg)
    last = cfg.out / "checkpoints" / "last"
    saved_actor = load_policy(last).state_dict()
    state = json.loads((last / "agent_state.json").read_text())
    assert state["num_timesteps"] == 200 and state["n_updates"] > 0

    # The replay buffer is not saved: learning restarts after 100 fresh steps.
    resumed = run_rl(_config(tmp_path, "sac", steps=400, eval_every=200, resume=True))
    assert resumed.steps == 400
    rows = [json.loads(line) for line in (cfg.out / EVAL_LOG).read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 200, 400]  # the log continues, no new step-0 row
    assert any(
        not torch.equal(v, load_policy(last).state_dict()[k]) for k, v in saved_actor.items()
    )  # it kept learning
    with pytest.raises(ConfigError, match="trained with algo/her/env"):
        run_rl(_config(tmp_path, "td3", steps=400, resume=True))


def test_sac_her_through_the_cli_then_robolearn_eval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`robolearn train --algo sac --her` (two subprocess envs), then `robolearn eval` on
    checkpoints/last: the same episodes give the same figures as the final evaluation."""
    out = tmp_path / "run"
    args = ["train", "--algo", "sac", "--her", "--env", REACH, "--steps", "200"]
    args += ["--n-envs", "2", "--eval-every", "100", "--eval-episodes", "2", "--no-progress"]
    args += ["--set", SMALL_NET, "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "final evaluation after 200 env steps: success " in printed
    policy = _check_run(out, [100, 200])
    assert policy.config.input_features == {
        "achieved_goal": [3],
        "desired_goal": [3],
        "observation": [22],
    }
    assert policy.config.env["kwargs"] == {"goal_conditioned": True, "reward_type": "sparse"}

    report = tmp_path / "eval"
    eval_args = ["eval", "--policy", str(out / "checkpoints" / "last"), "--episodes", "2"]
    assert main([*eval_args, "--workers", "1", "--videos", "0", "--out", str(report)]) == 0
    assert "success " in capsys.readouterr().out
    summary = json.loads((report / "eval.json").read_text())["summary"]
    final = [json.loads(line) for line in (out / EVAL_LOG).read_text().splitlines()][-1]
    assert summary["successes"] == final["successes"]
    assert summary["mean_reward"] == pytest.approx(final["mean_return"], abs=1e-9)


def test_deploy_runs_an_sb3_checkpoint_like_any_policy(tmp_path: Path) -> None:
    """`robolearn deploy --policy checkpoints/last` of an SB3 run: the rate loop, safety layer
    and inference worker send the same actions as a plain rollout of the loaded policy."""
    from robolearn.data.reader import DatasetReader

    out = tmp_path / "run"
    run_rl(_config(tmp_path, "sac", her=True, steps=200, eval_every=200, out=out))
    last = out / "checkpoints" / "last"
    deploy = ["deploy", "--policy", str(last), "--episodes", "1", "--seconds", "1"]
    deploy += ["--inference", "sync", "--no-realtime", "--no-keyboard-estop"]
    assert main([*deploy, "--out", str(tmp_path / "deploy")]) == 0
    sent = DatasetReader(tmp_path / "deploy" / "dataset").column("policy.action")  # (20, 4)

    policy = load_policy(last)
    env = envs.make(REACH, **policy.config.env["kwargs"])
    obs, _ = env.reset(seed=0)  # deploy's episode 0
    policy.reset(seed=0)
    expected = []
    for _ in range(len(sent)):
        expected.append(policy.act(policy_inputs(obs)))
        obs, *_ = env.step(expected[-1])
    env.close()
    assert sent.shape == (20, 4)  # 1 s at the trained 20 Hz
    np.testing.assert_allclose(sent, np.array(expected), atol=1e-6)


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3"])
def test_exported_policy_acts_as_the_sb3_model(algo: str, tmp_path: Path) -> None:
    """Saved and loaded, the policy gives SB3's own deterministic ``predict`` actions."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from robolearn.rl.algos import build_model

    kwargs = {"goal_conditioned": algo != "ppo", "reward_type": "sparse"}
    vec_env = DummyVecEnv([lambda: envs.make(REACH, **kwargs)])
    options = {"policy_kwargs": {"net_arch": [16, 16], "activation_fn": "Tanh"}}
    model = build_model(algo, False, options, vec_env, seed=1, device="cpu")
    with torch.no_grad():  # a non-trivial output layer, so a wrong action scaling shows
        for p in model.policy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    policy = SB3Policy.from_sb3(model, algo, options["policy_kwargs"], {"id": REACH})
    loaded = load_policy(policy.save(tmp_path / "p"))
    assert read_policy_config(tmp_path / "p")[0] == "sb3"
    env = envs.make(REACH, **kwargs)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for _ in range(3):
            expected, _ = model.predict(obs, deterministic=True)
            loaded.reset()
            np.testing.assert_allclose(loaded.act(policy_inputs(obs)), expected, atol=1e-5)
            obs, *_ = env.step(expected)
    env.close()
    vec_env.close()


def test_sb3_policy_has_no_imitation_loss(tmp_path: Path) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from robolearn.rl.algos import build_model

    vec_env = DummyVecEnv([lambda: envs.make(REACH)])
    model = build_model("ppo", False, {}, vec_env, seed=0, device="cpu")
    policy = SB3Policy.from_sb3(model, "ppo", {})
    with pytest.raises(ConfigError, match="robolearn train --algo"):
        policy.compute_loss({})
    vec_env.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "ppo", "--her", "--env", REACH], "use --algo sac or --algo td3 with --her"),
        (["--algo", "sac", "--her", "--env", "Pendulum-v1"], f"HER fits: .*{REACH}"),
        (["--algo", "sac", "--env", "CartPole-v1"], f"continuous actions .*fit: .*{REACH}"),
        (["--algo", "td3", "--env", REACH, "--set", "no_such_option=1"], "no options"),
        (["--algo", "td3", "--env", REACH, "--set", "action_noise=-1"], "standard deviation"),
        (["--algo", "sac", "--env", REACH, "--randomize", "nope"], "neither a preset"),
        (["--algo", "sac", "--env", "Pendulum-v1", "--reward-type", "dense"], "robolearn tasks"),
        (["--algo", "sac", "--env", REACH, "--preset", "cpu-state-diffusion"], "--set KEY=VALUE"),
    ],
)
def test_bad_combinations_are_refused_in_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robolearn: error: ") and err.count("\n") == 1
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_existing_run_needs_resume_or_overwrite(tmp_path: Path) -> None:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(ConfigError, match="--resume to continue it or --overwrite"):
        run_rl(_config(tmp_path, "sac"))


def test_default_options_per_algorithm() -> None:
    from robolearn.rl.algos import sb3_kwargs

    def options(algo: str, **kwargs: Any) -> dict[str, Any]:
        cfg = TrainConfig(algo=algo, env=REACH, steps=5000, **kwargs)  # type: ignore[arg-type]
        return sb3_kwargs(cfg, algo, max_episode_steps=50)

    sac, td3, ppo = options("sac"), options("td3"), options("ppo")
    assert sac == {"buffer_size": 5000, "gradient_steps": -1}  # SB3's lr and batch size
    assert td3 == {**sac, "action_noise": 0.1}
    assert ppo == {"n_steps": 1250}  # 5000 steps over 4 envs
    her = options("sac", her=True, lr=1e-3, set=["gamma=0.9"])
    assert her["learning_starts"] == 200  # every env has ended an episode
    assert her["replay_buffer_kwargs"]["goal_selection_strategy"] == "future"
    assert her["learning_rate"] == 1e-3 and her["gamma"] == 0.9  # --lr and --set win
