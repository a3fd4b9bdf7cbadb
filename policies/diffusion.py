"""Diffusion Policy (Chi et al., 2023): a 1-D temporal U-Net with FiLM conditioning denoises an
action sequence conditioned on the observation history.

Defaults follow the paper's CNN variant: observation history 2, prediction horizon 16,
8 executed actions, 100 DDPM training steps with the squared-cosine schedule, 10 DDIM steps at
inference, EMA of the weights. Training windows start at the oldest observation
(``action_offset = 1 - n_obs_steps``), and the executed actions are rows
``n_obs_steps - 1 … n_obs_steps - 2 + n_action_steps`` of the denoised sequence.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from robolearn.core.stats import Stats
from robolearn.core.types import ConfigError
from robolearn.policies.base import ACTION, Batch, Policy, PolicyConfig, register_policy
from robolearn.policies.blocks import EMA, SinusoidalEmbedding, build_obs_encoder, masked_mean


@dataclasses.dataclass
class DiffusionConfig(PolicyConfig):
    """Diffusion Policy hyperparameters (paper defaults unless noted)."""

    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    down_dims: list[int] = dataclasses.field(default_factory=lambda: [256, 512, 1024])
    """U-Net channel widths per level; the horizon halves at each level but the last."""
    kernel_size: int = 5
    n_groups: int = 8
    """GroupNorm groups in the U-Net's conv blocks."""
    timestep_embed_dim: int = 128
    film_scale: bool = True
    """FiLM predicts a per-channel scale and bias (False: bias only)."""
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: Literal["epsilon", "sample"] = "epsilon"
    num_inference_steps: int = 10
    """DDIM denoising steps at inference."""
    clip_sample: bool = True
    use_ema: bool = True
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999

    def check(self) -> None:
        super().check()
        levels = len(self.down_dims) - 1
        if self.horizon % (2**levels):
            raise ConfigError(
                f"horizon {self.horizon} must be divisible by 2**{levels} for a U-Net with "
                f"down_dims {self.down_dims}"
            )
        if self.n_obs_steps - 1 + self.n_action_steps > self.horizon:
            raise ConfigError("n_obs_steps - 1 + n_action_steps must be ≤ horizon")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ConfigError("num_inference_steps must be in [1, num_train_timesteps]")


class _ConvBlock(nn.Sequential):
    """Conv1d → GroupNorm → Mish, length preserved."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
            nn.GroupNorm(groups, c_out),
            nn.Mish(),
        )


class _FiLMResBlock(nn.Module):
    """Two conv blocks with FiLM (scale, bias from the conditioning) between them."""

    def __init__(
        self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int, scale: bool
    ) -> None:
        super().__init__()
        self.block1 = _ConvBlock(c_in, c_out, kernel, groups)
        self.block2 = _ConvBlock(c_out, c_out, kernel, groups)
        self.scale = scale
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, c_out * (2 if scale else 1)))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.block1(x)  # (B, C, T)
        film = self.film(cond)[..., None]  # (B, C or 2C, 1)
        if self.scale:
            gain, bias = film.chunk(2, dim=1)
            h = gain * h + bias
        else:
            h = h + film
        return self.block2(h) + self.skip(x)


class _Level(nn.Module):
    """Two FiLM residual blocks, then a resampling layer applied by the caller."""

    def __init__(
        self, c_in: int, c_out: int, cond_dim: int, cfg: DiffusionConfig, resample: nn.Module
    ) -> None:
        super().__init__()
        k, g, s = cfg.kernel_size, cfg.n_groups, cfg.film_scale
        self.res1 = _FiLMResBlock(c_in, c_out, cond_dim, k, g, s)
        self.res2 = _FiLMResBlock(c_out, c_out, cond_dim, k, g, s)
        self.resample = resample

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.res2(self.res1(x, cond), cond)


class ConditionalUnet1D(nn.Module):
    """Noisy actions (B, T, A), timesteps (B,) and a global condition (B, G) → (B, T, A)."""

    def __init__(self, action_dim: int, cond_dim: int, cfg: DiffusionConfig) -> None:
        super().__init__()
        emb = cfg.timestep_embed_dim
        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(emb), nn.Linear(emb, emb * 4), nn.Mish(), nn.Linear(emb * 4, emb)
        )
        full_cond = emb + cond_dim
        widths = [action_dim, *cfg.down_dims]
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            last = i == len(cfg.down_dims) - 1
            resample: nn.Module = nn.Conv1d(c_out, c_out, 3, 2, 1) if not last else nn.Identity()
            self.down.append(_Level(c_in, c_out, full_cond, cfg, resample))
        mid = cfg.down_dims[-1]
        self.mid = _Level(mid, mid, full_cond, cfg, nn.Identity())
        self.up = nn.ModuleList()
        rev = list(reversed(cfg.down_dims))
        for c_in, c_out in itertools.pairwise(rev):  # each level upsamples
            resample = nn.ConvTranspose1d(c_out, c_out, 4, 2, 1)
            self.up.append(_Level(c_in * 2, c_out, full_cond, cfg, resample))
        first = cfg.down_dims[0]
        self.final = nn.Sequential(
            _ConvBlock(first, first, cfg.kernel_size, cfg.n_groups), nn.Conv1d(first, action_dim, 1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = torch.cat([self.time_embed(t), cond], dim=-1)  # (B, emb + G)
        h = x.transpose(1, 2)  # (B, A, T)
        skips = []
        for level in self.down:
            h = cast(_Level, level)(h, c)
            skips.append(h)
            h = cast(_Level, level).resample(h)
        h = self.mid(h, c)
        for level in self.up:
            h = cast(_Level, level)(torch.cat([h, skips.pop()], dim=1), c)
            h = cast(_Level, level).resample(h)
        return self.final(h).transpose(1, 2)  # (B, T, A)


class _Denoiser(nn.Module):
    """Observation encoder + U-Net: the part of the policy that EMA averages."""

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.obs_encoder = build_obs_encoder(cfg)
        cond_dim = int(self.obs_encoder.out_dim) * cfg.n_obs_steps  # type: ignore[arg-type]
        self.unet = ConditionalUnet1D(cfg.action_dim, cond_dim, cfg)

    def condition(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Normalized history ``{key: (B, T_obs, ...)}`` → global condition (B, T_obs · F)."""
        return self.obs_encoder(obs).flatten(1)


