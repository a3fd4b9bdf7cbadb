"""Per-feature normalization from dataset statistics, reusable by every policy.

::

    normalizer = Normalizer(reader.stats, {"observation.state": "min_max", "action": "min_max"})
    batch = normalizer.normalize_batch(batch)          # before the network
    action = normalizer.unnormalize("action", y)       # after it

Modes: ``"min_max"`` maps ``[min, max]`` to ``[-1, 1]`` (a constant entry maps to 0),
``"mean_std"`` to zero mean and unit variance, ``"identity"`` leaves values alone.
Statistics broadcast over the trailing dimensions of a value: vectors use (D,) statistics,
(C, H, W) images use LeRobot's per-channel (C, 1, 1) ones. The statistics are buffers of
this ``torch.nn.Module``, so they move with ``.to(device)`` and are saved in the policy's
``model.safetensors``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch
from torch import nn

from robolearn.core.types import ConfigError

NormMode = Literal["min_max", "mean_std", "identity"]
NORM_MODES: tuple[str, ...] = ("min_max", "mean_std", "identity")
_NEEDS = {"min_max": ("min", "max"), "mean_std": ("mean", "std"), "identity": ()}


class Normalizer(nn.Module):
    """Normalize and unnormalize named features with fixed statistics (see module doc)."""

    def __init__(
        self,
        stats: Mapping[str, Mapping[str, np.ndarray | torch.Tensor]],
        modes: Mapping[str, NormMode],
        eps: float = 1e-8,
        min_scale: Mapping[str, float] | None = None,
    ) -> None:
        """Keep the statistics ``modes`` needs for each key.

        Args:
            stats: per-feature statistics, e.g. ``DatasetReader.stats`` (``stats.json``).
            modes: how to normalize each key; keys left out are not touched.
            eps: smallest half-range / standard deviation divided by.
            min_scale: a larger smallest divisor for some keys (in their units).
        """
        super().__init__()
        self.modes: dict[str, NormMode] = {}
        self.eps = eps
        self._buffers_of: dict[str, tuple[str, str]] = {}
        floors = min_scale or {}
        for key, mode in modes.items():
            self._add(key, mode, stats, max(eps, floors.get(key, eps)))

    @classmethod
    def placeholder(
        cls, shapes: Mapping[str, tuple[int, ...]], modes: Mapping[str, NormMode]
    ) -> Normalizer:
        """A normalizer with statistics of the right shapes, to be filled by
        ``load_state_dict`` (when a saved policy is loaded without its dataset)."""
        stats = {
            key: {name: np.zeros(shape) for name in ("min", "max", "mean", "std")}
            for key, shape in shapes.items()
        }
        return cls(stats, modes)

    def _add(
        self,
        key: str,
        mode: NormMode,
        stats: Mapping[str, Mapping[str, np.ndarray | torch.Tensor]],
        eps: float,
    ) -> None:
        if mode not in NORM_MODES:
            raise ConfigError(f"normalization of {key!r}: mode must be one of {NORM_MODES}")
        self.modes[key] = mode
        if mode == "identity":
            return
        if key not in stats or any(name not in stats[key] for name in _NEEDS[mode]):
            raise ConfigError(f"normalizing {key!r} with {mode} needs its {_NEEDS[mode]} stats")
        names = (_buffer_name(key, "shift"), _buffer_name(key, "scale"))
        shift, scale = _shift_scale(mode, stats[key], eps)
        self.register_buffer(names[0], shift)
        self.register_buffer(names[1], scale)
        self._buffers_of[key] = names

    def normalize(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """``value`` of feature ``key`` normalized (``(value - shift) / scale``)."""
        pair = self._shift_scale(key, value)
        return value if pair is None else (value - pair[0]) / pair[1]

    def unnormalize(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`."""
        pair = self._shift_scale(key, value)
        return value if pair is None else value * pair[1] + pair[0]

    def normalize_batch(self, batch: Mapping[str, object]) -> dict[str, object]:
        """A copy of ``batch`` with every key this normalizer knows normalized."""
        out = dict(batch)
        for key in self.modes:
            value = out.get(key)
            if isinstance(value, torch.Tensor):
                out[key] = self.normalize(key, value)
        return out

    def _shift_scale(
        self, key: str, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        if key not in self.modes:
            raise ConfigError(f"no normalization for {key!r}; known: {list(self.modes)}")
        if key not in self._buffers_of:
            return None
        shift_name, scale_name = self._buffers_of[key]
        shift, scale = getattr(self, shift_name), getattr(self, scale_name)
        return shift.to(value.dtype), scale.to(value.dtype)


def _buffer_name(key: str, what: str) -> str:
    """A buffer name for ``key`` (buffer names may not contain dots)."""
    return f"{re.sub(r'[^0-9A-Za-z_]', '_', key)}__{what}"


def _shift_scale(
    mode: NormMode, stats: Mapping[str, np.ndarray | torch.Tensor], eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(shift, scale)`` float32 tensors with ``normalized = (x - shift) / scale``."""

    def get(name: str) -> torch.Tensor:
        return torch.as_tensor(np.asarray(stats[name], dtype=np.float64))

    if mode == "min_max":
        low, high = get("min"), get("max")
        shift, scale = (high + low) / 2, ((high - low) / 2).clamp_min(eps)
    else:
        shift, scale = get("mean"), get("std").clamp_min(eps)
    return shift.float(), scale.float()
