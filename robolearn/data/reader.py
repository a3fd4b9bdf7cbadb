"""Read a LeRobotDataset v3.0 from disk: frame columns, camera frames by timestamp.

::

    reader = DatasetReader("data/pick_cube")
    reader.num_episodes, reader.num_frames, reader.fps, reader.tasks
    ep = reader.episode(0)                      # {"action": (T, 4), "timestamp": (T, 1), ...}
    rgb = reader.frames("observation.images.front", 0, ep["timestamp"][:3, 0])  # (3, H, W, 3)
    item = reader[10]                           # one frame, images decoded, plus "task"

It reads datasets written by :class:`~robolearn.data.writer.DatasetWriter` and by Hugging
Face LeRobot (several episodes per file included). Low-dimensional columns of every episode
are loaded into memory when the reader opens; camera frames are decoded on demand. When all
of a dataset's decoded video frames fit in ``frame_cache_mb`` (per process; e.g. 100 episodes
× 200 frames of one 96×96 camera take 550 MB), each episode is decoded once, sequentially,
and kept: training on small-image datasets then stops paying a seek and a decode per sample.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa

from robolearn.core.stats import Stats
from robolearn.core.types import ConfigError
from robolearn.data.decode import DecoderCache, EpisodeFrames
from robolearn.data.features import (
    DEPTH,
    DEPTH_UNIT_INFO_KEY,
    DEPTH_UNIT_M,
    IMAGE,
    STRING,
    VIDEO,
    Feature,
    mm_to_depth,
)
from robolearn.data.format import EXTENSION_KEY, DatasetError, EpisodeIndexError, read_parquet
from robolearn.data.meta import DatasetMeta, load_meta

MAX_SKIP_FRAMES = 8
"""Decode on (rather than seek) when the next request is at most this many frames ahead."""
PNG_CACHE_EPISODES = 8
"""Episodes of ``image`` features whose encoded frames stay in memory."""
FRAME_CACHE_MB = 1024.0
"""Default budget (MB per process) for keeping decoded episodes; see the module docstring."""


class DatasetReader:
    """A LeRobot v3.0 dataset on disk; see the module docstring."""

    def __init__(
        self, root: str | Path, max_open_videos: int = 64, frame_cache_mb: float = FRAME_CACHE_MB
    ) -> None:
        """Open the dataset at ``root`` and load its low-dimensional columns.

        ``frame_cache_mb``: keep decoded episodes when all video frames of the dataset fit in
        this many MB (per process: each DataLoader worker holds its own); 0 never keeps them.

        Raises :class:`~robolearn.data.format.DatasetError` naming the file when a meta or
        data file is missing, truncated or corrupt, or disagrees with ``info.json``.
        """
        self.root = Path(root)
        self.meta: DatasetMeta = load_meta(self.root)
        self._check_media_files()
        self._columns, self._starts = _load_columns(self.meta)
        self._decoders = DecoderCache(max_open_videos)
        self._png_cache: dict[tuple[str, int], list[bytes]] = {}
        budget = int(frame_cache_mb * 1e6)
        self._episode_frames = EpisodeFrames(budget if self.decoded_bytes() <= budget else 0)

    # ------------------------------------------------------------------ metadata
    @property
    def info(self) -> dict[str, Any]:
        """``info.json`` (totals corrected from the episode rows)."""
        return self.meta.info

    @property
    def fps(self) -> float:
        """Frames per second."""
        return self.meta.fps

    @property
    def features(self) -> dict[str, Feature]:
        """Every feature, standard columns and depth cameras included."""
        return self.meta.features

    @property
    def camera_keys(self) -> list[str]:
        """Keys of the visual features (video, depth, image)."""
        return self.meta.keys_of(VIDEO, DEPTH, IMAGE)

    @property
    def column_keys(self) -> list[str]:
        """Keys of the non-visual features (columns of the data parquet)."""
        return [k for k, f in self.features.items() if not f.is_visual]

    @property
    def num_episodes(self) -> int:
        """Number of episodes."""
        return len(self.meta.episodes)

    @property
    def num_frames(self) -> int:
        """Number of frames over all episodes."""
        return int(self._starts[-1])

    @property
    def tasks(self) -> list[str]:
        """Task strings by task index."""
        return self.meta.tasks

    @property
    def stats(self) -> dict[str, Stats]:
        """Per-feature statistics (``meta/stats.json``)."""
        return self.meta.stats

    def episode_length(self, episode: int) -> int:
        """Frames in ``episode``."""
        self._check_episode(episode)
        return int(self._starts[episode + 1] - self._starts[episode])

    def episode_start(self, episode: int) -> int:
        """Global frame index of the first frame of ``episode``."""
        self._check_episode(episode)
        return int(self._starts[episode])

    def episode_seed(self, episode: int) -> int | None:
        """The env reset seed ``episode`` was recorded with (``seed`` column), or None when
        the dataset does not say (recorded elsewhere, imported, or on hardware)."""
        self._check_episode(episode)
        seed = self.meta.episodes[episode].get("seed")
        return None if seed is None else int(seed)

    def decoded_bytes(self) -> int:
        """Bytes every video and depth frame of the dataset takes decoded."""
        total = 0
        for key in self.meta.keys_of(VIDEO, DEPTH):
            feature = self.features[key]
            per_frame = int(np.prod(feature.shape[:2])) * (2 if feature.dtype == DEPTH else 3)
            total += per_frame * self.num_frames
        return total

    def locate(self, index: int) -> tuple[int, int]:
        """``(episode, frame in episode)`` of global frame ``index``."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} is out of range [0, {self.num_frames})")
        episode = int(np.searchsorted(self._starts, index, side="right") - 1)
        return episode, index - int(self._starts[episode])

    # ------------------------------------------------------------------ data
    def column(self, key: str) -> np.ndarray:
        """All frames of a non-visual feature, in episode order: (num_frames, *shape)."""
        if key not in self._columns:
            raise ConfigError(f"{key!r} is not a data column; columns: {self.column_keys}")
        return self._columns[key]

    def episode(self, episode: int) -> dict[str, np.ndarray]:
        """Every non-visual column of ``episode``: key → (T, *shape)."""
        self._check_episode(episode)
        lo, hi = int(self._starts[episode]), int(self._starts[episode + 1])
        return {key: values[lo:hi] for key, values in self._columns.items()}

    def frames(
        self, camera: str, episode: int, timestamps: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Decode ``camera``'s frames of ``episode`` at ``timestamps`` (s from episode start).

        Returns (N, H, W, 3) uint8 for RGB cameras, (N, H, W, 1) float32 metres for depth.
        """
        feature = self._camera(camera)
        self._check_episode(episode)
        times = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        self._check_times(episode, times)
        if times.size == 0:
            dtype = np.float32 if feature.dtype == DEPTH else np.uint8
            return np.zeros((0, *feature.shape), dtype=dtype)
        if feature.dtype == IMAGE:
            return self._image_frames(camera, episode, times)
        out = self._kept_frames(camera, episode, times)
        if out is None:
            out = np.stack(self._decode(camera, episode, times))  # (N, H, W, 3) u8 or (N, H, W) u16
        if feature.dtype == DEPTH:
            return mm_to_depth(out, self._depth_unit(camera))[..., None]
        return out

    def _kept_frames(self, camera: str, episode: int, times: np.ndarray) -> np.ndarray | None:
        """Frames at ``times`` from the decoded-episode cache (filled on a miss), or None
        when the cache is off or the times are not on the frame grid."""
        if self._episode_frames.budget_bytes == 0:
            return None
        rows = np.rint(times * self.fps).astype(np.int64)
        if np.any(np.abs(rows / self.fps - times) > 0.25 / self.fps):
            return None
        frames = self._episode_frames.get(camera, episode)
        if frames is None:
            every = np.arange(self.episode_length(episode)) / self.fps
            frames = np.stack(self._decode(camera, episode, every))
            self._episode_frames.put(camera, episode, frames)
        return frames[np.clip(rows, 0, len(frames) - 1)]

    def _decode(self, camera: str, episode: int, times: np.ndarray) -> list[np.ndarray]:
        """Decode ``camera``'s frames of ``episode`` at ``times`` (s from episode start)."""
        feature = self.features[camera]
        path = self.meta.file_path(camera, episode)
        video = self._decoders.get(
            path,
            frame_hw=feature.shape[:2],
            pixel_format="gray16le" if feature.dtype == DEPTH else "rgb24",
            tolerance_s=0.25 / self.fps,
            max_skip_s=MAX_SKIP_FRAMES / self.fps,
        )
        try:
            with video.lock:
                return video.read(self.meta.from_timestamp(camera, episode) + times)
        except DatasetError:
            self._decoders.discard(path)
            raise

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Frame ``index``: every column (shape-(1,) ones as scalars), decoded cameras,
        and ``"task"``, under LeRobot's keys."""
        episode, _ = self.locate(int(index))
        item: dict[str, Any] = {}
        for key, values in self._columns.items():
            value = values[index]
            item[key] = value[0] if self.features[key].shape == (1,) else value
        timestamp = float(item["timestamp"])
        for key in self.camera_keys:
            item[key] = self.frames(key, episode, [timestamp])[0]
        item["task"] = self.tasks[int(item["task_index"])]
        return item

    def close(self) -> None:
        """Close the open video decoders and drop decoded episodes (the reader stays usable)."""
        self._decoders.close()
        self._episode_frames.clear()

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"DatasetReader({str(self.root)!r}, episodes={self.num_episodes}, "
            f"frames={self.num_frames}, fps={self.fps:g}, features={list(self.features)})"
        )

    # ------------------------------------------------------------------ helpers
    def _check_episode(self, episode: int) -> None:
        if not 0 <= episode < self.num_episodes:
            raise EpisodeIndexError(
                f"episode {episode} is out of range: {self.root} holds {self.num_episodes} "
                f"episodes (0 to {self.num_episodes - 1})"
            )

    def _camera(self, key: str) -> Feature:
        feature = self.features.get(key)
        if feature is None or not feature.is_visual:
            raise ConfigError(
                f"{key!r} is not a camera of this dataset; cameras: {self.camera_keys}"
            )
        return feature

    def _check_times(self, episode: int, times: np.ndarray) -> None:
        last = (self.episode_length(episode) - 1) / self.fps
        tolerance = 0.25 / self.fps
        bad = times[(times < -tolerance) | (times > last + tolerance) | ~np.isfinite(times)]
        if bad.size:
            raise ConfigError(
                f"timestamps {bad.tolist()} lie outside episode {episode} (0 to {last:.4f} s)"
            )

    def _depth_unit(self, key: str) -> float:
        extension = self.info.get(EXTENSION_KEY, {}).get("depth_features", {}).get(key, {})
        return float(extension.get("info", {}).get(DEPTH_UNIT_INFO_KEY, DEPTH_UNIT_M))

    def _check_media_files(self) -> None:
        """Every video/depth file the episode rows name must exist."""
        keys = self.meta.keys_of(VIDEO, DEPTH)
        seen: set[Path] = set()
        for episode in range(self.num_episodes):
            for key in keys:
                path = self.meta.file_path(key, episode)
                if path not in seen and not path.is_file():
                    raise DatasetError(f"{path} is missing (episode {episode}, {key!r})")
                seen.add(path)

    def _image_frames(self, key: str, episode: int, times: np.ndarray) -> np.ndarray:
        """Frames of a LeRobot ``image`` feature (PNG bytes in the data parquet)."""
        from PIL import Image  # only datasets with ``image`` features need Pillow

        cells = self._png_cells(key, episode)
        out = []
        for t in times:
            with Image.open(io.BytesIO(cells[round(t * self.fps)])) as image:
                out.append(np.asarray(image.convert("RGB")))
        return np.stack(out)  # (N, H, W, 3)

    def _png_cells(self, key: str, episode: int) -> list[bytes]:
        """The encoded images of ``episode`` by frame index (the last few episodes cached)."""
        cached = self._png_cache.get((key, episode))
        if cached is not None:
            return cached
        path = self.meta.file_path("data", episode)
        table = read_parquet(path, columns=[key, "episode_index"])
        mask = table.column("episode_index").to_numpy() == episode
        cells = [c["bytes"] for c, m in zip(table.column(key).to_pylist(), mask, strict=True) if m]
        if len(cells) != self.episode_length(episode):
            raise DatasetError(f"{path}: {key!r} has {len(cells)} images for episode {episode}")
        if len(self._png_cache) >= PNG_CACHE_EPISODES:
            self._png_cache.pop(next(iter(self._png_cache)))
        self._png_cache[(key, episode)] = cells
        return cells


