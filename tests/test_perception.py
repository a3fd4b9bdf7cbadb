"""robolearn.perception: augmentation, encoders, point clouds and the observation encoder."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from robolearn.core.types import CameraIntrinsics, ConfigError
from robolearn.perception import (
    ImageAugment,
    ImageNetNormalize,
    Normalizer,
    ObsEncoderConfig,
    ObservationEncoder,
    PointNetEncoder,
    ResNet18Config,
    ResNet18Encoder,
    SpatialSoftmax,
    ViTConfig,
    ViTEncoder,
    depth_to_point_cloud,
    sample_points,
)

STATE, FRONT, WRIST, DEPTH = (
    "observation.state",
    "observation.images.front",
    "observation.images.wrist",
    "observation.depth.front",
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- augmentation


def _offset_of(window: torch.Tensor, image: torch.Tensor) -> tuple[int, int]:
    """Where ``window`` (C, h, w) lies in ``image`` (C, H, W); fails if nowhere."""
    h, w = window.shape[-2:]
    for top in range(image.shape[-2] - h + 1):
        for left in range(image.shape[-1] - w + 1):
            if torch.equal(image[:, top : top + h, left : left + w], window):
                return top, left
    raise AssertionError("the output is not a window of the input")


def test_random_crop_is_a_seeded_random_window_per_sample() -> None:
    aug = ImageAugment("random_crop", crop_ratio=0.8)
    assert aug.output_shape(20, 30) == (16, 24)
    images = torch.rand(1, 3, 20, 30).expand(8, 3, 20, 30)  # one image, eight samples
    out = aug.train()(images, generator=_gen(1))
    assert out.shape == (8, 3, 16, 24)
    offsets = {_offset_of(out[i], images[i]) for i in range(8)}
    assert len(offsets) > 1  # each sample draws its own crop
    assert torch.equal(aug(images, generator=_gen(1)), out)  # same seed, same crops
    assert not torch.equal(aug(images, generator=_gen(2)), out)


def test_eval_crop_is_the_centre_crop() -> None:
    aug = ImageAugment("random_crop", crop_ratio=0.95).eval()
    images = torch.rand(2, 3, 96, 96)
    out_h, out_w = aug.output_shape(96, 96)
    assert (out_h, out_w) == (91, 91)
    out = aug(images)
    assert torch.equal(out, images[:, :, 2:93, 2:93])
    assert torch.equal(aug(images), out)


def test_random_shift_pads_and_crops_back() -> None:
    aug = ImageAugment("random_shift", shift_pad_px=2)
    images = torch.rand(6, 3, 12, 12)
    out = aug.train()(images, generator=_gen(0))
    assert out.shape == images.shape
    padded = nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    shifts = {_offset_of(out[i], padded[i]) for i in range(6)}
    assert all(0 <= t <= 4 and 0 <= s <= 4 for t, s in shifts) and len(shifts) > 1
    assert torch.equal(aug.eval()(images), images)
    assert torch.equal(ImageAugment("none").train()(images), images)


def test_augment_accepts_time_dims_and_rejects_bad_modes() -> None:
    out = ImageAugment("random_crop", 0.5)(torch.rand(2, 3, 3, 8, 8), generator=_gen())
    assert out.shape == (2, 3, 3, 4, 4)
    with pytest.raises(ConfigError, match="augment mode"):
        ImageAugment("flip")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="crop_ratio"):
        ImageAugment("random_crop", crop_ratio=1.5)


# ---------------------------------------------------------------- spatial softmax


def test_spatial_softmax_finds_a_bright_pixel() -> None:
    head = SpatialSoftmax(1, 8, 16, num_keypoints=None, temperature=0.01)
    features = torch.zeros(1, 1, 8, 16)
    features[0, 0, 3, 10] = 1.0  # row 3, column 10
    x, y = head(features)[0].tolist()
    assert x == pytest.approx(-1 + 2 * 10 / 15, abs=1e-3)
    assert y == pytest.approx(-1 + 2 * 3 / 7, abs=1e-3)


def test_spatial_softmax_keypoints_through_the_conv() -> None:
    head = SpatialSoftmax(2, 5, 5, num_keypoints=2, temperature=0.05)
    with torch.no_grad():  # keypoint k looks at channel k only
        head.keypoint_conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        head.keypoint_conv.bias.zero_()
    features = torch.zeros(3, 2, 5, 5)
    features[:, 0, 0, 4] = 1.0  # top right
    features[:, 1, 4, 0] = 1.0  # bottom left
    out = head(features)
    assert out.shape == (3, 4)
    assert torch.allclose(out, torch.tensor([1.0, -1.0, -1.0, 1.0]).expand(3, 4), atol=1e-3)
    out.sum().backward()
    assert head.log_temperature.grad is not None  # the temperature learns


# ---------------------------------------------------------------- ResNet-18


@pytest.mark.parametrize(
    ("pool", "image_shape"), [("spatial_softmax", (3, 64, 64)), ("avg", (3, 48, 80))]
)
def test_resnet_shapes(pool: str, image_shape: tuple[int, int, int]) -> None:
    enc = ResNet18Encoder(ResNet18Config(image_shape=image_shape, feature_dim=16, pool=pool))  # type: ignore[arg-type]
    images = torch.rand(2, *image_shape)
    assert enc(images).shape == (2, 16) and enc.out_dim == 16
    assert enc.feature_map(images).shape == (2, *enc.feature_map_shape)
    with pytest.raises(ConfigError, match="built for"):
        enc(torch.rand(2, 3, 32, 32))


def test_group_norm_replaces_every_batchnorm() -> None:
    enc = ResNet18Encoder(ResNet18Config(image_shape=(3, 32, 32)))
    norms = [m for m in enc.modules() if isinstance(m, nn.GroupNorm)]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in enc.modules())
    assert len(norms) == 20  # bn1 + 2 per basic block × 8 + 3 downsample
    assert all(m.num_groups == m.num_channels // 16 for m in norms)
    bn = ResNet18Encoder(ResNet18Config(image_shape=(3, 32, 32), use_group_norm=False))
    assert any(isinstance(m, nn.BatchNorm2d) for m in bn.modules())


def test_frozen_resnet_trains_only_its_head() -> None:
    cfg = ResNet18Config(image_shape=(3, 32, 32), feature_dim=8, use_group_norm=False, frozen=True)
    enc = ResNet18Encoder(cfg).train()
    assert not enc.backbone.training and enc.proj.training  # BatchNorm keeps its statistics
    stats = enc.backbone.bn1.running_mean.clone()
    enc(torch.rand(4, 3, 32, 32)).pow(2).sum().backward()
    assert torch.equal(enc.backbone.bn1.running_mean, stats)
    assert all(p.grad is None and not p.requires_grad for p in enc.backbone.parameters())
    assert enc.proj.weight.grad is not None and enc.pool.keypoint_conv.weight.grad is not None


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_resnet_loads_pretrained_weights_from_a_local_file(tmp_path: Path, suffix: str) -> None:
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    state = resnet18(weights=None).state_dict()  # random init, with fc.*
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    cfg = ResNet18Config(image_shape=(3, 32, 32), pretrained_path=str(path), use_group_norm=False)
    enc = ResNet18Encoder(cfg)
    assert torch.equal(enc.backbone.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    assert torch.equal(enc.backbone.conv1.weight, state["conv1.weight"])


def test_pretrained_weights_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(ConfigError, match=r"nowhere\.pth.*not found"):
        ResNet18Encoder(ResNet18Config(pretrained_path=str(missing), use_group_norm=False))
    with pytest.raises(ConfigError, match="use_group_norm"):
        ResNet18Config(pretrained_path=str(missing))  # would drop the BatchNorm statistics
    foreign = tmp_path / "foreign.pt"
    torch.save(nn.Linear(3, 4).state_dict(), foreign)
    with pytest.raises(ConfigError, match=r"foreign\.pt.*do not fit.*missing"):
        ResNet18Encoder(ResNet18Config(pretrained_path=str(foreign), use_group_norm=False))


def test_imagenet_normalization_happens_inside() -> None:
    plain = ResNet18Encoder(ResNet18Config(image_shape=(3, 32, 32), imagenet_norm=False)).eval()
    normed = ResNet18Encoder(ResNet18Config(image_shape=(3, 32, 32))).eval()
    normed.load_state_dict(plain.state_dict())
    images = torch.rand(2, 3, 32, 32)
    manual = (images - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    assert torch.allclose(normed(images), plain(manual), atol=1e-5)


# ---------------------------------------------------------------- ViT


@pytest.mark.parametrize(("pool", "side"), [("cls", 64), ("mean", 61)])
def test_vit_shapes(pool: str, side: int) -> None:
    cfg = ViTConfig(image_shape=(3, side, side), feature_dim=16, depth=1, pool=pool)  # type: ignore[arg-type]
    enc = ViTEncoder(cfg)
    assert enc.patch_size == 8 and enc.out_dim == 16
    assert enc(torch.rand(2, 3, side, side)).shape == (2, 16)
    assert enc.tokens(torch.rand(1, 3, side, side)).shape == (1, 1 + 64, 192)  # padded to 64


def test_frozen_vit_trains_only_its_projection() -> None:
    enc = ViTEncoder(ViTConfig(image_shape=(3, 32, 32), feature_dim=8, depth=1, frozen=True))
    enc.train()
    enc(torch.rand(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in enc.backbone.parameters())
    assert not enc.backbone.training and enc.proj.weight.grad is not None


def test_vit_loads_a_local_timm_checkpoint(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1)  # 224 px, /16
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    cfg = ViTConfig(image_shape=(3, 32, 32), depth=1, pretrained_path=str(path))
    enc = ViTEncoder(cfg)  # position and patch embeddings resampled to 32 px, /8
    qkv = "blocks.0.attn.qkv.weight"
    assert torch.equal(enc.backbone.state_dict()[qkv], source.state_dict()[qkv])
    assert enc(torch.rand(1, 3, 32, 32)).shape == (1, 64)
    with pytest.raises(ConfigError, match="not found"):
        ViTEncoder(dataclasses.replace(cfg, pretrained_path=str(tmp_path / "gone.pth")))
    with pytest.raises(ConfigError, match="no_such_vit"):
        ViTEncoder(ViTConfig(name="no_such_vit"))


# ---------------------------------------------------------------- point clouds


def test_depth_of_a_plane_back_projects_like_a_pinhole() -> None:
    depth = np.full((4, 6), 2.0, dtype=np.float32)  # a wall 2 m in front of the camera
    intrinsics = CameraIntrinsics(width=6, height=4, fx=10.0, fy=20.0, cx=2.5, cy=1.5)
    points, valid = depth_to_point_cloud(depth, intrinsics)
    assert isinstance(points, np.ndarray) and points.shape == (24, 3) and valid.all()
    assert points[0] == pytest.approx(
        [(0 - 2.5) * 2 / 10, (0 - 1.5) * 2 / 20, 2.0]
    )  # (u, v) = (0, 0)
    assert points[3 * 6 + 5] == pytest.approx([(5 - 2.5) * 0.2, (3 - 1.5) * 0.1, 2.0])  # (5, 3)
    expected = [[(u - 2.5) * 0.2, (v - 1.5) * 0.1, 2.0] for v in range(4) for u in range(6)]
    assert np.allclose(points, expected)
    torch_points, _ = depth_to_point_cloud(torch.from_numpy(depth), (10.0, 20.0, 2.5, 1.5))
    assert np.allclose(torch_points.numpy(), expected)


def test_invalid_depth_is_masked() -> None:
    depth = torch.full((2, 2, 3), 1.0)
    depth[0, 0, 0], depth[0, 0, 1], depth[0, 1, 2] = 0.0, float("nan"), float("inf")
    depth[1, 1, 1] = 5.0  # beyond max_depth_m
    points, valid = depth_to_point_cloud(depth, (1.0, 1.0, 1.0, 0.5), max_depth_m=3.0)
    assert points.shape == (2, 6, 3)
    assert valid.tolist() == [[False, False, True, True, True, False], [True] * 4 + [False, True]]
    assert torch.all(points[~valid] == 0) and torch.isfinite(points).all()


def test_point_cloud_stride_and_resized_intrinsics() -> None:
    intrinsics = CameraIntrinsics(width=8, height=6, fx=8.0, fy=8.0, cx=3.5, cy=2.5)
    depth = torch.ones(3, 4)  # the 8×6 camera's image at half resolution
    points, _ = depth_to_point_cloud(depth, intrinsics)
    assert points[0].tolist() == pytest.approx([(0 - 1.5) / 4, (0 - 1.0) / 4, 1.0])
    strided, _ = depth_to_point_cloud(torch.ones(2, 7, 9), (1.0, 1.0, 0.0, 0.0), stride=2)
    assert strided.shape == (2, 4 * 5, 3) and strided[0, 1].tolist() == [2.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="aspect ratio"):
        depth_to_point_cloud(torch.ones(6, 6), intrinsics)


def test_sample_points_fixed_size_valid_only_and_seeded() -> None:
    points = torch.arange(2 * 10 * 3, dtype=torch.float32).view(2, 10, 3)
    valid = torch.ones(2, 10, dtype=torch.bool)
    valid[0, ::2] = False  # 5 valid in cloud 0
    valid[1, 3:] = False  # 3 valid in cloud 1
    sampled, mask = sample_points(points, 4, _gen(0), valid)
    assert sampled.shape == (2, 4, 3) and mask.sum(dim=1).tolist() == [4, 3]
    for b in range(2):
        allowed = {tuple(p) for p in points[b][valid[b]].tolist()}
        drawn = [tuple(p) for p in sampled[b][mask[b]].tolist()]
        assert set(drawn) <= allowed and len(set(drawn)) == len(drawn)  # no repeats
    assert torch.all(sampled[1][~mask[1]] == 0)
    assert torch.equal(sample_points(points, 4, _gen(0), valid)[0], sampled)
    padded, pad_mask = sample_points(points[:, :2], 5, _gen(0))
    assert padded.shape == (2, 5, 3) and pad_mask.sum().item() == 4


def test_pointnet_is_permutation_invariant_and_respects_the_mask() -> None:
    net = PointNetEncoder(in_dim=3, feature_dim=32, hidden=(16, 32))
    points = torch.randn(3, 50, 3)
    out = net(points)
    assert out.shape == (3, 32)
    assert torch.allclose(net(points[:, torch.randperm(50)]), out, atol=1e-6)
    junk = torch.cat([points, 100 * torch.randn(3, 7, 3)], dim=1)  # padding with junk
    mask = torch.cat([torch.ones(3, 50), torch.zeros(3, 7)], dim=1).bool()
    assert torch.allclose(net(junk, mask), out, atol=1e-6)
    empty = net(points, torch.zeros(3, 50, dtype=torch.bool))
    assert torch.allclose(empty, net.proj.bias.expand(3, 32))


# ---------------------------------------------------------------- observation encoder

SHAPES = {STATE: (5,), FRONT: (3, 64, 64), WRIST: (3, 64, 64), DEPTH: (1, 32, 32)}


def _batch(*lead: int) -> dict[str, torch.Tensor]:
    depth = 0.5 + torch.rand(*lead, 1, 32, 32)
    depth[..., 0, :4] = 0.0  # a few holes
    return {
        STATE: torch.randn(*lead, 5),
        FRONT: torch.rand(*lead, 3, 64, 64),
        WRIST: torch.rand(*lead, 3, 64, 64),
        DEPTH: depth,
        "action": torch.zeros(*lead, 7),  # other keys are ignored
    }


def _two_cameras(**overrides: Any) -> ObsEncoderConfig:
    cfg = ObsEncoderConfig(
        state_keys=[STATE], image_keys=[FRONT, WRIST], feature_dim=16, spatial_softmax_keypoints=8
    )
    return dataclasses.replace(cfg, **overrides)


def test_observation_encoder_fuses_two_cameras_and_state() -> None:
    enc = ObservationEncoder(_two_cameras(), SHAPES)
    assert enc.out_dim == 2 * 16 + 5 and set(enc.image_encoders) == {
        "observation_images_front",
        "observation_images_wrist",
    }
    batch = _batch(2, 3)  # (B, T, ...)
    out = enc(batch, generator=_gen())
    assert out.shape == (2, 3, 37)
    assert torch.equal(out[..., 32:], batch[STATE])  # state appended as given
    out.sum().backward()
    for camera in enc.image_encoders.values():
        assert camera.proj.weight.grad is not None and camera.backbone.conv1.weight.grad is not None
    single = {k: v[:, 0] for k, v in batch.items()}
    assert enc(single, generator=_gen()).shape == (2, 37)  # (B, ...)


def test_time_is_folded_into_the_batch_and_unfolded() -> None:
    enc = ObservationEncoder(_two_cameras(), SHAPES).eval()
    batch = _batch(2, 3)
    with torch.no_grad():
        out = enc(batch)
        for t in range(3):
            per_step = enc({k: v[:, t] for k, v in batch.items()})
            assert torch.allclose(out[:, t], per_step, atol=1e-5)


def test_shared_encoder_and_vit_backbone() -> None:
    cfg = _two_cameras(backbone="vit", vit_depth=1, share_image_encoder=True, augment="none")
    enc = ObservationEncoder(cfg, SHAPES)
    assert list(enc.image_encoders) == ["shared"]
    assert isinstance(enc.image_encoders["shared"].normalize, ImageNetNormalize)
    batch = _batch(2)
    out = enc(batch)
    assert out.shape == (2, 37)
    alone = enc.image_encoders["shared"](batch[WRIST])
    assert torch.allclose(out[:, 16:32], alone, atol=1e-5)
    with pytest.raises(ConfigError, match="share_image_encoder"):
        ObservationEncoder(cfg, {**SHAPES, WRIST: (3, 32, 32)})


def test_depth_cameras_become_point_cloud_features() -> None:
    cfg = ObsEncoderConfig(
        state_keys=[STATE],
        depth_keys=[DEPTH],
        intrinsics={DEPTH: [64.0, 64.0, 31.5, 31.5, 64, 64]},  # a 64 px camera seen at 32 px
        feature_dim=8,
        num_points=64,
        max_depth_m=1.2,
    )
    enc = ObservationEncoder(cfg, SHAPES)
    batch = _batch(2, 2)
    with pytest.raises(ConfigError, match="depth must be float metres"):
        enc({**batch, DEPTH: (batch[DEPTH] * 1000).to(torch.int32)})
    out = enc.train()(batch, generator=_gen(0))
    assert out.shape == (2, 2, 8 + 5)
    assert torch.equal(enc(batch, generator=_gen(0)), out)
    assert not torch.equal(enc(batch, generator=_gen(1)), out)
    enc.eval()
    assert torch.equal(enc(batch), enc(batch))  # fixed sampling seed at inference


def test_observation_encoder_key_errors() -> None:
    enc = ObservationEncoder(_two_cameras(), SHAPES)
    batch = _batch(2)
    del batch[WRIST]
    with pytest.raises(ConfigError, match=r"'observation\.images\.wrist' is missing; present: \["):
        enc(batch)
    with pytest.raises(ConfigError, match=re.escape(f"{WRIST!r} is missing; present: [")):
        ObservationEncoder(_two_cameras(), {STATE: (5,), FRONT: (3, 64, 64)})
    uint8 = _batch(2)
    uint8[FRONT] = (uint8[FRONT] * 255).to(torch.uint8)
    with pytest.raises(ConfigError, match="float in"):
        enc(uint8)
    bad = _batch(2)
    bad[STATE] = torch.zeros(2, 3, 6)
    with pytest.raises(ConfigError, match=re.escape(f"batch[{STATE!r}] has shape (2, 3, 6)")):
        enc(bad)
    with pytest.raises(ConfigError, match="intrinsics"):
        ObsEncoderConfig(depth_keys=[DEPTH])


def test_configs_round_trip_through_json() -> None:
    cfg = ObsEncoderConfig(
        state_keys=[STATE],
        image_keys=[FRONT],
        depth_keys=[DEPTH],
        intrinsics={DEPTH: [60.0, 60.0, 31.5, 31.5, 64.0, 64.0]},
        backbone="vit",
        augment="random_shift",
        max_depth_m=2.0,
    )
    for config in (cfg, ResNet18Config(image_shape=(3, 84, 84)), ViTConfig(patch_size=16)):
        restored = type(config).from_dict(json.loads(json.dumps(dataclasses.asdict(config))))
        assert restored == config
    with pytest.raises(ConfigError, match=r"unknown keys \['colour'\]"):
        ObsEncoderConfig.from_dict({**dataclasses.asdict(cfg), "colour": "red"})


def test_normalizer_is_reexported() -> None:
    from robolearn.perception.normalize import Normalizer as Original

    assert Normalizer is Original
    norm = Normalizer({STATE: {"min": np.zeros(5), "max": 2 * np.ones(5)}}, {STATE: "min_max"})
    assert torch.allclose(norm.normalize(STATE, torch.ones(5)), torch.zeros(5))
    assert math.isclose(float(norm.normalize(STATE, 2 * torch.ones(5))[0]), 1.0)
