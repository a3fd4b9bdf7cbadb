"""Asynchronous inference: a policy computes action chunks in a worker while the loop runs on.

The control loop hands observations to an :class:`AsyncInference` handle with
:meth:`~AsyncInference.submit` and collects finished chunks with :meth:`~AsyncInference.poll`;
neither waits for the policy. A :mod:`robolearn.core.chunking` executor turns the chunks into
one action per tick.

Backends
--------
``"process"`` (default)
    The policy lives in its own process (``spawn`` by default), so its Python work never takes
    the loop's GIL: a busy pure-Python thread in the loop's process delays the loop's wake-ups
    by up to the GIL switch interval (5 ms). Observations and the chunk travel through one
    :class:`multiprocessing.shared_memory.SharedMemory` segment (named ``robolearn_inf_*``,
    unlinked by :meth:`~AsyncInference.close`); a semaphore wakes the worker and a pipe carries
    its "ready" and error messages.
``"thread"``
    The same worker loop in a thread of the loop's process (for comparison and benchmarks).
``"sync"``
    ``predict_chunk`` runs inside :meth:`~AsyncInference.submit` (the baseline, and for
    deterministic tests).

The policy is built *inside* the worker by a zero-argument factory, so nothing unpicklable
crosses the process boundary. For the process backend the factory must be picklable: a
module-level function or a :func:`functools.partial` of one, importable by a fresh interpreter.
This module imports only numpy and the standard library, so the worker imports torch only if
the factory does.

Latest wins
-----------
There is one observation slot. :meth:`~AsyncInference.submit` overwrites an observation that
the worker has not picked up yet (counted in ``stats.superseded``), so when the worker finishes
a chunk it starts on the newest observation. While the worker computes, the slot is free and
``submit`` succeeds; it returns ``False`` only in the microseconds while the worker copies the
slot out (counted in ``stats.busy_rejects``), and the loop simply submits again later.

Staleness
---------
Each :class:`Chunk` carries the tick and time of its observation. ``poll(tick)`` sets
``staleness_ticks = tick − obs_tick``; a chunk older than ``max_staleness_ticks`` is flagged
``stale`` and counted in ``stats.stale_chunks``. Executors index chunks from the observation's
tick, so a stale chunk starts at its row ``staleness_ticks``.

Errors
------
Any exception in the factory, ``reset`` or ``predict_chunk`` (or a chunk of the wrong shape or
with NaN) is caught in the worker, whose formatted traceback is sent back; the next ``submit``
or ``poll`` raises :class:`PolicyWorkerError` with that text, and so does every later call.
A worker process that dies (killed, segfault) is detected by the same calls.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import secrets
import signal
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Lock, Semaphore
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from robolearn.core.types import ConfigError, RobolearnError

Backend = Literal["process", "thread", "sync"]
StartMethod = Literal["spawn", "forkserver", "fork"]
ObsSpec = Mapping[str, tuple[tuple[int, ...], DTypeLike]]
"""Observation layout: key → (shape, dtype), e.g. ``{"state": ((9,), np.float32)}``."""

SHM_PREFIX = "robolearn_inf_"
"""Name prefix of the shared-memory segments (``/dev/shm/robolearn_inf_*`` on Linux)."""

STATS_WINDOW = 10_000
"""How many chunks' inference times :class:`InferenceStats` keeps."""

_WAKE_S = 0.1  # how often an idle worker checks the stop flag and its parent
_ALIGN = 64  # byte alignment of each array in the segment


class PolicyWorkerError(RobolearnError, RuntimeError):
    """The policy worker failed or is unusable; the message holds the worker's traceback."""

    def __init__(self, message: str, worker_traceback: str = "") -> None:
        super().__init__(message)
        self.worker_traceback = worker_traceback
        """The formatted traceback from the worker ("" if the worker died without one)."""


@runtime_checkable
class ChunkPolicy(Protocol):
    """What the worker needs from a policy: ``reset`` and ``predict_chunk``."""

    def reset(self) -> None:
        """Start a new episode (clear observation history, re-seed noise)."""
        ...

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> ArrayLike:
        """A chunk of actions (H, A) whose row 0 is the action for ``obs``'s tick."""
        ...


PolicyFactory = Callable[[], ChunkPolicy]
"""Zero-argument callable that builds the policy inside the worker."""

_Runner = BaseProcess | threading.Thread


