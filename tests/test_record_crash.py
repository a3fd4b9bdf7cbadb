"""Crash safety: SIGKILL a recording at random moments, many times; every saved episode survives.

A real ``robolearn record`` subprocess (scripted expert, one camera) is killed at random
moments (after random amounts of its own CPU time, so that machine load does not skew them):
during start-up, mid-episode, or while an episode is being committed. After every
kill the dataset must load, keep every episode saved before, and every episode must be whole
(its rows and its video frames). The next round resumes the same dataset.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from robolearn.data import DatasetReader

ROUNDS = 8


def _record(root: Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "robolearn.cli.main",
        "record",
        "--env",
        "robolearn/FrankaReach-v0",
        "--episodes",
        "100000",
        "--out",
        str(root),
        "--cameras",
        "front",
        "--image-size",
        "32",
        "32",
        "--success-hold-ticks",
        "2",
    ]
    if (root / "meta" / "info.json").exists():
        args.append("--resume")
    env = {**os.environ, "MUJOCO_GL": "egl"}
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _wait_cpu_seconds(
    proc: subprocess.Popen[bytes], cpu_s: float, timeout_s: float = 120.0
) -> None:
    """Wait until ``proc`` has used ``cpu_s`` of CPU time (or exited): kill moments measured in
    the recorder's own progress, so a loaded machine does not push every kill into start-up."""
    ticks = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / ticks >= cpu_s:  # utime + stime
            return
        time.sleep(0.05)


def _check_whole(reader: DatasetReader) -> None:
    for k in range(reader.num_episodes):
        episode = reader.episode(k)
        n = reader.episode_length(k)
        assert n > 0 and len(episode["action"]) == n
        np.testing.assert_array_equal(episode["frame_index"].ravel(), np.arange(n))
        times = [0.0, (n - 1) / reader.fps]
        frames = reader.frames("observation.images.front", k, times)
        assert frames.shape == (2, 32, 32, 3)


def test_sigkill_at_random_moments_loses_only_the_episode_in_progress(tmp_path: Path) -> None:
    root = tmp_path / "demos"
    rng = random.Random(1234)
    saved: dict[int, np.ndarray] = {}
    for _ in range(ROUNDS):
        proc = _record(root)
        _wait_cpu_seconds(proc, rng.uniform(1.5, 6.0))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        if not (root / "meta" / "info.json").exists():
            continue  # killed before the dataset was created
        reader = DatasetReader(root)
        assert reader.num_episodes >= len(saved)
        for k, actions in saved.items():  # earlier episodes are untouched
            np.testing.assert_array_equal(reader.episode(k)["action"], actions)
        _check_whole(reader)
        saved = {k: reader.episode(k)["action"] for k in range(reader.num_episodes)}
        reader.close()
    assert len(saved) > 0
