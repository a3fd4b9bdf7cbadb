"""Run episodes on a robot: rate loop, safety layer and asynchronous chunked inference.

Every tick: observe → hand the observation to the policy worker (never waiting) → adopt any
finished chunk into the chunk executor → the action for this tick → map it to a driver
command → safety layer → driver → log what was actually sent. The loop's clock is the driver:
a simulator advances physics while waiting (fast, or paced to the wall clock), a real arm
waits wall time; the code is the same.

A policy failure (exception or dead worker) latches the e-stop, sends a hold command and
re-raises the error; nothing already logged is lost.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from robolearn.control.inference import AsyncInference, Chunk, PolicyWorkerError
from robolearn.control.rate import RateLoop
from robolearn.control.safety import SafeCommand, SafetyLayer
from robolearn.core.chunking import ChunkExecutor, make_executor
from robolearn.core.types import (
    Command,
    CommandError,
    ConfigError,
    PhysicsDivergedError,
    RobotState,
)
from robolearn.drivers.base import Driver

log = logging.getLogger("robolearn.control")
Obs = dict[str, np.ndarray]


class RobotIO(Protocol):
    """A driver with a task's observation and action conventions (a Franka task env is one)."""

    @property
    def driver(self) -> Driver: ...

    def observe_with_state(self) -> tuple[Obs, RobotState]:
        """The observation the policy sees, and the robot state it came from."""
        ...

    def action_to_command(self, action: np.ndarray) -> Command:
        """Map a policy action to a driver command; CommandError if it is malformed."""
        ...

    def is_success(self) -> bool:
        """Whether the task is solved (False where a task cannot tell)."""
        ...


@dataclass(frozen=True)
class RunConfig:
    """How episodes run."""

    hz: float = 50.0
    """Control rate; refused at start if above the driver's ``max_control_hz``."""
    max_ticks: int = 250
    """Episode length in ticks."""
    smoothing: Literal["latest", "ensemble", "blend"] = "latest"
    """Chunk executor: newest chunk, ACT temporal ensembling, or crossfade between chunks."""
    ensemble_k: float = 0.01
    """Temporal-ensembling weight decay (ACT's m)."""
    blend_ticks: int = 4
    """Crossfade length for ``blend``."""
    overrun: Literal["skip", "catch_up"] = "skip"
    """What the rate loop does after a late tick."""
    stop_on_success: bool = False
    """End the episode at the first tick the task reports success."""


