"""Masked-autoencoder (MAE) pretraining of a timm ViT on camera frames, as MVP does it.

::

    cfg = MAEConfig(image_size=96)            # vit_tiny_patch16_224 at 96×96 in 8-pixel patches
    mae = MAEModel(cfg)
    out = mae(images, generator)              # (B, 3, 96, 96) in [0, 1] or (B, 96, 96, 3) uint8
    out.loss.backward()                       # normalized-pixel loss on the masked patches
    rec = mae.reconstruct(images, generator)  # rec.masked, rec.reconstruction, rec.original
    mae.save("runs/mae/checkpoints/last")     # config.json + model.safetensors
    mae = MAEModel.load("runs/mae/checkpoints/last")

He et al. (2022), *Masked Autoencoders Are Scalable Vision Learners*; Xiao et al. (2022),
*Masked Visual Pre-training for Motor Control* (MVP): the encoder is pretrained on the robot's
own camera frames, then frozen under a policy.

Per image: ImageNet mean/std normalization (:class:`ImageNetNormalize`, as every encoder of
this package), the ViT's patch embedding and position embedding, then a per-sample random
shuffle of the patch tokens keeps ``1 - mask_ratio`` of them (25 % by default); the encoder's
transformer sees those visible patches and its CLS token only. A light decoder (its own
width, blocks, learned mask token and fixed 2-D sin-cos position embeddings) fills the masked
places with the mask token and predicts every patch's pixels. The loss is the mean squared
error on the masked patches only, against targets normalized by each patch's own mean and
variance (``norm_pix_loss``; else the ImageNet-normalized pixels).

The encoder is built by :func:`~robolearn.perception.encoders.create_vit` from
:meth:`MAEConfig.vit_config`, exactly as :class:`~robolearn.perception.encoders.ViTEncoder`
builds its backbone, so its weights (``encoder.*`` in ``model.safetensors``) load into a
policy's ViT: ``ObsEncoderConfig(backbone="vit", pretrained_path="mae:FOLDER")``
(see :mod:`robolearn.perception.fusion`). Random weights to start with; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import torch
from torch import nn

from robolearn.core.config_dict import config_from_dict
from robolearn.core.types import ConfigError
from robolearn.perception.encoders import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ImageNetNormalize,
    ViTConfig,
    ViTEncoder,
    create_vit,
    load_state_dict_file,
    load_weights_into,
    save_module_folder,
)

if TYPE_CHECKING:
    from timm.models.vision_transformer import VisionTransformer

MAE_TYPE = "mae"
"""The ``type`` in an MAE folder's ``config.json``."""
FORMAT_VERSION = 1
MAE_PREFIX = "mae:"
"""``pretrained_path="mae:FOLDER"`` names an MAE folder's encoder (see :func:`mae_folder`)."""
ENCODER_PREFIX = "encoder."
"""State-dict prefix of the ViT encoder in ``model.safetensors``."""
MASK_GRAY = 0.5
"""Colour of the hidden patches in :attr:`Reconstruction.masked`."""
PIX_EPS = 1e-6
"""Added to each patch's variance before the per-patch normalization."""


