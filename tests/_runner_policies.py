"""Chunk policies for the runner tests, importable by a spawned worker (module-level)."""

from __future__ import annotations

import time

import numpy as np

from robolearn.envs.experts import expert_for_task


class ExpertThenFail:
    """The FrankaLift expert for ``ok_calls`` chunks, then an exception."""

    def __init__(self, ok_calls: int, horizon: int = 4) -> None:
        self.expert = expert_for_task("FrankaLift", chunk_horizon=horizon)
        self.ok_calls, self.calls = ok_calls, 0

    def reset(self) -> None:
        self.expert.reset()

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.calls += 1
        if self.calls > self.ok_calls:
            raise RuntimeError(f"policy exploded at call {self.calls}")
        return self.expert.predict_chunk(obs)


class ExpertThenStall(ExpertThenFail):
    """The FrankaLift expert for ``ok_calls`` chunks, then one call that takes ``stall_s``."""

    def __init__(self, ok_calls: int, stall_s: float, horizon: int = 4) -> None:
        super().__init__(ok_calls, horizon)
        self.stall_s = stall_s

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.calls == self.ok_calls:
            time.sleep(self.stall_s)
        self.calls += 1
        return self.expert.predict_chunk(obs)


class NaNPolicy:
    """Chunks of NaN."""

    def __init__(self, horizon: int = 4, action_dim: int = 4) -> None:
        self.shape = (horizon, action_dim)

    def reset(self) -> None:
        pass

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.full(self.shape, np.nan)
