"""Policy training: typed config, data windows for a policy, the loop, checkpoints.

::

    from robolearn.train import TrainConfig, train
    result = train(TrainConfig(dataset="data/lift", policy="diffusion", out="runs/lift"))
    result.checkpoint   # runs/lift/checkpoints/last (a policy folder)
"""

from robolearn.train.config import PRESETS, TrainConfig
from robolearn.train.loop import TrainingError, TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "TrainingError", "train"]
