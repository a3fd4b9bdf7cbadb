"""Gymnasium tasks on the simulated Franka. Importing this package registers them.

Ids are ``robolearn/<Name>-v<k>``; a released version is frozen and a change makes ``v<k+1>``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from robolearn.core import _gl  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)
from robolearn.core.types import ConfigError

NAMESPACE = "robolearn"


def _entry_point(task_name: str, version: int = 0, **kwargs: Any) -> gym.Env:
    from robolearn.envs.base import FrankaTaskEnv, GoalFrankaTaskEnv
    from robolearn.envs.tasks import TASKS

    task_cls = next(t for t in TASKS if (t.name, t.version) == (task_name, version))
    env_cls = GoalFrankaTaskEnv if kwargs.get("goal_conditioned") else FrankaTaskEnv
    return env_cls(task_cls(), **kwargs)


def _register_all() -> None:
    from robolearn.envs.tasks import TASKS

    for task_cls in TASKS:
        env_id = f"{NAMESPACE}/{task_cls.name}-v{task_cls.version}"
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point=f"{__name__}:_entry_point",
                kwargs={"task_name": task_cls.name, "version": task_cls.version},
                max_episode_steps=task_cls.max_episode_steps,
            )


def registered_ids() -> list[str]:
    """Every robolearn task id, sorted."""
    return sorted(k for k in gym.registry if k.startswith(f"{NAMESPACE}/"))


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with a clear error listing the valid ids for an unknown id."""
    if env_id not in gym.registry:
        raise ConfigError(
            f"unknown environment {env_id!r}; registered: {', '.join(registered_ids())}"
        )
    return gym.make(env_id, **kwargs)


def make_expert(env: gym.Env) -> Any:
    """The scripted expert of ``env``'s task (see :mod:`robolearn.envs.experts`)."""
    from robolearn.envs.experts import make_expert as _make

    return _make(env)


_register_all()

__all__ = ["NAMESPACE", "make", "make_expert", "registered_ids"]
