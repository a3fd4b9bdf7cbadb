"""Periodic evaluation and checkpoints during SB3 training.

Every ``eval_every`` environment steps the agent's inference network is copied into an
:class:`robolearn.policies.sb3.SB3Policy` and run for ``episodes`` episodes in the nominal task,
exactly
as ``robolearn eval`` runs it (episode ``k`` reset with seed ``EVAL_SEED + k``, deterministic
actions, success = ``info["is_success"]`` at the last step). The success rate goes to
TensorBoard (``eval/success_rate``) and to ``eval_log.jsonl``; then the policy is saved to
``checkpoints/<step>`` and ``checkpoints/last``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from robolearn.policies.env_io import policy_inputs
from robolearn.policies.sb3 import SB3Policy
from robolearn.rl.checkpoint import save_rl_checkpoint

EVAL_SEED = 100_000
"""Evaluation episode k resets with EVAL_SEED + k, as ``robolearn eval`` does by default."""
EVAL_LOG = "eval_log.jsonl"


@dataclass
class Evaluation:
    """One evaluation of the current agent."""

    step: int
    successes: int
    episodes: int
    mean_return: float
    mean_length: float
    wall_s: float
    checkpoint: str | None = None

    @property
    def success_rate(self) -> float:
        """Successes / episodes."""
        return self.successes / max(1, self.episodes)

    def row(self) -> dict[str, Any]:
        """The ``eval_log.jsonl`` line."""
        return {**asdict(self), "success_rate": self.success_rate}


def run_episodes(
    policy: SB3Policy, env: gym.Env[Any, Any], episodes: int
) -> tuple[int, list[float], list[int]]:
    """Successes, returns and lengths of ``episodes`` seeded episodes of ``policy``."""
    successes, returns, lengths = 0, [], []
    for k in range(episodes):
        obs, info = env.reset(seed=EVAL_SEED + k)
        policy.reset(seed=EVAL_SEED + k)
        done, total, steps = False, 0.0, 0
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy.act(policy_inputs(obs)))
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        successes += bool(info.get("is_success"))
        returns.append(total)
        lengths.append(steps)
    return successes, returns, lengths


class EvalCheckpointCallback(BaseCallback):
    """Evaluates, logs and checkpoints every ``eval_every`` env steps (see the module doc)."""

    def __init__(
        self,
        eval_env: gym.Env[Any, Any],
        export: Callable[[Any], SB3Policy],
        out: Path,
        eval_every: int,
        episodes: int,
        progress: bool,
    ) -> None:
        super().__init__(verbose=0)
        self.eval_env, self.export, self.out = eval_env, export, out
        self.eval_every, self.episodes, self.progress = eval_every, episodes, progress
        self.history: list[Evaluation] = []
        self._next_eval = eval_every
        self._t0 = time.perf_counter()
        self._total_steps = 0

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        done = self.num_timesteps
        self._total_steps = int(self.locals.get("total_timesteps", 0))
        self._next_eval = (done // self.eval_every + 1) * self.eval_every
        if done == 0:
            self._save_start()
            self.evaluate(checkpoint=False)  # the starting point of the learning curve

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self.evaluate(checkpoint=True)
            while self._next_eval <= self.num_timesteps:
                self._next_eval += self.eval_every
        return True

    def finish(self) -> Evaluation:
        """The final evaluation and checkpoint (reuses one made at this very step)."""
        last = self.history[-1] if self.history else None
        if last is not None and last.step == self.num_timesteps and last.checkpoint:
            return last
        return self.evaluate(checkpoint=True)

    def evaluate(self, checkpoint: bool) -> Evaluation:
        """Run the evaluation episodes now; log them; checkpoint when asked."""
        policy = self.export(self.model)
        successes, returns, lengths = run_episodes(policy, self.eval_env, self.episodes)
        result = Evaluation(
            step=int(self.num_timesteps),
            successes=successes,
            episodes=self.episodes,
            mean_return=float(np.mean(returns)),
            mean_length=float(np.mean(lengths)),
            wall_s=time.perf_counter() - self._t0,
        )
        if checkpoint:
            folder = save_rl_checkpoint(policy, self.model, result.step, self.out / "checkpoints")
            result.checkpoint = str(folder)
        self._log(result)
        return result

    def _save_start(self) -> None:
        """Checkpoint the untrained agent, so a run stopped in its first evaluation already
        has checkpoints/last to resume or deploy from."""
        save_rl_checkpoint(self.export(self.model), self.model, 0, self.out / "checkpoints")

    def _log(self, result: Evaluation) -> None:
        self.history.append(result)
        self.logger.record("eval/success_rate", result.success_rate)
        self.logger.record("eval/mean_return", result.mean_return)
        self.logger.record("eval/mean_length", result.mean_length)
        self.logger.dump(result.step)
        with (self.out / EVAL_LOG).open("a") as fh:
            fh.write(json.dumps(result.row()) + "\n")
        if self.progress:
            total = f"/{self._total_steps}" if self._total_steps else ""
            print(
                f"step {result.step}{total}: success {result.successes}/{result.episodes} = "
                f"{100 * result.success_rate:.0f} %, mean return {result.mean_return:.2f} "
                f"({result.wall_s:.0f} s)",
                flush=True,
            )
