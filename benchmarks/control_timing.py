"""Control-loop timing: robolearn's RateLoop against a plain ``time.sleep`` loop, idle and loaded.

Each cell runs a loop on the wall clock at 50, 100 or 500 Hz and records the *period error*
of every tick: its start minus its deadline. The loops are

* ``plain``: ``next += period; time.sleep(max(0, next - perf_counter()))`` — the pacing
  LeRobot uses on Linux;
* ``robolearn``: :class:`robolearn.control.rate.RateLoop` on a
  :class:`~robolearn.control.clock.WallClock` (absolute deadlines, sleep then spin),
  default ``"skip"`` overrun policy.

Each tick does a little work (observe, read the policy's latest action, command). The load is
``idle`` or a policy computing continuously, either in a *thread* of the loop's process (what
a single-process program does) or in its own *process* (spawned; the loop reads its action
from shared memory) — the design robolearn deploys with:

* ``torch policy``: an ACT-sized forward pass — ResNet-18 on one 96×96 image and a 4-layer
  transformer encoder, random weights, ``torch.set_num_threads(1)``; torch releases the GIL
  inside its kernels;
* ``python policy``: pure-Python work that never releases the GIL (pre/post-processing,
  chunk bookkeeping, tokenizers).

Workers start once and are switched on per cell; cells alternate over ``--rounds``. The
machine may be shared: from ``/proc`` the script measures the CPU that other processes
(kernel threads included) used during each run, and repeats a run during which they used
more than ``--max-other-cores`` (up to ``--tries`` runs). Writes
``benchmarks/results/control_timing.json`` and the README block ``bench:control_timing``;
takes about 3.5 minutes on a quiet machine (Linux only).

    python -m benchmarks.control_timing [--seconds 1] [--rounds 4] [--max-other-cores 0.1]
                                        [--tries 5] [--no-readme]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import write_results
from robolearn.control.clock import WallClock
from robolearn.control.rate import RateLoop, TimingStats

RATES_HZ = (50, 100, 500)
LOADS = ("idle", "torch policy", "python policy")
LOOPS = ("plain", "robolearn")
TARGET_P99_MS = 0.5
ACTION_DIM = 7
SLOT_FLOATS = 1 + ACTION_DIM  # inference counter, then the latest action


@dataclass(frozen=True)
class Cell:
    """One measurement: a loop at a rate under a load placed in a thread or a process."""

    hz: int
    load: str
    loop: str
    where: str  # "-" when idle, else "thread" or "process"


def cells() -> list[Cell]:
    """Every measured combination, rates outermost."""
    out = []
    for hz in RATES_HZ:
        for load in LOADS:
            places = ("-",) if load == "idle" else ("thread", "process")
            out += [Cell(hz, load, loop, where) for where in places for loop in LOOPS]
    return out


# ------------------------------------------------------------------------------ policies


def make_policy(load: str) -> Callable[[], np.ndarray]:
    """A function that runs one inference of ``load`` and returns an action (ACTION_DIM,)."""
    if load == "torch policy":
        return _torch_policy()
    if load == "python policy":
        return _python_policy
    raise ValueError(f"unknown load {load!r}")


def _torch_policy() -> Callable[[], np.ndarray]:
    import torch
    import torchvision

    torch.set_num_threads(1)
    backbone = torchvision.models.resnet18(weights=None).eval()
    layer = torch.nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 4).eval()
    image, tokens = torch.randn(1, 3, 96, 96), torch.randn(1, 16, 256)  # (B, C, H, W), (B, T, D)

    def infer() -> np.ndarray:
        with torch.inference_mode():
            features = backbone(image)  # (1, 1000)
            latent = encoder(tokens)  # (1, 16, 256)
            return (features[0, :ACTION_DIM] + latent[0, 0, :ACTION_DIM]).numpy()

    return infer


def _python_policy() -> np.ndarray:
    acc = 0.0
    for i in range(20_000):  # ≈ 1 ms of bytecode that holds the GIL throughout
        acc += (i % 7) * 0.5
    return np.full(ACTION_DIM, acc)


def _serve(load: str, slot: np.ndarray, go: Any, idle: Any, stop: Any) -> None:
    """Run inferences while ``go`` is set, publishing each into ``slot``; ``idle`` otherwise."""
    infer = make_policy(load)
    while not stop.is_set():
        if not go.is_set():
            idle.set()
            go.wait(0.1)
            continue
        idle.clear()
        slot[1:] = infer()
        slot[0] += 1


def _process_main(load: str, shm_name: str, events: tuple[MpEvent, ...], ready: MpEvent) -> None:
    shm = shared_memory.SharedMemory(name=shm_name)
    try:
        slot: np.ndarray = np.ndarray((SLOT_FLOATS,), np.float64, buffer=shm.buf)
        make_policy(load)()  # import and warm up before reporting ready
        ready.set()
        _serve(load, slot, *events)
        del slot
    finally:
        shm.close()


class Worker:
    """A policy computing continuously in the background, switched on and off per cell.

    ``slot`` holds the inference count, then the latest action.
    """

    slot: np.ndarray
    _go: Any
    _idle: Any

    def on(self) -> None:
        """Start computing; returns once the first inference of this cell has finished."""
        count = self.slot[0]
        self._go.set()
        while self.slot[0] == count:
            time.sleep(0.001)

    def off(self) -> None:
        """Stop computing; returns once the current inference has finished."""
        self._go.clear()
        self._idle.wait()

    def close(self) -> None:
        """Stop the worker and release what it holds."""


class ThreadWorker(Worker):
    """The policy in a thread of this process (what a single-process program does)."""

    def __init__(self, load: str) -> None:
        self._go, self._idle, self._stop = threading.Event(), threading.Event(), threading.Event()
        self.slot = np.zeros(SLOT_FLOATS)
        make_policy(load)()  # warm up now, not while a loop is measured
        args = (load, self.slot, self._go, self._idle, self._stop)
        self._thread = threading.Thread(target=_serve, args=args, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class ProcessWorker(Worker):
    """The policy in its own (spawned) process; its action comes back through shared memory."""

    def __init__(self, load: str) -> None:
        ctx = mp.get_context("spawn")
        self._go, self._idle, self._stop, ready = (ctx.Event() for _ in range(4))
        self._shm = shared_memory.SharedMemory(create=True, size=8 * SLOT_FLOATS)
        self.slot = np.ndarray((SLOT_FLOATS,), np.float64, buffer=self._shm.buf)
        self.slot[:] = 0.0
        events = (self._go, self._idle, self._stop)
        args = (load, self._shm.name, events, ready)
        self._proc = ctx.Process(target=_process_main, args=args, daemon=True)
        self._proc.start()
        self.pid: int = self._proc.pid or 0
        while not ready.wait(0.5):
            if not self._proc.is_alive():
                self.close()
                raise RuntimeError(f"the {load} worker process died while starting")

    def close(self) -> None:
        self._stop.set()
        self._proc.join(10)
        del self.slot
        self._shm.close()
        self._shm.unlink()


# --------------------------------------------------------------------------------- loops


def _tick_work(slot: np.ndarray, state: np.ndarray) -> None:
    """What a control tick does besides waiting: observe, read the action, command."""
    state += 1e-3  # observe
    action = slot[1:].copy()  # infer: the policy's latest action
    np.clip(state[:ACTION_DIM] + 1e-3 * action, -1.0, 1.0, out=state[:ACTION_DIM])  # command


def _window(hz: float, seconds: float) -> int:
    return math.ceil(hz * seconds) + 16


def run_plain(hz: float, seconds: float, slot: np.ndarray) -> TimingStats:
    """The plain loop: ``next += period``, ``time.sleep`` the rest; returns its statistics."""
    stats = TimingStats(hz, _window(hz, seconds), "wall", "catch_up")
    period_s, state = 1.0 / hz, np.zeros(ACTION_DIM)
    deadline = time.perf_counter()
    end = deadline + seconds
    while deadline < end:
        _tick_work(slot, state)
        deadline += period_s
        remaining = deadline - time.perf_counter()
        time.sleep(max(0.0, remaining))
        start = time.perf_counter()
        stats.record_tick(start, start - deadline, late=remaining <= 0)
    return stats


def run_robolearn(hz: float, seconds: float, slot: np.ndarray) -> TimingStats:
    """The RateLoop on the wall clock with the same work, its errors measured as the plain
    loop's are (``perf_counter`` when ``tick()`` returns); returns those statistics."""
    loop = RateLoop(hz, WallClock(), stats_window=_window(hz, seconds))
    stats = TimingStats(hz, _window(hz, seconds), "wall", loop.overrun)
    state = np.zeros(ACTION_DIM)
    loop.tick()
    end = loop.deadline_s + seconds
    while loop.deadline_s < end:
        with loop.section("work"):
            _tick_work(slot, state)
        late, skipped = loop.stats.overruns, loop.stats.skipped
        loop.tick()
        start = time.perf_counter()
        late, skipped = loop.stats.overruns - late, loop.stats.skipped - skipped
        stats.record_tick(start, start - loop.deadline_s, bool(late), skipped)
    return stats