@dataclass
class EpisodeLog:
    """What one episode did, tick by tick, with the command actually sent."""

    ticks: list[int] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    q: list[np.ndarray] = field(default_factory=list)
    ee_pos: list[np.ndarray] = field(default_factory=list)
    gripper_width: list[float] = field(default_factory=list)
    action: list[np.ndarray] = field(default_factory=list)
    """The policy's action for the tick (NaN where none was available)."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """The command the driver applied (after the safety layer and the driver's own clipping)."""
    interventions: list[tuple[str, ...]] = field(default_factory=list)
    obs_age_ticks: list[int] = field(default_factory=list)
    """Ticks between the observation behind the tick's action and the tick (-1: no action)."""
    latency_s: list[float] = field(default_factory=list)
    """Wall time from the observation behind the tick's action to its command (NaN: none)."""
    success: bool = False
    error: str | None = None
    has_gripper: bool = True
    """Whether the robot has a gripper beside its joints (ALOHA's grippers are joints): the
    dataset's state and action then end with the gripper width."""
    timing: dict[str, Any] = field(default_factory=dict)
    safety_counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Scalars for reports: length, success, holds, latency, timing, interventions."""
        latency = np.array([x for x in self.latency_s if np.isfinite(x)])
        return {
            "ticks": len(self.ticks),
            "success": self.success,
            "error": self.error,
            "ticks_without_action": int(sum(a < 0 for a in self.obs_age_ticks)),
            "latency_ms_p50": _pct_ms(latency, 50),
            "latency_ms_p99": _pct_ms(latency, 99),
            "timing": self.timing,
            "safety_counts": self.safety_counts,
        }

    def save(self, folder: Path) -> None:
        """``steps.npz`` (arrays per tick) and ``summary.json`` in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / "steps.npz", **self._arrays())
        (folder / "summary.json").write_text(json.dumps(self.summary(), indent=2, default=str))

    def dataset_features(self) -> dict[str, Any]:
        """LeRobot-dataset features of :meth:`dataset_frames` (``robolearn deploy`` logs)."""
        from robolearn.data.features import Feature

        dof, width = len(self.q[0]), int(np.asarray(self.action[0]).size)
        size = dof + int(self.has_gripper)
        return {
            "observation.state": Feature("float32", (size,)),
            "observation.ee_pos": Feature("float32", (3,)),
            "action": Feature("float32", (size,)),
            "policy.action": Feature("float32", (width,)),
            "policy.action_valid": Feature("bool", (1,)),
            "control.latency_s": Feature("float32", (1,)),
            "control.obs_age_ticks": Feature("int64", (1,)),
            "safety.intervened": Feature("bool", (1,)),
        }

    def dataset_frames(self) -> list[dict[str, np.ndarray]]:
        """One frame per tick: the state, the command sent in joint space (joint targets +
        gripper width; a tick without a joint target holds the measured joints), the policy's
        action (zeros where it had none, flagged invalid), latency, staleness, interventions."""
        arrays = self._arrays()
        q = arrays["q"]
        sent_q = np.where(np.isnan(arrays["sent_joint_position"]), q, arrays["sent_joint_position"])
        grip = arrays["gripper_width"]
        sent_grip = np.where(
            np.isnan(arrays["sent_gripper_width"]), grip, arrays["sent_gripper_width"]
        )
        if not self.has_gripper:
            grip, sent_grip = np.zeros((len(q), 0)), np.zeros((len(q), 0))
        action = arrays["action"].reshape(len(q), -1)
        valid = np.isfinite(action).all(axis=1)
        latency = np.nan_to_num(arrays["latency_s"], nan=-1.0)
        return [
            {
                "observation.state": np.append(q[t], grip[t]).astype(np.float32),
                "observation.ee_pos": arrays["ee_pos"][t].astype(np.float32),
                "action": np.append(sent_q[t], sent_grip[t]).astype(np.float32),
                "policy.action": np.nan_to_num(action[t]).astype(np.float32),
                "policy.action_valid": np.array([valid[t]]),
                "control.latency_s": np.array([latency[t]], np.float32),
                "control.obs_age_ticks": np.array([arrays["obs_age_ticks"][t]], np.int64),
                "safety.intervened": np.array([arrays["intervened"][t]]),
            }
            for t in range(len(q))
        ]

    def _arrays(self) -> dict[str, Any]:
        sent_q = [s.get("joint_position", np.full(len(self.q[0]), np.nan)) for s in self.sent]
        sent_grip = [s.get("gripper_width", np.nan) for s in self.sent]
        return {
            "tick": np.array(self.ticks),
            "time_s": np.array(self.time_s),
            "q": np.array(self.q),
            "ee_pos": np.array(self.ee_pos),
            "gripper_width": np.array(self.gripper_width),
            "action": np.array(self.action),
            "sent_joint_position": np.array(sent_q, dtype=np.float64),
            "sent_gripper_width": np.array(sent_grip, dtype=np.float64),
            "obs_age_ticks": np.array(self.obs_age_ticks),
            "latency_s": np.array(self.latency_s),
            "intervened": np.array([bool(i) for i in self.interventions]),
        }


def _error_line(exc: BaseException) -> str:
    """Headline and final (exception) line of an error whose text may hold a traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"


def _pct_ms(values_s: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values_s, q) * 1e3) if values_s.size else None


def check_action_shape(io_action_shape: tuple[int, ...], chunk_shape: tuple[int, int]) -> None:
    """Refuse a policy whose action size does not match the robot's action space."""
    if tuple(io_action_shape) != (chunk_shape[1],):
        raise ConfigError(
            f"the policy produces actions of size {chunk_shape[1]} but the robot's action "
            f"space has shape {tuple(io_action_shape)}; use a policy trained for this robot "
            "and control mode"
        )


