"""MAE pretraining of a ViT image encoder on the camera frames of datasets (``robolearn pretrain``).

::

    from robolearn.train.pretrain import PretrainConfig, pretrain
    result = pretrain(PretrainConfig(datasets=[Path("data/lift")], out=Path("runs/mae")))
    result.checkpoint   # runs/mae/checkpoints/last, an MAE folder (robolearn.perception.mae)
    # an image policy then uses its encoder, frozen:
    #   vision={"backbone": "vit", "pretrained_path": "mae:runs/mae/checkpoints/last",
    #           "augment": "random_shift"}

Frames: every frame of every episode of the chosen cameras (default: each dataset's RGB
``observation.images.*`` cameras, front and wrist alike), decoded on demand by
:class:`~robolearn.data.reader.DatasetReader` and resized to ``image_size`` × ``image_size``.
Batches are drawn at random (with replacement) from that pool; batches and masks come from
one seeded generator whose state every checkpoint keeps, so ``--resume`` continues the run
it interrupted exactly.

The run folder ``--out``: ``checkpoints/<step>/`` and ``checkpoints/last/`` (``config.json``
+ ``model.safetensors`` + the optimizer, scheduler, step and generator state),
``recon/step_<n>.png`` at every save (rows: masked input, reconstruction, original of a fixed
set of frames), ``report.html`` with the latest grids and ``loss.png``, ``train_log.jsonl``,
``tensorboard/`` and ``pretrain_config.json``. An existing run is refused unless ``--resume``
or ``--overwrite``; Ctrl-C saves the last completed step.
"""

from __future__ import annotations

import html
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robolearn.core.types import ConfigError, RobolearnError
from robolearn.data.features import IMAGE, VIDEO
from robolearn.data.reader import DatasetReader
from robolearn.perception.encoders import load_state_dict_file, load_weights_into
from robolearn.perception.mae import WEIGHTS_FILE, MAEConfig, MAEModel, read_mae_config
from robolearn.policies.base import resolve_device
from robolearn.train.checkpoint import (
    LAST,
    load_training_state,
    resume_checkpoint,
    save_model_checkpoint,
)
from robolearn.train.pretrain_config import PretrainConfig
from robolearn.train.run_dir import CHECKPOINTS, prepare_run_dir
from robolearn.train.steps import DeferredInterrupt, progress_bar, say_interrupted

__all__ = ["FramePool", "PretrainConfig", "PretrainError", "PretrainResult", "pretrain"]

CONFIG_FILE = "pretrain_config.json"
LOG_FILE = "train_log.jsonl"
RECON_DIR = "recon"
REPORT_FILE = "report.html"
LOSS_PLOT = "loss.png"
CAMERA_PREFIX = "observation.images."
RECON_FRAMES = 8
"""Frames in each reconstruction grid (spread evenly over the pool, the same every save)."""
RECON_SEED = 0
"""Seed of the reconstruction grids' masks (the same every save)."""
GRID_CELL_PX = 96
"""Small frames are scaled up (nearest) to at least this many pixels in the grids."""
REPORT_GRIDS = 3
"""Reconstruction grids shown in report.html, newest first."""
NO_DECAY = ("pos_embed", "cls_token", "reg_token", "mask_token")
"""Parameters (besides biases and norms) without weight decay, as in MAE."""


class PretrainError(RobolearnError):
    """Pretraining cannot go on (a non-finite loss); the message names the step."""


@dataclass
class PretrainResult:
    """What a pretraining run produced."""

    checkpoint: Path
    steps: int
    final_loss: float
    """The loss of the last step (NaN when no step ran)."""
    seconds: float
    frames: int
    """Frames in the pool (datasets × cameras × frames)."""
    device: str


def pretrain(cfg: PretrainConfig) -> PretrainResult:
    """Pretrain an MAE on ``cfg.datasets``' camera frames; return the last checkpoint."""
    model_cfg = mae_config_for(cfg)
    pool = FramePool.open(cfg.datasets, cfg.cameras, cfg.image_size)
    device = torch.device(resolve_device(cfg.device))

    def same_model(run: Path) -> None:
        folder, _ = resume_checkpoint(run / CHECKPOINTS, read_mae_config)
        saved = read_mae_config(folder)
        if saved != model_cfg:
            raise ConfigError(
                f"--resume: {folder} holds an MAE with {asdict(saved)}, but the options ask for "
                f"{asdict(model_cfg)}; give the run's model options again"
            )

    run = prepare_run_dir(cfg, check_resume=same_model, config_file=CONFIG_FILE)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the model's initialization
    return _Pretrainer(cfg, run, MAEModel(model_cfg), pool, device).run()


