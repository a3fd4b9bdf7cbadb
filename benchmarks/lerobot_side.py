"""Hugging Face LeRobot's own writer and loader throughput, for robolearn to compare against.

Run this with the LeRobot venv's python (Python >= 3.12, ``pip install 'lerobot[dataset]'``),
never robolearn's: it imports nothing from robolearn. It prints ONE JSON object to stdout
(everything else goes to stderr), so robolearn's benchmark can call it as a subprocess:

    .venv-lerobot/bin/python benchmarks/lerobot_side.py [--data data.npz] [--workdir DIR]
        [--episodes 20 --frames 200 --size 96 --fps 20]
        [--write-modes video,lowdim] [--load-root DIR] [--workers 0,2] [--batch-size 32]

What it measures:

* write: ``LeRobotDataset.create`` → ``add_frame`` for every frame → ``save_episode`` per
  episode → ``finalize``, wall time from create to finalize (PNG staging, AV1 encoding,
  parquet, stats, metadata all included). Modes: ``video`` (state, action and one camera,
  lerobot-record's defaults: background PNG writer with ``--image-writer-threads`` threads,
  libsvtav1 crf 30 g 2), ``streaming`` (``streaming_encoding=True``: frames encoded while
  recording) and ``lowdim`` (state and action only, no camera). Reported as frames/s.
* load: the ``video`` dataset (or ``--load-root``, e.g. a robolearn-written dataset) opened
  with ``LeRobotDataset(repo_id, root=...)``, then batches pulled through
  ``torch.utils.data.DataLoader`` (shuffled, seeded) for each ``--workers`` value, in four
  cases: ``frame`` (one frame per sample) and ``window`` (Diffusion-Policy-like
  ``delta_timestamps``: observation ``--obs-steps`` steps, action ``--horizon`` steps starting
  at ``1 - obs_steps``), each with video decoding (``video``) and without (``novideo``: the
  camera feature is dropped from the loaded metadata so only parquet columns are read — the
  same files, no decode). Reported as samples/s in steady state: the first batch (worker
  start-up, reported as ``first_batch_s``) and ``workers * prefetch_factor`` more batches are
  warm-up; then up to ``--max-samples`` samples (or ``--time-limit`` s) are timed.

``--data FILE.npz`` makes LeRobot write exactly the caller's data. Keys:
``observation.state`` float32 (N, S), ``action`` float32 (N, A), optionally one or more
``observation.images.<name>`` uint8 (N, H, W, 3), ``episode_lengths`` int (E,) summing to N,
optionally ``fps`` (scalar) and ``tasks`` (E,) str. Without it, a deterministic synthetic
dataset is generated (seeded random walk state/action, a moving square over a gradient).

Nothing touches the network: ``HF_HUB_OFFLINE=1`` is set before LeRobot is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# isort: split
import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CAMERA_PREFIX = "observation.images."
DEFAULT_REPO_ID = "robolearn/lerobot_side_bench"


def log(msg: str) -> None:
    print(f"[lerobot_side] {msg}", file=sys.stderr, flush=True)


def quiet() -> None:
    """Silence ``datasets`` progress bars (LeRobot re-enables them after each parquet load)."""
    import datasets.utils.logging as dlog

    dlog.disable_progress_bar()
    setattr(dlog, "enable_progress_bar", lambda: None)  # noqa: B010


# ---------------------------------------------------------------- data


def synthetic(episodes: int, frames: int, size: int, state_dim: int, action_dim: int, seed: int):
    """Deterministic synthetic data: random-walk state/action, a moving square on a gradient."""
    rng = np.random.default_rng(seed)
    n = episodes * frames
    state = np.cumsum(rng.normal(0, 0.05, (n, state_dim)), axis=0).astype(np.float32)
    action = (state[:, :action_dim] + rng.normal(0, 0.01, (n, action_dim))).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    bg = np.stack([xx * 255 // size, yy * 255 // size, (xx + yy) * 127 // size], -1).astype(
        np.uint8
    )
    imgs = np.empty((n, size, size, 3), dtype=np.uint8)
    side = max(4, size // 6)
    for i in range(n):
        t = (i % frames) / frames
        e = i // frames
        cx = int((0.5 + 0.4 * np.sin(2 * np.pi * (t + 0.1 * e))) * (size - side))
        cy = int((0.5 + 0.4 * np.cos(2 * np.pi * t)) * (size - side))
        img = bg.copy()
        img[cy : cy + side, cx : cx + side] = (230, 40 + 10 * (e % 20), 40)
        imgs[i] = img
    return {
        "observation.state": state,
        "action": action,
        CAMERA_PREFIX + "front": imgs,
        "episode_lengths": np.full(episodes, frames, dtype=np.int64),
        "tasks": np.array([f"task {e % 3}" for e in range(episodes)]),
    }


def load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    n = len(data["observation.state"])
    lengths = data["episode_lengths"].astype(np.int64)
    if int(lengths.sum()) != n:
        raise ValueError(f"episode_lengths sum {lengths.sum()} != {n} frames")
    if "tasks" not in data:
        data["tasks"] = np.array(["task 0"] * len(lengths))
    return data


def features_for(data: dict[str, np.ndarray], with_cameras: bool) -> dict[str, dict]:
    feats: dict[str, dict] = {
        "observation.state": {
            "dtype": "float32",
            "shape": (data["observation.state"].shape[1],),
            "names": None,
        },
        "action": {"dtype": "float32", "shape": (data["action"].shape[1],), "names": None},
    }
    if with_cameras:
        for k in camera_keys(data):
            _, h, w, c = data[k].shape
            feats[k] = {
                "dtype": "video",
                "shape": (h, w, c),
                "names": ["height", "width", "channels"],
            }
    return feats


def camera_keys(data: dict[str, np.ndarray]) -> list[str]:
    return [k for k in data if k.startswith(CAMERA_PREFIX)]


# ---------------------------------------------------------------- write


def write(
    data: dict[str, np.ndarray], root: Path, fps: int, mode: str, args: argparse.Namespace
) -> dict[str, Any]:
    from lerobot.configs import RGBEncoderConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    if root.exists():
        shutil.rmtree(root)
    with_cameras = mode in ("video", "streaming")
    cams = camera_keys(data) if with_cameras else []
    lengths = data["episode_lengths"].astype(np.int64)
    enc_kwargs: dict[str, Any] = {"vcodec": args.codec}
    if args.crf is not None:
        enc_kwargs["crf"] = args.crf
    if args.gop is not None:
        enc_kwargs["g"] = args.gop
    t_create = time.perf_counter()
    ds = LeRobotDataset.create(
        repo_id=args.repo_id,
        fps=fps,
        features=features_for(data, with_cameras),
        root=root,
        use_videos=True,
        rgb_encoder=RGBEncoderConfig(**enc_kwargs) if cams else None,
        image_writer_threads=args.image_writer_threads * len(cams) if mode == "video" else 0,
        streaming_encoding=mode == "streaming",
        encoder_threads=args.encoder_threads,
    )
    add_s = save_s = 0.0
    start = 0
    for e, n in enumerate(lengths):
        task = str(data["tasks"][e])
        t0 = time.perf_counter()
        for i in range(start, start + int(n)):
            frame: dict[str, Any] = {
                "observation.state": data["observation.state"][i],
                "action": data["action"][i],
                "task": task,
            }
            for k in cams:
                frame[k] = data[k][i]
            ds.add_frame(frame)
        t1 = time.perf_counter()
        ds.save_episode()
        t2 = time.perf_counter()
        add_s += t1 - t0
        save_s += t2 - t1
        start += int(n)
    t3 = time.perf_counter()
    ds.finalize()
    t_end = time.perf_counter()
    total = t_end - t_create
    frames = int(lengths.sum())
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return {
        "mode": mode,
        "root": str(root),
        "episodes": len(lengths),
        "frames": frames,
        "cameras": cams,
        "seconds": round(total, 4),
        "frames_per_s": round(frames / total, 2),
        "add_frame_s": round(add_s, 4),
        "save_episode_s": round(save_s, 4),
        "finalize_s": round(t_end - t3, 4),
        "bytes_on_disk": size,
        "codec": args.codec if cams else None,
        "image_writer_threads": args.image_writer_threads * len(cams) if mode == "video" else 0,
    }


# ---------------------------------------------------------------- load


def _drop_cameras(ds: Any) -> None:
    """Make LeRobot skip video decoding on an opened dataset (same files, parquet only)."""
    feats = ds.meta.info.features
    for k in [k for k, ft in feats.items() if ft["dtype"] in ("video", "image")]:
        del feats[k]


def open_dataset(root: Path, args: argparse.Namespace, delta: dict | None, video: bool):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    kwargs: dict[str, Any] = {"root": root, "delta_timestamps": delta}
    if args.video_backend:
        kwargs["video_backend"] = args.video_backend
    t0 = time.perf_counter()
    ds = LeRobotDataset(args.repo_id, **kwargs)
    open_s = time.perf_counter() - t0
    if not video:
        _drop_cameras(ds)
    return ds, open_s


def measure_loader(ds: Any, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(args.seed)
    dl_kwargs: dict[str, Any] = {}
    if workers > 0:
        dl_kwargs = {
            "prefetch_factor": args.prefetch_factor,
            "persistent_workers": False,
            "multiprocessing_context": args.mp_context,
        }
    dl = torch.utils.data.DataLoader(
        ds,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=workers,
        generator=g,
        drop_last=False,
        **dl_kwargs,
    )
    # Warm-up: the first batch (worker start-up) plus what the workers prefetched meanwhile.
    warmup = 1 + workers * args.prefetch_factor
    budget = min(args.max_samples, len(ds))
    t0 = time.perf_counter()
    it = iter(dl)
    first = next(it)
    t_first = time.perf_counter() - t0
    warm_samples = len(first["index"])
    for _ in range(warmup - 1):
        b = next(it, None)
        if b is None:
            break
        warm_samples += len(b["index"])
    samples = 0
    t1 = time.perf_counter()
    deadline = t1 + args.time_limit
    for batch in it:
        samples += len(batch["index"])
        if samples >= budget or time.perf_counter() > deadline:
            break
    t2 = time.perf_counter()
    del it
    shapes = {k: list(v.shape) for k, v in first.items() if hasattr(v, "shape")}
    return {
        "workers": workers,
        "batch_size": args.batch_size,
        "first_batch_s": round(t_first, 4),
        "warmup_samples": warm_samples,
        "samples": samples,
        "seconds": round(t2 - t1, 4),
        "samples_per_s": round(samples / (t2 - t1), 2) if samples else None,
        "total_samples_per_s": round((samples + warm_samples) / (t2 - t0), 2),
        "batch_shapes": shapes,
    }


def load_bench(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata

    meta = LeRobotDatasetMetadata(args.repo_id, root=root)
    fps = meta.fps
    cams = meta.video_keys
    obs = [(k - args.obs_steps + 1) / fps for k in range(args.obs_steps)]
    act = [k / fps for k in range(1 - args.obs_steps, 1 - args.obs_steps + args.horizon)]
    window_video = {"observation.state": obs, "action": act, **{c: obs for c in cams}}
    window_novideo = {"observation.state": obs, "action": act}
    cases = [
        ("frame_video", None, True),
        ("frame_novideo", None, False),
        ("window_video", window_video, True),
        ("window_novideo", window_novideo, False),
    ]
    wanted = set(args.cases.split(","))
    out: dict[str, Any] = {
        "root": str(root),
        "episodes": meta.total_episodes,
        "frames": meta.total_frames,
        "fps": fps,
        "cameras": cams,
        "delta_timestamps": {"observation": obs, "action": act},
        "cases": {},
    }
    for name, delta, video in cases:
        if name not in wanted or (video and not cams):
            continue
        ds, open_s = open_dataset(root, args, delta, video)
        out["video_backend"] = ds._video_backend
        rows = []
        for w in args.workers:
            log(f"load {name} workers={w}")
            rows.append(measure_loader(ds, w, args))
        out["cases"][name] = {"open_s": round(open_s, 4), "runs": rows}
        del ds
    return out


# ---------------------------------------------------------------- main


def versions() -> dict[str, Any]:
    import av
    import datasets
    import lerobot
    import pyarrow
    import torch

    v: dict[str, Any] = {
        "lerobot": lerobot.__version__,
        "torch": torch.__version__,
        "av": av.__version__,
        "pyarrow": pyarrow.__version__,
        "datasets": datasets.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    try:
        import torchcodec

        v["torchcodec"] = torchcodec.__version__
    except Exception as exc:  # torchcodec needs system FFmpeg libs
        v["torchcodec"] = f"unavailable: {type(exc).__name__}"
    return v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="npz with the frames to write (see above); default synthetic")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--frames", type=int, default=200, help="frames per episode (synthetic)")
    p.add_argument("--size", type=int, default=96, help="square camera size (synthetic)")
    p.add_argument("--state-dim", type=int, default=8)
    p.add_argument("--action-dim", type=int, default=4)
    p.add_argument("--fps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repo-id", default=DEFAULT_REPO_ID)
    p.add_argument("--workdir", help="where datasets are written (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the written datasets")
    p.add_argument(
        "--write-modes",
        default="video,lowdim",
        help="comma list of video, streaming, lowdim; empty to skip writing",
    )
    p.add_argument("--codec", default="libsvtav1", help="LeRobot's default; h264/hevc also work")
    p.add_argument("--crf", type=int, default=None, help="default: LeRobot's (30)")
    p.add_argument("--gop", type=int, default=None, help="default: LeRobot's (2)")
    p.add_argument("--encoder-threads", type=int, default=None, help="default: codec decides")
    p.add_argument(
        "--image-writer-threads",
        type=int,
        default=4,
        help="PNG writer threads per camera in 'video' mode (lerobot-record default 4)",
    )
    p.add_argument("--load-root", help="benchmark the loader on this dataset instead")
    p.add_argument("--no-load", action="store_true")
    p.add_argument("--workers", default="0,2", help="DataLoader num_workers values")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--prefetch-factor", type=int, default=2)
    p.add_argument("--mp-context", default="spawn", help="lerobot-train uses spawn")
    p.add_argument(
        "--max-samples", type=int, default=2048, help="timed samples per run, after warm-up"
    )
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per run")
    p.add_argument("--obs-steps", type=int, default=2)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--cases", default="frame_video,frame_novideo,window_video,window_novideo")
    p.add_argument("--video-backend", default=None, help="torchcodec | pyav (default LeRobot's)")
    args = p.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w != ""]

    import torch

    quiet()
    result: dict[str, Any] = {
        "tool": "benchmarks/lerobot_side.py",
        "versions": versions(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
    }
    tmp = None
    if args.workdir:
        work = Path(args.workdir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="lerobot_side_")
        work = Path(tmp)
    try:
        modes = [m for m in args.write_modes.split(",") if m]
        if modes:
            t0 = time.perf_counter()
            if args.data:
                data = load_npz(args.data)
                fps = int(data["fps"]) if "fps" in data else args.fps
            else:
                data = synthetic(
                    args.episodes,
                    args.frames,
                    args.size,
                    args.state_dim,
                    args.action_dim,
                    args.seed,
                )
                fps = args.fps
            log(f"data ready in {time.perf_counter() - t0:.1f}s")
            result["data"] = {
                "source": args.data or "synthetic",
                "episodes": len(data["episode_lengths"]),
                "frames": int(data["episode_lengths"].sum()),
                "fps": fps,
                "shapes": {k: list(v.shape) for k, v in data.items() if k not in ("tasks", "fps")},
            }
            result["write"] = {}
            for mode in modes:
                log(f"write {mode}")
                result["write"][mode] = write(data, work / f"lerobot_{mode}", fps, mode, args)
            del data
        if not args.no_load:
            if args.load_root:
                root = Path(args.load_root).resolve()
            elif "video" in result.get("write", {}):
                root = work / "lerobot_video"
            elif "streaming" in result.get("write", {}):
                root = work / "lerobot_streaming"
            else:
                raise SystemExit("nothing to load: pass --load-root or write a video dataset")
            result["load"] = load_bench(root, args)
    finally:
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
