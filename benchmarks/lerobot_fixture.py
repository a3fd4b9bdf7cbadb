"""Write or load a tiny LeRobot v3.0 dataset with Hugging Face LeRobot's own API.

Run this with the LeRobot venv's python (Python >= 3.12, ``pip install 'lerobot[dataset]'``),
never with robolearn's: it imports nothing from robolearn.

    .venv-lerobot/bin/python benchmarks/lerobot_fixture.py write OUT [--codec libsvtav1]
    .venv-lerobot/bin/python benchmarks/lerobot_fixture.py load ROOT [--repo-id ID] [--json]

``write`` records a deterministic dataset with ``LeRobotDataset.create`` / ``add_frame`` /
``save_episode`` / ``finalize``: features ``observation.state`` (float32, 8),
``action`` (float32, 4) and one video camera ``observation.images.front`` (48x64x3 uint8),
fps 20, episodes of 10, 12 and 8 frames (``--lengths``), tasks reused across episodes.
It also writes ``<OUT>.expected.json`` beside the folder (not inside it) with the generating
formula's values, so a reader can be checked without LeRobot.

Values, for episode ``e`` and frame ``f`` (also in ``expected_values`` below):
    observation.state[i] = e * 100 + f + i / 10
    action[j]            = -(e * 100 + f) - j / 10
    image                = one flat colour (R, G, B) = (20 + 8 f, 40 + 60 e, 200 - 5 f)

``load`` opens a dataset folder with ``LeRobotDataset(repo_id, root=ROOT)`` offline,
checks counts, shapes, timestamps, task strings, decodes frames from every episode and
fetches Diffusion-Policy-like windows (``delta_timestamps``) at episode edges; it prints a report
(JSON with ``--json``) and exits 1 with the error if anything fails.

Nothing here touches the network: ``HF_HUB_OFFLINE=1`` is set before LeRobot is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# isort: split
import argparse
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

FPS = 20
HEIGHT, WIDTH = 48, 64
STATE_DIM, ACTION_DIM = 8, 4
CAMERA = "observation.images.front"
TASKS = ["pick up the red cube", "push the blue block to the goal"]
DEFAULT_REPO_ID = "robolearn/lerobot_v3_tiny"


def quiet() -> None:
    """Silence ``datasets`` progress bars (LeRobot re-enables them after each parquet load)."""
    import datasets.utils.logging as dlog

    dlog.disable_progress_bar()
    setattr(dlog, "enable_progress_bar", lambda: None)  # noqa: B010


def features() -> dict[str, dict[str, Any]]:
    """The user features passed to ``LeRobotDataset.create`` (LeRobot adds the default ones)."""
    return {
        "observation.state": {
            "dtype": "float32",
            "shape": (STATE_DIM,),
            "names": [f"q{i}" for i in range(STATE_DIM)],
        },
        "action": {
            "dtype": "float32",
            "shape": (ACTION_DIM,),
            "names": ["dx", "dy", "dz", "gripper"],
        },
        CAMERA: {
            "dtype": "video",
            "shape": (HEIGHT, WIDTH, 3),
            "names": ["height", "width", "channels"],
        },
    }


def frame_colour(ep: int, f: int) -> tuple[int, int, int]:
    return (20 + 8 * f) % 256, (40 + 60 * ep) % 256, (200 - 5 * f) % 256


def expected_values(ep: int, f: int) -> dict[str, Any]:
    base = ep * 100 + f
    state = np.array([base + i / 10 for i in range(STATE_DIM)], dtype=np.float32)
    action = np.array([-base - j / 10 for j in range(ACTION_DIM)], dtype=np.float32)
    return {"state": state, "action": action, "colour": frame_colour(ep, f)}


def task_of(ep: int) -> str:
    return TASKS[ep % 2]


def _rgb_encoder(codec: str, crf: int | None, gop: int | None):
    from lerobot.configs import RGBEncoderConfig

    kwargs: dict[str, Any] = {"vcodec": codec}
    if crf is not None:
        kwargs["crf"] = crf
    if gop is not None:
        kwargs["g"] = gop
    return RGBEncoderConfig(**kwargs)


def write(args: argparse.Namespace) -> int:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    quiet()
    out = Path(args.out).resolve()
    if out.exists():
        if not args.overwrite:
            print(f"error: {out} exists (use --overwrite)", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    lengths = [int(x) for x in args.lengths.split(",")]
    t0 = time.perf_counter()
    ds = LeRobotDataset.create(
        repo_id=args.repo_id,
        fps=FPS,
        features=features(),
        root=out,
        robot_type=args.robot_type,
        use_videos=True,
        rgb_encoder=_rgb_encoder(args.codec, args.crf, args.gop),
    )
    expected: dict[str, Any] = {"episodes": []}
    for ep, n in enumerate(lengths):
        rows = []
        for f in range(n):
            v = expected_values(ep, f)
            img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
            img[...] = np.array(v["colour"], dtype=np.uint8)
            ds.add_frame(
                {
                    "observation.state": v["state"],
                    "action": v["action"],
                    CAMERA: img,
                    "task": task_of(ep),
                }
            )
            rows.append(
                {
                    "frame_index": f,
                    "timestamp": f / FPS,
                    "observation.state": v["state"].tolist(),
                    "action": v["action"].tolist(),
                    "colour": list(v["colour"]),
                }
            )
        ds.save_episode()
        expected["episodes"].append(
            {"episode_index": ep, "length": n, "task": task_of(ep), "frames": rows}
        )
    ds.finalize()
    elapsed = time.perf_counter() - t0
    # LeRobot stages PNG frames under images/ and leaves the emptied folders behind.
    for d in sorted((out / "images").glob("**/"), key=lambda p: len(p.parts), reverse=True):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()

    import lerobot

    expected.update(
        {
            "generator": "benchmarks/lerobot_fixture.py write",
            "lerobot_version": lerobot.__version__,
            "repo_id": args.repo_id,
            "fps": FPS,
            "codec": args.codec,
            "tasks": {
                t: i for i, t in enumerate(dict.fromkeys(task_of(e) for e in range(len(lengths))))
            },
            "total_episodes": len(lengths),
            "total_frames": sum(lengths),
            "formula": {
                "observation.state[i]": "e*100 + f + i/10",
                "action[j]": "-(e*100 + f) - j/10",
                "image_rgb": "flat (20 + 8f, 40 + 60e, 200 - 5f) mod 256",
            },
        }
    )
    if not args.no_expected:
        side = out.parent / f"{out.name}.expected.json"
        side.write_text(json.dumps(expected, indent=1) + "\n")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    print(f"wrote {out} in {elapsed:.2f}s ({sum(lengths)} frames, {total} bytes):")
    for p in files:
        print(f"  {p.relative_to(out)}  {p.stat().st_size}")
    return 0


def _info(meta: Any, key: str) -> Any:
    """``meta.info`` is a dataclass from LeRobot 0.5 on and a plain dict in 0.4."""
    info = meta.info
    return info[key] if isinstance(info, dict) else getattr(info, key)


def _backend(ds: Any) -> str:
    return getattr(ds, "_video_backend", None) or getattr(ds, "video_backend", "?")


def _sample_indices(ds: Any, requested: str | None) -> list[int]:
    n = len(ds)
    if requested:
        return [int(i) % n for i in requested.split(",")]
    idx: list[int] = []
    meta_eps = ds.meta.episodes
    for row in range(len(meta_eps)):
        a = int(meta_eps[row]["dataset_from_index"])
        b = int(meta_eps[row]["dataset_to_index"])
        idx += [a, (a + b - 1) // 2, b - 1]
    return sorted(set(i for i in idx if 0 <= i < n))


def load(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"root": str(Path(args.root).resolve()), "ok": False}
    t_start = time.perf_counter()
    try:
        root = Path(args.root)
        if not (root / "meta" / "info.json").is_file():
            # LeRobotDataset would mkdir the folder and then try the Hub.
            raise FileNotFoundError(f"{root}/meta/info.json not found: not a LeRobot dataset")
        import lerobot
        import torch
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        quiet()

        report["lerobot_version"] = lerobot.__version__
        kwargs: dict[str, Any] = {"root": args.root}
        if args.video_backend:
            kwargs["video_backend"] = args.video_backend
        t0 = time.perf_counter()
        ds = LeRobotDataset(args.repo_id, **kwargs)
        report["open_s"] = round(time.perf_counter() - t0, 4)
        meta = ds.meta
        report["video_backend"] = _backend(ds)
        report["codebase_version"] = _info(meta, "codebase_version")
        report["fps"] = meta.fps
        report["total_episodes"] = meta.total_episodes
        report["total_frames"] = meta.total_frames
        report["num_episodes"] = ds.num_episodes
        report["num_frames"] = len(ds)
        report["features"] = {
            k: {"dtype": ft["dtype"], "shape": list(ft["shape"])} for k, ft in meta.features.items()
        }
        tasks = meta.tasks
        report["tasks"] = {
            str(t): int(i) for t, i in zip(tasks.index, tasks["task_index"], strict=True)
        }
        errors: list[str] = []
        if not all(isinstance(t, str) for t in tasks.index):
            # e.g. tasks.parquet written without pandas metadata naming "task" as the index:
            # LeRobot then reads a RangeIndex and hands out ints as the task strings.
            errors.append(f"tasks.parquet index is not the task strings: {list(tasks.index)[:3]}")
        if meta.total_frames != len(ds):
            errors.append(f"info.total_frames {meta.total_frames} != len(dataset) {len(ds)}")
        if meta.total_episodes != ds.num_episodes:
            errors.append(f"info.total_episodes {meta.total_episodes} != {ds.num_episodes}")
        if args.expect_episodes is not None and ds.num_episodes != args.expect_episodes:
            errors.append(f"expected {args.expect_episodes} episodes, got {ds.num_episodes}")
        if args.expect_frames is not None and len(ds) != args.expect_frames:
            errors.append(f"expected {args.expect_frames} frames, got {len(ds)}")

        # Per-episode lengths from meta/episodes against the data parquet.
        eps = meta.episodes
        hf = ds.hf_dataset
        ep_col = np.asarray(hf["episode_index"])
        report["episode_lengths"] = [int(eps[r]["length"]) for r in range(len(eps))]
        for r in range(len(eps)):
            e = int(eps[r]["episode_index"])
            n_rows = int((ep_col == e).sum())
            if n_rows != int(eps[r]["length"]):
                errors.append(f"episode {e}: meta length {eps[r]['length']} != {n_rows} data rows")
        ts = np.asarray(hf["timestamp"], dtype=np.float64)
        fi = np.asarray(hf["frame_index"])
        if not np.allclose(ts, fi / meta.fps, atol=1e-4):
            errors.append("timestamp != frame_index / fps")

        samples = []
        t0 = time.perf_counter()
        for i in _sample_indices(ds, args.indices):
            item = ds[i]
            s: dict[str, Any] = {
                "index": int(item["index"]),
                "episode_index": int(item["episode_index"]),
                "frame_index": int(item["frame_index"]),
                "timestamp": round(float(item["timestamp"]), 6),
                "task": item.get("task"),
            }
            for key, ft in meta.features.items():
                val = item.get(key)
                if ft["dtype"] in ("video", "image"):
                    if not isinstance(val, torch.Tensor):
                        errors.append(f"{key}@{i}: not a tensor ({type(val).__name__})")
                        continue
                    # info.json shapes are (h, w, c); LeRobot returns (c, h, w) tensors.
                    shp = tuple(ft["shape"])
                    h, w, c = shp if shp[-1] in (1, 3, 4) else (*shp[1:], shp[0])
                    if tuple(val.shape) != (c, h, w):
                        errors.append(f"{key}@{i}: decoded shape {tuple(val.shape)} != {(c, h, w)}")
                    s[key + ".mean_rgb255"] = [
                        round(float(x) * 255.0, 2) for x in val.float().mean(dim=(1, 2))
                    ]
                elif key in ("observation.state", "action") or (
                    ft["dtype"].startswith("float") and len(ft["shape"]) == 1 and ft["shape"][0] > 1
                ):
                    arr = np.asarray(val)
                    if arr.shape != tuple(ft["shape"]):
                        errors.append(f"{key}@{i}: shape {arr.shape} != {tuple(ft['shape'])}")
                    s[key] = [round(float(x), 6) for x in arr.reshape(-1)]
            if not isinstance(s["task"], str):
                errors.append(f"sample {i}: task is {s['task']!r}, not a string")
            samples.append(s)
        report["decode_s"] = round(time.perf_counter() - t0, 4)
        if not args.no_window:
            errors += _check_window(ds, args, kwargs)
        report["samples"] = samples
        report["stats_keys"] = {k: sorted(v) for k, v in (meta.stats or {}).items()}
        report["errors"] = errors
        report["ok"] = not errors
    except Exception as exc:  # report everything, exit non-zero
        report["error"] = f"{type(exc).__name__}: {exc}"
        if "Offline" in type(exc).__name__:
            report["error"] += (
                " (LeRobot found the local copy incomplete — a data/video file or an episode"
                " missing — and fell back to downloading from the Hub)"
            )
        report["traceback"] = traceback.format_exc()
    report["total_s"] = round(time.perf_counter() - t_start, 4)
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        _print_human(report)
    if not report["ok"]:
        print(
            "LOAD FAILED: " + (report.get("error") or "; ".join(report.get("errors", []))),
            file=sys.stderr,
        )
        return 1
    return 0


def _check_window(ds: Any, args: argparse.Namespace, kwargs: dict[str, Any]) -> list[str]:
    """Re-open with Diffusion-Policy-like delta_timestamps (2 observation steps, 16 actions
    from t-1) and fetch the first and last frame of every episode: exercises the timestamp
    tolerance check against the video and the padding at episode edges."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    meta = ds.meta
    fps = meta.fps
    obs = [-1 / fps, 0.0]
    act = [k / fps for k in range(-1, 15)]
    delta: dict[str, list[float]] = {k: obs for k in meta.camera_keys}
    for key in meta.features:
        if key == "action":
            delta[key] = act
        elif key.startswith("observation.") and key not in delta:
            delta[key] = obs
    wds = LeRobotDataset(args.repo_id, delta_timestamps=delta, **kwargs)
    errors: list[str] = []
    eps = meta.episodes
    for r in range(len(eps)):
        for i in (int(eps[r]["dataset_from_index"]), int(eps[r]["dataset_to_index"]) - 1):
            item = wds[i]
            for key, d in delta.items():
                if item[key].shape[0] != len(d):
                    errors.append(f"window {key}@{i}: {tuple(item[key].shape)}, {len(d)} steps")
                pad = item.get(f"{key}_is_pad")
                if pad is None:
                    errors.append(f"window {key}@{i}: no {key}_is_pad")
                    continue
                first = i == int(eps[r]["dataset_from_index"])
                # at an episode start, t-1 is padding; at its end, future actions are padding
                if first and not bool(pad[0]):
                    errors.append(f"window {key}@{i}: t-1 not marked as padding")
                if not first and key == "action" and not bool(pad[-1]):
                    errors.append(f"window {key}@{i}: action past the end not padding")
    return errors


