"""The main job's figures: wall time per phase and success of ``robolearn quickstart``.

Runs ``robolearn quickstart --out out/quickstart`` as a subprocess (interpreter start-up
included in the wall time), then writes ``benchmarks/results/quickstart.json`` and the README
block ``bench:quickstart``. ``--existing`` reports a run already made (its quickstart.json and
the wall time measured around it) instead of running again.

::

    python -m benchmarks.quickstart [--existing out/quickstart --wall-s 612]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._report import ROOT, machine, write_results

TARGET_S = 15 * 60
TARGET_SUCCESS = 0.90


def _run(out: Path) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "robolearn.cli.main", "quickstart", "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - t0


def _load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=Path, default=None)
    parser.add_argument("--wall-s", type=float, default=None, help="with --existing")
    parser.add_argument("--note", default="", help="conditions of the run, for the README")
    args = parser.parse_args()
    out = args.existing or ROOT / "out" / "quickstart"
    wall = args.wall_s if args.existing else _run(out)
    report = json.loads((out / "quickstart.json").read_text())
    ev = report["eval"]
    lo, hi = ev["ci95"]
    wall_s = wall if wall is not None else report["total_s"]
    time_ok = "met" if wall_s <= TARGET_S else "**not met**"
    success_ok = "met" if ev["success_rate"] >= TARGET_SUCCESS else "**not met**"
    cfg = report["config"]
    lines = [
        f"`make demo` = `robolearn quickstart`: {cfg['demos']} scripted FrankaLift demonstrations "
        f"→ Diffusion Policy on state observations (`--preset {cfg['preset']}`, "
        f"{cfg['steps']} steps) → {cfg['eval_episodes']} evaluation episodes on unseen seeds. "
        f"Measured with `python -m benchmarks.quickstart` on {machine()['cpus']} CPU cores"
        f"{'; ' + args.note if args.note else ''}.",
        "",
        "| phase | wall time |",
        "|---|---|",
        f"| record demonstrations | {report['record_s']:.0f} s |",
        f"| train ({report['train']['samples_per_s']:.0f} samples/s) | {report['train_s']:.0f} s |",
        f"| evaluate ({cfg['workers']} processes) | {report['eval_s']:.0f} s |",
        f"| **total, process start to report** | **{wall_s / 60:.1f} min** "
        f"(target ≤ 15 min: {time_ok}) |",
        "",
        f"Success: **{ev['successes']}/{ev['episodes']} = {100 * ev['success_rate']:.0f} %** "
        f"(95 % Wilson interval {100 * lo:.0f}–{100 * hi:.0f} %; target ≥ 90 %: {success_ok}).",
    ]
    figures = {"wall_s": wall_s, "load_average_after": _load_average(), "report": report}
    write_results("quickstart", figures, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
