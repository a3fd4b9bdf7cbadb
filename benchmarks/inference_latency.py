"""Observation-to-action latency and loop timing with sync vs asynchronous inference.

A 50 Hz loop (:class:`robolearn.control.rate.RateLoop` on the wall clock, ``"skip"`` overrun
policy) reads an observation every tick, asks for a new chunk every ``--replan`` ticks, and
sends one action per tick from a :class:`robolearn.core.chunking.ChunkBlend` executor. The
policy is diffusion-like: a 1-D conv U-Net denoiser (width 128, FiLM conditioning on an
18-dim state) run for ``K`` denoising steps over a 16×7 chunk, random weights, torch on the
CPU with one thread. Presets: ``light`` (``K = 4``), ``heavy`` (``K = 16``, longer than a
tick), and ``heavy+python`` (``K = 16`` then 5 ms of pure-Python post-processing, which
holds the GIL: torch releases it inside its kernels, Python code does not).

Backends of :class:`robolearn.control.inference.AsyncInference`:

* ``sync`` — ``predict_chunk`` runs inside the tick that asks for it;
* ``thread`` — a worker thread in the loop's process (shares the GIL with the loop);
* ``process`` — a spawned worker process fed through shared memory.

Figures per cell: *obs→action latency*, from the observation's capture to the sending of the
first action taken from the chunk computed from it (one sample per chunk); the *loop period*
(between consecutive tick starts) and *period error* (tick start minus its deadline); deadlines
*skipped* because a tick overran; and *holds*, ticks after the first chunk with no chunk
covering them. Writes ``benchmarks/results/inference_latency.json`` and the README block
``bench:inference_latency``.

    python -m benchmarks.inference_latency [--seconds 5] [--rounds 3] [--hz 50] [--replan 8]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks._report import write_results
from robolearn.control.clock import WallClock
from robolearn.control.inference import AsyncInference, Backend, Chunk
from robolearn.control.rate import RateLoop
from robolearn.core.chunking import ChunkBlend

H, A, STATE_DIM = 16, 7, 18
OBS_SPEC = {"state": ((STATE_DIM,), np.float32)}
COSTS = {"light": (4, 0.0), "heavy": (16, 0.0), "heavy+python": (16, 5.0)}
"""Policy presets: (denoising steps, ms of pure-Python post-processing) per chunk."""
BACKENDS: tuple[Backend, ...] = ("sync", "thread", "process")
BLEND_TICKS = 4


# --- the policy (built inside the worker) -----------------------------------------------------


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, 5, stride=stride, padding=2), nn.GroupNorm(8, c_out), nn.Mish()
    )


class Denoiser(nn.Module):
    """A small 1-D conv U-Net over the action chunk, FiLM-conditioned on state and step."""

    def __init__(self, width: int = 128) -> None:
        super().__init__()
        self.film = nn.Sequential(
            nn.Linear(STATE_DIM + 1, 2 * width), nn.Mish(), nn.Linear(2 * width, 2 * width)
        )
        self.down1, self.down2 = _block(A, width), _block(width, 2 * width, stride=2)
        self.mid = _block(2 * width, 2 * width)
        self.up = nn.ConvTranspose1d(2 * width, width, 4, stride=2, padding=1)
        self.up1, self.out = _block(2 * width, width), nn.Conv1d(width, A, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Noise estimate (1, A, H) for chunk ``x`` (1, A, H) given ``cond`` (1, S)."""
        scale, shift = self.film(torch.cat([cond, step], -1)).chunk(2, -1)  # (1, W) each
        h1 = self.down1(x) * (1 + scale[..., None]) + shift[..., None]  # (1, W, H)
        h = self.up(self.mid(self.down2(h1)))  # (1, W, H)
        return self.out(self.up1(torch.cat([h, h1], 1)))  # (1, A, H)


class DiffusionLikePolicy:
    """``predict_chunk``: ``steps`` denoising iterations from seeded noise, then ``python_ms``
    of pure-Python post-processing (it holds the GIL throughout, as tokenizers, schedulers
    written in Python and per-action bookkeeping do)."""

    def __init__(self, steps: int, python_ms: float = 0.0, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.net = Denoiser().eval()
        self.steps, self.python_s = steps, python_ms / 1e3
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self) -> None:
        """Re-seed the noise."""
        self.generator.manual_seed(0)

    @torch.inference_mode()
    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """A (H, A) chunk."""
        cond = torch.from_numpy(obs["state"])[None]  # (1, S)
        x = torch.randn(1, A, H, generator=self.generator)
        for k in range(self.steps):
            x = x - 0.1 * self.net(x, cond, torch.full((1, 1), float(k)))
        return python_postprocess(x[0].T.numpy(), self.python_s)  # (H, A)