# ------------------------------------------------------------------- the machine's load


def cpu_s_by_pid() -> dict[int, float]:
    """CPU-seconds each live process (kernel threads too) has used so far, by pid."""
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    used = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        used[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) * tick_s  # utime+stime
    return used


def foreign_cpu_s(
    before: dict[int, float], after: dict[int, float], own: list[int]
) -> dict[int, float]:
    """CPU-seconds each process other than ``own`` used between two :func:`cpu_s_by_pid`
    calls, where positive (processes that ended in between are missed)."""
    used = {pid: t - before.get(pid, 0.0) for pid, t in after.items() if pid not in own}
    return {pid: t for pid, t in used.items() if t > 0}


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


# ---------------------------------------------------------------------------- the bench


@dataclass
class Run:
    """One measurement of one cell."""

    stats: TimingStats
    elapsed_s: float
    inferences: float
    foreign_cpu_s: float
    loop_process_cpu_s: float
    """CPU-seconds of the loop's process (its policy thread included, if any)."""
    top_others: list[int] = field(default_factory=list)
    """Pids of the processes that used the most CPU meanwhile."""


@dataclass
class Tally:
    """The accepted runs of one cell."""

    runs: list[Run] = field(default_factory=list)
    retries: int = 0
    """Runs thrown away because other processes used the CPU meanwhile."""
    accepted_busy: int = 0
    """Runs kept although other processes were busy (every try was)."""

    def row(self, c: Cell) -> dict[str, Any]:
        """The cell's figures over all its accepted runs."""
        errors_ms = 1e3 * np.concatenate([r.stats.period_errors_s() for r in self.runs])
        elapsed_s = sum(r.elapsed_s for r in self.runs)
        ticks = sum(r.stats.ticks for r in self.runs)
        periods_s = [r.stats.summary()["mean_period_ms"] * 1e-3 for r in self.runs]
        mean_period_s = np.average(periods_s, weights=[r.stats.ticks for r in self.runs])
        p50, p99 = np.percentile(errors_ms, (50.0, 99.0))
        return {
            "hz": c.hz,
            "load": c.load,
            "where": c.where,
            "loop": c.loop,
            "period_error_ms": {
                "p50": float(p50),
                "p99": float(p99),
                "max": float(errors_ms.max()),
            },
            "achieved_hz": float(1.0 / mean_period_s),
            "ticks": ticks,
            "overruns": sum(r.stats.overruns for r in self.runs),
            "skipped": sum(r.stats.skipped for r in self.runs),
            "policy_inferences_per_s": float(sum(r.inferences for r in self.runs) / elapsed_s),
            "other_processes_cores": sum(r.foreign_cpu_s for r in self.runs) / elapsed_s,
            "loop_process_cores": sum(r.loop_process_cpu_s for r in self.runs) / elapsed_s,
            "retries": self.retries,
            "accepted_busy": self.accepted_busy,
        }