@dataclass(frozen=True)
class Chunk:
    """A finished action chunk and the observation it came from."""

    actions: NDArray[np.float32]  # (H, A), a copy owned by the caller
    obs_tick: int
    """Tick of the observation the chunk was computed from (its row 0 is for that tick)."""
    obs_time_s: float
    """Time of that observation, as given to ``submit`` (the caller's clock)."""
    inference_s: float
    """Wall time ``predict_chunk`` took in the worker."""
    staleness_ticks: int
    """Tick at ``poll`` minus ``obs_tick``: the row an executor starts from."""
    stale: bool
    """Whether ``staleness_ticks`` exceeds the handle's ``max_staleness_ticks``."""


@dataclass
class InferenceStats:
    """Counters kept by the handle (in the loop's process)."""

    submitted: int = 0
    """Observations stored for the worker."""
    superseded: int = 0
    """Stored observations overwritten by a newer one before the worker picked them up."""
    busy_rejects: int = 0
    """``submit`` calls that returned False because the worker was copying the slot."""
    chunks: int = 0
    """Chunks returned by ``poll``."""
    discarded: int = 0
    """Finished chunks dropped because they came from an observation before ``reset``."""
    stale_chunks: int = 0
    """Returned chunks flagged stale."""
    max_staleness_ticks: int = 0
    """Largest ``staleness_ticks`` seen."""
    inference_s: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    """``inference_s`` of the last :data:`STATS_WINDOW` returned chunks."""


