"""Policy speed: per-action inference latency and training samples/s, side by side with LeRobot.

One run measures, for each case, robolearn's policy here and LeRobot's (``benchmarks/
lerobot_policy_side.py`` in ``.venv-lerobot``, a subprocess per case, right after robolearn's
side) with the same hyperparameters, thread count (``--threads``, default 2), inputs and
normalization statistics (one npz both sides read):

* ``dp_state`` — Diffusion Policy on state (``observation.state`` 8 + ``observation.
  environment_state`` 16 → action 4), the paper's U-Net ``down_dims`` [256, 512, 1024];
* ``dp_state_small`` — the same with the CPU preset's ``down_dims`` (``cpu-state-diffusion``);
* ``dp_image`` — Diffusion Policy on two 96×96 cameras + state: one ResNet-18 per camera with
  GroupNorm and a 32-keypoint spatial softmax, 91×91 crops (random in training, centred at
  inference), paper U-Net;
* ``act_state`` — ACT on state + environment state (chunk 100, dim 512, 8 heads, feed-forward
  3200, 4 encoder / 1 decoder / 4 VAE-encoder layers, latent 32, temporal ensembling 0.01);
* ``act_image`` — the same ACT on state + one 96×96 camera (ResNet-18 feature-map tokens;
  BatchNorm on our side, LeRobot's frozen BatchNorm on its side: GroupNorm has no LeRobot ACT
  counterpart).

Every Diffusion Policy samples with 10 DDIM steps out of 100 training steps (horizon 16,
2 observation steps, 8 executed actions). Figures per case and side:

* **chunk** — one chunk at batch 1 from a numpy observation, normalization and unnormalization
  included (ours: ``Policy.predict_chunk``; LeRobot: preprocessor → ``predict_action_chunk`` →
  postprocessor), p50 / p90 after warm-up;
* **per action** — every call of ``Policy.act`` (LeRobot: ``predict_action`` → ``select_action``
  with its own queue / temporal ensembler) over ``act_steps``-step episodes: the amortized mean
  (Diffusion Policy: one chunk per ``n_action_steps`` actions; ACT with temporal ensembling:
  one chunk per action) and p50 / p90 / max of the calls;
* **train** — forward + backward + gradient clip + optimizer step on one synthetic batch of the
  right shapes (ours: AdamW and EMA as ``robolearn train`` does; LeRobot: its optimizer preset
  and preprocessor as ``lerobot-train`` does), samples/s over timed steps after warm-up.

Ratios: latency LeRobot / ours (> 1: ours is faster); throughput ours / LeRobot. Writes
``benchmarks/results/policy_speed.json`` and the README block ``bench:policy_speed``. Without
``.venv-lerobot`` only robolearn's side runs, and the block says so.

    python -m benchmarks.policy_speed [--quick] [--device cpu|cuda] [--threads 2]
        [--cases dp_state,act_state] [--no-lerobot] [--no-readme]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._report import RESULTS, ROOT, machine, write_results
from robolearn.core.types import ConfigError, RobolearnError
from robolearn.perception import ImageAugment
from robolearn.policies.act import ACTConfig
from robolearn.policies.base import Policy, PolicyConfig, make_policy
from robolearn.policies.diffusion import DiffusionConfig
from robolearn.train.config import PRESETS

LEROBOT_PY = ROOT / ".venv-lerobot" / "bin" / "python"
LEROBOT_SIDE = ROOT / "benchmarks" / "lerobot_policy_side.py"
NAME = "policy_speed"

STATE, ENV_STATE, ACTION = "observation.state", "observation.environment_state", "action"
IMAGES = "observation.images."
STATE_DIM, ENV_DIM, ACTION_DIM, IMAGE_SIDE = 8, 16, 4, 96
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GRAD_CLIP = 10.0
"""``robolearn train``'s and ``lerobot-train``'s default gradient-norm clip."""

DP_PAPER: dict[str, Any] = {
    "n_obs_steps": 2,
    "horizon": 16,
    "n_action_steps": 8,
    "down_dims": [256, 512, 1024],
    "kernel_size": 5,
    "n_groups": 8,
    "diffusion_step_embed_dim": 128,
    "film_scale": True,
    "num_train_timesteps": 100,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "epsilon",
    "num_inference_steps": 10,
    "clip_sample": True,
}
"""Diffusion Policy (CNN variant) hyperparameters, named neutrally for both sides."""

DP_VISION: dict[str, Any] = {
    "use_group_norm": True,
    "spatial_softmax_keypoints": 32,
    "crop_ratio": 0.95,
    "separate_encoder_per_camera": True,
}

ACT_PAPER: dict[str, Any] = {
    "chunk_size": 100,
    "dim_model": 512,
    "n_heads": 8,
    "dim_feedforward": 3200,
    "feedforward_activation": "relu",
    "n_encoder_layers": 4,
    "n_decoder_layers": 1,
    "n_vae_encoder_layers": 4,
    "latent_dim": 32,
    "use_vae": True,
    "dropout": 0.1,
    "kl_weight": 10.0,
    "temporal_ensemble_coeff": 0.01,
    "pre_norm": False,
}
"""ACT hyperparameters (the paper's and both projects' defaults), named neutrally."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """Repetitions of one measurement: at least ``min_reps``, then more until ``seconds`` are
    spent, at most ``max_reps``."""

    min_reps: int
    max_reps: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of everything to run."""

    warmup: int
    """Chunks computed before the inference timings."""
    chunk: Budget
    act_steps: int
    """``act`` calls per episode."""
    episodes: Budget
    train_warmup: int
    """Optimizer steps before the training timings."""
    train: Budget
    batch_cap: int | None = None
    """Smaller training batches (smoke runs)."""


