"""robolearn.data: LeRobotDataset v3.0 writing and reading, crash safety, bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robolearn.core.stats import QUANTILES
from robolearn.core.types import ConfigError
from robolearn.data import DatasetError, DatasetReader, DatasetWriter, Feature, repair_dataset

FPS = 20
H, W = 48, 64
FEATURES = {
    "observation.state": Feature("float32", (3,), names=["x", "y", "z"]),
    "observation.images.front": Feature("video", (H, W, 3)),
    "observation.images.wrist": Feature("video", (H, W, 3)),
    "observation.depth.front": Feature("depth", (H, W, 1)),
    "action": Feature("float32", (2,), names=["a0", "a1"]),
    "next.reward": Feature("float64", (1,)),
    "next.success": Feature("bool", (1,)),
}
FIXTURE = Path(__file__).parent / "fixtures" / "lerobot_v30_tiny"


def rgb(episode: int, i: int, flip: bool = False) -> np.ndarray:
    """A frame that identifies (episode, i): red 8·i, green 40·episode, a blue bar 2·(i+1) wide."""
    frame = np.zeros((H, W, 3), np.uint8)
    frame[..., 0] = 8 * i
    frame[..., 1] = 40 * episode
    frame[:, : 2 * (i + 1), 2] = 255
    return frame[:, ::-1].copy() if flip else frame


def depth(episode: int, i: int) -> np.ndarray:
    """Whole millimetres (lossless in storage), a few pixels with no reading (0)."""
    rng = np.random.default_rng(100 * episode + i)
    mm = rng.integers(100, 5000, size=(H, W, 1))
    mm[0, :5] = 0
    return (mm / 1000.0).astype(np.float32)


def frame(episode: int, i: int) -> dict[str, Any]:
    """One control tick of episode ``episode``."""
    return {
        "observation.state": np.array([episode, i, 0.25 * i], np.float32),
        "observation.images.front": rgb(episode, i),
        "observation.images.wrist": rgb(episode, i, flip=True),
        "observation.depth.front": depth(episode, i),
        "action": np.array([i, -2.0 * i], np.float32),
        "next.reward": np.float64(0.5 * i),
        "next.success": np.array([i % 3 == 0]),
    }


def record(
    root: Path,
    lengths: list[int],
    mode: str = "create",
    first: int = 0,
    tasks: list[str] | None = None,
) -> None:
    """Record episodes ``first, first + 1, ...`` of the given lengths."""
    with DatasetWriter(root, FPS, FEATURES, "toy", mode=mode) as writer:  # type: ignore[arg-type]
        for k, n in enumerate(lengths):
            episode = first + k
            writer.start_episode(tasks[k] if tasks else f"task {episode % 2}")
            for i in range(n):
                writer.add_frame(frame(episode, i))
            assert writer.save_episode() == episode


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    record(root, [12, 7])
    return root


def check_episode_intact(reader: DatasetReader, episode: int, length: int) -> None:
    """Columns and camera frames of ``episode`` are what :func:`frame` recorded."""
    assert reader.episode_length(episode) == length
    data = reader.episode(episode)
    expected = [frame(episode, i) for i in range(length)]
    np.testing.assert_array_equal(
        data["observation.state"], [f["observation.state"] for f in expected]
    )
    np.testing.assert_array_equal(data["action"], [f["action"] for f in expected])
    np.testing.assert_array_equal(data["frame_index"][:, 0], np.arange(length))
    np.testing.assert_array_equal(data["episode_index"][:, 0], episode)
    times = data["timestamp"][:, 0]
    np.testing.assert_allclose(times, np.arange(length) / FPS, atol=1e-6)
    for camera in ("observation.images.front", "observation.depth.front"):
        assert reader.frames(camera, episode, times).shape[0] == length


# ---------------------------------------------------------------------- round trip
def test_round_trip_columns(dataset: Path) -> None:
    reader = DatasetReader(dataset)
    assert (reader.num_episodes, reader.num_frames, reader.fps) == (2, 19, FPS)
    assert reader.tasks == ["task 0", "task 1"]
    for episode, length in enumerate([12, 7]):
        check_episode_intact(reader, episode, length)
        data = reader.episode(episode)
        np.testing.assert_array_equal(data["next.reward"][:, 0], 0.5 * np.arange(length))
        np.testing.assert_array_equal(data["next.success"][:, 0], np.arange(length) % 3 == 0)
        np.testing.assert_array_equal(data["task_index"][:, 0], episode % 2)
    np.testing.assert_array_equal(reader.column("index")[:, 0], np.arange(19))
    item = reader[13]  # episode 1, frame 1
    assert item["task"] == "task 1" and item["frame_index"] == 1
    np.testing.assert_array_equal(item["observation.state"], [1, 1, 0.25])
    assert item["observation.images.front"].shape == (H, W, 3)
    assert item["observation.depth.front"].shape == (H, W, 1)


def test_video_frames_are_found_by_timestamp(dataset: Path) -> None:
    reader = DatasetReader(dataset)
    order = np.array([6, 0, 11, 3, 3, 5, 10, 1])  # shuffled, a duplicate, both ends
    for camera, flip in (("observation.images.front", False), ("observation.images.wrist", True)):
        decoded = reader.frames(camera, 0, order / FPS)
        assert decoded.shape == (len(order), H, W, 3) and decoded.dtype == np.uint8
        originals = np.stack([rgb(0, i, flip) for i in range(12)]).astype(np.float64)
        for got, i in zip(decoded, order, strict=True):
            errors = np.abs(originals - got).mean(axis=(1, 2, 3))  # (12,) error to each frame
            assert errors[i] < 4.0, "lossy codec, but close to the original"
            assert int(np.argmin(errors)) == i, "frame-accurate: the nearest original is frame i"


def test_depth_is_lossless(dataset: Path) -> None:
    reader = DatasetReader(dataset)
    times = np.arange(7) / FPS
    decoded = reader.frames("observation.depth.front", 1, times[::-1])
    assert decoded.dtype == np.float32 and decoded.shape == (7, H, W, 1)
    for got, i in zip(decoded, range(6, -1, -1), strict=True):
        np.testing.assert_array_equal(got, depth(1, i))


def test_stats_match_the_recorded_values(dataset: Path) -> None:
    reader = DatasetReader(dataset)
    frames = [frame(e, i) for e, n in enumerate([12, 7]) for i in range(n)]
    stats = json.loads((dataset / "meta/stats.json").read_text())
    actions = np.stack([f["action"] for f in frames]).astype(np.float64)
    action = stats["action"]
    np.testing.assert_allclose(action["min"], actions.min(0))
    np.testing.assert_allclose(action["max"], actions.max(0))
    np.testing.assert_allclose(action["mean"], actions.mean(0))
    np.testing.assert_allclose(action["std"], actions.std(0))
    assert action["count"] == [19]
    assert set(action) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert set(stats) == {
        *FEATURES,
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    }
    front = np.stack([f["observation.images.front"] for f in frames]) / 255.0  # (N, H, W, 3)
    np.testing.assert_allclose(
        np.asarray(stats["observation.images.front"]["mean"]).ravel(), front.mean((0, 1, 2))
    )
    np.testing.assert_allclose(
        np.asarray(stats["observation.images.front"]["std"]).ravel(), front.std((0, 1, 2))
    )
    assert np.asarray(stats["observation.images.front"]["q50"]).shape == (3, 1, 1)
    depths = np.stack([f["observation.depth.front"] for f in frames]).astype(np.float64)
    np.testing.assert_allclose(
        np.asarray(stats["observation.depth.front"]["max"]).ravel(), depths.max()
    )
    np.testing.assert_allclose(
        np.asarray(stats["observation.depth.front"]["mean"]).ravel(), depths.mean()
    )
    # per-episode quantiles (episode rows) are exact
    episodes = pq.read_table(dataset / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    first = np.stack([f["action"] for f in frames[:12]]).astype(np.float64)
    for key, q in zip(["q01", "q10", "q50", "q90", "q99"], QUANTILES, strict=True):
        np.testing.assert_allclose(
            episodes[0][f"stats/action/{key}"], np.quantile(first, q, axis=0)
        )
        wrist = np.stack([f["observation.images.wrist"] for f in frames[:12]]) / 255.0
        expected = np.quantile(wrist.reshape(-1, 3), q, axis=0)
        np.testing.assert_allclose(
            np.ravel(episodes[0][f"stats/observation.images.wrist/{key}"]), expected
        )
    assert reader.stats["action"]["mean"].shape == (2,)


# ---------------------------------------------------------------------- layout
def test_layout_is_lerobot_v3(dataset: Path) -> None:
    files = {str(p.relative_to(dataset)) for p in dataset.rglob("*") if p.is_file()}
    expected = {"meta/info.json", "meta/stats.json", "meta/tasks.parquet"}
    expected.add("meta/episodes/chunk-000/file-000.parquet")
    for k in range(2):
        expected.add(f"data/chunk-000/file-{k:03d}.parquet")
        expected.update(
            f"videos/observation.images.{c}/chunk-000/file-{k:03d}.mp4" for c in ("front", "wrist")
        )
        expected.add(f"depth/observation.depth.front/chunk-000/file-{k:03d}.mkv")
    assert files == expected

    info = json.loads((dataset / "meta/info.json").read_text())
    assert (
        info["codebase_version"] == "v3.0" and info["fps"] == FPS and isinstance(info["fps"], int)
    )
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 19, 2)
    assert info["chunks_size"] == 1000 and info["splits"] == {"train": "0:2"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert (
        info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    assert list(info["features"]) == [
        *[k for k in FEATURES if k != "observation.depth.front"],
        "timestamp", "frame_index", "episode_index", "index", "task_index",
    ]  # fmt: skip
    front = info["features"]["observation.images.front"]
    assert front["shape"] == [H, W, 3] and front["names"] == ["height", "width", "channels"]
    assert front["info"]["video.codec"] == "h264" and front["info"]["video.fps"] == FPS
    assert info["features"]["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    assert "observation.depth.front" not in info["features"]  # the extension, beside it
    assert info["robolearn"]["depth_features"]["observation.depth.front"]["shape"] == [H, W, 1]

    data = pq.read_schema(dataset / "data/chunk-000/file-000.parquet")
    assert data.field("observation.state").type == pa.list_(pa.float32(), 3)
    assert data.field("next.reward").type == pa.float64()
    assert data.field("timestamp").type == pa.float32() and data.field("index").type == pa.int64()
    assert "observation.images.front" not in data.names

    episodes = pq.read_table(dataset / "meta/episodes/chunk-000/file-000.parquet")
    columns = [c for c in episodes.column_names if not c.startswith("stats/")]
    where_columns = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
    video = [
        f"videos/observation.images.{c}/{s}" for c in ("front", "wrist") for s in where_columns
    ]
    assert columns == [
        "episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
        "dataset_from_index", "dataset_to_index", *video,
        *[f"depth/observation.depth.front/{s}" for s in where_columns],
        "meta/episodes/chunk_index", "meta/episodes/file_index",
    ]  # fmt: skip
    assert episodes.schema.field("tasks").type == pa.list_(pa.string())
    row = episodes.to_pylist()[1]
    assert (row["dataset_from_index"], row["dataset_to_index"], row["length"]) == (12, 19, 7)
    assert row["videos/observation.images.front/to_timestamp"] == pytest.approx(7 / FPS)

    tasks = pq.read_table(dataset / "meta/tasks.parquet")
    pandas_meta = json.loads(tasks.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["task"]
    assert tasks.to_pylist() == [
        {"task_index": 0, "task": "task 0"},
        {"task_index": 1, "task": "task 1"},
    ]


def test_reads_a_dataset_written_by_lerobot() -> None:
    """The fixture was written by LeRobot 0.4.4: several episodes per data and video file."""
    reader = DatasetReader(FIXTURE)
    assert (reader.num_episodes, reader.num_frames, reader.fps) == (3, 15, 10)
    assert reader.tasks == ["pick", "place"]
    assert [reader[i]["task"] for i in (0, 6, 10)] == ["pick", "place", "pick"]
    for episode, length in enumerate([6, 4, 5]):
        data = reader.episode(episode)
        np.testing.assert_array_equal(
            data["observation.state"][:, :2], [[episode, i] for i in range(length)]
        )
        decoded = reader.frames("observation.images.cam", episode, data["timestamp"][:, 0])
        assert decoded.shape == (length, 32, 48, 3)
        for i, image in enumerate(decoded):
            assert abs(float(image[..., 0].mean()) - 20 * i) < 4
            assert abs(float(image[..., 1].mean()) - 60 * episode) < 4
            assert int((image[..., 2] > 128).sum(axis=1).mean()) == 4 * (i + 1)
    assert reader.stats["observation.images.cam"]["mean"].shape == (3, 1, 1)


def test_reads_lerobot_image_features() -> None:
    """LeRobot's ``image`` dtype: PNG bytes in the data parquet, lossless."""
    reader = DatasetReader(FIXTURE.with_name("lerobot_v30_tiny_images"))
    assert reader.features["observation.images.cam"].dtype == "image"
    decoded = reader.frames("observation.images.cam", 1, [0.3, 0.0])
    assert decoded.shape == (2, 32, 48, 3)
    np.testing.assert_array_equal(decoded[:, 0, 0, :2], [[60, 60], [0, 60]])
    np.testing.assert_array_equal((decoded[..., 2] > 128).sum(axis=2)[:, 0], [16, 4])
    assert reader[9]["observation.images.cam"].shape == (32, 48, 3)


