"""Data throughput: sustained multi-camera recording, and training-batch loading against LeRobot.

Two parts, one run:

* **recording** — a 30 Hz :class:`~robolearn.control.rate.RateLoop` on the wall clock feeds a
  :class:`~robolearn.data.DatasetWriter` three 480×640 RGB cameras plus state and action, for
  several ~10 s episodes. The frames are pre-generated (a moving gradient with shapes and
  noise, cycled): MuJoCo cannot render 3×480×640 at 30 fps on this CPU, so rendering would
  measure the renderer, not the writer. Reported: achieved fps, dropped frames (deadlines the
  loop skipped because a tick overran), late ticks, ``add_frame`` p99, ``save_episode``
  blocking time, encoder backlog, CPU use. Target: zero dropped frames.
* **loader** — the same arrays (episodes × frames, one 96×96 camera, state 8, action 4) are
  written by robolearn's writer and, through ``benchmarks/lerobot_side.py`` in LeRobot's own
  venv, by LeRobot's. Then Diffusion-Policy windows (2 observation steps, 16 action steps from
  ``1 - n_obs``) are pulled through a shuffled ``DataLoader`` (batch 32, workers 0 and 2) from
  robolearn's :class:`~robolearn.data.torch_dataset.WindowedDataset`, and from LeRobot's
  loader on its own dataset and on robolearn's. Target: ≥ 2× LeRobot's loader samples/s.

Writes ``benchmarks/results/data_throughput.json`` and the README block
``bench:data_throughput``. The LeRobot side is skipped (with a note) without ``.venv-lerobot``.

    python -m benchmarks.data_throughput [--episodes 3 --seconds 10] [--load-episodes 20]
"""

from __future__ import annotations

from robolearn.core import _gl  # noqa: F401  (picks MUJOCO_GL=egl before mujoco is imported)

# isort: split
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks._report import ROOT, machine, write_results
from robolearn.control.clock import WallClock
from robolearn.control.rate import RateLoop
from robolearn.data import DatasetReader, DatasetWriter, Feature
from robolearn.data.reader import FRAME_CACHE_MB
from robolearn.data.torch_dataset import WindowedDataset

LEROBOT_PY = ROOT / ".venv-lerobot" / "bin" / "python"
LEROBOT_SIDE = ROOT / "benchmarks" / "lerobot_side.py"
CAMS = ("front", "wrist", "side")
STATE_DIM, ACTION_DIM = 8, 4


# ---------------------------------------------------------------- synthetic frames


def video_frames(n: int, h: int, w: int, phase: int, seed: int) -> np.ndarray:
    """``(n, h, w, 3)`` uint8: a drifting colour gradient, a moving square, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w, 3), np.uint8)
    side = max(4, h // 6)
    for i in range(n):
        t = (i + phase) / max(n, 1)
        base = np.stack(
            [
                127 + 100 * np.sin(2 * np.pi * (xx / w + t)),
                127 + 100 * np.cos(2 * np.pi * (yy / h - t)),
                127 + 100 * np.sin(2 * np.pi * ((xx + yy) / (h + w) + 2 * t)),
            ],
            axis=-1,
        )
        base += rng.normal(0, 6, size=base.shape).astype(np.float32)
        y0 = int((h - side) * (0.5 + 0.5 * np.sin(2 * np.pi * t)))
        x0 = int((w - side) * (0.5 + 0.5 * np.cos(2 * np.pi * t)))
        base[y0 : y0 + side, x0 : x0 + side] = (255, 40, 40)
        out[i] = np.clip(base, 0, 255).astype(np.uint8)
    return out


def lowdim(n: int, dim: int, seed: int) -> np.ndarray:
    """``(n, dim)`` float32 random walk."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.05, size=(n, dim)), axis=0).astype(np.float32)


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def _ms(values: list[float], q: float) -> float:
    return round(1e3 * float(np.percentile(values, q)), 3) if values else float("nan")


# ---------------------------------------------------------------- recording


