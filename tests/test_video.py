"""robolearn.data.video: mp4 writing through real PyAV, and frame tiling."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from robolearn.core.types import ConfigError
from robolearn.data.video import VideoWriter, pad_to_even, tile_frames


def _frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """Flat grey frames, a different shade each: (H, W, 3) uint8."""
    return [np.full((height, width, 3), 20 + 10 * i, np.uint8) for i in range(count)]


def _decode(path: Path) -> tuple[list[np.ndarray], str, float]:
    """All frames as RGB arrays, the codec name and the average frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        return frames, stream.codec_context.name, rate


@pytest.mark.parametrize(("height", "width"), [(32, 48), (33, 47)])
def test_written_frames_decode_back(tmp_path: Path, height: int, width: int) -> None:
    path = tmp_path / "sub" / "clip.mp4"
    with VideoWriter(path, fps=20) as video:
        for frame in _frames(7, height, width):
            video.write(frame)
    assert video.frames_written == 7 and video.closed
    decoded, codec, rate = _decode(path)
    assert len(decoded) == 7
    assert codec == "h264"
    assert rate == pytest.approx(20.0)
    assert decoded[0].shape == (height + height % 2, width + width % 2, 3)  # padded to even
    for i, frame in enumerate(decoded):
        shade = frame[: height - 1, : width - 1].astype(float).mean()
        assert shade == pytest.approx(20 + 10 * i, abs=3)  # lossy, but close


def test_codec_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=10, codec="mpeg4") as video:
        for frame in _frames(3, 16, 16):
            video.write(frame)
    decoded, codec, _ = _decode(path)
    assert (len(decoded), codec) == (3, "mpeg4")


@pytest.mark.parametrize("codec", ["no-such-codec", "aac"])
def test_unknown_or_non_video_codec_is_rejected(tmp_path: Path, codec: str) -> None:
    with pytest.raises(ConfigError, match="not a video encoder"):
        VideoWriter(tmp_path / "clip.mp4", codec=codec)
    assert not (tmp_path / "clip.mp4").exists()


def test_frame_size_must_not_change(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "clip.mp4") as video:
        video.write(_frames(1, 16, 16)[0])
        with pytest.raises(ConfigError, match=r"frame 1 has size \(16, 18\)"):
            video.write(_frames(1, 16, 18)[0])
    decoded, _, _ = _decode(tmp_path / "clip.mp4")
    assert len(decoded) == 1


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((8, 8, 3), np.float32),
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        np.zeros((0, 8, 3), np.uint8),
    ],
)
def test_bad_frames_are_rejected(tmp_path: Path, frame: np.ndarray) -> None:
    with VideoWriter(tmp_path / "clip.mp4") as video, pytest.raises(ConfigError):
        video.write(frame)


def test_no_frames_leaves_no_file(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "clip.mp4"):
        pass
    assert not (tmp_path / "clip.mp4").exists()


def test_write_after_close_fails(tmp_path: Path) -> None:
    video = VideoWriter(tmp_path / "clip.mp4")
    video.write(_frames(1, 8, 8)[0])
    video.close()
    video.close()  # idempotent
    with pytest.raises(ConfigError, match="closed"):
        video.write(_frames(1, 8, 8)[0])


def test_file_is_finished_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "clip.mp4") as video:
        for frame in _frames(4, 8, 8):
            video.write(frame)
        raise RuntimeError("episode crashed")
    assert len(_decode(tmp_path / "clip.mp4")[0]) == 4


def test_tile_frames_pads_to_the_tallest() -> None:
    left = np.full((2, 3, 3), 10, np.uint8)
    right = np.full((4, 1, 3), 200, np.uint8)
    tiled = tile_frames([left, right])
    assert tiled.shape == (4, 4, 3) and tiled.dtype == np.uint8
    assert (tiled[:2, :3] == 10).all()
    assert (tiled[2:, :3] == 0).all()  # padding below the short image
    assert (tiled[:, 3:] == 200).all()


def test_tile_frames_single_and_pad_value() -> None:
    img = np.ones((3, 2, 3), np.uint8)
    assert np.array_equal(tile_frames([img]), img)
    tiled = tile_frames([img, np.ones((5, 2, 3), np.uint8)], pad_value=255)
    assert (tiled[3:, :2] == 255).all()


def test_tile_frames_rejects_empty_and_bad_input() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        tile_frames([])
    with pytest.raises(ConfigError, match="uint8"):
        tile_frames([np.zeros((2, 2, 3), np.float64)])


def test_tiled_odd_frames_write(tmp_path: Path) -> None:
    path = tmp_path / "tiled.mp4"
    with VideoWriter(path, fps=5) as video:
        for _ in range(3):
            video.write(
                tile_frames([np.zeros((15, 21, 3), np.uint8), np.zeros((9, 11, 3), np.uint8)])
            )
    decoded, _, _ = _decode(path)
    assert len(decoded) == 3 and decoded[0].shape == (16, 32, 3)


def test_pad_to_even() -> None:
    assert pad_to_even(np.zeros((3, 5, 3), np.uint8)).shape == (4, 6, 3)
    even = np.zeros((4, 6, 3), np.uint8)
    assert pad_to_even(even) is even
