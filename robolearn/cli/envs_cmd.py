"""``robolearn envs``: list the registered tasks with their spaces, rate and episode length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from robolearn.cli.common import Subcommand, format_table

HEADERS = ("id", "observation", "action", "control Hz", "max steps")


@dataclass
class EnvsConfig:
    """List every registered task: observation and action spaces, control rate, time limit."""

    ids: bool = False
    """Print only the ids, one per line."""


def describe_space(space: gym.Space[Any]) -> str:
    """A short description of a space.

    A Dict gives the shape per key (``qpos:7 image:96x96x3``), a Box its shape and dtype
    (``7 float32``), anything else its repr.
    """
    if isinstance(space, spaces.Dict):
        return " ".join(f"{key}:{_dims(sub)}" for key, sub in space.spaces.items())
    if isinstance(space, spaces.Box):
        return f"{_dims(space)} {space.dtype}"
    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    return str(space)


def _dims(space: gym.Space[Any]) -> str:
    """Shape as ``96x96x3`` (``scalar`` for ``()``); the repr for spaces without a shape."""
    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    if space.shape is None:
        return str(space)
    return "x".join(str(d) for d in space.shape) or "scalar"


def env_row(env: gym.Env[Any, Any], env_id: str) -> list[str]:
    """One table row for an env made from ``env_id``."""
    control_hz = getattr(env.unwrapped, "control_hz", None)
    max_steps = env.spec.max_episode_steps if env.spec is not None else None
    return [
        env_id,
        describe_space(env.observation_space),
        describe_space(env.action_space),
        "?" if control_hz is None else f"{float(control_hz):g}",
        "none" if max_steps is None else str(max_steps),
    ]


def run(cfg: EnvsConfig) -> int:
    """Print the table (or just the ids)."""
    from robolearn import envs  # here, not at the top: importing the tasks loads MuJoCo

    ids = envs.registered_ids()
    if cfg.ids:
        print("\n".join(ids))
        return 0
    rows = []
    for env_id in ids:
        env = envs.make(env_id)
        try:
            rows.append(env_row(env, env_id))
        finally:
            env.close()
    print(format_table(HEADERS, rows))
    return 0


COMMAND = Subcommand(
    name="envs",
    help="list registered tasks: spaces, control rate, episode length",
    config=EnvsConfig,
    run=run,
)