@dataclasses.dataclass
class MAEConfig:
    """The MAE's encoder, masking, decoder and loss (JSON-safe: ``asdict`` ⇄ :meth:`from_dict`)."""

    model: str = "vit_tiny_patch16_224"
    """The timm ViT of the encoder (``timm.list_models("vit_*")``), built with random weights."""
    image_size: int = 96
    """Side of the square images, in pixels; a multiple of ``patch_size``."""
    patch_size: int | None = None
    """Patch side in pixels; None: 8 under 128 pixels, else 16 (as ``ViTConfig``); stored
    resolved."""
    depth: int | None = None
    """Encoder transformer blocks; None keeps the named model's."""
    mask_ratio: float = 0.75
    """Share of each image's patches hidden from the encoder."""
    decoder_dim: int = 128
    """Width of the decoder's tokens."""
    decoder_depth: int = 2
    """Decoder transformer blocks."""
    decoder_heads: int = 4
    """Attention heads of each decoder block (must divide ``decoder_dim``)."""
    norm_pix_loss: bool = True
    """Targets normalized by each patch's own mean and variance (MAE's better setting)."""

    def __post_init__(self) -> None:
        """Resolve the patch size and check the values."""
        if self.image_size < 1:
            raise ConfigError(f"MAEConfig.image_size must be ≥ 1, got {self.image_size}")
        self.patch_size = self.vit_config().resolved_patch_size
        if self.image_size % self.patch_size:
            lower = self.image_size // self.patch_size * self.patch_size
            sizes = [s for s in (lower, lower + self.patch_size) if s > 0]
            raise ConfigError(
                f"image size {self.image_size} is not divisible by the patch size "
                f"{self.patch_size}: choose --image-size {' or '.join(map(str, sizes))}, or "
                "another --patch-size"
            )
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"MAEConfig.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if not 0 < self.num_visible < self.num_patches:
            raise ConfigError(
                f"mask ratio {self.mask_ratio} of {self.num_patches} patches keeps "
                f"{self.num_visible}: at least one must be visible and one masked"
            )
        if min(self.decoder_dim, self.decoder_depth, self.decoder_heads) < 1:
            raise ConfigError("MAEConfig.decoder_dim, decoder_depth and decoder_heads must be ≥ 1")
        if self.decoder_dim % self.decoder_heads:
            raise ConfigError(
                f"MAEConfig.decoder_heads {self.decoder_heads} must divide decoder_dim "
                f"{self.decoder_dim}"
            )

    @property
    def resolved_patch_size(self) -> int:
        """``patch_size`` as an int (it is resolved when the config is built)."""
        return cast(int, self.patch_size)

    @property
    def grid(self) -> int:
        """Patches along each side."""
        return self.image_size // self.resolved_patch_size

    @property
    def num_patches(self) -> int:
        """Patches per image."""
        return self.grid**2

    @property
    def num_visible(self) -> int:
        """Patches the encoder sees per image: ``round(num_patches * (1 - mask_ratio))``."""
        return round(self.num_patches * (1.0 - self.mask_ratio))

    def vit_config(self) -> ViTConfig:
        """The encoder's :class:`ViTConfig` (3-channel images, ImageNet normalization)."""
        return ViTConfig(
            image_shape=(3, self.image_size, self.image_size),
            name=self.model,
            patch_size=self.patch_size,
            depth=self.depth,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MAEConfig:
        """The config saved by ``dataclasses.asdict`` (e.g. read back from ``config.json``)."""
        return config_from_dict(cls, data)


class MAEOutput(NamedTuple):
    """One forward pass."""

    loss: torch.Tensor
    """Scalar: mean squared error over the masked patches."""
    pred: torch.Tensor
    """(B, N, patch² · 3) predicted patches, in the target's space."""
    mask: torch.Tensor
    """(B, N) float: 1 where the patch was masked, 0 where the encoder saw it."""


class Reconstruction(NamedTuple):
    """(B, 3, H, W) float images in [0, 1], for looking at."""

    masked: torch.Tensor
    """The input with its masked patches gray: what the encoder saw."""
    reconstruction: torch.Tensor
    """Predicted pixels in the masked patches, the visible patches pasted from the input."""
    original: torch.Tensor
    """The input."""


def random_masking(
    batch: int,
    num_patches: int,
    num_visible: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A per-sample random shuffle of ``num_patches`` patches that keeps ``num_visible``.

    Returns ``(keep, mask, restore)`` on ``device``: ``keep`` (B, num_visible) the indices of
    the visible patches; ``mask`` (B, N) float, 1 for a masked patch; ``restore`` (B, N) the
    permutation that puts ``[visible…, masked…]`` tokens back in patch order. The noise is
    drawn on ``generator``'s device (the CPU without one), so runs repeat across devices.
    """
    noise_device = generator.device if generator is not None else torch.device("cpu")
    noise = torch.rand(batch, num_patches, generator=generator, device=noise_device)
    shuffle = noise.argsort(dim=1)  # (B, N): the first num_visible stay visible
    restore = shuffle.argsort(dim=1)  # (B, N)
    mask = torch.ones(batch, num_patches, device=noise_device)
    mask[:, :num_visible] = 0.0
    mask = mask.gather(1, restore)  # (B, N) in patch order
    return shuffle[:, :num_visible].to(device), mask.to(device), restore.to(device)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) → (B, N, patch² · C) patches, row-major, pixels (row, column, channel)."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int = 3) -> torch.Tensor:
    """The inverse of :func:`patchify` for square images: (B, N, patch² · C) → (B, C, H, W)."""
    b, n, _ = patches.shape
    p, grid = patch_size, round(n**0.5)
    x = patches.reshape(b, grid, grid, p, p, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, grid * p, grid * p)


def patch_targets(
    images: torch.Tensor, patch_size: int, norm_pix: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss targets of (B, C, H, W) images: ``(target, mean, std)``, each (B, N, ·).

    With ``norm_pix`` each patch is normalized by its own mean and standard deviation
    (``mean``, ``std``: (B, N, 1)); else the target is the patch itself (mean 0, std 1).
    """
    patches = patchify(images, patch_size)
    if not norm_pix:
        return patches, torch.zeros_like(patches[..., :1]), torch.ones_like(patches[..., :1])
    mean = patches.mean(dim=-1, keepdim=True)
    std = (patches.var(dim=-1, keepdim=True) + PIX_EPS).sqrt()
    return (patches - mean) / std, mean, std


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per patch (B, N), averaged over the masked patches (``mask`` 1)."""
    per_patch = (pred.float() - target.float()).pow(2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)


class MAEModel(nn.Module):
    """ViT encoder over the visible patches + light decoder over every patch; see the module
    docstring. ``encoder`` is the timm model, as in :class:`ViTEncoder`'s ``backbone``."""

    decoder_pos_embed: torch.Tensor

    def __init__(self, cfg: MAEConfig) -> None:
        """Build the model with random weights."""
        super().__init__()
        from timm.layers import build_sincos2d_pos_embed
        from timm.models.vision_transformer import Block

        self.cfg = cfg
        self.patch_size = cfg.resolved_patch_size
        self.normalize = ImageNetNormalize()
        self.encoder = create_vit(cfg.vit_config(), (cfg.image_size, cfg.image_size))
        width = self.vit.embed_dim
        self.decoder_embed = nn.Linear(width, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        pos = build_sincos2d_pos_embed([cfg.grid, cfg.grid], cfg.decoder_dim)  # (N, D)
        self.register_buffer("decoder_pos_embed", pos.unsqueeze(0), persistent=False)
        self.decoder_blocks = nn.Sequential(
            *(
                Block(cfg.decoder_dim, cfg.decoder_heads, mlp_ratio=4.0, qkv_bias=True)
                for _ in range(cfg.decoder_depth)
            )
        )
        self.decoder_norm = nn.LayerNorm(cfg.decoder_dim)
        self.decoder_pred = nn.Linear(cfg.decoder_dim, self.patch_size**2 * 3)
        self._init_decoder()

    def _init_decoder(self) -> None:
        """MAE's initialization: a small normal mask token, Xavier-uniform linear layers."""
        nn.init.normal_(self.mask_token, std=0.02)
        for module in [self.decoder_embed, self.decoder_pred, *self.decoder_blocks.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def vit(self) -> VisionTransformer:
        """The timm encoder (``encoder``, typed)."""
        return cast("VisionTransformer", self.encoder)

    def as_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 or (B, 3, H, W) float in [0, 1] (or one unbatched image) →
        (B, 3, H, W) float in [0, 1]; ConfigError for another layout or size."""
        if images.ndim == 3:
            images = images.unsqueeze(0)
        size = self.cfg.image_size
        if images.dtype == torch.uint8 and images.ndim == 4 and images.shape[-1] == 3:
            images = images.permute(0, 3, 1, 2).float().div(255.0)
        elif not (images.is_floating_point() and images.ndim == 4 and images.shape[1] == 3):
            raise ConfigError(
                f"MAE images must be (B, H, W, 3) uint8 or (B, 3, H, W) float in [0, 1], got "
                f"{tuple(images.shape)} {images.dtype}"
            )
        if tuple(images.shape[-2:]) != (size, size):
            raise ConfigError(
                f"this MAE takes {size}×{size} images, got {tuple(images.shape[-2:])}; "
                "resize them first"
            )
        return images

    def encode_visible(self, images: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalized (B, 3, H, W) images and (B, K) visible patch indices →
        (B, prefix + K, width) encoder tokens (CLS first); masked patches never enter."""
        vit = self.vit
        tokens = vit._pos_embed(vit.patch_embed(images))  # (B, prefix + N, D)
        n_prefix = vit.num_prefix_tokens
        patches = tokens[:, n_prefix:]
        index = keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        visible = torch.cat([tokens[:, :n_prefix], patches.gather(1, index)], dim=1)
        return vit.norm(vit.blocks(vit.norm_pre(vit.patch_drop(visible))))

    def decode(self, latent: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (B, prefix + K, width) and the shuffle's ``restore`` (B, N) →
        (B, N, patch² · 3) predicted patches."""
        n_prefix = self.vit.num_prefix_tokens
        x = self.decoder_embed(latent)  # (B, prefix + K, Dd)
        b, n = restore.shape
        masks = self.mask_token.expand(b, n - (x.shape[1] - n_prefix), -1)
        shuffled = torch.cat([x[:, n_prefix:], masks], dim=1)  # (B, N, Dd), shuffled order
        index = restore.unsqueeze(-1).expand(-1, -1, shuffled.shape[-1])
        patches = shuffled.gather(1, index) + self.decoder_pos_embed.to(shuffled.dtype)
        x = self.decoder_blocks(torch.cat([x[:, :n_prefix], patches], dim=1))
        return self.decoder_pred(self.decoder_norm(x))[:, n_prefix:]

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> MAEOutput:
        """Mask, encode, decode and score a batch (see :meth:`as_images` for the layouts);
        the masks come from ``generator``."""
        normalized = self.normalize(self.as_images(images))
        keep, mask, restore = random_masking(
            normalized.shape[0],
            self.cfg.num_patches,
            self.cfg.num_visible,
            generator,
            normalized.device,
        )
        pred = self.decode(self.encode_visible(normalized, keep), restore)
        target, _, _ = patch_targets(normalized, self.patch_size, self.cfg.norm_pix_loss)
        return MAEOutput(masked_patch_loss(pred, target, mask), pred, mask)

    @torch.no_grad()
    def reconstruct(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> Reconstruction:
        """Masked input, reconstruction and original of a batch, in [0, 1] (see
        :class:`Reconstruction`); predictions are mapped back through each patch's own
        mean and variance and the ImageNet normalization."""
        original = self.as_images(images)
        normalized = self.normalize(original)
        out = self(original, generator)
        _, mean, std = patch_targets(normalized, self.patch_size, self.cfg.norm_pix_loss)
        pixels = unpatchify(out.pred.float() * std + mean, self.patch_size)
        norm = self.normalize
        predicted = (pixels * norm.std + norm.mean).clamp(0.0, 1.0)
        hidden = unpatchify(
            out.mask.unsqueeze(-1).expand(-1, -1, self.patch_size**2 * 3), self.patch_size
        )
        return Reconstruction(
            masked=original * (1 - hidden) + MASK_GRAY * hidden,
            reconstruction=original * (1 - hidden) + predicted * hidden,
            original=original,
        )

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The ViT encoder's weights, keyed as a :class:`ViTEncoder` backbone's."""
        return {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()}

    def save(self, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``folder`` atomically; ``extra``
        may add files (training state) before the folder is moved into place."""
        meta = {"type": MAE_TYPE, "format": FORMAT_VERSION, "config": dataclasses.asdict(self.cfg)}
        return save_module_folder(folder, meta, self, extra)

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> MAEModel:
        """A model saved with :meth:`save`, in eval mode on ``device``."""
        model = cls(read_mae_config(folder))
        state = _read_weights(Path(folder))
        load_weights_into(model, state, str(Path(folder) / WEIGHTS_FILE))
        return model.to(device).eval()


def read_mae_config(folder: str | Path) -> MAEConfig:
    """The :class:`MAEConfig` of an MAE folder; ConfigError naming the folder when it is none."""
    path = Path(folder).expanduser() / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"{Path(folder)} is not an MAE checkpoint: {CONFIG_FILE} is missing (robolearn "
            "pretrain writes them to OUT/checkpoints/<step> and OUT/checkpoints/last)"
        )
    try:
        meta = json.loads(path.read_text())
        kind, data = meta["type"], meta["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not an MAE config: {exc}") from exc
    if kind != MAE_TYPE:
        raise ConfigError(f"{path} holds a {kind!r} model, not an MAE (robolearn pretrain)")
    return MAEConfig.from_dict(data)


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_state_dict_file(folder.expanduser() / WEIGHTS_FILE)


def mae_folder(pretrained_path: str | None) -> Path | None:
    """The folder of ``"mae:FOLDER"``, or None for any other ``pretrained_path``."""
    if pretrained_path is None or not pretrained_path.startswith(MAE_PREFIX):
        return None
    folder = pretrained_path.removeprefix(MAE_PREFIX)
    if not folder:
        raise ConfigError(f"pretrained_path {pretrained_path!r}: give mae:FOLDER")
    return Path(folder).expanduser()


def mae_vit_encoder(folder: Path, vit_cfg: ViTConfig, where: str) -> ViTEncoder:
    """A :class:`ViTEncoder` for ``vit_cfg`` with the encoder weights of the MAE in
    ``folder``; ConfigError when the images the ViT sees (``vit_cfg.image_shape``, described
    by ``where``) are not the MAE's, or its architecture differs."""
    mae = read_mae_config(folder)
    channels, height, width = vit_cfg.image_shape
    size = mae.image_size
    if (channels, height, width) != (
        3,
        size,
        size,
    ) or vit_cfg.resolved_patch_size != mae.patch_size:
        raise ConfigError(
            f"MAE checkpoint {folder} was pretrained on {size}×{size} RGB images in "
            f"{mae.patch_size}-pixel patches, but {where} gives its ViT {height}×{width} images "
            f"({channels} channels) in {vit_cfg.resolved_patch_size}-pixel patches; pretrain at "
            f"the camera's size (robolearn pretrain --image-size) or record at {size}×{size}"
        )
    encoder = ViTEncoder(vit_cfg)
    state = _read_weights(folder)
    encoder_state = {
        k.removeprefix(ENCODER_PREFIX): v for k, v in state.items() if k.startswith(ENCODER_PREFIX)
    }
    load_weights_into(encoder.backbone, encoder_state, f"{MAE_PREFIX}{folder}")
    return encoder
