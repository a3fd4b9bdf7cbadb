"""robolearn.data.torch_dataset and robolearn.perception.normalize: windows, padding,
normalization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robolearn.core.types import ConfigError
from robolearn.data import DatasetReader, DatasetWriter, Feature
from robolearn.data.torch_dataset import WindowedDataset
from robolearn.perception.normalize import Normalizer

FPS = 10
H, W = 16, 24
LENGTHS = [6, 9]
FEATURES = {
    "observation.state": Feature("float32", (2,)),
    "observation.images.front": Feature("video", (H, W, 3)),
    "observation.depth.front": Feature("depth", (H, W, 1)),
    "action": Feature("float32", (3,)),
}


def state(episode: int, i: int) -> np.ndarray:
    return np.array([episode, i], np.float32)


def action(episode: int, i: int) -> np.ndarray:
    return np.array([i, 10 * episode + i, 7.0], np.float32)  # last entry constant


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> DatasetReader:
    root = tmp_path_factory.mktemp("windows") / "ds"
    with DatasetWriter(root, FPS, FEATURES) as writer:
        for episode, length in enumerate(LENGTHS):
            writer.start_episode(f"task {episode}")
            for i in range(length):
                image = np.zeros((H, W, 3), np.uint8)
                image[..., 0] = 20 * i  # the frame index, readable after lossy coding
                writer.add_frame(
                    {
                        "observation.state": state(episode, i),
                        "observation.images.front": image,
                        "observation.depth.front": np.full((H, W, 1), 0.5 + 0.01 * i, np.float32),
                        "action": action(episode, i),
                    }
                )
            writer.save_episode()
    return DatasetReader(root)


def raw(reader: DatasetReader, **kwargs: object) -> WindowedDataset:
    return WindowedDataset(reader, ["observation.state"], normalize=False, **kwargs)  # type: ignore[arg-type]


def test_length_and_episode_subset(reader: DatasetReader) -> None:
    assert len(raw(reader)) == sum(LENGTHS)
    subset = raw(reader, episodes=[1])
    assert len(subset) == 9 and int(subset[0]["episode_index"]) == 1


def test_window_at_episode_start_repeats_the_first_frame(reader: DatasetReader) -> None:
    data = raw(reader, n_obs_steps=3, horizon=4)
    sample = data[LENGTHS[0]]  # episode 1, frame 0
    assert int(sample["episode_index"]) == 1 and int(sample["frame_index"]) == 0
    np.testing.assert_array_equal(sample["observation.state"], [state(1, 0)] * 3)
    assert sample["observation.state_is_pad"].tolist() == [True, True, False]
    np.testing.assert_array_equal(sample["action"], [action(1, i) for i in range(4)])
    assert sample["action_is_pad"].tolist() == [False] * 4
    assert sample["task"] == "task 1"


def test_window_at_episode_end_repeats_the_last_action(reader: DatasetReader) -> None:
    data = raw(reader, n_obs_steps=2, horizon=5)
    sample = data[4]  # episode 0 (6 frames), frame 4
    np.testing.assert_array_equal(sample["observation.state"], [state(0, 3), state(0, 4)])
    assert sample["observation.state_is_pad"].tolist() == [False, False]
    np.testing.assert_array_equal(sample["action"], [action(0, i) for i in (4, 5, 5, 5, 5)])
    assert sample["action_is_pad"].tolist() == [False, False, True, True, True]


def test_action_offset_pads_both_edges(reader: DatasetReader) -> None:
    data = raw(reader, n_obs_steps=2, horizon=8, action_offset=-1)  # Diffusion Policy layout
    sample = data[0]  # episode 0 frame 0: actions -1 … 6 of a 6-frame episode
    assert sample["action_is_pad"].tolist() == [
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    np.testing.assert_array_equal(sample["action"][:, 0], [0, 0, 1, 2, 3, 4, 5, 5])


def test_camera_windows(reader: DatasetReader) -> None:
    cameras = ["observation.images.front", "observation.depth.front"]
    data = raw(reader, n_obs_steps=3, image_keys=cameras)
    sample = data[1]  # episode 0, frame 1: frames 0, 0, 1
    front = sample["observation.images.front"]
    assert front.shape == (3, 3, H, W) and front.dtype == torch.float32
    np.testing.assert_allclose(front[:, 0].mean(dim=(1, 2)) * 255, [0, 0, 20], atol=3)
    assert sample["observation.images.front_is_pad"].tolist() == [True, False, False]
    depth = sample["observation.depth.front"]
    assert depth.shape == (3, 1, H, W)
    np.testing.assert_array_equal(depth[:, 0, 0, 0], np.array([0.5, 0.5, 0.51], np.float32))


def test_normalization_from_dataset_stats(reader: DatasetReader) -> None:
    data = WindowedDataset(reader, ["observation.state"], n_obs_steps=1, horizon=1)
    actions = np.concatenate([[action(e, i) for i in range(n)] for e, n in enumerate(LENGTHS)])
    low, high = actions.min(0), actions.max(0)
    for index in range(len(data)):
        sample = data[index]
        expected = 2 * (actions[index] - low) / np.where(high > low, high - low, 1) - 1
        expected[2] = 0.0  # a constant entry maps to 0
        np.testing.assert_allclose(sample["action"][0], expected, atol=1e-6)
    assert data.normalizer is not None
    back = data.normalizer.unnormalize("action", data[3]["action"])
    np.testing.assert_allclose(back[0], actions[3], atol=1e-5)


def test_normalizer_modes_and_state_dict() -> None:
    stats = {
        "x": {"min": np.array([0.0, -2.0]), "max": np.array([4.0, 2.0]),
              "mean": np.array([1.0, 0.0]), "std": np.array([2.0, 0.5])},
        "img": {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.25)},
    }  # fmt: skip
    x = torch.tensor([[0.0, -2.0], [4.0, 2.0], [2.0, 0.0]])
    assert torch.allclose(Normalizer(stats, {"x": "min_max"}).normalize("x", x), torch.tensor(
        [[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))  # fmt: skip
    mean_std = Normalizer(stats, {"x": "mean_std", "img": "mean_std"})
    assert torch.allclose(mean_std.normalize("x", x)[2], torch.tensor([0.5, 0.0]))
    images = torch.full((2, 3, 4, 4), 0.75)  # (T, C, H, W)
    assert torch.allclose(mean_std.normalize("img", images), torch.ones_like(images))
    assert torch.equal(Normalizer(stats, {"x": "identity"}).normalize("x", x), x)
    loaded = Normalizer.placeholder(
        {"x": (2,), "img": (3, 1, 1)}, {"x": "mean_std", "img": "mean_std"}
    )
    loaded.load_state_dict(mean_std.state_dict())
    assert torch.allclose(loaded.unnormalize("x", loaded.normalize("x", x)), x)
    with pytest.raises(ConfigError, match="'y'"):
        Normalizer(stats, {"y": "min_max"})
    with pytest.raises(ConfigError, match="mode"):
        Normalizer(stats, {"x": "bogus"})  # type: ignore[dict-item]


def test_bad_keys_are_named(reader: DatasetReader) -> None:
    with pytest.raises(ConfigError, match=r"'observation\.nope'"):
        WindowedDataset(reader, ["observation.nope"])
    with pytest.raises(ConfigError, match=r"'observation\.images\.back'"):
        WindowedDataset(reader, ["observation.state"], image_keys=["observation.images.back"])


def test_dataloader_workers_decode_independently(reader: DatasetReader) -> None:
    data = raw(reader, n_obs_steps=2, horizon=3, image_keys=["observation.images.front"])
    data[0]  # the parent process opens decoders before forking
    loader = torch.utils.data.DataLoader(data, batch_size=5, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["action"]) for b in batches) == len(data)
    assert batches[0]["observation.images.front"].shape == (5, 2, 3, H, W)
    frame_index = torch.cat([b["frame_index"] for b in batches])
    red = torch.cat([b["observation.images.front"][:, -1, 0].mean(dim=(1, 2)) for b in batches])
    torch.testing.assert_close(red * 255, frame_index.float() * 20, atol=3, rtol=0)


def test_reader_pickles_for_spawned_workers(reader: DatasetReader, tmp_path: Path) -> None:
    import pickle

    reader.frames("observation.images.front", 0, [0.0])
    clone = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(
        clone.frames("observation.images.front", 1, [0.3]),
        reader.frames("observation.images.front", 1, [0.3]),
    )


def test_decoded_episode_cache_matches_window_decoding(reader: DatasetReader) -> None:
    """Small datasets keep decoded episodes; the frames equal per-window decoding exactly."""
    uncached = DatasetReader(reader.root, frame_cache_mb=0)
    tiny = DatasetReader(reader.root, frame_cache_mb=reader.decoded_bytes() / 2e6)
    cached = DatasetReader(reader.root)
    rng = np.random.default_rng(0)
    for _ in range(20):
        episode = int(rng.integers(len(LENGTHS)))
        times = rng.integers(LENGTHS[episode], size=3) / FPS
        for key in ("observation.images.front", "observation.depth.front"):
            expected = uncached.frames(key, episode, times)
            np.testing.assert_array_equal(cached.frames(key, episode, times), expected)
            np.testing.assert_array_equal(tiny.frames(key, episode, times), expected)
    assert cached._episode_frames.nbytes == reader.decoded_bytes(), "every episode kept"
    assert uncached._episode_frames.nbytes == 0 and tiny._episode_frames.nbytes == 0, (
        "a dataset that does not fit as a whole is decoded per window"
    )
    kept = cached.frames("observation.images.front", 1, [0.3])
    kept[...] = 0  # callers get copies: the cache is not written through them
    assert cached.frames("observation.images.front", 1, [0.3]).max() > 0
    for r in (uncached, tiny, cached):
        r.close()