def mae_config_for(cfg: PretrainConfig) -> MAEConfig:
    """The :class:`MAEConfig` of a run's options, which has a field of the same name for each
    (ConfigError, e.g. for an image size that is not a multiple of the patch size)."""
    return MAEConfig(**{f.name: getattr(cfg, f.name) for f in fields(MAEConfig)})


class FramePool:
    """Every frame of some cameras of some datasets, decoded on demand, resized to
    ``image_size`` × ``image_size``: ``images(rows)`` → (N, 3, S, S) float in [0, 1]."""

    def __init__(self, sources: Sequence[tuple[DatasetReader, str]], image_size: int) -> None:
        """Serve ``(reader, camera)`` pairs' frames (one pool row per camera frame)."""
        self.sources = list(sources)
        self.image_size = image_size
        parts = [
            np.stack([np.full(r.num_frames, s), np.arange(r.num_frames)], axis=1)
            for s, (r, _) in enumerate(self.sources)
        ]
        self.rows = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
        self._episodes = [_episode_of_frames(r) for r, _ in self.sources]
        self._times = [r.column("timestamp")[:, 0] for r, _ in self.sources]

    @classmethod
    def open(cls, datasets: Sequence[Path], cameras: Sequence[str], image_size: int) -> FramePool:
        """The frames of ``cameras`` (default: every RGB ``observation.images.*`` camera) of
        each dataset; ConfigError for a missing folder, a dataset without camera images or a
        camera a dataset lacks."""
        sources: list[tuple[DatasetReader, str]] = []
        for folder in datasets:
            reader = _open_dataset(folder)
            sources += [(reader, camera) for camera in _cameras_of(reader, cameras)]
        pool = cls(sources, image_size)
        if len(pool) == 0:
            raise ConfigError(f"the datasets {[str(p) for p in datasets]} hold no frames")
        return pool

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self) -> str:
        """One line: how many frames from which datasets and cameras."""
        parts = [f"{r.root} {camera} ({r.num_frames})" for r, camera in self.sources]
        return f"{len(self)} frames: {', '.join(parts)}"

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """``batch_size`` random frames (drawn with ``generator``) → (B, 3, S, S)."""
        picks = torch.randint(len(self), (batch_size,), generator=generator)
        return self.images(picks.numpy())

    def spread(self, count: int) -> torch.Tensor:
        """``count`` frames evenly spread over the pool (every camera) → (count, 3, S, S)."""
        return self.images(np.linspace(0, len(self) - 1, count).round().astype(np.int64))

    def images(self, picks: np.ndarray) -> torch.Tensor:
        """Pool rows ``picks`` → (N, 3, S, S) float in [0, 1], in that order; each episode's
        frames are decoded in one call."""
        size = self.image_size
        out = torch.empty(len(picks), 3, size, size)
        sources, frames = self.rows[picks, 0], self.rows[picks, 1]
        episodes = np.array([self._episodes[s][f] for s, f in zip(sources, frames, strict=True)])
        for source, episode in {(int(s), int(e)) for s, e in zip(sources, episodes, strict=True)}:
            where = np.flatnonzero((sources == source) & (episodes == episode))
            reader, camera = self.sources[source]
            times = self._times[source][frames[where]]
            decoded = torch.from_numpy(reader.frames(camera, episode, times))  # (k, H, W, 3) u8
            out[torch.from_numpy(where)] = _resized(decoded, size)
        return out


def _open_dataset(folder: Path) -> DatasetReader:
    if not Path(folder).is_dir():
        raise ConfigError(f"--dataset {folder} does not exist (or is not a folder)")
    return DatasetReader(folder)


def _cameras_of(reader: DatasetReader, wanted: Sequence[str]) -> list[str]:
    """The RGB cameras of ``reader`` to read: ``wanted`` (``front`` meaning
    ``observation.images.front``), or every ``observation.images.*`` one."""
    rgb = [k for k in reader.meta.keys_of(VIDEO, IMAGE) if k.startswith(CAMERA_PREFIX)]
    if not rgb:
        raise ConfigError(
            f"dataset {reader.root} has no camera images (RGB {CAMERA_PREFIX}* features) to "
            f"pretrain on; its keys: {sorted(reader.features)}. Record with cameras "
            "(robolearn record --cameras front wrist)"
        )
    if not wanted:
        return rgb
    chosen = [c if c in rgb or CAMERA_PREFIX + c not in rgb else CAMERA_PREFIX + c for c in wanted]
    missing = [c for c, key in zip(wanted, chosen, strict=True) if key not in rgb]
    if missing:
        raise ConfigError(f"dataset {reader.root} has no camera {missing}; its cameras: {rgb}")
    return chosen


