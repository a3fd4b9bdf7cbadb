"""Multi-camera observation encoder: cameras, depth point clouds and proprioception → one vector.

::

    cfg = ObsEncoderConfig(
        state_keys=["observation.state"],
        image_keys=["observation.images.front", "observation.images.wrist"],
        backbone="resnet18", feature_dim=64, augment="random_crop",
    )
    shapes = {"observation.state": (9,), "observation.images.front": (3, 96, 96),
              "observation.images.wrist": (3, 96, 96)}
    encoder = ObservationEncoder(cfg, shapes)
    features = encoder(batch)      # (B, T, encoder.out_dim) from (B, T, ...) inputs

Per frame, in this order: each camera of ``image_keys`` is augmented (:class:`ImageAugment`)
and encoded (ResNet-18 or ViT, ImageNet normalization inside) to ``feature_dim`` numbers;
each depth camera of ``depth_keys`` becomes a camera-frame point cloud through its
intrinsics, ``num_points`` valid points are sampled and a :class:`PointNetEncoder` makes
``feature_dim`` numbers; then the ``state_keys`` vectors (already normalized by the caller's
:class:`~robolearn.perception.normalize.Normalizer`) are appended as they are. ``out_dim`` is the
total. Batches may hold other keys (actions, ``*_is_pad`` flags); they are ignored.

Randomness (crops, point sampling) comes from the ``generator`` passed to ``forward``. In
``eval()`` mode crops are centre crops and point sampling uses a fixed seed, so inference is
deterministic.

Saving and loading: a policy stores ``dataclasses.asdict(cfg)`` in its ``config.json`` and
the encoder's weights in its ``model.safetensors``. To rebuild it elsewhere, construct
``ObservationEncoder(dataclasses.replace(cfg, pretrained_path=None), shapes)`` (the weights
come from the checkpoint, the original pretrained file need not exist) and load the state dict.
An MAE encoder (``pretrained_path="mae:FOLDER"``) also needs its architecture, which
:meth:`ObsEncoderConfig.pinned_options` gives: a policy saves those options with its own.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from robolearn.core.config_dict import config_from_dict
from robolearn.core.types import ConfigError
from robolearn.perception.augment import AUGMENT_MODES, AugmentMode, ImageAugment
from robolearn.perception.encoders import (
    ResNet18Config,
    ResNet18Encoder,
    ResNetPool,
    ViTConfig,
    ViTEncoder,
    VitPool,
)
from robolearn.perception.mae import MAEConfig, mae_folder, mae_vit_encoder, read_mae_config
from robolearn.perception.pointcloud import PointNetEncoder, depth_to_point_cloud, sample_points

Backbone = Literal["resnet18", "vit"]
EVAL_POINT_SEED = 0
"""Seed of the point sampling in ``eval()`` mode."""


@dataclasses.dataclass
class ObsEncoderConfig:
    """What :class:`ObservationEncoder` encodes and how (JSON: ``asdict`` ⇄ :meth:`from_dict`)."""

    state_keys: list[str] = dataclasses.field(default_factory=lambda: ["observation.state"])
    """Low-dimensional features appended as they are, e.g. ``observation.state``."""
    image_keys: list[str] = dataclasses.field(default_factory=list)
    """RGB cameras, float (C, H, W) in [0, 1]."""
    depth_keys: list[str] = dataclasses.field(default_factory=list)
    """Depth cameras, (1, H, W) or (H, W) metres, encoded as point clouds."""
    intrinsics: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    """Per depth key: ``[fx, fy, cx, cy, width, height]`` (pixels); rescaled to the image size."""
    backbone: Backbone = "resnet18"
    """Image backbone: ``"resnet18"`` (torchvision) or ``"vit"`` (timm)."""
    pretrained_path: str | None = None
    """Local weights for the image backbone; None: random init (nothing is downloaded).

    ``"mae:FOLDER"`` (with ``backbone="vit"``) takes the encoder of a ``robolearn pretrain``
    checkpoint, e.g. ``mae:runs/mae/checkpoints/last``, as MVP does: the ViT's architecture
    (``vit_name``, ``vit_patch_size``, ``vit_depth``) comes from the checkpoint (giving other
    values is a ConfigError), the ViT is frozen (no gradients, eval mode; the projection to
    ``feature_dim`` trains) unless ``finetune``, and the images it sees — the camera's, after
    augmentation: use ``augment="random_shift"`` or ``"none"``, which keep the size — must
    have the checkpoint's image size (a ConfigError names both). A policy built with it
    pins that architecture and ``frozen`` in its ``vision`` options and saves the weights in
    its ``model.safetensors``, so the saved policy no longer needs FOLDER."""
    frozen: bool = False
    """Freeze the image backbone; its pooling head and projection still train."""
    finetune: bool = False
    """With a ``mae:`` encoder: train the ViT too instead of freezing it (other backbones:
    see ``frozen``; a saved policy keeps the choice as ``frozen``)."""
    use_group_norm: bool = True
    """ResNet: GroupNorm instead of BatchNorm (must be False with ``pretrained_path``)."""
    spatial_softmax_keypoints: int = 32
    """ResNet: keypoints of the spatial softmax."""
    resnet_pool: ResNetPool = "spatial_softmax"
    """ResNet: ``"spatial_softmax"`` or global average pool ``"avg"``."""
    feature_dim: int = 64
    """Features per camera (RGB and depth)."""
    share_image_encoder: bool = False
    """One image encoder for every camera (same image shapes needed) instead of one each."""
    augment: AugmentMode = "random_crop"
    """Training augmentation of RGB images: ``"random_crop"``, ``"random_shift"``, ``"none"``."""
    crop_ratio: float = 0.95
    """Crop side / image side for ``random_crop``."""
    shift_pad_px: int = 4
    """Largest shift in pixels for ``random_shift``."""
    num_points: int = 512
    """Points sampled per depth camera and frame."""
    depth_stride: int = 1
    """Back-project every ``depth_stride``-th row and column of the depth image."""
    max_depth_m: float | None = None
    """Depths beyond this are invalid (dropped from point clouds); None: no limit."""
    pointnet_hidden: list[int] = dataclasses.field(default_factory=lambda: [64, 128, 256])
    """Hidden sizes of the PointNet per-point MLP."""
    vit_name: str = "vit_tiny_patch16_224"
    """ViT: the timm model name."""
    vit_patch_size: int | None = None
    """ViT: patch side in pixels; None: 8 under 128 pixels, else 16."""
    vit_depth: int | None = None
    """ViT: number of transformer blocks; None keeps the model's."""
    vit_pool: VitPool = "cls"
    """ViT: CLS token or mean of patch tokens."""

    def __post_init__(self) -> None:
        """Check the values (list fields may arrive as tuples)."""
        for name in ("state_keys", "image_keys", "depth_keys", "pointnet_hidden"):
            setattr(self, name, list(getattr(self, name)))
        self.intrinsics = {k: [float(x) for x in v] for k, v in self.intrinsics.items()}
        self._check_keys()
        self._check_choices()
        self._check_sizes()
        self._use_mae()
        if self.backbone == "resnet18" and self.pretrained_path and self.use_group_norm:
            raise ConfigError(
                "ObsEncoderConfig: pretrained_path with use_group_norm=True would discard the "
                "pretrained BatchNorm statistics; set use_group_norm=False to keep BatchNorm, "
                "or drop pretrained_path to train GroupNorm from scratch"
            )

    def _check_keys(self) -> None:
        keys = self.all_keys
        if not keys:
            raise ConfigError("ObsEncoderConfig: give at least one state, image or depth key")
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ConfigError(f"ObsEncoderConfig: keys listed more than once: {repeated}")
        for key in self.depth_keys:
            if len(self.intrinsics.get(key, [])) != 6:
                raise ConfigError(
                    f"ObsEncoderConfig: depth key {key!r} needs intrinsics[{key!r}] = "
                    f"[fx, fy, cx, cy, width, height]; have {self.intrinsics.get(key)}"
                )

    def _check_choices(self) -> None:
        choices: dict[str, tuple[str, ...]] = {
            "backbone": ("resnet18", "vit"),
            "augment": AUGMENT_MODES,
            "resnet_pool": ("spatial_softmax", "avg"),
            "vit_pool": ("cls", "mean"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"ObsEncoderConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )

    def _check_sizes(self) -> None:
        if (
            min(
                self.feature_dim, self.num_points, self.depth_stride, self.spatial_softmax_keypoints
            )
            < 1
        ):
            raise ConfigError(
                "ObsEncoderConfig: feature_dim, num_points, depth_stride and "
                "spatial_softmax_keypoints must be ≥ 1"
            )
        if not 0.0 < self.crop_ratio <= 1.0:
            raise ConfigError(
                f"ObsEncoderConfig.crop_ratio must be in (0, 1], got {self.crop_ratio}"
            )

    def _use_mae(self) -> None:
        """A ``mae:`` ``pretrained_path``: take the checkpoint's ViT architecture and freeze it
        unless ``finetune``."""
        self.mae_config: MAEConfig | None = None
        folder = mae_folder(self.pretrained_path)
        if folder is None:
            return
        if self.backbone != "vit":
            raise ConfigError(
                f"ObsEncoderConfig: pretrained_path {self.pretrained_path!r} is an MAE's ViT "
                f"encoder; set backbone='vit' (not {self.backbone!r})"
            )
        if self.frozen and self.finetune:
            raise ConfigError("ObsEncoderConfig: frozen=True and finetune=True exclude each other")
        mae = read_mae_config(folder)
        default_name = ObsEncoderConfig.vit_name
        pinned = {"vit_name": mae.model, "vit_patch_size": mae.patch_size, "vit_depth": mae.depth}
        given = {
            "vit_name": None if self.vit_name == default_name else self.vit_name,
            "vit_patch_size": self.vit_patch_size,
            "vit_depth": self.vit_depth,
        }
        clash = {k: v for k, v in given.items() if v is not None and v != pinned[k]}
        if clash:
            raise ConfigError(
                f"ObsEncoderConfig: MAE checkpoint {folder} has "
                f"{', '.join(f'{k}={pinned[k]!r}' for k in clash)}, but the config asks for "
                f"{', '.join(f'{k}={v!r}' for k, v in clash.items())}; drop those options"
            )
        self.vit_name, self.vit_patch_size, self.vit_depth = mae.model, mae.patch_size, mae.depth
        self.frozen = not self.finetune
        self.mae_config = mae

    def pinned_options(self) -> dict[str, Any]:
        """The options a policy saves with its ``vision`` so that it rebuilds this encoder
        without the pretrained folder: for a ``mae:`` encoder its ViT architecture and
        ``frozen``; nothing otherwise."""
        if self.mae_config is None:
            return {}
        names = ("vit_name", "vit_patch_size", "vit_depth", "frozen")
        return {name: getattr(self, name) for name in names}

    @property
    def all_keys(self) -> list[str]:
        """Image, depth and state keys, in the order their features are concatenated."""
        return [*self.image_keys, *self.depth_keys, *self.state_keys]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObsEncoderConfig:
        """The config saved by ``dataclasses.asdict`` (e.g. read back from ``config.json``)."""
        return config_from_dict(cls, data)

    def image_encoder_config(self, image_shape: tuple[int, int, int]) -> ResNet18Config | ViTConfig:
        """The backbone config for (C, H, W) images (the size after augmentation)."""
        imagenet_norm = image_shape[0] == 3
        if self.backbone == "resnet18":
            return ResNet18Config(
                image_shape=image_shape,
                feature_dim=self.feature_dim,
                pool=self.resnet_pool,
                spatial_softmax_keypoints=self.spatial_softmax_keypoints,
                use_group_norm=self.use_group_norm,
                pretrained_path=self.pretrained_path,
                frozen=self.frozen,
                imagenet_norm=imagenet_norm,
            )
        return ViTConfig(
            image_shape=image_shape,
            feature_dim=self.feature_dim,
            name=self.vit_name,
            patch_size=self.vit_patch_size,
            depth=self.vit_depth,
            pool=self.vit_pool,
            pretrained_path=None if self.mae_config else self.pretrained_path,
            frozen=self.frozen,
            imagenet_norm=imagenet_norm,
        )


def module_name(key: str) -> str:
    """A submodule name for feature ``key`` (module names may not contain dots)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", key)


class ObservationEncoder(nn.Module):
    """Encode a batch of observations to one feature vector per frame (see module docstring)."""

    def __init__(self, cfg: ObsEncoderConfig, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Build the encoders.

        Args:
            cfg: what to encode.
            shapes: per-frame shape of every key in ``cfg`` (without batch or time dims):
                state (D,), image (C, H, W), depth (1, H, W) or (H, W); e.g. from the
                dataset's features. Extra keys are ignored.
        """
        super().__init__()
        self.cfg = cfg
        self.shapes = {key: tuple(int(s) for s in _get(shapes, key)) for key in cfg.all_keys}
        self._check_shapes()
        self._check_module_names()
        self.augment = ImageAugment(cfg.augment, cfg.crop_ratio, cfg.shift_pad_px)
        self.image_encoders = self._build_image_encoders()
        self.depth_encoders = nn.ModuleDict(
            {
                module_name(key): PointNetEncoder(3, cfg.feature_dim, cfg.pointnet_hidden)
                for key in cfg.depth_keys
            }
        )
        self.state_dims = {key: math.prod(self.shapes[key]) for key in cfg.state_keys}
        cameras = len(cfg.image_keys) + len(cfg.depth_keys)
        self.out_dim = cameras * cfg.feature_dim + sum(self.state_dims.values())

    def _check_shapes(self) -> None:
        for key in self.cfg.image_keys:
            if len(self.shapes[key]) != 3:
                raise ConfigError(
                    f"image {key!r} must have a (C, H, W) shape, got {self.shapes[key]}"
                )
        for key in self.cfg.depth_keys:
            shape = self.shapes[key]
            if not (len(shape) == 2 or (len(shape) == 3 and shape[0] == 1)):
                raise ConfigError(
                    f"depth {key!r} must have a (1, H, W) or (H, W) shape, got {shape}"
                )
        if self.cfg.share_image_encoder and len({self.shapes[k] for k in self.cfg.image_keys}) > 1:
            found = {k: self.shapes[k] for k in self.cfg.image_keys}
            raise ConfigError(
                f"share_image_encoder needs cameras of one shape, got {found}; "
                "resize them or set share_image_encoder=False"
            )

    def _check_module_names(self) -> None:
        names = [module_name(k) for k in self.cfg.image_keys + self.cfg.depth_keys]
        if len(set(names)) != len(names):
            raise ConfigError(f"camera keys collide once '.' etc. become '_': {names}; rename them")

    def _encoder_shape(self, key: str) -> tuple[int, int, int]:
        c, h, w = self.shapes[key]
        return (c, *self.augment.output_shape(h, w))

    def _build_image_encoders(self) -> nn.ModuleDict:
        keys = self.cfg.image_keys
        if self.cfg.share_image_encoder and keys:
            return nn.ModuleDict({"shared": self._image_encoder(keys[0])})
        return nn.ModuleDict({module_name(k): self._image_encoder(k) for k in keys})

    def _image_encoder(self, key: str) -> nn.Module:
        enc_cfg = self.cfg.image_encoder_config(self._encoder_shape(key))
        if isinstance(enc_cfg, ResNet18Config):
            return ResNet18Encoder(enc_cfg)
        folder = mae_folder(self.cfg.pretrained_path)
        if folder is None:
            return ViTEncoder(enc_cfg)
        (_, h, w), (_, eh, ew) = self.shapes[key], enc_cfg.image_shape
        seen = "" if (h, w) == (eh, ew) else f", {eh}×{ew} after augment {self.cfg.augment!r}"
        return mae_vit_encoder(folder, enc_cfg, f"camera {key!r} ({h}×{w}{seen})")

    def forward(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B[, T], …) observations → (B[, T], out_dim) features.

        Args:
            batch: every key of the config, with leading (B,) or (B, T) dims shared by all;
                images float in [0, 1]. Other keys are ignored.
            generator: randomness for crops and point sampling in ``train()`` mode.
        """
        lead = self._lead_dims(batch)
        n = math.prod(lead)
        feats = [
            *self._image_features(batch, n, generator),
            *self._depth_features(batch, n, generator),
            *(batch[key].reshape(n, -1).float() for key in self.cfg.state_keys),
        ]
        return torch.cat(feats, dim=-1).reshape(*lead, self.out_dim)  # (B[, T], out_dim)

    def _lead_dims(self, batch: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
        """The shared (B,) or (B, T) leading dims of the configured keys."""
        lead: tuple[int, ...] | None = None
        for key in self.cfg.all_keys:
            value = _get(batch, key)
            shape, frame = tuple(value.shape), self.shapes[key]
            extra = len(shape) - len(frame)
            if extra not in (1, 2) or shape[extra:] != frame:
                raise ConfigError(
                    f"batch[{key!r}] has shape {shape}; expected (B, *{frame}) or (B, T, *{frame})"
                )
            if lead is not None and shape[:extra] != lead:
                raise ConfigError(f"batch[{key!r}] has leading dims {shape[:extra]}, others {lead}")
            lead = shape[:extra]
        assert lead is not None  # the config has at least one key
        return lead

    def _image_features(
        self, batch: Mapping[str, torch.Tensor], n: int, generator: torch.Generator | None
    ) -> list[torch.Tensor]:
        keys = self.cfg.image_keys
        images = [self.augment(_frames(batch, key, n, self.shapes[key]), generator) for key in keys]
        if not keys:
            return []
        if self.cfg.share_image_encoder:  # one pass over every camera
            return list(self.image_encoders["shared"](torch.cat(images)).split(n))
        return [self.image_encoders[module_name(k)](x) for k, x in zip(keys, images, strict=True)]

    def _depth_features(
        self, batch: Mapping[str, torch.Tensor], n: int, generator: torch.Generator | None
    ) -> list[torch.Tensor]:
        if not self.training and self.cfg.depth_keys:
            device = next(self.depth_encoders.parameters()).device
            generator = torch.Generator(device).manual_seed(EVAL_POINT_SEED)
        feats = []
        for key in self.cfg.depth_keys:
            depth = _floats(batch, key, "depth must be float metres")
            depth = depth.reshape(n, *self.shapes[key][-2:])  # (N, H, W) metres
            points, valid = depth_to_point_cloud(
                depth, self.cfg.intrinsics[key], self.cfg.depth_stride, self.cfg.max_depth_m
            )
            points, mask = sample_points(points, self.cfg.num_points, generator, valid)
            feats.append(self.depth_encoders[module_name(key)](points, mask))  # (N, F)
        return feats


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    """``mapping[key]``, or a ConfigError naming the key and the keys present."""
    if key not in mapping:
        raise ConfigError(f"observation key {key!r} is missing; present: {sorted(mapping)}")
    return mapping[key]


def _frames(
    batch: Mapping[str, torch.Tensor], key: str, n: int, shape: tuple[int, ...]
) -> torch.Tensor:
    """Camera ``key`` as (N, C, H, W) float frames; integer images are refused."""
    hint = "images must be float in [0, 1] (convert uint8 with images.float() / 255)"
    return _floats(batch, key, hint).reshape(n, *shape)


def _floats(batch: Mapping[str, torch.Tensor], key: str, hint: str) -> torch.Tensor:
    """``batch[key]``, or a ConfigError with ``hint`` if it is not a floating-point tensor."""
    value = batch[key]
    if not value.is_floating_point():
        raise ConfigError(f"batch[{key!r}] is {value.dtype}; {hint}")
    return value
