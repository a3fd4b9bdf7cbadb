"""One test per feature, parametrized over every registered policy (as in SB3's suite):
save/load round trip, loss falls on a tiny dataset, seeded determinism, and a tiny
record → train → eval run through the CLI. Plus the training loop's bad-input behaviour."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robolearn.cli.main import main
from robolearn.core.types import ConfigError
from robolearn.data.reader import DatasetReader
from robolearn.policies import available_policies, load_policy, make_policy, policy_class
from robolearn.policies.base import Policy, check_policy_spec
from robolearn.train import TrainConfig, TrainingError, train
from robolearn.train.config import PRESETS, resolve_preset
from robolearn.train.loop import policy_config_for, training_windows, with_observation_noise

TINY: dict[str, dict[str, Any]] = {
    "bc": {"hidden": [32, 32], "horizon": 4, "n_action_steps": 2},
    "diffusion": {
        "down_dims": [16, 32],
        "horizon": 8,
        "n_action_steps": 4,
        "n_groups": 4,
        "timestep_embed_dim": 16,
        "num_inference_steps": 3,
    },
    "act": {
        "horizon": 8,
        "dim_model": 32,
        "n_heads": 2,
        "dim_feedforward": 64,
        "n_encoder_layers": 1,
        "n_vae_encoder_layers": 1,
    },
}
"""Small settings per policy so that the suite runs in seconds."""

DATASET_POLICIES = [n for n in available_policies() if policy_class(n).trains_from_datasets]


@pytest.fixture(scope="module")
def lift_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four scripted FrankaLift episodes, state only, as `robolearn record` writes them."""
    out = tmp_path_factory.mktemp("lift") / "data"
    status = main(
        [
            "record",
            "--out",
            str(out),
            "--env",
            "robolearn/FrankaLift-v0",
            "--episodes",
            "4",
            "--no-cameras",
            "--success-hold-ticks",
            "5",
        ]
    )
    assert status == 0
    return out


def _cfg(name: str, data: Path, out: Path, **kw: Any) -> TrainConfig:
    sets = [f"{k}={json.dumps(v)}" for k, v in TINY.get(name, {}).items()] + kw.pop("set", [])
    return TrainConfig(dataset=data, out=out, policy=name, set=sets, progress=False, **kw)


def _policy(name: str, data: Path, tmp_path: Path) -> tuple[Policy, DatasetReader]:
    reader = DatasetReader(data)
    config = policy_config_for(_cfg(name, data, tmp_path / "run"), reader)
    return make_policy(name, config, reader.stats), reader


def _obs(reader: DatasetReader, frame: int) -> dict[str, np.ndarray]:
    return {k: reader.column(k)[frame] for k in reader.column_keys if k.startswith("observation.")}


def _rollout(policy: Policy, reader: DatasetReader, seed: int, steps: int = 6) -> np.ndarray:
    policy.reset(seed=seed)
    return np.stack([policy.act(_obs(reader, t)) for t in range(steps)])


def test_registry_has_the_issue_policies() -> None:
    assert {"bc", "diffusion", "act"} <= set(available_policies())


