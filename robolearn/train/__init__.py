"""Policy training: typed config, data windows for a policy, the loop, checkpoints.

::

    from robolearn.train import TrainConfig, train
    result = train(TrainConfig(dataset="data/lift", policy="diffusion", out="runs/lift"))
    result.checkpoint   # runs/lift/checkpoints/last (a policy folder)

The loop (and torch) load on first use of ``train``, ``TrainResult`` or ``TrainingError``, so
that the CLI can read the config without importing torch.
"""

from typing import Any

from robolearn.train.config import PRESETS, TrainConfig

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "TrainingError", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult", "TrainingError"):
        from robolearn.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'robolearn.train' has no attribute {name!r}")