def _print_human(r: dict[str, Any]) -> None:
    if "error" in r:
        print(r.get("traceback", ""), file=sys.stderr)
        return
    print(f"root: {r['root']}  (lerobot {r['lerobot_version']}, backend {r['video_backend']})")
    print(f"codebase_version {r['codebase_version']}  fps {r['fps']}")
    print(f"episodes {r['num_episodes']}  frames {r['num_frames']}  lengths {r['episode_lengths']}")
    print(f"tasks {r['tasks']}")
    for k, ft in r["features"].items():
        print(f"  {k}: {ft['dtype']} {ft['shape']}")
    for s in r["samples"]:
        print("  sample", json.dumps(s))
    print(f"open {r['open_s']}s, decode {r['decode_s']}s; errors: {r['errors'] or 'none'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="record the tiny dataset with LeRobot")
    w.add_argument("out", help="dataset folder to create")
    w.add_argument("--repo-id", default=DEFAULT_REPO_ID)
    w.add_argument("--lengths", default="10,12,8", help="frames per episode, comma separated")
    w.add_argument("--codec", default="libsvtav1", help="libsvtav1 (default), h264, hevc, …")
    w.add_argument("--crf", type=int, default=None, help="override LeRobot's default crf (30)")
    w.add_argument("--gop", type=int, default=None, help="override LeRobot's default GOP (2)")
    w.add_argument("--robot-type", default="robolearn_fixture")
    w.add_argument("--overwrite", action="store_true")
    w.add_argument("--no-expected", action="store_true", help="skip <OUT>.expected.json")
    ld = sub.add_parser("load", help="open a dataset folder with LeRobotDataset and check it")
    ld.add_argument("root")
    ld.add_argument("--repo-id", default=DEFAULT_REPO_ID)
    ld.add_argument("--video-backend", default=None, help="torchcodec | pyav (default: LeRobot's)")
    ld.add_argument("--indices", default=None, help="comma separated frame indices to decode")
    ld.add_argument("--expect-episodes", type=int, default=None)
    ld.add_argument("--expect-frames", type=int, default=None)
    ld.add_argument("--json", action="store_true", help="print the report as JSON")
    ld.add_argument("--no-window", action="store_true", help="skip the delta_timestamps check")
    args = p.parse_args(argv)
    return write(args) if args.cmd == "write" else load(args)


if __name__ == "__main__":
    sys.exit(main())
