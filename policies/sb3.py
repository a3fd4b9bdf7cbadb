"""A Stable-Baselines3 agent behind the policy contract, saved in the policy folder format.

``robolearn train --algo ppo|sac|td3`` (:mod:`robolearn.rl`) writes these folders; ``eval``
and ``deploy`` load them with :func:`robolearn.policies.base.load_policy` like any other policy::

    policy = load_policy("runs/reach/checkpoints/last")
    action = policy.act(policy_inputs(obs))     # (A,) deterministic, in the env's action space

``config.json`` describes what rebuilds the network without pickle: the algorithm, the
observation and action spaces as JSON (``inf`` bounds as the strings ``"inf"``/``"-inf"``)
and the JSON-able ``policy_kwargs`` (``activation_fn`` by its ``torch.nn`` name).
``model.safetensors`` holds the inference network only: the actor of SAC/TD3, the whole
actor-critic of PPO. The policy reads the env's own observation keys (``qpos``,
``goal_pos``... or ``observation``/``achieved_goal``/``desired_goal``), unnormalized.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from robolearn.core.stats import Stats
from robolearn.core.types import ConfigError
from robolearn.policies.base import ACTION, Batch, Policy, PolicyConfig, register_policy

ALGOS = ("ppo", "sac", "td3")


@dataclasses.dataclass
class SB3Config(PolicyConfig):
    """What rebuilds a Stable-Baselines3 agent's inference network (see the module doc)."""

    algo: str = "sac"
    """Stable-Baselines3 algorithm: ppo, sac or td3."""
    observation_space: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The env's observation space as JSON (:func:`space_to_json`): a Dict of Boxes."""
    action_space: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The env's action space as JSON: a Box."""
    policy_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Stable-Baselines3 ``policy_kwargs`` (JSON-able; ``activation_fn`` as a name)."""
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    """How the agent was trained (algorithm options, HER, randomization, steps): a record."""

    def check(self) -> None:
        """The base checks, plus a known algorithm, a Dict observation and a Box action."""
        super().check()
        if self.algo not in ALGOS:
            raise ConfigError(f"SB3 algo must be one of {', '.join(ALGOS)}, got {self.algo!r}")
        if self.observation_space.get("type") != "Dict":
            raise ConfigError("an SB3 policy needs a Dict observation_space of Boxes")
        if self.action_space.get("type") != "Box":
            raise ConfigError("an SB3 policy needs a Box action_space (continuous actions)")


@register_policy
class SB3Policy(Policy):
    """A trained Stable-Baselines3 agent's deterministic policy (one action per tick)."""

    trains_from_datasets = False  # trained by ``robolearn train --algo``, not on datasets

    name = "sb3"
    config_class = SB3Config
    config: SB3Config
    net: Any  # an SB3 BasePolicy (nn.Module); typed loosely, SB3 ships no type stubs
    action_low: torch.Tensor
    action_high: torch.Tensor

    def __init__(self, config: SB3Config, stats: Mapping[str, Stats] | None = None) -> None:
        super().__init__(config, stats)
        obs_space = space_from_json(config.observation_space)
        act_space = space_from_json(config.action_space)
        assert isinstance(act_space, spaces.Box)
        self.net = build_inference_net(config.algo, obs_space, act_space, config.policy_kwargs)
        self.register_buffer("action_low", torch.as_tensor(act_space.low), persistent=False)
        self.register_buffer("action_high", torch.as_tensor(act_space.high), persistent=False)

    @classmethod
    def from_sb3(
        cls,
        model: Any,
        algo: str,
        policy_kwargs: Mapping[str, Any],
        env: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> SB3Policy:
        """The inference network of a Stable-Baselines3 ``model`` as a policy (a copy)."""
        config = sb3_config(
            algo, model.observation_space, model.action_space, policy_kwargs, env, training
        )
        policy = cls(config)
        policy.net.load_state_dict(inference_net(algo, model.policy).state_dict())
        return policy.eval()

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise ConfigError(
            "SB3 policies have no imitation loss: train them with "
            "`robolearn train --algo ppo|sac|td3 --env ID` (reinforcement learning)"
        )

    def _predict(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        current = {k: v[:, -1] for k, v in obs.items()}  # (B, D) per key, newest frame
        raw = self.net._predict(current, deterministic=True).float()  # (B, A)
        low, high = self.action_low.to(raw), self.action_high.to(raw)
        if self.net.squash_output:  # SAC/TD3 act in [-1, 1]; map to the action space
            actions = low + 0.5 * (raw + 1.0) * (high - low)
        else:  # PPO's Gaussian mean: clipped to the space as SB3's predict does
            actions = torch.maximum(torch.minimum(raw, high), low)
        return actions[:, None]  # (B, 1, A)


def sb3_config(
    algo: str,
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    policy_kwargs: Mapping[str, Any],
    env: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> SB3Config:
    """The config of an agent acting in these spaces; raises ConfigError for spaces an SB3
    policy cannot hold (non-Dict observations, image or non-vector keys, discrete actions)."""
    check_spaces(observation_space, action_space)
    assert isinstance(observation_space, spaces.Dict) and isinstance(action_space, spaces.Box)
    inputs = {k: list(s.shape or ()) for k, s in observation_space.spaces.items()}
    return SB3Config(
        input_features=inputs,
        action_dim=int(np.prod(action_space.shape)),
        normalization={**{k: "identity" for k in inputs}, ACTION: "identity"},
        env=dict(env or {}),
        algo=algo,
        observation_space=space_to_json(observation_space),
        action_space=space_to_json(action_space),
        policy_kwargs=dict(policy_kwargs),
        training=dict(training or {}),
    )


def check_spaces(observation_space: spaces.Space[Any], action_space: spaces.Space[Any]) -> None:
    """ConfigError unless observations are a Dict of float vectors and actions a float Box."""
    if not isinstance(action_space, spaces.Box):
        raise ConfigError(
            f"SB3 policies output continuous actions (a Box space); this env has {action_space}"
        )
    if not isinstance(observation_space, spaces.Dict):
        raise ConfigError(
            "SB3 policies read Dict observations of vectors (every robolearn task has them); "
            f"this env has {observation_space}"
        )
    for key, space in observation_space.spaces.items():
        is_vector = isinstance(space, spaces.Box) and len(space.shape) == 1
        if not is_vector or not np.issubdtype(space.dtype, np.floating):
            raise ConfigError(
                f"SB3 policies read float vectors; observation {key!r} is {space} "
                "(image observations are not supported: use obs_mode='state')"
            )


# -- the network ------------------------------------------------------------------------------


def sb3_algorithm(algo: str) -> Any:
    """The Stable-Baselines3 algorithm class called ``algo``."""
    from stable_baselines3 import PPO, SAC, TD3

    classes: dict[str, Any] = {"ppo": PPO, "sac": SAC, "td3": TD3}
    if algo not in classes:
        raise ConfigError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    return classes[algo]


def build_inference_net(
    algo: str,
    observation_space: spaces.Space[Any],
    action_space: spaces.Box,
    policy_kwargs: Mapping[str, Any],
) -> nn.Module:
    """A freshly initialized inference network, shaped as in training."""
    policy_class = sb3_algorithm(algo).policy_aliases["MultiInputPolicy"]
    full = policy_class(
        observation_space, action_space, lambda _: 0.0, **to_sb3_policy_kwargs(policy_kwargs)
    )
    return inference_net(algo, full)


def inference_net(algo: str, policy: Any) -> nn.Module:
    """The part of an SB3 policy that acts: the actor (SAC, TD3) or all of it (PPO)."""
    net: nn.Module = policy if algo == "ppo" else policy.actor
    return net


def to_sb3_policy_kwargs(policy_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON ``policy_kwargs`` → what SB3 takes (``activation_fn`` name → ``torch.nn`` class)."""
    out = dict(policy_kwargs)
    name = out.get("activation_fn")
    if name is not None:
        activation = getattr(nn, str(name), None)
        if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
            raise ConfigError(f"policy_kwargs activation_fn {name!r} is not a torch.nn module")
        out["activation_fn"] = activation
    return out


# -- spaces as JSON ---------------------------------------------------------------------------


def space_to_json(space: spaces.Space[Any]) -> dict[str, Any]:
    """A Box or a Dict of Boxes as JSON (non-finite bounds as strings)."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _bounds_to_json(space.low),
            "high": _bounds_to_json(space.high),
        }
    raise ConfigError(f"cannot describe {space} as JSON: only Box and Dict spaces")


def space_from_json(data: Mapping[str, Any]) -> spaces.Space[Any]:
    """Inverse of :func:`space_to_json`."""
    kind = data.get("type")
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(v) for k, v in data["spaces"].items()})
    if kind == "Box":
        shape = tuple(data["shape"])
        dtype = np.dtype(data["dtype"])
        low = np.array([float(v) for v in data["low"]], dtype).reshape(shape)
        high = np.array([float(v) for v in data["high"]], dtype).reshape(shape)
        return spaces.Box(low, high, shape, dtype)
    raise ConfigError(f"unknown space type {kind!r} in an SB3 policy config (Box or Dict)")


def _bounds_to_json(values: np.ndarray) -> list[float | str]:
    return [float(v) if math.isfinite(v) else str(float(v)) for v in np.ravel(values)]
