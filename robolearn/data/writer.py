"""Record episodes into a LeRobotDataset v3.0, crash-safely.

::

    features = {
        "observation.state": Feature("float32", (9,), names=[...]),
        "observation.images.front": Feature("video", (96, 128, 3)),
        "observation.depth.front": Feature("depth", (96, 128, 1)),
        "action": Feature("float32", (4,)),
    }
    with DatasetWriter("data/pick", fps=20, features=features, robot_type="panda") as writer:
        writer.start_episode("pick up the cube")
        for obs, action in steps:
            writer.add_frame({...})     # one control tick: every feature key
        writer.save_episode()           # or writer.discard_episode() to re-record

Camera frames are encoded on one background thread per camera while recording, so
``save_episode`` only waits for the frames still queued and the encoder flush. Every
episode gets its own data, video and depth files. The write order that makes a crash lose at
most the episode in progress is described in :mod:`robolearn.data.format`.

Modes: ``"create"`` refuses an existing non-empty folder; ``"resume"`` appends to an
existing dataset (same fps and features), first tidying what a crash left behind (see
:func:`repair_dataset`); ``"overwrite"`` deletes an existing dataset first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import av
import av.codec
import numpy as np
import pyarrow as pa

from robolearn.core import stats as stats_mod
from robolearn.core.types import ConfigError
from robolearn.data.encoders import DEPTH_CODEC, DEPTH_PIX_FMT, CameraEncoder, default_video_options
from robolearn.data.features import (
    DEFAULT_FEATURES,
    DEPTH,
    DEPTH_UNIT_INFO_KEY,
    DEPTH_UNIT_M,
    STRING,
    VIDEO,
    Feature,
    arrow_type,
    check_features,
    check_value,
)
from robolearn.data.format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILES_SIZE_IN_MB,
    DATA_PATH,
    DEPTH_PATH,
    EPISODES_DIR,
    EPISODES_PATH,
    EPISODES_PER_META_FILE,
    EXTENSION_KEY,
    INFO_PATH,
    STAGING_DIR,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_FILES_SIZE_IN_MB,
    VIDEO_PATH,
    atomic_write_json,
    atomic_write_parquet,
    move_into_place,
    next_file,
    write_parquet,
)
from robolearn.data.meta import DatasetMeta, load_meta
from robolearn.data.video import check_video_encoder

__all__ = ["DatasetWriter", "Feature", "WriteMode", "repair_dataset"]

log = logging.getLogger(__name__)

WriteMode = Literal["create", "resume", "overwrite"]
FileIndex = tuple[int, int]
"""(chunk_index, file_index)."""


@dataclass
class _Episode:
    """The episode being recorded."""

    index: int
    task: str
    staging: Path
    encoders: dict[str, CameraEncoder]
    columns: dict[str, list[Any]]
    seed: int | None = None
    num_frames: int = 0
    moved: list[Path] = field(default_factory=list)


class DatasetWriter:
    """Write episodes to a LeRobotDataset v3.0 folder; see the module docstring."""

    def __init__(
        self,
        root: str | Path,
        fps: float,
        features: dict[str, Feature],
        robot_type: str = "unknown",
        *,
        mode: WriteMode = "create",
        video_codec: str = "libx264",
        video_options: dict[str, str] | None = None,
    ) -> None:
        """Create (or resume, or overwrite) the dataset at ``root``.

        Args:
            root: the dataset folder.
            fps: frames per second of the recording (LeRobot expects a whole number).
            features: the recorded features by LeRobot key, without the standard columns
                (``timestamp``, ``frame_index``, ``episode_index``, ``index``,
                ``task_index``), which the writer adds.
            robot_type: stored in ``info.json``.
            mode: ``"create"`` (the folder must not exist or be empty), ``"resume"``
                (append to the dataset there) or ``"overwrite"`` (delete it first).
            video_codec: PyAV encoder for RGB cameras, e.g. ``libx264``, ``libsvtav1``.
            video_options: encoder options; default: a key frame every 2 frames and a
                moderate quality (see :data:`robolearn.data.encoders.DEFAULT_VIDEO_OPTIONS`).
        """
        if not fps > 0:
            raise ConfigError(f"fps must be positive, got {fps}")
        if mode not in ("create", "resume", "overwrite"):
            raise ConfigError(f"mode must be 'create', 'resume' or 'overwrite', got {mode!r}")
        self.root = Path(root)
        self.fps = float(fps)
        self.features = check_features(features)
        self.robot_type = robot_type
        self.video_codec = video_codec
        self.video_options = (
            dict(video_options) if video_options is not None else default_video_options(video_codec)
        )
        self._camera_keys = [k for k, f in self.features.items() if f.is_visual]
        self._column_keys = [k for k, f in self.features.items() if not f.is_visual]
        self._episode: _Episode | None = None
        self._closed = False
        if any(f.dtype == VIDEO for f in self.features.values()):
            check_video_encoder(video_codec)
        if mode == "resume":
            self._resume()
        else:
            self._create(overwrite=mode == "overwrite")

    # ------------------------------------------------------------------ public API
    @property
    def num_episodes(self) -> int:
        """Episodes saved so far (the one in progress not counted)."""
        return self._num_episodes

    @property
    def num_frames(self) -> int:
        """Frames saved so far."""
        return self._num_frames

    @property
    def encoder_backlog(self) -> int:
        """Most frames any camera has queued but not yet encoded (0 when idle).

        ``save_episode`` waits for this backlog, so a backlog that keeps growing while
        recording means the encoders are slower than real time (lighter ``video_options``,
        a faster codec or smaller frames help).
        """
        if self._episode is None:
            return 0
        return max((e.backlog for e in self._episode.encoders.values()), default=0)

    @property
    def recording(self) -> bool:
        """Whether an episode is in progress."""
        return self._episode is not None

    def start_episode(self, task: str, seed: int | None = None) -> None:
        """Begin a new episode of ``task`` (a natural-language instruction).

        ``seed``: the env reset seed of the episode, stored in its metadata row (column
        ``seed``) so that ``robolearn replay`` can reset the same initial state.
        """
        self._check_open()
        if self._episode is not None:
            raise ConfigError(
                "an episode is in progress: save_episode() or discard_episode() first"
            )
        if not isinstance(task, str) or not task:
            raise ConfigError(f"task must be a non-empty string, got {task!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ConfigError(f"seed must be an integer or None, got {seed!r}")
        index = self._num_episodes
        staging = self.root / STAGING_DIR / f"episode-{index:06d}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        encoders: dict[str, CameraEncoder] = {}
        try:
            for key in self._camera_keys:
                encoders[key] = self._start_encoder(key, staging)
        except BaseException:
            for encoder in encoders.values():
                encoder.abort()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        columns: dict[str, list[Any]] = {k: [] for k in self._column_keys}
        self._episode = _Episode(
            index, task, staging, encoders, columns, None if seed is None else int(seed)
        )

    def add_frame(self, frame: dict[str, Any]) -> None:
        """Add one control tick: a value for every feature key (checked, then stored).

        Raises ConfigError naming the key whose value is missing, unexpected or of the
        wrong shape/dtype; nothing of the frame is kept then.
        """
        episode = self._require_episode()
        missing = [k for k in self.features if k not in frame]
        extra = [k for k in frame if k not in self.features]
        if missing or extra:
            raise ConfigError(
                f"frame keys disagree with the features: missing {missing}, extra {extra}"
            )
        values = {k: check_value(k, f, frame[k]) for k, f in self.features.items()}
        for key in self._camera_keys:
            episode.encoders[key].submit(values[key])
        for key in self._column_keys:
            episode.columns[key].append(values[key])
        episode.num_frames += 1

    def save_episode(self) -> int:
        """Commit the episode in progress (crash-safe) and return its index."""
        episode = self._require_episode()
        if episode.num_frames == 0:
            raise ConfigError("the episode has no frames: add_frame() first, or discard_episode()")
        try:
            row = self._stage_and_place(episode)
            self._commit(row)  # the episode is saved once this returns
        except Exception:
            self._drop(episode)
            raise
        self._after_commit(episode, row)
        return episode.index

    def discard_episode(self) -> None:
        """Drop the episode in progress (e.g. to re-record it)."""
        episode = self._require_episode()
        self._drop(episode)

    def close(self) -> None:
        """Finish: an episode still in progress is discarded. Idempotent."""
        if self._closed:
            return
        if self._episode is not None:
            log.warning(
                "closing %s with episode %d unsaved: discarded", self.root, self._episode.index
            )
            self._drop(self._episode)
        _remove_empty_dir(self.root / STAGING_DIR)
        self._closed = True

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ opening
    def _create(self, overwrite: bool) -> None:
        _prepare_empty_root(self.root, overwrite)
        self._info = _new_info(self.fps, self.features, self.robot_type, self.video_codec)
        self._tasks: list[str] = []
        self._num_episodes = 0
        self._num_frames = 0
        self._stats: dict[str, stats_mod.Stats] = {}
        self._next: dict[str, FileIndex] = {s: (0, 0) for s in self._streams()}
        self._meta_file: FileIndex = (0, 0)
        self._meta_rows: list[dict[str, Any]] = []
        atomic_write_json(self.root / INFO_PATH, self._info)

    def _resume(self) -> None:
        if not (self.root / INFO_PATH).is_file():
            raise ConfigError(
                f"cannot resume: {self.root} holds no dataset (no {INFO_PATH}); use mode='create'"
            )
        meta = load_meta(self.root)
        _check_compatible(meta, self.fps, self.features)
        repair_dataset(self.root, meta)
        self._info = meta.info
        self._tasks = list(meta.tasks)
        self._num_episodes = len(meta.episodes)
        self._num_frames = meta.num_frames
        self._stats = meta.stats
        self._next = {s: self._next_after(meta, s) for s in self._streams()}
        self._meta_file = _next_meta_file(meta)
        self._meta_rows = []

    def _streams(self) -> list[str]:
        """Keys of the per-episode files: ``data`` and every camera."""
        return ["data", *self._camera_keys]

    def _next_after(self, meta: DatasetMeta, stream: str) -> FileIndex:
        if not meta.episodes:
            return (0, 0)
        last = meta.episodes[-1]
        prefix = "data" if stream == "data" else f"{_media_prefix(self.features[stream])}/{stream}"
        chunk, file = int(last[f"{prefix}/chunk_index"]), int(last[f"{prefix}/file_index"])
        return next_file(chunk, file, meta.chunks_size)

    # ------------------------------------------------------------------ saving
    def _start_encoder(self, key: str, staging: Path) -> CameraEncoder:
        feature = self.features[key]
        suffix = ".mkv" if feature.dtype == DEPTH else ".mp4"
        path = staging / f"{key}{suffix}"
        return CameraEncoder(key, feature, path, self.fps, self.video_codec, self.video_options)

    def _stage_and_place(self, episode: _Episode) -> dict[str, Any]:
        """Finish the episode's files, move them to their final names; return its row."""
        camera_stats = {k: e.finish() for k, e in episode.encoders.items()}
        task_index, tasks = self._task_index(episode.task)
        table = self._frame_table(episode, task_index)
        staged_data = episode.staging / "data.parquet"
        write_parquet(staged_data, table)
        episode_stats = self._episode_stats(table, camera_stats)
        for stream, staged in [("data", staged_data), *self._staged_media(episode)]:
            destination = self._destination(stream)
            move_into_place(staged, destination)
            episode.moved.append(destination)
        if len(tasks) > len(self._tasks):
            atomic_write_parquet(self.root / TASKS_PATH, _tasks_table(tasks))
            self._tasks = tasks
        return self._episode_row(episode, episode_stats)

    def _staged_media(self, episode: _Episode) -> list[tuple[str, Path]]:
        return [(key, encoder.path) for key, encoder in episode.encoders.items()]

    def _destination(self, stream: str) -> Path:
        """Where the next file of ``stream`` goes (the templates of ``info.json``)."""
        chunk, file = self._next[stream]
        if stream == "data":
            template = str(self._info["data_path"])
        elif self.features[stream].dtype == DEPTH:
            template = str(self._info.get(EXTENSION_KEY, {}).get("depth_path", DEPTH_PATH))
        else:
            template = str(self._info.get("video_path") or VIDEO_PATH)
        rel = template.format(
            video_key=stream, depth_key=stream, chunk_index=chunk, file_index=file
        )
        return self.root / rel

    def _task_index(self, task: str) -> tuple[int, list[str]]:
        if task in self._tasks:
            return self._tasks.index(task), self._tasks
        return len(self._tasks), [*self._tasks, task]

    def _frame_table(self, episode: _Episode, task_index: int) -> pa.Table:
        n = episode.num_frames
        frame_index = np.arange(n, dtype=np.int64)
        arrays = {k: _to_arrow(episode.columns[k], self.features[k]) for k in self._column_keys}
        arrays["timestamp"] = pa.array((frame_index / self.fps).astype(np.float32))
        arrays["frame_index"] = pa.array(frame_index)
        arrays["episode_index"] = pa.array(np.full(n, episode.index, dtype=np.int64))
        arrays["index"] = pa.array(self._num_frames + frame_index)
        arrays["task_index"] = pa.array(np.full(n, task_index, dtype=np.int64))
        return pa.table(arrays)

    def _episode_stats(
        self, table: pa.Table, camera_stats: dict[str, stats_mod.Stats]
    ) -> dict[str, stats_mod.Stats]:
        out: dict[str, stats_mod.Stats] = {}
        for key in self._info["features"]:
            if key in camera_stats:
                out[key] = camera_stats[key]
            elif self._feature(key).dtype != STRING:
                out[key] = stats_mod.numeric_stats(_column_values(table, key, self._feature(key)))
        for key, value in camera_stats.items():  # depth cameras (not in info features)
            out.setdefault(key, value)
        return out

    def _feature(self, key: str) -> Feature:
        return self.features.get(key) or DEFAULT_FEATURES[key]

    def _episode_row(
        self, episode: _Episode, episode_stats: dict[str, stats_mod.Stats]
    ) -> dict[str, Any]:
        n = episode.num_frames
        data_chunk, data_file = self._next["data"]
        row: dict[str, Any] = {
            "episode_index": episode.index,
            "tasks": [episode.task],
            "length": n,
            "data/chunk_index": data_chunk,
            "data/file_index": data_file,
            "dataset_from_index": self._num_frames,
            "dataset_to_index": self._num_frames + n,
        }
        if episode.seed is not None:
            row["seed"] = episode.seed
        for key in self._camera_keys:
            prefix = f"{_media_prefix(self.features[key])}/{key}"
            chunk, file = self._next[key]
            row.update(
                {
                    f"{prefix}/chunk_index": chunk,
                    f"{prefix}/file_index": file,
                    f"{prefix}/from_timestamp": 0.0,
                    f"{prefix}/to_timestamp": n / self.fps,
                }
            )
        for key, feature_stats in episode_stats.items():
            for name in stats_mod.STAT_KEYS:
                row[f"stats/{key}/{name}"] = np.asarray(feature_stats[name]).tolist()
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = self._meta_file
        return row

    def _commit(self, row: dict[str, Any]) -> None:
        """Write the episode's metadata row: the commit point."""
        chunk, file = self._meta_file
        path = self.root / EPISODES_PATH.format(chunk_index=chunk, file_index=file)
        atomic_write_parquet(path, _rows_table([*self._meta_rows, row]))
        self._meta_rows.append(row)

    def _after_commit(self, episode: _Episode, row: dict[str, Any]) -> None:
        """Update totals, statistics and next file names; rewrite the derived meta files."""
        self._episode = None
        self._num_episodes += 1
        self._num_frames += episode.num_frames
        chunks_size = int(self._info.get("chunks_size", CHUNKS_SIZE))
        for stream in self._streams():
            self._next[stream] = next_file(*self._next[stream], chunks_size)
        if len(self._meta_rows) >= EPISODES_PER_META_FILE:
            self._meta_file, self._meta_rows = next_file(*self._meta_file, chunks_size), []
        self._stats = stats_mod.aggregate_all([self._stats, _row_stats(row)])
        self._info.update(
            total_episodes=self._num_episodes,
            total_frames=self._num_frames,
            total_tasks=len(self._tasks),
            splits={"train": f"0:{self._num_episodes}"},
        )
        atomic_write_json(self.root / STATS_PATH, stats_mod.to_json(self._stats))
        atomic_write_json(self.root / INFO_PATH, self._info)
        shutil.rmtree(episode.staging, ignore_errors=True)

    def _drop(self, episode: _Episode) -> None:
        """Forget ``episode``: stop its encoders, delete its staged and placed files."""
        for encoder in episode.encoders.values():
            encoder.abort()
        for path in episode.moved:
            path.unlink(missing_ok=True)
        shutil.rmtree(episode.staging, ignore_errors=True)
        self._episode = None

    def _require_episode(self) -> _Episode:
        self._check_open()
        if self._episode is None:
            raise ConfigError("no episode in progress: call start_episode(task) first")
        return self._episode

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"the DatasetWriter for {self.root} is closed")


