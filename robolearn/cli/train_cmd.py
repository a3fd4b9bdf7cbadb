"""``robolearn train``: train an imitation policy on a dataset (this module), or, with
``--algo``, a reinforcement-learning agent in an env (:mod:`robolearn.rl`)."""

from __future__ import annotations

from robolearn.cli.common import Subcommand
from robolearn.train.config import TrainConfig


def run(cfg: TrainConfig) -> int:
    """Train; print where the checkpoint is and the throughput."""
    if cfg.algo is not None:
        from robolearn.rl import train_rl

        return train_rl(cfg)
    from robolearn.train import train

    result = train(cfg)
    if not result.main_process:
        return 0
    on = f" on {result.processes} processes" if result.processes > 1 else ""
    on += f" ({result.device}, {result.precision})"
    print(
        f"trained {result.steps} steps{on} in {result.seconds:.0f} s "
        f"({result.samples_per_s:.0f} samples/s), final loss {result.final_loss:.4f}; "
        f"checkpoint {result.checkpoint}"
    )
    return 0


COMMAND = Subcommand(
    name="train",
    help="train a policy (BC, Diffusion Policy, ACT) on a dataset, or an RL agent (--algo)",
    config=TrainConfig,
    run=run,
)
