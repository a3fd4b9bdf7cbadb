"""Dataset tools: info/stats/split/merge, replay, view, robomimic import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robolearn.cli.main import main
from robolearn.cli.replay_cmd import TOLERANCE, replay_episode
from robolearn.data import DatasetReader, DatasetWriter, Feature


def _synthetic(root: Path, episodes: int = 3, fps: float = 10.0, state_dim: int = 3) -> Path:
    feats = {
        "observation.state": Feature("float32", (state_dim,)),
        "action": Feature("float32", (2,)),
        "observation.images.front": Feature("video", (16, 16, 3)),
    }
    with DatasetWriter(root, fps, feats) as writer:
        for e in range(episodes):
            writer.start_episode(f"task {e % 2}")
            for t in range(5 + e):
                writer.add_frame(
                    {
                        "observation.state": np.full(state_dim, e + 0.1 * t, np.float32),
                        "action": np.array([e, t], np.float32),
                        "observation.images.front": np.full((16, 16, 3), 40 * e, np.uint8),
                    }
                )
            writer.save_episode()
    return root


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "ds"
    assert (
        main(
            [
                "record",
                "--env",
                "robolearn/FrankaLift-v0",
                "--episodes",
                "2",
                "--seed",
                "7",
                "--out",
                str(out),
                "--no-cameras",
            ]
        )
        == 0
    )
    return out


def test_info_and_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _synthetic(tmp_path / "a")
    assert main(["dataset", "--info", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 3 and info["frames"] == 5 + 6 + 7 and info["fps"] == 10
    assert info["features"]["observation.images.front"] == ["video", [16, 16, 3]]
    assert info["tasks"] == ["task 0", "task 1"] and info["size_bytes"] > 0
    assert main(["dataset", "info", str(root)]) == 0  # the verb spelling
    assert "observation.state" in capsys.readouterr().out
    assert main(["dataset", "stats", str(root), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["action"]["min"] == [0.0, 0.0] and stats["action"]["max"] == [2.0, 6.0]


def test_split_and_merge_roundtrip(tmp_path: Path) -> None:
    root = _synthetic(tmp_path / "a", episodes=4)
    a, b = tmp_path / "s1", tmp_path / "s2"
    assert (
        main(
            [
                "dataset",
                "--split",
                str(root),
                "--out",
                str(a),
                "--out2",
                str(b),
                "--fraction",
                "0.5",
            ]
        )
        == 0
    )
    with DatasetReader(a) as ra, DatasetReader(b) as rb:
        assert (ra.num_episodes, rb.num_episodes) == (2, 2)
        assert rb.episode(0)["action"][0, 0] == 2.0
    c = tmp_path / "m"
    assert main(["dataset", "--merge", str(b), str(a), "--out", str(c)]) == 0
    with DatasetReader(c) as rc, DatasetReader(root) as ro:
        assert rc.num_episodes == 4 and rc.num_frames == ro.num_frames
        np.testing.assert_array_equal(rc.episode(2)["action"], ro.episode(0)["action"])
        frames = rc.frames("observation.images.front", 1, [0.0])
        assert abs(int(frames.mean()) - 120) <= 3  # episode 3 of the original: 40 * 3
        assert rc.tasks and set(rc.tasks) == set(ro.tasks)


def test_split_by_episode_list(tmp_path: Path) -> None:
    root = _synthetic(tmp_path / "a", episodes=3)
    a, b = tmp_path / "s1", tmp_path / "s2"
    assert (
        main(
            ["dataset", "--split", str(root), "--out", str(a), "--out2", str(b), "--episodes", "1"]
        )
        == 0
    )
    with DatasetReader(a) as ra:
        assert ra.num_episodes == 1 and ra.episode(0)["action"][0, 0] == 1.0


def test_merge_rejects_different_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _synthetic(tmp_path / "a")
    b = _synthetic(tmp_path / "b", state_dim=4)
    assert main(["dataset", "--merge", str(a), str(b), "--out", str(tmp_path / "c")]) == 2
    assert "features differ" in capsys.readouterr().err
    c = _synthetic(tmp_path / "c2", fps=20.0)
    assert main(["dataset", "--merge", str(a), str(c), "--out", str(tmp_path / "d")]) == 2
    assert "fps" in capsys.readouterr().err


def test_dataset_needs_one_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset"]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_record_stores_each_episodes_reset_seed(recorded: Path, tmp_path: Path) -> None:
    with DatasetReader(recorded) as reader:
        assert [reader.episode_seed(e) for e in (0, 1)] == [7, 8]
    out = tmp_path / "second"
    argv = ["dataset", "split", str(recorded), "--episodes", "1", "--out", str(out)]
    assert main([*argv, "--out2", str(tmp_path / "first")]) == 0
    with DatasetReader(out) as reader:
        assert reader.num_episodes == 1 and reader.episode_seed(0) == 8, "copies keep seeds"
    with DatasetReader(_synthetic(tmp_path / "a")) as reader:
        assert reader.episode_seed(0) is None  # written without seeds


def test_replay_reproduces_recorded_states(recorded: Path) -> None:
    for episode in (0, 1):  # the stored seed and env (meta/robolearn_env.json) by default
        states, replayed = replay_episode(recorded, episode)
        assert states.shape == replayed.shape and len(states) > 5
        assert np.abs(states - replayed).max() < TOLERANCE
    assert main(["replay", str(recorded), "--episode", "1"]) == 0  # the positional spelling


def test_replay_with_wrong_seed_deviates(recorded: Path) -> None:
    assert main(["replay", "--dataset", str(recorded), "--episode", "0", "--seed", "5"]) == 1


def test_replay_needs_the_env_of_a_foreign_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _synthetic(tmp_path / "a")
    assert main(["replay", "--dataset", str(root)]) == 2
    assert "no meta/robolearn_env.json): pass --env ID" in capsys.readouterr().err


def test_view_writes_video(tmp_path: Path) -> None:
    import av

    root = _synthetic(tmp_path / "a")
    out = tmp_path / "v.mp4"
    assert main(["view", "--dataset", str(root), "--episode", "2", "--out", str(out)]) == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 7
    assert frames[0].shape[0] == 16 + 2 * 96


def test_view_state_only(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    assert main(["view", str(recorded), "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_view_logs_to_a_rerun_recording(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    root = _synthetic(tmp_path / "a")
    out = tmp_path / "episode.rrd"
    assert main(["view", str(root), "--episode", "2", "--rerun", "--out", str(out)]) == 0
    rerun_cli = shutil.which("rerun", path=str(Path(sys.executable).parent))
    assert rerun_cli is not None
    printed = subprocess.run(
        [rerun_cli, "rrd", "print", "--verbose", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "observation.state" in printed and "action" in printed


def test_import_robomimic(tmp_path: Path) -> None:
    # h5py is in the dev extra, so CI runs this; the skip only spares a bare install.
    h5py = pytest.importorskip("h5py", reason="h5py is not installed (pip install h5py)")
    path = tmp_path / "demo.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {}})
        data.attrs["total"] = 9
        for n, length in enumerate((4, 5)):
            demo = data.create_group(f"demo_{n}")
            demo.attrs["num_samples"] = length
            demo["actions"] = rng.uniform(-1, 1, (length, 7))
            demo["states"] = rng.normal(size=(length, 10))
            demo["rewards"] = np.arange(length, dtype=np.float64)
            demo["dones"] = (np.arange(length) == length - 1).astype(np.int64)
            obs = demo.create_group("obs")
            obs["robot0_eef_pos"] = rng.normal(size=(length, 3))
            obs["robot0_gripper_qpos"] = rng.normal(size=(length, 2))
            obs["object"] = rng.normal(size=(length, 10))
            obs["agentview_image"] = np.full((length, 16, 16, 3), 100, np.uint8)
    out = tmp_path / "imported"
    assert main(["dataset", "--import-robomimic", str(path), "--out", str(out)]) == 0
    with DatasetReader(out) as reader, h5py.File(path, "r") as f:
        assert reader.num_episodes == 2 and reader.num_frames == 9
        assert reader.tasks == ["Lift"]
        assert reader.features["observation.state"].shape == (5,)
        assert reader.features["observation.environment_state"].shape == (10,)
        ep = reader.episode(1)
        demo = f["data/demo_1"]
        np.testing.assert_allclose(ep["action"], demo["actions"][:], rtol=1e-6)
        np.testing.assert_allclose(
            ep["observation.state"][:, :3], demo["obs/robot0_eef_pos"][:], rtol=1e-6
        )
        assert bool(ep["next.done"][-1, 0]) and not bool(ep["next.done"][0, 0])
        image = reader.frames("observation.images.agentview", 0, [0.0])
        assert image.shape == (1, 16, 16, 3) and abs(int(image.mean()) - 100) <= 3