@register_policy
class DiffusionPolicy(Policy):
    """Diffusion Policy with a 1-D conditional U-Net (see the module docstring)."""

    name = "diffusion"
    config_class = DiffusionConfig
    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig, stats: Mapping[str, Stats] | None = None) -> None:
        super().__init__(config, stats)
        self.model: _Denoiser = _Denoiser(config)
        self.ema = (
            EMA(self.model, config.ema_power, config.ema_max_decay) if config.use_ema else None
        )
        common: dict[str, Any] = {
            "num_train_timesteps": config.num_train_timesteps,
            "beta_schedule": config.beta_schedule,
            "clip_sample": config.clip_sample,
            "prediction_type": config.prediction_type,
        }
        self.train_scheduler: Any = DDPMScheduler(**common)
        self.sampler: Any = DDIMScheduler(**common)

    @property
    def action_offset(self) -> int:
        return 1 - self.config.n_obs_steps

    def on_train_step(self) -> None:
        if self.ema is not None:
            self.ema.update(self.model)

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        data = self.normalize_inputs(batch)
        actions = data.pop(ACTION)  # (B, H, A)
        cond = self.model.condition(data)
        noise = torch.randn_like(actions)
        steps = torch.randint(
            0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device
        )
        noisy = self.train_scheduler.add_noise(actions, noise, steps)
        pred = self.model.unet(noisy, steps, cond)
        target = noise if self.config.prediction_type == "epsilon" else actions
        loss = F.mse_loss(pred, target, reduction="none").mean(-1)  # (B, H)
        loss = masked_mean(loss, batch.get(f"{ACTION}_is_pad"))
        return loss, {"loss": float(loss.detach())}

    def _predict(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        model = cast(_Denoiser, self.ema.averaged) if self.ema is not None else self.model
        cond = model.condition(obs)  # (B, G)
        batch = cond.shape[0]
        shape = (batch, self.config.horizon, self.config.action_dim)
        x = torch.randn(shape, generator=self._generator, device=cond.device)
        self.sampler.set_timesteps(self.config.num_inference_steps)
        for t in self.sampler.timesteps:
            steps = torch.full((batch,), int(t), device=cond.device, dtype=torch.long)
            out = model.unet(x, steps, cond)
            x = self.sampler.step(out, t, x, generator=self._generator).prev_sample
        start = self.config.n_obs_steps - 1
        return x[:, start : start + self.config.n_action_steps]