class EpisodeRunner:
    """Runs episodes of ``io`` under ``safety`` with the policy behind ``inference``."""

    def __init__(
        self, io: RobotIO, inference: AsyncInference, safety: SafetyLayer, cfg: RunConfig
    ) -> None:
        self.io, self.inference, self.safety, self.cfg = io, inference, safety, cfg
        # Period errors are measured on the wall clock whenever the robot runs in real time.
        self.loop = RateLoop.for_driver(
            io.driver, cfg.hz, overrun=cfg.overrun, wall_time=io.driver.realtime
        )
        self._executor: ChunkExecutor = make_executor(
            cfg.smoothing, cfg.ensemble_k, cfg.blend_ticks
        )
        self._obs_wall_s: dict[int, float] = {}  # perf_counter time of each tick's observation
        self._newest_obs_tick = -1
        self.last_log = EpisodeLog()

    def run_episode(self) -> EpisodeLog:
        """One episode from the robot's current state. Re-raises a policy failure after
        holding the robot; the log of the ticks before it is kept in ``self.last_log``. A
        simulation that diverges ends the episode as a failure with the reason in ``error``."""
        self.last_log = episode = EpisodeLog(has_gripper=self.io.driver.spec.gripper is not None)
        counts_before = self.safety.counts  # the layer counts over its life; logs per episode
        self._start_episode()
        try:
            for _ in range(self.cfg.max_ticks):
                if self._tick(self.loop.tick(), episode):
                    break
        except PolicyWorkerError as exc:
            self._safe_stop(episode, exc)
            raise
        except PhysicsDivergedError as exc:  # a simulated robot only: a failed episode
            episode.error, episode.success = str(exc), False
            log.warning("episode ended: %s", exc)
        finally:
            episode.timing = self.loop.stats.summary()
            episode.safety_counts = {
                kind: n - counts_before.get(kind, 0) for kind, n in self.safety.counts.items()
            }
        return episode

    def _start_episode(self) -> None:
        self.inference.reset()
        self._executor.reset()
        self._obs_wall_s.clear()
        self._newest_obs_tick = -1
        _, state = self.io.observe_with_state()
        self.safety.reset(state)
        self.loop.restart()
        self.loop.stats.clear()  # figures per episode

    def _tick(self, tick: int, episode: EpisodeLog) -> bool:
        loop = self.loop
        with loop.section("observe"):
            obs, state = self.io.observe_with_state()
            t_obs = self.io.driver.now()
            self._obs_wall_s[tick] = time.perf_counter()
        with loop.section("infer"):
            self.inference.submit(obs, t_obs, tick)
            self._adopt(self.inference.poll(tick))
            action = self._executor.action(tick)
        with loop.section("command"):
            safe, applied = self._send(action, state, tick)
        with loop.section("record"):
            self._record(episode, tick, state, action, safe, applied)
            episode.success = episode.success or self.io.is_success()
        return self.cfg.stop_on_success and episode.success

    def _adopt(self, chunk: Chunk | None) -> None:
        if chunk is None:
            return
        self._executor.add(chunk.actions, chunk.obs_tick)
        self._newest_obs_tick = chunk.obs_tick
        for old in [t for t in self._obs_wall_s if t < chunk.obs_tick]:
            del self._obs_wall_s[old]

    def _send(
        self, action: np.ndarray | None, state: RobotState, tick: int
    ) -> tuple[SafeCommand, Command]:
        # A chunk action counts as fresh: executing an older chunk open-loop is the design. A
        # stalled policy runs out of chunk (action None), and then the watchdog holds.
        cmd = None
        if action is not None:
            try:
                cmd = self.io.action_to_command(action)
            except CommandError as exc:  # NaN/inf or misshapen policy output: hold instead
                log.warning("tick %d: policy action rejected: %s", tick, exc)
        safe = self.safety.filter(cmd, state, self.io.driver.now())
        return safe, self.io.driver.command(safe.command)

    def _record(
        self,
        episode: EpisodeLog,
        tick: int,
        state: RobotState,
        action: np.ndarray | None,
        safe: SafeCommand,
        applied: Command,
    ) -> None:
        has_action = action is not None
        obs_tick = self._newest_obs_tick if has_action else -1
        episode.ticks.append(tick)
        episode.time_s.append(state.timestamp)
        episode.q.append(state.q)
        episode.ee_pos.append(state.ee_pos)
        episode.gripper_width.append(state.gripper_width)
        width = self.inference.chunk_shape[1]
        episode.action.append(np.asarray(action) if has_action else np.full(width, np.nan))
        episode.sent.append(applied.to_dict())
        episode.interventions.append(tuple(str(i.value) for i in safe.interventions))
        episode.obs_age_ticks.append(tick - obs_tick if has_action else -1)
        t_src = self._obs_wall_s.get(obs_tick, np.nan) if has_action else np.nan
        episode.latency_s.append(time.perf_counter() - t_src)

    def _safe_stop(self, episode: EpisodeLog, exc: PolicyWorkerError) -> None:
        episode.error = _error_line(exc)
        self.safety.estop.trigger(f"policy failed: {episode.error}")
        _, state = self.io.observe_with_state()
        safe = self.safety.filter(None, state, self.io.driver.now())
        self.io.driver.command(safe.command)
        # the cause travels in the re-raised error (callers print it once); the log says what
        # the loop did about it
        log.warning("policy failed: e-stop latched, robot held")