def python_postprocess(chunk: np.ndarray, busy_s: float) -> np.ndarray:
    """Clip ``chunk`` (H, A) element by element in Python, repeatedly, for ``busy_s``."""
    if busy_s <= 0:
        return chunk
    rows, end = chunk.tolist(), time.perf_counter() + busy_s
    while time.perf_counter() < end:
        rows = [[min(max(v, -10.0), 10.0) for v in row] for row in rows]
    return np.array(rows, dtype=np.float32)


def make_policy(steps: int, python_ms: float) -> DiffusionLikePolicy:
    """Factory run in the worker: one torch thread, built and warmed up."""
    torch.set_num_threads(1)
    policy = DiffusionLikePolicy(steps, python_ms)
    for _ in range(3):
        policy.predict_chunk({"state": np.zeros(STATE_DIM, np.float32)})
    return policy


# --- the loop ---------------------------------------------------------------------------------


@dataclass
class Trace:
    """What one run of the loop records, all times from ``time.perf_counter`` in s."""

    ks: list[int] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    deadlines: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    staleness: list[int] = field(default_factory=list)
    held: list[bool] = field(default_factory=list)  # per tick after the first action
    first_action_k: int | None = None
    inference_s: list[float] = field(default_factory=list)
    startup_s: float = 0.0
    superseded: int = 0
    busy_rejects: int = 0


def sensor(k: int) -> dict[str, np.ndarray]:
    """A fake state reading (S,) for tick ``k``."""
    return {"state": np.sin(0.01 * k + np.arange(STATE_DIM, dtype=np.float32))}


def run_loop(inf: AsyncInference, hz: float, ticks: int, replan: int) -> Trace:
    """Run the loop for ``ticks`` grid ticks, asking for a chunk every ``replan`` ticks."""
    loop, executor, trace = RateLoop(hz, WallClock()), ChunkBlend(BLEND_TICKS), Trace()
    next_submit = 0
    while (k := loop.tick()) < ticks:
        trace.ks.append(k)
        trace.starts.append(time.perf_counter())
        trace.deadlines.append(loop.deadline_s)
        obs = sensor(k)
        if k >= next_submit and inf.submit(obs, time.perf_counter(), k):
            next_submit = k + replan
        chunk = inf.poll(k)
        if chunk is not None:
            executor.add(chunk.actions, chunk.obs_tick)
        action = executor.action(k)
        t_send = time.perf_counter()  # "send": the action would go to the driver here
        _record(trace, k, action, chunk, t_send)
    return trace


def _record(trace: Trace, k: int, action: Any, chunk: Chunk | None, t_send: float) -> None:
    if trace.first_action_k is None and action is not None:
        trace.first_action_k = k
    if trace.first_action_k is not None:
        trace.held.append(action is None)
    if chunk is not None and action is not None:
        trace.latencies.append(t_send - chunk.obs_time_s)
        trace.staleness.append(chunk.staleness_ticks)


def run_cell(cost: str, backend: Backend, hz: float, seconds: float, replan: int) -> Trace:
    """One run of one policy cost on one backend, worker start-up included."""
    inf = AsyncInference(
        partial(make_policy, *COSTS[cost]), OBS_SPEC, (H, A), backend, max_staleness_ticks=replan
    )
    t0 = time.perf_counter()
    with inf:
        startup_s = time.perf_counter() - t0
        trace = run_loop(inf, hz, round(seconds * hz), replan)
    trace.startup_s, trace.inference_s = startup_s, list(inf.stats.inference_s)
    trace.superseded, trace.busy_rejects = inf.stats.superseded, inf.stats.busy_rejects
    return trace


def _ms(values: list[float], q: float) -> float:
    return float(1e3 * np.percentile(values, q)) if values else float("nan")


def summarize(traces: list[Trace]) -> dict[str, Any]:
    """The figures of one cell, pooled over its runs."""

    def pool(get: Any) -> list[Any]:
        return [x for t in traces for x in get(t)]

    periods = pool(lambda t: np.diff(t.starts).tolist())
    errors = pool(lambda t: (np.array(t.starts) - np.array(t.deadlines)).tolist())
    skipped = sum(int(np.sum(np.diff(t.ks) - 1)) for t in traces)
    grid_ticks = sum(t.ks[-1] + 1 for t in traces)
    latencies, inference, held = (
        pool(lambda t: t.latencies),
        pool(lambda t: t.inference_s),
        pool(lambda t: t.held),
    )
    staleness = pool(lambda t: t.staleness)
    return {
        "runs": len(traces),
        "startup_s_median": float(np.median([t.startup_s for t in traces])),
        "ticks": sum(len(t.ks) for t in traces),
        "inference_ms_p50": _ms(inference, 50),
        "inference_ms_p99": _ms(inference, 99),
        "obs_to_action_ms_p50": _ms(latencies, 50),
        "obs_to_action_ms_p99": _ms(latencies, 99),
        "obs_to_action_ms_max": _ms(latencies, 100),
        "latency_samples": len(latencies),
        "period_ms_p50": _ms(periods, 50),
        "period_ms_p99": _ms(periods, 99),
        "period_ms_max": _ms(periods, 100),
        "period_error_ms_p50": _ms(errors, 50),
        "period_error_ms_p99": _ms(errors, 99),
        "period_error_ms_max": _ms(errors, 100),
        "skipped_deadlines": skipped,
        "skipped_fraction": skipped / grid_ticks,
        "hold_fraction": float(np.mean(held)) if held else float("nan"),
        "ticks_before_first_action": [t.first_action_k for t in traces],
        "staleness_ticks_mean": float(np.mean(staleness)) if staleness else None,
        "staleness_ticks_max": max(staleness, default=None),
        "superseded": sum(t.superseded for t in traces),
        "busy_rejects": sum(t.busy_rejects for t in traces),
    }


