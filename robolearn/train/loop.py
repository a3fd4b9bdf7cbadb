"""The training loop: windows → policy.compute_loss → AdamW, with checkpoints and resume.

Runs through HF Accelerate, so the same loop trains on the CPU, one GPU (bf16 autocast when
``amp``), or several GPUs under ``accelerate launch``. A non-finite loss stops training with
a :class:`TrainingError` naming the step and the batch's frames; checkpoints already written
are left as they were.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from robolearn.core.config_dict import config_from_dict
from robolearn.core.types import ConfigError, RobolearnError
from robolearn.data.meta import read_env_metadata
from robolearn.data.reader import DatasetReader
from robolearn.data.torch_dataset import WindowedDataset
from robolearn.policies.base import Policy, PolicyConfig, make_policy, policy_class
from robolearn.policies.env_io import PRIVILEGED_KEY, check_env_offers
from robolearn.train.checkpoint import (
    LAST,
    load_training_state,
    resume_checkpoint,
    save_checkpoint,
)
from robolearn.train.config import TrainConfig, resolve_preset, with_run_settings
from robolearn.train.run_dir import prepare_run_dir
from robolearn.train.steps import DeferredInterrupt, progress_bar, say_interrupted

LOG_FILE = "train_log.jsonl"
UNKNOWN_POLICY_OPTIONS = "{name} has no options {unknown}; options: {known}"


class TrainingError(RobolearnError):
    """Training cannot go on (a non-finite loss); the message names the step and batch."""


@dataclass
class TrainResult:
    """What a training run produced."""

    checkpoint: Path
    steps: int
    final_loss: float
    seconds: float
    samples_per_s: float
    """Training samples per second over every process of the run."""
    processes: int = 1
    """Processes that trained together (``accelerate launch --num_processes N``)."""
    main_process: bool = True
    """Whether this is the run's main process (the one that saves and logs)."""
    device: str = "cpu"
    """The device the policy trained on (``cpu``, ``cuda:0``, …)."""
    precision: str = "fp32"
    """``bf16`` when the forward passes ran under bf16 autocast (``amp`` on CUDA), else ``fp32``."""


def train(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg.policy`` on ``cfg.dataset``; return the last checkpoint and figures."""
    cfg = resolve_preset(cfg)
    if cfg.resume:
        cfg = _with_saved_settings(cfg)
    assert cfg.dataset is not None
    if not cfg.resume:  # before the run folder is touched: nothing trained is lost
        check_env_offers(policy_config_for(cfg, DatasetReader(cfg.dataset)))
    for warning in setting_warnings(cfg, DatasetReader(cfg.dataset)):
        print(f"robolearn: warning: {warning}", file=sys.stderr)
    run = prepare_run_dir(cfg)
    _seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    assert cfg.dataset is not None
    reader = DatasetReader(cfg.dataset)
    start_step, policy, resumed = _policy_for_run(cfg, reader, run)
    data = training_windows(policy, reader)
    return _Trainer(cfg, run, policy, data, start_step, resumed).run()


def _with_saved_settings(cfg: TrainConfig) -> TrainConfig:
    """``--resume``: the run's own total steps and schedule unless given again."""
    path = Path(cfg.out) / "train_config.json"
    try:
        saved = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        saved = {}
    return with_run_settings(cfg, saved)


def setting_warnings(cfg: TrainConfig, reader: DatasetReader) -> list[str]:
    """Settings that train, but probably not as meant."""
    out = []
    if cfg.warmup_steps >= cfg.steps:
        out.append(
            f"--warmup-steps {cfg.warmup_steps} >= --steps {cfg.steps}: the learning rate never "
            "finishes warming up; lower --warmup-steps"
        )
    cameras = [k for k in reader.camera_keys if k.startswith("observation.images.")]
    if cfg.preset and cfg.preset.startswith("cpu-state-") and cameras and not cfg.obs_keys:
        out.append(
            f"preset {cfg.preset} is sized for state inputs, but {reader.root} has cameras "
            f"({', '.join(cameras)}) the policy will read; use --preset cpu-image-diffusion, or "
            "--no-cameras when recording"
        )
    return out


def policy_config_for(cfg: TrainConfig, reader: DatasetReader) -> PolicyConfig:
    """The policy config from the dataset's features, its env metadata and the overrides."""
    keys = cfg.obs_keys or default_obs_keys(reader)
    features = reader.features
    missing = [k for k in [*keys, "action"] if k not in features]
    if missing:
        raise ConfigError(f"{missing} not in dataset {reader.root}; features: {sorted(features)}")
    inputs = {k: _policy_shape(list(features[k].shape), k in reader.camera_keys) for k in keys}
    base: dict[str, Any] = {
        "input_features": inputs,
        "action_dim": int(np.prod(features["action"].shape)),
        "env": read_env_metadata(reader.root),
    }
    overrides = cfg.policy_overrides()
    config_class = policy_class(cfg.policy).config_class
    return config_from_dict(
        config_class, {**base, **overrides}, name=cfg.policy, message=UNKNOWN_POLICY_OPTIONS
    )


def default_obs_keys(reader: DatasetReader) -> list[str]:
    """What a policy reads unless ``--obs-keys`` says: every RGB camera and observation vector
    — but from a camera dataset, only what a robot has (cameras and proprioception: not the
    task's privileged ``observation.environment_state``, which a state dataset trains on)."""
    cameras = [k for k in reader.camera_keys if k.startswith("observation.images.")]
    vectors = [k for k in reader.column_keys if k.startswith("observation.")]
    if cameras:
        vectors = [k for k in vectors if k != PRIVILEGED_KEY]
    return vectors + cameras


def _policy_shape(shape: list[int], camera: bool) -> list[int]:
    """Dataset cameras are (H, W, C); policies take (C, H, W)."""
    return [shape[2], shape[0], shape[1]] if camera and len(shape) == 3 else shape


def training_windows(policy: Policy, reader: DatasetReader) -> Dataset[dict[str, Any]]:
    """Raw (unnormalized) training windows shaped for ``policy``; state-only windows are
    materialized in memory once (fast random access)."""
    cfg = policy.config
    windows = WindowedDataset(
        reader,
        obs_keys=cfg.state_keys,
        image_keys=cfg.image_keys,
        n_obs_steps=cfg.n_obs_steps,
        horizon=cfg.horizon,
        normalize=False,
        action_offset=policy.action_offset,
    )
    return windows if cfg.image_keys else InMemoryWindows(windows)


class InMemoryWindows(Dataset[dict[str, Any]]):
    """Every tensor of a dataset stacked once: (N, ...) per key."""

    def __init__(self, source: Dataset[dict[str, Any]]) -> None:
        items = [source[i] for i in range(len(source))]  # type: ignore[arg-type]
        keys = [k for k, v in items[0].items() if isinstance(v, torch.Tensor)]
        self.tensors = {k: torch.stack([item[k] for item in items]) for k in keys}
        self._len = len(items)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.tensors.items()}

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[dict[str, Any]]:
        """Endless shuffled batches without a DataLoader (no per-item Python work)."""
        while True:
            order = torch.randperm(self._len, generator=generator)
            for start in range(0, self._len - batch_size + 1, batch_size):
                idx = order[start : start + batch_size]
                yield {k: v[idx] for k, v in self.tensors.items()}


