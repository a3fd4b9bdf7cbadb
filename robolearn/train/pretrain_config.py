"""``robolearn pretrain``'s options: MAE pretraining of a ViT on datasets' camera frames.

Kept apart from :mod:`robolearn.train.pretrain` (the loop) so that the CLI reads it without
importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from robolearn.core.paths import require_folder, require_positive
from robolearn.core.types import ConfigError


@dataclass
class PretrainConfig:
    """Pretrain a ViT image encoder as a masked autoencoder (MAE, as MVP) on the camera frames
    of LeRobot v3 datasets, for image policies to use frozen (vision pretrained_path
    mae:OUT/checkpoints/last)."""

    datasets: list[Path] = field(metadata={"flag": "--dataset", "repeat": True})
    """Dataset folders (LeRobot v3); repeat --dataset for several. Every frame of every
    episode is used, of each camera (or of --cameras)."""
    cameras: list[str] = field(default_factory=list)
    """Camera keys to read; default: every RGB camera observation.images.* of each dataset."""
    out: Path = Path("runs/pretrain")
    """Run folder: checkpoints/<step>/ and last/, recon/, report.html, tensorboard/,
    train_log.jsonl."""
    image_size: int = 96
    """Frames are resized to IMAGE_SIZE × IMAGE_SIZE (a multiple of the patch size); a policy
    using the encoder must see images of this size."""
    model: str = "vit_tiny_patch16_224"
    """timm ViT of the encoder (random weights, nothing is downloaded)."""
    patch_size: int | None = None
    """Patch side in pixels; none: 8 under 128 pixels, else 16."""
    depth: int | None = None
    """Encoder transformer blocks; none keeps the model's."""
    mask_ratio: float = 0.75
    """Share of each frame's patches hidden from the encoder."""
    decoder_dim: int = 128
    """Width of the light decoder's tokens."""
    decoder_depth: int = 2
    """Decoder transformer blocks."""
    decoder_heads: int = 4
    """Attention heads per decoder block (must divide --decoder-dim)."""
    norm_pix_loss: bool = True
    """Targets normalized by each patch's own mean and variance."""
    steps: int = 20000
    """Optimizer steps (the total, also with --resume)."""
    batch_size: int = 64
    """Frames per batch."""
    lr: float = 3e-4
    """Peak learning rate of AdamW."""
    warmup_steps: int = 500
    """Linear learning-rate warm-up, then cosine decay to zero at --steps."""
    weight_decay: float = 0.05
    """AdamW weight decay (not on biases, norms, tokens and position embeddings)."""
    seed: int = 0
    """Seeds the model's initialization, the batches and the masks."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when present."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    log_every: int = 50
    """Steps between lines of train_log.jsonl and TensorBoard points."""
    save_every: int = 1000
    """Checkpoint (and reconstruction grid) period in steps; the last step is always saved."""
    resume: bool = False
    """Continue the run in --out from its last intact checkpoint."""
    overwrite: bool = False
    """Delete an existing run in --out first."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        """Check what needs no dataset and no torch (the rest: :func:`pretrain`)."""
        self.datasets = [Path(p) for p in self.datasets]
        self.cameras = list(self.cameras)
        if not self.datasets:
            raise ConfigError("--dataset DIR is required (record one with `robolearn record`)")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("--steps and --batch-size must be ≥ 1")
        for flag, every in (("--save-every", self.save_every), ("--log-every", self.log_every)):
            if every < 1:
                raise ConfigError(f"{flag} must be ≥ 1 (steps), got {every}")
        require_positive("--lr", self.lr)
        require_positive("--weight-decay", self.weight_decay, allow_zero=True)
        require_positive("--warmup-steps", self.warmup_steps, allow_zero=True)
        require_positive("--threads", self.threads, allow_zero=True)
        require_folder(self.out)
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; pick one")