# --- report -----------------------------------------------------------------------------------


def markdown(cells: list[dict[str, Any]], args: argparse.Namespace, cmd: str) -> str:
    samples = min(c["latency_samples"] for c in cells)
    spawn = [c["startup_s_median"] for c in cells if c["backend"] == "process"]
    lines = [
        f"Measured with `{cmd}` on {os.cpu_count()} CPU cores (shared with other work): a "
        f"{args.hz:g} Hz loop asks for a {H}×{A} chunk every {args.replan} ticks; each cell "
        f"pools {args.rounds} interleaved runs of {args.seconds:g} s. Torch on the CPU, one "
        "thread. *Obs→action*: from the observation's capture to the first action sent from "
        f"the chunk computed from it (≥ {samples} samples a cell, so p99 is near the worst). "
        f"*Period*: between tick starts (nominal {1e3 / args.hz:g} ms); *period error*: tick "
        "start minus its deadline. *Holds*: ticks after the first chunk that no chunk covered. "
        f"Starting a process worker (spawn, torch import, warm-up) took {max(spawn):.1f} s. "
        "An asynchronous chunk is used from the first tick after it is finished, so its "
        "obs→action latency is the inference time rounded up to whole ticks: the price of a "
        "loop that never waits for the policy.",
        "",
        "| policy | inference | predict_chunk p50 | obs→action p50 / p99 | loop period p99 / max "
        "| period error p99 / max | deadlines skipped | holds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c['cost']} | {c['backend']} "
            f"| {c['inference_ms_p50']:.1f} ms "
            f"| {c['obs_to_action_ms_p50']:.1f} / {c['obs_to_action_ms_p99']:.1f} ms "
            f"| {c['period_ms_p99']:.1f} / {c['period_ms_max']:.1f} ms "
            f"| {c['period_error_ms_p99']:.2f} / {c['period_error_ms_max']:.2f} ms "
            f"| {100 * c['skipped_fraction']:.1f} % | {100 * c['hold_fraction']:.1f} % |"
        )
    return "\n".join(lines)


def _print(c: dict[str, Any]) -> None:
    print(
        f"{c['cost']:5s} {c['backend']:7s} infer {c['inference_ms_p50']:5.1f} ms  "
        f"obs→action p50 {c['obs_to_action_ms_p50']:5.1f} p99 {c['obs_to_action_ms_p99']:5.1f} ms  "
        f"period p99 {c['period_ms_p99']:5.1f} max {c['period_ms_max']:5.1f} ms  "
        f"err p99 {c['period_error_ms_p99']:5.2f} ms  "
        f"skipped {c['skipped_deadlines']}  holds {100 * c['hold_fraction']:.1f} %"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per run of a cell")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hz", type=float, default=50.0)
    parser.add_argument("--replan", type=int, default=8, help="ticks between chunk requests")
    parser.add_argument("--no-readme", action="store_true", help="only write the JSON file")
    args = parser.parse_args()
    traces: dict[tuple[str, Backend], list[Trace]] = {}
    for r in range(args.rounds):  # rounds interleave the cells, so a load spike hits all
        for cost in COSTS:
            for backend in BACKENDS:
                trace = run_cell(cost, backend, args.hz, args.seconds, args.replan)
                traces.setdefault((cost, backend), []).append(trace)
                print(f"round {r + 1}/{args.rounds} {cost} {backend}: {len(trace.ks)} ticks")
    cells = []
    for (cost, backend), runs in traces.items():
        steps, python_ms = COSTS[cost]
        cell = {"cost": cost, "denoise_steps": steps, "python_ms": python_ms, "backend": backend}
        cells.append(cell | summarize(runs))
        _print(cells[-1])
    default = (args.seconds, args.rounds, args.hz, args.replan) == (5.0, 3, 50.0, 8)
    cmd = "python -m benchmarks.inference_latency" + ("" if default else " (custom args)")
    config = {
        "hz": args.hz,
        "seconds_per_run": args.seconds,
        "rounds": args.rounds,
        "replan_ticks": args.replan,
        "chunk": [H, A],
        "blend_ticks": BLEND_TICKS,
    }
    out = write_results(
        "inference_latency",
        {"config": config, "cells": cells},
        markdown(cells, args, cmd),
        readme=not args.no_readme,
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
