"""Between envs and policies: env observations → the feature names policies read, and the
env a saved policy was trained in.

Policies read dataset feature names (``observation.state``, ``observation.images.front``...),
the names the recorder writes. :func:`policy_inputs` adds them to an env observation, keeping
the env's own keys too (an SB3 policy reads those), so one dict serves every policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from robolearn.core.observations import IMAGE_SUFFIXES, observation_features
from robolearn.core.types import ConfigError

Obs = Mapping[str, np.ndarray]

PRIVILEGED_KEY = "observation.environment_state"
"""The task's privileged state (object and goal poses): in simulation only."""


def policy_inputs(obs: Obs, state: Obs | None = None) -> dict[str, np.ndarray]:
    """``obs`` plus its dataset-named features. ``state`` is the task's state observation
    (``env.state_observation()``); without it, the state comes from ``obs`` itself, which has
    the privileged environment state only in ``obs_mode="state"``."""
    if "observation" in obs and "desired_goal" in obs:  # goal-conditioned: leave as is
        return dict(obs)
    source = (
        state
        if state is not None
        else {k: v for k, v in obs.items() if not k.endswith(IMAGE_SUFFIXES)}
    )
    return {**obs, **observation_features(dict(source), dict(obs))}


def env_observation_shapes(env: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of everything :func:`policy_inputs` offers a policy acting in ``env`` (for spec
    checks): exactly what eval, rollout and deploy give it."""
    inputs = policy_inputs(env.unwrapped.observe())
    return {k: tuple(np.asarray(v).shape) for k, v in inputs.items()}


def check_env_offers(config: Any) -> None:
    """ConfigError when the env a policy's data was recorded in (``config.env``, rebuilt as
    eval and deploy rebuild it) does not offer an input the policy reads. Robot datasets
    (``robot:<name>``) and datasets without an env description are not checked."""
    from robolearn import envs

    env_id = config.env.get("id") if config.env else None
    if env_id is None or env_id not in envs.registered_ids():
        return
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.env["kwargs"].items()}
    env = envs.make(env_id, **kwargs)
    try:
        offered = env_observation_shapes(env)
    finally:
        env.close()
    missing = [k for k in config.input_features if k not in offered]
    if missing:
        mode = f"observation mode {kwargs.get('obs_mode', 'state')}"
        raise ConfigError(
            f"the policy would read {', '.join(missing)}, which {env_id} ({mode}, as eval and "
            f"deploy build it) does not give a policy; train on what it offers "
            f"({', '.join(k for k in sorted(offered) if k.startswith('observation.'))}) with "
            "--obs-keys"
        )


class EnvPolicy:
    """A saved policy behind the chunk interface the asynchronous runtime calls
    (:class:`robolearn.control.inference.ChunkPolicy`): env observations in, chunks out."""

    def __init__(self, folder: str, device: str = "cpu", seed: int | None = 0) -> None:
        from robolearn.policies.base import load_policy

        self.policy = load_policy(folder, device)
        self.seed = seed

    def reset(self) -> None:
        """Start an episode (history cleared; sampling re-seeded)."""
        self.policy.reset(seed=self.seed)

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The policy's chunk (H, A) for an env observation."""
        return self.policy.predict_chunk(policy_inputs(obs))


def load_env_policy(folder: str, device: str = "cpu") -> EnvPolicy:
    """Module-level factory (picklable through :func:`functools.partial`) for worker
    processes: ``partial(load_env_policy, folder)``."""
    import torch

    torch.set_num_threads(1)
    return EnvPolicy(folder, device)
