"""Transformer blocks shared by transformer policies (ACT): DETR-style encoder and decoder
layers that add positional embeddings to the queries and keys of every attention layer, and
fixed sinusoidal position tables in 1-D and 2-D.

Every tensor is batch-first: tokens (B, S, D), positions (S, D) or (B, S, D). Padding masks
are (B, S) bool, True where a token must be ignored (as ``nn.MultiheadAttention`` takes them).

::

    encoder = TransformerEncoder(n_layers=4, dim=512, n_heads=8, dim_feedforward=3200)
    memory = encoder(tokens, pos)                                 # (B, S, D)
    decoder = TransformerDecoder(n_layers=1, dim=512, n_heads=8, dim_feedforward=3200)
    out = decoder(torch.zeros(B, H, 512), memory, query_pos, pos)  # (B, H, D)
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

from robolearn.core.types import ConfigError

Activation = Literal["relu", "gelu"]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)


def sinusoidal_table(n_positions: int, dim: int) -> torch.Tensor:
    """(n_positions, dim) fixed sinusoidal position table ("Attention Is All You Need"):
    channel ``2i`` is ``sin(p / 10000^(2i/dim))``, channel ``2i + 1`` the matching cosine."""
    if dim < 2 or dim % 2:
        raise ConfigError(f"a sinusoidal table needs an even dim ≥ 2, got {dim}")
    return _sinusoids(torch.arange(n_positions, dtype=torch.float64), dim)


def sinusoidal_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """(height · width, dim) positions of a feature map's cells, row-major: the first half of
    the channels encodes the row, the second half the column (DETR's layout), each with
    positions scaled to [0, 2π] so that maps of different sizes share a range."""
    if dim < 4 or dim % 4:
        raise ConfigError(f"2-D sinusoidal positions need dim divisible by 4, got {dim}")
    rows = _scaled_table(height, dim // 2)  # (H, D/2)
    cols = _scaled_table(width, dim // 2)  # (W, D/2)
    grid_rows = rows[:, None, :].expand(height, width, dim // 2)
    grid_cols = cols[None, :, :].expand(height, width, dim // 2)
    return torch.cat([grid_rows, grid_cols], dim=-1).reshape(height * width, dim)


def _scaled_table(n: int, dim: int) -> torch.Tensor:
    """(n, dim) sinusoids of the positions ``(i + 0.5) / n · 2π`` of ``n`` cells."""
    positions = (torch.arange(n, dtype=torch.float64) + 0.5) / n * 2.0 * math.pi
    return _sinusoids(positions, dim)


def _sinusoids(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) float64 positions → (N, dim) float32, interleaved sin/cos at geometric freqs."""
    freqs = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    args = positions[:, None] * freqs  # (N, dim / 2)
    table = torch.zeros(len(positions), dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(args)
    table[:, 1::2] = torch.cos(args)
    return table.float()


def _with_pos(x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
    return x if pos is None else x + pos


class _FeedForward(nn.Sequential):
    """Linear → activation → dropout → linear."""

    def __init__(self, dim: int, hidden: int, dropout: float, activation: Activation) -> None:
        act: nn.Module = nn.ReLU() if activation == "relu" else nn.GELU()
        super().__init__(nn.Linear(dim, hidden), act, nn.Dropout(dropout), nn.Linear(hidden, dim))


def _check_layer_args(dim: int, n_heads: int, dropout: float, activation: str) -> None:
    if n_heads < 1 or dim % n_heads:
        raise ConfigError(f"model width {dim} must be divisible by n_heads {n_heads}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward with residuals; ``pos`` is added to queries and keys
    (not values). Post-norm (ACT/DETR default) or pre-norm."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        dim_feedforward: int,
        dropout: float = 0.1,
        activation: Activation = "relu",
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_layer_args(dim, n_heads, dropout, activation)
        self.attn = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.ff = _FeedForward(dim, dim_feedforward, dropout, activation)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens (B, S, D), positions broadcastable to them, mask (B, S) → (B, S, D)."""
        h = self.norm1(x) if self.pre_norm else x
        qk = _with_pos(h, pos)
        attended = self.attn(qk, qk, h, key_padding_mask=key_padding_mask, need_weights=False)[0]
        x = x + self.drop1(attended)
        if not self.pre_norm:
            x = self.norm1(x)
        h = self.norm2(x) if self.pre_norm else x
        x = x + self.drop2(self.ff(h))
        return x if self.pre_norm else self.norm2(x)


class DecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the encoder's memory, feed-forward;
    query positions are added to the queries, memory positions to the memory's keys."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        dim_feedforward: int,
        dropout: float = 0.1,
        activation: Activation = "relu",
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_layer_args(dim, n_heads, dropout, activation)
        self.self_attn = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.ff = _FeedForward(dim, dim_feedforward, dropout, activation)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in range(3))
        self.pre_norm = pre_norm

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        query_pos: torch.Tensor | None = None,
        memory_pos: torch.Tensor | None = None,
        memory_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Queries (B, H, D) and memory (B, S, D) → (B, H, D)."""
        h = self._pre(0, x)
        qk = _with_pos(h, query_pos)
        x = self._post(0, x, self.self_attn(qk, qk, h, need_weights=False)[0])
        h = self._pre(1, x)
        crossed = self.cross_attn(
            _with_pos(h, query_pos),
            _with_pos(memory, memory_pos),
            memory,
            key_padding_mask=memory_padding_mask,
            need_weights=False,
        )[0]
        x = self._post(1, x, crossed)
        return self._post(2, x, self.ff(self._pre(2, x)))

    def _pre(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Input of sub-block ``i``: normalized first in pre-norm mode."""
        return self.norms[i](x) if self.pre_norm else x

    def _post(self, i: int, x: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        """Residual update of sub-block ``i``, normalized after it in post-norm mode."""
        x = x + self.drops[i](update)
        return x if self.pre_norm else self.norms[i](x)


class TransformerEncoder(nn.Module):
    """A stack of :class:`EncoderLayer`; a final LayerNorm in pre-norm mode."""

    def __init__(
        self,
        n_layers: int,
        dim: int,
        n_heads: int,
        dim_feedforward: int,
        dropout: float = 0.1,
        activation: Activation = "relu",
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"a transformer encoder needs ≥ 1 layer, got {n_layers}")
        self.layers = nn.ModuleList(
            EncoderLayer(dim, n_heads, dim_feedforward, dropout, activation, pre_norm)
            for _ in range(n_layers)
        )
        self.norm: nn.Module = nn.LayerNorm(dim) if pre_norm else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens (B, S, D) → encoded tokens (B, S, D)."""
        for layer in self.layers:
            x = layer(x, pos, key_padding_mask)
        return self.norm(x)


class TransformerDecoder(nn.Module):
    """A stack of :class:`DecoderLayer` followed by a LayerNorm (as in DETR and ACT)."""

    def __init__(
        self,
        n_layers: int,
        dim: int,
        n_heads: int,
        dim_feedforward: int,
        dropout: float = 0.1,
        activation: Activation = "relu",
        pre_norm: bool = False,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"a transformer decoder needs ≥ 1 layer, got {n_layers}")
        self.layers = nn.ModuleList(
            DecoderLayer(dim, n_heads, dim_feedforward, dropout, activation, pre_norm)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        query_pos: torch.Tensor | None = None,
        memory_pos: torch.Tensor | None = None,
        memory_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Queries (B, H, D) attending to memory (B, S, D) → (B, H, D)."""
        for layer in self.layers:
            x = layer(x, memory, query_pos, memory_pos, memory_padding_mask)
        return self.norm(x)


def xavier_init_(module: nn.Module) -> None:
    """Xavier-uniform initialization of every weight matrix of ``module`` (DETR's init)."""
    for param in module.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)


__all__ = [
    "ACTIVATIONS",
    "Activation",
    "DecoderLayer",
    "EncoderLayer",
    "TransformerDecoder",
    "TransformerEncoder",
    "sinusoidal_2d",
    "sinusoidal_table",
    "xavier_init_",
]
