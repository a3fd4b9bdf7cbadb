"""AsyncInference: round trips on every backend, latest wins, never waiting, errors, cleanup.

No test asserts on wall-clock time: "submit does not wait" is shown with a policy blocked on a
gate file that only the test opens, after ``submit`` has returned. Waits for a chunk poll with a
generous deadline that only guards against hangs.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from _policies import (
    A,
    FailingPolicy,
    GatedPolicy,
    H,
    LinearPolicy,
    TorchProbePolicy,
    WrongShapePolicy,
    broken_factory,
    slow_factory,
)

from robolearn.control.inference import (
    SHM_PREFIX,
    AsyncInference,
    Backend,
    Chunk,
    PolicyFactory,
    PolicyWorkerError,
)
from robolearn.core.chunking import LatestChunk
from robolearn.core.types import ConfigError

SPEC = {"state": ((A,), np.float64)}
BACKENDS: list[Backend] = ["process", "thread", "sync"]
WORKERS: list[Backend] = ["process", "thread"]
HANG_GUARD_S = 30.0


def obs(*values: float) -> dict[str, np.ndarray]:
    return {"state": np.array(values, dtype=np.float64)}


def expected(state: tuple[float, ...], resets: int = 0) -> np.ndarray:
    """What LinearPolicy(scale=2) answers."""
    return np.array(state)[None, :] * 2.0 + np.arange(H)[:, None] + 100.0 * resets  # (H, A)


def make(factory: PolicyFactory, backend: Backend, **kw: object) -> AsyncInference:
    return AsyncInference(factory, SPEC, (H, A), backend=backend, **kw)  # type: ignore[arg-type]


def until(cond: Callable[[], bool]) -> None:
    """Spin until ``cond()``; fail (not hang) if it never holds."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.001)


def next_chunk(inf: AsyncInference, tick: int = 0) -> Chunk:
    found: list[Chunk] = []

    def got() -> bool:
        c = inf.poll(tick)
        found.extend([c] if c is not None else [])
        return bool(found)

    until(got)
    return found[0]


def run_until_error(inf: AsyncInference) -> PolicyWorkerError:
    """Poll until the handle raises; return the error."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        try:
            inf.poll(0)
        except PolicyWorkerError as err:
            return err
        time.sleep(0.001)
    raise AssertionError("the worker's failure never surfaced")


def my_segments() -> set[str]:
    """Shared-memory segments created by this test process."""
    return {p.name for p in Path("/dev/shm").glob(f"{SHM_PREFIX}{os.getpid()}_*")}


@pytest.fixture(autouse=True)
def no_leaked_segments() -> Iterator[None]:
    """Every test must leave /dev/shm as it found it."""
    before = my_segments()
    yield
    assert my_segments() == before


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A file whose existence lets GatedPolicy answer."""
    return tmp_path / "gate"


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip(backend: Backend) -> None:
    with make(LinearPolicy, backend) as inf:
        assert inf.submit(obs(1.0, 2.0, 3.0), t_obs_s=12.5, tick=3)
        chunk = next_chunk(inf, tick=5)
        assert chunk.actions.dtype == np.float32 and chunk.actions.shape == (H, A)
        np.testing.assert_array_equal(chunk.actions, expected((1.0, 2.0, 3.0)))
        assert (chunk.obs_tick, chunk.obs_time_s, chunk.staleness_ticks) == (3, 12.5, 2)
        assert chunk.inference_s >= 0.0 and not chunk.stale
        assert inf.poll(5) is None  # each chunk is returned once
        assert inf.stats.submitted == 1 and inf.stats.chunks == 1


