"""A tiny untrained BC policy that fits a robot env, for the deploy-on-a-robot tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robolearn.envs.robot_env import RobotEnv
from robolearn.policies import make_policy
from robolearn.policies.bc import BCConfig


def tiny_bc_policy(env: RobotEnv, folder: Path) -> Path:
    """Save, in ``folder``, a small untrained BC policy whose specs fit ``env`` (its outputs
    stay near the middle of the joint ranges: the statistics span them)."""
    obs = env.observe()
    state = np.concatenate([obs["qpos"], obs["gripper_width"]])  # gripper_width: (1,) or (0,)
    low, high = env.action_space.low, env.action_space.high
    stats = {
        "observation.state": {"min": state - 1.0, "max": state + 1.0},
        "action": {"min": low * 0.1, "max": high * 0.1},
    }
    config = BCConfig(
        input_features={"observation.state": [state.size]},
        action_dim=int(low.size),
        hidden=[16],
        env={"kwargs": {"control_hz": float(env.control_hz)}},
    )
    return make_policy("bc", config, stats).save(folder)
