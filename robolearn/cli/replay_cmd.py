"""``robolearn replay``: re-execute a recorded episode's ``action`` column in simulation.

The env is reset with the episode's seed and each recorded action (the action actually sent,
after the safety layer) is commanded for one control period; the resulting
``observation.state`` trajectory (qpos + gripper width) is compared with the recorded one.

Limitation: datasets do not store the reset seed. ``robolearn record`` resets episode ``k``
with ``seed + k`` (default seed 0), so replay uses ``--seed + K``; pass the recording's
``--seed``. Episodes re-recorded with a teleop device (which skip seeds) cannot be matched.
MuJoCo is deterministic, so with the right seed the maximum deviation is at float32
rounding level (the tests require < 1e-4 rad / m).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.cli.common import Subcommand

TOLERANCE = 1e-4
"""Maximum |Δ observation.state| (rad or m) for a replay to count as reproduced."""


@dataclass
class ReplayConfig:
    """Replay a recorded episode's actions in the simulated env and compare the states."""

    dataset: Path
    """Dataset folder."""
    episode: int = 0
    """Episode to replay."""
    env: str = "robolearn/FrankaLift-v0"
    """Task the episode was recorded in."""
    seed: int = 0
    """The recording's --seed: episode K is reset with seed + K."""
    tolerance: float = TOLERANCE
    """Exit with status 1 when the max deviation exceeds this."""


def replay_episode(
    dataset: Path, episode: int, env_id: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(recorded, replayed)`` observation.state trajectories, each (T, D)."""
    import envs
    from robolearn.data import DatasetReader

    with DatasetReader(dataset) as reader:
        columns = reader.episode(episode)
        hz = reader.fps
    recorded = np.asarray(columns["observation.state"], np.float64)
    actions = np.asarray(columns["action"], np.float64)
    env = envs.make(env_id, control_hz=hz, max_ee_step_m=0.05 * 20.0 / hz)
    try:
        replayed = _run_actions(env.unwrapped, actions, seed + episode)
    finally:
        env.close()
    return recorded, replayed


def _run_actions(env: Any, actions: np.ndarray, seed: int) -> np.ndarray:
    from robolearn.data.recorder import PROPRIO_KEYS

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
    recorded, replayed = replay_episode(cfg.dataset, cfg.episode, cfg.env, cfg.seed)
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
