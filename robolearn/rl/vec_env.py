"""Training and evaluation envs for reinforcement learning.

Training envs run in subprocesses (``SubprocVecEnv``; a ``DummyVecEnv`` for one env), each
``Monitor``-wrapped so that SB3 logs episode returns and ``info["is_success"]``, and wrapped in
:class:`robolearn.envs.randomization.DomainRandomization` when a randomization config is given:
``ObservationNoise(ActionLatency(ModelRandomization(task)))`` under the wrapper that draws the
values. The evaluation env is the nominal task (no randomization) in the training process.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym

from robolearn.core.types import ConfigError
from robolearn.envs.randomization import DomainRandomization, DomainRandomizationConfig
from robolearn.train.config import TrainConfig


def env_kwargs(cfg: TrainConfig, env_id: str) -> dict[str, Any]:
    """The ``envs.make`` options of the task: goal conditioning with HER, the reward type
    (default sparse with HER, dense otherwise). Only robolearn tasks take them."""
    from robolearn import envs

    if not env_id.startswith(f"{envs.NAMESPACE}/"):
        if cfg.reward_type is not None:
            raise ConfigError(f"--reward-type applies to robolearn tasks only, not {env_id}")
        return {}
    reward = cfg.reward_type or ("sparse" if cfg.her else "dense")
    return {"goal_conditioned": cfg.her, "reward_type": reward}


def make_env(
    env_id: str, kwargs: dict[str, Any], randomization: DomainRandomizationConfig | None = None
) -> gym.Env[Any, Any]:
    """One training env: the task, optionally randomized (the composition of wrappers that
    :class:`DomainRandomization` builds), in a ``Monitor`` (picklable by reference, so
    subprocesses can build it)."""
    from stable_baselines3.common.monitor import Monitor

    from robolearn import envs

    env = envs.make(env_id, **kwargs)
    if randomization is not None:
        env = DomainRandomization(env, randomization)
    return Monitor(env)


def make_vec_env(
    env_id: str,
    kwargs: dict[str, Any],
    n_envs: int,
    randomization: DomainRandomizationConfig | None = None,
) -> Any:
    """``n_envs`` training envs: subprocesses when more than one."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if n_envs < 1:
        raise ConfigError(f"--n-envs must be ≥ 1, got {n_envs}")
    factories = [partial(make_env, env_id, kwargs, randomization) for _ in range(n_envs)]
    return DummyVecEnv(factories) if n_envs == 1 else SubprocVecEnv(factories)  # type: ignore[arg-type]


def load_randomization(spec: str | None) -> DomainRandomizationConfig | None:
    """``--randomize``: a preset name or a JSON file; None when not given."""
    return None if spec is None else DomainRandomizationConfig.load(spec)


def max_episode_steps(env: gym.Env[Any, Any]) -> int:
    """The env's time limit (its spec's ``max_episode_steps``); ConfigError when it has none
    (evaluation and HER need episodes that end)."""
    steps = env.spec.max_episode_steps if env.spec is not None else None
    if not steps:
        raise ConfigError(f"{env.spec.id if env.spec else env} has no time limit; register one")
    return int(steps)