def repair_dataset(root: str | Path, meta: DatasetMeta | None = None) -> list[Path]:
    """Tidy a dataset after a crash; returns the paths removed.

    Deletes the staging folder, half-written ``.*.tmp`` files and data/video/depth files no
    episode refers to, and rewrites ``info.json`` and ``stats.json`` when they lag behind
    the episode metadata. Raises :class:`~robolearn.data.format.DatasetError` when the
    metadata itself is damaged.
    """
    meta = meta if meta is not None else load_meta(root)
    removed = _remove_strays(meta)
    if meta.stale:
        atomic_write_json(meta.root / STATS_PATH, stats_mod.to_json(meta.stats))
        atomic_write_json(meta.root / INFO_PATH, meta.info)
    return removed


def _remove_strays(meta: DatasetMeta) -> list[Path]:
    root = meta.root
    removed: list[Path] = []
    staging = root / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
        removed.append(staging)
    media_keys = meta.keys_of(VIDEO, DEPTH)
    referenced = {
        meta.file_path(key, e) for e in range(len(meta.episodes)) for key in ["data", *media_keys]
    }
    referenced.update(meta.episode_files)
    patterns = ["data/chunk-*/file-*.parquet", "videos/*/chunk-*/file-*.mp4"]
    patterns += ["depth/*/chunk-*/file-*.mkv", f"{EPISODES_DIR}/chunk-*/file-*.parquet"]
    candidates = [p for pattern in patterns for p in root.glob(pattern) if p not in referenced]
    for folder in ("meta", "data", "videos", "depth"):
        candidates += list((root / folder).rglob(".*.tmp"))
    for path in candidates:
        path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        log.warning("removed %d files left by an interrupted recording in %s", len(removed), root)
    return removed


