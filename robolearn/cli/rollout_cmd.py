"""``robolearn rollout``: run a policy on a task for N seeded episodes and report success.

Episode ``k`` (from 0) is reset with seed ``seed + k``, so a run is reproducible. An
episode succeeds when ``info["is_success"]`` is true on its last step.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import gymnasium as gym
import numpy as np

from robolearn.cli.common import SimBackendName, Subcommand
from robolearn.core.paths import require_mp4
from robolearn.core.types import ConfigError
from robolearn.data.video import VideoWriter

Log = Callable[[str], None]
FrameSink = Callable[[np.ndarray], None]


@dataclass
class RolloutConfig:
    """Run a policy on one task for several seeded episodes; print and save the success rate."""

    env: str
    """Registered env id (see `robolearn envs`)."""
    policy: str = "scripted"
    """"scripted" (the task's expert) or a policy folder (robolearn train's checkpoints)."""
    episodes: int = 10
    """Number of episodes."""
    seed: int = 0
    """Episode k is reset with seed + k."""
    video: Path | None = None
    """Write an mp4 of all episodes here."""
    summary: Path | None = None
    """Write a JSON summary here."""
    control_mode: Literal["ee_delta", "ee_delta_pose", "joint_position", "joint_torque"] | None = (
        None
    )
    """Action space of the env; none keeps the env's own (ee_delta)."""
    obs_mode: Literal["state", "image"] | None = None
    """Observation kind; none keeps the env's own."""
    max_steps: int | None = None
    """Step cap per episode; none uses the env's time limit."""
    backend: SimBackendName = "mujoco"
    """Simulator: mujoco or pybullet (the same task, robot, cameras and spaces)."""

    def __post_init__(self) -> None:
        if self.policy != "scripted" and not (Path(self.policy) / "config.json").is_file():
            raise ConfigError(
                f'--policy {self.policy!r} is neither "scripted" nor a policy folder '
                "(a folder with config.json + model.safetensors, from robolearn train)"
            )
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be at least 1, got {self.episodes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.video is not None:
            require_mp4(self.video, "--video")
        if self.summary is not None and self.summary.is_dir():
            raise ConfigError(f"--summary {self.summary} is a folder; give a .json file path")


class Expert(Protocol):
    """The scripted expert ``envs.make_expert(env)`` returns."""

    def reset(self, seed: int | None) -> None:
        """Start a new episode."""

    def act(self, obs: Any) -> Any:
        """An action in the env's action space for ``obs``."""


@dataclass(frozen=True)
class EpisodeResult:
    """How one episode ended."""

    seed: int
    success: bool
    length: int
    """Steps taken."""


@dataclass(frozen=True)
class RolloutSummary:
    """The numbers ``--summary`` writes as JSON."""

    env: str
    episodes: int
    successes: int
    success_rate: float
    """``successes / episodes``, in [0, 1]."""
    mean_episode_length: float
    """Mean steps per episode."""
    seconds: float
    """Wall time of the episodes (env creation excluded)."""

    @classmethod
    def from_results(
        cls, env_id: str, results: list[EpisodeResult], seconds: float
    ) -> RolloutSummary:
        """Aggregate per-episode results."""
        successes = sum(r.success for r in results)
        return cls(
            env=env_id,
            episodes=len(results),
            successes=successes,
            success_rate=successes / len(results),
            mean_episode_length=float(np.mean([r.length for r in results])),
            seconds=round(seconds, 3),
        )

    def rate_line(self) -> str:
        """``success rate: 18/20 (90%)``."""
        return f"success rate: {self.successes}/{self.episodes} ({100 * self.success_rate:.0f}%)"


def env_kwargs(cfg: RolloutConfig) -> dict[str, Any]:
    """Keyword arguments for ``envs.make``: only what the user set, plus rendering for video."""
    kwargs: dict[str, Any] = {}
    if cfg.backend != "mujoco":
        kwargs["backend"] = cfg.backend
    if cfg.control_mode is not None:
        kwargs["control_mode"] = cfg.control_mode
    if cfg.obs_mode is not None:
        kwargs["obs_mode"] = cfg.obs_mode
    if cfg.video is not None:
        kwargs["render_mode"] = "rgb_array"
    return kwargs


def episode_step_cap(env: gym.Env[Any, Any], max_steps: int | None) -> int:
    """``max_steps`` if given, else the env's time limit; ConfigError if there is neither."""
    if max_steps is not None:
        return max_steps
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return int(env.spec.max_episode_steps)
    raise ConfigError("this env has no time limit (spec.max_episode_steps); pass --max-steps")


def video_fps(env: gym.Env[Any, Any]) -> float:
    """Frame rate for videos: the env's ``render_fps``, else its ``control_hz``, else 30."""
    fps = env.metadata.get("render_fps") or getattr(env.unwrapped, "control_hz", None)
    return float(fps) if fps else 30.0


def render_frame(env: gym.Env[Any, Any]) -> np.ndarray:
    """``env.render()`` checked to be one RGB frame."""
    frame = env.render()
    if not isinstance(frame, np.ndarray):
        raise ConfigError(
            f"env.render() returned {type(frame).__name__}, not an (H, W, 3) image; "
            'was the env made with render_mode="rgb_array"?'
        )
    return frame


def run_episode(
    env: gym.Env[Any, Any],
    expert: Expert,
    seed: int,
    max_steps: int,
    on_frame: FrameSink | None = None,
) -> EpisodeResult:
    """Run one episode from ``env.reset(seed=seed)``; ``on_frame`` gets every rendered frame."""
    obs, info = env.reset(seed=seed)
    expert.reset(seed)
    if on_frame is not None:
        on_frame(render_frame(env))
    length = 0
    while length < max_steps:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        length += 1
        if on_frame is not None:
            on_frame(render_frame(env))
        if terminated or truncated:
            break
    return EpisodeResult(seed=seed, success=bool(info.get("is_success", False)), length=length)


def episode_line(index: int, total: int, result: EpisodeResult) -> str:
    """``episode  3/20  seed 2  success  steps 87``."""
    width = len(str(total))
    outcome = "success" if result.success else "failure"
    return (
        f"episode {index + 1:>{width}}/{total}  seed {result.seed}  {outcome}  "
        f"steps {result.length}"
    )


@contextlib.contextmanager
def _frame_sink(path: Path | None, fps: float) -> Iterator[FrameSink | None]:
    """A VideoWriter's ``write`` when ``path`` is set, else ``None``."""
    if path is None:
        yield None
        return
    with VideoWriter(path, fps=fps) as writer:
        yield writer.write


class _SavedPolicy:
    """A saved policy behind the expert's ``reset(seed)`` / ``act(obs)`` calls."""

    def __init__(self, folder: str) -> None:
        from robolearn.policies.base import load_policy

        self.policy = load_policy(folder)

    def reset(self, seed: int | None = None) -> None:
        self.policy.reset(seed=seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        from robolearn.policies.env_io import policy_inputs

        return self.policy.act(policy_inputs(obs))


def _saved(folder: str) -> Expert:
    return _SavedPolicy(folder)


def rollout(cfg: RolloutConfig, log: Log = print) -> RolloutSummary:
    """Run ``cfg.episodes`` episodes, logging one line each; write the video and summary."""
    from robolearn import envs  # here, not at the top: importing the tasks loads MuJoCo

    env = envs.make(cfg.env, **env_kwargs(cfg))
    try:
        expert = envs.make_expert(env) if cfg.policy == "scripted" else _saved(cfg.policy)
        max_steps = episode_step_cap(env, cfg.max_steps)
        start = time.perf_counter()
        results = []
        with _frame_sink(cfg.video, video_fps(env)) as on_frame:
            for k in range(cfg.episodes):
                results.append(run_episode(env, expert, cfg.seed + k, max_steps, on_frame))
                log(episode_line(k, cfg.episodes, results[-1]))
        summary = RolloutSummary.from_results(cfg.env, results, time.perf_counter() - start)
    finally:
        env.close()
    if cfg.summary is not None:
        write_summary(summary, cfg.summary)
    return summary


def write_summary(summary: RolloutSummary, path: Path) -> None:
    """Write ``summary`` as indented JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(summary), indent=2) + "\n")


def run(cfg: RolloutConfig) -> int:
    """Run the rollout and print the success rate and where files went."""
    summary = rollout(cfg)
    print(summary.rate_line())
    if cfg.video is not None:
        print(f"video: {cfg.video}")
    if cfg.summary is not None:
        print(f"summary: {cfg.summary}")
    return 0


COMMAND = Subcommand(
    name="rollout",
    help="run a policy on a task for N seeded episodes; report the success rate",
    config=RolloutConfig,
    run=run,
)
