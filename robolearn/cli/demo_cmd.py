"""``robolearn demo``: run the scripted expert on every registered task, save videos and a summary.

For each task ``robolearn/<Name>-v<k>`` it writes ``<out>/<Name>.mp4`` and ``<out>/<Name>.json``
(as ``robolearn rollout`` would), then ``<out>/summary.json`` and a table of all tasks.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from robolearn.cli.common import Subcommand, format_table
from robolearn.cli.rollout_cmd import RolloutConfig, RolloutSummary, rollout
from robolearn.core.types import ConfigError

HEADERS = ("env", "successes", "rate", "mean length", "seconds")


@dataclass
class DemoConfig:
    """Run the scripted expert on every registered task; write videos and summaries."""

    out: Path = Path("out/demo")
    """Folder for the videos and summaries."""
    episodes: int = 20
    """Episodes per task."""
    seed: int = 0
    """Episode k of each task is reset with seed + k."""
    video: bool = True
    """Write an mp4 per task."""
    envs: list[str] = field(default_factory=list)
    """Only these env ids; by default every registered task."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be at least 1, got {self.episodes}")


def file_stems(env_ids: list[str]) -> dict[str, str]:
    """File name stem per id: ``robolearn/FrankaReach-v0`` → ``FrankaReach``.

    The version stays in (``FrankaReach-v0``) when two selected ids share a name.
    """
    names = {env_id: env_id.rsplit("/", 1)[-1] for env_id in env_ids}
    bare = {env_id: name.rsplit("-v", 1)[0] for env_id, name in names.items()}
    clash = len(set(bare.values())) < len(bare)
    return names if clash else bare


def task_config(cfg: DemoConfig, env_id: str, stem: str) -> RolloutConfig:
    """The rollout config of one task."""
    return RolloutConfig(
        env=env_id,
        episodes=cfg.episodes,
        seed=cfg.seed,
        video=cfg.out / f"{stem}.mp4" if cfg.video else None,
        summary=cfg.out / f"{stem}.json",
    )


def write_combined(cfg: DemoConfig, summaries: list[RolloutSummary], seconds: float) -> Path:
    """Write ``<out>/summary.json`` with every task's summary; return its path."""
    path = cfg.out / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "episodes_per_task": cfg.episodes,
        "seed": cfg.seed,
        "seconds": round(seconds, 3),
        "tasks": [asdict(s) for s in summaries],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def summary_table(summaries: list[RolloutSummary]) -> str:
    """One row per task."""
    rows = [
        (
            s.env,
            f"{s.successes}/{s.episodes}",
            f"{100 * s.success_rate:.0f}%",
            f"{s.mean_episode_length:.1f}",
            f"{s.seconds:.1f}",
        )
        for s in summaries
    ]
    return format_table(HEADERS, rows)


def run(cfg: DemoConfig) -> int:
    """Roll out every selected task, then print the table and write ``summary.json``."""
    from robolearn import envs  # here, not at the top: importing the tasks loads MuJoCo

    env_ids = cfg.envs or envs.registered_ids()
    if not env_ids:
        raise ConfigError("no tasks are registered")
    start = time.perf_counter()
    summaries = []
    for env_id, stem in file_stems(env_ids).items():
        print(f"== {env_id}")
        summaries.append(rollout(task_config(cfg, env_id, stem)))
        print(summaries[-1].rate_line())
    path = write_combined(cfg, summaries, time.perf_counter() - start)
    print()
    print(summary_table(summaries))
    print(f"videos and summaries in {cfg.out}/ (combined: {path})")
    return 0


COMMAND = Subcommand(
    name="demo",
    help="run the scripted expert on every task; write videos and a summary table",
    config=DemoConfig,
    run=run,
)
