"""Scripted-expert success rates over seeds 0..N-1 for every task and position control mode.

Success means ``info["is_success"]`` at the episode's last step (the task is still solved when
the time limit ends). Writes ``benchmarks/results/expert_success.json`` and the README block
``bench:expert_success``.

    python -m benchmarks.expert_success [--seeds 100] [--envs ID ...]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks._report import stored, write_results
from robolearn import envs

MODES = ("ee_delta", "ee_delta_pose", "joint_position")


def success_rate(env_id: str, control_mode: str, seeds: int) -> dict[str, Any]:
    env = envs.make(env_id, control_mode=control_mode)
    expert = envs.make_expert(env)
    successes, failed, t0 = 0, [], time.perf_counter()
    for seed in range(seeds):
        obs, _ = env.reset(seed=seed)
        expert.reset(seed)
        done, info = False, {"is_success": False}
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            done = terminated or truncated
        successes += bool(info["is_success"])
        if not info["is_success"]:
            failed.append(seed)
    env.close()
    return {
        "env_id": env_id,
        "control_mode": control_mode,
        "seeds": seeds,
        "successes": successes,
        "failed_seeds": failed,
        "seconds": time.perf_counter() - t0,
    }


def _kept_rows(measured: set[str], seeds: int) -> list[dict[str, Any]]:
    """Stored rows of still-registered ids that were not measured now (same seed count)."""
    registered = set(envs.registered_ids())
    rows = stored("expert_success")
    return [r for r in rows if r["env_id"] in registered - measured and r["seeds"] == seeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument(
        "--envs",
        nargs="+",
        choices=envs.registered_ids(),
        help="measure only these ids; the other rows are kept from the last results",
    )
    args = parser.parse_args()
    ids = args.envs or envs.registered_ids()
    rows = [success_rate(e, m, args.seeds) for e in ids for m in MODES]
    rows = _kept_rows(set(ids), args.seeds) + rows
    lines = [
        f"Measured with `python -m benchmarks.expert_success --seeds {args.seeds}` "
        "(success = solved at the last step of the time limit; target ≥ 95 %).",
        "",
        "| task | " + " | ".join(MODES) + " |",
        "|---|" + "---:|" * len(MODES),
    ]
    for env_id in envs.registered_ids():
        cells = [f"{r['successes']}/{r['seeds']}" for r in rows if r["env_id"] == env_id]
        lines.append(f"| {env_id} | " + " | ".join(cells) + " |")
    for r in rows:
        print(f"{r['env_id']:30s} {r['control_mode']:15s} {r['successes']}/{r['seeds']}")
    write_results("expert_success", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
