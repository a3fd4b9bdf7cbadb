"""``robolearn eval``: success rate of a policy over seeded episodes in parallel envs, with a
95 % Wilson interval, mp4s of the first rollouts and a JSON + HTML report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robolearn.cli.common import (
    ControlModeName,
    ObsModeName,
    SimBackendName,
    Subcommand,
    env_overrides,
)
from robolearn.cli.deploy_cmd import parse_options
from robolearn.core.paths import require_folder, require_positive
from robolearn.core.types import ConfigError
from robolearn.evaluate import EvalResult, EvalSpec, evaluate


@dataclass
class EvalConfig:
    """Evaluate a saved policy (or the scripted expert) in simulation."""

    policy: str = ""
    """Policy folder (e.g. runs/lift/checkpoints/last), or "scripted"."""
    env: str | None = None
    """Env id; default: the env the policy's training data was recorded in."""
    obs_mode: ObsModeName | None = None
    """Observation mode of the env; default: the one the policy's data was recorded in."""
    image_size: list[int] | None = None
    """Camera image HEIGHT WIDTH; default: the policy's."""
    control_mode: ControlModeName | None = None
    """Action space of the env; default: the policy's."""
    backend: SimBackendName | None = None
    """Simulator: mujoco or pybullet; default: the one the policy's data was recorded in.
    Evaluating in the other one is the sim-to-sim check."""
    randomize: str | None = None
    """Domain randomization during evaluation: none, dynamics, visual, full, or a JSON file
    (each episode's draws follow from its seed)."""
    episodes: int = 50
    workers: int = 2
    """Parallel env processes."""
    seed: int = 100_000
    """Episode k is reset with seed + k."""
    videos: int = 4
    """mp4s of the first N episodes."""
    out: Path = Path("runs/eval")
    """Report folder: eval.json, report.html, videos/."""
    device: str = "cpu"
    robot: str | None = None
    """Evaluate on a robot (robolearn.drivers.registry names: franka, franka-sim, koch-follower,
    ...)
    instead of in simulation; the operator judges each episode at the terminal."""
    robot_option: list[str] = field(default_factory=list)
    """Robot options as KEY=VALUE, e.g. host=172.16.0.2 or port=/dev/ttyUSB0."""
    seconds: float = 20.0
    """--robot only: episode length."""
    camera: list[str] = field(default_factory=list)
    """--robot only: cameras as NAME=realsense[:SERIAL][@HxW] or NAME=opencv:SOURCE[@HxW]
    (observations <NAME>_rgb, and <NAME>_depth for a RealSense)."""

    def __post_init__(self) -> None:
        if not self.policy:
            raise ConfigError("--policy FOLDER (or --policy scripted) is required")
        if self.videos < 0:
            raise ConfigError(f"--videos must be >= 0 (0: none), got {self.videos}")
        require_positive("--seconds", self.seconds)
        require_folder(self.out)


def run(cfg: EvalConfig) -> int:
    """Evaluate and print the summary."""
    result = evaluate(
        EvalSpec(
            policy=cfg.policy,
            env=cfg.env,
            env_kwargs=env_overrides(cfg.obs_mode, cfg.image_size, cfg.control_mode, cfg.backend),
            randomize=cfg.randomize,
            episodes=cfg.episodes,
            workers=cfg.workers,
            seed=cfg.seed,
            videos=cfg.videos,
            out=cfg.out,
            device=cfg.device,
            robot=cfg.robot,
            robot_options=parse_options(cfg.robot_option),
            episode_seconds=cfg.seconds,
            cameras=cfg.camera,
        )
    )
    print(summary_line(result))
    print(f"report: {cfg.out / 'report.html'}")
    return 0


def summary_line(result: EvalResult) -> str:
    """``success 47/50 = 94.0 % (95 % CI 83.8–97.9 %) on <env> in <s> s``."""
    lo, hi = result.ci95
    where = result.env if result.backend in ("mujoco", "robot") else f"{result.env} in PyBullet"
    if result.randomize is not None:
        where += f", randomized ({result.randomize})"
    line = (
        f"success {result.successes}/{len(result.episodes)} = {100 * result.success_rate:.1f} % "
        f"(95 % CI {100 * lo:.1f}–{100 * hi:.1f} %) on {where} in {result.seconds:.0f} s"
    )
    diverged = [e.episode for e in result.episodes if e.failure is not None]
    if diverged:
        line += f"; the simulation diverged in episodes {diverged} (failed; reasons in eval.json)"
    return line


COMMAND = Subcommand(
    name="eval",
    help="evaluate a policy: success rate with a 95%% interval, videos, JSON + HTML report",
    config=EvalConfig,
    run=run,
)
