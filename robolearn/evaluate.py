"""Policy evaluation in simulation: N seeded episodes across worker processes, success rate
with a 95 % Wilson interval, mp4s of the first rollouts, and a JSON + HTML report.

::

    result = evaluate(EvalSpec(policy="runs/lift/checkpoints/last", episodes=50, workers=2))
    result.success_rate, result.ci95

Episode ``k`` resets the env with ``seed + k`` and the policy with the same seed, so a run is
reproducible whatever the number of workers. Success means the task is solved at the last
step of its time limit (as for the scripted experts); ``first_success_step`` is reported too.
An episode whose simulation diverges (:class:`~robolearn.core.types.PhysicsDivergedError`)
is a failed episode with the reason in ``failure``; the run goes on.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.core.types import ConfigError, PhysicsDivergedError

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95 % by default)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EvalSpec:
    """What to evaluate and how."""

    policy: str
    """A policy folder, or "scripted" for the task's expert."""
    env: str | None = None
    """Registered env id; default: the env the policy's training data came from."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env options on top of the policy's recorded ones."""
    randomize: str | None = None
    """Domain randomization during the episodes: a preset of
    :data:`robolearn.envs.randomization.PRESETS` or a JSON file; each episode's draws follow
    from its seed."""
    episodes: int = 50
    workers: int = 2
    """Parallel env processes."""
    seed: int = 100_000
    """Episode k uses seed + k (far from the seeds demonstrations are recorded with)."""
    videos: int = 4
    """Episodes (the first ones) saved as mp4."""
    out: Path | None = None
    """Folder for eval.json, report.html and videos/."""
    device: str = "cpu"
    robot: str | None = None
    """Evaluate on a robot from :mod:`robolearn.drivers.registry` instead of in simulation (one
    process; success is judged by ``judge``, by default the operator at the terminal)."""
    robot_options: dict[str, str] = field(default_factory=dict)
    episode_seconds: float = 20.0
    """Episode length on a robot."""
    cameras: list[str] = field(default_factory=list)
    """Cameras on a robot (:func:`robolearn.drivers.registry.open_cameras` strings)."""
    judge: Callable[[int], bool] | None = None
    """On a robot: episode index → success (default: ask the operator)."""


@dataclass
class EpisodeResult:
    """One evaluation episode."""

    episode: int
    seed: int
    success: bool
    first_success_step: int | None
    steps: int
    total_reward: float
    seconds: float
    video: str | None = None
    failure: str | None = None
    """Why the episode ended early as a failure (the simulation diverged), if it did."""


@dataclass
class EvalResult:
    """An evaluation run."""

    env: str
    policy: str
    episodes: list[EpisodeResult]
    seconds: float
    backend: str = "mujoco"
    """The simulator the episodes ran in, or ``robot`` for hardware."""
    randomize: str | None = None
    """The domain randomization the episodes ran under, if any."""

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / max(1, len(self.episodes))

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.successes, len(self.episodes))

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "env": self.env,
            "backend": self.backend,
            "randomize": self.randomize,
            "policy": self.policy,
            "episodes": len(self.episodes),
            "successes": self.successes,
            "success_rate": self.success_rate,
            "ci95": list(self.ci95),
            "mean_steps": float(np.mean([e.steps for e in self.episodes])),
            "mean_reward": float(np.mean([e.total_reward for e in self.episodes])),
            "diverged": sum(e.failure is not None for e in self.episodes),
            "seconds": self.seconds,
        }


