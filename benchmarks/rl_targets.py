"""RL targets: SAC+HER on FrankaReach (≥ 95 % within 20 k env steps), PPO with a dense reward
on FrankaReach (≥ 95 %), SAC+HER on FrankaPush (≥ 80 %; steps and wall time reported).

Each target trains with ``robolearn.rl`` (exactly what ``robolearn train --algo`` runs) into
``<runs>/<target>``, logging a success rate every ``eval_every`` steps (20 seeded episodes,
deterministic actions), then evaluates ``checkpoints/last`` over ``--final-episodes`` episodes
with ``robolearn.evaluate`` (what ``robolearn eval`` runs). ``--report`` rebuilds the figures
from the run folders (also from runs still going), so targets can train in separate processes:

    python -m benchmarks.rl_targets --run reach_sac_her      # one target
    python -m benchmarks.rl_targets --report                 # JSON, plot, README block
    python -m benchmarks.rl_targets                          # every target, then the report
    python -m benchmarks.rl_targets --final push_sac_her     # evaluate a run stopped early

Writes ``benchmarks/results/rl_targets.json``, ``benchmarks/results/rl_targets.png`` and the
README block ``bench:rl_targets`` (only where its markers exist; else the block is printed and
saved to ``benchmarks/results/rl_targets.md``). A target whose run folder is absent keeps its
row from the last ``rl_targets.json`` if that row was trained with the target's current
command, so one target can be re-run on a fresh clone without losing the others.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._report import RESULTS, ROOT, stored, write_results

NAME = "rl_targets"


@dataclass(frozen=True)
class Target:
    """One training run and the success rate it should reach."""

    name: str
    title: str
    algo: str
    env: str
    steps: int
    goal: float
    her: bool = False
    n_envs: int = 2
    threads: int = 1
    """Torch threads of the learner."""
    eval_every: int = 1000
    options: dict[str, Any] = field(default_factory=dict)
    """``--set`` options (SB3 algorithm arguments)."""

    def train_args(self, out: Path, steps: int | None = None) -> list[str]:
        """The ``robolearn train`` arguments of this target."""
        args = ["--algo", self.algo, "--env", self.env, "--steps", str(steps or self.steps)]
        args += ["--her"] if self.her else []
        args += ["--n-envs", str(self.n_envs), "--eval-every", str(self.eval_every)]
        args += ["--threads", str(self.threads), "--out", str(out)]
        if self.options:
            args += ["--set", *(f"{k}={json.dumps(v)}" for k, v in self.options.items())]
        return args

    def command(self, out: Path, steps: int | None = None) -> str:
        """The shell command that trains this target."""
        return shlex.join(["robolearn", "train", *self.train_args(out, steps)])


TARGETS = (
    Target(
        "reach_sac_her",
        "SAC+HER FrankaReach (sparse)",
        "sac",
        "robolearn/FrankaReach-v0",
        steps=20_000,
        goal=0.95,
        her=True,
        options={"learning_rate": 1e-3, "policy_kwargs": {"net_arch": [64, 64]}},
    ),
    Target(
        "reach_ppo",
        "PPO FrankaReach (dense)",
        "ppo",
        "robolearn/FrankaReach-v0",
        steps=300_000,
        goal=0.95,
        n_envs=4,
        eval_every=10_000,
        options={"n_steps": 512},
    ),
    Target(
        "push_sac_her",
        "SAC+HER FrankaPush (sparse)",
        "sac",
        "robolearn/FrankaPush-v1",  # v1: the hand starts low over the cube, stays near the table
        steps=600_000,
        goal=0.80,
        her=True,
        n_envs=1,  # in the learner's process: both cores go to the gradient steps
        threads=2,
        eval_every=10_000,
        options={  # one gradient step per 2 env steps, as DDPG+HER's Fetch settings roughly
            "learning_rate": 1e-3,
            "tau": 0.05,
            "train_freq": 2,
            "gradient_steps": 1,
            "policy_kwargs": {"net_arch": [256, 256, 256]},
        },
    ),
)
BY_NAME = {t.name: t for t in TARGETS}


def run_target(target: Target, runs: Path, steps: int | None, final_episodes: int) -> None:
    """Train ``target`` (fresh run folder) and evaluate its last checkpoint."""
    import torch

    from robolearn.cli.main import main

    torch.set_num_threads(1)
    out = runs / target.name
    status = main(["train", *target.train_args(out, steps), "--overwrite"])
    if status != 0:
        raise SystemExit(f"training {target.name} failed with status {status}")
    final_eval(out, final_episodes)


def final_eval(out: Path, episodes: int) -> dict[str, Any]:
    """``robolearn eval`` of ``out/checkpoints/last``; saved as ``out/final_eval.json``."""
    from robolearn.evaluate import EvalSpec, evaluate

    spec = EvalSpec(str(out / "checkpoints" / "last"), episodes=episodes, workers=1, videos=0)
    summary = evaluate(spec).summary()
    (out / "final_eval.json").write_text(json.dumps(summary, indent=2))
    return summary


# -- the report -------------------------------------------------------------------------------


def read_run(target: Target, runs: Path) -> dict[str, Any] | None:
    """What a target's run folder holds so far (None when it never started)."""
    out = runs / target.name
    log = out / "eval_log.jsonl"
    if not log.is_file():
        return None
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    config = json.loads((out / "train_config.json").read_text())
    final_path = out / "final_eval.json"
    final = json.loads(final_path.read_text()) if final_path.is_file() else None
    reached = next((r for r in rows if r["success_rate"] >= target.goal), None)
    return {
        "target": target.name,
        "title": target.title,
        "goal": target.goal,
        "planned_steps": int(config["steps"]),
        "command": _command(target, int(config["steps"])),
        "curve": [{k: r[k] for k in ("step", "success_rate", "wall_s")} for r in rows],
        "last_step": rows[-1]["step"],
        "last_wall_s": rows[-1]["wall_s"],
        "best_success": max(r["success_rate"] for r in rows),
        "first_step_at_goal": None if reached is None else reached["step"],
        "wall_s_at_goal": None if reached is None else reached["wall_s"],
        "finished": rows[-1]["step"] >= int(config["steps"]),
        "final_eval": final,
    }