# ---------------------------------------------------------------------- modes
def test_resume_continues_numbering(dataset: Path) -> None:
    record(dataset, [5], mode="resume", first=2, tasks=["task new"])
    reader = DatasetReader(dataset)
    assert reader.num_episodes == 3 and reader.tasks == ["task 0", "task 1", "task new"]
    check_episode_intact(reader, 2, 5)
    np.testing.assert_array_equal(reader.column("index")[:, 0], np.arange(24))
    assert (dataset / "data/chunk-000/file-002.parquet").is_file()
    assert (dataset / "meta/episodes/chunk-000/file-001.parquet").is_file(), (
        "resume opens a new file"
    )


def test_resume_appends_to_a_dataset_written_by_lerobot(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(FIXTURE, root)
    features = {
        "observation.state": Feature("float32", (3,)),
        "action": Feature("float32", (2,)),
        "observation.images.cam": Feature("video", (32, 48, 3)),
    }
    with DatasetWriter(root, 10, features, mode="resume") as writer:
        writer.start_episode("place")
        for i in range(3):
            image = np.full((32, 48, 3), 30 * i, np.uint8)
            state = np.array([3, i, 15 + i], np.float32)
            writer.add_frame({"observation.state": state, "action": np.zeros(2, np.float32),
                              "observation.images.cam": image})  # fmt: skip
        assert writer.save_episode() == 3
    reader = DatasetReader(root)
    assert reader.num_episodes == 4 and reader.tasks == ["pick", "place"]
    np.testing.assert_array_equal(reader.column("index")[:, 0], np.arange(18))
    assert reader[16]["task"] == "place"
    decoded = reader.frames("observation.images.cam", 3, [0.2])
    assert abs(float(decoded.mean()) - 60) < 3
    assert reader.stats["observation.state"]["count"].tolist() == [18]
    assert (root / "videos/observation.images.cam/chunk-000/file-001.mp4").is_file()


def test_existing_dataset_is_never_overwritten_by_default(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--resume.*--overwrite"):
        DatasetWriter(dataset, FPS, FEATURES)
    assert DatasetReader(dataset).num_episodes == 2
    record(dataset, [3], mode="overwrite")
    assert DatasetReader(dataset).num_episodes == 1
    other = tmp_path / "not_a_dataset"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="refusing"):
        DatasetWriter(other, FPS, FEATURES, mode="overwrite")
    assert (other / "notes.txt").is_file()
    with pytest.raises(ConfigError, match="no dataset"):
        DatasetWriter(tmp_path / "missing", FPS, FEATURES, mode="resume")


def test_resume_refuses_other_features_or_fps(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="fps"):
        DatasetWriter(dataset, 30, FEATURES, mode="resume")
    changed = {**FEATURES, "action": Feature("float32", (3,))}
    with pytest.raises(ConfigError, match="'action'"):
        DatasetWriter(dataset, FPS, changed, mode="resume")


def test_discard_episode_leaves_no_trace(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter(root, FPS, FEATURES) as writer:
        writer.start_episode("oops")
        for i in range(4):
            writer.add_frame(frame(0, i))
        assert writer.recording and writer.encoder_backlog >= 0
        writer.discard_episode()
        assert not writer.recording and writer.encoder_backlog == 0
        writer.start_episode("task 0")
        for i in range(3):
            writer.add_frame(frame(0, i))
        assert writer.save_episode() == 0
    reader = DatasetReader(root)
    assert reader.tasks == ["task 0"] and reader.num_frames == 3
    assert not (root / ".staging").exists()


def test_add_frame_names_the_bad_key(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "ds", FPS, FEATURES) as writer:
        writer.start_episode("t")
        good = frame(0, 0)
        bad_values = {
            "action": np.zeros(3, np.float32),  # wrong shape
            "next.success": np.array([1.0]),  # float into bool
            "observation.images.front": rgb(0, 0).astype(np.float32),  # not uint8
            "observation.depth.front": np.zeros((H, W, 2), np.float32),
        }
        for key, value in bad_values.items():
            with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
                writer.add_frame({**good, key: value})
        with pytest.raises(ConfigError, match=r"missing.*action"):
            writer.add_frame({k: v for k, v in good.items() if k != "action"})
        with pytest.raises(ConfigError, match=r"extra.*'task'"):
            writer.add_frame({**good, "task": "x"})
        writer.add_frame(good)
        writer.save_episode()
    assert DatasetReader(tmp_path / "ds").num_frames == 1


def test_bad_features_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="even"):
        DatasetWriter(tmp_path / "a", FPS, {"observation.images.x": Feature("video", (33, 48, 3))})
    with pytest.raises(ConfigError, match="reserved"):
        DatasetWriter(tmp_path / "b", FPS, {"timestamp": Feature("float32", (1,))})
    with pytest.raises(ConfigError, match="image"):
        DatasetWriter(tmp_path / "c", FPS, {"observation.images.d": Feature("depth", (4, 4, 1))})
    with pytest.raises(ConfigError, match="video encoder"):
        DatasetWriter(tmp_path / "d", FPS, FEATURES, video_codec="nope")


# ---------------------------------------------------------------------- bad files
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_info(root: Path, change: Any) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def _delete(rel: str) -> Any:
    return lambda root: (root / rel).unlink()


def _truncated(rel: str) -> Any:
    return lambda root: _truncate(root / rel)


def _state_shape_4(info: dict[str, Any]) -> None:
    info["features"]["observation.state"]["shape"] = [4]


DATA_0, DATA_1 = "data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
WRIST_1 = "videos/observation.images.wrist/chunk-000/file-001.mp4"
BAD_FILES = {  # damage → (how, the path the error must name)
    "truncated data parquet": (_truncated(DATA_1), DATA_1),
    "truncated episodes parquet": (_truncated(EPISODES), EPISODES),
    "garbage tasks": (lambda r: (r / "meta/tasks.parquet").write_bytes(b"x"), "meta/tasks.parquet"),
    "missing info": (_delete("meta/info.json"), "meta/info.json"),
    "truncated info": (_truncated("meta/info.json"), "meta/info.json"),
    "corrupt stats": (lambda r: (r / "meta/stats.json").write_text("{"), "meta/stats.json"),
    "missing tasks": (_delete("meta/tasks.parquet"), "meta/tasks.parquet"),
    "missing episodes": (_delete(EPISODES), "meta/episodes"),
    "missing video": (_delete(WRIST_1), WRIST_1),
    "missing data": (_delete(DATA_0), DATA_0),
    "state shape": (lambda r: _edit_info(r, _state_shape_4), DATA_0),
    "old version": (lambda r: _edit_info(r, lambda i: i.update(codebase_version="v2.1")), "info"),
}


@pytest.mark.parametrize("damage", list(BAD_FILES))
def test_damaged_files_give_one_clear_error(dataset: Path, damage: str) -> None:
    break_it, named = BAD_FILES[damage]
    break_it(dataset)
    with pytest.raises(DatasetError) as error:
        DatasetReader(dataset)
    assert named in str(error.value)


@pytest.mark.parametrize(
    "codec_file", ["videos/observation.images.front", "depth/observation.depth.front"]
)
def test_truncated_video_error_names_the_file(dataset: Path, codec_file: str) -> None:
    suffix = ".mkv" if codec_file.startswith("depth") else ".mp4"
    path = dataset / f"{codec_file}/chunk-000/file-000{suffix}"
    _truncate(path)
    reader = DatasetReader(dataset)
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        reader.frames(codec_file.split("/")[1], 0, np.arange(12) / FPS)


# ---------------------------------------------------------------------- crash safety
class Crash(BaseException):
    """Stands for the process dying: no ``except Exception`` clean-up runs."""


def _replace_calls_of_one_save(tmp_path: Path) -> list[str]:
    """The destinations of every os.replace of saving an episode with a new task."""
    root = tmp_path / "probe"
    record(root, [2])
    calls: list[str] = []
    real = os.replace

    def spy(src: Any, dst: Any) -> None:
        calls.append(str(Path(dst).relative_to(root)))
        real(src, dst)

    with pytest.MonkeyPatch.context() as mp, DatasetWriter(root, FPS, FEATURES, mode="resume") as w:
        mp.setattr(os, "replace", spy)
        w.start_episode("a new task")
        w.add_frame(frame(1, 0))
        w.save_episode()
    return calls


def test_save_replaces_files_in_the_documented_order(tmp_path: Path) -> None:
    calls = _replace_calls_of_one_save(tmp_path)
    assert calls[0] == "data/chunk-000/file-001.parquet"
    assert {c.split("/")[0] for c in calls[1:4]} == {"videos", "depth"}
    assert calls[4:] == [
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-001.parquet",  # the commit
        "meta/stats.json",
        "meta/info.json",
    ]


@pytest.mark.parametrize("step", range(8))
def test_crash_at_any_commit_step_keeps_saved_episodes(tmp_path: Path, step: int) -> None:
    root = tmp_path / "ds"
    record(root, [6, 4])
    commit_step = 5  # see test_save_replaces_files_in_the_documented_order
    real, count = os.replace, [0]

    def crashing_replace(src: Any, dst: Any) -> None:
        if count[0] == step:
            raise Crash
        count[0] += 1
        real(src, dst)

    writer = DatasetWriter(root, FPS, FEATURES, mode="resume")
    writer.start_episode("a new task")
    for i in range(5):
        writer.add_frame(frame(2, i))
    with pytest.MonkeyPatch.context() as mp, pytest.raises(Crash):
        mp.setattr(os, "replace", crashing_replace)
        writer.save_episode()
    del writer  # the process is gone: no close()

    saved = 3 if step > commit_step else 2
    reader = DatasetReader(root)
    assert reader.num_episodes == saved
    for episode, length in enumerate([6, 4, 5][:saved]):
        check_episode_intact(reader, episode, length)

    removed = repair_dataset(root) if step % 2 else []  # explicit repair, or resume's
    assert step % 2 == 0 or any(".staging" in str(p) for p in removed)
    record(root, [3], mode="resume", first=saved)
    reader = DatasetReader(root)
    assert reader.num_episodes == saved + 1
    check_episode_intact(reader, saved, 3)
    assert not (root / ".staging").exists()
    assert not list(root.rglob(".*.tmp"))
    info = json.loads((root / "meta/info.json").read_text())
    assert info["total_episodes"] == saved + 1
    files = sorted(p.name for p in (root / "data/chunk-000").iterdir())
    assert files == [f"file-{k:03d}.parquet" for k in range(saved + 1)], "no orphan data files"


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import numpy as np
import test_data_format as t
from robolearn.data import DatasetWriter

root, where = sys.argv[1], sys.argv[2]
t.record(t.Path(root), [6, 4])
real = os.replace
def replace(src, dst):
    real(src, dst)
    if where == "after_commit" and "meta/episodes" in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
writer = DatasetWriter(root, t.FPS, t.FEATURES, mode="resume")
writer.start_episode("task 0")
for i in range(5):
    writer.add_frame(t.frame(2, i))
    if where == "mid_episode" and i == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # encoder threads still busy
writer.save_episode()
"""


@pytest.mark.parametrize(("where", "saved"), [("mid_episode", 2), ("after_commit", 3)])
def test_sigkill_leaves_a_loadable_dataset(tmp_path: Path, where: str, saved: int) -> None:
    root = tmp_path / "ds"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(root), where],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    reader = DatasetReader(root)
    assert reader.num_episodes == saved
    for episode, length in enumerate([6, 4, 5][:saved]):
        check_episode_intact(reader, episode, length)
    record(root, [2], mode="resume", first=saved)
    assert DatasetReader(root).num_episodes == saved + 1


def test_reader_repairs_stale_info_in_memory(dataset: Path) -> None:
    """A crash between the commit and the info/stats rewrite: the episode rows win."""
    info_path = dataset / "meta/info.json"
    info = json.loads(info_path.read_text())
    info.update(total_episodes=1, total_frames=12)
    info_path.write_text(json.dumps(info))
    stats_path = dataset / "meta/stats.json"
    stats_path.unlink()
    reader = DatasetReader(dataset)
    assert reader.meta.stale and reader.num_episodes == 2 and reader.info["total_frames"] == 19
    assert reader.stats["action"]["count"].tolist() == [19]
    repair_dataset(dataset)
    assert json.loads(info_path.read_text())["total_episodes"] == 2
    assert json.loads(stats_path.read_text())["action"]["count"] == [19]


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    yield
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("encode-")]


def test_copy_of_dataset_is_independent(dataset: Path, tmp_path: Path) -> None:
    """Paths are relative to the root: a moved dataset still reads."""
    moved = tmp_path / "moved"
    shutil.move(str(dataset), moved)
    check_episode_intact(DatasetReader(moved), 1, 7)


def test_reads_a_dataset_written_by_lerobot_0_6() -> None:
    """tests/data/lerobot_v3_tiny was written by LeRobot 0.6.1 (AV1 video, several episodes per
    file); every frame's values and colour are listed in the .expected.json beside it."""
    root = Path(__file__).parent / "data" / "lerobot_v3_tiny"
    expected = json.loads(root.with_suffix(".expected.json").read_text())
    reader = DatasetReader(root)
    assert reader.num_episodes == expected["total_episodes"]
    assert reader.num_frames == expected["total_frames"]
    for ep in expected["episodes"]:
        k = ep["episode_index"]
        data = reader.episode(k)
        frames = ep["frames"]
        want_state = np.array([f["observation.state"] for f in frames], np.float32)
        np.testing.assert_allclose(data["observation.state"], want_state, atol=1e-6)
        times = [f["timestamp"] for f in frames]
        pixels = reader.frames("observation.images.front", k, times)  # (N, H, W, 3)
        want_rgb = np.array([f["colour"] for f in frames], np.float64)
        np.testing.assert_allclose(pixels.mean(axis=(1, 2)), want_rgb, atol=4.0)
        assert reader[reader.episode_start(k)]["task"] == ep["task"]
