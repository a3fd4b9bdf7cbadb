"""ACT: shapes (state-only, cameras + state), the CVAE latent, the loss terms and padding
mask, temporal ensembling through the shared executor, save/load, and learning a tiny task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robolearn.core.chunking import TemporalEnsemble
from robolearn.core.stats import Stats, numeric_stats
from robolearn.core.types import ConfigError
from robolearn.policies import available_policies, load_policy, make_policy
from robolearn.policies.act import ACTConfig, ACTPolicy
from robolearn.policies.transformer_blocks import (
    TransformerEncoder,
    sinusoidal_2d,
    sinusoidal_table,
)

STATE, ENV, CAMS = "observation.state", "observation.environment_state", "observation.images"
FRONT, WRIST = f"{CAMS}.front", f"{CAMS}.wrist"
A, H = 4, 8
TINY: dict[str, Any] = {
    "action_dim": A,
    "horizon": H,
    "dim_model": 32,
    "n_heads": 2,
    "dim_feedforward": 64,
    "n_encoder_layers": 1,
    "n_vae_encoder_layers": 1,
}


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(1)  # the CI machine's cores are shared
    torch.manual_seed(0)


def _state_config(**kw: Any) -> ACTConfig:
    """The generic suite's state-only config (robot + environment state)."""
    return ACTConfig(input_features={STATE: [8], ENV: [16]}, **{**TINY, **kw})


def _camera_config(**kw: Any) -> ACTConfig:
    features = {STATE: [8], FRONT: [3, 64, 64], WRIST: [3, 64, 64]}
    return ACTConfig(input_features=features, **{**TINY, **kw})


def _stats(seed: int = 0) -> dict[str, Stats]:
    """Vector statistics of the synthetic data (actions span about [-1.5, 2.2])."""
    rng = np.random.default_rng(seed)
    return {
        STATE: numeric_stats(rng.uniform(-1, 1, (256, 8))),
        ENV: numeric_stats(rng.uniform(-1, 1, (256, 16))),
        "action": numeric_stats(np.concatenate([np.full((1, A), -1.5), np.full((1, A), 2.2)])),
    }


def _policy(config: ACTConfig) -> ACTPolicy:
    policy = make_policy("act", config, _stats())
    assert isinstance(policy, ACTPolicy)
    return policy


def _batch(config: ACTConfig, batch: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Raw training windows; the target chunk is a smooth function of the state."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, shape in config.input_features.items():
        if len(shape) == 3:
            out[key] = torch.rand(batch, 1, *shape, generator=gen)
        else:
            out[key] = torch.rand(batch, 1, *shape, generator=gen) * 2 - 1
    state = out[STATE][:, 0, :A]  # (B, A)
    ramp = torch.linspace(0, 1, H)[None, :, None]  # (1, H, 1)
    out["action"] = torch.tanh(state)[:, None] + 1.2 * ramp * state[:, None]  # (B, H, A)
    out["action_is_pad"] = torch.zeros(batch, H, dtype=torch.bool)
    return out


def _obs(config: ACTConfig, seed: int) -> dict[str, np.ndarray]:
    """One unbatched observation as an env gives it (cameras (H, W, 3) uint8)."""
    rng = np.random.default_rng(seed)
    obs: dict[str, np.ndarray] = {}
    for key, shape in config.input_features.items():
        if len(shape) == 3:
            obs[key] = rng.integers(0, 256, (shape[1], shape[2], shape[0]), dtype=np.uint8)
        else:
            obs[key] = rng.uniform(-1, 1, shape)
    return obs


def _rollout(policy: ACTPolicy, config: ACTConfig, ticks: int = 5) -> np.ndarray:
    policy.reset(seed=1)
    return np.stack([policy.act(_obs(config, t)) for t in range(ticks)])


def _capture_inputs(module: torch.nn.Module) -> list[torch.Tensor]:
    """Inputs seen by ``module`` from now on (a forward hook; the model runs unchanged)."""
    seen: list[torch.Tensor] = []
    module.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach().clone()))
    return seen


# -- config ----------------------------------------------------------------------------------