FULL = Plan(
    warmup=3,
    chunk=Budget(5, 200, 5.0),
    act_steps=64,
    episodes=Budget(1, 20, 5.0),
    train_warmup=1,
    train=Budget(2, 100, 8.0),
)
QUICK = Plan(
    warmup=1,
    chunk=Budget(2, 2, 0.0),
    act_steps=8,
    episodes=Budget(1, 1, 0.0),
    train_warmup=1,
    train=Budget(1, 1, 0.0),
    batch_cap=8,
)


# ---------------------------------------------------------------- cases


def cases() -> list[dict[str, Any]]:
    """Every benchmarked model configuration (shared by both sides through JSON)."""
    small_dims = list(PRESETS["cpu-state-diffusion"]["policy"]["down_dims"])
    state = {STATE: [STATE_DIM], ENV_STATE: [ENV_DIM]}
    image = [3, IMAGE_SIDE, IMAGE_SIDE]
    crop = ImageAugment("random_crop", DP_VISION["crop_ratio"]).output_shape(IMAGE_SIDE, IMAGE_SIDE)
    dp_vision = {**DP_VISION, "crop_hw": list(crop)}
    two_cameras = {STATE: [STATE_DIM], f"{IMAGES}front": image, f"{IMAGES}wrist": image}
    one_camera = {STATE: [STATE_DIM], f"{IMAGES}front": image}
    return [
        _case("dp_state", "DP state, U-Net [256, 512, 1024]", "diffusion", state, DP_PAPER),
        _case(
            "dp_state_small",
            f"DP state, U-Net {small_dims} (CPU preset)",
            "diffusion",
            state,
            {**DP_PAPER, "down_dims": small_dims},
        ),
        _case(
            "dp_image",
            "DP 2 cameras 96×96 + state, U-Net [256, 512, 1024]",
            "diffusion",
            two_cameras,
            DP_PAPER,
            vision=dp_vision,
            train_batch=16,
        ),
        _case("act_state", "ACT state + env state, chunk 100", "act", state, ACT_PAPER),
        _case(
            "act_image",
            "ACT 1 camera 96×96 + state, chunk 100",
            "act",
            one_camera,
            ACT_PAPER,
            vision={"use_group_norm": False},
            train_batch=16,
        ),
    ]


def _case(
    name: str,
    label: str,
    policy: str,
    feats: dict[str, list[int]],
    params: dict[str, Any],
    vision: dict[str, Any] | None = None,
    train_batch: int = 64,
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "policy": policy,
        "features": feats,
        "action_dim": ACTION_DIM,
        "params": dict(params),
        "vision": dict(vision or {}),
        "train_batch": train_batch,
    }


