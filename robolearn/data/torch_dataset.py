"""Training samples over a dataset: observation history and action chunk around each frame.

::

    reader = DatasetReader("data/pick")
    data = WindowedDataset(reader, obs_keys=["observation.state"], action_key="action",
                           n_obs_steps=2, horizon=16, image_keys=["observation.images.front"])
    sample = data[0]
    sample["observation.state"]          # (n_obs_steps, D) float32, normalized
    sample["observation.state_is_pad"]   # (n_obs_steps,) bool: True before the episode start
    sample["observation.images.front"]   # (n_obs_steps, 3, H, W) float32 in [0, 1]
    sample["action"]                     # (horizon, A) float32, normalized
    sample["action_is_pad"]              # (horizon,) bool: True past the episode end

Sample ``i`` is centred on frame ``t``: observations at ``t - n_obs_steps + 1 … t``, actions
at ``t + action_offset … t + action_offset + horizon - 1`` (``action_offset=0`` as in ACT;
``1 - n_obs_steps`` as in Diffusion Policy). Steps outside the episode repeat its first or
last frame and are flagged in ``<key>_is_pad``. Depth cameras come as (n_obs_steps, 1, H, W)
metres. The frames of a camera window are decoded in one pass (one seek); decoders stay open
per DataLoader worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from robolearn.core.stats import Stats
from robolearn.core.types import ConfigError
from robolearn.data.reader import DatasetReader
from robolearn.perception.normalize import Normalizer, NormMode


class WindowedDataset(Dataset[dict[str, Any]]):
    """(observation history, action chunk) samples of a :class:`DatasetReader`."""

    def __init__(
        self,
        reader: DatasetReader,
        obs_keys: Sequence[str],
        action_key: str = "action",
        n_obs_steps: int = 2,
        horizon: int = 16,
        image_keys: Sequence[str] = (),
        normalize: bool | Mapping[str, Stats] = True,
        norm_modes: Mapping[str, NormMode] | None = None,
        action_offset: int = 0,
        episodes: Sequence[int] | None = None,
    ) -> None:
        """Serve windows of ``reader``.

        Args:
            reader: the dataset.
            obs_keys: low-dimensional observation features (e.g. ``observation.state``).
            action_key: the action feature.
            n_obs_steps: observation history length (current frame included).
            horizon: action chunk length.
            image_keys: camera features to decode (RGB or depth).
            normalize: ``True`` to normalize with ``reader.stats``, statistics of one's own
                (``stats.json`` format), or ``False``.
            norm_modes: per-key mode; default ``min_max`` for observations and actions,
                ``identity`` for cameras (RGB stays in [0, 1]).
            action_offset: first action step relative to the current frame.
            episodes: restrict samples to these episodes (default: all).
        """
        if n_obs_steps < 1 or horizon < 1:
            raise ConfigError(f"n_obs_steps and horizon must be ≥ 1, got {n_obs_steps}, {horizon}")
        self.reader = reader
        self.obs_keys = list(obs_keys)
        self.action_key = action_key
        self.image_keys = list(image_keys)
        self.n_obs_steps, self.horizon, self.action_offset = n_obs_steps, horizon, action_offset
        self._check_keys()
        self.normalizer = self._make_normalizer(normalize, norm_modes)
        self._indices = _frame_indices(reader, episodes)  # (N,) global frame indices
        self._timestamps = reader.column("timestamp")[:, 0]  # (num_frames,)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """The window around the ``i``-th frame (see the module docstring)."""
        index = int(self._indices[i])
        episode, t = self.reader.locate(index)
        length = self.reader.episode_length(episode)
        start = index - t
        obs_rows, obs_pad = _window(t - self.n_obs_steps + 1, self.n_obs_steps, length)
        act_rows, act_pad = _window(t + self.action_offset, self.horizon, length)
        sample: dict[str, Any] = {}
        for key in self.obs_keys:
            sample[key] = self._column(key, start + obs_rows)  # (n_obs_steps, *shape)
            sample[f"{key}_is_pad"] = torch.from_numpy(obs_pad)
        for key in self.image_keys:
            sample[key] = self._images(key, episode, start + obs_rows)  # (n_obs, C, H, W)
            sample[f"{key}_is_pad"] = torch.from_numpy(obs_pad)
        sample[self.action_key] = self._column(self.action_key, start + act_rows)
        sample[f"{self.action_key}_is_pad"] = torch.from_numpy(act_pad)
        sample["episode_index"] = torch.tensor(episode)
        sample["frame_index"] = torch.tensor(t)
        sample["index"] = torch.tensor(index)
        sample["task"] = self.reader.tasks[int(self.reader.column("task_index")[index, 0])]
        return sample

    def _column(self, key: str, rows: np.ndarray) -> torch.Tensor:
        values = torch.from_numpy(np.asarray(self.reader.column(key)[rows], dtype=np.float32))
        return self._normalize(key, values)

    def _images(self, key: str, episode: int, rows: np.ndarray) -> torch.Tensor:
        frames = self.reader.frames(key, episode, self._timestamps[rows])  # (n, H, W, C)
        images = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()  # (n, C, H, W)
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        return self._normalize(key, images)

    def _normalize(self, key: str, value: torch.Tensor) -> torch.Tensor:
        return value if self.normalizer is None else self.normalizer.normalize(key, value)

    def _check_keys(self) -> None:
        columns, cameras = self.reader.column_keys, self.reader.camera_keys
        for key in [*self.obs_keys, self.action_key]:
            if key not in columns:
                raise ConfigError(f"{key!r} is not a data column of the dataset; have {columns}")
        for key in self.image_keys:
            if key not in cameras:
                raise ConfigError(f"{key!r} is not a camera of the dataset; have {cameras}")

    def _make_normalizer(
        self, normalize: bool | Mapping[str, Stats], norm_modes: Mapping[str, NormMode] | None
    ) -> Normalizer | None:
        if normalize is False:
            return None
        stats = self.reader.stats if normalize is True else normalize
        modes: dict[str, NormMode] = {k: "min_max" for k in [*self.obs_keys, self.action_key]}
        modes.update({k: "identity" for k in self.image_keys})
        modes.update(norm_modes or {})
        return Normalizer(stats, modes)


def _window(first: int, size: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``first … first + size - 1`` clamped to ``[0, length)``, and which were outside."""
    steps = first + np.arange(size)
    pad = (steps < 0) | (steps >= length)
    return np.clip(steps, 0, length - 1), pad


def _frame_indices(reader: DatasetReader, episodes: Sequence[int] | None) -> np.ndarray:
    chosen = range(reader.num_episodes) if episodes is None else episodes
    parts = [
        reader.episode_start(e) + np.arange(reader.episode_length(e), dtype=np.int64)
        for e in chosen
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
