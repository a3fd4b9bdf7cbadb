"""Which algorithm fits which task, and the Stable-Baselines3 options robolearn trains with.

Defaults on top of Stable-Baselines3's own (each can be overridden with ``--set KEY=VALUE``,
VALUE parsed as JSON, e.g. ``--set gamma=0.98 policy_kwargs='{"net_arch":[64,64]}'``):

* learning rate and batch size stay SB3's unless ``--lr`` / ``--batch-size`` are given;
* off-policy (SAC, TD3): a replay buffer no larger than the run (``min(steps, 1e6)``) and one
  gradient step per environment step whatever ``--n-envs`` is (``gradient_steps=-1``);
* HER: ``HerReplayBuffer`` with 4 "future" goals per transition, ``gamma=0.95`` (the usual
  value for 50-100-step goal tasks), and learning starts once every env has ended an episode
  (HER cannot sample before);
* TD3: Gaussian exploration noise of std 0.1 (``--set action_noise=STD``, also for SAC; SB3
  itself takes an ``ActionNoise`` object, which a command line cannot give);
* PPO: rollouts of ``min(2048, steps / n_envs)`` steps per env, so short runs update too.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from robolearn.core.types import ConfigError
from robolearn.policies.sb3 import ALGOS, check_spaces, sb3_algorithm, to_sb3_policy_kwargs
from robolearn.train.config import TrainConfig, is_given

OFF_POLICY = ("sac", "td3")
GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
HER_BUFFER_KWARGS: dict[str, Any] = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
HER_GAMMA = 0.95
MAX_BUFFER_SIZE = 1_000_000
MAX_PPO_ROLLOUT = 2048
TD3_ACTION_NOISE = 0.1
"""Std of TD3's Gaussian exploration noise (SB3 adds none by default, so TD3 would not explore)."""


def check_her_algorithm(algo: str, her: bool) -> None:
    """ConfigError when HER is asked of an algorithm without a replay buffer."""
    if algo not in ALGOS:
        raise ConfigError(f"unknown --algo {algo!r}; choose one of {', '.join(ALGOS)}")
    if her and algo not in OFF_POLICY:
        raise ConfigError(
            f"--her relabels goals in a replay buffer, which {algo.upper()} (on-policy) does not "
            f"have: use --algo {' or --algo '.join(OFF_POLICY)} with --her, or drop --her to "
            f"train {algo.upper()} on a dense reward"
        )


def check_env_fits(algo: str, her: bool, env_id: str, env: gym.Env[Any, Any]) -> None:
    """ConfigError naming the tasks that fit when ``env`` does not suit ``algo`` / ``her``."""
    fits = ", ".join(goal_task_ids())
    goal_env = is_goal_env(env)
    if her and not goal_env:
        raise ConfigError(
            f"--her needs a goal-conditioned task (Dict observation with {'/'.join(GOAL_KEYS)} "
            f"and compute_reward); {env_id} is not one. HER fits: {fits}"
        )
    if algo == "ppo" and goal_env:
        raise ConfigError(
            f"{env_id} is goal-conditioned, which PPO cannot exploit (no goal relabelling): "
            f"train it with --algo {' or --algo '.join(OFF_POLICY)} --her, or give PPO a task "
            f"without goal conditioning: {fits}"
        )
    try:
        check_spaces(env.observation_space, env.action_space)
    except ConfigError as exc:
        raise ConfigError(
            f"{algo.upper()} does not fit {env_id}: {exc}. Tasks that fit: {fits}"
        ) from exc


def is_goal_env(env: gym.Env[Any, Any]) -> bool:
    """Whether ``env`` offers what HER needs: goal keys and ``compute_reward``."""
    space = env.observation_space
    has_keys = isinstance(space, spaces.Dict) and all(k in space.spaces for k in GOAL_KEYS)
    try:
        env.get_wrapper_attr("compute_reward")
    except AttributeError:
        return False
    return has_keys


def goal_task_ids() -> list[str]:
    """Registered tasks with a goal-conditioned variant (every robolearn task)."""
    from robolearn import envs

    return envs.registered_ids()


def sb3_kwargs(cfg: TrainConfig, algo: str, max_episode_steps: int) -> dict[str, Any]:
    """The JSON-able options to build the algorithm with (defaults, then ``--set``)."""
    kwargs: dict[str, Any] = {}
    if is_given(cfg.lr):
        kwargs["learning_rate"] = float(cfg.lr)
    if is_given(cfg.batch_size):
        kwargs["batch_size"] = int(cfg.batch_size)
    if algo in OFF_POLICY:
        kwargs["buffer_size"] = min(MAX_BUFFER_SIZE, max(cfg.steps, 1000))
        kwargs["gradient_steps"] = -1
    else:
        kwargs["n_steps"] = max(16, min(MAX_PPO_ROLLOUT, cfg.steps // cfg.n_envs))
    if algo == "td3":
        kwargs["action_noise"] = TD3_ACTION_NOISE
    if cfg.her:
        kwargs["gamma"] = HER_GAMMA
        kwargs["learning_starts"] = max(100, max_episode_steps * cfg.n_envs)
        kwargs["replay_buffer_kwargs"] = dict(HER_BUFFER_KWARGS)
    kwargs.update(cfg.policy_overrides())
    _check_known(algo, kwargs)
    return kwargs


def _check_known(algo: str, kwargs: Mapping[str, Any]) -> None:
    params = inspect.signature(sb3_algorithm(algo).__init__).parameters
    reserved = {"self", "policy", "env", "seed", "device", "verbose", "tensorboard_log"}
    known = sorted(set(params) - reserved)
    unknown = sorted(k for k in kwargs if k not in known)
    if unknown:
        raise ConfigError(f"{algo.upper()} has no options {unknown} (--set); options: {known}")
    for key in ("policy_kwargs", "replay_buffer_kwargs"):
        if key in kwargs and not isinstance(kwargs[key], dict):
            raise ConfigError(f"--set {key}= takes a JSON object, got {kwargs[key]!r}")
    noise = kwargs.get("action_noise")
    if noise is not None and not (isinstance(noise, (int, float)) and noise >= 0):
        raise ConfigError(f"--set action_noise= takes a standard deviation ≥ 0, got {noise!r}")


def build_model(
    algo: str, her: bool, kwargs: Mapping[str, Any], vec_env: Any, seed: int, device: str
) -> Any:
    """The SB3 algorithm on ``vec_env`` with ``kwargs`` (JSON-able, see :func:`sb3_kwargs`)."""
    options = dict(kwargs)
    options["policy_kwargs"] = to_sb3_policy_kwargs(options.get("policy_kwargs", {}))
    if options.get("action_noise") is not None:
        options["action_noise"] = _gaussian_noise(float(options["action_noise"]), vec_env)
    if her:
        from stable_baselines3 import HerReplayBuffer

        options["replay_buffer_class"] = HerReplayBuffer
    try:
        return sb3_algorithm(algo)(
            "MultiInputPolicy", vec_env, seed=seed, device=device, verbose=0, **options
        )
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"{algo.upper()} rejected its options {dict(kwargs)}: {exc}") from exc


def _gaussian_noise(std: float, vec_env: Any) -> Any:
    """SB3's Gaussian action noise of ``std`` on every action dimension (in [-1, 1] units)."""
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise

    dims = int(np.prod(vec_env.action_space.shape))
    return NormalActionNoise(np.zeros(dims), np.full(dims, std))
