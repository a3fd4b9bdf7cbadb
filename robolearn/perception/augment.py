"""Image augmentation for visuomotor policies: random crop and random shift.

::

    aug = ImageAugment("random_crop", crop_ratio=0.95)
    aug.output_shape(96, 96)                 # (91, 91)
    out = aug(images, generator=gen)         # train(): a random crop per sample
    aug.eval(); out = aug(images)            # eval(): the centre crop, deterministic

* ``random_crop`` (Diffusion Policy): a crop of ``round(crop_ratio * H) × round(crop_ratio * W)``
  at a random integer offset per sample in ``train()`` mode, the centre crop of that size in
  ``eval()`` mode; the output is smaller than the input.
* ``random_shift`` (DrQ): pad by ``shift_pad_px`` with edge replication and crop back to
  ``H × W`` at a random integer offset per sample, i.e. shift the image by up to
  ``± shift_pad_px`` pixels; identity in ``eval()`` mode.
* ``none``: identity.

Randomness is explicit: pass a ``torch.Generator`` to :meth:`ImageAugment.forward` for a
seeded, reproducible draw (without one the global torch generator is used). Offsets are drawn
on the generator's device (the CPU without one) and moved to the images' device, so a CPU
generator serves images on any device.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.core.types import ConfigError

AugmentMode = Literal["random_crop", "random_shift", "none"]
AUGMENT_MODES: tuple[str, ...] = get_args(AugmentMode)


class ImageAugment(nn.Module):
    """Random crop / random shift in ``train()`` mode, deterministic in ``eval()`` (see module)."""

    def __init__(
        self, mode: AugmentMode = "random_crop", crop_ratio: float = 0.95, shift_pad_px: int = 4
    ) -> None:
        """Configure the augmentation.

        Args:
            mode: ``"random_crop"``, ``"random_shift"`` or ``"none"``.
            crop_ratio: crop side / image side for ``random_crop``, in (0, 1].
            shift_pad_px: largest shift in pixels for ``random_shift``, ≥ 0.
        """
        super().__init__()
        if mode not in AUGMENT_MODES:
            raise ConfigError(f"augment mode must be one of {AUGMENT_MODES}, got {mode!r}")
        if not 0.0 < crop_ratio <= 1.0:
            raise ConfigError(f"crop_ratio must be in (0, 1], got {crop_ratio}")
        if shift_pad_px < 0:
            raise ConfigError(f"shift_pad_px must be ≥ 0, got {shift_pad_px}")
        self.mode: AugmentMode = mode
        self.crop_ratio = crop_ratio
        self.shift_pad_px = shift_pad_px

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the output for an input of ``height × width`` pixels."""
        if self.mode != "random_crop":
            return height, width
        out_h = max(1, round(self.crop_ratio * height))
        out_w = max(1, round(self.crop_ratio * width))
        return out_h, out_w

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment ``images`` (..., C, H, W) → (..., C, H', W'); leading dims are samples."""
        if images.ndim < 3:
            raise ConfigError(f"ImageAugment expects (..., C, H, W) images, got {images.shape}")
        if self.mode == "none" or (self.mode == "random_shift" and not self.training):
            return images
        lead, (c, h, w) = images.shape[:-3], images.shape[-3:]
        flat = images.reshape(-1, c, h, w)  # (N, C, H, W)
        out = (
            self._crop(flat, generator)
            if self.mode == "random_crop"
            else self._shift(flat, generator)
        )
        return out.reshape(*lead, *out.shape[1:])

    def _crop(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        h, w = images.shape[-2:]
        out_h, out_w = self.output_shape(h, w)
        if self.training:
            top = _randint(h - out_h + 1, images.shape[0], generator)
            left = _randint(w - out_w + 1, images.shape[0], generator)
            return crop_per_sample(
                images, top.to(images.device), left.to(images.device), out_h, out_w
            )
        top_c, left_c = (h - out_h) // 2, (w - out_w) // 2
        return images[..., top_c : top_c + out_h, left_c : left_c + out_w]

    def _shift(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        pad = self.shift_pad_px
        h, w = images.shape[-2:]
        padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
        top = _randint(2 * pad + 1, images.shape[0], generator).to(images.device)
        left = _randint(2 * pad + 1, images.shape[0], generator).to(images.device)
        return crop_per_sample(padded, top, left, h, w)

    def extra_repr(self) -> str:
        """The configuration, shown by ``print(module)``."""
        return f"mode={self.mode!r}, crop_ratio={self.crop_ratio}, shift_pad_px={self.shift_pad_px}"


def crop_per_sample(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Crop sample ``i`` of ``images`` (N, C, H, W) at ``(top[i], left[i])`` to ``height × width``.

    One gather for the whole batch; ``top``/``left`` are (N,) integer tensors on the
    images' device with ``0 ≤ top ≤ H - height`` and ``0 ≤ left ≤ W - width``.
    """
    n = images.shape[0]
    rows = top[:, None] + torch.arange(height, device=images.device)  # (N, height)
    cols = left[:, None] + torch.arange(width, device=images.device)  # (N, width)
    batch = torch.arange(n, device=images.device)[:, None, None]  # (N, 1, 1)
    out = images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, h, w, C)
    return out.permute(0, 3, 1, 2).contiguous()


def _randint(high: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(n,) integers uniform in ``[0, high)``, drawn on the generator's device (or the CPU)."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, high, (n,), generator=generator, device=device)
