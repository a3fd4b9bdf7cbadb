"""Policy quality: scripted demonstrations → train → evaluate, per (policy, task, inputs).

Each case records ``--demos`` scripted episodes (whole episodes, state or 96×96 cameras),
trains with a preset for ``steps`` optimizer steps and evaluates 50 seeded episodes (seeds
100000+, never seen in training) with a 95 % Wilson interval. Cases run one after another;
each writes ``out/policy_quality/<case>/`` (dataset, run, eval report) and the
table is rebuilt from every case's result so far, in ``benchmarks/results/policy_quality.json``
and the README block ``bench:policy_quality``.

::

    python -m benchmarks.policy_quality --cases dp_state_lift act_state_lift [--steps N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from typing import Any

from benchmarks._report import ROOT, machine, stored, write_results

CASES: dict[str, dict[str, Any]] = {
    "dp_state_lift": {
        "env": "FrankaLift",
        "policy": "diffusion",
        "preset": "cpu-state-diffusion",
        "steps": 3000,
        "target": 0.90,
    },
    "dp_state_pickplace": {
        "env": "FrankaPickPlace",
        "policy": "diffusion",
        "preset": "cpu-state-diffusion",
        "steps": 3000,
        "target": 0.90,
    },
    "act_state_lift": {
        "env": "FrankaLift",
        "policy": "act",
        "preset": "cpu-state-act",
        "steps": 3000,
        "target": 0.90,
    },
    "act_state_pickplace": {
        "env": "FrankaPickPlace",
        "policy": "act",
        "preset": "cpu-state-act",
        "steps": 3000,
        "target": 0.90,
    },
    "dp_image_lift": {
        "env": "FrankaLift",
        "policy": "diffusion",
        "preset": "cpu-image-diffusion",
        "steps": 1000,
        "target": 0.80,
        "cameras": ["front", "wrist"],
    },
}
"""What each case trains; steps are sized for a 2-core CPU (see the README notes)."""

COMMAND = "python -m benchmarks.policy_quality --cases <case> [--steps N] --threads T"
"""The command line, in general (each row keeps its own)."""
OUT = ROOT / "out" / "policy_quality"
"""Datasets, runs and eval reports (gitignored)."""


def run_case(
    name: str, demos: int, steps: int | None, eval_episodes: int, threads: int = 0
) -> dict[str, Any]:
    """Record, train, evaluate one case; return its figures."""
    from robolearn.cli import record_cmd
    from robolearn.evaluate import EvalSpec, evaluate
    from robolearn.train import TrainConfig, train

    case = CASES[name]
    root = OUT / name
    shutil.rmtree(root, ignore_errors=True)
    cameras = case.get("cameras", [])
    t0 = time.perf_counter()
    record_cmd.run(
        record_cmd.RecordConfig(
            out=root / "data",
            env=f"robolearn/{case['env']}-v0",
            episodes=demos,
            cameras=cameras,
            image_size=[96, 96],
            success_hold_ticks=10_000,
        )
    )
    t1 = time.perf_counter()
    obs_keys = (
        ["observation.state", *(f"observation.images.{c}" for c in cameras)] if cameras else []
    )
    result = train(
        TrainConfig(
            dataset=root / "data",
            out=root / "run",
            policy=case["policy"],
            preset=case["preset"],
            steps=steps or case["steps"],
            save_every=10**9,
            obs_keys=obs_keys,
            progress=False,
        )
    )
    t2 = time.perf_counter()
    ev = evaluate(
        EvalSpec(
            policy=str(result.checkpoint),
            episodes=eval_episodes,
            workers=2,
            videos=2,
            out=root / "eval",
        )
    )
    summary = ev.summary()
    return {
        "case": name,
        **case,
        "demos": demos,
        "steps": result.steps,
        "record_s": t1 - t0,
        "train_s": t2 - t1,
        "eval_s": ev.seconds,
        "train_samples_per_s": result.samples_per_s,
        "final_loss": result.final_loss,
        "successes": summary["successes"],
        "episodes": summary["episodes"],
        "success_rate": summary["success_rate"],
        "ci95": summary["ci95"],
    }


def _table(rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        f"Measured with `{command}` on {machine()['cpus']} CPU cores (no GPU was lent). "
        "Demonstrations: the scripted experts, whole episodes; evaluation: 50 unseen seeds, "
        "success = solved at the time limit.",
        "",
        "| case | demos | steps | train time | success | 95 % CI | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["ci95"]
        met = "met" if r["success_rate"] >= r["target"] else "**not met**"
        lines.append(
            f"| {r['case']} | {r['demos']} | {r['steps']} | {r['train_s'] / 60:.1f} min | "
            f"{r['successes']}/{r['episodes']} | {100 * lo:.0f}–{100 * hi:.0f} % | "
            f"≥ {100 * r['target']:.0f} % {met} |"
        )
    lines += ["", "Commands, per row:"]
    for r in rows:
        fallback = f"{command.split(' --cases')[0]} --cases {r['case']} --steps {r['steps']}"
        lines.append(f"- {r['case']}: `{r.get('command', fallback + ' --threads 1')}`")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--demos", type=int, default=100)
    parser.add_argument("--steps", type=int, default=None, help="override every case's steps")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--report", action="store_true", help="re-render the README table only")
    args = parser.parse_args()
    if args.report:
        rows = stored("policy_quality")
        write_results("policy_quality", {"rows": rows}, _table(rows, COMMAND))
        return
    for name in args.cases:
        row = run_case(name, args.demos, args.steps, args.eval_episodes, args.threads)
        row["command"] = (
            f"python -m benchmarks.policy_quality --cases {name} --demos {args.demos} "
            f"--steps {row['steps']} --threads {args.threads}"
        )
        print(json.dumps(row), flush=True)
        add_row(row)


def add_row(row: dict[str, Any]) -> None:
    """Merge ``row`` into the results (read again now: cases may run in parallel processes)
    and rewrite the README table."""
    done = stored("policy_quality")
    done = sorted([r for r in done if r["case"] != row["case"]] + [row], key=lambda r: r["case"])
    write_results("policy_quality", {"rows": done}, _table(done, COMMAND))


if __name__ == "__main__":
    main()
