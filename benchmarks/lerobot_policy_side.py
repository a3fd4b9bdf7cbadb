"""LeRobot's Diffusion Policy and ACT speed, for ``benchmarks/policy_speed.py`` to compare against.

Run this with the LeRobot venv's python (Python >= 3.12, LeRobot 0.6.1), never robolearn's: it
imports nothing from robolearn. It reads ONE case (the model's hyperparameters, the measurement
plan) from ``--spec`` and the inputs (observation frames, a training batch, normalization
statistics) from ``--data``, both written by ``policy_speed.py``, and prints ONE JSON object
to stdout (everything else goes to stderr):

    .venv-lerobot/bin/python benchmarks/lerobot_policy_side.py --spec case.json --data case.npz
        [--device cpu|cuda] [--threads 2] [--diffusers DIR]

What it measures, on the same inputs and thread count as robolearn's side:

* ``chunk`` — one action chunk at batch 1 the way LeRobot's ``select_action`` computes one:
  observation → ``prepare_observation_for_inference`` → preprocessor (normalize) → (Diffusion
  Policy: the observation queues updated as ``select_action`` does) → ``predict_action_chunk``
  → postprocessor (unnormalize, to CPU).
* ``per_action`` — ``lerobot.common.control_utils.predict_action`` (what ``lerobot-record``
  runs per control tick: preprocessor → ``select_action`` with its own action queue or temporal
  ensembler → postprocessor) for every step of ``act_steps``-long episodes.
* ``train`` — what ``lerobot-train``'s ``update_policy`` does per batch: preprocessor,
  ``forward`` (the loss), backward, gradient clipping (norm 10), the config's optimizer preset
  and LR scheduler step, ``zero_grad``; samples/s over timed steps after warm-up.

LeRobot's Diffusion Policy needs ``diffusers`` (its ``[diffusion]`` extra). Where LeRobot's
venv lacks it, ``--diffusers DIR`` (a ``diffusers`` package directory, e.g. robolearn's; it is
pure Python) is put on ``sys.path`` through a temporary folder holding only that package, and
the JSON says so. Nothing touches the network: ``HF_HUB_OFFLINE=1`` is set before LeRobot is
imported and the ResNet-18 backbones start from random weights.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# isort: split
import argparse
import importlib
import importlib.metadata
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ACTION = "action"
IMAGE_PREFIX = "observation.images."


def log(msg: str) -> None:
    """A progress line on stderr (stdout carries only the JSON)."""
    print(f"[lerobot_policy_side] {msg}", file=sys.stderr, flush=True)


def borrow_diffusers(package_dir: str | None) -> str:
    """Make ``import diffusers`` work; returns where it came from."""
    try:
        importlib.import_module("diffusers")
        return "lerobot venv"
    except ImportError:
        if not package_dir:
            return "missing"
    src = Path(package_dir)
    shim = Path(tempfile.mkdtemp(prefix="diffusers_shim_"))
    (shim / "diffusers").symlink_to(src, target_is_directory=True)
    for info in src.parent.glob("diffusers-*.dist-info"):  # so LeRobot's availability check passes
        (shim / info.name).symlink_to(info, target_is_directory=True)
    sys.path.insert(0, str(shim))
    importlib.invalidate_caches()
    importlib.import_module("diffusers")
    return f"borrowed from {src} (LeRobot's venv lacks lerobot[diffusion])"


# ---------------------------------------------------------------- timing


def summary_ms(times_s: list[float]) -> dict[str, Any]:
    """p50 / p90 / mean / min in ms (the same summary as robolearn's side)."""
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


def repeat(
    fn: Callable[[int], None], budget: dict[str, Any], sync: Callable[[], None]
) -> list[float]:
    """Call ``fn(i)`` until ``max_reps`` calls, or ``min_reps`` calls and ``seconds`` spent."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < budget["max_reps"] and (
        len(times) < budget["min_reps"] or time.perf_counter() - start < budget["seconds"]
    ):
        t0 = time.perf_counter()
        fn(len(times))
        sync()
        times.append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------- data and configs


def load_data(path: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Observation frames, the training batch and the statistics from the npz."""
    frames: dict[str, np.ndarray] = {}
    batch: dict[str, np.ndarray] = {}
    stats: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as z:
        for name in z.files:
            part, key, *rest = name.split("|")
            if part == "obs":
                frames[key] = z[name]
            elif part == "train":
                batch[key] = z[name]
            else:
                stats.setdefault(key, {})[rest[0]] = z[name]
    return frames, batch, stats


def features(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """LeRobot ``PolicyFeature``s of the case's inputs and action."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    inputs: dict[str, Any] = {}
    for key, shape in case["features"].items():
        if key.startswith(IMAGE_PREFIX):
            kind = FeatureType.VISUAL
        elif key == "observation.environment_state":
            kind = FeatureType.ENV
        else:
            kind = FeatureType.STATE
        inputs[key] = PolicyFeature(type=kind, shape=tuple(shape))
    outputs = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(case["action_dim"],))}
    return inputs, outputs


def diffusion_config(case: dict[str, Any], device: str) -> Any:
    """LeRobot's DiffusionConfig with the case's hyperparameters."""
    from lerobot.configs.types import NormalizationMode
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

    p, v = case["params"], case.get("vision", {})
    inputs, outputs = features(case)
    has_images = any(k.startswith(IMAGE_PREFIX) for k in inputs)
    return DiffusionConfig(
        input_features=inputs,
        output_features=outputs,
        device=device,
        n_obs_steps=p["n_obs_steps"],
        horizon=p["horizon"],
        n_action_steps=p["n_action_steps"],
        down_dims=tuple(p["down_dims"]),
        kernel_size=p["kernel_size"],
        n_groups=p["n_groups"],
        diffusion_step_embed_dim=p["diffusion_step_embed_dim"],
        use_film_scale_modulation=p["film_scale"],
        noise_scheduler_type="DDIM",
        num_train_timesteps=p["num_train_timesteps"],
        beta_schedule=p["beta_schedule"],
        prediction_type=p["prediction_type"],
        clip_sample=p["clip_sample"],
        num_inference_steps=p["num_inference_steps"],
        vision_backbone="resnet18",
        pretrained_backbone_weights=None,
        use_group_norm=v.get("use_group_norm", True),
        spatial_softmax_num_keypoints=v.get("spatial_softmax_keypoints", 32),
        crop_shape=tuple(v["crop_hw"]) if has_images else None,
        crop_is_random=True,
        use_separate_rgb_encoder_per_camera=v.get("separate_encoder_per_camera", True),
        normalization_mapping={
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MIN_MAX,
            "ENV": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MIN_MAX,
        },
    )


def act_config(case: dict[str, Any], device: str) -> Any:
    """LeRobot's ACTConfig with the case's hyperparameters."""
    from lerobot.configs.types import NormalizationMode
    from lerobot.policies.act.configuration_act import ACTConfig

    p = case["params"]
    inputs, outputs = features(case)
    return ACTConfig(
        input_features=inputs,
        output_features=outputs,
        device=device,
        chunk_size=p["chunk_size"],
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
        vision_backbone="resnet18",
        pretrained_backbone_weights=None,
        normalization_mapping={
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ENV": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        },
    )


def build(case: dict[str, Any], stats: dict[str, Any], device: str) -> tuple[Any, Any, Any]:
    """The policy and its pre/post processors, from the case and the statistics."""
    import torch
    from lerobot.policies.factory import make_pre_post_processors

    if case["policy"] == "diffusion":
        from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

        cfg = diffusion_config(case, device)
        policy = DiffusionPolicy(cfg)
    else:
        from lerobot.policies.act.modeling_act import ACTPolicy

        cfg = act_config(case, device)
        policy = ACTPolicy(cfg)
    tensors = {k: {s: torch.from_numpy(v).float() for s, v in d.items()} for k, d in stats.items()}
    pre, post = make_pre_post_processors(cfg, dataset_stats=tensors)
    return policy.to(device), pre, post


# ---------------------------------------------------------------- measurements


def make_sync(device: str) -> Callable[[], None]:
    """A CUDA synchronize on CUDA, nothing on the CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def observations(frames: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Per-frame observation dicts (unbatched, images (H, W, 3) uint8)."""
    n = len(next(iter(frames.values())))
    return [{k: np.ascontiguousarray(v[i]) for k, v in frames.items()} for i in range(n)]


def measure_inference(
    case: dict[str, Any], frames: dict[str, np.ndarray], stats: dict[str, Any], device: str
) -> dict[str, Any]:
    """Per-chunk and per-action latency at batch 1."""
    import torch
    from lerobot.common.control_utils import predict_action
    from lerobot.policies.utils import populate_queues, prepare_observation_for_inference
    from lerobot.utils.constants import OBS_IMAGES

    plan, dev = case["plan"], torch.device(device)
    policy, pre, post = build(case, stats, device)
    policy.eval()
    obs = observations(frames)
    image_keys = [k for k in case["features"] if k.startswith(IMAGE_PREFIX)]
    sync = make_sync(device)
    diffusion = case["policy"] == "diffusion"

    @torch.inference_mode()
    def chunk(i: int) -> Any:
        batch = pre(prepare_observation_for_inference(dict(obs[i % len(obs)]), dev))
        if diffusion:  # what select_action does before it asks for a chunk
            batch.pop(ACTION, None)
            if image_keys:
                batch[OBS_IMAGES] = torch.stack([batch[k] for k in image_keys], dim=-4)
            policy._queues = populate_queues(policy._queues, batch)
        return post(policy.predict_action_chunk(batch))

    policy.reset()
    shape = tuple(chunk(0).shape)
    for i in range(1, plan["warmup"]):
        chunk(i)
    sync()
    policy.reset()
    chunk_times = repeat(chunk, plan["chunk"], sync)

    steps = plan["act_steps"]
    calls: list[float] = []

    def episode(_: int) -> None:
        policy.reset()
        for step in range(steps):
            t0 = time.perf_counter()
            predict_action(dict(obs[step % len(obs)]), policy, dev, pre, post, False)
            calls.append(time.perf_counter() - t0)  # the action is on the CPU: synchronized

    episode_times = repeat(episode, plan["episodes"], sync)
    return {
        "chunk_shape": list(shape),
        "chunk": summary_ms(chunk_times),
        "per_action": {
            **summary_ms(calls),
            "amortized_ms": round(1e3 * sum(calls) / max(len(calls), 1), 3),
            "max_ms": round(1e3 * max(calls), 3) if calls else None,
            "steps_per_episode": steps,
            "episodes": len(episode_times),
        },
    }


def measure_train(
    case: dict[str, Any], batch_np: dict[str, np.ndarray], stats: dict[str, Any], device: str
) -> dict[str, Any]:
    """Samples/s of lerobot-train's update step on the case's batch."""
    import torch

    plan = case["plan"]
    policy, pre, _ = build(case, stats, device)
    cfg = policy.config
    batch: dict[str, Any] = {k: torch.from_numpy(v) for k, v in batch_np.items()}
    if case["policy"] == "act":  # ACT reads one frame: (B, 1, ...) → (B, ...)
        batch = {k: v[:, -1] if k in case["features"] else v for k, v in batch.items()}
    optimizer = cfg.get_optimizer_preset().build(policy.get_optim_params())
    sched_cfg = cfg.get_scheduler_preset()
    scheduler = sched_cfg.build(optimizer, 100_000) if sched_cfg is not None else None
    params = [p for p in policy.parameters() if p.requires_grad]
    sync = make_sync(device)
    policy.train()

    def step(_: int) -> None:
        data = pre(dict(batch))
        loss, _out = policy.forward(data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        optimizer.zero_grad()
        if scheduler is not None:
            scheduler.step()
        loss.item()

    for i in range(plan["train_warmup"]):
        step(i)
    sync()
    times = repeat(step, plan["train"], sync)
    size = int(next(iter(batch_np.values())).shape[0])
    return {
        "batch_size": size,
        "step": summary_ms(times),
        "samples_per_s": round(size * len(times) / sum(times), 2) if times else None,
        "parameters": sum(p.numel() for p in policy.parameters()),
    }


def versions(diffusers_source: str) -> dict[str, Any]:
    """Package versions and where diffusers came from."""
    import torch

    out: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("lerobot", "diffusers"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["diffusers_source"] = diffusers_source
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure one case and print its JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--spec", required=True, help="case JSON written by policy_speed.py")
    p.add_argument("--data", required=True, help="npz of observation frames, batch, statistics")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--diffusers", default=None, help="diffusers package dir to borrow if missing")
    p.add_argument("--parts", default="inference,train")
    args = p.parse_args(argv)
    source = borrow_diffusers(args.diffusers)

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    case = json.loads(Path(args.spec).read_text())
    frames, batch, stats = load_data(args.data)
    parts = [x for x in args.parts.split(",") if x]
    out: dict[str, Any] = {
        "case": case["name"],
        "device": args.device,
        "threads": torch.get_num_threads(),
        "versions": versions(source),
    }
    if "inference" in parts:
        log(f"{case['name']}: inference")
        out["inference"] = measure_inference(case, frames, stats, args.device)
    if "train" in parts:
        log(f"{case['name']}: training")
        out["train"] = measure_train(case, batch, stats, args.device)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
