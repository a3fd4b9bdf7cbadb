"""Behaviour cloning: an MLP from the observation history (state vectors, or camera features
from the shared perception encoders fused with state) to an action chunk, regressed with an
L2 or L1 loss. With no cameras it is the classic MLP-BC; with cameras, image BC."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F

from robolearn.core.stats import Stats
from robolearn.policies.base import ACTION, Batch, Policy, PolicyConfig, register_policy
from robolearn.policies.blocks import build_obs_encoder, masked_mean, mlp


@dataclasses.dataclass
class BCConfig(PolicyConfig):
    """Behaviour-cloning hyperparameters."""

    hidden: list[int] = dataclasses.field(default_factory=lambda: [256, 256, 256])
    """MLP hidden widths."""
    loss: Literal["mse", "l1"] = "mse"


@register_policy
class BCPolicy(Policy):
    """MLP (or image-encoder + MLP) behaviour cloning with optional action chunks."""

    name = "bc"
    config_class = BCConfig
    config: BCConfig

    def __init__(self, config: BCConfig, stats: Mapping[str, Stats] | None = None) -> None:
        super().__init__(config, stats)
        self.obs_encoder = build_obs_encoder(config)
        in_dim = int(self.obs_encoder.out_dim) * config.n_obs_steps  # type: ignore[arg-type]
        self.head = mlp(in_dim, config.hidden, config.horizon * config.action_dim)

    def _forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        features = self.obs_encoder(obs).flatten(1)  # (B, T · F)
        return self.head(features).view(-1, self.config.horizon, self.config.action_dim)

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        data = self.normalize_inputs(batch)
        target = data.pop(ACTION)  # (B, H, A)
        pred = self._forward(data)
        error = F.mse_loss if self.config.loss == "mse" else F.l1_loss
        loss = error(pred, target, reduction="none").mean(-1)  # (B, H)
        loss = masked_mean(loss, batch.get(f"{ACTION}_is_pad"))
        return loss, {"loss": float(loss.detach())}

    def _predict(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._forward(obs)
