"""Import robomimic-style HDF5 demonstrations into a LeRobot v3 dataset.

robomimic layout: ``data/demo_N/{actions, obs/<key>, states, rewards, dones}`` with
``data.attrs["env_args"]`` (JSON) and ``data.attrs["total"]``. Mapping:

* image observations (uint8, (T, H, W, 3)) → ``observation.images.<key minus _image>``
  (video);
* low-dimensional observations whose key starts with ``robot`` (robot0_eef_pos,
  robot0_joint_pos, robot0_gripper_qpos, ...) → ``observation.state``, the others
  (e.g. ``object``) → ``observation.environment_state``, each the concatenation of its keys
  in sorted order;
* ``actions`` → ``action``; ``rewards`` → ``next.reward``; ``dones`` → ``next.done``.

Needs ``h5py`` (``pip install robolearn[robomimic]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.core.types import ConfigError
from robolearn.data.features import Feature
from robolearn.data.writer import DatasetWriter, WriteMode


def _h5py() -> Any:
    from robolearn.core.extras import require

    return require("h5py", "importing robomimic files")


def _demo_names(data: Any) -> list[str]:
    names = [n for n in data if n.startswith("demo_")]
    return sorted(names, key=lambda n: int(n.split("_")[-1]))


def _split_obs(obs: Any) -> tuple[list[str], list[str], list[str]]:
    """(image keys, robot keys, environment keys) of one demo's ``obs`` group."""
    images, robot, other = [], [], []
    for key in sorted(obs):
        arr = obs[key]
        if arr.dtype == np.uint8 and arr.ndim == 4 and arr.shape[-1] == 3:
            images.append(key)
        elif key.startswith("robot"):
            robot.append(key)
        else:
            other.append(key)
    return images, robot, other


def _width(obs: Any, keys: list[str]) -> int:
    return int(sum(int(np.prod(obs[k].shape[1:])) for k in keys))


def _image_name(key: str) -> str:
    return "observation.images." + key.removesuffix("_image")


def _features(demo: Any) -> tuple[dict[str, Feature], list[str], list[str], list[str]]:
    obs = demo["obs"]
    images, robot, other = _split_obs(obs)
    feats = {
        "observation.state": Feature("float32", (_width(obs, robot),)),
        "observation.environment_state": Feature("float32", (_width(obs, other),)),
        "action": Feature("float32", tuple(demo["actions"].shape[1:])),
        "next.reward": Feature("float32", (1,)),
        "next.done": Feature("bool", (1,)),
    }
    for key in images:
        feats[_image_name(key)] = Feature("video", tuple(obs[key].shape[1:]))
    return feats, images, robot, other


def _concat(obs: Any, keys: list[str], length: int) -> np.ndarray:
    if not keys:
        return np.zeros((length, 0), np.float32)
    return np.concatenate(
        [np.asarray(obs[k], np.float32).reshape(length, -1) for k in keys], axis=1
    )


def _task(data: Any) -> str:
    raw = data.attrs.get("env_args")
    if raw is None:
        return "robomimic demonstration"
    args = json.loads(raw if isinstance(raw, str) else raw.decode())
    return str(args.get("env_name", "robomimic demonstration"))


def import_robomimic(
    path: str | Path, out: str | Path, fps: float = 20.0, overwrite: bool = False
) -> int:
    """Convert every ``data/demo_N`` of ``path`` into episodes of a new dataset at ``out``;
    returns the number of demos written."""
    if not Path(path).is_file():
        raise ConfigError(f"robomimic file {path} does not exist (give the path of its .hdf5)")
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise ConfigError(f"{path} has no 'data' group: not a robomimic file")
        data = f["data"]
        names = _demo_names(data)
        if not names:
            raise ConfigError(f"{path} holds no data/demo_N groups")
        feats, images, robot, other = _features(data[names[0]])
        task = _task(data)
        mode: WriteMode = "overwrite" if overwrite else "create"
        with DatasetWriter(out, fps, feats, "robomimic", mode=mode) as writer:
            for name in names:
                _write_demo(writer, data[name], task, images, robot, other)
    return len(names)


def _write_demo(
    writer: DatasetWriter,
    demo: Any,
    task: str,
    images: list[str],
    robot: list[str],
    other: list[str],
) -> None:
    obs = demo["obs"]
    actions = np.asarray(demo["actions"], np.float32)
    length = len(actions)
    state, env_state = _concat(obs, robot, length), _concat(obs, other, length)
    rewards = np.asarray(demo["rewards"], np.float32) if "rewards" in demo else np.zeros(length)
    dones = np.asarray(demo["dones"]) if "dones" in demo else np.zeros(length)
    frames = {key: np.asarray(obs[key]) for key in images}
    writer.start_episode(task)
    for t in range(length):
        frame: dict[str, Any] = {
            "observation.state": state[t],
            "observation.environment_state": env_state[t],
            "action": actions[t],
            "next.reward": np.array([rewards[t]], np.float32),
            "next.done": np.array([bool(dones[t])]),
        }
        for key in images:
            frame[_image_name(key)] = frames[key][t]
        writer.add_frame(frame)
    writer.save_episode()
