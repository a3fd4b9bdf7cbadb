"""Chunk executors: hand-computed values, ACT equivalence, continuity, staleness, exhaustion."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from robolearn.core.chunking import (
    ChunkBlend,
    ChunkExecutor,
    LatestChunk,
    TemporalEnsemble,
    make_executor,
)
from robolearn.core.types import CommandError, ConfigError


def col(*values: float) -> np.ndarray:
    """A chunk with one action dimension: (H, 1)."""
    return np.array(values, dtype=np.float64)[:, None]


def run(ex: ChunkExecutor, ticks: range) -> list[float | None]:
    out = []
    for t in ticks:
        a = ex.action(t)
        out.append(None if a is None else float(a[0]))
    return out


EXECUTORS: dict[str, Callable[[], ChunkExecutor]] = {
    "latest": LatestChunk,
    "ensemble": partial(TemporalEnsemble, 0.01),
    "blend": partial(ChunkBlend, 3),
}
every_executor = pytest.mark.parametrize("make", EXECUTORS.values(), ids=EXECUTORS.keys())


# --- LatestChunk -------------------------------------------------------------------------------


def test_latest_indexes_by_tick() -> None:
    ex = LatestChunk()
    assert ex.action(0) is None  # nothing yet
    ex.add(col(0, 1, 2, 3), start_tick=10)
    assert run(ex, range(9, 15)) == [None, 0, 1, 2, 3, None]


def test_latest_replaces_the_chunk() -> None:
    ex = LatestChunk()
    ex.add(col(0, 1, 2, 3), start_tick=0)
    assert run(ex, range(2)) == [0, 1]
    ex.add(col(10, 11, 12, 13), start_tick=2)
    assert run(ex, range(2, 7)) == [10, 11, 12, 13, None]


@every_executor
def test_stale_chunk_starts_at_its_offset(make: Callable[[], ChunkExecutor]) -> None:
    ex = make()
    ex.add(col(0, 1, 2, 3, 4, 5), start_tick=5)  # computed from the observation of tick 5
    assert run(ex, range(8, 12)) == [3, 4, 5, None]  # adopted at tick 8: rows 3, 4, 5


@every_executor
def test_none_when_exhausted_and_after_reset(make: Callable[[], ChunkExecutor]) -> None:
    ex = make()
    ex.add(col(7, 8), start_tick=0)
    assert run(ex, range(3)) == [7, 8, None]
    ex.add(col(1, 2), start_tick=3)
    ex.reset()
    assert ex.action(3) is None


@every_executor
def test_actions_are_copies(make: Callable[[], ChunkExecutor]) -> None:
    ex = make()
    chunk = col(1, 2)
    ex.add(chunk, start_tick=0)
    chunk[:] = 99.0  # the caller reuses its buffer
    a = ex.action(0)
    assert a is not None and a[0] == 1.0
    a[0] = -5.0
    assert ex.action(1) is not None and float(ex.action(1)[0]) == 2.0  # type: ignore[index]


@every_executor
def test_bad_chunks_are_rejected(make: Callable[[], ChunkExecutor]) -> None:
    ex = make()
    with pytest.raises(CommandError, match=r"\(H, A\)"):
        ex.add(np.zeros(4), start_tick=0)
    with pytest.raises(CommandError, match=r"\(H, A\)"):
        ex.add(np.zeros((0, 2)), start_tick=0)
    with pytest.raises(CommandError, match="NaN"):
        ex.add(np.array([[0.0, np.nan]]), start_tick=0)
    ex.add(np.zeros((3, 2)), start_tick=0)
    with pytest.raises(CommandError, match="action size"):
        ex.add(np.zeros((3, 5)), start_tick=1)


def test_executors_satisfy_the_protocol() -> None:
    for make in EXECUTORS.values():
        assert isinstance(make(), ChunkExecutor)


# --- TemporalEnsemble ---------------------------------------------------------------------------


def test_ensemble_hand_computed() -> None:
    ex = TemporalEnsemble(k=0.5)
    ex.add(col(0, 1, 2, 3), start_tick=0)  # covers ticks 0..3
    ex.add(col(10, 11, 12, 13), start_tick=2)  # covers ticks 2..5
    out = run(ex, range(7))
    # tick 2: rows 2 (oldest, weight 1) and 10 (weight e^-0.5): (2 + 10 e^-0.5) / (1 + e^-0.5)
    w = np.exp(-0.5)
    assert out[2] == pytest.approx((2 + 10 * w) / (1 + w)) == pytest.approx(5.020325350385163)
    assert out[3] == pytest.approx((3 + 11 * w) / (1 + w))
    assert out[:2] == [0, 1] and out[4:] == [12, 13, None]


def test_ensemble_weights_the_oldest_most_regardless_of_arrival_order() -> None:
    ex = TemporalEnsemble(k=0.5)
    ex.add(col(10, 11, 12, 13), start_tick=2)  # arrives first but is the newer prediction
    ex.add(col(0, 1, 2, 3), start_tick=0)
    w = np.exp(-0.5)
    assert run(ex, range(2, 3)) == [pytest.approx((2 + 10 * w) / (1 + w))]


def test_ensemble_k_zero_is_the_mean() -> None:
    ex = TemporalEnsemble(k=0.0)
    for start, value in ((0, 1.0), (1, 2.0), (2, 6.0)):
        ex.add(np.full((4, 2), value), start_tick=start)
    np.testing.assert_allclose(np.asarray(ex.action(2)), np.array([3.0, 3.0]))


def act_reference(chunks: np.ndarray, k: float) -> np.ndarray:
    """ACT's imitate_episodes.py temporal aggregation, one chunk queried every tick."""
    steps, horizon, dim = chunks.shape
    all_time_actions = np.zeros((steps, steps + horizon, dim))
    out = np.zeros((steps, dim))
    for t in range(steps):
        all_time_actions[[t], t : t + horizon] = chunks[t]
        actions_for_curr_step = all_time_actions[:, t]
        populated = np.all(actions_for_curr_step != 0, axis=1)
        actions_for_curr_step = actions_for_curr_step[populated]
        exp_weights = np.exp(-k * np.arange(len(actions_for_curr_step)))
        exp_weights = exp_weights / exp_weights.sum()
        out[t] = (actions_for_curr_step * exp_weights[:, None]).sum(axis=0)
    return out