def _policy_for_run(
    cfg: TrainConfig, reader: DatasetReader, run: Path
) -> tuple[int, Policy, Path | None]:
    """The step to start at, the policy, and the checkpoint it was resumed from (if any)."""
    if cfg.resume:
        from robolearn.policies.base import load_policy

        folder, skipped = resume_checkpoint(run / "checkpoints")
        step = int(load_training_state(folder)["step"])
        if skipped:
            print(
                f"resume: {'; '.join(skipped)}; continuing from {folder} (step {step})",
                file=sys.stderr,
            )
        return step, load_policy(folder).train(), folder
    return 0, make_policy(cfg.policy, policy_config_for(cfg, reader), reader.stats), None


def with_observation_noise(batch: dict[str, Any], std: float, policy: Policy) -> dict[str, Any]:
    """``batch`` with Gaussian noise of ``std`` added to the policy's observation vectors (the
    ``--obs-noise`` augmentation; cameras and actions untouched). Draws from torch's global
    generator, which the run seeds."""
    noisy = dict(batch)
    for key in set(policy.config.state_keys) & set(batch):
        value = batch[key]
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            noisy[key] = value + std * torch.randn_like(value)
    return noisy


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _Trainer:
    """One training run; small methods around the step loop."""

    def __init__(
        self,
        cfg: TrainConfig,
        run: Path,
        policy: Policy,
        data: Dataset[Any],
        start_step: int,
        resumed: Path | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.cfg, self.run_dir, self.step = cfg, run, start_step
        cpu = cfg.device == "cpu" or not torch.cuda.is_available()
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available; use --device auto")
        precision = "bf16" if cfg.amp and not cpu else "no"
        self.acc = Accelerator(cpu=cpu, mixed_precision=precision)
        self.optimizer = torch.optim.AdamW(
            [p for p in policy.parameters() if p.requires_grad],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.model, self.optimizer = self.acc.prepare(policy, self.optimizer)
        self.policy: Policy = self.acc.unwrap_model(self.model)
        self.data = data
        self.batches = self._batches()
        if resumed is not None:
            state = load_training_state(resumed, self.optimizer)
            self.schedule.load_state_dict(state["scheduler"])
        self.writer = self._tensorboard()
        self.last_loss = math.nan

    def _lr_factor(self, step: int) -> float:
        warm = max(1, self.cfg.warmup_steps)
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, self.cfg.steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def _batches(self) -> Iterator[dict[str, Any]]:
        generator = torch.Generator().manual_seed(self.cfg.seed + self.step)
        if isinstance(self.data, InMemoryWindows):
            # Each process of a multi-GPU run draws its own batches (process 0 as a single
            # one); a prepared DataLoader below shards by process itself.
            generator.manual_seed(self.cfg.seed + self.step + 1_000_003 * self.acc.process_index)
            if len(self.data) < self.cfg.batch_size:
                raise ConfigError(
                    f"the dataset has {len(self.data)} windows, fewer than --batch-size "
                    f"{self.cfg.batch_size}; lower the batch size or record more"
                )
            yield from self.data.batches(self.cfg.batch_size, generator)  # endless
            return
        loader = DataLoader(
            self.data,
            batch_size=self.cfg.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.cfg.num_workers,
            generator=generator,
            persistent_workers=self.cfg.num_workers > 0,
        )
        loader = self.acc.prepare(loader)
        while True:
            yield from loader

    def _tensorboard(self) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return (
            SummaryWriter(str(self.run_dir / "tensorboard")) if self.acc.is_main_process else None
        )

    def run(self) -> TrainResult:
        t0, start = time.perf_counter(), self.step
        bar = self._progress_bar()
        saved = self.step
        try:
            with DeferredInterrupt() as ctrl_c:
                while self.step < self.cfg.steps:
                    batch = next(self.batches)
                    metrics = self._train_step(batch)
                    self.step += 1
                    self._log(metrics, bar)
                    if self.step % self.cfg.save_every == 0 or self.step == self.cfg.steps:
                        self._save()
                        saved = self.step
                    if ctrl_c.requested:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            self._save_interrupted(saved)
            raise
        finally:
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.close()
        seconds = time.perf_counter() - t0
        done, processes = self.step - start, self.acc.num_processes
        return TrainResult(
            checkpoint=self.run_dir / "checkpoints" / LAST,
            steps=self.step,
            final_loss=self.last_loss,
            seconds=seconds,
            samples_per_s=done * self.cfg.batch_size * processes / max(seconds, 1e-9),
            processes=processes,
            main_process=self.acc.is_main_process,
            device=str(self.acc.device),
            precision="bf16" if self.acc.mixed_precision == "bf16" else "fp32",
        )

    def _train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        batch = {
            k: v.to(self.acc.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
        }
        if self.cfg.obs_noise > 0:
            batch = with_observation_noise(batch, self.cfg.obs_noise, self.policy)
        self.model.train()
        with self.acc.autocast():
            loss, metrics = self.model(batch)
        if not torch.isfinite(loss):
            self._fail(loss, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.acc.backward(loss)
        if self.cfg.grad_clip > 0:
            metrics["grad_norm"] = float(
                self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            )
        self.optimizer.step()
        self.schedule.step()
        self.policy.on_train_step()
        metrics["lr"] = self.schedule.get_last_lr()[0]
        self.last_loss = float(loss.detach())
        return metrics

    def _fail(self, loss: torch.Tensor, batch: dict[str, Any]) -> None:
        frames = _batch_frames(batch)
        report = self.run_dir / f"nan_batch_step{self.step + 1}.json"
        report.write_text(
            json.dumps({"step": self.step + 1, "loss": str(float(loss.detach())), **frames})
        )
        last = self.run_dir / "checkpoints" / LAST
        kept = (
            f"the last good checkpoint, {last}, is intact" if last.exists() else "no checkpoint yet"
        )
        raise TrainingError(
            f"loss became {float(loss.detach())} at step {self.step + 1}; the batch's frames "
            f"(episode, frame) are in {report}: first {frames['frames'][:5]}; {kept}. "
            "Check the dataset for NaN/inf values (robolearn dataset --stats) or lower --lr"
        )

    def _log(self, metrics: dict[str, float], bar: Any) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", refresh=False)
        if self.step % self.cfg.log_every and self.step != self.cfg.steps:
            return
        if not self.acc.is_main_process:
            return
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"train/{key}", value, self.step)
        with (self.run_dir / LOG_FILE).open("a") as f:
            f.write(json.dumps({"step": self.step, **metrics}) + "\n")

    def _save(self) -> None:
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            save_checkpoint(
                self.policy, self.optimizer, self.schedule, self.step, self.run_dir / "checkpoints"
            )

    def _save_interrupted(self, saved: int) -> None:
        """Ctrl-C: checkpoint the step reached (unless just saved) and say where --resume
        continues."""
        if self.step > saved:
            self._save()
        if self.acc.is_main_process:
            say_interrupted(self.step, self.cfg.steps, self.run_dir / "checkpoints" / LAST)

    def _progress_bar(self) -> Any:
        if not (self.cfg.progress and self.acc.is_main_process):
            return None
        return progress_bar(self.cfg.steps, self.step, "train")


def _batch_frames(batch: dict[str, Any]) -> dict[str, Any]:
    episodes = batch.get("episode_index")
    frames = batch.get("frame_index")
    if episodes is None or frames is None:
        return {"frames": []}
    pairs = list(zip(episodes.tolist(), frames.tolist(), strict=True))
    return {"frames": pairs}
