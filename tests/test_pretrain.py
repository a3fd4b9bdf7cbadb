"""``robolearn pretrain``: MAE pretraining on recorded camera frames, its run folder, resume and
Ctrl-C, bad input, the masking and loss, and MAE encoders inside image policies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import robolearn.train.pretrain as pretrain_module
from robolearn.cli.config import parse_into
from robolearn.cli.main import build_parser, main
from robolearn.core.types import ConfigError
from robolearn.data.reader import DatasetReader
from robolearn.perception import ObsEncoderConfig, ObservationEncoder
from robolearn.perception.mae import (
    MAEConfig,
    MAEModel,
    masked_patch_loss,
    patch_targets,
    random_masking,
)
from robolearn.policies.base import load_policy
from robolearn.train import TrainConfig, train
from robolearn.train.pretrain import PretrainConfig, pretrain

SIZE = 32
"""Camera and MAE image side: 16 patches of 8 pixels, 4 of them visible."""
FRONT, WRIST = "observation.images.front", "observation.images.wrist"
TINY_MAE = [
    "--image-size",
    str(SIZE),
    "--depth",
    "1",
    "--decoder-dim",
    "32",
    "--decoder-depth",
    "1",
    "--decoder-heads",
    "2",
    "--batch-size",
    "16",
    "--lr",
    "1e-3",
    "--warmup-steps",
    "5",
    "--threads",
    "1",
    "--no-progress",
]
"""A model and schedule small enough for a few seconds of CPU."""
STEPS = 40


def _record(out: Path, *args: str) -> Path:
    status = main(["record", "--out", str(out), "--success-hold-ticks", "2", *args])
    assert status == 0
    return out


@pytest.fixture(scope="module")
def cam_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scripted FrankaLift episodes with 32×32 front and wrist cameras."""
    out = tmp_path_factory.mktemp("mae_cams") / "data"
    args = ["--env", "robolearn/FrankaLift-v0", "--episodes", "2", "--image-size", "32", "32"]
    return _record(out, *args)


@pytest.fixture(scope="module")
def state_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One FrankaReach episode recorded without cameras."""
    out = tmp_path_factory.mktemp("mae_state") / "data"
    return _record(out, "--env", "robolearn/FrankaReach-v0", "--episodes", "1", "--no-cameras")


@pytest.fixture(scope="module")
def mae_run(cam_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MAE pretrained through the CLI for 40 steps, saved every 20."""
    out = tmp_path_factory.mktemp("mae_run") / "run"
    argv = ["pretrain", "--dataset", str(cam_data), "--out", str(out), *TINY_MAE]
    status = main([*argv, "--steps", str(STEPS), "--save-every", "20", "--log-every", "1"])
    assert status == 0
    return out


