"""Reinforcement learning with Stable-Baselines3 (PPO, SAC, TD3, HER) on the robolearn tasks.

::

    from robolearn.rl import run_rl
    from robolearn.train import TrainConfig
    result = run_rl(TrainConfig(algo="sac", her=True, env="robolearn/FrankaReach-v0",
                                steps=20_000, out="runs/reach"))
    result.final.success_rate, result.checkpoint   # runs/reach/checkpoints/last

``robolearn train --algo sac --her --env robolearn/FrankaReach-v0 --steps 20000`` does the
same from the command line; the checkpoint is a policy folder that ``robolearn eval`` runs.
"""

from robolearn.rl.train import RLResult, run_rl, train_rl

__all__ = ["RLResult", "run_rl", "train_rl"]