def test_backends_agree() -> None:
    def run(backend: Backend) -> list[np.ndarray]:
        out = []
        with make(partial(LinearPolicy, scale=0.5), backend) as inf:
            for tick in range(4):
                if tick == 2:
                    inf.reset()
                inf.submit(obs(tick, -tick, 0.25 * tick), t_obs_s=0.02 * tick, tick=tick)
                out.append(next_chunk(inf, tick).actions)
        return out

    reference = run("sync")
    for backend in WORKERS:
        np.testing.assert_array_equal(np.stack(run(backend)), np.stack(reference))


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_reaches_policy(backend: Backend) -> None:
    with make(LinearPolicy, backend) as inf:
        inf.submit(obs(1.0, 1.0, 1.0), 0.0, 0)
        np.testing.assert_array_equal(next_chunk(inf).actions, expected((1.0, 1.0, 1.0)))
        inf.reset()
        inf.submit(obs(1.0, 1.0, 1.0), 0.0, 1)
        np.testing.assert_array_equal(next_chunk(inf).actions, expected((1.0, 1.0, 1.0), 1))


def test_submit_does_not_wait_for_the_worker(gate: Path) -> None:
    with make(partial(GatedPolicy, str(gate)), "process") as inf:
        assert inf.submit(obs(1.0, 0.0, 0.0), 0.0, 0)
        assert inf.poll(0) is None  # submit returned while the worker cannot have finished
        until(lambda: inf.busy)  # the worker is blocked inside predict_chunk ...
        assert inf.submit(obs(2.0, 0.0, 0.0), 0.02, 1)  # ... and submit still returns at once
        assert inf.poll(1) is None
        gate.touch()
        assert next_chunk(inf).obs_tick in (0, 1)


def test_latest_observation_wins(gate: Path) -> None:
    with make(partial(GatedPolicy, str(gate)), "process") as inf:
        inf.submit(obs(0.0, 0.0, 0.0), 0.0, tick=0)
        until(lambda: inf.busy)  # the worker took tick 0 and is blocked on the gate
        assert inf.submit(obs(1.0, 0.0, 0.0), 0.02, tick=1)
        assert inf.submit(obs(2.0, 0.0, 0.0), 0.04, tick=2)  # overwrites tick 1
        assert inf.stats.superseded == 1
        gate.touch()
        chunks = [next_chunk(inf, 3)]
        while chunks[-1].obs_tick != 2:
            chunks.append(next_chunk(inf, 3))
        assert [c.obs_tick for c in chunks] in ([0, 2], [2])  # tick 1 is never computed
        np.testing.assert_array_equal(chunks[-1].actions, expected((2.0, 0.0, 0.0)))


def test_reset_drops_chunks_of_earlier_observations(gate: Path) -> None:
    with make(partial(GatedPolicy, str(gate)), "process") as inf:
        inf.submit(obs(5.0, 5.0, 5.0), 0.0, tick=0)
        until(lambda: inf.busy)
        inf.reset()  # the chunk in progress belongs to the old episode
        inf.submit(obs(1.0, 1.0, 1.0), 0.02, tick=1)
        gate.touch()
        chunk = next_chunk(inf, tick=1)
        assert chunk.obs_tick == 1
        np.testing.assert_array_equal(chunk.actions, expected((1.0, 1.0, 1.0), resets=1))
        assert inf.stats.discarded <= 1


@pytest.mark.parametrize("backend", WORKERS)
def test_worker_exception_surfaces(backend: Backend) -> None:
    inf = make(partial(FailingPolicy, "boom 42", fail_on=2), backend)
    with inf:
        inf.submit(obs(1.0, 2.0, 3.0), 0.0, 0)
        next_chunk(inf)  # the first call succeeds
        inf.submit(obs(1.0, 2.0, 3.0), 0.0, 1)
        err = run_until_error(inf)
        for text in ("boom 42", "ValueError", "Traceback", "predict_chunk"):
            assert text in str(err)
        assert "boom 42" in err.worker_traceback
        with pytest.raises(PolicyWorkerError, match="boom 42"):  # sticky
            inf.poll(2)
        with pytest.raises(PolicyWorkerError, match="boom 42"):
            inf.submit(obs(1.0, 2.0, 3.0), 0.0, 2)


