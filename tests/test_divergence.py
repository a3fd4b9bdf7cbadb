"""A solver blow-up ends the episode with a named error, never a NaN observation: in the env
on both backends, in evaluation (a failed episode with its reason), in recording (the episode
is re-recorded, saved ones stay) and in the deploy loop. The blow-ups are real: the cube is
kicked at a speed no scene reaches, or MuJoCo's state is poisoned with NaN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robolearn import envs
from robolearn.control.recorder import RecordConfig, Recorder, ScriptedSource, dataset_features
from robolearn.core.types import PhysicsDivergedError
from robolearn.data import DatasetWriter
from robolearn.drivers.panda import BACKENDS, DIVERGED_SPEED, DIVERGED_SPIN_RAD_S, divergence
from robolearn.evaluate import EvalSpec, _episode

LIFT = "robolearn/FrankaLift-v0"


def _kick(env: Any, speed: float = 1e6) -> None:
    env.unwrapped.driver.set_object_velocity("cube", np.array([speed, 0.0, 0.0]), np.zeros(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_kicked_cube_raises_a_named_error_and_reset_recovers(backend: str) -> None:
    env = envs.make(LIFT, backend=backend)
    env.reset(seed=0)
    _kick(env)
    with pytest.raises(PhysicsDivergedError, match=f"on {backend}: the simulation diverged"):
        env.step(env.action_space.sample() * 0)
    obs, _ = env.reset(seed=0)  # a fresh episode is sound
    obs, *_ = env.step(env.action_space.sample() * 0)
    assert all(np.isfinite(v).all() for v in obs.values())
    env.close()


def test_mujoco_resetting_a_nan_state_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo writes its warning to MUJOCO_LOG.TXT in the cwd
    env = envs.make(LIFT)
    env.reset(seed=0)
    env.unwrapped.driver.data.qvel[:] = np.nan  # MuJoCo warns BADQACC and resets the state
    with pytest.raises(PhysicsDivergedError, match="mjWARN_BADQ"):
        env.step(np.zeros(4, np.float32))
    env.close()


def test_a_sound_episode_never_reports_a_fault() -> None:
    env = envs.make(LIFT)
    expert = envs.make_expert(env)
    obs, _ = env.reset(seed=1)
    expert.reset(1)
    for _ in range(60):  # grasp and lift: contacts, a moving cube
        obs, *_ = env.step(expert.act(obs))
    assert env.unwrapped.driver.physics_fault() is None
    env.close()


def test_divergence_names_the_cause() -> None:
    zero = np.zeros((1, 3))
    assert divergence(np.zeros(9), zero, zero, zero) is None
    assert divergence(np.zeros(9), zero, np.full((1, 3), 50.0), zero) is None  # a rolling cube
    assert "NaN" in str(divergence(np.array([0.0, np.nan])))
    assert "a joint moves at" in str(divergence(np.array([2 * DIVERGED_SPEED])))
    assert "an object moves at" in str(divergence(np.zeros(9), zero + 2 * DIVERGED_SPEED))
    assert "spins at" in str(divergence(np.zeros(9), zero, zero + 2 * DIVERGED_SPIN_RAD_S))
    far, inf = np.array([[20.0, 0, 0]]), np.array([[np.inf, 0, 0]])
    assert "from the base" in str(divergence(np.zeros(9), zero, zero, far))
    assert "NaN" in str(divergence(np.zeros(9), zero, zero, inf))


class _KickOnStep:
    """The scripted expert, kicking the cube before step ``at`` of episode 0 only."""

    def __init__(self, env: Any, at: int) -> None:
        self.env, self.at, self.expert = env, at, envs.make_expert(env)
        self.episode, self.steps = -1, 0

    def reset(self, seed: int | None = None) -> None:
        self.expert.reset(seed)
        self.episode, self.steps = self.episode + 1, 0

    def act(self, obs: Any) -> np.ndarray:
        self.steps += 1
        if self.episode == 0 and self.steps == self.at:
            _kick(self.env)
        return np.asarray(self.expert.act(obs))

    def next_action(self, obs: Any) -> tuple[np.ndarray, frozenset[str]]:
        return self.act(obs), frozenset()


def test_evaluation_records_a_diverged_episode_as_failed_with_its_reason() -> None:
    env = envs.make(LIFT)
    policy = _KickOnStep(env, at=5)
    spec = EvalSpec(policy="scripted", episodes=2, workers=1, videos=0)
    failed = _episode(env, policy, spec, 0, None)
    sound = _episode(env, policy, spec, 1, None)
    env.close()
    assert not failed.success and failed.steps == 4
    assert failed.failure is not None and "diverged" in failed.failure
    assert sound.success and sound.failure is None


def test_recording_rerecords_a_diverged_episode(tmp_path: Path) -> None:
    env = envs.make(LIFT).unwrapped
    source = _KickOnStep(env, at=5)
    cfg = RecordConfig(episodes=1, max_ticks=30, success_hold_ticks=None)
    with DatasetWriter(tmp_path / "data", 20.0, dataset_features(env), "panda") as writer:
        result = Recorder(env, source, writer, cfg, progress=lambda _: None).run()
        assert result.discarded == 1 and len(result.saved) == 1
        assert writer.num_episodes == 1 and writer.num_frames == 30
    env.close()


def test_recording_stops_after_diverging_three_times_in_a_row(tmp_path: Path) -> None:
    env = envs.make(LIFT).unwrapped

    class Always(ScriptedSource):
        def next_action(self, obs: Any) -> tuple[np.ndarray, frozenset[str]]:
            _kick(env)
            return super().next_action(obs)

    cfg = RecordConfig(episodes=1, max_ticks=10)
    with DatasetWriter(tmp_path / "data", 20.0, dataset_features(env), "panda") as writer:
        with pytest.raises(PhysicsDivergedError):
            Recorder(env, Always(envs.make_expert(env)), writer, cfg, progress=print).run()
        assert writer.num_episodes == 0 and not writer.recording
    env.close()