def n_obs_steps(case: dict[str, Any]) -> int:
    """Observation history the case's policy reads."""
    return int(case["params"]["n_obs_steps"]) if case["policy"] == "diffusion" else 1


def horizon(case: dict[str, Any]) -> int:
    """Action steps of one training window."""
    p = case["params"]
    return int(p["horizon"]) if case["policy"] == "diffusion" else int(p["chunk_size"])


def our_config(case: dict[str, Any]) -> PolicyConfig:
    """robolearn's config for ``case``."""
    p, v, feats = case["params"], case["vision"], case["features"]
    vectors = [k for k, s in feats.items() if len(s) == 1]
    if case["policy"] == "diffusion":
        vision = {}
        if v:
            vision = {
                "use_group_norm": v["use_group_norm"],
                "resnet_pool": "spatial_softmax",
                "spatial_softmax_keypoints": v["spatial_softmax_keypoints"],
                "feature_dim": 2 * v["spatial_softmax_keypoints"],
                "augment": "random_crop",
                "crop_ratio": v["crop_ratio"],
                "share_image_encoder": not v["separate_encoder_per_camera"],
            }
        return DiffusionConfig(
            input_features=feats,
            action_dim=case["action_dim"],
            n_obs_steps=p["n_obs_steps"],
            horizon=p["horizon"],
            n_action_steps=p["n_action_steps"],
            down_dims=list(p["down_dims"]),
            kernel_size=p["kernel_size"],
            n_groups=p["n_groups"],
            timestep_embed_dim=p["diffusion_step_embed_dim"],
            film_scale=p["film_scale"],
            num_train_timesteps=p["num_train_timesteps"],
            beta_schedule=p["beta_schedule"],
            prediction_type=p["prediction_type"],
            num_inference_steps=p["num_inference_steps"],
            clip_sample=p["clip_sample"],
            vision=vision,
        )
    return ACTConfig(
        input_features=feats,
        action_dim=case["action_dim"],
        horizon=p["chunk_size"],
        n_action_steps=1,
        dim_model=p["dim_model"],
        n_heads=p["n_heads"],
        dim_feedforward=p["dim_feedforward"],
        feedforward_activation=p["feedforward_activation"],
        n_encoder_layers=p["n_encoder_layers"],
        n_decoder_layers=p["n_decoder_layers"],
        n_vae_encoder_layers=p["n_vae_encoder_layers"],
        latent_dim=p["latent_dim"],
        use_vae=p["use_vae"],
        dropout=p["dropout"],
        kl_weight=p["kl_weight"],
        temporal_ensemble_coeff=p["temporal_ensemble_coeff"],
        pre_norm=p["pre_norm"],
        normalization={k: "mean_std" for k in [*vectors, ACTION]},  # LeRobot ACT's mapping
        vision={"use_group_norm": v["use_group_norm"], "augment": "none"} if v else {},
    )


# ---------------------------------------------------------------- inputs


