"""``robolearn train --algo``: Stable-Baselines3 on a registered task, saved as a policy folder.

The run folder ``--out`` holds ``train_config.json``, ``tensorboard/`` (SB3's rollout and
train scalars plus ``eval/success_rate``), ``eval_log.jsonl`` and ``checkpoints/<step>`` +
``checkpoints/last`` (policy folders; see :mod:`robolearn.rl.checkpoint`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from robolearn.core.types import ConfigError
from robolearn.rl.algos import (
    build_model,
    check_env_fits,
    check_her_algorithm,
    sb3_kwargs,
)
from robolearn.rl.callbacks import EvalCheckpointCallback, Evaluation
from robolearn.rl.checkpoint import LAST, restore_agent
from robolearn.rl.vec_env import env_kwargs, load_randomization, make_vec_env, max_episode_steps
from robolearn.train.config import TrainConfig
from robolearn.train.run_dir import CHECKPOINTS, prepare_run_dir


@dataclass
class RLResult:
    """What an RL training run produced."""

    checkpoint: Path
    steps: int
    final: Evaluation
    seconds: float
    history: list[Evaluation]


def train_rl(cfg: TrainConfig) -> int:
    """Train, print the final evaluation success rate and the checkpoint; exit status 0."""
    result = run_rl(cfg)
    final = result.final
    print(
        f"final evaluation after {result.steps} env steps: success {final.successes}/"
        f"{final.episodes} = {100 * final.success_rate:.1f} % on {cfg.env} "
        f"({_algo_name(cfg)}, {result.seconds:.0f} s); checkpoint {result.checkpoint}"
    )
    return 0


def run_rl(cfg: TrainConfig) -> RLResult:
    """Train ``cfg.algo`` in ``cfg.env`` for ``cfg.steps`` env steps (see the module doc)."""
    assert cfg.algo is not None and cfg.env is not None
    check_her_algorithm(cfg.algo, cfg.her)
    _check_rl_options(cfg)
    kwargs = env_kwargs(cfg, cfg.env)
    eval_env = _probe_env(cfg, kwargs)
    try:
        return _Run(cfg, kwargs, eval_env).train()
    finally:
        eval_env.close()


def _check_rl_options(cfg: TrainConfig) -> None:
    if cfg.eval_every < 1 or cfg.eval_episodes < 1:
        raise ConfigError("--eval-every and --eval-episodes must be ≥ 1")
    imitation = [
        flag
        for flag, given in (
            ("--dataset", cfg.dataset is not None),
            ("--preset", cfg.preset is not None),
            ("--obs-keys", bool(cfg.obs_keys)),
        )
        if given
    ]
    if imitation:
        raise ConfigError(
            f"{', '.join(imitation)}: imitation options, not used with --algo; pass "
            "Stable-Baselines3 options as --set KEY=VALUE (e.g. --set gamma=0.98)"
        )
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device here; use --device cpu or auto")


def _probe_env(cfg: TrainConfig, kwargs: dict[str, Any]) -> Any:
    """The evaluation env, checked against the algorithm before any worker starts."""
    from robolearn import envs

    assert cfg.algo is not None and cfg.env is not None
    env = envs.make(cfg.env, **kwargs)
    try:
        check_env_fits(cfg.algo, cfg.her, cfg.env, env)
        max_episode_steps(env)
    except ConfigError:
        env.close()
        raise
    return env


class _Run:
    """One training run: folder, agent, callback."""

    def __init__(self, cfg: TrainConfig, kwargs: dict[str, Any], eval_env: Any) -> None:
        assert cfg.algo is not None and cfg.env is not None
        self.cfg, self.algo, self.env_id = cfg, cfg.algo, cfg.env
        self.env_kwargs, self.eval_env = kwargs, eval_env
        self.options = sb3_kwargs(cfg, cfg.algo, max_episode_steps(eval_env))
        self.randomization = load_randomization(cfg.randomize)
        self.out = prepare_run_dir(
            cfg,
            resume_from=f"{CHECKPOINTS}/{LAST}",
            resume_from_is_dir=False,
            check_resume=partial(_check_same_run, cfg),
        )

    def train(self) -> RLResult:
        """Start the envs, learn, evaluate at the end; the envs are closed whatever happens."""
        import torch

        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        vec_env = make_vec_env(self.env_id, self.env_kwargs, self.cfg.n_envs, self.randomization)
        try:
            return self._learn(vec_env)
        finally:
            vec_env.close()

    def _learn(self, vec_env: Any) -> RLResult:
        from stable_baselines3.common.logger import configure

        model = build_model(
            self.algo, self.cfg.her, self.options, vec_env, self.cfg.seed, self.cfg.device
        )
        model.set_logger(configure(str(self.out / "tensorboard"), ["tensorboard"]))
        done = self._resume(model) if self.cfg.resume else 0
        callback = EvalCheckpointCallback(
            self.eval_env,
            self.export,
            self.out,
            self.cfg.eval_every,
            self.cfg.eval_episodes,
            self.cfg.progress,
        )
        t0 = time.perf_counter()
        if done < self.cfg.steps:
            model.learn(self.cfg.steps - done, callback=callback, reset_num_timesteps=done == 0)
        else:
            callback.init_callback(model)
        final = callback.finish()
        return RLResult(
            checkpoint=self.out / "checkpoints" / LAST,
            steps=int(model.num_timesteps),
            final=final,
            seconds=time.perf_counter() - t0,
            history=callback.history,
        )

    def _resume(self, model: Any) -> int:
        done = restore_agent(model, self.out / "checkpoints" / LAST)
        if hasattr(model, "learning_starts"):  # the replay buffer starts empty again
            model.learning_starts = done + int(self.options.get("learning_starts", 100))
        print(f"resuming {self.out} at env step {done}")
        return done

    def export(self, model: Any) -> Any:
        """The current agent as a policy that records how it was trained."""
        from robolearn.policies.sb3 import SB3Policy

        training = {
            "algo": self.algo,
            "her": self.cfg.her,
            "options": self.options,
            "randomize": None if self.randomization is None else self.randomization.to_dict(),
            "n_envs": self.cfg.n_envs,
            "seed": self.cfg.seed,
            "num_timesteps": int(model.num_timesteps),
        }
        env = {"id": self.env_id, "kwargs": self.env_kwargs}
        return SB3Policy.from_sb3(
            model, self.algo, self.options.get("policy_kwargs", {}), env, training
        )


def _check_same_run(cfg: TrainConfig, run: Path) -> None:
    """--resume continues the same algorithm in the same task."""
    from robolearn.policies.base import read_policy_config

    _, saved = read_policy_config(run / "checkpoints" / LAST)
    training = getattr(saved, "training", {})
    env = getattr(saved, "env", {})
    mine = (cfg.algo, cfg.her, cfg.env)
    theirs = (training.get("algo"), training.get("her"), env.get("id"))
    if mine != theirs:
        raise ConfigError(
            f"--resume: {run} was trained with algo/her/env {theirs}, not {mine}; "
            "pass the same options or choose another --out"
        )


def _algo_name(cfg: TrainConfig) -> str:
    return f"{cfg.algo}+her" if cfg.her else str(cfg.algo)
