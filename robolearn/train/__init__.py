"""Policy training: typed config, data windows for a policy, the loop, checkpoints.

::

    from robolearn.train import TrainConfig, train
    result = train(TrainConfig(dataset="data/lift", policy="diffusion", out="runs/lift"))
    result.checkpoint   # runs/lift/checkpoints/last (a policy folder)

:func:`robolearn.train.pretrain.pretrain` (configured by :class:`PretrainConfig`) pretrains an
MAE image encoder for image policies. The loop (and torch) load on first use of ``train``,
``TrainResult`` or ``TrainingError``, so that the CLI can read the configs without importing
torch.
"""

from typing import Any

from robolearn.train.config import PRESETS, TrainConfig
from robolearn.train.pretrain_config import PretrainConfig

__all__ = [
    "PRESETS",
    "PretrainConfig",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult", "TrainingError"):
        from robolearn.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'robolearn.train' has no attribute {name!r}")