def _log(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def _pretrain_argv(data: Path, out: Path, steps: int, *more: str) -> list[str]:
    return [
        "pretrain",
        "--dataset",
        str(data),
        "--out",
        str(out),
        *TINY_MAE,
        "--steps",
        str(steps),
        *more,
    ]


def test_pretraining_lowers_the_loss_and_writes_the_run(mae_run: Path) -> None:
    log = _log(mae_run)
    losses = np.array([entry["loss"] for entry in log])
    assert [entry["step"] for entry in log] == list(range(1, STEPS + 1))
    assert np.isfinite(losses).all()
    assert losses[-5:].mean() < 0.8 * losses[:5].mean()
    for name in ("000020", "000040", "last"):
        folder = mae_run / "checkpoints" / name
        assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
        assert (folder / "training_state.json").is_file()
    mae = MAEModel.load(mae_run / "checkpoints" / "last")
    assert mae.cfg.image_size == SIZE and mae.cfg.patch_size == 8
    for step in (20, 40):  # 3 rows (masked, reconstruction, original) of 8 frames
        with Image.open(mae_run / "recon" / f"step_{step}.png") as grid:
            width, height = grid.size
        assert width > 2.5 * height
    report = (mae_run / "report.html").read_text()
    assert "recon/step_40.png" in report and "loss.png" in report
    assert (mae_run / "loss.png").is_file()
    assert list((mae_run / "tensorboard").glob("events.out.tfevents.*"))


def test_frames_come_from_every_camera(cam_data: Path) -> None:
    pool = pretrain_module.FramePool.open([cam_data], [], SIZE)
    frames = DatasetReader(cam_data).num_frames
    assert [camera for _, camera in pool.sources] == [FRONT, WRIST]
    assert len(pool) == 2 * frames
    images = pool.images(np.array([0, frames]))  # frame 0 of the front and the wrist camera
    assert images.shape == (2, 3, SIZE, SIZE) and 0.0 <= images.min() <= images.max() <= 1.0
    assert not torch.equal(images[0], images[1])
    resized = pretrain_module.FramePool.open([cam_data], ["wrist"], 16).spread(8)
    assert resized.shape == (8, 3, 16, 16)


def test_an_existing_run_needs_resume_or_overwrite(
    mae_run: Path, cam_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(mae_run, run)
    assert main(_pretrain_argv(cam_data, run, 2)) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main([*_pretrain_argv(cam_data, run, 2), "--overwrite"]) == 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["000002", "last"]
    assert "final loss" in capsys.readouterr().out


def test_ctrl_c_saves_the_last_step_and_resume_continues_exactly(
    cam_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    steps, stop = 12, 8
    straight = tmp_path / "straight"
    assert main([*_pretrain_argv(cam_data, straight, steps), "--log-every", "1"]) == 0

    run = tmp_path / "interrupted"
    step_once = pretrain_module._Pretrainer._train_step

    def interrupted(self: Any) -> float:
        if self.step == stop - 1:  # Ctrl-C while step `stop` runs
            raise KeyboardInterrupt
        return step_once(self)

    monkeypatch.setattr(pretrain_module._Pretrainer, "_train_step", interrupted)
    assert main([*_pretrain_argv(cam_data, run, steps), "--log-every", "1"]) == 130
    last = run / "checkpoints" / "last"
    assert json.loads((last / "training_state.json").read_text())["step"] == stop - 1
    MAEModel.load(last)  # loadable
    assert (run / "recon" / f"step_{stop - 1}.png").is_file()
    assert f"--resume continues from step {stop - 1}" in capsys.readouterr().err

    monkeypatch.setattr(pretrain_module._Pretrainer, "_train_step", step_once)
    assert main([*_pretrain_argv(cam_data, run, steps), "--log-every", "1", "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"pretrained {steps} steps" in out and str(last) in out and "final loss" in out
    log = _log(run)
    assert [entry["step"] for entry in log] == list(range(1, steps + 1))
    assert [e["loss"] for e in log] == [e["loss"] for e in _log(straight)]
    resumed = MAEModel.load(last).state_dict()
    for key, value in MAEModel.load(straight / "checkpoints" / "last").state_dict().items():
        assert torch.equal(resumed[key], value), key


def test_resume_refuses_other_model_options(mae_run: Path, cam_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(mae_run, run)
    argv = _pretrain_argv(cam_data, run, STEPS + 2, "--resume", "--decoder-dim", "64")
    with pytest.raises(ConfigError, match="give the run's model options again"):
        pretrain(_config(argv))


def _config(argv: list[str]) -> PretrainConfig:
    """``robolearn pretrain ARGV`` parsed into its config."""
    return parse_into(PretrainConfig, build_parser().parse_args(argv))


def test_dataset_option_repeats(cam_data: Path, state_data: Path) -> None:
    cfg = _config(["pretrain", "--dataset", str(cam_data), "--dataset", str(state_data)])
    assert cfg.datasets == [cam_data, state_data]


def test_bad_input_is_one_clear_error(
    cam_data: Path, state_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"no camera images.*observation\.state"):
        pretrain(PretrainConfig(datasets=[cam_data, state_data], out=out))
    with pytest.raises(ConfigError, match="does not exist"):
        pretrain(PretrainConfig(datasets=[tmp_path / "missing"], out=out))
    with pytest.raises(ConfigError, match="not divisible by the patch size 8"):
        pretrain(PretrainConfig(datasets=[cam_data], out=out, image_size=36))
    with pytest.raises(ConfigError, match="not divisible by the patch size 16"):
        pretrain(PretrainConfig(datasets=[cam_data], out=out, image_size=136))
    with pytest.raises(ConfigError, match=r"no camera \['side'\].*observation\.images\.front"):
        pretrain(PretrainConfig(datasets=[cam_data], out=out, cameras=["side"]))
    assert not out.exists()  # nothing was written
    assert main(["pretrain", "--dataset", str(state_data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robolearn: error:") and "no camera images" in err
    assert len(err.splitlines()) == 1


def test_masking_keeps_a_quarter_of_the_patches() -> None:
    cfg = MAEConfig(image_size=96, patch_size=8)
    assert (cfg.num_patches, cfg.num_visible) == (144, 36)
    generator = torch.Generator().manual_seed(0)
    keep, mask, restore = random_masking(6, cfg.num_patches, cfg.num_visible, generator)
    assert keep.shape == (6, 36) and mask.shape == (6, 144)
    assert (mask.sum(dim=1) == 108).all()  # 75 % masked in every sample
    for row in range(6):
        assert len(set(keep[row].tolist())) == 36
        assert (mask[row, keep[row]] == 0).all()
    assert not torch.equal(keep[0].sort().values, keep[1].sort().values)  # per sample
    visible_first = torch.cat([torch.ones(6, 36), torch.zeros(6, 108)], dim=1)
    assert torch.equal(visible_first.gather(1, restore), 1 - mask)  # restore undoes the shuffle
    mae = MAEModel(MAEConfig(image_size=SIZE, depth=1, decoder_dim=32, decoder_heads=2))
    images = torch.rand(3, 3, SIZE, SIZE)
    keep, _, _ = random_masking(3, 16, mae.cfg.num_visible, generator)
    assert mae.encode_visible(mae.normalize(images), keep).shape == (3, 1 + 4, 192)  # CLS + 25 %


def test_a_perfect_reconstruction_has_zero_loss() -> None:
    mae = MAEModel(MAEConfig(image_size=SIZE, depth=1, decoder_dim=32, decoder_heads=2))
    images = torch.rand(4, 3, SIZE, SIZE)
    target, _, _ = patch_targets(mae.normalize(images), 8)
    assert torch.allclose(target.mean(dim=-1), torch.zeros(4, 16), atol=1e-5)
    assert torch.allclose(target.std(dim=-1), torch.ones(4, 16), atol=1e-3)
    mask = torch.zeros(4, 16)
    mask[:, 4:] = 1.0
    wrong_where_visible = torch.where(mask.bool()[..., None], target, target + 5.0)
    assert masked_patch_loss(wrong_where_visible, target, mask) == 0.0
    assert masked_patch_loss(target + 0.5, target, mask) > 0.2
    uint8_images = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1)  # (B, H, W, 3)
    perfect = patch_targets(mae.normalize(mae.as_images(uint8_images)), 8)[0]
    mae.decode = lambda latent, restore: perfect
    assert mae(uint8_images).loss == 0.0


def test_reconstruction_shows_masked_input_prediction_and_original(mae_run: Path) -> None:
    mae = MAEModel.load(mae_run / "checkpoints" / "last")
    images = torch.rand(2, 3, SIZE, SIZE)
    rec = mae.reconstruct(images, torch.Generator().manual_seed(1))
    assert torch.equal(rec.original, images)
    gray = (rec.masked == 0.5).all(dim=1).float().mean()
    assert gray == pytest.approx(0.75)  # the masked patches
    visible = rec.masked != 0.5
    assert torch.equal(rec.reconstruction[visible], images[visible])
    assert rec.reconstruction.min() >= 0.0 and rec.reconstruction.max() <= 1.0


def _mae_vision(folder: Path, **more: Any) -> dict[str, Any]:
    return {
        "backbone": "vit",
        "pretrained_path": f"mae:{folder}",
        "augment": "random_shift",
        "feature_dim": 16,
        **more,
    }


def test_image_policy_uses_the_frozen_mae_encoder(
    mae_run: Path, cam_data: Path, tmp_path: Path
) -> None:
    mae_folder = tmp_path / "mae"
    shutil.copytree(mae_run / "checkpoints" / "last", mae_folder)
    keys = ["observation.state", FRONT, WRIST]
    tiny_bc = ["hidden=[32,32]", "horizon=4", "n_action_steps=2"]
    cfg = TrainConfig(
        dataset=cam_data,
        out=tmp_path / "bc",
        policy="bc",
        set=[*tiny_bc, f"vision={json.dumps(_mae_vision(mae_folder))}"],
        obs_keys=keys,
        steps=2,
        batch_size=4,
        warmup_steps=1,
        threads=1,
        progress=False,
    )
    result = train(cfg)
    mae_encoder = MAEModel.load(mae_folder).encoder_state_dict()
    policy = load_policy(result.checkpoint)
    assert policy.config.vision["frozen"] is True and policy.config.vision["vit_depth"] == 1
    for camera in ("observation_images_front", "observation_images_wrist"):
        vit = policy.obs_encoder.image_encoders[camera]
        assert not any(p.requires_grad for p in vit.backbone.parameters())
        assert any(p.requires_grad for p in vit.proj.parameters())
        trained = vit.backbone.state_dict()  # untouched by two steps of training
        assert all(torch.equal(trained[k], v) for k, v in mae_encoder.items())
    frame = DatasetReader(cam_data)[5]
    obs = {k: frame[k] for k in keys}
    policy.reset(seed=1)
    first = policy.act(obs)
    shutil.rmtree(mae_folder)  # the saved policy holds the encoder weights itself
    for folder in (result.checkpoint, policy.save(tmp_path / "saved")):
        again = load_policy(folder)
        again.reset(seed=1)
        np.testing.assert_array_equal(first, again.act(obs))


def test_finetune_trains_the_mae_encoder(mae_run: Path) -> None:
    folder = mae_run / "checkpoints" / "last"
    shapes = {"observation.state": (8,), FRONT: (3, SIZE, SIZE)}
    cfg = ObsEncoderConfig(image_keys=[FRONT], **_mae_vision(folder, finetune=True))
    assert cfg.pinned_options()["frozen"] is False
    vit = ObservationEncoder(cfg, shapes).train().image_encoders["observation_images_front"]
    assert all(p.requires_grad for p in vit.backbone.parameters()) and vit.backbone.training
    with pytest.raises(ConfigError, match="exclude each other"):
        ObsEncoderConfig(image_keys=[FRONT], **_mae_vision(folder, finetune=True, frozen=True))


def test_mae_image_or_patch_size_must_match_the_camera(mae_run: Path, tmp_path: Path) -> None:
    small = tmp_path / "mae16"
    MAEModel(MAEConfig(image_size=16, depth=1, decoder_dim=32, decoder_heads=2)).save(small)
    shapes = {"observation.state": (8,), FRONT: (3, SIZE, SIZE)}
    cfg = ObsEncoderConfig(image_keys=[FRONT], **_mae_vision(small))
    with pytest.raises(ConfigError, match=r"16×16 RGB images.*camera .*front.*32×32"):
        ObservationEncoder(cfg, shapes)
    folder = mae_run / "checkpoints" / "last"
    cropped = ObsEncoderConfig(image_keys=[FRONT], **_mae_vision(folder, augment="random_crop"))
    with pytest.raises(ConfigError, match=r"32×32.*after augment 'random_crop'"):
        ObservationEncoder(cropped, shapes)
    with pytest.raises(ConfigError, match=r"vit_patch_size=8.*vit_patch_size=16"):
        ObsEncoderConfig(image_keys=[FRONT], **_mae_vision(folder, vit_patch_size=16))
    with pytest.raises(ConfigError, match="set backbone='vit'"):
        ObsEncoderConfig(image_keys=[FRONT], **_mae_vision(folder, backbone="resnet18"))
    with pytest.raises(ConfigError, match="not an MAE checkpoint"):
        ObsEncoderConfig(image_keys=[FRONT], **_mae_vision(tmp_path / "nothing"))
