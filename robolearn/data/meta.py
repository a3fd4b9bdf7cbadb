"""Load and check a dataset's metadata: ``info.json``, tasks, episode rows and statistics.

:func:`load_meta` is shared by the reader and by the writer's ``resume`` mode. The episode
rows are the source of truth (see the commit protocol in :mod:`robolearn.data.format`): when
``info.json`` or ``stats.json`` lag behind them — a crash between the commit and the cache
updates — the totals and statistics are recomputed from the rows and ``DatasetMeta.stale``
is set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from robolearn.core import stats as stats_mod
from robolearn.core.types import ConfigError
from robolearn.data.features import DEFAULT_FEATURES, DEPTH, VIDEO, Feature
from robolearn.data.format import (
    CHUNKS_SIZE,
    DEPTH_PATH,
    EPISODES_DIR,
    EXTENSION_KEY,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    DatasetError,
    read_json,
    read_parquet,
)

log = logging.getLogger(__name__)

STATS_PREFIX = "stats/"


@dataclass
class DatasetMeta:
    """Everything a dataset's ``meta/`` folder says, checked for consistency."""

    root: Path
    info: dict[str, Any]
    """``info.json`` with ``total_*`` corrected from the episode rows."""
    features: dict[str, Feature]
    """Every feature: ``info.json`` features (defaults included) then depth features."""
    tasks: list[str]
    """Task strings by ``task_index``."""
    episodes: list[dict[str, Any]]
    """One metadata row per episode (``stats/…`` columns left out), by episode index."""
    episode_stats: list[dict[str, stats_mod.Stats]]
    """Per-episode statistics from the ``stats/…`` columns (empty dicts when absent)."""
    stats: dict[str, stats_mod.Stats]
    """Dataset statistics (``stats.json``, or recomputed when stale or missing)."""
    episode_files: list[Path]
    """The ``meta/episodes`` parquet files, in order."""
    stale: bool
    """Whether ``info.json``/``stats.json`` lagged behind the episode rows."""

    @property
    def fps(self) -> float:
        """Frames per second."""
        return float(self.info["fps"])

    @property
    def chunks_size(self) -> int:
        """Files per chunk folder."""
        return int(self.info.get("chunks_size", CHUNKS_SIZE))

    @property
    def num_frames(self) -> int:
        """Frames in all episodes."""
        return sum(int(row["length"]) for row in self.episodes)

    def keys_of(self, *dtypes: str) -> list[str]:
        """Feature keys whose dtype is one of ``dtypes``."""
        return [k for k, f in self.features.items() if f.dtype in dtypes]

    @property
    def depth_path(self) -> str:
        """The depth file template."""
        return str(self.info.get(EXTENSION_KEY, {}).get("depth_path", DEPTH_PATH))

    def file_path(self, key: str, episode: int) -> Path:
        """The data (``key == "data"``), video or depth file holding ``episode``."""
        row = self.episodes[episode]
        if key == "data":
            template, chunk, file = self.info["data_path"], "data/chunk_index", "data/file_index"
            return self.root / template.format(chunk_index=row[chunk], file_index=row[file])
        prefix = "depth" if self.features[key].dtype == DEPTH else "videos"
        template = self.depth_path if prefix == "depth" else str(self.info["video_path"])
        chunk_index, file_index = (
            row[f"{prefix}/{key}/chunk_index"],
            row[f"{prefix}/{key}/file_index"],
        )
        rel = template.format(
            video_key=key, depth_key=key, chunk_index=chunk_index, file_index=file_index
        )
        return self.root / rel

    def from_timestamp(self, key: str, episode: int) -> float:
        """Where ``episode`` starts in the video/depth file of ``key`` (seconds)."""
        prefix = "depth" if self.features[key].dtype == DEPTH else "videos"
        return float(self.episodes[episode].get(f"{prefix}/{key}/from_timestamp", 0.0) or 0.0)


def load_meta(root: str | Path) -> DatasetMeta:
    """Load and check the metadata of the dataset at ``root``.

    Raises :class:`DatasetError` naming the file when a meta file is missing, truncated,
    corrupt or inconsistent with the others.
    """
    root = Path(root)
    info = _load_info(root)
    features = _parse_features(root, info)
    episode_files = sorted((root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))
    rows, episode_stats = _load_episode_rows(episode_files)
    _check_rows(root, rows, features)
    tasks = _load_tasks(root) if rows or (root / TASKS_PATH).exists() else []
    _check_task_refs(root, rows, tasks)
    stale = _reconcile_totals(root, info, rows, tasks)
    stats, stats_stale = _load_stats(root, episode_stats, stale)
    return DatasetMeta(
        root, info, features, tasks, rows, episode_stats, stats, episode_files, stale or stats_stale
    )


