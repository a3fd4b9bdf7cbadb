"""Image encoders: ResNet-18 with spatial softmax, a timm ViT, and the spatial-softmax head.

::

    enc = ResNet18Encoder(ResNet18Config(image_shape=(3, 84, 84), feature_dim=64))
    feats = enc(images)                  # (B, 3, 84, 84) in [0, 1] → (B, 64)
    enc.feature_map(images)              # (B, 512, 3, 3), e.g. for ACT's transformer tokens

    vit = ViTEncoder(ViTConfig(image_shape=(3, 96, 96), feature_dim=64))

Both encoders take float images in [0, 1] and apply the ImageNet mean/std normalization
themselves (``imagenet_norm``, 3-channel images only).

**No downloads.** Backbones are built with random weights. Pretrained weights load only from
a local file named in ``pretrained_path``: a state dict saved with ``torch.save`` (``.pth``,
``.pt``, ``.bin``) or a ``.safetensors`` file, in torchvision's layout for ResNet-18
(``torchvision.models.resnet18().state_dict()``; its ``fc.*`` keys are ignored) or timm's for
the ViT (position and patch embeddings are resampled to this image and patch size, ``head.*``
is ignored). A missing or unreadable file is a :class:`ConfigError` naming it. When a saved
policy is rebuilt from its ``config.json`` the weights come from its ``model.safetensors``;
build it with ``dataclasses.replace(cfg, pretrained_path=None)`` so the original file need
not exist on the deploying machine.

**Pretrained weights and GroupNorm.** Replacing BatchNorm by GroupNorm throws away the
BatchNorm running statistics and affine parameters the pretrained convolutions were trained
with, so ``ResNet18Config`` refuses ``pretrained_path`` together with ``use_group_norm=True``:
pretrained backbones keep BatchNorm (``use_group_norm=False``), backbones trained from
scratch use GroupNorm (the Diffusion Policy default, robust to small batches).

**Frozen backbones** (``frozen=True``): backbone parameters get ``requires_grad=False``, the
backbone stays in ``eval()`` mode (BatchNorm uses its stored statistics) whatever
``train()`` says, and runs under ``torch.no_grad()``; the pooling head and the projection to
``feature_dim`` train.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.core.config_dict import config_from_dict
from robolearn.core.paths import write_folder_atomically
from robolearn.core.types import ConfigError

if TYPE_CHECKING:
    from timm.models.vision_transformer import VisionTransformer

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
WEIGHT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
"""The two files of a model folder (:func:`save_module_folder`)."""
RESNET18_CHANNELS = 512
"""Channels of ResNet-18's last feature map."""


