"""Tiny numpy chunk policies for the inference tests, importable by a spawned worker.

Everything here is module-level so that ``functools.partial(ClassName, ...)`` pickles by
reference; the module imports only numpy and the standard library, so a worker starts fast.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

H, A = 4, 3
"""Chunk shape of every policy here."""


class LinearPolicy:
    """Row h of the chunk is ``obs["state"] * scale + h + 100 * resets``."""

    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale
        self.resets = 0

    def reset(self) -> None:
        """Count the reset; it shows in every later chunk."""
        self.resets += 1

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """(H, A) chunk, a pure function of the observation and the reset count."""
        rows = np.arange(H, dtype=np.float64)[:, None]  # (H, 1)
        return obs["state"][None, :] * self.scale + rows + 100.0 * self.resets  # (H, A)


class GatedPolicy(LinearPolicy):
    """A :class:`LinearPolicy` whose ``predict_chunk`` waits until the file ``gate`` exists."""

    def __init__(self, gate: str, scale: float = 2.0) -> None:
        super().__init__(scale)
        self.gate = Path(gate)

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Block until the gate opens (at most 30 s, so a broken test cannot hang), then answer."""
        deadline = time.monotonic() + 30.0
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        return super().predict_chunk(obs)


class FailingPolicy(LinearPolicy):
    """Raises ``ValueError(message)`` on call number ``fail_on`` of ``predict_chunk``."""

    def __init__(self, message: str, fail_on: int = 1) -> None:
        super().__init__()
        self.message, self.fail_on, self.calls = message, fail_on, 0

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Answer like LinearPolicy until the failing call."""
        self.calls += 1
        if self.calls == self.fail_on:
            raise ValueError(self.message)
        return super().predict_chunk(obs)


class WrongShapePolicy(LinearPolicy):
    """Returns one row too many."""

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """An (H + 1, A) chunk."""
        return np.zeros((H + 1, A))


def broken_factory(message: str) -> LinearPolicy:
    """A factory that raises ``RuntimeError(message)`` instead of building a policy."""
    raise RuntimeError(message)


def slow_factory(delay_s: float) -> LinearPolicy:
    """A factory that takes ``delay_s`` to build its policy."""
    time.sleep(delay_s)
    return LinearPolicy()


class TorchProbePolicy(LinearPolicy):
    """Fills its chunk with 1.0 if ``torch`` is imported in the worker's process, else 0.0."""

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """(H, A) of 1.0 or 0.0."""
        import sys

        return np.full((H, A), float("torch" in sys.modules))