def test_registered_with_the_papers_defaults() -> None:
    assert "act" in available_policies()
    cfg = ACTConfig()
    assert (cfg.n_obs_steps, cfg.horizon, cfg.n_action_steps) == (1, 100, 1)
    assert (cfg.dim_model, cfg.n_heads, cfg.dim_feedforward) == (512, 8, 3200)
    assert (cfg.n_encoder_layers, cfg.n_decoder_layers, cfg.n_vae_encoder_layers) == (4, 1, 4)
    assert (cfg.latent_dim, cfg.kl_weight, cfg.dropout) == (32, 10.0, 0.1)
    assert cfg.use_vae and cfg.temporal_ensemble_coeff == 0.01 and not cfg.pre_norm


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_obs_steps": 2}, "n_obs_steps=1"),
        ({"n_action_steps": 4}, "temporal ensembling predicts a chunk every tick"),
        ({"n_action_steps": 9, "temporal_ensemble_coeff": None}, "exceeds the chunk size"),
        ({"n_heads": 3}, "divisible by n_heads"),
        ({"proprio_keys": ["observation.joints"]}, "not vector input features"),
        ({"vision": {"backbone": "vit"}}, "ResNet-18 feature maps"),
        ({"vision": {"feature_dims": 3}}, "unknown keys"),
    ],
)
def test_bad_configs_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _policy(_camera_config(**change))


# -- shapes ----------------------------------------------------------------------------------


def test_state_only_shapes_and_loss_terms() -> None:
    config = _state_config()
    policy = _policy(config)
    assert policy.cameras is None
    loss, metrics = policy(_batch(config))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(metrics) == {"loss", "l1", "kl"} and metrics["kl"] > 0 and metrics["l1"] > 0
    assert metrics["loss"] == pytest.approx(metrics["l1"] + 10.0 * metrics["kl"], rel=1e-5)
    frame = {k: v[:, 0] for k, v in _batch(config, batch=3).items() if k in config.input_features}
    assert policy.predict_actions(frame, torch.zeros(3, 32)).shape == (3, H, A)
    policy.reset(seed=0)
    assert policy.predict_chunk(_obs(config, 0)).shape == (H, A)
    assert policy.act(_obs(config, 1)).shape == (A,)


def test_squared_error_reconstruction_option() -> None:
    """``reconstruction_loss="mse"``: the same network and batch, squared error in place of L1."""
    l1_policy = _policy(_state_config())
    mse_policy = _policy(_state_config(reconstruction_loss="mse"))
    mse_policy.load_state_dict(l1_policy.state_dict())
    batch = _batch(_state_config())
    for policy in (l1_policy, mse_policy):  # no dropout, the same posterior noise in both
        policy.eval()
        policy.reset(seed=0)
    _, l1 = l1_policy(batch)
    _, mse = mse_policy(batch)
    assert set(mse) == {"loss", "mse", "kl"} and mse["kl"] == pytest.approx(l1["kl"])
    assert mse["loss"] == pytest.approx(mse["mse"] + 10.0 * mse["kl"], rel=1e-5)
    assert mse["mse"] != pytest.approx(l1["l1"])


def test_camera_and_state_shapes_and_tokens() -> None:
    config = _camera_config()
    policy = _policy(config)
    assert policy.cameras is not None and list(policy.cameras.backbones) == ["shared"]
    loss, metrics = policy(_batch(config, batch=2))
    assert torch.isfinite(loss) and metrics["kl"] > 0
    frame = {k: v[:, 0] for k, v in _batch(config, batch=2).items() if k in config.input_features}
    memory, pos = policy._encode(frame, torch.zeros(2, 32), None)
    # latent + state + 2 cameras × (64 px → 2 × 2 ResNet-18 cells)
    assert memory.shape == (2, 1 + 1 + 2 * 4, 32) and pos.shape == (1, 10, 32)
    front, wrist = pos[0, 2:6], pos[0, 6:10]
    assert not torch.allclose(front, wrist)  # the per-camera embedding tells them apart
    assert policy.predict_chunk(_obs(config, 0)).shape == (H, A)


def test_one_backbone_per_camera_when_not_shared() -> None:
    shared = _policy(_camera_config())
    apart = _policy(_camera_config(vision={"share_image_encoder": False}))
    assert apart.cameras is not None and len(apart.cameras.backbones) == 2
    n_shared = sum(p.numel() for p in shared.parameters())
    n_apart = sum(p.numel() for p in apart.parameters())
    assert n_apart - n_shared > 10_000_000  # a second ResNet-18 trunk (11.2 M)
    assert apart.predict_chunk(_obs(apart.config, 0)).shape == (H, A)


