"""Small interface wrappers for any robolearn env (the simulated tasks and the robot env).

* :class:`ActionLatency` — a FIFO of N control ticks: the action given at tick t is applied
  at tick t + N; the first N ticks of an episode hold the robot still;
* :class:`ObservationNoise` — Gaussian noise per observation key (float entries only).

Both use only the env's public conventions (:mod:`robolearn.envs.conventions`): actions are
validated when given, with the env's own rule, so a bad action fails at once, not N ticks
later. Randomness is explicit: a generator is passed in and re-derived from
``reset(seed=...)``, never taken from global state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from robolearn.core.types import ConfigError
from robolearn.envs.conventions import conventions_of

SeedToRng = Callable[[int | None], np.random.Generator]


class ActionLatency(
    gym.Wrapper[Any, np.ndarray, Any, np.ndarray],
    gym.utils.RecordConstructorArgs,
):
    """Each action takes effect ``ticks`` control ticks after it is given.

    ``reset`` queues ``ticks`` hold actions (the env's :meth:`hold_action` after its reset),
    so the first ``ticks`` steps keep the robot still. ``ticks`` may be changed between
    episodes; the new value applies from the next ``reset``.
    """

    def __init__(self, env: gym.Env[Any, np.ndarray], ticks: int = 0) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, ticks=ticks)
        gym.Wrapper.__init__(self, env)
        self._conventions = conventions_of(env)
        self.ticks = ticks
        self._pending: deque[np.ndarray] = deque()

    @property
    def ticks(self) -> int:
        """Control ticks between an action and its effect (from the next reset on)."""
        return self._ticks

    @ticks.setter
    def ticks(self, value: int) -> None:
        if int(value) != value or value < 0:
            raise ConfigError(f"action latency must be a whole number of ticks ≥ 0, got {value}")
        self._ticks = int(value)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env, then queue :attr:`ticks` hold actions."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._pending.clear()
        if self._ticks > 0:
            hold = self._conventions.hold_action()
            self._pending.extend(hold.copy() for _ in range(self._ticks))
        return obs, info

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Queue ``action`` (validated now) and step with the one given ``ticks`` ago."""
        applied = action
        if self._pending:
            self._pending.append(self._conventions.validate_action(action))
            applied = self._pending.popleft()
        return self.env.step(applied)


class ObservationNoise(
    gym.ObservationWrapper[dict[str, Any], np.ndarray, dict[str, Any]],
    gym.utils.RecordConstructorArgs,
):
    """Adds zero-mean Gaussian noise of ``std_per_key[key]`` to each named observation entry
    (the dtype is kept); other entries pass unchanged.

    The noise comes from ``rng``; ``reset(seed=s)`` replaces it with ``seed_to_rng(s)``
    (``np.random.default_rng`` unless given), so the same seed gives the same noise.
    """

    def __init__(
        self,
        env: gym.Env[dict[str, Any], np.ndarray],
        std_per_key: Mapping[str, float],
        rng: np.random.Generator | None = None,
        seed_to_rng: SeedToRng = np.random.default_rng,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, std_per_key=dict(std_per_key))
        gym.ObservationWrapper.__init__(self, env)
        _check_noise_keys(env.observation_space, std_per_key)
        self.std_per_key = {key: float(std) for key, std in std_per_key.items() if std > 0}
        self._seed_to_rng = seed_to_rng
        self.rng = seed_to_rng(None) if rng is None else rng

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reseed the noise from ``seed`` (when given), reset, return the noisy observation."""
        if seed is not None:
            self.rng = self._seed_to_rng(seed)
        return super().reset(seed=seed, options=options)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """``observation`` with noise added to the entries of :attr:`std_per_key`."""
        if not self.std_per_key:
            return observation
        out = dict(observation)
        for key, std in self.std_per_key.items():
            value = np.asarray(observation[key])
            noise = self.rng.normal(0.0, std, value.shape)
            out[key] = (value + noise).astype(value.dtype)
        return out


def noise_std_per_key(
    space: gym.Space[Any],
    std: float,
    overrides: Mapping[str, float] | None = None,
    exempt: Collection[str] = (),
) -> dict[str, float]:
    """Noise std of each float entry of a ``Dict`` space: ``std``, or ``overrides[key]``;
    ``exempt`` keys get none unless overridden; zero stds are left out."""
    subspaces = dict(space.spaces) if isinstance(space, gym.spaces.Dict) else {}
    overrides = overrides or {}
    stds: dict[str, float] = {}
    for key, sub in subspaces.items():
        value = float(overrides.get(key, std if key not in exempt else 0.0))
        if value > 0 and _is_float(sub):
            stds[key] = value
    return stds


def _is_float(space: gym.Space[Any]) -> bool:
    return space.dtype is not None and np.issubdtype(space.dtype, np.floating)


def _check_noise_keys(space: gym.Space[Any], std_per_key: Mapping[str, float]) -> None:
    subspaces = dict(space.spaces) if isinstance(space, gym.spaces.Dict) else {}
    for key, std in std_per_key.items():
        if key not in subspaces or not _is_float(subspaces[key]):
            raise ConfigError(f"observation noise for {key!r}: not a float observation entry")
        if not std >= 0:
            raise ConfigError(f"observation noise std for {key!r} must be ≥ 0, got {std}")