def env_for_policy(
    policy: str, env: str | None, overrides: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The env id and options to evaluate ``policy`` in (its recorded env unless given)."""
    recorded: dict[str, Any] = {}
    if policy != "scripted":
        from robolearn.policies.base import read_policy_config

        recorded = read_policy_config(policy)[1].env
    env_id = env or recorded.get("id")
    if env_id is None:
        raise ConfigError(
            f"{policy} does not say which env it was trained in; pass --env ID "
            "(robolearn envs lists them)"
        )
    kwargs = dict(recorded.get("kwargs", {})) if env_id == recorded.get("id") else {}
    kwargs.update(overrides)
    for key in ("cameras", "image_size"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    return env_id, kwargs


def evaluate(spec: EvalSpec) -> EvalResult:
    """Run ``spec.episodes`` episodes over ``spec.workers`` processes; write the report."""
    if spec.episodes < 1 or spec.workers < 1:
        raise ConfigError("--episodes and --workers must be ≥ 1")
    from robolearn.policies.base import resolve_device

    spec = replace(spec, device=resolve_device(spec.device))
    if spec.robot is not None:
        return _evaluate_on_robot(spec)
    env_id, kwargs = env_for_policy(spec.policy, spec.env, spec.env_kwargs)
    _check_spec(spec.policy, env_id, kwargs)
    if spec.randomize is not None:
        from robolearn.envs.randomization import DomainRandomizationConfig

        DomainRandomizationConfig.load(spec.randomize)  # a bad name fails before any worker
    video_dir = spec.out / "videos" if spec.out is not None and spec.videos > 0 else None
    shards = [list(range(w, spec.episodes, spec.workers)) for w in range(spec.workers)]
    shards = [s for s in shards if s]
    t0 = time.perf_counter()
    if len(shards) == 1:
        rows = _run_shard(spec, env_id, kwargs, shards[0], video_dir)
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(len(shards), mp_context=ctx) as pool:
            futures = [pool.submit(_run_shard, spec, env_id, kwargs, s, video_dir) for s in shards]
            rows = [r for f in futures for r in f.result()]
    rows.sort(key=lambda r: r.episode)
    backend = str(kwargs.get("backend", "mujoco"))
    seconds = time.perf_counter() - t0
    result = EvalResult(env_id, spec.policy, rows, seconds, backend, spec.randomize)
    if spec.out is not None:
        write_report(result, spec.out)
    return result


def _evaluate_on_robot(spec: EvalSpec) -> EvalResult:
    """Episodes on hardware, one after another; the judge (operator) decides success."""
    from robolearn.drivers.registry import open_cameras, open_robot
    from robolearn.envs.robot_env import RobotEnv
    from robolearn.policies.base import check_policy_spec, load_policy
    from robolearn.policies.env_io import env_observation_shapes

    assert spec.robot is not None
    if spec.policy == "scripted":
        raise ConfigError("scripted experts exist only for the simulated tasks; pass --policy")
    policy = load_policy(spec.policy, spec.device)
    hz = float(policy.config.env.get("kwargs", {}).get("control_hz", 20.0))
    judge = spec.judge or ask_operator
    t0 = time.perf_counter()
    with open_robot(spec.robot, spec.robot_options) as driver:
        env = RobotEnv(
            driver,
            cameras=open_cameras(spec.cameras),
            control_hz=hz,
            episode_seconds=spec.episode_seconds,
        )
        try:
            check_policy_spec(policy.config, env_observation_shapes(env), env.action_space.shape[0])
            rows = [_episode(env, policy, spec, k, None) for k in range(spec.episodes)]
        finally:
            env.close()
    for row in rows:
        row.success = judge(row.episode)
    result = EvalResult(f"robot:{spec.robot}", spec.policy, rows, time.perf_counter() - t0, "robot")
    if spec.out is not None:
        write_report(result, spec.out)
    return result


def ask_operator(episode: int) -> bool:
    """Ask at the terminal whether ``episode`` succeeded."""
    import sys

    if not sys.stdin.isatty():
        raise ConfigError(
            "evaluating on a robot asks the operator after each episode; run it in a terminal"
        )
    while True:
        answer = input(f"episode {episode}: success? [y/n] ").strip().lower()
        if answer in ("y", "n"):
            return answer == "y"


def _check_spec(policy: str, env_id: str, kwargs: dict[str, Any]) -> None:
    if policy == "scripted":
        return
    from robolearn import envs
    from robolearn.policies.base import check_policy_spec, read_policy_config
    from robolearn.policies.env_io import env_observation_shapes

    env = envs.make(env_id, **kwargs)
    try:
        shapes = env_observation_shapes(env)
        action_dim = int(np.prod(env.action_space.shape or ()))
    finally:
        env.close()
    check_policy_spec(read_policy_config(policy)[1], shapes, action_dim)


def _run_shard(
    spec: EvalSpec, env_id: str, kwargs: dict[str, Any], episodes: list[int], video_dir: Path | None
) -> list[EpisodeResult]:
    """Episodes ``episodes`` in this process (a worker, or the caller for one shard)."""
    import torch

    from robolearn import envs

    torch.set_num_threads(1)
    render = video_dir is not None and any(k < spec.videos for k in episodes)
    env = envs.make(env_id, **kwargs, render_mode="rgb_array" if render else None)
    if spec.randomize is not None:
        from robolearn.envs.randomization import DomainRandomization, DomainRandomizationConfig

        env = DomainRandomization(env, DomainRandomizationConfig.load(spec.randomize))
    policy = _load(spec, env)
    try:
        return [_episode(env, policy, spec, k, video_dir) for k in episodes]
    finally:
        env.close()


def _load(spec: EvalSpec, env: Any) -> Any:
    if spec.policy == "scripted":
        from robolearn import envs

        return _ScriptedAdapter(envs.make_expert(env))
    from robolearn.policies.base import load_policy

    return load_policy(spec.policy, spec.device)


class _ScriptedAdapter:
    """The scripted expert behind the policy calls evaluation makes."""

    def __init__(self, expert: Any) -> None:
        self.expert = expert

    def reset(self, seed: int | None = None) -> None:
        self.expert.reset(seed)

    def act(self, obs: Any) -> np.ndarray:
        return np.asarray(self.expert.act(obs))


def _episode(
    env: Any, policy: Any, spec: EvalSpec, k: int, video_dir: Path | None
) -> EpisodeResult:
    from robolearn.policies.env_io import policy_inputs

    t0, seed = time.perf_counter(), spec.seed + k
    obs, info = env.reset(seed=seed)
    policy.reset(seed=seed)
    frames: list[np.ndarray] | None = [] if video_dir is not None and k < spec.videos else None
    first, total, steps, done, failure = None, 0.0, 0, False, None
    while not done:
        if frames is not None:
            frames.append(env.render())
        inputs = obs if isinstance(policy, _ScriptedAdapter) else policy_inputs(obs)
        try:
            obs, reward, terminated, truncated, info = env.step(policy.act(inputs))
        except PhysicsDivergedError as err:  # a failed episode, with its reason
            failure, info, done = str(err), {"is_success": False}, True
            continue
        steps, total = steps + 1, total + float(reward)
        if info.get("is_success") and first is None:
            first = steps
        done = terminated or truncated
    video = _save_video(frames, video_dir, k, env) if frames else None
    success = bool(info.get("is_success"))
    seconds = time.perf_counter() - t0
    return EpisodeResult(k, seed, success, first, steps, total, seconds, video, failure)


def _save_video(frames: list[np.ndarray], video_dir: Path | None, k: int, env: Any) -> str:
    from robolearn.data.video import VideoWriter

    assert video_dir is not None
    video_dir.mkdir(parents=True, exist_ok=True)
    path = video_dir / f"episode_{k:03d}.mp4"
    fps = float(env.metadata.get("render_fps", 20))
    with VideoWriter(path, fps=fps) as writer:
        for frame in frames:
            writer.write(frame)
    return str(path.name)


def write_report(result: EvalResult, out: Path) -> None:
    """``eval.json`` (summary + episodes) and ``report.html`` (plots inline)."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"summary": result.summary(), "episodes": [asdict(e) for e in result.episodes]}
    (out / "eval.json").write_text(json.dumps(data, indent=2))
    (out / "report.html").write_text(_html(result))


def _html(result: EvalResult) -> str:
    s = result.summary()
    lo, hi = s["ci95"]
    rows = "".join(
        f"<tr><td>{e.episode}</td><td>{e.seed}</td><td>{'yes' if e.success else 'no'}</td>"
        f"<td>{e.first_success_step or '-'}</td><td>{e.steps}</td><td>{e.total_reward:.2f}</td>"
        f"<td>{_video_cell(e)}</td><td>{html.escape(e.failure or '')}</td></tr>"
        for e in result.episodes
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>robolearn eval</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px}</style></head>"
        f"<body><h1>Evaluation: {result.env}</h1><p>Policy: <code>{result.policy}</code></p>"
        f"<p><b>Success {s['successes']}/{s['episodes']} = {100 * s['success_rate']:.1f} %</b> "
        f"(95 % Wilson interval {100 * lo:.1f}–{100 * hi:.1f} %), "
        f"{s['seconds']:.1f} s.</p><img src='data:image/png;base64,{_plots_png(result)}'>"
        "<table><tr><th>episode</th><th>seed</th><th>success</th><th>first success step</th>"
        f"<th>steps</th><th>return</th><th>video</th><th>failure</th></tr>{rows}</table>"
        "</body></html>"
    )