@pytest.mark.parametrize("k", [0.01, 0.3, -0.2])
def test_ensemble_matches_act(k: float) -> None:
    rng = np.random.default_rng(0)
    chunks = rng.uniform(1.0, 2.0, size=(12, 5, 3))  # nonzero: ACT detects rows by != 0
    ex = TemporalEnsemble(k)
    ours = []
    for t, chunk in enumerate(chunks):
        ex.add(chunk, start_tick=t)
        a = ex.action(t)
        assert a is not None
        ours.append(a)
    np.testing.assert_allclose(np.stack(ours), act_reference(chunks, k), rtol=1e-12)


# --- ChunkBlend -------------------------------------------------------------------------------


def test_blend_hand_computed() -> None:
    ex = ChunkBlend(blend_ticks=3)
    ex.add(col(0, 1, 2, 3, 4, 5, 6, 7), start_tick=0)  # old: value = tick
    assert run(ex, range(2)) == [0, 1]
    ex.add(col(*[20.0] * 8), start_tick=2)  # new: 20 everywhere; switches at tick 2
    # new weight 1/4, 2/4, 3/4, then 1: 0.75·2 + 0.25·20, 0.5·3 + 0.5·20, 0.25·4 + 0.75·20
    assert run(ex, range(2, 7)) == [6.5, 11.5, 16.0, 20.0, 20.0]


def test_blend_mid_blend_arrival_blends_from_the_blend() -> None:
    ex = ChunkBlend(blend_ticks=3)
    ex.add(col(0, 1, 2, 3, 4, 5, 6, 7), start_tick=0)
    assert run(ex, range(2)) == [0, 1]
    ex.add(col(*[20.0] * 8), start_tick=2)
    assert run(ex, range(2, 3)) == [6.5]
    ex.add(col(*[40.0] * 8), start_tick=3)  # switches at tick 3, while 20 is 2/4 blended in
    # tick 3: 0.75·(0.5·3 + 0.5·20) + 0.25·40; tick 4: 0.5·(0.25·4 + 0.75·20) + 0.5·40;
    # tick 5: 0.25·20 + 0.75·40; tick 6: 40
    assert run(ex, range(3, 7)) == [18.625, 28.0, 35.0, 40.0]


def test_blend_from_an_exhausted_chunk_starts_at_the_held_action() -> None:
    ex = ChunkBlend(blend_ticks=3)
    ex.add(col(0, 1), start_tick=0)
    assert run(ex, range(3)) == [0, 1, None]  # the caller holds 1
    ex.add(col(*[20.0] * 4), start_tick=3)
    assert run(ex, range(3, 4)) == [0.75 * 1 + 0.25 * 20]


def test_blend_zero_is_latest_chunk() -> None:
    blend, latest = ChunkBlend(blend_ticks=0), LatestChunk()
    rng = np.random.default_rng(1)
    outs: list[list[float | None]] = [[], []]
    for t in range(20):
        if t % 3 == 0:
            chunk = rng.normal(size=(5, 1))
            blend.add(chunk, start_tick=t - 1)
            latest.add(chunk, start_tick=t - 1)
        outs[0] += run(blend, range(t, t + 1))
        outs[1] += run(latest, range(t, t + 1))
    assert outs[0] == outs[1]


def test_blend_bounds_the_jump_at_a_chunk_boundary() -> None:
    old, new = col(*range(10)), col(*[t + 10.0 for t in range(10)])  # slope 1, offset 10
    steps = {}
    for name, ex in (("latest", LatestChunk()), ("blend", ChunkBlend(blend_ticks=4))):
        ex.add(old, start_tick=0)
        out = run(ex, range(4))
        ex.add(new, start_tick=0)
        out += run(ex, range(4, 10))
        steps[name] = np.abs(np.diff(np.array(out, dtype=float))).max()
    assert steps["latest"] == 11.0  # slope + the whole offset at once
    assert steps["blend"] == pytest.approx(1.0 + 10.0 / 5)  # slope + a fifth of the offset


# --- construction -----------------------------------------------------------------------------


def test_make_executor() -> None:
    assert isinstance(make_executor("latest"), LatestChunk)
    ensemble = make_executor("ensemble", ensemble_k=0.2)
    assert isinstance(ensemble, TemporalEnsemble) and ensemble.k == 0.2
    blend = make_executor("blend", blend_ticks=6)
    assert isinstance(blend, ChunkBlend) and blend.blend_ticks == 6
    with pytest.raises(ConfigError, match="latest, ensemble or blend"):
        make_executor("average")  # type: ignore[arg-type]


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ConfigError):
        ChunkBlend(blend_ticks=-1)
    with pytest.raises(ConfigError):
        TemporalEnsemble(k=float("nan"))
