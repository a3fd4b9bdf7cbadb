"""``robolearn replay``: re-execute a recorded episode's ``action`` column in simulation.

The env is reset with the episode's seed and each recorded action (the action actually sent,
after the safety layer) is commanded for one control period; the resulting
``observation.state`` trajectory (qpos + gripper width) is compared with the recorded one.

The seed is the one stored in the episode's metadata row (``robolearn record`` and
``deploy`` store it); ``--seed S`` overrides it. Datasets without stored seeds (recorded
elsewhere, or before seeds were stored) fall back to ``robolearn record``'s rule, episode
``K`` reset with ``0 + K``. The env defaults to the one in ``meta/robolearn_env.json``.
MuJoCo is deterministic, so with the right seed the maximum deviation is at float32
rounding level (the tests require < 1e-4 rad / m).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.cli.common import SimBackendName, Subcommand
from robolearn.core.types import ConfigError

TOLERANCE = 1e-4
"""Maximum |Δ observation.state| (rad or m) for a replay to count as reproduced."""


@dataclass
class ReplayConfig:
    """Replay a recorded episode's actions in the simulated env and compare the states."""

    dataset: Path
    """Dataset folder."""
    episode: int = 0
    """Episode to replay."""
    env: str | None = None
    """Task the episode was recorded in; default: the dataset's ``meta/robolearn_env.json``."""
    seed: int | None = None
    """Reset seed; default: the seed stored with the episode (``0 + K`` when none is)."""
    tolerance: float = TOLERANCE
    """Exit with status 1 when the max deviation exceeds this."""
    backend: SimBackendName | None = None
    """Simulator to replay in; default: the one the dataset was recorded in. Replaying in the
    other simulator shows how far its physics takes the same actions."""


def replay_episode(
    dataset: Path,
    episode: int,
    env_id: str | None = None,
    seed: int | None = None,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(recorded, replayed)`` observation.state trajectories, each (T, D)."""
    from robolearn import envs
    from robolearn.data import DatasetReader
    from robolearn.data.meta import read_env_metadata

    with DatasetReader(dataset) as reader:
        columns = reader.episode(episode)
        hz = reader.fps
        stored_seed = reader.episode_seed(episode)
    recorded = np.asarray(columns["observation.state"], np.float64)
    actions = np.asarray(columns["action"], np.float64)
    replay_id, kwargs = _env_of(dataset, env_id, hz, read_env_metadata(dataset))
    if backend is not None:
        kwargs["backend"] = backend
    env = envs.make(replay_id, **kwargs)
    if seed is None:
        seed = stored_seed if stored_seed is not None else episode
    try:
        replayed = _run_actions(env.unwrapped, actions, seed)
    finally:
        env.close()
    return recorded, replayed


def _env_of(
    dataset: Path, env_id: str | None, hz: float, recorded: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The env id and kwargs to replay in: the recorded env unless ``env_id`` names another."""
    if env_id is None and not recorded:
        raise ConfigError(
            f"{dataset} does not say which env it was recorded in (no meta/robolearn_env.json): "
            "pass --env ID"
        )
    if env_id is None:
        env_id = str(recorded["id"])
    if env_id.startswith("robot:"):
        raise ConfigError(
            f"{dataset} was recorded on a robot ({env_id}); replay runs a simulated env: "
            "pass --env ID"
        )
    if env_id == recorded.get("id"):
        return env_id, dict(recorded.get("kwargs", {}))
    return env_id, {"control_hz": hz, "max_ee_step_m": 0.05 * 20.0 / hz}


def _run_actions(env: Any, actions: np.ndarray, seed: int) -> np.ndarray:
    from robolearn.core.observations import PROPRIO_KEYS

    env.reset(seed=seed)
    states = []
    for action in actions:
        state = env.state_observation()
        states.append(np.concatenate([np.ravel(state[k]) for k in PROPRIO_KEYS]))
        env.driver.command(env.action_to_command(action))
        env.driver.wait(1.0 / env.control_hz)
    return np.asarray(states, np.float64)


def run(cfg: ReplayConfig) -> int:
    """Replay; print the maximum deviation."""
    recorded, replayed = replay_episode(cfg.dataset, cfg.episode, cfg.env, cfg.seed, cfg.backend)
    deviation = float(np.abs(recorded - replayed).max()) if len(recorded) else 0.0
    print(
        f"episode {cfg.episode}: {len(recorded)} frames, max |Δ observation.state| = "
        f"{deviation:.3g}"
    )
    return 0 if deviation <= cfg.tolerance else 1


COMMAND = Subcommand(
    name="replay",
    help="re-execute a recorded episode's actions in simulation and compare the states",
    config=ReplayConfig,
    run=run,
)