class Bench:
    """Runs every cell ``rounds`` times for ``seconds``; a run during which other processes
    used more than ``max_foreign_cores`` of CPU is repeated, up to ``tries`` times."""

    def __init__(self, seconds: float, rounds: int, max_foreign_cores: float, tries: int) -> None:
        self.seconds, self.rounds, self.tries = seconds, rounds, tries
        self.max_foreign_cores = max_foreign_cores
        self.tallies = {c: Tally() for c in cells()}
        self.workers: dict[tuple[str, str], Worker] = {}
        self.pids = [os.getpid()]

    def start_workers(self) -> None:
        """Start (and warm up) every policy worker, all switched off."""
        for c in cells():
            if c.where != "-" and (c.load, c.where) not in self.workers:
                worker: Worker
                if c.where == "process":
                    worker = ProcessWorker(c.load)
                    self.pids.append(worker.pid)
                else:
                    worker = ThreadWorker(c.load)
                self.workers[c.load, c.where] = worker

    def run(self) -> None:
        """All rounds; cell order alternates between rounds."""
        order = cells()
        for r in range(self.rounds):
            for c in order if r % 2 == 0 else order[::-1]:
                self.run_cell(c)
            print(f"round {r + 1}/{self.rounds} done", flush=True)

    def run_cell(self, c: Cell) -> None:
        """Measure ``c`` once, repeating while other processes keep the CPU busy."""
        tally = self.tallies[c]
        for attempt in range(1, self.tries + 1):
            run = self.measure(c)
            busy = run.foreign_cpu_s / run.elapsed_s > self.max_foreign_cores
            if not busy or attempt == self.tries:
                break
            tally.retries += 1
            who = ", ".join(f"{_name(pid)} ({pid})" for pid in run.top_others)
            print(f"  {c}: other processes busy ({who}); measuring again", flush=True)
            time.sleep(1.0)
        tally.accepted_busy += busy
        tally.runs.append(run)

    def measure(self, c: Cell) -> Run:
        """One run of cell ``c`` with its policy worker (if any) computing."""
        worker = self.workers.get((c.load, c.where))
        slot = worker.slot if worker else np.zeros(SLOT_FLOATS)
        if worker:
            worker.on()
        cpu0, scan0 = cpu_s_by_pid(), time.perf_counter()
        count0, t0, own0 = slot[0], time.perf_counter(), time.process_time()
        run_loop = run_plain if c.loop == "plain" else run_robolearn
        stats = run_loop(c.hz, self.seconds, slot)
        elapsed_s, inferences = time.perf_counter() - t0, slot[0] - count0
        own_cpu_s = time.process_time() - own0
        others = foreign_cpu_s(cpu0, cpu_s_by_pid(), self.pids)
        others_cores = sum(others.values()) / (time.perf_counter() - scan0)
        run = Run(stats, elapsed_s, inferences, others_cores * elapsed_s, own_cpu_s)
        run.top_others = sorted(others, key=others.__getitem__, reverse=True)[:3]
        if worker:
            worker.off()
        return run

    def close(self) -> None:
        """Stop every worker."""
        for worker in self.workers.values():
            worker.close()

    def results(self) -> list[dict[str, Any]]:
        """One row of figures per cell."""
        return [self.tallies[c].row(c) for c in cells()]


