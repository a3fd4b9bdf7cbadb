"""Scripted-expert success rates over seeds 0..N-1 for every task, position control mode and
simulator backend.

Success means ``info["is_success"]`` at the episode's last step (the task is still solved when
the time limit ends). Writes ``benchmarks/results/expert_success.json`` and the README block
``bench:expert_success``.

    python -m benchmarks.expert_success [--seeds 100] [--envs ID ...] [--backends mujoco pybullet]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks._report import stored, write_results
from robolearn import envs
from robolearn.drivers.panda import BACKENDS

MODES = ("ee_delta", "ee_delta_pose", "joint_position")


def success_rate(env_id: str, control_mode: str, seeds: int, backend: str) -> dict[str, Any]:
    env = envs.make(env_id, control_mode=control_mode, backend=backend)
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
        "backend": backend,
        "control_mode": control_mode,
        "seeds": seeds,
        "successes": successes,
        "failed_seeds": failed,
        "seconds": time.perf_counter() - t0,
    }


def _kept_rows(measured: set[tuple[str, str]], seeds: int) -> list[dict[str, Any]]:
    """Stored rows of still-registered (id, backend) pairs not measured now (same seed count);
    rows from before backends existed are MuJoCo's."""
    registered = set(envs.registered_ids())
    rows = [{"backend": "mujoco", **r} for r in stored("expert_success")]
    return [
        r
        for r in rows
        if r["env_id"] in registered
        and (r["env_id"], r["backend"]) not in measured
        and r["seeds"] == seeds
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument(
        "--envs",
        nargs="+",
        choices=envs.registered_ids(),
        help="measure only these ids; the other rows are kept from the last results",
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    args = parser.parse_args()
    ids = args.envs or envs.registered_ids()
    pairs = [(e, b) for e in ids for b in args.backends]
    rows = [success_rate(e, m, args.seeds, b) for e, b in pairs for m in MODES]
    rows = _kept_rows(set(pairs), args.seeds) + rows
    lines = [
        f"Measured with `python -m benchmarks.expert_success --seeds {args.seeds}` "
        "(success = solved at the last step of the time limit; target ≥ 95 %).",
        "",
        "| task | backend | " + " | ".join(MODES) + " |",
        "|---|---|" + "---:|" * len(MODES),
    ]
    for env_id in envs.registered_ids():
        for backend in BACKENDS:
            cells = [
                f"{r['successes']}/{r['seeds']}"
                for m in MODES
                for r in rows
                if (r["env_id"], r["backend"], r["control_mode"]) == (env_id, backend, m)
            ]
            if cells:
                lines.append(f"| {env_id} | {backend} | " + " | ".join(cells) + " |")
    for r in rows:
        print(
            f"{r['env_id']:30s} {r['backend']:9s} {r['control_mode']:15s} "
            f"{r['successes']}/{r['seeds']}"
        )
    write_results("expert_success", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
