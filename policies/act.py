"""ACT: Action Chunking with Transformers (Zhao et al., 2023, "Learning Fine-Grained Bimanual
Manipulation with Low-Cost Hardware").

A conditional VAE whose decoder is a transformer:

* **CVAE encoder** (training only): a transformer encoder over ``[CLS, proprio, a_0 … a_H-1]``
  (the padded actions of a window masked out) → the mean and log-variance of a
  ``latent_dim`` style variable ``z``; ``z`` is sampled from it during training.
* **Main encoder**: a transformer encoder over ``[z token, one token per vector feature,
  camera tokens]``. Each camera's ResNet-18 last feature map (:mod:`robolearn.perception`)
  is projected to ``dim_model`` by a 1×1 convolution and flattened to one token per cell,
  placed with 2-D sinusoidal positions plus a learned per-camera embedding. A state-only
  policy (no cameras) attends over its vector tokens (robot and environment state).
* **Decoder**: ``horizon`` learned query embeddings cross-attend to the encoder's output;
  a linear head maps them to the action chunk (B, horizon, A), row 0 = this tick.

The loss is the L1 error over the chunk's non-padded steps plus ``kl_weight`` times the KL
divergence of the posterior from N(0, I) (summed over latent dims, averaged over the batch,
as in ACT). At inference ``z = 0`` (the prior mean) and dropout is off, so a chunk is a
deterministic function of the observation.

``act`` with ``temporal_ensemble_coeff`` set predicts a full chunk every tick and averages
every chunk covering the tick with :class:`robolearn.core.chunking.TemporalEnsemble`
(exponential weights, oldest first); ``reset`` clears it. With ``temporal_ensemble_coeff``
None, ``act`` executes the first ``n_action_steps`` rows of each chunk. ``predict_chunk``
always returns the whole chunk (H, A) for runtimes that ensemble themselves.

Cameras are configured through ``vision`` (:class:`robolearn.perception.ObsEncoderConfig`
field names). ACT reads ``use_group_norm``, ``pretrained_path``, ``frozen``,
``share_image_encoder`` (default: one backbone for every camera, as in ACT, when they share a
shape; one per camera otherwise), ``augment`` (default ``"none"``, as in ACT), ``crop_ratio``
and ``shift_pad_px``; augmentation is random in train mode only (``random_crop``
centre-crops in eval mode). Other ``vision`` fields (``feature_dim``, pooling) do not apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robolearn.core.chunking import TemporalEnsemble
from robolearn.core.stats import Stats
from robolearn.core.types import ConfigError
from robolearn.perception import ImageAugment, ObsEncoderConfig, ResNet18Config, ResNet18Encoder
from robolearn.perception.encoders import RESNET18_CHANNELS, resnet18_feature_map_size
from robolearn.perception.fusion import module_name
from robolearn.policies.base import ACTION, Batch, Obs, Policy, PolicyConfig, register_policy
from robolearn.policies.blocks import masked_mean
from robolearn.policies.transformer_blocks import (
    ACTIVATIONS,
    Activation,
    TransformerDecoder,
    TransformerEncoder,
    sinusoidal_2d,
    sinusoidal_table,
    xavier_init_,
)

ACT_VISION_DEFAULTS: dict[str, Any] = {"augment": "none"}
"""``vision`` options where ACT's defaults differ from ObsEncoderConfig's (and
``share_image_encoder``: True by default when every camera has the same shape)."""

_UNSUPPORTED_VISION = ("depth_keys", "intrinsics")


@dataclasses.dataclass
class ACTConfig(PolicyConfig):
    """ACT hyperparameters (the paper's defaults unless noted)."""

    n_obs_steps: int = 1
    horizon: int = 100
    """Chunk size k (100 at 50 Hz in the paper; e.g. 20 for 20 Hz sim tasks)."""
    n_action_steps: int = 1
    """Rows executed per chunk when ``temporal_ensemble_coeff`` is None (must be 1 with it)."""
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: Activation = "relu"
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    """ACT's original code configures 7 but uses only the first layer's output."""
    n_vae_encoder_layers: int = 4
    pre_norm: bool = False
    """LayerNorm before each sub-block (more stable for deep stacks) instead of after."""
    dropout: float = 0.1
    use_vae: bool = True
    """Train as a CVAE (False: plain transformer regression, the latent token stays 0)."""
    latent_dim: int = 32
    kl_weight: float = 10.0
    reconstruction_loss: Literal["l1", "mse"] = "l1"
    """Loss between predicted and demonstrated chunks: the paper's L1, or squared error."""
    temporal_ensemble_coeff: float | None = 0.01
    """k of the exponential ensemble weights ``exp(-k·i)`` (i = 0 the oldest chunk); None:
    plain chunking with ``n_action_steps``."""
    proprio_keys: list[str] | None = None
    """Vector features the CVAE encoder sees as proprioception; None: ``observation.state``
    when the policy reads it, else none."""

    def check(self) -> None:
        """Raise ConfigError on an inconsistent config (also checks ``vision``)."""
        super().check()
        if self.n_obs_steps != 1:
            raise ConfigError(
                f"ACT reads one observation: set n_obs_steps=1 (got {self.n_obs_steps})"
            )
        if self.n_action_steps > self.horizon:
            raise ConfigError(
                f"n_action_steps {self.n_action_steps} exceeds the chunk size "
                f"horizon {self.horizon}"
            )
        if self.temporal_ensemble_coeff is not None and self.n_action_steps != 1:
            raise ConfigError(
                "temporal ensembling predicts a chunk every tick: set n_action_steps=1, or "
                "temporal_ensemble_coeff=None to execute n_action_steps rows per chunk"
            )
        self._check_sizes()
        self._check_features()
        if self.image_keys:
            self.vision_config()

    def _check_sizes(self) -> None:
        if self.n_heads < 1 or self.dim_model % self.n_heads or self.dim_model % 2:
            raise ConfigError(
                f"dim_model {self.dim_model} must be even and divisible by n_heads {self.n_heads}"
            )
        if self.image_keys and self.dim_model % 4:
            raise ConfigError(
                f"dim_model must be divisible by 4 with cameras, got {self.dim_model}"
            )
        layers = (self.n_encoder_layers, self.n_decoder_layers, self.n_vae_encoder_layers)
        if min(layers) < 1 or self.latent_dim < 1 or self.dim_feedforward < 1:
            raise ConfigError("ACT's layer counts, latent_dim and dim_feedforward must be ≥ 1")
        if not 0.0 <= self.dropout < 1.0 or self.kl_weight < 0:
            raise ConfigError("ACT needs dropout in [0, 1) and kl_weight ≥ 0")
        if self.feedforward_activation not in ACTIVATIONS:
            raise ConfigError(f"feedforward_activation must be one of {ACTIVATIONS}")

    def _check_features(self) -> None:
        odd = [k for k, s in self.input_features.items() if len(s) not in (1, 3)]
        if odd:
            raise ConfigError(
                f"ACT reads vectors (D,) and cameras (C, H, W); {odd} have other shapes"
            )
        unknown = [k for k in self.resolved_proprio_keys if k not in self.state_keys]
        if unknown:
            raise ConfigError(
                f"proprio_keys {unknown} are not vector input features; vectors: {self.state_keys}"
            )

    @property
    def resolved_proprio_keys(self) -> list[str]:
        """The vector features the CVAE encoder reads."""
        if self.proprio_keys is not None:
            return list(self.proprio_keys)
        return ["observation.state"] if "observation.state" in self.state_keys else []

    def vision_config(self) -> ObsEncoderConfig:
        """``vision`` (with ACT's defaults) as a checked :class:`ObsEncoderConfig`."""
        unsupported = [k for k in _UNSUPPORTED_VISION if self.vision.get(k)]
        if unsupported:
            raise ConfigError(f"ACT reads RGB cameras only; remove vision options {unsupported}")
        one_shape = len({tuple(self.input_features[k]) for k in self.image_keys}) == 1
        cfg = ObsEncoderConfig.from_dict(
            {
                **ACT_VISION_DEFAULTS,
                "share_image_encoder": one_shape,
                **self.vision,
                "state_keys": self.state_keys,
                "image_keys": self.image_keys,
            }
        )
        if cfg.backbone != "resnet18":
            raise ConfigError(
                f"ACT uses ResNet-18 feature maps; vision backbone {cfg.backbone!r} is not "
                "supported, set vision backbone='resnet18'"
            )
        return cfg


class _CameraTokens(nn.Module):
    """Cameras → ResNet-18 feature maps → tokens (B, S, D) with their positions (S, D)."""

    camera_pos: torch.Tensor

    def __init__(self, cfg: ACTConfig) -> None:
        super().__init__()
        vision = cfg.vision_config()
        self.keys = cfg.image_keys
        self.augment = ImageAugment(vision.augment, vision.crop_ratio, vision.shift_pad_px)
        shapes = {k: self._encoder_shape(tuple(cfg.input_features[k])) for k in self.keys}
        self.shared = vision.share_image_encoder
        if self.shared and len(set(shapes.values())) > 1:
            raise ConfigError(
                f"a shared backbone needs cameras of one shape, got {shapes}; resize them or "
                "set vision share_image_encoder=False"
            )
        keys = self.keys[:1] if self.shared else self.keys
        self.backbones = nn.ModuleDict(
            {self._name(k): _feature_map_encoder(vision, shapes[k]) for k in keys}
        )
        self.input_proj = nn.Conv2d(RESNET18_CHANNELS, cfg.dim_model, kernel_size=1)
        self.camera_embed = nn.Parameter(torch.zeros(len(self.keys), cfg.dim_model))
        nn.init.normal_(self.camera_embed, std=0.02)
        self.cells = [resnet18_feature_map_size(*shapes[k][1:]) for k in self.keys]
        table = torch.cat([sinusoidal_2d(h, w, cfg.dim_model) for h, w in self.cells])
        self.register_buffer("camera_pos", table, persistent=False)  # (S, D)

    def _encoder_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        c, h, w = shape
        return (c, *self.augment.output_shape(h, w))

    def _name(self, key: str) -> str:
        return "shared" if self.shared else module_name(key)

    def _backbone(self, key: str) -> ResNet18Encoder:
        return cast(ResNet18Encoder, self.backbones[self._name(key)])

    def positions(self) -> torch.Tensor:
        """(S, D) positions of every camera token: 2-D sinusoid + that camera's embedding."""
        counts = torch.tensor([h * w for h, w in self.cells], device=self.camera_pos.device)
        return self.camera_pos + self.camera_embed.repeat_interleave(counts, dim=0)

    def forward(
        self, images: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``{key: (B, C, H, W)}`` in [0, 1] → (B, S, D) camera tokens, cameras in order."""
        frames = [self.augment(images[k], generator) for k in self.keys]  # (B, C, H', W')
        if self.shared:  # one backbone pass over every camera
            n = frames[0].shape[0]
            maps = list(self._backbone(self.keys[0]).feature_map(torch.cat(frames)).split(n))
        else:
            maps = [
                self._backbone(k).feature_map(x) for k, x in zip(self.keys, frames, strict=True)
            ]
        tokens = [self.input_proj(m).flatten(2).transpose(1, 2) for m in maps]  # (B, h·w, D)
        return torch.cat(tokens, dim=1)


def _feature_map_encoder(vision: ObsEncoderConfig, shape: tuple[int, int, int]) -> ResNet18Encoder:
    """A :class:`ResNet18Encoder` used through ``feature_map`` only: its pooling head and
    projection are dropped (so no parameter goes untrained) and ``forward`` is the map."""
    encoder = ResNet18Encoder(
        ResNet18Config(
            image_shape=shape,
            feature_dim=1,
            pool="avg",
            use_group_norm=vision.use_group_norm,
            pretrained_path=vision.pretrained_path,
            frozen=vision.frozen,
            imagenet_norm=shape[0] == 3,
        )
    )
    encoder.pool = nn.Identity()
    encoder.proj = nn.Identity()  # type: ignore[assignment]
    return encoder


class _CVAEEncoder(nn.Module):
    """``[CLS, proprio tokens, action tokens]`` → posterior mean and log-variance of z."""

    pos: torch.Tensor

    def __init__(self, cfg: ACTConfig, proprio_dims: list[int]) -> None:
        super().__init__()
        d = cfg.dim_model
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.normal_(self.cls, std=0.02)
        self.proprio_proj = nn.ModuleList(nn.Linear(dim, d) for dim in proprio_dims)
        self.action_proj = nn.Linear(cfg.action_dim, d)
        self.encoder = TransformerEncoder(
            cfg.n_vae_encoder_layers,
            d,
            cfg.n_heads,
            cfg.dim_feedforward,
            cfg.dropout,
            cfg.feedforward_activation,
            cfg.pre_norm,
        )
        self.to_latent = nn.Linear(d, 2 * cfg.latent_dim)
        n_tokens = 1 + len(proprio_dims) + cfg.horizon
        self.register_buffer("pos", sinusoidal_table(n_tokens, d), persistent=False)

    def forward(
        self, proprio: list[torch.Tensor], actions: torch.Tensor, is_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Proprio vectors [(B, D_k)], actions (B, H, A), padding (B, H) → mean, log-var
        (B, latent_dim) each."""
        batch = actions.shape[0]
        tokens = [self.cls.expand(batch, -1, -1)]
        tokens += [proj(x)[:, None] for proj, x in zip(self.proprio_proj, proprio, strict=True)]
        tokens.append(self.action_proj(actions))  # (B, H, D)
        x = torch.cat(tokens, dim=1)  # (B, 1 + P + H, D)
        keep = torch.zeros(batch, 1 + len(proprio), dtype=torch.bool, device=x.device)
        mask = torch.cat([keep, is_pad.to(x.device)], dim=1)  # (B, 1 + P + H) True = ignore
        out = self.encoder(x, self.pos[None], key_padding_mask=mask)[:, 0]  # (B, D)
        mean, log_var = self.to_latent(out).chunk(2, dim=-1)
        return mean, log_var


@register_policy
class ACTPolicy(Policy):
    """Action Chunking with Transformers (see the module docstring)."""

    name = "act"
    config_class = ACTConfig
    config: ACTConfig

    def __init__(self, config: ACTConfig, stats: Mapping[str, Stats] | None = None) -> None:
        super().__init__(config, stats)
        d, shapes = config.dim_model, config.input_features
        self.proprio_keys = config.resolved_proprio_keys
        self.vae_encoder = (
            _CVAEEncoder(config, [shapes[k][0] for k in self.proprio_keys])
            if config.use_vae
            else None
        )
        self.latent_proj = nn.Linear(config.latent_dim, d)
        self.state_proj = nn.ModuleDict(
            {module_name(k): nn.Linear(shapes[k][0], d) for k in config.state_keys}
        )
        self.token_pos = nn.Embedding(1 + len(config.state_keys), d)
        self.cameras = _CameraTokens(config) if config.image_keys else None
        layer_args = (d, config.n_heads, config.dim_feedforward, config.dropout)
        style = (config.feedforward_activation, config.pre_norm)
        self.encoder = TransformerEncoder(config.n_encoder_layers, *layer_args, *style)
        self.decoder = TransformerDecoder(config.n_decoder_layers, *layer_args, *style)
        self.query_pos = nn.Embedding(config.horizon, d)
        self.action_head = nn.Linear(d, config.action_dim)
        for module in (self.vae_encoder, self.encoder, self.decoder):
            if module is not None:
                xavier_init_(module)
        coeff = config.temporal_ensemble_coeff
        self._ensemble = TemporalEnsemble(coeff) if coeff is not None else None
        self._tick = 0

    # -- inference -----------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: clear the history, the action queue and the temporal ensemble."""
        super().reset(seed)
        if self._ensemble is not None:
            self._ensemble.reset()
        self._tick = 0

    @torch.no_grad()
    def act(self, obs: Obs) -> np.ndarray:
        """The action (A,) for this tick. With temporal ensembling: a new chunk every tick,
        combined with the earlier chunks that cover this tick; otherwise the queue of
        :meth:`Policy.act`."""
        if self._ensemble is None:
            return super().act(obs)
        self._ensemble.add(self.predict_chunk(obs), self._tick)
        action = self._ensemble.action(self._tick)
        assert action is not None  # the chunk just added covers this tick
        self._tick += 1
        return action

    def _predict(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        frame = {k: v[:, -1] for k, v in obs.items()}  # (B, *shape): the newest frame
        batch = next(iter(frame.values())).shape[0]
        device = self.token_pos.weight.device
        latent = torch.zeros(batch, self.config.latent_dim, device=device)  # the prior mean
        return self.predict_actions(frame, latent)

    # -- the network ---------------------------------------------------------------------

    def predict_actions(
        self,
        frame: Mapping[str, torch.Tensor],
        latent: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Normalized observations ``{key: (B, *shape)}`` and latent z (B, latent_dim) →
        normalized action chunk (B, horizon, A)."""
        memory, memory_pos = self._encode(frame, latent, generator)
        queries = torch.zeros_like(memory[:, :1]).expand(-1, self.config.horizon, -1)
        out = self.decoder(queries, memory, self.query_pos.weight[None], memory_pos)
        return self.action_head(out)  # (B, H, A)

    def _encode(
        self,
        frame: Mapping[str, torch.Tensor],
        latent: torch.Tensor,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder memory (B, S, D) and its positions (1, S, D)."""
        tokens = [self.latent_proj(latent)]
        tokens += [self.state_proj[module_name(k)](frame[k]) for k in self.config.state_keys]
        x = torch.stack(tokens, dim=1)  # (B, 1 + n_vectors, D)
        pos = self.token_pos.weight  # (1 + n_vectors, D)
        if self.cameras is not None:
            x = torch.cat([x, self.cameras(frame, generator)], dim=1)
            pos = torch.cat([pos, self.cameras.positions()])
        return self.encoder(x, pos[None]), pos[None]

    # -- training ------------------------------------------------------------------------

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction (L1, or squared error) over the chunk's real steps + ``kl_weight`` ·
        KL(posterior ‖ N(0, I))."""
        data = self.normalize_inputs(batch)
        actions = data.pop(ACTION)  # (B, H, A)
        frame = {k: v[:, -1] for k, v in data.items()}  # (B, *shape)
        is_pad = batch.get(f"{ACTION}_is_pad")
        if is_pad is None:
            is_pad = torch.zeros(actions.shape[:2], dtype=torch.bool, device=actions.device)
        latent, kl = self._posterior_sample(frame, actions, is_pad.bool())
        pred = self.predict_actions(frame, latent, self._generator)
        error = F.l1_loss if self.config.reconstruction_loss == "l1" else F.mse_loss
        recon = masked_mean(error(pred, actions, reduction="none").mean(-1), is_pad)
        loss = recon + self.config.kl_weight * kl
        metrics = {
            "loss": float(loss.detach()),
            self.config.reconstruction_loss: float(recon.detach()),
            "kl": float(kl.detach()),
        }
        return loss, metrics

    def _posterior_sample(
        self, frame: Mapping[str, torch.Tensor], actions: torch.Tensor, is_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized draw of z (B, latent_dim) and the batch-mean KL (a scalar);
        z = 0 and KL = 0 without the CVAE."""
        if self.vae_encoder is None:
            zeros = actions.new_zeros(actions.shape[0], self.config.latent_dim)
            return zeros, actions.new_zeros(())
        proprio = [frame[k] for k in self.proprio_keys]
        mean, log_var = self.vae_encoder(proprio, actions, is_pad)
        noise = torch.randn(
            mean.shape, generator=self._generator, device=mean.device, dtype=mean.dtype
        )
        latent = mean + (0.5 * log_var).exp() * noise
        kl = (-0.5 * (1.0 + log_var - mean.pow(2) - log_var.exp())).sum(-1).mean()
        return latent, kl