def _episode_of_frames(reader: DatasetReader) -> np.ndarray:
    """(num_frames,) the episode of each global frame index."""
    lengths = [reader.episode_length(e) for e in range(reader.num_episodes)]
    return np.repeat(np.arange(reader.num_episodes), lengths)


def _resized(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(k, H, W, 3) uint8 → (k, 3, size, size) float in [0, 1] (antialiased bilinear)."""
    images = frames.permute(0, 3, 1, 2).float().div(255.0)
    if tuple(images.shape[-2:]) == (size, size):
        return images
    resized = F.interpolate(
        images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.clamp(0.0, 1.0)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor at ``step``: linear warm-up to 1, then a cosine to 0 at the end."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    done = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices, none on biases, norms, tokens and position
    embeddings (:data:`NO_DECAY`)."""
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            no_decay = param.ndim < 2 or name.rsplit(".", 1)[-1] in NO_DECAY
            (plain if no_decay else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


class _Pretrainer:
    """One pretraining run; small methods around the step loop."""

    def __init__(
        self,
        cfg: PretrainConfig,
        run: Path,
        model: MAEModel,
        pool: FramePool,
        device: torch.device,
    ) -> None:
        self.cfg, self.run_dir, self.pool, self.device = cfg, run, pool, device
        self.model = model.to(device)
        self.amp = cfg.amp and device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95)
        )
        warmup, total = cfg.warmup_steps, cfg.steps
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_cosine(step, warmup, total)
        )
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.step, self.last_loss = 0, math.nan
        if cfg.resume:
            self._restore()
        self.rng_state = self.generator.get_state()  # as at the start of the next step
        self.recon_frames = pool.spread(RECON_FRAMES)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run / "tensorboard"))

    def _restore(self) -> None:
        folder, skipped = resume_checkpoint(self.run_dir / CHECKPOINTS, read_mae_config)
        state_dict = load_state_dict_file(folder / WEIGHTS_FILE)
        load_weights_into(self.model, state_dict, str(folder / WEIGHTS_FILE))
        state = load_training_state(folder, self.optimizer)
        self.schedule.load_state_dict(state["scheduler"])
        self.generator.set_state(torch.tensor(state["rng"], dtype=torch.uint8))
        self.step = int(state["step"])
        losses = [e["loss"] for e in _trim_log(self.run_dir / LOG_FILE, self.step)]
        self.last_loss = losses[-1] if losses else math.nan
        if skipped:
            print(f"resume: {'; '.join(skipped)}", file=sys.stderr)
        print(f"resume: continuing from {folder} (step {self.step})", file=sys.stderr)

    def run(self) -> PretrainResult:
        t0 = time.perf_counter()
        bar = self._progress_bar()
        saved = self.step
        try:
            with DeferredInterrupt() as ctrl_c:
                while self.step < self.cfg.steps:
                    loss = self._train_step()
                    self.step += 1
                    self.last_loss, self.rng_state = loss, self.generator.get_state()
                    self._log(loss, bar)
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
            self.writer.close()
        return PretrainResult(
            checkpoint=self.run_dir / CHECKPOINTS / LAST,
            steps=self.step,
            final_loss=self.last_loss,
            seconds=time.perf_counter() - t0,
            frames=len(self.pool),
            device=str(self.device),
        )

    def _train_step(self) -> float:
        images = self.pool.sample(self.cfg.batch_size, self.generator).to(self.device)
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss = self.model(images, self.generator).loss
        if not torch.isfinite(loss):
            last = self.run_dir / CHECKPOINTS / LAST
            kept = f"{last} is intact" if last.exists() else "no checkpoint yet"
            raise PretrainError(
                f"loss became {float(loss.detach())} at step {self.step + 1} ({kept}); "
                "lower --lr or check the datasets' frames"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return float(loss.detach())

    def _log(self, loss: float, bar: Any) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if self.step % self.cfg.log_every and self.step != self.cfg.steps:
            return
        lr = self.schedule.get_last_lr()[0]
        self.writer.add_scalar("pretrain/loss", loss, self.step)
        self.writer.add_scalar("pretrain/lr", lr, self.step)
        with (self.run_dir / LOG_FILE).open("a") as f:
            f.write(json.dumps({"step": self.step, "loss": loss, "lr": lr}) + "\n")

    def _save(self) -> None:
        rng = {"rng": self.rng_state.tolist()}
        folder = self.run_dir / CHECKPOINTS
        save_model_checkpoint(self.model, self.optimizer, self.schedule, self.step, folder, rng)
        grid = self._recon_grid()
        recon = self.run_dir / RECON_DIR
        recon.mkdir(exist_ok=True)
        from PIL import Image

        Image.fromarray(grid).save(recon / f"step_{self.step}.png")
        self.writer.add_image("pretrain/reconstruction", grid, self.step, dataformats="HWC")
        write_report(self.run_dir, self.cfg, self.pool.describe())

    def _recon_grid(self) -> np.ndarray:
        """Rows masked input / reconstruction / original of the fixed frames → (H, W, 3) u8."""
        from torchvision.utils import make_grid

        generator = torch.Generator().manual_seed(RECON_SEED)
        self.model.eval()
        rec = self.model.reconstruct(self.recon_frames.to(self.device), generator)
        grid = make_grid(torch.cat(list(rec)).float().cpu(), nrow=len(self.recon_frames))
        scale = max(1, math.ceil(GRID_CELL_PX / self.cfg.image_size))
        grid = F.interpolate(grid[None], scale_factor=scale, mode="nearest")[0]
        return (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()

    def _save_interrupted(self, saved: int) -> None:
        """Ctrl-C: checkpoint the last completed step (unless just saved) and say where
        --resume continues."""
        if self.step > saved:
            self._save()
        say_interrupted(self.step, self.cfg.steps, self.run_dir / CHECKPOINTS / LAST)

    def _progress_bar(self) -> Any:
        if not self.cfg.progress:
            return None
        return progress_bar(self.cfg.steps, self.step, "pretrain")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a ``train_log.jsonl`` (a line cut short by a crash is skipped)."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def _trim_log(path: Path, step: int) -> list[dict[str, Any]]:
    """Drop log entries past ``step`` (logged after the checkpoint a resume starts from)."""
    entries = read_log(path)
    kept = [e for e in entries if int(e.get("step", 0)) <= step]
    if path.is_file():
        path.write_text("".join(json.dumps(e) + "\n" for e in kept))
    return kept


def write_report(run: Path, cfg: PretrainConfig, frames: str) -> Path:
    """``report.html`` (and ``loss.png``) of a run folder: the loss curve and the newest
    reconstruction grids."""
    entries = read_log(run / LOG_FILE)
    _loss_plot(entries, run / LOSS_PLOT)
    grids = sorted((run / RECON_DIR).glob("step_*.png"), key=_grid_step, reverse=True)
    shown = "".join(
        f"<h3>step {_grid_step(p)}</h3><img src='{RECON_DIR}/{p.name}' alt='step {_grid_step(p)}'>"
        for p in grids[:REPORT_GRIDS]
    )
    last = entries[-1] if entries else {}
    loss = f"{last['loss']:.4f} at step {last['step']}" if last else "not logged yet"
    model = f"{cfg.model}, {cfg.image_size}×{cfg.image_size} px, mask ratio {cfg.mask_ratio}"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>robolearn pretrain</title>"
        "<style>body{font-family:sans-serif;margin:2em}img{image-rendering:pixelated;"
        "max-width:100%}</style></head><body><h1>MAE pretraining</h1>"
        f"<p>{html.escape(frames)}</p><p>Model: {html.escape(model)}. Loss {loss} "
        f"(of {cfg.steps} steps).</p><img src='{LOSS_PLOT}' alt='loss curve'>"
        "<h2>Reconstructions</h2><p>Rows: masked input, reconstruction (visible patches "
        f"pasted), original.</p>{shown}</body></html>"
    )
    path = run / REPORT_FILE
    path.write_text(page)
    return path


def _grid_step(path: Path) -> int:
    return int(path.stem.removeprefix("step_"))


def _loss_plot(entries: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot([e["step"] for e in entries], [e["loss"] for e in entries])
    ax.set(title="MAE loss (masked patches)", xlabel="step", ylabel="loss")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