def test_cameras_of_different_shapes_get_a_backbone_each() -> None:
    features = {STATE: [8], FRONT: [3, 64, 64], WRIST: [3, 48, 64]}
    policy = _policy(ACTConfig(input_features=features, **TINY))
    assert policy.cameras is not None and len(policy.cameras.backbones) == 2
    chunk = policy.predict_chunk(_obs(policy.config, 0))
    assert chunk.shape == (H, A)
    with pytest.raises(ConfigError, match="share_image_encoder=False"):
        ACTPolicy(ACTConfig(input_features=features, vision={"share_image_encoder": True}, **TINY))


def test_pre_norm_variant_trains() -> None:
    config = _state_config(pre_norm=True, n_decoder_layers=2)
    policy = _policy(config)
    assert isinstance(policy.encoder.norm, torch.nn.LayerNorm)
    loss, _ = policy(_batch(config))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in policy.decoder.parameters())


# -- the CVAE --------------------------------------------------------------------------------


def test_latent_is_sampled_in_training_and_zero_at_inference() -> None:
    config = _state_config()
    policy = _policy(config)
    latents = _capture_inputs(policy.latent_proj)
    batch = _batch(config)
    policy.train()
    policy(batch)
    torch.manual_seed(5)
    policy(batch)
    other = {**batch, "action": -batch["action"]}
    torch.manual_seed(5)
    policy(other)
    train_z, same_noise_z, other_actions_z = latents
    assert train_z.abs().min() > 0
    assert not torch.allclose(train_z, same_noise_z)  # a fresh draw each step
    assert not torch.allclose(same_noise_z, other_actions_z)  # the posterior sees the actions
    latents.clear()
    policy.reset(seed=0)
    policy.predict_chunk(_obs(config, 0))
    policy.act(_obs(config, 1))
    assert len(latents) == 2 and all(torch.equal(z, torch.zeros(1, 32)) for z in latents)


def test_without_the_vae_the_latent_is_zero_and_kl_is_zero() -> None:
    config = _state_config(use_vae=False)
    policy = _policy(config)
    assert policy.vae_encoder is None
    latents = _capture_inputs(policy.latent_proj)
    _, metrics = policy(_batch(config))
    assert metrics["kl"] == 0.0 and metrics["loss"] == pytest.approx(metrics["l1"])
    assert torch.equal(latents[0], torch.zeros(4, 32))


def test_padded_steps_do_not_affect_the_loss() -> None:
    config = _state_config()
    policy = _policy(config)
    batch = _batch(config)
    batch["action_is_pad"][:, -3:] = True

    def metrics_of(b: dict[str, torch.Tensor]) -> dict[str, float]:
        torch.manual_seed(3)  # same latent noise and dropout masks
        return policy(b)[1]

    base = metrics_of(batch)
    padded = {**batch, "action": batch["action"].clone()}
    padded["action"][:, -3:] += 50.0  # targets past the episode end
    assert metrics_of(padded) == pytest.approx(base, rel=1e-6, abs=1e-6)  # L1 and KL alike
    real = {**batch, "action": batch["action"].clone()}
    real["action"][:, 2] += 50.0  # a real step
    assert metrics_of(real)["l1"] > base["l1"] + 1.0


def test_encoder_padding_mask_hides_tokens() -> None:
    encoder = TransformerEncoder(1, 16, 2, 32, dropout=0.0).eval()
    x, pos = torch.randn(2, 5, 16), sinusoidal_table(5, 16)[None]
    mask = torch.tensor([[False, False, False, True, True]] * 2)
    changed = x.clone()
    changed[:, 3:] = 100.0
    a, b = encoder(x, pos, mask), encoder(changed, pos, mask)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(encoder(x, pos), encoder(changed, pos))


def test_2d_positions_are_distinct_per_cell() -> None:
    table = sinusoidal_2d(3, 4, 32)  # (12, 32)
    assert table.shape == (12, 32)
    assert torch.cdist(table, table).add(torch.eye(12)).min() > 1e-3


# -- acting ----------------------------------------------------------------------------------