def obs_spec_of(obs: Mapping[str, ArrayLike]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The :data:`ObsSpec` of an example observation."""
    arrays = {k: np.asarray(v) for k, v in obs.items()}
    return {k: (a.shape, a.dtype) for k, a in arrays.items()}


# --- shared-memory layout -------------------------------------------------------------------

# Slots of the int64 header. OBS_* are written by the loop under the obs lock, CHUNK_* by the
# worker under the chunk lock; TAKEN_SEQ by the worker under the obs lock.
_OBS_SEQ, _OBS_TICK, _OBS_EPOCH, _EPOCH, _TAKEN_SEQ = 0, 1, 2, 3, 4
_CHUNK_SEQ, _CHUNK_TICK, _CHUNK_EPOCH, _BUSY, _STOP = 5, 6, 7, 8, 9
_N_INTS = 16
# Slots of the float64 header.
_OBS_TIME_S, _CHUNK_OBS_TIME_S, _CHUNK_INFER_S = 0, 1, 2
_N_FLOATS = 8


@dataclass(frozen=True)
class _Field:
    """One array in the segment."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int


@dataclass(frozen=True)
class _Layout:
    """Where each array lives in the segment; computed once, sent to the worker."""

    obs: tuple[_Field, ...]
    chunk: _Field
    size: int


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _layout(obs_spec: ObsSpec, chunk_shape: tuple[int, int]) -> _Layout:
    """Pack the header, the observation arrays and the chunk into one segment."""
    offset = _aligned(8 * (_N_INTS + _N_FLOATS))
    fields = []
    for name, (shape, dtype) in obs_spec.items():
        dt = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        fields.append(_Field(name, shape, dt.str, offset))
        offset += _aligned(max(dt.itemsize * int(np.prod(shape)), 1))
    chunk = _Field("chunk", chunk_shape, np.dtype(np.float32).str, offset)
    return _Layout(tuple(fields), chunk, offset + _aligned(4 * chunk_shape[0] * chunk_shape[1]))


def _view(buf: memoryview, f: _Field) -> np.ndarray:
    return np.ndarray(f.shape, dtype=np.dtype(f.dtype), buffer=buf, offset=f.offset)


class _Views:
    """Numpy views of a segment: int and float headers, observation arrays, the chunk."""

    def __init__(self, buf: memoryview, layout: _Layout) -> None:
        self.ints: NDArray[np.int64] = np.ndarray((_N_INTS,), np.int64, buf, 0)
        self.floats: NDArray[np.float64] = np.ndarray((_N_FLOATS,), np.float64, buf, 8 * _N_INTS)
        self.obs = {f.name: _view(buf, f) for f in layout.obs}
        self.chunk: NDArray[np.float32] = _view(buf, layout.chunk)  # (H, A)


class _Segment:
    """A shared-memory segment and its views; ``release`` drops the views before closing."""

    def __init__(self, layout: _Layout, name: str | None = None) -> None:
        create = name is None
        name = name or f"{SHM_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        self.shm = SharedMemory(name=name, create=create, size=layout.size if create else 0)
        self.owner = create
        buf = self.shm.buf
        assert buf is not None
        self.views: _Views | None = _Views(buf, layout)
        if create:
            self.views.ints[:] = 0
            self.views.floats[:] = 0.0

    @property
    def v(self) -> _Views:
        if self.views is None:
            raise PolicyWorkerError("the inference handle is closed")
        return self.views

    def release(self) -> None:
        """Close the mapping and, for the creator, unlink the segment."""
        if self.views is None:
            return
        self.views = None
        with contextlib.suppress(BufferError):  # a view still alive; the unlink still holds
            self.shm.close()
        if self.owner:
            with contextlib.suppress(FileNotFoundError):
                self.shm.unlink()


# --- the worker (runs in the child process or thread) ---------------------------------------


@dataclass
class _Channel:
    """What the loop and the worker share besides the segment."""

    obs_lock: Lock
    chunk_lock: Lock
    wake: Semaphore
    send: Connection


def _worker_main(
    factory: PolicyFactory, layout: _Layout, shm_name: str, ch: _Channel, in_process: bool
) -> None:
    """Entry point of the worker: build the policy, serve observations, report any error."""
    if in_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the loop's to handle
    seg = _Segment(layout, shm_name)
    try:
        _serve(factory, seg.v, ch, _parent_watch(in_process))
    except BaseException:
        _send(ch.send, ("error", traceback.format_exc()))
    finally:
        seg.release()


def _parent_watch(in_process: bool) -> Callable[[], bool]:
    """A function telling whether the loop's process is still alive."""
    parent = mp.parent_process() if in_process else None
    return (lambda: True) if parent is None else parent.is_alive


def _send(conn: Connection, msg: tuple[str, str]) -> None:
    with contextlib.suppress(OSError, ValueError):  # the loop closed the pipe: nobody to tell
        conn.send(msg)


def _serve(
    factory: PolicyFactory, v: _Views, ch: _Channel, parent_alive: Callable[[], bool]
) -> None:
    """Wait for observations and answer each with a chunk until told to stop."""
    policy = factory()
    _send(ch.send, ("ready", ""))
    obs = {k: np.empty_like(a) for k, a in v.obs.items()}
    applied_epoch = 0
    while True:
        ch.wake.acquire(timeout=_WAKE_S)
        while ch.wake.acquire(block=False):  # drain: one pass serves every wake-up so far
            pass
        if v.ints[_STOP] or not parent_alive():
            return
        if v.ints[_OBS_SEQ] == v.ints[_TAKEN_SEQ] and v.ints[_EPOCH] == applied_epoch:
            continue  # nothing new: leave the lock to the loop
        if not _acquire(ch.obs_lock, parent_alive):
            return
        epoch, job = _take_obs(v, ch.obs_lock, obs)
        if epoch != applied_epoch:
            policy.reset()
            applied_epoch = epoch
        if job is not None:
            _run_job(policy, v, ch.chunk_lock, obs, job, parent_alive)


@contextlib.contextmanager
def _held(lock: Lock) -> Iterator[None]:
    """Release an already acquired ``lock`` on leaving the block."""
    try:
        yield
    finally:
        lock.release()


def _acquire(lock: Lock, alive: Callable[[], bool]) -> bool:
    """Take ``lock``, giving up (False) if ``alive()`` turns false: a dead peer may hold it."""
    while not lock.acquire(timeout=_WAKE_S):
        if not alive():
            return False
    return True


def _take_obs(
    v: _Views, obs_lock: Lock, out: dict[str, np.ndarray]
) -> tuple[int, tuple[int, float, int] | None]:
    """Copy the pending observation out of the slot, whose lock the caller took and this
    releases: (epoch, (tick, time_s, epoch) or None)."""
    with _held(obs_lock):
        epoch = int(v.ints[_EPOCH])
        if v.ints[_OBS_SEQ] == v.ints[_TAKEN_SEQ]:
            return epoch, None
        v.ints[_TAKEN_SEQ] = v.ints[_OBS_SEQ]
        if v.ints[_OBS_EPOCH] != epoch:  # submitted before a reset: drop it
            return epoch, None
        for k, arr in v.obs.items():
            np.copyto(out[k], arr)
        return epoch, (int(v.ints[_OBS_TICK]), float(v.floats[_OBS_TIME_S]), epoch)


def _run_job(
    policy: ChunkPolicy,
    v: _Views,
    chunk_lock: Lock,
    obs: dict[str, np.ndarray],
    job: tuple[int, float, int],
    parent_alive: Callable[[], bool],
) -> None:
    """Run ``predict_chunk`` on ``obs`` and publish the chunk."""
    v.ints[_BUSY] = 1
    t0 = time.perf_counter()
    actions = _check_chunk(policy.predict_chunk(obs), v.chunk.shape)
    infer_s = time.perf_counter() - t0
    if not _acquire(chunk_lock, parent_alive):
        return
    with _held(chunk_lock):
        v.chunk[...] = actions
        v.ints[_CHUNK_TICK], v.floats[_CHUNK_OBS_TIME_S], v.ints[_CHUNK_EPOCH] = job
        v.floats[_CHUNK_INFER_S] = infer_s
        v.ints[_CHUNK_SEQ] += 1
    v.ints[_BUSY] = 0


def _check_chunk(out: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.float32]:
    """``predict_chunk``'s result as float32 (H, A); ValueError if misshapen or not finite."""
    if hasattr(out, "detach"):  # a torch tensor (possibly on a GPU) without importing torch
        out = out.detach().cpu().numpy()
    arr = np.array(out, dtype=np.float32)  # a copy: the policy may reuse its buffer
    if arr.shape != shape:
        raise ValueError(f"predict_chunk returned shape {arr.shape}; the handle expects {shape}")
    if not np.isfinite(arr).all():
        raise ValueError("predict_chunk returned NaN or inf actions")
    return arr


# --- the loop's side ------------------------------------------------------------------------


@dataclass
class _Raw:
    """A finished chunk before the handle adds staleness."""

    actions: NDArray[np.float32]  # (H, A)
    obs_tick: int
    obs_time_s: float
    inference_s: float


class _SyncBackend:
    """``predict_chunk`` inline in ``submit``."""

    def __init__(self, factory: PolicyFactory, chunk_shape: tuple[int, int]) -> None:
        self._factory = factory
        self._shape = chunk_shape
        self._policy: ChunkPolicy | None = None
        self._result: _Raw | None = None

    def start(self, timeout_s: float) -> None:
        self._policy = _call_in_policy("building the policy", self._factory)

    def submit(self, obs: Mapping[str, np.ndarray], t_obs_s: float, tick: int) -> tuple[bool, bool]:
        policy = self._require()
        obs_copy = {k: np.array(a) for k, a in obs.items()}
        t0 = time.perf_counter()
        out = _call_in_policy("predict_chunk", lambda: policy.predict_chunk(obs_copy))
        actions = _call_in_policy("checking the chunk", lambda: _check_chunk(out, self._shape))
        self._result = _Raw(actions, tick, t_obs_s, time.perf_counter() - t0)
        return True, False

    def take(self) -> tuple[_Raw | None, bool]:
        result, self._result = self._result, None
        return result, False

    def reset(self) -> None:
        policy = self._require()
        self._result = None
        _call_in_policy("reset", policy.reset)

    def check(self) -> None:
        self._require()

    @property
    def busy(self) -> bool:
        return False

    @property
    def worker_pid(self) -> int | None:
        return None

    def close(self) -> None:
        self._policy = None

    def _require(self) -> ChunkPolicy:
        if self._policy is None:
            raise PolicyWorkerError("inference is closed or not started (call start() first)")
        return self._policy


def _call_in_policy(what: str, fn: Callable[[], Any]) -> Any:
    """Call ``fn``; any exception becomes a PolicyWorkerError with its traceback."""
    try:
        return fn()
    except Exception as exc:
        tb = traceback.format_exc()
        raise PolicyWorkerError(f"policy failed in {what}:\n{tb}", tb) from exc


class _WorkerBackend:
    """The worker in a child process or a thread, fed through shared memory."""

    def __init__(
        self,
        factory: PolicyFactory,
        layout: _Layout,
        in_process: bool,
        start_method: StartMethod,
    ) -> None:
        self._factory, self._layout, self._in_process = factory, layout, in_process
        self._ctx: Any = mp.get_context(start_method)  # typeshed's BaseContext lacks Process
        self._seg = _Segment(layout)
        recv, send = self._ctx.Pipe(duplex=False)
        self._recv = recv
        self._ch = _Channel(self._ctx.Lock(), self._ctx.Lock(), self._ctx.Semaphore(0), send)
        self._runners: list[_Runner] = []  # the worker once started (shared with _shutdown)
        self._error: PolicyWorkerError | None = None
        self._last_chunk_seq = 0
        self._finalizer = weakref.finalize(
            self, _shutdown, self._seg, self._ch, self._runners, recv
        )

    @property
    def shm_name(self) -> str:
        return self._seg.shm.name

    def start(self, timeout_s: float) -> None:
        args = (self._factory, self._layout, self.shm_name, self._ch, self._in_process)
        kind = self._ctx.Process if self._in_process else threading.Thread
        self._runners.append(
            kind(target=_worker_main, args=args, name="robolearn-inference", daemon=True)
        )
        self._launch(self._runners[0])
        self._await_ready(timeout_s)

    @property
    def _runner(self) -> _Runner | None:
        return self._runners[0] if self._runners else None

    def _launch(self, runner: _Runner) -> None:
        try:
            runner.start()
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            self.close()
            raise ConfigError(
                f"the policy factory cannot be sent to a worker process ({exc}); use a "
                "module-level function or a functools.partial of one"
            ) from exc
        if self._in_process:
            self._ch.send.close()  # the child has its copy; EOF then means the child is gone

    def _await_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._recv.poll(min(0.05, max(deadline - time.monotonic(), 0.0))):
                kind, text = self._receive()
                if kind == "ready":
                    return
                if kind == "error":
                    self._fail(f"building the policy failed in the worker:\n{text}", text)
                self._fail(self._death_message("before the policy was built"), "")
            if not self._alive():
                self._check_messages()
                self._fail(self._death_message("before the policy was built"), "")
        self._fail(f"the policy worker did not become ready within {timeout_s:g} s", "")

    def _fail(self, message: str, tb: str) -> None:
        """Remember the error, stop the worker without waiting for it, raise."""
        self._error = PolicyWorkerError(message, tb)
        runner = self._runner
        if isinstance(runner, BaseProcess) and runner.is_alive():
            runner.terminate()  # after a failure there is nothing to wait for
        self.close()
        raise self._error

    def submit(self, obs: Mapping[str, np.ndarray], t_obs_s: float, tick: int) -> tuple[bool, bool]:
        """Store ``obs``: (stored, superseded a pending one)."""
        self.check()
        v = self._seg.v
        if not self._ch.obs_lock.acquire(block=False):
            return False, False
        try:
            superseded = v.ints[_OBS_SEQ] != v.ints[_TAKEN_SEQ]
            for k, arr in obs.items():
                v.obs[k][...] = arr
            v.ints[_OBS_TICK], v.floats[_OBS_TIME_S] = tick, t_obs_s
            v.ints[_OBS_EPOCH] = v.ints[_EPOCH]
            v.ints[_OBS_SEQ] += 1
        finally:
            self._ch.obs_lock.release()
        self._ch.wake.release()
        return True, bool(superseded)

    def take(self) -> tuple[_Raw | None, bool]:
        """The newest unseen chunk, if any: (chunk, whether one was discarded after reset)."""
        self.check()
        v = self._seg.v
        if v.ints[_CHUNK_SEQ] == self._last_chunk_seq or not self._ch.chunk_lock.acquire(False):
            return None, False
        try:
            self._last_chunk_seq = int(v.ints[_CHUNK_SEQ])
            raw = _Raw(
                v.chunk.copy(),
                int(v.ints[_CHUNK_TICK]),
                float(v.floats[_CHUNK_OBS_TIME_S]),
                float(v.floats[_CHUNK_INFER_S]),
            )
            current = v.ints[_CHUNK_EPOCH] == v.ints[_EPOCH]
        finally:
            self._ch.chunk_lock.release()
        return (raw, False) if current else (None, True)

    def reset(self) -> None:
        self.check()
        v = self._seg.v
        # The worker holds the lock only while copying an observation; if it died holding
        # it, the lock never frees, and check() raises.
        _acquire(self._ch.obs_lock, self._checked)
        with _held(self._ch.obs_lock):
            v.ints[_EPOCH] += 1
        self._ch.wake.release()

    @property
    def busy(self) -> bool:
        return bool(self._seg.v.ints[_BUSY])

    @property
    def worker_pid(self) -> int | None:
        runner = self._runner
        return runner.pid if isinstance(runner, BaseProcess) else None

    def check(self) -> None:
        """Raise PolicyWorkerError if the worker reported an error or is gone."""
        if self._error is not None:
            raise self._error
        if self._seg.views is None:
            raise PolicyWorkerError("the inference handle is closed")
        if self._runner is None:
            raise PolicyWorkerError("inference is not started (call start() or use `with`)")
        self._check_messages()
        if not self._alive():
            self._check_messages()  # it may have written its traceback just before exiting
            self._fail(self._death_message("while serving"), "")

    def _checked(self) -> bool:
        """True, or PolicyWorkerError if the worker failed."""
        self.check()
        return True

    def _check_messages(self) -> None:
        while self._recv.poll(0):
            kind, text = self._receive()
            if kind == "error":
                self._fail(f"the policy worker failed:\n{text}", text)
            if kind == "eof":  # the child closed its end of the pipe: it is exiting
                self._fail(self._death_message("while serving"), "")

    def _receive(self) -> tuple[str, str]:
        try:
            kind, text = self._recv.recv()
        except (EOFError, OSError):
            return "eof", ""
        return str(kind), str(text)

    def _alive(self) -> bool:
        return self._runner is not None and self._runner.is_alive()

    def _death_message(self, when: str) -> str:
        runner = self._runner
        if runner is not None:
            runner.join(timeout=1.0)  # reap it for its exit code; it is gone or going
        code = runner.exitcode if isinstance(runner, BaseProcess) else None
        how = f"with exit code {code}" if code is not None else "without a message"
        if code is not None and code < 0:
            how = f"killed by signal {-code} ({signal.Signals(-code).name})"
        return (
            f"the policy worker stopped {how} {when}; if it never started, check that the "
            "factory is importable by a fresh interpreter (see the worker's stderr)"
        )

    def close(self) -> None:
        self._finalizer()


def _shutdown(seg: _Segment, ch: _Channel, runners: list[_Runner], recv: Connection) -> None:
    """Stop the worker (politely, then by force), close the pipe, unlink the segment."""
    if seg.views is not None:
        seg.views.ints[_STOP] = 1
    ch.wake.release()
    for runner in runners:
        if runner.ident is None:  # never started
            continue
        runner.join(timeout=2.0)
        if isinstance(runner, BaseProcess) and runner.is_alive():
            runner.terminate()
            runner.join(timeout=1.0)
            if runner.is_alive():
                runner.kill()
                runner.join(timeout=1.0)
    for conn in (recv, ch.send):
        conn.close()
    seg.release()


class AsyncInference:
    """A policy in a background worker: ``submit`` observations, ``poll`` chunks, never wait.

    Args:
        factory: zero-argument callable building a :class:`ChunkPolicy` inside the worker;
            picklable for the process backend.
        obs_spec: key → (shape, dtype) of every observation (see :func:`obs_spec_of`).
        chunk_shape: (H, A) of the chunks ``predict_chunk`` returns.
        backend: ``"process"`` (default), ``"thread"`` or ``"sync"`` (see the module doc).
        start_method: multiprocessing start method of the process backend.
        max_staleness_ticks: chunks whose observation is older than this many ticks at
            ``poll`` are flagged stale and counted.

    One loop thread drives a handle. Use it as a context manager, or call :meth:`start`
    and :meth:`close`::

        with AsyncInference(partial(make_policy, ckpt), spec, (16, 7)) as inf:
            inf.submit(obs, t_obs_s, tick)
            chunk = inf.poll(tick)
    """

    def __init__(
        self,
        factory: PolicyFactory,
        obs_spec: ObsSpec,
        chunk_shape: tuple[int, int],
        backend: Backend = "process",
        start_method: StartMethod = "spawn",
        max_staleness_ticks: int = 5,
    ) -> None:
        self.obs_spec = _check_spec(obs_spec)
        self.chunk_shape = _check_chunk_shape(chunk_shape)
        self.backend: Backend = backend
        self.max_staleness_ticks = int(max_staleness_ticks)
        self.stats = InferenceStats()
        self._started = False
        self._impl: _SyncBackend | _WorkerBackend
        if backend == "sync":
            self._impl = _SyncBackend(factory, self.chunk_shape)
        elif backend in ("process", "thread"):
            layout = _layout(self.obs_spec, self.chunk_shape)
            self._impl = _WorkerBackend(factory, layout, backend == "process", start_method)
        else:
            raise ConfigError(f"unknown inference backend {backend!r}; use process, thread, sync")

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the worker and wait until it has built the policy.

        Raises PolicyWorkerError if the factory raises (with its traceback), the worker dies,
        or it is not ready within ``timeout_s``; ConfigError if the factory cannot be pickled.
        """
        if self._started:
            raise PolicyWorkerError("inference is already started")
        self._started = True
        self._impl.start(timeout_s)

    def submit(self, obs: Mapping[str, ArrayLike], t_obs_s: float, tick: int) -> bool:
        """Hand ``obs`` (taken at ``t_obs_s``, tick ``tick``) to the worker without waiting.

        Returns whether it was stored; a stored observation the worker has not started on is
        replaced (latest wins). With the sync backend the chunk is computed here.
        Raises PolicyWorkerError if the worker failed, ConfigError if ``obs`` does not match
        ``obs_spec``.
        """
        arrays = self._check_obs(obs)
        stored, superseded = self._impl.submit(arrays, float(t_obs_s), int(tick))
        self.stats.submitted += stored
        self.stats.superseded += superseded
        self.stats.busy_rejects += not stored
        return stored

    def poll(self, tick: int) -> Chunk | None:
        """The newest chunk finished since the last call, or ``None``; never waits.

        ``tick`` is the current control tick; it sets the chunk's ``staleness_ticks``.
        Raises PolicyWorkerError if the worker failed or died.
        """
        raw, discarded = self._impl.take()
        self.stats.discarded += discarded
        return None if raw is None else self._to_chunk(raw, int(tick))

    def reset(self) -> None:
        """Start a new episode: the worker calls ``policy.reset()`` before its next chunk.

        Observations submitted and chunks computed before this call are dropped.
        """
        self._impl.reset()

    def check(self) -> None:
        """Raise PolicyWorkerError if the worker has failed or died (``poll`` does this too)."""
        self._impl.check()

    @property
    def busy(self) -> bool:
        """Whether the worker is inside ``predict_chunk`` right now."""
        return self._impl.busy

    @property
    def worker_pid(self) -> int | None:
        """Process id of the worker (process backend), else ``None``."""
        return self._impl.worker_pid

    def close(self) -> None:
        """Stop the worker and free the shared memory; safe to call twice."""
        self._impl.close()

    def __enter__(self) -> AsyncInference:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _to_chunk(self, raw: _Raw, tick: int) -> Chunk:
        staleness = tick - raw.obs_tick
        stale = staleness > self.max_staleness_ticks
        s = self.stats
        s.chunks += 1
        s.stale_chunks += stale
        s.max_staleness_ticks = max(s.max_staleness_ticks, staleness)
        s.inference_s.append(raw.inference_s)
        return Chunk(raw.actions, raw.obs_tick, raw.obs_time_s, raw.inference_s, staleness, stale)

    def _check_obs(self, obs: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
        """``obs`` as arrays; ConfigError on missing/extra keys, shapes or unsafe dtypes."""
        if obs.keys() != self.obs_spec.keys():
            raise ConfigError(
                f"observation keys {sorted(obs)} differ from obs_spec {sorted(self.obs_spec)}"
            )
        arrays = {}
        for k, (shape, dtype) in self.obs_spec.items():
            a = np.asarray(obs[k])
            if a.shape != shape or not np.can_cast(a.dtype, dtype, "same_kind"):
                raise ConfigError(
                    f"observation {k!r} is {a.dtype}{list(a.shape)}; expected {dtype}{list(shape)}"
                )
            arrays[k] = a
        return arrays


def _check_spec(obs_spec: ObsSpec) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    if not obs_spec:
        raise ConfigError("obs_spec is empty; give key → (shape, dtype) for each observation")
    return {k: (tuple(int(n) for n in shape), np.dtype(dt)) for k, (shape, dt) in obs_spec.items()}


def _check_chunk_shape(chunk_shape: tuple[int, int]) -> tuple[int, int]:
    shape = tuple(int(n) for n in chunk_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigError(f"chunk_shape must be (H, A) with H, A >= 1, got {chunk_shape}")
    return shape[0], shape[1]
