"""Record demonstrations through the real-time control loop into a LeRobot v3 dataset.

Each tick: observe → the teleop device (or scripted expert) proposes an action → the safety
layer → the driver. The dataset's ``action`` column is the action actually sent (after the
safety layer, in the task's action space); ``teleop.action`` is what the device asked for.
Video is encoded while recording (the writer's encoder threads), so saving an episode is
quick; episodes are committed crash-safely by the writer: killing the recorder loses only the
episode in progress. An episode whose simulation diverges is discarded and recorded again
with the next seed (after three in a row the error stops the session; saved episodes stay).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from robolearn.control.rate import RateLoop
from robolearn.control.safety import SafetyConfig, SafetyLayer
from robolearn.core.observations import (
    EE_KEYS,
    PROPRIO_KEYS,
    Obs,
    action_names,
    entry_names,
    env_state_keys,
    feature_width,
    observation_features,
)
from robolearn.core.types import PhysicsDivergedError, RobotState
from robolearn.data import DatasetWriter, Feature


class ActionSource(Protocol):
    """Where actions come from while recording: a teleop device or a scripted expert."""

    def reset(self, seed: int | None = None) -> None:
        """Start an episode."""
        ...

    def next_action(self, obs: Obs) -> tuple[np.ndarray, frozenset[str]]:
        """The proposed action (the task's action space) and any session events
        ("save_episode", "rerecord_episode", "stop_recording")."""
        ...


@dataclass(frozen=True)
class RecordConfig:
    """How a recording session runs."""

    episodes: int = 10
    task: str = "demonstration"
    seed: int = 0
    hz: float = 20.0
    max_ticks: int = 200
    success_hold_ticks: int | None = 10
    """End an episode this many ticks after the task first reports success (None: never)."""
    realtime: bool = False


@dataclass
class SessionResult:
    """What a recording session did."""

    saved: list[int]
    discarded: int
    stopped_early: bool
    save_block_s: list[float]
    """Wall time ``save_episode`` blocked for, per saved episode."""
    timing: list[dict[str, Any]]


def dataset_features(env: Any) -> dict[str, Feature]:
    """The dataset features of ``env``'s observations and actions (LeRobot naming)."""
    obs = env.observe()
    state = env.state_observation()
    joints = tuple(env.driver.spec.joint_names)
    width = int(np.prod(env.action_space.shape))
    actions = action_names(str(env.control_mode), width, joints)
    feats = {
        "observation.state": _vector(state, PROPRIO_KEYS, joints),
        "observation.ee_pose": _vector(state, EE_KEYS),
        "action": Feature("float32", tuple(env.action_space.shape), actions),
        "teleop.action": Feature("float32", tuple(env.action_space.shape), actions),
        "next.reward": Feature("float32", (1,)),
        "next.success": Feature("bool", (1,)),
    }
    if env_state_keys(state):
        feats["observation.environment_state"] = _vector(state, env_state_keys(state))
    for key, value in obs.items():
        if key.endswith("_rgb"):
            feats[f"observation.images.{key[:-4]}"] = Feature("video", tuple(value.shape))
        elif key.endswith("_depth"):
            feats[f"observation.depth.{key[:-6]}"] = Feature("depth", tuple(value.shape))
    return feats


def _vector(state: Obs, keys: tuple[str, ...], joints: tuple[str, ...] = ()) -> Feature:
    """A float32 vector feature of ``keys`` of ``state``, with one name per entry."""
    names = entry_names(state, keys, joints)
    return Feature("float32", (feature_width(state, keys),), names)


def make_frame(
    env: Any,
    obs: Obs,
    robot_state: RobotState,
    sent: np.ndarray,
    proposed: np.ndarray,
    reward: float,
    success: bool,
) -> dict[str, np.ndarray]:
    """One dataset frame from the tick's observation, robot state and actions."""
    frame = observation_features(env.state_observation(robot_state), obs)
    frame.update(
        {
            "action": np.asarray(sent, np.float32),
            "teleop.action": np.asarray(proposed, np.float32),
            "next.reward": np.array([reward], np.float32),
            "next.success": np.array([success]),
        }
    )
    return frame


MAX_DIVERGED_IN_A_ROW = 3
"""Episodes in a row whose simulation may diverge before recording stops with the error."""


class Recorder:
    """Runs recording episodes of ``env`` with actions from ``source`` into ``writer``."""

    def __init__(
        self,
        env: Any,
        source: ActionSource,
        writer: DatasetWriter,
        cfg: RecordConfig,
        safety: SafetyConfig | None = None,
        progress: Callable[[str], None] | None = None,
        reset: Callable[[int], Any] | None = None,
    ) -> None:
        self.env, self.source, self.writer, self.cfg = env, source, writer, cfg
        self._reset = reset or (lambda seed: env.reset(seed=seed))
        """Starts an episode: ``env.reset``, or a wrapper's (domain randomization) reset."""
        self.safety = SafetyLayer(env.driver.spec, safety or SafetyConfig(), 1.0 / cfg.hz)
        self.loop = RateLoop.for_driver(env.driver, cfg.hz, wall_time=env.driver.realtime)
        self._progress = progress or _status_line

    def run(self) -> SessionResult:
        """Record until ``cfg.episodes`` episodes are saved or a stop event arrives."""
        result = SessionResult([], 0, False, [], [])
        attempt = 0
        diverged_in_a_row = 0
        while len(result.saved) < self.cfg.episodes:
            try:
                verdict = self._episode(self.cfg.seed + attempt)
                diverged_in_a_row = 0
            except PhysicsDivergedError as exc:  # the episode is re-recorded; saved ones stay
                diverged_in_a_row += 1
                if self.writer.recording:
                    self.writer.discard_episode()
                if diverged_in_a_row >= MAX_DIVERGED_IN_A_ROW:
                    raise
                self._progress("")
                print(f"episode discarded, re-recording with the next seed: {exc}")
                result.discarded += 1
                attempt += 1
                continue
            attempt += 1
            if verdict == "rerecord":
                self.writer.discard_episode()
                result.discarded += 1
                continue
            if verdict in ("save", "stop_save"):
                t0 = time.perf_counter()
                result.saved.append(self.writer.save_episode())
                result.save_block_s.append(time.perf_counter() - t0)
                result.timing.append(self.loop.stats.summary())
            if verdict in ("stop", "stop_save"):
                if verdict == "stop":
                    self.writer.discard_episode()
                result.stopped_early = True
                break
        self._progress("")
        return result

    def _episode(self, seed: int) -> str:
        self._reset(seed)
        self.source.reset(seed)
        _, state = self.env.observe_with_state()
        self.safety.reset(state)
        self.loop.restart()
        self.loop.stats.clear()
        self.writer.start_episode(self.cfg.task, seed=seed)
        success_since: int | None = None
        for n in range(self.cfg.max_ticks):
            tick = self.loop.tick()
            verdict, success = self._tick(tick)
            if verdict != "continue":
                return verdict
            if success and success_since is None:
                success_since = n
            self._progress(self._status(seed, n, success_since is not None))
            hold = self.cfg.success_hold_ticks
            if success_since is not None and hold is not None and n - success_since >= hold:
                return "save"
        return "save"

    def _tick(self, tick: int) -> tuple[str, bool]:
        env = self.env
        with self.loop.section("observe"):
            obs, state = env.observe_with_state()
        with self.loop.section("infer"):
            proposed, events = self.source.next_action(obs)
        if "stop_recording" in events:
            return ("stop_save" if "save_episode" in events else "stop"), False
        if "rerecord_episode" in events:
            return "rerecord", False
        with self.loop.section("command"):
            safe = self.safety.filter(env.action_to_command(proposed), state, env.driver.now())
            applied = env.driver.command(safe.command)
        with self.loop.section("record"):
            success = bool(env.is_success())
            sent = env.command_to_action(applied)
            reward = 0.0 if success else -1.0
            self.writer.add_frame(make_frame(env, obs, state, sent, proposed, reward, success))
        return ("save" if "save_episode" in events else "continue"), success

    def _status(self, seed: int, n: int, success: bool) -> str:
        done = self.writer.num_episodes
        flag = "success" if success else "       "
        return f"episode {done + 1}/{self.cfg.episodes}  seed {seed}  tick {n + 1:4d}  {flag}"


def _status_line(text: str) -> None:
    """Rewrite one terminal line (the progress display); empty text ends it. Only on a
    terminal: logs and CI output get the per-episode summary lines instead."""
    if not sys.stderr.isatty():
        return
    if text:
        sys.stderr.write("\r" + text.ljust(60))
    else:
        sys.stderr.write("\n")
    sys.stderr.flush()


class ScriptedSource:
    """The task's scripted expert as an action source (never sends events)."""

    def __init__(self, expert: Any) -> None:
        self.expert = expert

    def reset(self, seed: int | None = None) -> None:
        self.expert.reset(seed)

    def next_action(self, obs: Obs) -> tuple[np.ndarray, frozenset[str]]:
        return self.expert.act(obs), frozenset()
