"""Chunk executors: action chunks (H, A) arriving at irregular ticks → one action per tick.

A chunk is indexed by control ticks: its row ``i`` is the action for tick ``start_tick + i``,
where ``start_tick`` is the tick of the observation it was computed from. A chunk computed from
the observation of tick 5 and first used at tick 8 therefore starts at its row 3 (the rows for
ticks 5–7 are in the past); :class:`robolearn.control.inference.AsyncInference` reports that
offset as the chunk's ``staleness_ticks``.

Three strategies share the :class:`ChunkExecutor` protocol (``add``, ``action``, ``reset``):

* :class:`LatestChunk` — follow the newest chunk; jumps at chunk boundaries;
* :class:`TemporalEnsemble` — ACT's temporal ensembling: average every chunk that covers the
  tick with exponential weights (the oldest prediction weighs most);
* :class:`ChunkBlend` — for diffusion / flow-matching chunks: crossfade linearly from the
  previous trajectory to the new chunk over ``blend_ticks`` ticks, then follow the new chunk.

``action(tick)`` returns ``None`` when no chunk covers the tick; the caller then holds its last
command. Ticks passed to ``action`` must not decrease (expired chunks are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from robolearn.core.types import CommandError, ConfigError, FloatArray


@runtime_checkable
class ChunkExecutor(Protocol):
    """Receives action chunks and yields the action for each control tick."""

    def add(self, actions: ArrayLike, start_tick: int) -> None:
        """Take a chunk ``actions`` (H, A) whose row 0 is the action for ``start_tick``."""
        ...

    def action(self, tick: int) -> FloatArray | None:
        """The action (A,) for ``tick``, or ``None`` if no chunk covers it (caller holds)."""
        ...

    def reset(self) -> None:
        """Forget every chunk (start of an episode)."""
        ...


@dataclass(frozen=True)
class _Timed:
    """One chunk placed on the tick axis."""

    actions: FloatArray  # (H, A)
    start_tick: int

    @property
    def end_tick(self) -> int:
        """First tick after the chunk."""
        return self.start_tick + len(self.actions)

    def covers(self, tick: int) -> bool:
        """Whether the chunk has a row for ``tick``."""
        return self.start_tick <= tick < self.end_tick

    def at(self, tick: int) -> FloatArray:
        """Row for ``tick``, clamped to the first/last row outside the chunk."""
        i = min(max(tick - self.start_tick, 0), len(self.actions) - 1)
        return self.actions[i]  # (A,)


def _as_chunk(actions: ArrayLike, start_tick: int, action_dim: int | None) -> _Timed:
    """Validate a chunk: 2-D, non-empty, finite, and of the executor's action size."""
    arr = np.array(actions, dtype=np.float64)  # copy: the caller may reuse its buffer
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise CommandError(f"a chunk must have shape (H, A) with H >= 1, got {arr.shape}")
    if action_dim is not None and arr.shape[1] != action_dim:
        raise CommandError(f"chunk action size {arr.shape[1]} != earlier chunks' {action_dim}")
    if not np.isfinite(arr).all():
        raise CommandError("a chunk contains NaN or inf")
    return _Timed(arr, int(start_tick))


class LatestChunk:
    """Execute the newest chunk: the action for ``tick`` is its row ``tick − start_tick``."""

    def __init__(self) -> None:
        self._chunk: _Timed | None = None

    def add(self, actions: ArrayLike, start_tick: int) -> None:
        """Replace the current chunk by ``actions`` (H, A) starting at ``start_tick``."""
        dim = None if self._chunk is None else self._chunk.actions.shape[1]
        self._chunk = _as_chunk(actions, start_tick, dim)

    def action(self, tick: int) -> FloatArray | None:
        """Row of the newest chunk for ``tick``; ``None`` once it is exhausted."""
        if self._chunk is None or not self._chunk.covers(tick):
            return None
        return self._chunk.at(tick).copy()  # (A,)

    def reset(self) -> None:
        """Forget the chunk."""
        self._chunk = None