def make_inputs(case: dict[str, Any], batch_size: int, frames: int, seed: int) -> dict[str, Any]:
    """Observation frames (unbatched, images (H, W, 3) uint8), one raw training batch
    ``{key: (B, T_obs, ...)}`` + ``action`` (B, H, A) + ``action_is_pad`` (B, H), and the
    statistics both sides normalize with."""
    rng = np.random.default_rng(seed)
    t_obs, h = n_obs_steps(case), horizon(case)
    obs: dict[str, np.ndarray] = {}
    batch: dict[str, np.ndarray] = {}
    for key, shape in case["features"].items():
        if len(shape) == 3:
            c, hh, ww = shape
            obs[key] = rng.integers(0, 256, (frames, hh, ww, c), dtype=np.uint8)
            batch[key] = rng.random((batch_size, t_obs, c, hh, ww), dtype=np.float32)
        else:
            obs[key] = np.cumsum(rng.normal(0, 0.1, (frames, shape[0])), 0).astype(np.float32)
            batch[key] = rng.normal(0, 1, (batch_size, t_obs, shape[0])).astype(np.float32)
    batch[ACTION] = rng.normal(0, 1, (batch_size, h, case["action_dim"])).astype(np.float32)
    pad = np.zeros((batch_size, h), dtype=bool)
    pad[: batch_size // 4, h - h // 4 :] = True  # a quarter of the windows run past an episode end
    batch[f"{ACTION}_is_pad"] = pad
    stats: dict[str, dict[str, np.ndarray]] = {}
    for key, shape in [*case["features"].items(), (ACTION, [case["action_dim"]])]:
        if len(shape) == 3:
            stats[key] = _image_stats()
        else:
            values = np.concatenate(
                [batch[key].reshape(-1, shape[0])] + ([obs[key]] if key in obs else [])
            )
            stats[key] = {
                "min": values.min(0),
                "max": values.max(0),
                "mean": values.mean(0),
                "std": values.std(0),
            }
    return {"obs": obs, "batch": batch, "stats": stats}


def _image_stats() -> dict[str, np.ndarray]:
    """ImageNet's per-channel statistics (3, 1, 1): LeRobot normalizes cameras with them in its
    preprocessor, robolearn's ResNet-18 inside the encoder."""
    shape = (3, 1, 1)
    return {
        "mean": np.array(IMAGENET_MEAN, np.float32).reshape(shape),
        "std": np.array(IMAGENET_STD, np.float32).reshape(shape),
        "min": np.zeros(shape, np.float32),
        "max": np.ones(shape, np.float32),
    }


def save_inputs(data: dict[str, Any], path: Path) -> None:
    """The npz ``lerobot_policy_side.py`` reads: ``obs|key``, ``train|key``, ``stats|key|stat``."""
    arrays = {f"obs|{k}": v for k, v in data["obs"].items()}
    arrays.update({f"train|{k}": v for k, v in data["batch"].items()})
    for key, stats in data["stats"].items():
        arrays.update({f"stats|{key}|{s}": np.asarray(v, np.float32) for s, v in stats.items()})
    np.savez(path, **arrays)


# ---------------------------------------------------------------- measuring robolearn


def summary_ms(times_s: list[float]) -> dict[str, Any]:
    """p50 / p90 / mean / min in ms (the same summary as LeRobot's side)."""
    if not times_s:
        return {"n": 0}
    ms = np.asarray(times_s) * 1e3
    return {
        "n": len(times_s),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "min_ms": round(float(ms.min()), 3),
    }


def repeat(fn: Callable[[int], object], budget: Budget, sync: Callable[[], None]) -> list[float]:
    """Call ``fn(i)`` until ``max_reps`` calls, or ``min_reps`` calls and ``seconds`` spent."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < budget.max_reps and (
        len(times) < budget.min_reps or time.perf_counter() - start < budget.seconds
    ):
        t0 = time.perf_counter()
        fn(len(times))
        sync()
        times.append(time.perf_counter() - t0)
    return times


def make_sync(device: torch.device) -> Callable[[], None]:
    """A CUDA synchronize on CUDA, nothing on the CPU."""
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def build_ours(case: dict[str, Any], stats: dict[str, Any], device: torch.device) -> Policy:
    """robolearn's policy for ``case`` on ``device``."""
    cfg = our_config(case)
    vectors = {k: v for k, v in stats.items() if len(np.shape(v["mean"])) == 1}
    return make_policy(case["policy"], cfg, vectors).to(device)


def measure_ours_inference(
    case: dict[str, Any], data: dict[str, Any], plan: Plan, device: torch.device
) -> dict[str, Any]:
    """Per-chunk and per-action latency of robolearn's policy at batch 1."""
    policy = build_ours(case, data["stats"], device).eval()
    n = len(next(iter(data["obs"].values())))
    obs = [{k: v[i] for k, v in data["obs"].items()} for i in range(n)]
    sync = make_sync(device)
    policy.reset(seed=0)
    shape = policy.predict_chunk(obs[0]).shape
    for i in range(1, plan.warmup):
        policy.predict_chunk(obs[i % n])
    policy.reset(seed=0)
    chunk_times = repeat(lambda i: policy.predict_chunk(obs[i % n]), plan.chunk, sync)
    calls: list[float] = []

    def episode(ep: int) -> None:
        policy.reset(seed=ep)
        for step in range(plan.act_steps):
            t0 = time.perf_counter()
            policy.act(obs[step % n])  # returns numpy: synchronized
            calls.append(time.perf_counter() - t0)

    episodes = repeat(episode, plan.episodes, sync)
    return {
        "chunk_shape": list(shape),
        "chunk": summary_ms(chunk_times),
        "per_action": {
            **summary_ms(calls),
            "amortized_ms": round(1e3 * sum(calls) / max(len(calls), 1), 3),
            "max_ms": round(1e3 * max(calls), 3) if calls else None,
            "steps_per_episode": plan.act_steps,
            "episodes": len(episodes),
        },
    }


def measure_ours_train(
    case: dict[str, Any], data: dict[str, Any], plan: Plan, device: torch.device
) -> dict[str, Any]:
    """Samples/s of ``robolearn train``'s step (robolearn.train.loop ``_Trainer._train_step``:
    loss, backward, clip, AdamW, LR schedule, EMA) on the case's batch."""
    policy = build_ours(case, data["stats"], device)
    batch = {k: torch.from_numpy(v).to(device) for k, v in data["batch"].items()}
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-6)  # TrainConfig defaults
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 500))
    sync = make_sync(device)
    policy.train()

    def step(_: int) -> None:
        loss, _metrics = policy(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()
        schedule.step()
        policy.on_train_step()
        float(loss.detach())

    for i in range(plan.train_warmup):
        step(i)
    sync()
    times = repeat(step, plan.train, sync)
    size = int(next(iter(batch.values())).shape[0])
    return {
        "batch_size": size,
        "step": summary_ms(times),
        "samples_per_s": round(size * len(times) / sum(times), 2) if times else None,
        "parameters": sum(
            p.numel() for n, p in policy.named_parameters() if not n.startswith("ema.")
        ),
    }


# ---------------------------------------------------------------- LeRobot's side


def run_lerobot(
    case: dict[str, Any], npz: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Run ``lerobot_policy_side.py`` on one case in LeRobot's venv: its JSON, or an error."""
    import diffusers

    spec = work / f"{case['name']}.json"
    spec.write_text(json.dumps(case))
    cmd = [
        str(LEROBOT_PY),
        str(LEROBOT_SIDE),
        "--spec",
        str(spec),
        "--data",
        str(npz),
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--diffusers",
        str(Path(diffusers.__file__).parent),
    ]
    print(f"[lerobot] {case['name']}", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.lerobot_timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.lerobot_timeout_s} s"}
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def ratios(ours: dict[str, Any], theirs: dict[str, Any] | None) -> dict[str, float | None]:
    """Latency LeRobot / ours (> 1: ours is faster) and throughput ours / LeRobot."""

    def div(a: float | None, b: float | None) -> float | None:
        if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
            return None
        return round(a / b, 2)

    if not theirs or "error" in theirs:
        return {}
    oi, ti = ours["inference"], theirs["inference"]
    return {
        "chunk_p50": div(ti["chunk"].get("p50_ms"), oi["chunk"].get("p50_ms")),
        "per_action": div(ti["per_action"]["amortized_ms"], oi["per_action"]["amortized_ms"]),
        "train": div(ours["train"]["samples_per_s"], theirs["train"]["samples_per_s"]),
    }


# ---------------------------------------------------------------- report


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value}{unit}"


def _pair(side: dict[str, Any] | None, *path: str) -> tuple[Any, Any]:
    node: Any = side
    for key in path:
        if not isinstance(node, dict):
            return None, None
        node = node.get(key)
    if not isinstance(node, dict):
        return None, None
    return node.get("p50_ms"), node.get("p90_ms")


def markdown(figures: dict[str, Any]) -> str:
    """The README block."""
    m, lr = figures["machine"], figures["lerobot"]
    theirs = (
        f"LeRobot {lr['lerobot']} (torch {lr.get('torch')}) in its own venv"
        if lr.get("lerobot")
        else "LeRobot's side did not run (see below)"
    )
    lines = [
        f"Measured with `{figures['command']}` on {m['processor']}, {m['cpus']} CPUs, "
        f"{m['platform']}, device `{figures['device']}`, `torch.set_num_threads("
        f"{figures['threads']})` on both sides, torch {figures['torch']}; {theirs}. Random "
        "weights, fp32, inference at batch 1; every Diffusion Policy (DP) samples with 10 DDIM "
        "steps out of 100.",
        "",
        "**Inference** (ms; *chunk*: one `predict_chunk` from a numpy observation, "
        "normalization included; *per action*: mean over every `act()` call of "
        f"{figures['plan']['act_steps']}-step episodes — Diffusion Policy computes one chunk "
        "per 8 actions, ACT with temporal ensembling one chunk of 100 per action). Ratio = "
        "LeRobot / robolearn: > 1 means robolearn is faster.",
        "",
        "| case | chunk p50 / p90 robolearn | chunk p50 / p90 LeRobot | ratio | "
        "per action robolearn | per action LeRobot | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in figures["cases"].values():
        ours, theirs, r = c["robolearn"], c.get("lerobot"), c.get("ratios", {})
        o50, o90 = _pair(ours, "inference", "chunk")
        t50, t90 = _pair(theirs, "inference", "chunk")
        ta = theirs["inference"]["per_action"]["amortized_ms"] if _ok(theirs) else None
        lines.append(
            f"| {c['label']} | {_fmt(o50)} / {_fmt(o90)} | {_fmt(t50)} / {_fmt(t90)} | "
            f"{_fmt(r.get('chunk_p50'), '×')} | "
            f"{_fmt(ours['inference']['per_action']['amortized_ms'])} | {_fmt(ta)} | "
            f"{_fmt(r.get('per_action'), '×')} |"
        )
    lines += [
        "",
        "**Training** (forward + backward + clip + optimizer step on one batch; robolearn: "
        "AdamW + EMA as `robolearn train`; LeRobot: its optimizer preset + preprocessor as "
        "`lerobot-train`). Ratio = robolearn / LeRobot samples/s.",
        "",
        "| case | batch | robolearn samples/s | LeRobot samples/s | ratio |",
        "|---|---|---|---|---|",
    ]
    for c in figures["cases"].values():
        ours, theirs, r = c["robolearn"], c.get("lerobot"), c.get("ratios", {})
        ts = theirs["train"]["samples_per_s"] if _ok(theirs) else None
        lines.append(
            f"| {c['label']} | {ours['train']['batch_size']} | "
            f"{_fmt(ours['train']['samples_per_s'])} | {_fmt(ts)} | "
            f"{_fmt(r.get('train'), '×')} |"
        )
    lines += ["", *figures["notes"]]
    return "\n".join(lines)


def _ok(side: dict[str, Any] | None) -> bool:
    return bool(side) and "error" not in side  # type: ignore[operator]


def notes(figures: dict[str, Any]) -> list[str]:
    """Caveats printed under the tables."""
    out = []
    lr = figures["lerobot"]
    if lr.get("skipped"):
        out.append(f"LeRobot side skipped: {lr['skipped']}.")
    errors = {
        n: c["lerobot"]["error"]
        for n, c in figures["cases"].items()
        if "error" in c.get("lerobot", {})
    }
    for name, err in errors.items():
        out.append(f"LeRobot side failed for `{name}`: {err}.")
    if lr.get("diffusers_source", "").startswith("borrowed"):
        out.append(
            "LeRobot's venv has no `diffusers` (its `[diffusion]` extra), so its side borrows "
            f"robolearn's diffusers {lr.get('diffusers')} (pure Python) through a path shim: "
            "both sides run the same DDIM scheduler code."
        )
    if "act_image" in figures["cases"]:
        out.append(
            "ACT with a camera: robolearn's ResNet-18 uses BatchNorm here (its default is "
            "GroupNorm) to match LeRobot's ACT backbone (torchvision ResNet-18 with frozen "
            "BatchNorm). DP cameras: GroupNorm on both sides."
        )
    if figures["quick"]:
        out.append("`--quick` smoke run: a few repetitions and training batch ≤ 8, not figures.")
    return out


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    names = [c["name"] for c in cases()]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny repetitions, batch ≤ 8")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on both sides")
    p.add_argument("--cases", default=",".join(names), help=f"comma list of {names}")
    p.add_argument("--no-lerobot", action="store_true", help="robolearn's side only")
    p.add_argument("--no-readme", action="store_true", help="write the JSON only")
    p.add_argument("--lerobot-timeout-s", type=float, default=600.0)
    p.add_argument(
        "--report", action="store_true", help="re-render the README block from the saved JSON"
    )
    args = p.parse_args(argv)
    unknown = sorted(set(args.cases.split(",")) - set(names))
    if unknown:
        raise ConfigError(f"--cases: unknown {unknown}; known: {names}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible to torch; use --device cpu")
    if args.threads < 1:
        raise ConfigError(f"--threads must be ≥ 1, got {args.threads}")
    return args


def run_case(
    case: dict[str, Any], plan: Plan, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """robolearn's side, then LeRobot's, for one case."""
    batch = min(case["train_batch"], plan.batch_cap or case["train_batch"])
    case = {**case, "train_batch": batch, "plan": dataclasses.asdict(plan)}
    data = make_inputs(case, batch, frames=16, seed=0)
    device = torch.device(args.device)
    print(f"[robolearn] {case['name']}: inference", flush=True)
    ours = {"inference": measure_ours_inference(case, data, plan, device)}
    gc.collect()
    print(f"[robolearn] {case['name']}: training (batch {batch})", flush=True)
    ours["train"] = measure_ours_train(case, data, plan, device)
    gc.collect()
    out: dict[str, Any] = {"label": case["label"], "config": case, "robolearn": ours}
    if not args.no_lerobot and LEROBOT_PY.exists():
        npz = work / f"{case['name']}.npz"
        save_inputs(data, npz)
        out["lerobot"] = run_lerobot(case, npz, work, args)
        out["ratios"] = ratios(ours, out["lerobot"])
    print(f"  robolearn {_brief(ours)}  LeRobot {_brief(out.get('lerobot'))}", flush=True)
    return out


def _brief(side: dict[str, Any] | None) -> str:
    if not _ok(side):
        return str((side or {}).get("error", "—"))
    assert side is not None
    return (
        f"chunk p50 {side['inference']['chunk'].get('p50_ms')} ms, per action "
        f"{side['inference']['per_action']['amortized_ms']} ms, train "
        f"{side['train']['samples_per_s']} samples/s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON and README block."""
    args = parse_args(argv)
    if args.report:
        saved = json.loads((RESULTS / f"{NAME}.json").read_text())
        write_results(NAME, saved, markdown(saved))
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    plan = QUICK if args.quick else FULL
    cmd = "python -m benchmarks.policy_speed" + (" " + " ".join(argv) if argv else "")
    selected = [c for c in cases() if c["name"] in args.cases.split(",")]
    work = Path(tempfile.mkdtemp(prefix="policy_speed_"))
    t0 = time.perf_counter()
    try:
        results = {c["name"]: run_case(c, plan, args, work) for c in selected}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lerobot_info: dict[str, Any] = {}
    if args.no_lerobot:
        lerobot_info["skipped"] = "--no-lerobot"
    elif not LEROBOT_PY.exists():
        lerobot_info["skipped"] = f"{LEROBOT_PY} is missing (LeRobot's venv is not installed)"
    else:
        for r in results.values():
            if _ok(r.get("lerobot")):
                lerobot_info.update(r["lerobot"]["versions"])
                break
    figures: dict[str, Any] = {
        "command": cmd,
        "machine": machine(),
        "device": args.device,
        "threads": args.threads,
        "torch": torch.__version__,
        "quick": args.quick,
        "plan": dataclasses.asdict(plan),
        "seconds": round(time.perf_counter() - t0, 1),
        "lerobot": lerobot_info,
        "cases": results,
    }
    figures["notes"] = notes(figures)
    text = markdown(figures)
    out = write_results(NAME, figures, text, readme=not args.no_readme)
    print(text)
    print(f"wrote {out} in {figures['seconds']} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RobolearnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