def _video_cell(e: EpisodeResult) -> str:
    if e.video is None:
        return ""
    return f"<video src='videos/{e.video}' width='240' controls></video>"


def _hist(ax: Any, values: list[float] | list[int], integer: bool = False) -> None:
    """A histogram with readable axes: identical values make one bar centred in a visible
    range (no offset notation), integer data gets integer ticks."""
    from matplotlib.ticker import MaxNLocator

    data = np.asarray(values, dtype=np.float64)
    spread = float(np.ptp(data))
    if spread <= 1e-6 * max(1.0, float(np.abs(data).max())):
        value, half = float(data[0]), max(abs(float(data[0])) * 0.05, 0.5)
        ax.hist(data, bins=[value - half / 2, value + half / 2])
        ax.set_xlim(value - 2 * half, value + 2 * half)
        ax.annotate(f"all {data.size}: {value:g}", (0.03, 0.9), xycoords="axes fraction")
    else:
        ax.hist(data, bins=min(20, max(1, int(spread) + 1)) if integer else 20)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _no_data(ax: Any, text: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _plots_png(result: EvalResult) -> str:
    import matplotlib.pyplot as plt

    fig = plots_figure(result)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plots_figure(result: EvalResult) -> Any:
    """The report's figure: running success rate, first success steps, episode returns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    eps = [e.episode for e in result.episodes]
    outcome = np.cumsum([e.success for e in result.episodes]) / (np.arange(len(eps)) + 1)
    axes[0].plot(eps, outcome, marker="." if len(eps) < 30 else None)
    axes[0].set(title="running success rate", xlabel="episode", ylim=(0, 1.05))
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    firsts = [e.first_success_step for e in result.episodes if e.first_success_step]
    if firsts:
        _hist(axes[1], firsts, integer=True)
    else:
        _no_data(axes[1], "no episode succeeded")
    axes[1].set(title="first success step", xlabel="step")
    _hist(axes[2], [e.total_reward for e in result.episodes])
    axes[2].set(title="episode return", xlabel="return")
    for ax in axes[1:]:
        ax.set_ylabel("episodes")
    fig.tight_layout()
    return fig