def test_temporal_ensembling_matches_the_shared_executor() -> None:
    config = _state_config(temporal_ensemble_coeff=0.3)
    policy = _policy(config)
    ticks = 6
    actions = _rollout(policy, config, ticks)
    policy.reset(seed=1)
    chunks = [policy.predict_chunk(_obs(config, t)) for t in range(ticks)]
    ensemble = TemporalEnsemble(0.3)
    expected = []
    for t, chunk in enumerate(chunks):
        ensemble.add(chunk, t)
        expected.append(ensemble.action(t))
    np.testing.assert_allclose(actions, np.stack(expected), rtol=0, atol=1e-12)
    first_rows = np.stack([c[0] for c in chunks])
    assert not np.allclose(actions[1:], first_rows[1:])  # earlier chunks did weigh in


def test_reset_clears_the_ensemble() -> None:
    config = _state_config()
    policy = _policy(config)
    _rollout(policy, config, 4)
    policy.reset()
    first = policy.act(_obs(config, 9))
    np.testing.assert_array_equal(first, policy.predict_chunk(_obs(config, 9))[0])


def test_plain_chunking_executes_n_action_steps_per_chunk() -> None:
    config = _state_config(temporal_ensemble_coeff=None, n_action_steps=3)
    policy = _policy(config)
    heads = _capture_inputs(policy.action_head)
    policy.reset()
    obs = _obs(config, 0)
    actions = np.stack([policy.act(obs) for _ in range(7)])
    assert len(heads) == 3  # ticks 0, 3 and 6
    chunk = policy.predict_chunk(obs)
    np.testing.assert_allclose(actions[:3], chunk[:3], atol=1e-6)
    np.testing.assert_allclose(actions[3:6], chunk[:3], atol=1e-6)


def test_act_is_deterministic_even_from_train_mode() -> None:
    config = _camera_config(dropout=0.3)
    policy = _policy(config).train()
    np.testing.assert_array_equal(_rollout(policy, config), _rollout(policy, config))
    assert policy.training  # act restores the mode it found


def test_augmentation_is_random_in_train_mode_only() -> None:
    config = _camera_config(dropout=0.0, use_vae=False, vision={"augment": "random_shift"})
    policy = _policy(config)
    batch = _batch(config, batch=2)
    frame = policy.normalize_inputs(batch)
    frame = {k: v[:, 0] for k, v in frame.items() if k in config.input_features}
    z = torch.zeros(2, 32)
    with torch.no_grad():
        policy.train()
        assert not torch.allclose(
            policy.predict_actions(frame, z), policy.predict_actions(frame, z)
        )
        policy.eval()
        assert torch.equal(policy.predict_actions(frame, z), policy.predict_actions(frame, z))
        plain = _policy(_camera_config(dropout=0.0, use_vae=False)).train()
        assert torch.equal(plain.predict_actions(frame, z), plain.predict_actions(frame, z))


def test_save_load_round_trip_gives_identical_actions(tmp_path: Path) -> None:
    config = _camera_config(vision={"augment": "random_crop", "share_image_encoder": False})
    policy = _policy(config)
    for p in policy.parameters():  # move off the initial values so that loading matters
        p.data.add_(0.01 * torch.randn_like(p))
    folder = policy.save(tmp_path / "act")
    loaded = load_policy(folder)
    assert isinstance(loaded, ACTPolicy) and loaded.config == config
    np.testing.assert_array_equal(_rollout(policy.eval(), config), _rollout(loaded, config))


# -- learning --------------------------------------------------------------------------------


def test_loss_falls_on_a_tiny_batch() -> None:
    config = _state_config()
    policy = _policy(config)
    batch = _batch(config, batch=16)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    l1s = []
    for _ in range(100):
        loss, metrics = policy(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        policy.on_train_step()
        l1s.append(metrics["l1"])
    assert np.mean(l1s[-10:]) < 0.4 * np.mean(l1s[:10]), l1s[::10]
    policy.reset()
    chunk = policy.predict_chunk({STATE: batch[STATE][0, 0].numpy(), ENV: batch[ENV][0, 0].numpy()})
    error = np.abs(chunk - batch["action"][0].numpy()).mean()
    assert error < 0.25, error  # z = 0 at inference still gives the trained chunk
