"""Per-feature statistics in LeRobot's ``stats.json`` format, per episode and aggregated.

Each feature gets ``min``, ``max``, ``mean``, ``std``, ``count`` and the quantiles ``q01``,
``q10``, ``q50``, ``q90``, ``q99`` (as LeRobot v3 writes them). Vectors get one value per
entry, shape ``feature.shape`` (``count`` is ``(1,)``: the number of frames). RGB cameras get
per-channel values of shape (3, 1, 1) on pixel values scaled to [0, 1]; depth cameras
(1, 1, 1) in metres. Camera statistics come from per-channel histograms of every frame
(frames wider than 300 px are subsampled, as LeRobot does), so their quantiles are exact for
the sampled pixels. Aggregating episodes follows LeRobot: exact min/max/mean/std, and
quantiles averaged with frame-count weights (an approximation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS: tuple[str, ...] = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
STAT_KEYS: tuple[str, ...] = ("min", "max", "mean", "std", "count", *QUANTILE_KEYS)

Stats = dict[str, np.ndarray]
"""One feature's statistics: stat name → array."""


def numeric_stats(values: np.ndarray) -> Stats:
    """Statistics over the frames of ``values`` (T, *shape), per entry → arrays of ``shape``.

    ``min``/``max`` keep an integer dtype for integer data (as LeRobot's do); the others are
    float64. Booleans are treated as 0/1.
    """
    if values.dtype == np.bool_:
        values = values.astype(np.float64)
    as_float = values.astype(np.float64)
    quantiles = np.quantile(as_float, QUANTILES, axis=0)  # (5, *shape)
    stats: Stats = {
        "min": values.min(axis=0),
        "max": values.max(axis=0),
        "mean": as_float.mean(axis=0),
        "std": as_float.std(axis=0),
        "count": np.array([values.shape[0]], dtype=np.int64),
    }
    stats.update({k: quantiles[i] for i, k in enumerate(QUANTILE_KEYS)})
    return stats


class HistogramStats:
    """Running per-channel histograms of integer-valued images; statistics on demand.

    ``add`` takes one (H, W, C) frame of codes in ``[0, num_bins)``; :meth:`stats` turns the
    codes into values with ``value = code * scale`` and returns (C, 1, 1) arrays.
    """

    def __init__(self, channels: int, num_bins: int, scale: float) -> None:
        """Histograms of ``channels`` channels with ``num_bins`` integer codes each."""
        self.channels = channels
        self.num_bins = num_bins
        self.scale = scale
        self.frames = 0
        self._hist = np.zeros((channels, num_bins), dtype=np.int64)  # (C, bins)

    def add(self, frame: np.ndarray) -> None:
        """Count the (subsampled) pixels of one (H, W, C) frame of integer codes."""
        step = subsample_step(frame.shape[0], frame.shape[1])
        pixels = frame[::step, ::step].reshape(-1, self.channels)  # (P, C)
        offsets = np.arange(self.channels, dtype=np.int64) * self.num_bins
        codes = (pixels.astype(np.int64) + offsets).ravel()
        counts = np.bincount(codes, minlength=self.channels * self.num_bins)
        self._hist += counts.reshape(self.channels, self.num_bins)
        self.frames += 1

    def stats(self) -> Stats:
        """The statistics of everything added so far, each (C, 1, 1) (``count``: frames)."""
        per_channel = [_histogram_stats(h, self.scale) for h in self._hist]
        out: Stats = {
            k: np.array([s[k] for s in per_channel], dtype=np.float64).reshape(-1, 1, 1)
            for k in STAT_KEYS
            if k != "count"
        }
        out["count"] = np.array([self.frames], dtype=np.int64)
        return {k: out[k] for k in STAT_KEYS}


def subsample_step(height: int, width: int) -> int:
    """Pixel stride for camera stats: 1 below 300 px, else about 150 px across (LeRobot's)."""
    longest = max(height, width)
    return 1 if longest < 300 else max(1, longest // 150)


def _histogram_stats(hist: np.ndarray, scale: float) -> dict[str, float]:
    """Statistics of the values ``code * scale`` counted in ``hist`` (bins)."""
    total = int(hist.sum())
    if total == 0:
        return dict.fromkeys(STAT_KEYS, 0.0)
    codes = np.flatnonzero(hist)
    weights = hist[codes].astype(np.float64)
    values = codes.astype(np.float64) * scale
    mean = float(np.dot(weights, values) / total)
    var = float(np.dot(weights, (values - mean) ** 2) / total)
    out = {"min": values[0], "max": values[-1], "mean": mean, "std": var**0.5}
    cumulative = np.cumsum(weights)  # sorted values' positions: value i covers up to cum[i]
    for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
        out[key] = _sorted_quantile(values, cumulative, q * (total - 1))
    return out


def _sorted_quantile(values: np.ndarray, cumulative: np.ndarray, position: float) -> float:
    """Linear-interpolated value at 0-based ``position`` of the sorted sample (np.quantile)."""
    low, frac = int(np.floor(position)), position - np.floor(position)
    i_low = int(np.searchsorted(cumulative, low, side="right"))
    i_high = min(int(np.searchsorted(cumulative, low + 1, side="right")), len(values) - 1)
    v_low, v_high = values[i_low], values[i_high]
    return float(v_low + frac * (v_high - v_low))


def aggregate(stats_list: Sequence[Stats]) -> Stats:
    """Combine one feature's statistics over several episodes (LeRobot's rule)."""
    counts = np.array([int(np.asarray(s["count"]).reshape(-1)[0]) for s in stats_list])
    total = int(counts.sum())
    means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in stats_list])
    stds = np.stack([np.asarray(s["std"], dtype=np.float64) for s in stats_list])
    w = (counts / total).reshape(-1, *([1] * (means.ndim - 1)))  # (E, 1, ...)
    mean = (w * means).sum(axis=0)
    var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
    out: Stats = {
        "min": np.min(np.stack([np.asarray(s["min"]) for s in stats_list]), axis=0),
        "max": np.max(np.stack([np.asarray(s["max"]) for s in stats_list]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([total], dtype=np.int64),
    }
    for key in QUANTILE_KEYS:
        if all(key in s for s in stats_list):
            values = np.stack([np.asarray(s[key], dtype=np.float64) for s in stats_list])
            out[key] = (w * values).sum(axis=0)
    return out


def aggregate_all(episodes: Iterable[Mapping[str, Stats]]) -> dict[str, Stats]:
    """Aggregate per-episode ``{feature: stats}`` dicts into dataset statistics."""
    by_feature: dict[str, list[Stats]] = {}
    for episode in episodes:
        for key, stats in episode.items():
            by_feature.setdefault(key, []).append(stats)
    return {key: aggregate(items) for key, items in by_feature.items()}


def to_json(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, list]]:
    """Statistics as JSON-ready nested lists (``stats.json``)."""
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def from_json(raw: Mapping[str, Mapping[str, object]]) -> dict[str, Stats]:
    """Parse ``stats.json`` content into arrays (at least 1-D, like LeRobot's loader)."""
    return {
        key: {name: np.atleast_1d(np.asarray(value)) for name, value in entry.items()}
        for key, entry in raw.items()
    }