# ---------------------------------------------------------------------- helpers
def _media_prefix(feature: Feature) -> str:
    return "depth" if feature.dtype == DEPTH else "videos"


def _prepare_empty_root(root: Path, overwrite: bool) -> None:
    """Make ``root`` an empty folder; refuse to replace a dataset unless ``overwrite``."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")
    if root.exists() and any(root.iterdir()):
        is_dataset = (root / INFO_PATH).is_file()
        if not overwrite:
            what = "a dataset" if is_dataset else "files"
            raise ConfigError(
                f"{root} already holds {what}; pass --resume (mode='resume') to add episodes "
                "or --overwrite (mode='overwrite') to replace it"
            )
        if not is_dataset:
            raise ConfigError(f"{root} is not empty and holds no dataset; refusing to delete it")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def _check_compatible(meta: DatasetMeta, fps: float, features: dict[str, Feature]) -> None:
    """ConfigError unless the dataset on disk has ``fps`` and the same features."""
    if abs(meta.fps - fps) > 1e-9:
        raise ConfigError(
            f"cannot resume {meta.root}: it was recorded at {meta.fps:g} fps, not {fps:g}"
        )
    stored = {k: f for k, f in meta.features.items() if k not in DEFAULT_FEATURES}
    problems = [f"{k!r} missing on disk" for k in features if k not in stored]
    problems += [f"{k!r} not given" for k in stored if k not in features]
    problems += [
        f"{k!r} is {stored[k].dtype} {stored[k].shape} on disk, {f.dtype} {f.shape} given"
        for k, f in features.items()
        if k in stored and (stored[k].dtype, stored[k].shape) != (f.dtype, f.shape)
    ]
    if problems:
        raise ConfigError(f"cannot resume {meta.root}: features differ: {'; '.join(problems)}")


def _next_meta_file(meta: DatasetMeta) -> FileIndex:
    """A fresh episodes file after the last one (resumed sessions never rewrite old ones)."""
    if not meta.episode_files:
        return (0, 0)
    last = meta.episode_files[-1]
    chunk = int(last.parent.name.removeprefix("chunk-"))
    file = int(last.stem.removeprefix("file-"))
    return next_file(chunk, file, meta.chunks_size)


def _new_info(
    fps: float, features: dict[str, Feature], robot_type: str, codec: str
) -> dict[str, Any]:
    """``info.json`` of an empty dataset."""
    if not float(fps).is_integer():
        log.warning("fps=%g is not a whole number; LeRobot expects integer fps", fps)
    fps_value: float | int = int(fps) if float(fps).is_integer() else fps
    entries: dict[str, Any] = {}
    depth: dict[str, Any] = {}
    for key, feature in features.items():
        entry = feature.to_json()
        if feature.dtype == VIDEO:
            entry["info"] = _video_info(feature, fps, codec)
            entries[key] = entry
        elif feature.dtype == DEPTH:
            entry["info"] = _depth_info()
            depth[key] = entry
        else:
            entries[key] = entry
    entries.update({k: f.to_json() for k, f in DEFAULT_FEATURES.items()})
    has_video = any(f.dtype == VIDEO for f in features.values())
    info: dict[str, Any] = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps_value,
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "features": entries,
    }
    if depth:
        info[EXTENSION_KEY] = {"depth_path": DEPTH_PATH, "depth_features": depth}
    return info


def _video_info(feature: Feature, fps: float, codec: str) -> dict[str, Any]:
    """The ``info`` LeRobot stores for a video feature."""
    return {
        "video.height": feature.shape[0],
        "video.width": feature.shape[1],
        "video.codec": av.codec.Codec(codec, "w").canonical_name,
        "video.pix_fmt": "yuv420p",
        "video.is_depth_map": False,
        "video.fps": round(fps),
        "video.channels": 3,
        "has_audio": False,
    }


def _depth_info() -> dict[str, Any]:
    return {
        "depth.codec": DEPTH_CODEC,
        "depth.pix_fmt": DEPTH_PIX_FMT,
        "depth.container": "matroska",
        DEPTH_UNIT_INFO_KEY: DEPTH_UNIT_M,
    }


def _tasks_table(tasks: list[str]) -> pa.Table:
    """``meta/tasks.parquet``: task_index by task, the task being the pandas index."""
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), pa.int64()),
            "task": pa.array(tasks, pa.string()),
        }
    )
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "robolearn", "version": "1"},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _to_arrow(values: list[Any], feature: Feature) -> pa.Array:
    """One episode's values of a column as the arrow array :func:`arrow_type` describes."""
    target = arrow_type(feature)
    if feature.dtype == STRING:
        return pa.array(values, type=target)
    stacked = np.stack(values)  # (T, *shape)
    array: pa.Array = pa.array(stacked.reshape(-1))
    if feature.shape == (1,):
        return array
    if len(feature.shape) == 1:
        return pa.FixedSizeListArray.from_arrays(array, feature.shape[0])
    for size in reversed(feature.shape):
        offsets = np.arange(len(array) // size + 1, dtype=np.int32) * size
        array = pa.ListArray.from_arrays(pa.array(offsets), array)
    return array


def _column_values(table: pa.Table, key: str, feature: Feature) -> np.ndarray:
    """A numeric column of a frame table as (T, *shape)."""
    array = table.column(key).combine_chunks()
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    return array.to_numpy(zero_copy_only=False).reshape(table.num_rows, *feature.shape)


def _row_stats(row: dict[str, Any]) -> dict[str, stats_mod.Stats]:
    out: dict[str, stats_mod.Stats] = {}
    for name, value in row.items():
        if name.startswith("stats/"):
            feature, _, stat = name[len("stats/") :].rpartition("/")
            out.setdefault(feature, {})[stat] = np.asarray(value)
    return out


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Episode rows as a table; a column some rows lack (``seed``) is null in those rows."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return pa.Table.from_pylist([{k: row.get(k) for k in keys} for row in rows])


def _remove_empty_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