class TemporalEnsemble:
    """ACT's temporal ensembling (Zhao et al., 2023, "Learning Fine-Grained Bimanual Manipulation").

    Every chunk covering ``tick`` contributes its row for ``tick``; the rows are averaged with
    weights ``w_i = exp(−k·i)`` normalised to sum 1, where ``i = 0`` is the *oldest* prediction
    (smallest ``start_tick``; ties by arrival). This is the paper's convention and that of
    its code (``all_time_actions[:, t]`` is ordered by query time, ``exp(-k * arange(n))``), so
    with ``k > 0`` older predictions weigh more and a new chunk enters gradually; a smaller
    ``k`` averages more evenly, ``k < 0`` favours the newest chunks.
    """

    def __init__(self, k: float = 0.01) -> None:
        if not np.isfinite(k):
            raise ConfigError(f"temporal ensemble k must be finite, got {k}")
        self.k = float(k)
        self._chunks: list[_Timed] = []  # oldest first

    def add(self, actions: ArrayLike, start_tick: int) -> None:
        """Add a chunk (H, A) whose row 0 is for ``start_tick``."""
        dim = self._chunks[0].actions.shape[1] if self._chunks else None
        chunk = _as_chunk(actions, start_tick, dim)
        later = [i for i, c in enumerate(self._chunks) if c.start_tick > chunk.start_tick]
        self._chunks.insert(later[0] if later else len(self._chunks), chunk)

    def action(self, tick: int) -> FloatArray | None:
        """Weighted mean (A,) of every covering chunk's row for ``tick``; ``None`` if none."""
        self._chunks = [c for c in self._chunks if c.end_tick > tick]  # drop expired
        rows = [c.at(tick) for c in self._chunks if c.covers(tick)]
        if not rows:
            return None
        weights = np.exp(-self.k * np.arange(len(rows)))  # (n,), index 0 = oldest
        weights /= weights.sum()
        return np.asarray(weights @ np.stack(rows))  # (A,)

    def reset(self) -> None:
        """Forget every chunk."""
        self._chunks = []


class ChunkBlend:
    """Crossfade into each new chunk over ``blend_ticks`` ticks (diffusion / flow policies).

    A new chunk takes over at the first ``action(tick)`` call after ``add`` (its switch tick
    ``s``). At tick ``s + j`` the output is ``(1 − w)·previous + w·new`` with
    ``w = (j + 1) / (blend_ticks + 1)`` for ``j < blend_ticks`` and ``w = 1`` afterwards:
    with ``blend_ticks = 3`` the new chunk weighs 0.25, 0.5, 0.75, then 1. ``previous`` is
    the trajectory being executed before the switch (itself a blend if a chunk arrives
    mid-blend), evaluated at the same tick; an exhausted chunk contributes its last row,
    which is the command the caller was holding. ``blend_ticks = 0`` is :class:`LatestChunk`.
    The output is ``None`` only when the newest chunk does not cover the tick.
    """

    def __init__(self, blend_ticks: int = 4) -> None:
        if blend_ticks < 0:
            raise ConfigError(f"blend_ticks must be >= 0, got {blend_ticks}")
        self.blend_ticks = int(blend_ticks)
        self._layers: list[tuple[_Timed, int]] = []  # (chunk, switch tick), oldest first
        self._pending: _Timed | None = None

    def add(self, actions: ArrayLike, start_tick: int) -> None:
        """Queue a chunk (H, A); the blend into it starts at the next ``action`` call."""
        newest = self._pending or (self._layers[-1][0] if self._layers else None)
        dim = None if newest is None else newest.actions.shape[1]
        self._pending = _as_chunk(actions, start_tick, dim)

    def action(self, tick: int) -> FloatArray | None:
        """Blended action (A,) for ``tick``; ``None`` if the newest chunk does not cover it."""
        if self._pending is not None:
            self._layers.append((self._pending, tick))
            self._pending = None
        if not self._layers or not self._layers[-1][0].covers(tick):
            return None
        self._drop_finished(tick)
        out = self._layers[0][0].at(tick).copy()  # (A,)
        for chunk, switch_tick in self._layers[1:]:
            w = self._weight(tick - switch_tick)
            out = (1.0 - w) * out + w * chunk.at(tick)
        return out

    def reset(self) -> None:
        """Forget every chunk."""
        self._layers = []
        self._pending = None

    def _weight(self, j: int) -> float:
        """Weight of a chunk ``j`` ticks after its switch tick."""
        return min((j + 1) / (self.blend_ticks + 1), 1.0)

    def _drop_finished(self, tick: int) -> None:
        """Drop layers hidden by a later layer whose crossfade is complete at ``tick``."""
        done = [i for i, (_, s) in enumerate(self._layers) if self._weight(tick - s) >= 1.0]
        if done:
            self._layers = self._layers[done[-1] :]


def make_executor(
    strategy: Literal["latest", "ensemble", "blend"],
    ensemble_k: float = 0.01,
    blend_ticks: int = 4,
) -> ChunkExecutor:
    """A chunk executor by name (for configs): ``latest``, ``ensemble`` (ACT) or ``blend``."""
    if strategy == "latest":
        return LatestChunk()
    if strategy == "ensemble":
        return TemporalEnsemble(ensemble_k)
    if strategy == "blend":
        return ChunkBlend(blend_ticks)
    raise ConfigError(f"unknown chunk strategy {strategy!r}; choose latest, ensemble or blend")