class SpatialSoftmax(nn.Module):
    """Keypoints of a feature map: a 1×1 conv to ``num_keypoints`` maps, a softmax over each
    map's pixels, and the expected ``(x, y)`` under it → (B, 2 * num_keypoints).

    Coordinates are in [-1, 1]: ``x`` from the left column (-1) to the right one (+1), ``y``
    from the top row (-1) to the bottom one (+1); the output is ``[x0, y0, x1, y1, …]``.
    The softmax temperature is learned (as its logarithm, so it stays positive) unless
    ``learnable_temperature=False``. ``num_keypoints=None`` skips the 1×1 conv and uses the
    input channels as keypoint maps.
    """

    pixel_xy: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_keypoints: int | None = 32,
        temperature: float = 1.0,
        learnable_temperature: bool = True,
    ) -> None:
        """Set up the head for (B, in_channels, height, width) feature maps."""
        super().__init__()
        if min(in_channels, height, width) < 1 or (num_keypoints is not None and num_keypoints < 1):
            raise ConfigError(
                f"SpatialSoftmax needs positive sizes, got in_channels={in_channels}, "
                f"height={height}, width={width}, num_keypoints={num_keypoints}"
            )
        if temperature <= 0:
            raise ConfigError(f"SpatialSoftmax temperature must be > 0, got {temperature}")
        self.in_shape = (in_channels, height, width)
        self.num_keypoints = in_channels if num_keypoints is None else num_keypoints
        self.keypoint_conv: nn.Module = (
            nn.Identity() if num_keypoints is None else nn.Conv2d(in_channels, num_keypoints, 1)
        )
        log_t = torch.tensor(math.log(temperature))
        self.log_temperature = nn.Parameter(log_t, requires_grad=learnable_temperature)
        self.register_buffer("pixel_xy", _pixel_grid(height, width), persistent=False)
        self.out_dim = 2 * self.num_keypoints

    @property
    def temperature(self) -> torch.Tensor:
        """The softmax temperature (a scalar tensor)."""
        return self.log_temperature.exp()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) feature maps → (B, 2 * num_keypoints) expected keypoint coordinates."""
        if tuple(features.shape[1:]) != self.in_shape:
            raise ConfigError(
                f"SpatialSoftmax built for (B, {', '.join(map(str, self.in_shape))}) "
                f"feature maps, got {tuple(features.shape)}"
            )
        logits = self.keypoint_conv(features).flatten(2)  # (B, K, H*W)
        attention = torch.softmax(logits / self.temperature, dim=-1)  # (B, K, H*W)
        xy = attention @ self.pixel_xy.to(attention.dtype)  # (B, K, 2)
        return xy.flatten(1)  # (B, 2K)


def _pixel_grid(height: int, width: int) -> torch.Tensor:
    """(H*W, 2) ``(x, y)`` of each pixel in [-1, 1], row-major."""
    ys = torch.linspace(-1.0, 1.0, height) if height > 1 else torch.zeros(1)
    xs = torch.linspace(-1.0, 1.0, width) if width > 1 else torch.zeros(1)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    return torch.stack([grid_x.flatten(), grid_y.flatten()], dim=-1)


class ImageNetNormalize(nn.Module):
    """``(x - mean) / std`` with ImageNet's per-channel statistics, for (B, 3, H, W) in [0, 1]."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        """Hold the statistics as (1, 3, 1, 1) buffers (not saved in state dicts)."""
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalized images, same shape."""
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)


def save_module_folder(
    folder: str | Path,
    meta: Mapping[str, Any],
    module: nn.Module,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``meta`` as ``config.json`` and ``module``'s state dict as ``model.safetensors``
    to ``folder``, atomically (:func:`~robolearn.core.paths.write_folder_atomically`);
    ``extra(tmp)`` may add files (training state) before the folder is moved into place.
    The folder format of policies and of MAE checkpoints; no pickle."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}

    def write(tmp: Path) -> None:
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        save_file(state, str(tmp / WEIGHTS_FILE))
        if extra is not None:
            extra(tmp)

    return write_folder_atomically(folder, write)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local weights file (``.pth``/``.pt``/``.bin`` or ``.safetensors``).

    A checkpoint that wraps its weights under ``"state_dict"`` or ``"model"``, or prefixes
    them with ``"module."`` (DistributedDataParallel), is unwrapped. Never downloads.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"pretrained weights file {str(file)!r} not found; give the path of a local "
            f"state dict ({', '.join(WEIGHT_SUFFIXES)}), robolearn never downloads weights"
        )
    if file.suffix not in WEIGHT_SUFFIXES:
        raise ConfigError(
            f"pretrained weights {str(file)!r}: suffix must be one of {WEIGHT_SUFFIXES}"
        )
    try:
        state = _read_weights(file)
    except Exception as exc:  # a corrupt or foreign file: say which
        raise ConfigError(f"cannot read pretrained weights {str(file)!r}: {exc}") from exc
    return _unwrap_state_dict(state, file)


def _read_weights(file: Path) -> Any:
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    return torch.load(file, map_location="cpu", weights_only=True)


def _unwrap_state_dict(state: Any, file: Path) -> dict[str, torch.Tensor]:
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ConfigError(f"pretrained weights {str(file)!r} are not a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def load_weights_into(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` strictly, or raise one :class:`ConfigError` listing the
    missing and unexpected keys and the shape mismatches (``source`` names the file)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = [
        f"{label} {len(items)} (e.g. {', '.join(items[:3])})"
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape", mismatched),
        )
        if items
    ]
    if problems:
        raise ConfigError(
            f"pretrained weights {source!r} do not fit {type(module).__name__}: "
            f"{'; '.join(problems)}; give weights of the same architecture"
        )
    module.load_state_dict(state)


def replace_batchnorm_with_groupnorm(module: nn.Module, channels_per_group: int = 16) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` (in place) by a fresh ``GroupNorm`` with
    ``channels // channels_per_group`` groups (at least 1); returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            groups = max(1, child.num_features // channels_per_group)
            setattr(module, name, nn.GroupNorm(groups, child.num_features))
        else:
            replace_batchnorm_with_groupnorm(child, channels_per_group)
    return module


def _check_image_shape(image_shape: tuple[int, ...], imagenet_norm: bool, owner: str) -> None:
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ConfigError(f"{owner}.image_shape must be (C, H, W) > 0, got {image_shape}")
    if imagenet_norm and image_shape[0] != 3:
        raise ConfigError(
            f"{owner}: imagenet_norm needs 3-channel images, got {image_shape[0]} channels; "
            "set imagenet_norm=False"
        )


def _check_images(images: torch.Tensor, image_shape: tuple[int, int, int], owner: str) -> None:
    if images.ndim != 4 or tuple(images.shape[1:]) != image_shape:
        raise ConfigError(
            f"{owner} built for (B, {', '.join(map(str, image_shape))}) images, "
            f"got {tuple(images.shape)}"
        )


ResNetPool = Literal["spatial_softmax", "avg"]

VitPool = Literal["cls", "mean"]


@dataclasses.dataclass
class ResNet18Config:
    """Configuration of :class:`ResNet18Encoder` (JSON-safe: ``asdict`` ⇄ :meth:`from_dict`)."""

    image_shape: tuple[int, int, int] = (3, 96, 96)
    """(C, H, W) of the images the encoder sees (after any crop)."""
    feature_dim: int = 64
    """Size of the output feature vector."""
    pool: ResNetPool = "spatial_softmax"
    """How the last feature map becomes a vector: keypoints or global average pooling."""
    spatial_softmax_keypoints: int = 32
    """Keypoints of the spatial softmax (it outputs twice as many numbers)."""
    use_group_norm: bool = True
    """Replace BatchNorm by GroupNorm (channels // 16 groups); not with pretrained weights."""
    pretrained_path: str | None = None
    """Local torchvision resnet18 state dict (.pth/.pt/.bin/.safetensors); None: random init."""
    frozen: bool = False
    """Freeze the backbone (no gradients, norm layers in eval mode); the head still trains."""
    imagenet_norm: bool = True
    """Normalize [0, 1] images with ImageNet's mean and std inside the encoder."""

    def __post_init__(self) -> None:
        """Turn JSON lists back into tuples and check the values."""
        self.image_shape = tuple(self.image_shape)  # type: ignore[assignment]
        _check_image_shape(self.image_shape, self.imagenet_norm, "ResNet18Config")
        if self.pool not in ("spatial_softmax", "avg"):
            raise ConfigError(
                f"ResNet18Config.pool must be 'spatial_softmax' or 'avg', got {self.pool!r}"
            )
        if self.feature_dim < 1 or self.spatial_softmax_keypoints < 1:
            raise ConfigError(
                "ResNet18Config.feature_dim and spatial_softmax_keypoints must be ≥ 1"
            )
        if self.pretrained_path is not None and self.use_group_norm:
            raise ConfigError(
                "ResNet18Config: pretrained_path with use_group_norm=True would discard the "
                "pretrained BatchNorm statistics; set use_group_norm=False to keep BatchNorm "
                "with pretrained weights, or drop pretrained_path to train GroupNorm from scratch"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResNet18Config:
        """The config saved by ``dataclasses.asdict`` (e.g. read back from ``config.json``)."""
        return config_from_dict(cls, data)


def resnet18_feature_map_size(height: int, width: int) -> tuple[int, int]:
    """(h, w) of ResNet-18's last feature map for a ``height × width`` input: five stride-2
    stages (conv1, max pool, layer2-4), each rounding up."""
    for _ in range(5):
        height, width = -(-height // 2), -(-width // 2)
    return height, width


def resnet18_trunk(in_channels: int = 3) -> nn.Sequential:
    """torchvision's resnet18 (random weights) without average pool and fc, its modules
    named as in torchvision so its state dict keys load directly."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    return nn.Sequential(OrderedDict((name, getattr(net, name)) for name in names))


class _FreezableEncoder(nn.Module):
    """Shared plumbing: ``backbone`` frozen or not, ImageNet normalization, input checks."""

    backbone: nn.Module
    frozen: bool

    def _setup_common(self, image_shape: tuple[int, int, int], imagenet_norm: bool) -> None:
        self.image_shape = image_shape
        self.normalize: nn.Module = ImageNetNormalize() if imagenet_norm else nn.Identity()

    def _freeze(self) -> None:
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> _FreezableEncoder:
        """Set train/eval mode; a frozen backbone stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def _run_backbone(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.image_shape, type(self).__name__)
        x = self.normalize(images)
        if self.frozen:
            with torch.no_grad():
                return self.backbone(x)
        return self.backbone(x)


class ResNet18Encoder(_FreezableEncoder):
    """ResNet-18 trunk → spatial softmax (or average pool) → linear to ``feature_dim``.

    Input: (B, C, H, W) float images in [0, 1] of ``cfg.image_shape``; output (B, out_dim).
    See the module docstring for pretrained weights, GroupNorm and freezing.
    """

    def __init__(self, cfg: ResNet18Config) -> None:
        """Build the encoder (random weights unless ``cfg.pretrained_path``)."""
        super().__init__()
        self.cfg = cfg
        self.frozen = cfg.frozen
        self._setup_common(cfg.image_shape, cfg.imagenet_norm)
        self.backbone = resnet18_trunk(cfg.image_shape[0])
        if cfg.pretrained_path is not None:
            state = load_state_dict_file(cfg.pretrained_path)
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            load_weights_into(self.backbone, state, cfg.pretrained_path)
        if cfg.use_group_norm:
            replace_batchnorm_with_groupnorm(self.backbone)
        map_h, map_w = resnet18_feature_map_size(*cfg.image_shape[1:])
        self.feature_map_shape = (RESNET18_CHANNELS, map_h, map_w)
        self.pool, pooled_dim = _resnet_pool(cfg, map_h, map_w)
        self.proj = nn.Linear(pooled_dim, cfg.feature_dim)
        self.out_dim = cfg.feature_dim
        if cfg.frozen:
            self._freeze()

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] → (B, 512, h, w) last map (``feature_map_shape``)."""
        return self._run_backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] → (B, out_dim) features."""
        return self.proj(self.pool(self.feature_map(images)))


def _resnet_pool(cfg: ResNet18Config, map_h: int, map_w: int) -> tuple[nn.Module, int]:
    """The pooling head and the size of its output."""
    if cfg.pool == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), RESNET18_CHANNELS
    head = SpatialSoftmax(RESNET18_CHANNELS, map_h, map_w, cfg.spatial_softmax_keypoints)
    return head, head.out_dim


@dataclasses.dataclass
class ViTConfig:
    """Configuration of :class:`ViTEncoder` (JSON-safe: ``asdict`` ⇄ :meth:`from_dict`)."""

    image_shape: tuple[int, int, int] = (3, 96, 96)
    """(C, H, W) of the images the encoder sees (after any crop)."""
    feature_dim: int = 64
    """Size of the output feature vector."""
    name: str = "vit_tiny_patch16_224"
    """A timm Vision Transformer (``timm.list_models("vit_*")``); built with random weights."""
    patch_size: int | None = None
    """Patch side in pixels; None: 8 for images under 128 pixels on their short side, else 16."""
    depth: int | None = None
    """Number of transformer blocks; None keeps the named model's."""
    pool: VitPool = "cls"
    """Feature: the CLS token, or the mean of the patch tokens."""
    pretrained_path: str | None = None
    """Local timm state dict of the same model (.pth/.pt/.bin/.safetensors); None: random init."""
    frozen: bool = False
    """Freeze the transformer (no gradients, eval mode); the projection still trains."""
    imagenet_norm: bool = True
    """Normalize [0, 1] images with ImageNet's mean and std inside the encoder."""

    def __post_init__(self) -> None:
        """Turn JSON lists back into tuples and check the values."""
        self.image_shape = tuple(self.image_shape)  # type: ignore[assignment]
        _check_image_shape(self.image_shape, self.imagenet_norm, "ViTConfig")
        if self.pool not in ("cls", "mean"):
            raise ConfigError(f"ViTConfig.pool must be 'cls' or 'mean', got {self.pool!r}")
        if self.feature_dim < 1 or (self.patch_size is not None and self.patch_size < 1):
            raise ConfigError("ViTConfig.feature_dim and patch_size must be ≥ 1")
        if self.depth is not None and self.depth < 1:
            raise ConfigError(f"ViTConfig.depth must be ≥ 1 or None, got {self.depth}")

    @property
    def resolved_patch_size(self) -> int:
        """``patch_size``, or the default for ``image_shape`` when it is None."""
        if self.patch_size is not None:
            return self.patch_size
        return 8 if min(self.image_shape[1:]) < 128 else 16

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ViTConfig:
        """The config saved by ``dataclasses.asdict`` (e.g. read back from ``config.json``)."""
        return config_from_dict(cls, data)


class ViTEncoder(_FreezableEncoder):
    """A timm Vision Transformer → CLS token (or mean patch token) → linear to ``feature_dim``.

    The model is built for this image size and patch size; an image whose sides are not
    multiples of the patch size is zero-padded (after normalization, i.e. with the mean
    colour) evenly on both sides. Input: (B, C, H, W) float in [0, 1]; output (B, out_dim).
    """

    def __init__(self, cfg: ViTConfig) -> None:
        """Build the encoder (random weights unless ``cfg.pretrained_path``)."""
        super().__init__()
        self.cfg = cfg
        self.frozen = cfg.frozen
        self._setup_common(cfg.image_shape, cfg.imagenet_norm)
        self.patch_size = cfg.resolved_patch_size
        self.backbone = create_vit(cfg, self._padded_size())
        if cfg.pretrained_path is not None:
            _load_vit_weights(self.backbone, cfg.pretrained_path)
        self.proj = nn.Linear(self.vit.embed_dim, cfg.feature_dim)
        self.out_dim = cfg.feature_dim
        if cfg.frozen:
            self._freeze()

    @property
    def vit(self) -> VisionTransformer:
        """The timm model (``backbone``, typed)."""
        return cast("VisionTransformer", self.backbone)

    def _padded_size(self) -> tuple[int, int]:
        p = self.patch_size
        return tuple(-(-s // p) * p for s in self.image_shape[1:])  # type: ignore[return-value]

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] → (B, prefix + patches, embed_dim) normalized tokens."""
        return self._run_backbone(images)

    def _run_backbone(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.image_shape, "ViTEncoder")
        x = self._pad(self.normalize(images))
        if self.frozen:
            with torch.no_grad():
                return self.vit.forward_features(x)
        return self.vit.forward_features(x)

    def _pad(self, images: torch.Tensor) -> torch.Tensor:
        (pad_h, pad_w), (h, w) = self._padded_size(), images.shape[-2:]
        if (pad_h, pad_w) == (h, w):
            return images
        top, left = (pad_h - h) // 2, (pad_w - w) // 2
        return F.pad(images, (left, pad_w - w - left, top, pad_h - h - top))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] → (B, out_dim) features."""
        tokens = self.tokens(images)  # (B, N, D)
        n_prefix = self.vit.num_prefix_tokens
        pooled = tokens[:, 0] if self.cfg.pool == "cls" else tokens[:, n_prefix:].mean(dim=1)
        return self.proj(pooled)


def create_vit(cfg: ViTConfig, img_size: tuple[int, int]) -> VisionTransformer:
    """``timm.create_model`` with random weights, no classifier head, this size and patch."""
    import timm
    from timm.models.vision_transformer import VisionTransformer

    kwargs: dict[str, Any] = {"img_size": img_size, "patch_size": cfg.resolved_patch_size}
    if cfg.depth is not None:
        kwargs["depth"] = cfg.depth
    try:
        model = timm.create_model(
            cfg.name, pretrained=False, num_classes=0, in_chans=cfg.image_shape[0], **kwargs
        )
    except RuntimeError as exc:
        raise ConfigError(
            f"ViTConfig.name {cfg.name!r}: {exc}; see timm.list_models('vit_*')"
        ) from exc
    if not isinstance(model, VisionTransformer):
        raise ConfigError(
            f"ViTConfig.name {cfg.name!r} is a timm {type(model).__name__}, not a ViT"
        )
    return model


def _load_vit_weights(model: VisionTransformer, path: str) -> None:
    """Load a timm ViT state dict, resampling position and patch embeddings to ``model``."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    state = load_state_dict_file(path)
    try:
        state = checkpoint_filter_fn(state, model)
    except Exception as exc:  # e.g. a different embedding width: timm cannot resample it
        raise ConfigError(
            f"pretrained weights {path!r} do not fit {type(model).__name__}: {exc}; "
            "give weights of the same timm model"
        ) from exc
    state = {k: v for k, v in state.items() if not k.startswith("head.")}
    load_weights_into(model, state, path)
