"""``robolearn quickstart`` — the main job, what ``make demo`` runs: scripted demonstrations
on FrankaLift → train Diffusion Policy on state observations → evaluate 50 episodes → report.

Every phase's wall time and the success rate (95 % Wilson interval) go to
``<out>/quickstart.json`` and a printed table.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from robolearn.cli.common import Subcommand, format_table
from robolearn.core.types import ConfigError
from robolearn.train.config import PresetName


@dataclass
class QuickstartConfig:
    """Demonstrations → Diffusion Policy → evaluation on FrankaLift, end to end."""

    out: Path = Path("out/quickstart")
    """Folder for the dataset, the training run, the evaluation and quickstart.json."""
    env: str = "robolearn/FrankaLift-v0"
    demos: int = 100
    """Scripted demonstrations to record."""
    policy: str = "diffusion"
    preset: PresetName = "cpu-state-diffusion"
    """Training preset (robolearn.train.PRESETS)."""
    steps: int = 3000
    """Training steps."""
    eval_episodes: int = 50
    workers: int = 2
    """Parallel evaluation processes."""
    videos: int = 2
    """mp4s of the first evaluation episodes."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.demos < 1 or self.steps < 1 or self.eval_episodes < 1:
            raise ConfigError("--demos, --steps and --eval-episodes must be ≥ 1")


def run(cfg: QuickstartConfig) -> int:
    """Record, train, evaluate; print and save the report."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    _record(cfg)
    times["record_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    checkpoint, train_figures = _train(cfg)
    times["train_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    summary = _evaluate(cfg, checkpoint)
    times["eval_s"] = time.perf_counter() - t2
    times["total_s"] = time.perf_counter() - t0
    report = {"config": asdict(cfg), **times, "train": train_figures, "eval": summary}
    (cfg.out / "quickstart.json").write_text(json.dumps(report, indent=2, default=str))
    _print(report)
    return 0


def _record(cfg: QuickstartConfig) -> None:
    from robolearn.cli import record_cmd

    print(f"[1/3] recording {cfg.demos} scripted demonstrations in {cfg.env}", flush=True)
    record_cmd.run(
        record_cmd.RecordConfig(
            out=cfg.out / "data",
            env=cfg.env,
            episodes=cfg.demos,
            cameras=[],
            overwrite=True,
            seed=cfg.seed,
            success_hold_ticks=10_000,  # whole episodes: the policy also learns to hold
        )
    )


def _train(cfg: QuickstartConfig) -> tuple[Path, dict[str, float]]:
    from robolearn.train import TrainConfig, train

    print(f"[2/3] training {cfg.policy} ({cfg.preset}) for {cfg.steps} steps", flush=True)
    result = train(
        TrainConfig(
            dataset=cfg.out / "data",
            out=cfg.out / "run",
            policy=cfg.policy,
            preset=cfg.preset,
            steps=cfg.steps,
            save_every=cfg.steps,
            overwrite=True,
            seed=cfg.seed,
        )
    )
    figures = {"final_loss": result.final_loss, "samples_per_s": result.samples_per_s}
    return result.checkpoint, figures


def _evaluate(cfg: QuickstartConfig, checkpoint: Path) -> dict[str, object]:
    from robolearn.cli.eval_cmd import summary_line
    from robolearn.evaluate import EvalSpec, evaluate

    print(f"[3/3] evaluating {cfg.eval_episodes} episodes", flush=True)
    result = evaluate(
        EvalSpec(
            policy=str(checkpoint),
            episodes=cfg.eval_episodes,
            workers=cfg.workers,
            videos=cfg.videos,
            out=cfg.out / "eval",
        )
    )
    print(summary_line(result), flush=True)
    return result.summary()


def _print(report: dict) -> None:
    ev = report["eval"]
    lo, hi = ev["ci95"]
    rows = [
        ["record", f"{report['record_s']:.0f} s", ""],
        ["train", f"{report['train_s']:.0f} s", f"final loss {report['train']['final_loss']:.4f}"],
        ["eval", f"{report['eval_s']:.0f} s", f"{ev['successes']}/{ev['episodes']} success"],
        [
            "total",
            f"{report['total_s']:.0f} s",
            f"success {100 * ev['success_rate']:.0f} % (95 % CI {100 * lo:.0f}–{100 * hi:.0f} %)",
        ],
    ]
    print(format_table(["phase", "time", "result"], rows))
    out = report["config"]["out"]
    print(f"report: {out}/quickstart.json, {out}/eval/report.html")


COMMAND = Subcommand(
    name="quickstart",
    help="the main job: scripted demos on FrankaLift → Diffusion Policy → 50-episode eval",
    config=QuickstartConfig,
    run=run,
)
