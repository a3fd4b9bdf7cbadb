"""Observation features: how an env's observation becomes the dataset's (LeRobot) features.

Shared by the recorder (which writes them), the policies (which read them from an env,
:func:`robolearn.policies.env_io.policy_inputs`) and replay. Numpy only.
"""

from __future__ import annotations

import numpy as np

Obs = dict[str, np.ndarray]
PROPRIO_KEYS = ("qpos", "gripper_width")
"""The ``state`` keys of ``observation.state`` (what a robot knows of itself)."""
EE_KEYS = ("ee_pos", "ee_quat")
"""The ``state`` keys of ``observation.ee_pose``."""
IMAGE_SUFFIXES = ("_rgb", "_depth")
"""Observation keys with these suffixes are camera images."""


def observation_features(state: Obs, obs: Obs) -> dict[str, np.ndarray]:
    """The dataset's observation features (LeRobot names) of one tick: vectors from the
    task's ``state`` observation (``FrankaTaskEnv.state_observation``), cameras from ``obs``
    (what policies see, too: :func:`robolearn.policies.env_io.policy_inputs`)."""
    frame: dict[str, np.ndarray] = {
        "observation.state": _concat(state, PROPRIO_KEYS),
        "observation.ee_pose": _concat(state, EE_KEYS),
    }
    if env_state_keys(state):  # a task's privileged state (none on hardware)
        frame["observation.environment_state"] = _concat(state, env_state_keys(state))
    for key, value in obs.items():
        if key.endswith("_rgb"):
            frame[f"observation.images.{key[:-4]}"] = value
        elif key.endswith("_depth"):
            frame[f"observation.depth.{key[:-6]}"] = value
    return frame


def env_state_keys(state: Obs) -> tuple[str, ...]:
    """The keys of a task's privileged state in ``state`` (none on hardware)."""
    skip = {*PROPRIO_KEYS, *EE_KEYS, "qvel"}
    return tuple(k for k in state if k not in skip and not k.endswith(IMAGE_SUFFIXES))


def feature_width(state: Obs, keys: tuple[str, ...]) -> int:
    """How many numbers ``keys`` of ``state`` hold together."""
    return int(sum(np.asarray(state[k]).size for k in keys))


def _concat(state: Obs, keys: tuple[str, ...]) -> np.ndarray:
    if not keys:
        return np.zeros(0, np.float32)
    return np.concatenate([np.asarray(state[k], np.float32).ravel() for k in keys])


_AXES = {3: ("x", "y", "z")}
_QUAT = ("w", "x", "y", "z")


def entry_names(state: Obs, keys: tuple[str, ...], joint_names: tuple[str, ...] = ()) -> list[str]:
    """One name per number of ``keys`` of ``state`` (LeRobot's ``names`` in ``info.json``):
    ``qpos`` by joint name, positions ``.x/.y/.z``, quaternions ``.w/.x/.y/.z``, else ``.i``."""
    names: list[str] = []
    for key in keys:
        size = int(np.asarray(state[key]).size)
        if key == "qpos" and len(joint_names) == size:
            names += list(joint_names)
        elif size == 1:
            names.append(key)
        elif key.endswith("quat") and size == 4:
            names += [f"{key}.{a}" for a in _QUAT]
        elif size in _AXES and key.endswith(("pos", "vel")):
            names += [f"{key}.{a}" for a in _AXES[size]]
        else:
            names += [f"{key}.{i}" for i in range(size)]
    return names


def action_names(control_mode: str, width: int, joint_names: tuple[str, ...] = ()) -> list[str]:
    """One name per action entry for a control mode (``action.i`` when the layout is unknown)."""
    ee = {"ee_delta": ["dx", "dy", "dz"], "ee_delta_pose": ["dx", "dy", "dz", "drx", "dry", "drz"]}
    if control_mode in ee:
        names = ee[control_mode]
    elif control_mode.startswith("joint"):
        names = list(joint_names)
    else:
        names = []
    if len(names) + 1 == width:
        return [*names, "gripper"]
    if len(names) == width:
        return names
    return [f"action.{i}" for i in range(width)]