def bench_recording(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Record ``args.episodes`` episodes of 3×480×640 cameras at ``args.hz`` in real time."""
    h, w, hz = 480, 640, args.hz
    frames_per_ep = round(args.seconds * hz)
    t0 = time.perf_counter()
    pool = {c: video_frames(args.pool, h, w, 17 * i, i) for i, c in enumerate(CAMS)}
    print(f"[record] {args.pool} frames per camera in {time.perf_counter() - t0:.1f}s", flush=True)
    features = {
        "observation.state": Feature("float32", (STATE_DIM,)),
        "action": Feature("float32", (ACTION_DIM,)),
        **{f"observation.images.{c}": Feature("video", (h, w, 3)) for c in CAMS},
    }
    states = lowdim(frames_per_ep, STATE_DIM, 1)
    actions = lowdim(frames_per_ep, ACTION_DIM, 2)
    writer = DatasetWriter(work / "record", hz, features, mode="overwrite")
    loop = RateLoop(hz, WallClock(), overrun="skip")
    add_s: list[float] = []
    episodes: list[dict[str, Any]] = []
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    for ep in range(args.episodes):
        writer.start_episode("pick the cube")
        loop.restart()
        skipped0, late0 = loop.stats.skipped, loop.stats.overruns
        backlog_max, n, e0 = 0, 0, time.perf_counter()
        ep_add: list[float] = []
        for k in loop:
            if k >= frames_per_ep:
                break
            i = k % args.pool
            frame = {
                "observation.state": states[k],
                "action": actions[k],
                **{f"observation.images.{c}": pool[c][i] for c in CAMS},
            }
            a0 = time.perf_counter()
            writer.add_frame(frame)
            ep_add.append(time.perf_counter() - a0)
            backlog_max = max(backlog_max, writer.encoder_backlog)
            n += 1
        rec_s = time.perf_counter() - e0
        s0 = time.perf_counter()
        writer.save_episode()
        save_s = time.perf_counter() - s0
        add_s += ep_add
        episodes.append(
            {
                "frames": n,
                "grid_ticks": frames_per_ep,
                "dropped": loop.stats.skipped - skipped0,
                "late_ticks": loop.stats.overruns - late0,
                "fps": round(n / rec_s, 2),
                "add_frame_p99_ms": _ms(ep_add, 99),
                "encoder_backlog_max": backlog_max,
                "save_episode_s": round(save_s, 3),
            }
        )
        print(f"[record] episode {ep}: {episodes[-1]}", flush=True)
    wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
    writer.close()
    size = sum(p.stat().st_size for p in (work / "record").rglob("*") if p.is_file())
    summary = loop.stats.summary()
    dropped = sum(e["dropped"] for e in episodes)
    return {
        "hz": hz,
        "cameras": len(CAMS),
        "camera_shape": [h, w, 3],
        "episodes": args.episodes,
        "frames_per_episode": frames_per_ep,
        "frame_pool": args.pool,
        "codec": writer.video_codec,
        "video_options": writer.video_options,
        "frames_recorded": sum(e["frames"] for e in episodes),
        "dropped_frames": dropped,
        "late_ticks": sum(e["late_ticks"] for e in episodes),
        "fps_min": min(e["fps"] for e in episodes),
        "add_frame_ms": {"p50": _ms(add_s, 50), "p99": _ms(add_s, 99), "max": _ms(add_s, 100)},
        "period_error_ms": summary["period_error_ms"],
        "save_episode_s_max": max(e["save_episode_s"] for e in episodes),
        "encoder_backlog_max": max(e["encoder_backlog_max"] for e in episodes),
        "cpu_cores_used": round(cpu / wall, 2),
        "cpus": os.cpu_count(),
        "bytes_on_disk": size,
        "per_episode": episodes,
        "target_zero_dropped": dropped == 0,
    }


# ---------------------------------------------------------------- loader


def loader_data(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The arrays both writers record (LeRobot's ``--data`` npz layout)."""
    e, f, s = args.load_episodes, args.load_frames, args.load_size
    n = e * f
    return {
        "observation.state": lowdim(n, STATE_DIM, 3),
        "action": lowdim(n, ACTION_DIM, 4),
        "observation.images.front": video_frames(n, s, s, 0, 5),
        "episode_lengths": np.full(e, f, dtype=np.int64),
        "fps": np.array(args.load_fps),
        "tasks": np.array(["pick the cube"] * e),
    }


def write_ours(data: dict[str, np.ndarray], root: Path, fps: int) -> dict[str, Any]:
    """Write ``data`` with robolearn's writer; frames/s from creation to close."""
    size = data["observation.images.front"].shape[1]
    features = {
        "observation.state": Feature("float32", (STATE_DIM,)),
        "action": Feature("float32", (ACTION_DIM,)),
        "observation.images.front": Feature("video", (size, size, 3)),
    }
    t0 = time.perf_counter()
    start = 0
    with DatasetWriter(root, fps, features, mode="overwrite") as writer:
        for e, n in enumerate(data["episode_lengths"]):
            writer.start_episode(str(data["tasks"][e]))
            for i in range(start, start + int(n)):
                writer.add_frame({k: data[k][i] for k in features})
            writer.save_episode()
            start += int(n)
        codec = writer.video_codec
    seconds = time.perf_counter() - t0
    frames = int(data["episode_lengths"].sum())
    return {
        "frames": frames,
        "seconds": round(seconds, 3),
        "frames_per_s": round(frames / seconds, 2),
        "codec": codec,
    }


def _collate_count(batch: dict[str, Any]) -> int:
    return int(batch["index"].shape[0])


def measure_ours(
    root: Path, workers: int, args: argparse.Namespace, frame_cache_mb: float | None = None
) -> dict[str, Any]:
    """Steady-state samples/s of WindowedDataset, as lerobot_side.measure_loader does it
    (``frame_cache_mb``: the reader's decoded-episode budget; None: its default)."""
    reader = DatasetReader(
        root, frame_cache_mb=FRAME_CACHE_MB if frame_cache_mb is None else frame_cache_mb
    )
    ds = WindowedDataset(
        reader,
        obs_keys=["observation.state"],
        action_key="action",
        n_obs_steps=args.obs_steps,
        horizon=args.horizon,
        image_keys=["observation.images.front"],
        action_offset=1 - args.obs_steps,
    )
    g = torch.Generator().manual_seed(0)
    extra: dict[str, Any] = {"prefetch_factor": 2} if workers else {}
    dl = DataLoader(
        ds, batch_size=args.batch_size, shuffle=True, num_workers=workers, generator=g, **extra
    )
    warmup = 1 + workers * 2
    budget = min(args.max_samples, len(ds))
    t0 = time.perf_counter()
    it = iter(dl)
    first = next(it)
    t_first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        next(it, None)
    samples, t1 = 0, time.perf_counter()
    for batch in it:
        samples += _collate_count(batch)
        if samples >= budget or time.perf_counter() > t1 + args.time_limit:
            break
    t2 = time.perf_counter()
    del it
    reader.close()
    return {
        "workers": workers,
        "batch_size": args.batch_size,
        "first_batch_s": round(t_first, 4),
        "samples": samples,
        "seconds": round(t2 - t1, 4),
        "samples_per_s": round(samples / (t2 - t1), 2),
        "batch_shapes": {k: list(v.shape) for k, v in first.items() if hasattr(v, "shape")},
    }


def lerobot(argv: list[str]) -> dict[str, Any] | None:
    """Run lerobot_side.py in LeRobot's venv; its JSON, or None (with a note) on failure."""
    cmd = [str(LEROBOT_PY), str(LEROBOT_SIDE), *argv]
    print(f"[lerobot] {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _lerobot_window(result: dict[str, Any] | None) -> dict[int, float]:
    if not result or "load" not in result:
        return {}
    runs = result["load"]["cases"].get("window_video", {}).get("runs", [])
    return {int(r["workers"]): float(r["samples_per_s"]) for r in runs if r["samples_per_s"]}


def bench_loader(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Write the same data with both writers, then time both loaders on both datasets."""
    data = loader_data(args)
    ours_root = work / "ours"
    out: dict[str, Any] = {
        "episodes": args.load_episodes,
        "frames_per_episode": args.load_frames,
        "camera_shape": [args.load_size, args.load_size, 3],
        "fps": args.load_fps,
        "window": {
            "n_obs_steps": args.obs_steps,
            "horizon": args.horizon,
            "action_offset": 1 - args.obs_steps,
        },
        "batch_size": args.batch_size,
    }
    out["write_ours"] = write_ours(data, ours_root, args.load_fps)
    with DatasetReader(ours_root) as reader:
        out["decoded_mb"] = round(reader.decoded_bytes() / 1e6, 1)
    print(f"[loader] robolearn write: {out['write_ours']}", flush=True)
    workers = [int(w) for w in args.workers.split(",")]
    out["load_ours"], out["load_ours_no_cache"] = {}, {}
    for w in workers:
        out["load_ours"][w] = measure_ours(ours_root, w, args)
        out["load_ours_no_cache"][w] = measure_ours(ours_root, w, args, frame_cache_mb=0)
        print(
            f"[loader] robolearn workers={w}: {out['load_ours'][w]['samples_per_s']}/s "
            f"(decoded-episode cache off: {out['load_ours_no_cache'][w]['samples_per_s']}/s)",
            flush=True,
        )
    if not LEROBOT_PY.exists():
        out["lerobot"] = "skipped: .venv-lerobot is missing"
        return out
    npz = work / "data.npz"
    np.savez(npz, **data)  # type: ignore[arg-type]
    del data
    common = [
        "--workers",
        args.workers,
        "--batch-size",
        str(args.batch_size),
        "--obs-steps",
        str(args.obs_steps),
        "--horizon",
        str(args.horizon),
        "--cases",
        "window_video",
        "--max-samples",
        str(args.max_samples),
        "--time-limit",
        str(args.time_limit),
    ]
    own = lerobot(
        ["--data", str(npz), "--workdir", str(work / "lerobot"), "--write-modes", "video", *common]
    )
    on_ours = lerobot(["--load-root", str(ours_root), "--write-modes", "", *common])
    out["lerobot_own"] = own
    out["lerobot_on_ours"] = on_ours
    lr_own, lr_ours = _lerobot_window(own), _lerobot_window(on_ours)
    ratios: dict[str, Any] = {}
    for w in workers:
        mine = out["load_ours"][w]["samples_per_s"]
        if w in lr_own:
            ratios[f"vs_lerobot_own_w{w}"] = round(mine / lr_own[w], 2)
        if w in lr_ours:
            ratios[f"vs_lerobot_on_ours_w{w}"] = round(mine / lr_ours[w], 2)
        uncached = out["load_ours_no_cache"][w]["samples_per_s"]
        if w in lr_own:
            ratios[f"no_cache_vs_lerobot_own_w{w}"] = round(uncached / lr_own[w], 2)
    if own and "write" in own:
        lw = own["write"]["video"]["frames_per_s"]
        ratios["writer_vs_lerobot"] = round(out["write_ours"]["frames_per_s"] / lw, 2)
    out["ratios"] = ratios
    loader_ratios = [v for k, v in ratios.items() if k.startswith("vs_lerobot")]
    out["target_2x_loader"] = bool(loader_ratios) and min(loader_ratios) >= 2.0
    return out


# ---------------------------------------------------------------- report


def markdown(rec: dict[str, Any], load: dict[str, Any], cmd: str) -> str:
    m = machine()
    lines = [
        f"Measured with `{cmd}` on {m['processor']}, {m['cpus']} CPUs, {m['platform']}, "
        f"Python {m['python']}.",
        "",
        f"**Recording** — {rec['cameras']} cameras {rec['camera_shape'][1]}×"
        f"{rec['camera_shape'][0]} RGB + state/action at {rec['hz']:g} Hz, {rec['episodes']} "
        f"episodes × {rec['frames_per_episode']} frames, {rec['codec']} "
        f"{rec['video_options']}. Frames are pre-generated ({rec['frame_pool']} per camera, "
        "cycled): MuJoCo cannot render 3×480×640 at 30 fps on this CPU.",
        "",
        "| achieved fps (min) | dropped frames | late ticks | add_frame p50 / p99 / max ms "
        "| save_episode max s | encoder backlog max | CPU cores used |",
        "|---|---|---|---|---|---|---|",
        f"| {rec['fps_min']} | {rec['dropped_frames']} | {rec['late_ticks']} | "
        f"{rec['add_frame_ms']['p50']} / {rec['add_frame_ms']['p99']} / "
        f"{rec['add_frame_ms']['max']} | {rec['save_episode_s_max']} | "
        f"{rec['encoder_backlog_max']} | {rec['cpu_cores_used']} of {rec['cpus']} |",
        "",
        f"Target zero dropped frames: **{'met' if rec['target_zero_dropped'] else 'not met'}**.",
        "",
        f"**Loader** — {load['episodes']} episodes × {load['frames_per_episode']} frames, one "
        f"{load['camera_shape'][0]}×{load['camera_shape'][1]} camera, state {STATE_DIM}, "
        f"action {ACTION_DIM}, {load['fps']} fps; Diffusion-Policy window (obs "
        f"{load['window']['n_obs_steps']}, horizon {load['window']['horizon']}), shuffled "
        f"DataLoader, batch {load['batch_size']}, steady-state samples/s.",
        "",
        "| num_workers | robolearn WindowedDataset | LeRobot on its dataset | "
        "LeRobot on robolearn's dataset | ratio vs own | ratio vs on ours | "
        "robolearn, cache off | ratio (cache off) vs own |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lr_own = _lerobot_window(load.get("lerobot_own"))
    lr_ours = _lerobot_window(load.get("lerobot_on_ours"))
    ratios = load.get("ratios", {})
    for w, r in load["load_ours"].items():
        lines.append(
            f"| {w} | {r['samples_per_s']} | {lr_own.get(w, '—')} | {lr_ours.get(w, '—')} | "
            f"{ratios.get(f'vs_lerobot_own_w{w}', '—')} | "
            f"{ratios.get(f'vs_lerobot_on_ours_w{w}', '—')} | "
            f"{load.get('load_ours_no_cache', {}).get(w, {}).get('samples_per_s', '—')} | "
            f"{ratios.get(f'no_cache_vs_lerobot_own_w{w}', '—')} |"
        )
    lines += [
        "",
        "robolearn's reader keeps whole decoded episodes when all of a dataset's video frames "
        "fit in `frame_cache_mb` (default 1 GB per process; this dataset: "
        f"{load.get('decoded_mb', '?')} MB), so each episode is decoded once, sequentially; "
        "*cache off* (`DatasetReader(root, frame_cache_mb=0)`) decodes every window as "
        "LeRobot does. The target counts the default configuration.",
    ]
    lines.append("")
    wo = load["write_ours"]
    if isinstance(load.get("lerobot"), str):
        lines.append(f"LeRobot {load['lerobot']}.")
    else:
        own = load.get("lerobot_own") or {}
        lw = own.get("write", {}).get("video", {})
        ver = own.get("versions", {}).get("lerobot", "?")
        lines.append(
            f"Writer: robolearn {wo['frames_per_s']} frames/s ({wo['codec']}), LeRobot {ver} "
            f"{lw.get('frames_per_s', '—')} frames/s ({lw.get('codec', '?')}, its defaults) — "
            f"ratio {ratios.get('writer_vs_lerobot', '—')}."
        )
    lines += [
        "",
        "Target ≥ 2× LeRobot's loader throughput (every row, both datasets): "
        f"**{'met' if load.get('target_2x_loader') else 'not met'}**.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hz", type=float, default=30.0)
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0, help="per recorded episode")
    p.add_argument("--pool", type=int, default=60, help="pre-generated frames per camera")
    p.add_argument("--load-episodes", type=int, default=20)
    p.add_argument("--load-frames", type=int, default=200)
    p.add_argument("--load-size", type=int, default=96)
    p.add_argument("--load-fps", type=int, default=20)
    p.add_argument("--workers", default="0,2")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--obs-steps", type=int, default=2)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--max-samples", type=int, default=2048)
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds per loader run")
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args(argv)
    cmd = "python -m benchmarks.data_throughput" + (" " + " ".join(argv) if argv else "")
    work = Path(tempfile.mkdtemp(prefix="data_throughput_"))
    try:
        rec = bench_recording(args, work)
        load = bench_loader(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"command": cmd, "recording": rec, "loader": load}
    out = write_results(
        "data_throughput", figures, markdown(rec, load, cmd), readme=not args.no_readme
    )
    print(markdown(rec, load, cmd))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
