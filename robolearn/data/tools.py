"""Dataset maintenance: summaries, statistics, splitting and merging.

Splitting and merging re-write episodes through :class:`~robolearn.data.DatasetWriter`:
camera streams are decoded frame by frame and re-encoded (lossy for video; meant for
datasets of modest size), and statistics are recomputed by the writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.core.types import ConfigError
from robolearn.data.features import DEFAULT_FEATURES, Feature
from robolearn.data.meta import read_env_metadata, write_env_metadata
from robolearn.data.reader import DatasetReader
from robolearn.data.writer import DatasetWriter


def dataset_size_bytes(root: str | Path) -> int:
    """Bytes of every file under ``root``."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def recorded_features(reader: DatasetReader) -> dict[str, Feature]:
    """The features a writer takes to reproduce ``reader``'s dataset (no standard columns)."""
    return {k: f for k, f in reader.features.items() if k not in DEFAULT_FEATURES}


def info_summary(reader: DatasetReader) -> dict[str, Any]:
    """Episodes, frames, fps, features (dtype + shape), tasks and size on disk."""
    return {
        "root": str(reader.root),
        "episodes": reader.num_episodes,
        "frames": reader.num_frames,
        "fps": reader.fps,
        "robot_type": reader.info.get("robot_type"),
        "features": {k: (f.dtype, list(f.shape)) for k, f in reader.features.items()},
        "tasks": list(reader.tasks),
        "size_bytes": dataset_size_bytes(reader.root),
    }


def stats_summary(reader: DatasetReader) -> dict[str, dict[str, list[Any]]]:
    """Per-feature min/max/mean/std from ``meta/stats.json`` (flattened to lists), and the
    ``names`` of the entries (from ``info.json``; ``[i]`` where the dataset names none)."""
    out: dict[str, dict[str, list[Any]]] = {}
    for key, stats in reader.stats.items():
        out[key] = {
            name: np.asarray(stats[name], dtype=np.float64).ravel().tolist()
            for name in ("min", "max", "mean", "std")
            if name in stats
        }
        width = len(next(iter(out[key].values()), []))
        feature = reader.features.get(key)
        names = feature.names if feature is not None and not feature.is_visual else None
        out[key]["names"] = (
            list(names) if names and len(names) == width else list(map(str, range(width)))
        )
    return out


def episode_task(reader: DatasetReader, episode: int) -> str:
    """The task string of ``episode`` (that of its first frame)."""
    task_index = reader.episode(episode)["task_index"]
    return reader.tasks[int(np.asarray(task_index).ravel()[0])] if len(task_index) else ""


def episode_frames(reader: DatasetReader, episode: int) -> list[dict[str, Any]]:
    """Every frame of ``episode`` as a writer frame (columns + decoded cameras)."""
    features = recorded_features(reader)
    columns = reader.episode(episode)
    length = reader.episode_length(episode)
    times = np.asarray(columns["timestamp"], np.float64).reshape(-1)
    cameras = {k: reader.frames(k, episode, times) for k, f in features.items() if f.is_visual}
    frames: list[dict[str, Any]] = []
    for t in range(length):
        frame: dict[str, Any] = {k: columns[k][t] for k, f in features.items() if not f.is_visual}
        for key, images in cameras.items():
            frame[key] = (
                images[t].reshape(features[key].shape)
                if features[key].dtype == "depth"
                else images[t]
            )
        frames.append(frame)
    return frames


def copy_episodes(
    sources: Sequence[tuple[DatasetReader, Sequence[int]]], out: str | Path, overwrite: bool = False
) -> int:
    """Write the listed episodes of each reader, in order, into a new dataset at ``out``.

    All readers must share fps, features and recording env (ConfigError naming the difference
    otherwise); the env description (``meta/robolearn_env.json``) goes with the episodes.
    Returns the number of episodes written.
    """
    if not sources:
        raise ConfigError("nothing to copy: no source datasets")
    first = sources[0][0]
    for reader, _ in sources[1:]:
        check_same_env(first, reader)
        check_same_layout(first, reader)
    writer = DatasetWriter(
        out,
        first.fps,
        recorded_features(first),
        str(first.info.get("robot_type", "unknown")),
        mode="overwrite" if overwrite else "create",
    )
    count = 0
    with writer:
        for reader, episodes in sources:
            for episode in episodes:
                writer.start_episode(
                    episode_task(reader, episode), seed=reader.episode_seed(episode)
                )
                for frame in episode_frames(reader, episode):
                    writer.add_frame(frame)
                writer.save_episode()
                count += 1
    env = read_env_metadata(first.root)
    if env:
        write_env_metadata(Path(out), env["id"], env.get("kwargs", {}))
    return count


def check_same_env(a: DatasetReader, b: DatasetReader) -> None:
    """ConfigError unless ``a`` and ``b`` were recorded in the same env (or neither says)."""
    env_a, env_b = read_env_metadata(a.root), read_env_metadata(b.root)
    if env_a != env_b:
        raise ConfigError(
            f"cannot merge: {a.root} was recorded in {_env_text(env_a)}, {b.root} in "
            f"{_env_text(env_b)}; a dataset holds one env"
        )


def _env_text(env: dict[str, Any]) -> str:
    return f"{env['id']} {env.get('kwargs', {})}" if env else "an unknown env"


def check_same_layout(a: DatasetReader, b: DatasetReader) -> None:
    """ConfigError unless ``a`` and ``b`` have the same fps and features."""
    if abs(a.fps - b.fps) > 1e-9:
        raise ConfigError(f"cannot merge: {a.root} is {a.fps:g} fps, {b.root} is {b.fps:g} fps")
    fa, fb = recorded_features(a), recorded_features(b)
    problems = [f"{k!r} only in {a.root}" for k in fa if k not in fb]
    problems += [f"{k!r} only in {b.root}" for k in fb if k not in fa]
    problems += [
        f"{k!r} is {fa[k].dtype} {fa[k].shape} vs {fb[k].dtype} {fb[k].shape}"
        for k in fa
        if k in fb and (fa[k].dtype, fa[k].shape) != (fb[k].dtype, fb[k].shape)
    ]
    if problems:
        raise ConfigError(f"cannot merge: features differ: {'; '.join(problems)}")


def split_episodes(
    num_episodes: int, fraction: float | None = None, episodes: Sequence[int] | None = None
) -> tuple[list[int], list[int]]:
    """``(first, second)`` episode lists: the given ``episodes`` and the rest, or the first
    ``round(fraction * n)`` episodes and the rest."""
    if episodes:
        bad = [e for e in episodes if not 0 <= e < num_episodes]
        if bad:
            raise ConfigError(f"episodes {bad} are out of range [0, {num_episodes})")
        chosen = sorted(set(episodes))
    else:
        if fraction is None or not 0.0 < fraction < 1.0:
            raise ConfigError(f"--fraction must be in (0, 1), got {fraction}")
        chosen = list(range(round(fraction * num_episodes)))
    rest = [e for e in range(num_episodes) if e not in set(chosen)]
    if not chosen or not rest:
        raise ConfigError(
            f"split of {num_episodes} episodes leaves one side empty ({len(chosen)}/{len(rest)})"
        )
    return chosen, rest