def test_sync_exception_surfaces_from_submit() -> None:
    with make(partial(FailingPolicy, "boom 7"), "sync") as inf:
        with pytest.raises(PolicyWorkerError, match="boom 7") as info:
            inf.submit(obs(1.0, 2.0, 3.0), 0.0, 0)
        assert "ValueError" in info.value.worker_traceback


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_chunk_shape_surfaces(backend: Backend) -> None:
    with make(WrongShapePolicy, backend) as inf:
        try:
            inf.submit(obs(1.0, 2.0, 3.0), 0.0, 0)
            err = run_until_error(inf)
        except PolicyWorkerError as e:  # sync raises from submit
            err = e
        assert f"shape ({H + 1}, {A})" in str(err)


@pytest.mark.parametrize("backend", BACKENDS)
def test_factory_error_surfaces_at_start(backend: Backend) -> None:
    inf = make(partial(broken_factory, "no checkpoint at /nowhere"), backend)
    with pytest.raises(PolicyWorkerError, match="no checkpoint at /nowhere"):
        inf.start(timeout_s=HANG_GUARD_S)
    inf.close()


def test_start_times_out() -> None:
    inf = make(partial(slow_factory, 60.0), "process")
    with pytest.raises(PolicyWorkerError, match=r"did not become ready within 0\.2 s"):
        inf.start(timeout_s=0.2)
    inf.close()


def test_unpicklable_factory_is_rejected() -> None:
    inf = make(lambda: LinearPolicy(), "process")
    with pytest.raises(ConfigError, match="module-level function"):
        inf.start()


def test_killed_worker_is_detected() -> None:
    with make(LinearPolicy, "process") as inf:
        pid = inf.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        err = run_until_error(inf)
        assert "SIGKILL" in str(err)
        with pytest.raises(PolicyWorkerError, match="SIGKILL"):
            inf.submit(obs(1.0, 2.0, 3.0), 0.0, 0)


@pytest.mark.parametrize("backend", WORKERS)
def test_close_unlinks_shared_memory(backend: Backend) -> None:
    before = my_segments()
    inf = make(LinearPolicy, backend)
    inf.start()
    assert len(my_segments() - before) == 1
    inf.close()
    inf.close()  # idempotent
    assert my_segments() == before
    with pytest.raises(PolicyWorkerError, match="closed"):
        inf.poll(0)


def test_worker_process_does_not_import_torch() -> None:
    with make(TorchProbePolicy, "process") as inf:
        inf.submit(obs(0.0, 0.0, 0.0), 0.0, 0)
        assert not next_chunk(inf).actions.any()


def test_staleness_is_reported_and_offsets_the_chunk() -> None:
    with make(LinearPolicy, "sync", max_staleness_ticks=2) as inf:
        inf.submit(obs(0.0, 0.0, 0.0), 0.1, tick=5)
        chunk = inf.poll(tick=8)
        assert chunk is not None
        assert chunk.staleness_ticks == 3 and chunk.stale
        assert inf.stats.stale_chunks == 1 and inf.stats.max_staleness_ticks == 3
        executor = LatestChunk()
        executor.add(chunk.actions, chunk.obs_tick)
        np.testing.assert_array_equal(executor.action(8), chunk.actions[3])  # ticks 5..7 passed
        assert executor.action(9) is None  # H = 4 rows cover ticks 5..8


def test_observation_is_checked_against_the_spec() -> None:
    with make(LinearPolicy, "sync") as inf:
        with pytest.raises(ConfigError, match="keys"):
            inf.submit({"qpos": np.zeros(A)}, 0.0, 0)
        with pytest.raises(ConfigError, match="expected float64"):
            inf.submit({"state": np.zeros(A + 1)}, 0.0, 0)
    image = AsyncInference(LinearPolicy, {"rgb": ((2, 2, 3), np.uint8)}, (H, A), "sync")
    with image, pytest.raises(ConfigError, match="uint8"):
        image.submit({"rgb": np.zeros((2, 2, 3), np.float32)}, 0.0, 0)


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ConfigError, match="backend"):
        make(LinearPolicy, "gpu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="chunk_shape"):
        AsyncInference(LinearPolicy, SPEC, (0, A), "sync")
    with pytest.raises(ConfigError, match="obs_spec"):
        AsyncInference(LinearPolicy, {}, (H, A), "sync")