def _load_info(root: Path) -> dict[str, Any]:
    path = root / INFO_PATH
    if not path.is_file() and not root.is_dir():
        raise DatasetError(f"{root} does not exist")
    info = read_json(path)
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise DatasetError(
            f"{path}: codebase_version is {version!r}; only LeRobotDataset v3.x is supported "
            "(convert v2.1 datasets with LeRobot's convert_dataset_v21_to_v30)"
        )
    for key in ("fps", "features", "data_path"):
        if key not in info:
            raise DatasetError(f"{path}: the required key {key!r} is missing")
    if not float(info["fps"]) > 0:
        raise DatasetError(f"{path}: fps must be positive, got {info['fps']!r}")
    return info


def _parse_features(root: Path, info: dict[str, Any]) -> dict[str, Feature]:
    path = root / INFO_PATH
    raw = dict(info["features"])
    depth_raw = info.get(EXTENSION_KEY, {}).get("depth_features", {})
    try:
        features = {k: Feature.from_json(k, v) for k, v in raw.items()}
        features.update({k: Feature.from_json(k, v) for k, v in depth_raw.items()})
    except (ConfigError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: {e}") from e
    missing = [k for k in DEFAULT_FEATURES if k not in features]
    if missing:
        raise DatasetError(f"{path}: the standard features {missing} are missing")
    if features and any(f.dtype == VIDEO for f in features.values()) and not info.get("video_path"):
        raise DatasetError(f"{path}: video features but no 'video_path'")
    return features


def _load_episode_rows(
    files: list[Path],
) -> tuple[list[dict[str, Any]], list[dict[str, stats_mod.Stats]]]:
    rows: list[dict[str, Any]] = []
    episode_stats: list[dict[str, stats_mod.Stats]] = []
    for path in files:
        table = read_parquet(path)
        stat_columns = [c for c in table.column_names if c.startswith(STATS_PREFIX)]
        meta_table = table.drop_columns(stat_columns)
        rows.extend(meta_table.to_pylist())
        episode_stats.extend(_parse_stat_rows(table.select(stat_columns)))
    order = np.argsort([int(r.get("episode_index", -1)) for r in rows], kind="stable")
    return [rows[i] for i in order], [episode_stats[i] for i in order]


def _parse_stat_rows(table: pa.Table) -> list[dict[str, stats_mod.Stats]]:
    """``stats/<feature>/<stat>`` columns → per-row ``{feature: {stat: array}}``."""
    out: list[dict[str, stats_mod.Stats]] = [{} for _ in range(table.num_rows)]
    for name in table.column_names:
        feature, _, stat = name[len(STATS_PREFIX) :].rpartition("/")
        for i, value in enumerate(table.column(name).to_pylist()):
            if value is not None:
                out[i].setdefault(feature, {})[stat] = np.asarray(value)
    return out


REQUIRED_ROW_KEYS = ("episode_index", "length", "data/chunk_index", "data/file_index")


def _check_rows(root: Path, rows: list[dict[str, Any]], features: dict[str, Feature]) -> None:
    where = root / EPISODES_DIR
    for k, row in enumerate(rows):
        missing = [key for key in REQUIRED_ROW_KEYS if row.get(key) is None]
        if missing:
            raise DatasetError(f"{where}: episode row {k} lacks {missing}")
        if int(row["episode_index"]) != k:
            raise DatasetError(
                f"{where}: episode {k} is missing (found episode {row['episode_index']} "
                "in its place); an episodes file was deleted or is incomplete"
            )
        for key, feature in features.items():
            if feature.dtype in (VIDEO, DEPTH):
                prefix = "depth" if feature.dtype == DEPTH else "videos"
                if row.get(f"{prefix}/{key}/chunk_index") is None:
                    raise DatasetError(f"{where}: episode {k} has no {prefix} file for {key!r}")


def _load_tasks(root: Path) -> list[str]:
    """Task strings by task_index; both LeRobot spellings (``task`` / pandas index)."""
    path = root / TASKS_PATH
    table = read_parquet(path)
    column = _task_column(table)
    if column is None or "task_index" not in table.column_names:
        raise DatasetError(f"{path}: expected a 'task_index' column and the task strings")
    tasks = table.column(column).to_pylist()
    indices = table.column("task_index").to_pylist()
    if sorted(indices) != list(range(len(indices))):
        raise DatasetError(f"{path}: task_index values must be 0..{len(indices) - 1}")
    out = [""] * len(tasks)
    for task, index in zip(tasks, indices, strict=True):
        out[int(index)] = str(task)
    return out


def _task_column(table: pa.Table) -> str | None:
    pandas_meta = table.schema.metadata.get(b"pandas") if table.schema.metadata else None
    if pandas_meta:
        for index_column in json.loads(pandas_meta).get("index_columns", []):
            if isinstance(index_column, str) and index_column in table.column_names:
                return index_column
    for name in ("task", "__index_level_0__"):
        if name in table.column_names:
            return name
    return None


def _check_task_refs(root: Path, rows: list[dict[str, Any]], tasks: list[str]) -> None:
    known = set(tasks)
    for row in rows:
        unknown = [t for t in row.get("tasks") or [] if t not in known]
        if unknown:
            raise DatasetError(
                f"{root / TASKS_PATH}: episode {row['episode_index']} uses tasks {unknown} "
                "that the file does not list"
            )


def _reconcile_totals(
    root: Path, info: dict[str, Any], rows: list[dict[str, Any]], tasks: list[str]
) -> bool:
    """Fix ``info`` totals from the rows; True when ``info.json`` lagged behind them."""
    episodes, frames = len(rows), sum(int(r["length"]) for r in rows)
    recorded = int(info.get("total_episodes", 0))
    if recorded > episodes:
        raise DatasetError(
            f"{root / INFO_PATH} lists {recorded} episodes but {root / EPISODES_DIR} holds "
            f"{episodes}: episode metadata is missing or incomplete"
        )
    stale = (
        recorded != episodes
        or int(info.get("total_frames", 0)) != frames
        or int(info.get("total_tasks", 0)) != len(tasks)
    )
    if stale:
        log.warning(
            "%s is behind its episode metadata (%d → %d episodes); using the episode rows "
            "(an interrupted save; opening the writer with mode='resume' rewrites it)",
            root / INFO_PATH,
            recorded,
            episodes,
        )
    info.update(
        total_episodes=episodes,
        total_frames=frames,
        total_tasks=len(tasks),
        splits={"train": f"0:{episodes}"} if episodes else {},
    )
    return stale


def _load_stats(
    root: Path, episode_stats: list[dict[str, stats_mod.Stats]], stale: bool
) -> tuple[dict[str, stats_mod.Stats], bool]:
    """``stats.json``, or the aggregate of the episode statistics when stale or missing."""
    path = root / STATS_PATH
    have_episode_stats = bool(episode_stats) and all(episode_stats)
    if path.is_file() and not (stale and have_episode_stats):
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise DatasetError(f"{path}: expected a JSON object")
        try:
            return stats_mod.from_json(raw), False
        except (ValueError, TypeError, AttributeError) as e:
            raise DatasetError(f"{path}: malformed statistics: {e}") from e
    if have_episode_stats:
        return stats_mod.aggregate_all(episode_stats), True
    return {}, bool(episode_stats)


def env_metadata(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of an env description: ``{"id": ..., "kwargs": ...}`` (tuples as
    lists; ``realtime``, a property of the session, left out)."""
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in env_kwargs.items()}
    kwargs.pop("realtime", None)
    return {"id": env_id, "kwargs": kwargs}


def write_env_metadata(root: Path, env_id: str, env_kwargs: dict[str, Any]) -> None:
    """``meta/robolearn_env.json``: the env a dataset was recorded in, which ``robolearn
    train`` stores with the policy so that ``eval`` and ``deploy`` rebuild it. LeRobot ignores
    the file."""
    path = Path(root) / "meta" / "robolearn_env.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(env_metadata(env_id, env_kwargs), indent=2))


def read_env_metadata(root: Path) -> dict[str, Any]:
    """``meta/robolearn_env.json`` (written by :func:`write_env_metadata`), or ``{}``."""
    path = Path(root) / "meta" / "robolearn_env.json"
    return json.loads(path.read_text()) if path.is_file() else {}