def plot(runs_data: list[dict[str, Any]], path: Path) -> None:
    """Success rate vs environment steps, one panel per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, len(runs_data), figsize=(4.6 * len(runs_data), 3.4), squeeze=False)
    for ax, run in zip(axes[0], runs_data, strict=True):
        steps = [p["step"] for p in run["curve"]]
        ax.plot(steps, [p["success_rate"] for p in run["curve"]], marker=".")
        ax.axhline(run["goal"], color="grey", linestyle="--", label=f"target {run['goal']:.0%}")
        ax.set(title=run["title"], xlabel="environment steps", ylabel="success rate")
        ax.set_xlim(0, max(run["planned_steps"], run["last_step"]))
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
        ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(runs_data: list[dict[str, Any]]) -> str:
    """The README block."""
    lines = [
        "Measured with `python -m benchmarks.rl_targets` on this 2-core CPU machine (torch "
        'threads as in each command). Success = `info["is_success"]` at the last step; the curve '
        "evaluates 20 seeded episodes per point, *final* is `robolearn eval` of "
        "`checkpoints/last` over the episodes given. PPO rounds the steps up to whole "
        "rollouts (2048 env steps).",
        "",
        "| target | goal | first step at goal (wall time) | steps run (wall time) | best | "
        "final (95 % CI) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs_data:
        lines.append(_row(run))
    lines += [_shortfall(run) for run in runs_data if run["first_step_at_goal"] is None]
    lines += ["", "![success vs environment steps](benchmarks/results/rl_targets.png)", ""]
    lines += ["Commands (each run folder is `runs/rl_targets/<target>`):", ""]
    lines += [f"- {run['title']}: `{run['command']}`" for run in runs_data]
    return "\n".join(lines)


def _shortfall(run: dict[str, Any]) -> str:
    """One line on a target not (yet) reached: how far it got and what the rest would take."""
    rate = run["last_step"] / max(run["last_wall_s"], 1e-9)
    left_h = max(0, run["planned_steps"] - run["last_step"]) / rate / 3600
    state = "finished" if run["finished"] else "stopped before its planned steps"
    return (
        f"\n**{run['title']}: target not reached** after {run['last_step']:,} env steps "
        f"({run['last_wall_s'] / 3600:.1f} h, {rate:.0f} env steps/s; run {state}; best "
        f"evaluation {100 * run['best_success']:.0f} %). The remaining planned steps would take "
        f"≈ {left_h:.1f} h more on this machine."
    )


def _row(run: dict[str, Any]) -> str:
    if run["first_step_at_goal"] is None:
        at_goal = "not reached"
    else:
        at_goal = f"{run['first_step_at_goal']:,} ({run['wall_s_at_goal'] / 60:.1f} min)"
    steps = f"{run['last_step']:,} of {run['planned_steps']:,} ({run['last_wall_s'] / 60:.0f} min)"
    final = run["final_eval"]
    if final is None:
        final_cell = "run unfinished" if not run["finished"] else "-"
    else:
        lo, hi = final["ci95"]
        final_cell = (
            f"{final['successes']}/{final['episodes']} = {100 * final['success_rate']:.0f} % "
            f"({100 * lo:.0f}–{100 * hi:.0f} %)"
        )
    return (
        f"| {run['title']} | ≥ {100 * run['goal']:.0f} % | {at_goal} | {steps} | "
        f"{100 * run['best_success']:.0f} % | {final_cell} |"
    )


def _command(target: Target, steps: int) -> str:
    """The command as the README shows it (run folder relative to the repository)."""
    return target.command(Path("runs/rl_targets") / target.name, steps)


def stored_runs() -> dict[str, dict[str, Any]]:
    """The rows of the last report (``rl_targets.json``) by target, for runs whose folders
    are gone (a fresh clone keeps the figures, not the runs)."""
    return {row["target"]: row for row in stored(NAME, "runs")}


def report(runs: Path) -> None:
    """JSON, plot and README block from every run folder that exists; a target without a
    folder keeps its stored row when that row trained the target's current command."""
    stored = stored_runs()
    runs_data = []
    for t in TARGETS:
        run = read_run(t, runs)
        if run is None and t.name in stored:
            kept = stored[t.name]
            run = kept if kept["command"] == _command(t, kept["planned_steps"]) else None
        if run is not None:
            runs_data.append(run)
    if not runs_data:
        raise SystemExit(f"no runs under {runs}; train one with --run NAME")
    plot(runs_data, RESULTS / f"{NAME}.png")
    block = markdown(runs_data)
    has_markers = f"<!-- bench:{NAME}:start -->" in (ROOT / "README.md").read_text()
    write_results(NAME, {"runs": runs_data}, block, readme=has_markers)
    (RESULTS / f"{NAME}.md").write_text(block + "\n")
    print(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", choices=sorted(BY_NAME), action="append", default=[])
    parser.add_argument("--report", action="store_true", help="only rebuild the report")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "rl_targets")
    parser.add_argument("--steps", type=int, default=None, help="override every target's steps")
    parser.add_argument("--final-episodes", type=int, default=100)
    parser.add_argument(
        "--final",
        choices=sorted(BY_NAME),
        action="append",
        default=[],
        help="only evaluate this run's checkpoints/last (e.g. of a run stopped early)",
    )
    args = parser.parse_args()
    for name in args.final:
        print(name, final_eval(args.runs / name, args.final_episodes))
    if args.final:
        return
    names = [] if args.report else (args.run or [t.name for t in TARGETS])
    for name in names:
        t0 = time.perf_counter()
        run_target(BY_NAME[name], args.runs, args.steps, args.final_episodes)
        print(f"{name}: {time.perf_counter() - t0:.0f} s")
    if args.report or not args.run:
        report(args.runs)


if __name__ == "__main__":
    main()
