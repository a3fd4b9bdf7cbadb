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

Obs = Mapping[str, np.ndarray]


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
    """Shapes of everything :func:`policy_inputs` offers for ``env`` (for spec checks)."""
    u = env.unwrapped
    obs = u.observe()
    inputs = policy_inputs(obs, u.state_observation())
    return {k: tuple(np.asarray(v).shape) for k, v in inputs.items()}


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
