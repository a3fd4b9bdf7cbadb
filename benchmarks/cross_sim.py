"""Cross-simulator evaluation: policies trained on MuJoCo, evaluated on MuJoCo and PyBullet,
nominal and randomized — the sim-to-sim check before a robot.

Each policy folder is evaluated in the env its data was recorded in (its observation and
action spec checked first), on the same 50 seeded episodes per cell, with 95 % Wilson
intervals. Writes ``benchmarks/results/cross_sim.json`` and the README block
``bench:cross_sim``; cells of policies not given now are kept from the last results.

    python -m benchmarks.cross_sim --policy DP=out/quickstart/run/checkpoints/last \
        --policy BC=runs/lift_bc/checkpoints/last [--episodes 50] [--randomize dynamics]
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks._report import stored, write_results
from robolearn.drivers.panda import BACKENDS
from robolearn.evaluate import EvalSpec, evaluate

CONDITIONS = [(backend, randomized) for backend in BACKENDS for randomized in (False, True)]
"""(backend, randomized) per column: MuJoCo nominal, MuJoCo randomized, PyBullet nominal, …"""


def cell(label: str, policy: str, backend: str, randomize: str | None, episodes: int) -> Any:
    result = evaluate(
        EvalSpec(
            policy=policy,
            env_kwargs={"backend": backend},
            randomize=randomize,
            episodes=episodes,
            workers=2,
            videos=0,
        )
    )
    lo, hi = result.ci95
    row = {
        "label": label,
        "policy": policy,
        "env": result.env,
        "backend": backend,
        "randomize": randomize,
        "episodes": len(result.episodes),
        "successes": result.successes,
        "ci95": [lo, hi],
    }
    print(f"{label:12s} {backend:9s} {randomize or 'nominal':9s} {result.successes}/{episodes}")
    return row


def _text(row: dict[str, Any] | None) -> str:
    if row is None:
        return "—"
    lo, hi = row["ci95"]
    rate = 100 * row["successes"] / row["episodes"]
    return f"{row['successes']}/{row['episodes']} = {rate:.0f} % ({100 * lo:.0f}–{100 * hi:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append", required=True, help="LABEL=FOLDER")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--randomize", default="dynamics", help="preset of the randomized cells")
    args = parser.parse_args()
    given = dict(p.split("=", 1) for p in args.policy)
    rows = [
        cell(label, folder, backend, args.randomize if randomized else None, args.episodes)
        for label, folder in given.items()
        for backend, randomized in CONDITIONS
    ]
    rows = [r for r in stored("cross_sim") if r["label"] not in given] + rows
    header = " | ".join(f"{b}{' randomized' if r else ''}" for b, r in CONDITIONS)
    lines = [
        f"Measured with `python -m benchmarks.cross_sim --episodes {args.episodes} "
        f"--randomize {args.randomize} --policy LABEL=FOLDER ...`: every policy trained on "
        "MuJoCo data, evaluated on the same seeded episodes (success, 95 % Wilson interval).",
        "",
        f"| policy | env | {header} |",
        "|---|---|" + "---|" * len(CONDITIONS),
    ]
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        cells = [
            _text(
                next(
                    (r for r in mine if r["backend"] == b and (r["randomize"] is not None) == rnd),
                    None,
                )
            )
            for b, rnd in CONDITIONS
        ]
        lines.append(f"| {label} | {mine[0]['env']} | " + " | ".join(cells) + " |")
    write_results("cross_sim", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