@pytest.mark.parametrize("name", DATASET_POLICIES)
def test_save_load_round_trip_gives_identical_outputs(
    name: str, lift_data: Path, tmp_path: Path
) -> None:
    policy, reader = _policy(name, lift_data, tmp_path)
    folder = policy.save(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_policy(folder)
    np.testing.assert_array_equal(_rollout(policy.eval(), reader, 3), _rollout(loaded, reader, 3))


@pytest.mark.parametrize("name", DATASET_POLICIES)
def test_act_is_deterministic_under_a_seed(name: str, lift_data: Path, tmp_path: Path) -> None:
    policy, reader = _policy(name, lift_data, tmp_path)
    policy.eval()
    np.testing.assert_array_equal(_rollout(policy, reader, 7), _rollout(policy, reader, 7))
    chunk = policy.predict_chunk(_obs(reader, 0))
    assert chunk.ndim == 2 and chunk.shape[1] == policy.config.action_dim
    assert np.isfinite(chunk).all()


@pytest.mark.parametrize("name", DATASET_POLICIES)
def test_loss_falls_on_a_tiny_dataset(name: str, lift_data: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy, _ = _policy(name, lift_data, tmp_path)
    data = training_windows(policy, DatasetReader(lift_data))
    batch = torch.utils.data.default_collate([data[i] for i in range(0, len(data), 4)][:32])
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss, _ = policy(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        policy.on_train_step()
        losses.append(float(loss.detach()))
    # Diffusion losses are noisy (random noise levels per sample) and fall more slowly.
    factor = 0.75 if name == "diffusion" else 0.5
    assert np.mean(losses[-10:]) < factor * np.mean(losses[:10]), losses[::10]


@pytest.mark.parametrize("name", DATASET_POLICIES)
def test_train_then_eval_through_the_cli(name: str, lift_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    sets = [f"{k}={json.dumps(v)}" for k, v in TINY.get(name, {}).items()]
    args = [
        "train",
        "--dataset",
        str(lift_data),
        "--out",
        str(run),
        "--policy",
        name,
        "--steps",
        "6",
        "--batch-size",
        "8",
        "--save-every",
        "3",
        "--no-progress",
    ]
    assert main([*args, "--set", *sets] if sets else args) == 0
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["000003", "000006", "last"]
    assert (run / "tensorboard").is_dir() and (run / "train_log.jsonl").is_file()
    out = tmp_path / "eval"
    status = main(
        [
            "eval",
            "--policy",
            str(run / "checkpoints" / "last"),
            "--episodes",
            "2",
            "--workers",
            "1",
            "--videos",
            "1",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["summary"]["episodes"] == 2
    assert report["summary"]["env"] == "robolearn/FrankaLift-v0"
    lo, hi = report["summary"]["ci95"]
    assert 0.0 <= lo <= report["summary"]["success_rate"] <= hi <= 1.0
    assert (out / "videos" / "episode_000.mp4").stat().st_size > 0
    assert "<img src='data:image/png;base64," in (out / "report.html").read_text()


def test_resume_continues_from_the_last_checkpoint(lift_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_cfg("bc", lift_data, run, steps=4, save_every=2, batch_size=8))
    with pytest.raises(ConfigError, match="--resume"):
        train(_cfg("bc", lift_data, run, steps=8, batch_size=8))
    result = train(_cfg("bc", lift_data, run, steps=8, save_every=2, batch_size=8, resume=True))
    assert result.steps == 8
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log][-1] == 8


def test_obs_noise_perturbs_state_inputs_only(lift_data: Path, tmp_path: Path) -> None:
    """--obs-noise adds noise of the given std to observation vectors, never to actions."""
    policy, reader = _policy("bc", lift_data, tmp_path)
    data = training_windows(policy, reader)
    batch = {k: v for k, v in data[0].items()}
    batch = {
        k: torch.stack([data[i][k] for i in range(64)])
        for k, v in batch.items()
        if isinstance(v, torch.Tensor)
    }
    torch.manual_seed(0)
    noisy = with_observation_noise(batch, 0.01, policy)
    for key in policy.config.state_keys:
        diff = (noisy[key] - batch[key]).flatten()
        assert 0.008 < float(diff.std()) < 0.012, key
    assert torch.equal(noisy["action"], batch["action"])
    result = train(_cfg("bc", lift_data, tmp_path / "noisy", steps=3, batch_size=8, obs_noise=0.01))
    assert np.isfinite(result.final_loss)
    with pytest.raises(ConfigError, match="--obs-noise"):
        _cfg("bc", lift_data, tmp_path / "bad", obs_noise=-1.0)


def test_norm_min_scale_floors_near_constant_observation_entries(
    lift_data: Path, tmp_path: Path
) -> None:
    """norm_min_scale (default 0.01) keeps a barely varying entry from amplifying noise;
    actions keep their dataset range; a value ≤ 0 is refused."""
    reader = DatasetReader(lift_data)
    base = policy_config_for(
        _cfg("bc", lift_data, tmp_path / "run", set=["norm_min_scale=1e-8"]), reader
    )
    floored = policy_config_for(_cfg("bc", lift_data, tmp_path / "run"), reader)
    assert floored.norm_min_scale == 0.01  # the default
    plain = make_policy("bc", base, reader.stats).normalizer
    wide = make_policy("bc", floored, reader.stats).normalizer
    key = "observation.ee_pose"
    half = (np.asarray(reader.stats[key]["max"]) - np.asarray(reader.stats[key]["min"])) / 2
    assert half.min() < 0.01  # the hand's quaternion barely varies under the expert
    noise = torch.full((len(half),), 0.002)
    zero = torch.zeros(len(half))
    jump = wide.normalize(key, noise) - wide.normalize(key, zero)
    assert float(jump.abs().max()) <= 0.2 + 1e-6
    assert float((plain.normalize(key, noise) - plain.normalize(key, zero)).abs().max()) > 1
    action = torch.ones(base.action_dim)
    assert torch.equal(wide.normalize("action", action), plain.normalize("action", action))
    bad = policy_config_for(_cfg("bc", lift_data, tmp_path / "r", set=["norm_min_scale=0"]), reader)
    with pytest.raises(ConfigError, match="norm_min_scale"):
        make_policy("bc", bad, reader.stats)


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(
    lift_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    cfg = _cfg(
        "bc",
        lift_data,
        run,
        steps=200,
        save_every=1,
        batch_size=8,
        lr=1e30,
        warmup_steps=1,
        grad_clip=0.0,
    )
    with pytest.raises(TrainingError, match=r"at step \d+.*last good checkpoint"):
        train(cfg)
    reports = list(run.glob("nan_batch_step*.json"))
    assert len(reports) == 1 and json.loads(reports[0].read_text())["frames"]
    policy = load_policy(run / "checkpoints" / "last")
    assert all(torch.isfinite(p).all() for p in policy.parameters())


def test_spec_mismatch_names_both_specs(lift_data: Path, tmp_path: Path) -> None:
    policy, _ = _policy("bc", lift_data, tmp_path)
    offered = {"observation.state": (8,), "observation.environment_state": (9,)}
    with pytest.raises(ConfigError, match=r"environment_state is \(9,\).*Policy spec.*Robot/env"):
        check_policy_spec(policy.config, offered, action_dim=4)
    with pytest.raises(ConfigError, match="action has 7 dims"):
        check_policy_spec(
            policy.config, {"observation.state": (8,), "observation.environment_state": (16,)}, 7
        )


def test_eval_refuses_a_policy_for_another_task(lift_data: Path, tmp_path: Path) -> None:
    policy, _ = _policy("bc", lift_data, tmp_path)
    folder = policy.save(tmp_path / "ckpt")
    status = main(
        [
            "eval",
            "--policy",
            str(folder),
            "--env",
            "robolearn/FrankaReach-v0",
            "--episodes",
            "1",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "e"),
        ]
    )
    assert status == 2  # ConfigError, printed as one line


def test_unknown_policy_and_bad_folder_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown policy 'nope'; registered"):
        policy_class("nope")
    with pytest.raises(ConfigError, match=r"config\.json is missing"):
        load_policy(tmp_path)


@pytest.fixture(scope="module")
def lift_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scripted FrankaLift episodes with a 64×64 front and wrist camera."""
    out = tmp_path_factory.mktemp("lift_img") / "data"
    status = main(
        [
            "record",
            "--out",
            str(out),
            "--env",
            "robolearn/FrankaLift-v0",
            "--episodes",
            "2",
            "--image-size",
            "64",
            "64",
            "--success-hold-ticks",
            "2",
        ]
    )
    assert status == 0
    return out


VISION = {
    "vision": {
        "feature_dim": 16,
        "spatial_softmax_keypoints": 8,
        "augment": "random_crop",
        "crop_ratio": 0.9,
    }
}


@pytest.mark.parametrize("name", DATASET_POLICIES)
def test_image_policies_train_save_and_act(name: str, lift_images: Path, tmp_path: Path) -> None:
    keys = ["observation.state", "observation.images.front", "observation.images.wrist"]
    sets = [f"{k}={json.dumps(v)}" for k, v in {**TINY.get(name, {}), **VISION}.items()]
    cfg = TrainConfig(
        dataset=lift_images,
        out=tmp_path / "run",
        policy=name,
        set=sets,
        obs_keys=keys,
        steps=2,
        batch_size=4,
        progress=False,
    )
    result = train(cfg)
    policy = load_policy(result.checkpoint)
    assert policy.config.image_keys == keys[1:]
    reader = DatasetReader(lift_images)
    frame = reader[5]
    obs = {k: frame[k] for k in keys}  # images (H, W, 3) uint8, as envs give them
    policy.reset(seed=1)
    first = policy.act(obs)
    policy.reset(seed=1)
    np.testing.assert_array_equal(first, policy.act(obs))


@pytest.mark.parametrize("backend", ["sync", "process"])
def test_deploy_runs_a_saved_policy(backend: str, lift_data: Path, tmp_path: Path) -> None:
    policy, _ = _policy("diffusion", lift_data, tmp_path)
    folder = policy.save(tmp_path / "ckpt")
    out = tmp_path / "deploy"
    status = main(
        [
            "deploy",
            "--policy",
            str(folder),
            "--episodes",
            "1",
            "--seconds",
            "1",
            "--inference",
            backend,
            "--no-realtime",
            "--no-keyboard-estop",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    rows = json.loads((out / "summary.json").read_text())
    assert rows[0]["ticks"] == 20  # 1 s at the recorded 20 Hz
    log = DatasetReader(out / "dataset")  # the same episode as a LeRobot v3 dataset
    assert log.num_episodes == 1 and log.episode_length(0) == 20
    assert log.column("action").shape == (20, 8)  # joint targets sent + gripper width
    if backend == "sync":  # an asynchronous worker may not keep up with a sim stepped flat out
        assert log.column("policy.action_valid").all()


@pytest.mark.slow
def test_two_processes_under_accelerate_launch(lift_data: Path, tmp_path: Path) -> None:
    """The multi-GPU path (`accelerate launch --multi_gpu`, DDP), here 2 CPU processes (gloo):
    one log, one checkpoint, and a policy that loads."""
    import subprocess
    import sys

    run = tmp_path / "run"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    train_args = ["train", "--dataset", str(lift_data), "--out", str(run), "--policy", "bc"]
    train_args += ["--steps", "6", "--batch-size", "8", "--save-every", "3", "--log-every", "2"]
    train_args += ["--no-progress"]
    done = subprocess.run(
        [*launch, "-m", "robolearn.cli.main", *train_args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained 6 steps on 2 processes") == 1, done.stdout
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    steps = [row["step"] for row in log]
    assert steps == sorted(set(steps)) and steps[-1] == 6, "one process logs"
    policy = load_policy(run / "checkpoints" / "last")
    assert all(torch.isfinite(p).all() for p in policy.parameters())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_training_preset_makes_its_policy(
    preset: str, lift_data: Path, tmp_path: Path
) -> None:
    """Each named preset's options are valid for the policy it is for (named last in it)."""
    name = preset.rsplit("-", 1)[-1]
    cfg = resolve_preset(TrainConfig(dataset=lift_data, out=tmp_path, policy=name, preset=preset))
    reader = DatasetReader(lift_data)
    policy = make_policy(name, policy_config_for(cfg, reader), reader.stats)
    for key, value in PRESETS[preset]["policy"].items():
        assert getattr(policy.config, key) == value or isinstance(value, dict)
