"""The CUDA paths: training in fp32 and under bf16 autocast, and inference on the GPU.

Marked ``gpu``: ``make test`` runs them whenever CUDA is available and deselects them
otherwise (``tests/conftest.py``), so a CPU run reports them as deselected, never skipped.
CI has no GPU; run them on a GPU machine with ``make test`` (or ``pytest -m gpu``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_policies import (  # lift_data, lift_images: the module fixtures shared with it
    DATASET_POLICIES,
    VISION,
    _cfg,
    _rollout,
    lift_data,
    lift_images,
)

from robolearn.data.reader import DatasetReader
from robolearn.policies import load_policy
from robolearn.train import train

pytestmark = pytest.mark.gpu

__all__ = ["lift_data", "lift_images"]


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", DATASET_POLICIES)
def test_trains_on_cuda(name: str, amp: bool, lift_data: Path, tmp_path: Path) -> None:
    result = train(_cfg(name, lift_data, tmp_path / "run", steps=30, device="cuda", amp=amp))
    assert result.device.startswith("cuda")
    assert result.precision == ("bf16" if amp else "fp32")
    assert np.isfinite(result.final_loss)
    policy = load_policy(result.checkpoint)  # a checkpoint trained on CUDA loads on the CPU
    assert all(p.device.type == "cpu" for p in policy.parameters())


def test_bf16_training_learns_like_fp32(lift_data: Path, tmp_path: Path) -> None:
    def final_loss(steps: int, amp: bool) -> float:
        run = tmp_path / f"run-{steps}-{amp}"
        cfg = _cfg("bc", lift_data, run, steps=steps, warmup_steps=1, device="cuda", amp=amp)
        return train(cfg).final_loss

    untrained, fp32, bf16 = final_loss(1, False), final_loss(300, False), final_loss(300, True)
    assert bf16 < 0.95 * untrained, (untrained, bf16)
    assert bf16 == pytest.approx(fp32, rel=0.25, abs=0.02), (fp32, bf16)


def test_image_policy_trains_on_cuda_in_bf16(lift_images: Path, tmp_path: Path) -> None:
    keys = ["observation.state", "observation.images.front", "observation.images.wrist"]
    cfg = _cfg("diffusion", lift_images, tmp_path / "run", steps=5, device="cuda", amp=True)
    vision = f"vision={json.dumps(VISION['vision'])}"
    cfg = dataclasses.replace(cfg, obs_keys=keys, batch_size=8, set=[*cfg.set, vision])
    result = train(cfg)
    assert result.precision == "bf16" and np.isfinite(result.final_loss)


@pytest.mark.parametrize("name", ["bc", "act"])
def test_cuda_inference_matches_the_cpu(name: str, lift_data: Path, tmp_path: Path) -> None:
    checkpoint = train(_cfg(name, lift_data, tmp_path / "run", steps=20)).checkpoint
    reader = DatasetReader(lift_data)
    actions = {}
    for device in ("cpu", "cuda"):
        policy = load_policy(checkpoint, device=device)
        assert all(p.device.type == device for p in policy.parameters())
        actions[device] = _rollout(policy, reader, seed=0)
    np.testing.assert_allclose(actions["cuda"], actions["cpu"], atol=1e-4)


def test_diffusion_inference_on_cuda_is_seeded(lift_data: Path, tmp_path: Path) -> None:
    checkpoint = train(_cfg("diffusion", lift_data, tmp_path / "run", steps=20)).checkpoint
    reader = DatasetReader(lift_data)
    policy = load_policy(checkpoint, device="cuda")
    runs = [_rollout(policy, reader, seed=3) for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.all(np.isfinite(runs[0]))
    assert torch.cuda.max_memory_allocated() > 0