# ----------------------------------------------------------------------------- reporting


def _verdict(rows: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether robolearn (policy in a process) has p99 ≤ target at 100 and 500 Hz."""
    checked = [
        r
        for r in rows
        if r["loop"] == "robolearn" and r["where"] == "process" and r["hz"] in (100, 500)
    ]
    worst = max(r["period_error_ms"]["p99"] for r in checked)
    met = bool(worst <= TARGET_P99_MS)
    word = "**met**" if met else "**not met**"
    return met, (
        f"Target p99 ≤ {TARGET_P99_MS} ms at 100 and 500 Hz while the policy computes "
        f"(robolearn, policy in its own process): {word} — worst p99 {worst:.3f} ms."
    )


def _place(r: dict[str, Any]) -> str:
    return "idle" if r["where"] == "-" else f"{r['load']}, in a {r['where']}"


def _row_md(r: dict[str, Any]) -> str:
    e = r["period_error_ms"]
    loop = "robolearn `RateLoop`" if r["loop"] == "robolearn" else "plain `time.sleep`"
    return (
        f"| {r['hz']} | {_place(r)} | {loop} | {e['p50']:.3f} | {e['p99']:.3f} | "
        f"{e['max']:.3f} | {r['achieved_hz']:.1f} | {r['overruns']} ({r['skipped']}) | "
        f"{r['loop_process_cores']:.2f} | {r['policy_inferences_per_s']:.0f} | "
        f"{r['other_processes_cores']:.2f} |"
    )


def markdown(rows: list[dict[str, Any]], cmd: str, setup: dict[str, Any]) -> str:
    """The README block: command, machine, how to read it, the verdict, the table."""
    _, verdict = _verdict(rows)
    lines = [
        f"Measured with `{cmd}` on {setup['machine']}: {setup['seconds_per_cell']:g} s per "
        f"cell in {setup['rounds']} alternating rounds. Period error = tick start − its "
        "deadline on the wall clock, in ms, measured the same way for both loops. "
        "Overruns = ticks whose deadline had passed before the loop began waiting "
        "(skipped deadlines in brackets). CPU in cores. The machine is shared: a run during "
        f"which other processes used more than {setup['max_other_cores']:g} core was "
        f"measured again (up to {setup['tries']} tries; {setup['runs_repeated']} runs "
        f"repeated, {setup['runs_kept_busy']} kept busy after the last try); the last "
        "column is what other processes used during the runs kept.",
        "",
        verdict,
        "",
        "| Hz | load | loop | p50 | p99 | max | achieved Hz | overruns (skipped) "
        "| loop process CPU | policy inferences/s | other processes CPU |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_row_md(r) for r in rows]
    return "\n".join(lines)


def _machine_line() -> str:
    import platform

    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} CPU cores ({platform.machine()}, {model}), Linux"


def main() -> None:
    """Run the benchmark, print each row, write the JSON file and the README block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--max-other-cores",
        type=float,
        default=0.1,
        help="repeat a run during which other processes used more CPU than this (cores)",
    )
    parser.add_argument("--tries", type=int, default=5, help="runs at most, per cell and round")
    parser.add_argument("--no-readme", action="store_true", help="only write the JSON file")
    args = parser.parse_args()
    bench = Bench(args.seconds, args.rounds, args.max_other_cores, args.tries)
    bench.start_workers()
    try:
        bench.run()
    finally:
        bench.close()
    rows = bench.results()
    for r in rows:
        print(_row_md(r))
    setup = {
        "machine": _machine_line(),
        "seconds_per_cell": args.seconds * args.rounds,
        "rounds": args.rounds,
        "max_other_cores": args.max_other_cores,
        "tries": args.tries,
        "runs_repeated": sum(r["retries"] for r in rows),
        "runs_kept_busy": sum(r["accepted_busy"] for r in rows),
        "target_p99_ms": TARGET_P99_MS,
        "target_met": _verdict(rows)[0],
    }
    cmd = "python -m benchmarks.control_timing"
    if (args.seconds, args.rounds, args.max_other_cores, args.tries) != (1.0, 4, 0.1, 5):
        cmd += (
            f" --seconds {args.seconds:g} --rounds {args.rounds}"
            f" --max-other-cores {args.max_other_cores:g} --tries {args.tries}"
        )
    out = write_results(
        "control_timing",
        {"setup": setup, "cells": rows},
        markdown(rows, cmd, setup),
        readme=not args.no_readme,
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