def _load_columns(meta: DatasetMeta) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All non-visual columns in episode order, and episode start offsets (E + 1,)."""
    keys = [k for k, f in meta.features.items() if not f.is_visual]
    per_episode: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    lengths = []
    cache: tuple[Path, dict[str, np.ndarray]] | None = None
    for episode, row in enumerate(meta.episodes):
        path = meta.file_path("data", episode)
        if cache is None or cache[0] != path:
            cache = (path, _read_data_file(path, meta, keys))
        rows = _episode_rows(path, cache[1]["episode_index"], episode, int(row["length"]))
        for key in keys:
            per_episode[key].append(cache[1][key][rows])
        lengths.append(int(row["length"]))
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    columns = {k: _concat(v, meta.features[k]) for k, v in per_episode.items()}
    for values in columns.values():
        values.flags.writeable = False  # episode() hands out views
    return columns, starts


def _concat(parts: list[np.ndarray], feature: Feature) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    dtype = object if feature.dtype == STRING else np.dtype(feature.dtype)
    return np.zeros((0, *feature.shape), dtype=dtype)


def _episode_rows(path: Path, episode_index: np.ndarray, episode: int, length: int) -> slice:
    """The contiguous rows of ``episode`` in a data file; DatasetError when they disagree."""
    where = np.flatnonzero(episode_index.reshape(-1) == episode)
    if where.size != length or (where.size and where[-1] - where[0] + 1 != where.size):
        raise DatasetError(
            f"{path} holds {where.size} rows of episode {episode} but its metadata says {length}"
            + (" (not contiguous)" if where.size == length else "")
        )
    return slice(int(where[0]), int(where[0]) + length) if length else slice(0, 0)


def _read_data_file(path: Path, meta: DatasetMeta, keys: list[str]) -> dict[str, np.ndarray]:
    table = read_parquet(path)
    missing = [k for k in keys if k not in table.column_names]
    if missing:
        raise DatasetError(f"{path} lacks the columns {missing} that meta/info.json lists")
    return {k: _column_to_numpy(path, k, meta.features[k], table.column(k)) for k in keys}


def _column_to_numpy(path: Path, key: str, feature: Feature, column: pa.ChunkedArray) -> np.ndarray:
    """A parquet column as (rows, *feature.shape); DatasetError naming ``path`` on mismatch."""
    array = column.combine_chunks()
    rows = len(array)
    if feature.dtype == STRING:
        return np.array(array.to_pylist(), dtype=object).reshape(rows, 1)
    while (
        pa.types.is_list(array.type)
        or pa.types.is_fixed_size_list(array.type)
        or (pa.types.is_large_list(array.type))
    ):
        array = array.flatten()
    if not (
        pa.types.is_integer(array.type)
        or pa.types.is_floating(array.type)
        or pa.types.is_boolean(array.type)
    ):
        raise DatasetError(
            f"{path}: column {key!r} holds {array.type} but meta/info.json says {feature.dtype}"
        )
    values = array.to_numpy(zero_copy_only=False)
    per_frame = int(np.prod(feature.shape))
    if values.size != rows * per_frame:
        raise DatasetError(
            f"{path}: column {key!r} holds {values.size / max(rows, 1):g} values per frame but "
            f"meta/info.json says shape {feature.shape}"
        )
    return values.astype(np.dtype(feature.dtype), copy=False).reshape(rows, *feature.shape)
