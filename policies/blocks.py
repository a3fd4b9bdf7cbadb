"""Network blocks shared by the policies (each exists once): EMA, MLPs, timestep embeddings,
and the observation encoder every policy builds from its config."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


class EMA(nn.Module):
    """Exponential moving average of a model's weights, with Diffusion Policy's warm-up:
    ``decay = min(max_decay, 1 - (1 + step / inv_gamma) ** -power)``.

    The averaged copy is a submodule, so it is saved with the policy.
    """

    step: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        power: float = 0.75,
        max_decay: float = 0.9999,
        inv_gamma: float = 1.0,
    ) -> None:
        super().__init__()
        self.averaged = copy.deepcopy(model).requires_grad_(False).eval()
        self.power, self.max_decay, self.inv_gamma = power, max_decay, inv_gamma
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def decay(self) -> float:
        """The decay used for the next update."""
        step = int(self.step)
        if step <= 0:
            return 0.0
        value = 1.0 - (1.0 + step / self.inv_gamma) ** -self.power
        return max(0.0, min(self.max_decay, value))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model``'s current weights."""
        decay = self.decay()
        for avg, new in zip(self.averaged.parameters(), model.parameters(), strict=True):
            avg.lerp_(new.detach(), 1.0 - decay)
        for avg_b, new_b in zip(self.averaged.buffers(), model.buffers(), strict=True):
            avg_b.copy_(new_b)
        self.step += 1

    def train(self, mode: bool = True) -> EMA:
        """The averaged copy always stays in eval mode."""
        super().train(mode)
        self.averaged.eval()
        return self


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int, activation: type[nn.Module] = nn.Mish
) -> nn.Sequential:
    """Linear → activation layers through ``hidden`` widths, then a linear output layer."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class SinusoidalEmbedding(nn.Module):
    """Sinusoidal embedding of a scalar (diffusion timestep) → (B, dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, device=t.device) / max(half - 1, 1)
        )
        args = t.float()[:, None] * freqs[None]  # (B, half)
        return torch.cat([args.sin(), args.cos()], dim=-1)


class StateEncoder(nn.Module):
    """Concatenates (already normalized) vector features: ``{key: (..., D_k)}`` → (..., ΣD)."""

    def __init__(self, keys: Sequence[str], shapes: Mapping[str, Sequence[int]]) -> None:
        super().__init__()
        self.keys = list(keys)
        self.out_dim = int(sum(shapes[k][0] for k in self.keys))

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([obs[k] for k in self.keys], dim=-1)


def build_obs_encoder(config: Any) -> nn.Module:
    """The observation encoder of a policy config: state vectors only, or cameras fused with
    state through :class:`robolearn.perception.ObservationEncoder`. Either maps
    ``{key: (B, T, *shape)}`` → (B, T, ``out_dim``). For a ``mae:`` image encoder the
    options that rebuild it without the MAE folder are written into ``config.vision``
    (:meth:`~robolearn.perception.ObsEncoderConfig.pinned_options`), so the policy saves them."""
    shapes = {k: tuple(v) for k, v in config.input_features.items()}
    if not config.image_keys:
        return StateEncoder(config.state_keys, shapes)
    from robolearn.perception import ObsEncoderConfig, ObservationEncoder

    vision = ObsEncoderConfig.from_dict(
        {**config.vision, "state_keys": config.state_keys, "image_keys": config.image_keys}
    )
    # a mae: encoder's architecture and freezing, so that the saved policy rebuilds it alone
    config.vision = {**config.vision, **vision.pinned_options()}
    return ObservationEncoder(vision, shapes)


def masked_mean(loss: torch.Tensor, is_pad: torch.Tensor | None) -> torch.Tensor:
    """Mean of a per-step loss (B, H) over the steps that are not padding (``is_pad`` True
    past an episode's end)."""
    if is_pad is None:
        return loss.mean()
    keep = (~is_pad.to(loss.device)).float()
    return (loss * keep).sum() / keep.sum().clamp_min(1.0)
